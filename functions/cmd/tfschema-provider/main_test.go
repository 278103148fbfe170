package main

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
)

const recorded = "google-8.0.0.schema.json.gz"

func realSchema(t *testing.T) *providerSchema {
	t.Helper()
	s, err := loadSchema(testenv.Data(t, "terraform", recorded), providerAddress)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func findBlock(b *tfprotov5.SchemaBlock, name string) *tfprotov5.SchemaNestedBlock {
	for _, nb := range b.BlockTypes {
		if nb.TypeName == name {
			return nb
		}
	}
	return nil
}

func findAttr(b *tfprotov5.SchemaBlock, name string) *tfprotov5.SchemaAttribute {
	for _, a := range b.Attributes {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// The recorded schema converts whole, with the counts its README gives, and with the shapes the
// deployment relies on.
func TestRecordedSchema(t *testing.T) {
	s := realSchema(t)
	if len(s.Resources) != 1330 || len(s.DataSources) != 459 {
		t.Errorf("%d resources and %d data sources, want 1330 and 459", len(s.Resources), len(s.DataSources))
	}
	sub := s.Resources["google_pubsub_subscription"]
	if sub == nil {
		t.Fatal("no google_pubsub_subscription")
	}
	push := findBlock(sub.Block, "push_config")
	if push == nil || push.Nesting != tfprotov5.SchemaNestedBlockNestingModeList || push.MaxItems != 1 {
		t.Errorf("push_config = %+v, want a list block of at most one", push)
	}
	if a := findAttr(push.Block, "push_endpoint"); a == nil || !a.Required || !a.Type.Is(tftypes.String) {
		t.Errorf("push_config.push_endpoint = %+v, want a required string", a)
	}
	fn := s.Resources["google_cloudfunctions2_function"]
	sc := findBlock(fn.Block, "service_config")
	if a := findAttr(sc.Block, "environment_variables"); a == nil || !a.Type.Is(tftypes.Map{ElementType: tftypes.String}) {
		t.Errorf("service_config.environment_variables = %+v, want map(string)", a)
	}
	if a := findAttr(s.Provider.Block, "project"); a == nil || !a.Optional {
		t.Errorf("provider.project = %+v, want optional", a)
	}
	if f := s.Functions["region_from_zone"]; f == nil || len(f.Parameters) != 1 || !f.Return.Type.Is(tftypes.String) {
		t.Errorf("function region_from_zone = %+v", f)
	}
	// Attribute order is stable (sorted), as a provider's is.
	attrs := sub.Block.Attributes
	for i := 1; i < len(attrs); i++ {
		if attrs[i-1].Name >= attrs[i].Name {
			t.Fatalf("attributes not sorted: %s before %s", attrs[i-1].Name, attrs[i].Name)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, json string }{
		{"not json", `{`},
		{"format", `{"format_version": "2.0", "provider_schemas": {}}`},
		{"other provider", `{"format_version": "1.0", "provider_schemas": {"registry.terraform.io/hashicorp/aws": {}}}`},
		{"bad type", `{"format_version": "1.0", "provider_schemas": {"registry.terraform.io/hashicorp/google": {
			"provider": {"block": {"attributes": {"x": {"type": ["nope"]}}}}}}}`},
		{"bad nesting", `{"format_version": "1.0", "provider_schemas": {"registry.terraform.io/hashicorp/google": {
			"provider": {"block": {"block_types": {"x": {"nesting_mode": "tree", "block": {}}}}}}}}`},
		{"nested type", `{"format_version": "1.0", "provider_schemas": {"registry.terraform.io/hashicorp/google": {
			"provider": {"block": {"attributes": {"x": {"nested_type": {"attributes": {}}}}}}}}}`},
	} {
		if _, err := parseSchema([]byte(tc.json), providerAddress); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// The server validates against the schema and refuses, loudly, whatever needs the real provider.
func TestServer(t *testing.T) {
	ctx := context.Background()
	p := newServer(realSchema(t))

	v, err := p.ValidateResourceTypeConfig(ctx, &tfprotov5.ValidateResourceTypeConfigRequest{TypeName: "google_pubsub_topic"})
	if err != nil || len(v.Diagnostics) != 0 {
		t.Errorf("validate a known resource: %v %v", err, v.Diagnostics)
	}
	v, _ = p.ValidateResourceTypeConfig(ctx, &tfprotov5.ValidateResourceTypeConfigRequest{TypeName: "google_nothing"})
	if len(v.Diagnostics) != 1 || v.Diagnostics[0].Severity != tfprotov5.DiagnosticSeverityError {
		t.Errorf("validate an unknown resource: %v", v.Diagnostics)
	}
	plan, _ := p.PlanResourceChange(ctx, &tfprotov5.PlanResourceChangeRequest{TypeName: "google_pubsub_topic"})
	if len(plan.Diagnostics) != 1 || plan.Diagnostics[0].Severity != tfprotov5.DiagnosticSeverityError {
		t.Errorf("plan answered %v, want an error", plan.Diagnostics)
	}
	read, _ := p.ReadDataSource(ctx, &tfprotov5.ReadDataSourceRequest{TypeName: "google_project"})
	if len(read.Diagnostics) != 1 {
		t.Errorf("data source read answered %v, want an error", read.Diagnostics)
	}
	call, _ := p.CallFunction(ctx, &tfprotov5.CallFunctionRequest{Name: "region_from_zone"})
	if call.Error == nil {
		t.Error("a function call succeeded")
	}

	// Stored state decodes with the schema's type.
	up, err := p.UpgradeResourceState(ctx, &tfprotov5.UpgradeResourceStateRequest{
		TypeName: "google_pubsub_topic",
		RawState: &tfprotov5.RawState{JSON: []byte(`{"name": "jobs", "project": "p", "id": "projects/p/topics/jobs"}`)},
	})
	if err != nil || len(up.Diagnostics) != 0 || up.UpgradedState == nil {
		t.Fatalf("upgrade: %v %v", err, up.Diagnostics)
	}
	typ := p.s.Resources["google_pubsub_topic"].ValueType()
	val, err := up.UpgradedState.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]tftypes.Value
	if err := val.As(&obj); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := obj["name"].As(&name); err != nil || name != "jobs" {
		t.Errorf("name = %q (%v), want jobs", name, err)
	}

	schema, _ := p.GetProviderSchema(ctx, &tfprotov5.GetProviderSchemaRequest{})
	meta, _ := p.GetMetadata(ctx, &tfprotov5.GetMetadataRequest{})
	if len(schema.ResourceSchemas) != len(meta.Resources) || len(schema.DataSourceSchemas) != len(meta.DataSources) {
		t.Errorf("metadata lists %d resources and %d data sources; the schema has %d and %d",
			len(meta.Resources), len(meta.DataSources), len(schema.ResourceSchemas), len(schema.DataSourceSchemas))
	}
}
