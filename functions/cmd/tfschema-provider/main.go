// Command tfschema-provider is a Terraform provider that serves a recorded provider schema and
// nothing else. It is not the google provider.
//
// The google provider cannot be installed on the machines this project is built on (its registry
// is unreachable and no version of it can be fetched as a Go module), but its real schema can: the
// output of `terraform providers schema -json` for hashicorp/google 8.0.0, kept beside the model
// data. Served by this program from a filesystem mirror under the google provider's address, that
// schema lets Terraform itself run `init`, `validate` and `terraform test` with `mock_provider`
// offline: resource and attribute names, types, required arguments, nested blocks and references
// are checked against the real provider's interface. What it cannot check is everything the real
// provider decides at plan and apply time (its own value validation, API defaults, what Google's
// APIs accept): every RPC that would need the real provider answers an error that says so, so a
// configuration is never planned against this server by mistake.
//
// The schema file is the one given by -X main.schemaFile at build time (the Makefile sets it), or
// by TFSCHEMA_FILE at run time; gzip-compressed or plain JSON.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tfprotov5/tf5server"
)

var (
	// schemaFile is the recorded schema, set at build time with -ldflags "-X main.schemaFile=…".
	schemaFile string
	// providerAddress is the provider whose schema is served, as Terraform names it.
	providerAddress = "registry.terraform.io/hashicorp/google"
)

func main() {
	path := schemaFile
	if p := os.Getenv("TFSCHEMA_FILE"); p != "" {
		path = p
	}
	if path == "" {
		fmt.Fprintln(os.Stderr, "tfschema-provider: no schema file: build with -X main.schemaFile=PATH or set TFSCHEMA_FILE")
		os.Exit(1)
	}
	s, err := loadSchema(path, providerAddress)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tfschema-provider:", err)
		os.Exit(1)
	}
	if err := tf5server.Serve(providerAddress, func() tfprotov5.ProviderServer { return newServer(s) }); err != nil {
		fmt.Fprintln(os.Stderr, "tfschema-provider:", err)
		os.Exit(1)
	}
}
