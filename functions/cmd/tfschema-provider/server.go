package main

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
)

// server answers the schema and validation RPCs from the recorded schema. Validation beyond the
// schema is the real provider's and is not repeated here: Terraform has already checked names,
// types and required arguments against the schema before it asks. Every RPC that needs the real
// provider (plan, apply, read, import, data sources, functions) answers an error diagnostic.
type server struct{ s *providerSchema }

var _ tfprotov5.ProviderServer = (*server)(nil)

func newServer(s *providerSchema) *server { return &server{s: s} }

func (p *server) notServed(what string) []*tfprotov5.Diagnostic {
	return []*tfprotov5.Diagnostic{{
		Severity: tfprotov5.DiagnosticSeverityError,
		Summary:  "tfschema-provider serves the google provider's schema only",
		Detail: fmt.Sprintf("%s needs the real google provider. This stand-in (functions/cmd/tfschema-provider) "+
			"can back `terraform init`, `terraform validate` and `terraform test` with mock_provider, and nothing else.", what),
	}}
}

func (p *server) GetMetadata(context.Context, *tfprotov5.GetMetadataRequest) (*tfprotov5.GetMetadataResponse, error) {
	r := &tfprotov5.GetMetadataResponse{ServerCapabilities: &tfprotov5.ServerCapabilities{PlanDestroy: true}}
	for _, n := range sortedKeys(p.s.Resources) {
		r.Resources = append(r.Resources, tfprotov5.ResourceMetadata{TypeName: n})
	}
	for _, n := range sortedKeys(p.s.DataSources) {
		r.DataSources = append(r.DataSources, tfprotov5.DataSourceMetadata{TypeName: n})
	}
	for _, n := range sortedKeys(p.s.EphemeralResources) {
		r.EphemeralResources = append(r.EphemeralResources, tfprotov5.EphemeralResourceMetadata{TypeName: n})
	}
	for _, n := range sortedKeys(p.s.Functions) {
		r.Functions = append(r.Functions, tfprotov5.FunctionMetadata{Name: n})
	}
	return r, nil
}

func (p *server) GetProviderSchema(context.Context, *tfprotov5.GetProviderSchemaRequest) (*tfprotov5.GetProviderSchemaResponse, error) {
	return &tfprotov5.GetProviderSchemaResponse{
		ServerCapabilities:       &tfprotov5.ServerCapabilities{PlanDestroy: true},
		Provider:                 p.s.Provider,
		ResourceSchemas:          p.s.Resources,
		DataSourceSchemas:        p.s.DataSources,
		EphemeralResourceSchemas: p.s.EphemeralResources,
		Functions:                p.s.Functions,
	}, nil
}

func (p *server) GetResourceIdentitySchemas(context.Context, *tfprotov5.GetResourceIdentitySchemasRequest) (*tfprotov5.GetResourceIdentitySchemasResponse, error) {
	// The recorded schema has no identity schemas (Terraform 1.11 does not ask for them).
	return &tfprotov5.GetResourceIdentitySchemasResponse{IdentitySchemas: map[string]*tfprotov5.ResourceIdentitySchema{}}, nil
}

func (p *server) PrepareProviderConfig(_ context.Context, req *tfprotov5.PrepareProviderConfigRequest) (*tfprotov5.PrepareProviderConfigResponse, error) {
	return &tfprotov5.PrepareProviderConfigResponse{PreparedConfig: req.Config}, nil
}

func (p *server) ConfigureProvider(context.Context, *tfprotov5.ConfigureProviderRequest) (*tfprotov5.ConfigureProviderResponse, error) {
	return &tfprotov5.ConfigureProviderResponse{}, nil
}

func (p *server) StopProvider(context.Context, *tfprotov5.StopProviderRequest) (*tfprotov5.StopProviderResponse, error) {
	return &tfprotov5.StopProviderResponse{}, nil
}

func (p *server) ValidateResourceTypeConfig(_ context.Context, req *tfprotov5.ValidateResourceTypeConfigRequest) (*tfprotov5.ValidateResourceTypeConfigResponse, error) {
	if _, ok := p.s.Resources[req.TypeName]; !ok {
		return &tfprotov5.ValidateResourceTypeConfigResponse{Diagnostics: unknown("resource type", req.TypeName)}, nil
	}
	return &tfprotov5.ValidateResourceTypeConfigResponse{}, nil
}

// UpgradeResourceState decodes stored state with the current schema; the recorded schema is one
// version, so there is nothing to upgrade from.
func (p *server) UpgradeResourceState(_ context.Context, req *tfprotov5.UpgradeResourceStateRequest) (*tfprotov5.UpgradeResourceStateResponse, error) {
	s, ok := p.s.Resources[req.TypeName]
	if !ok {
		return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: unknown("resource type", req.TypeName)}, nil
	}
	if req.Version != s.Version {
		return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: p.notServed(fmt.Sprintf("upgrading %s state from schema version %d", req.TypeName, req.Version))}, nil
	}
	typ := s.ValueType()
	v, err := req.RawState.UnmarshalWithOpts(typ, tfprotov5.UnmarshalOpts{})
	if err != nil {
		return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: errorDiag("decoding "+req.TypeName+" state", err)}, nil
	}
	dv, err := tfprotov5.NewDynamicValue(typ, v)
	if err != nil {
		return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: errorDiag("encoding "+req.TypeName+" state", err)}, nil
	}
	return &tfprotov5.UpgradeResourceStateResponse{UpgradedState: &dv}, nil
}

func (p *server) ReadResource(_ context.Context, req *tfprotov5.ReadResourceRequest) (*tfprotov5.ReadResourceResponse, error) {
	return &tfprotov5.ReadResourceResponse{Diagnostics: p.notServed("reading " + req.TypeName)}, nil
}

func (p *server) PlanResourceChange(_ context.Context, req *tfprotov5.PlanResourceChangeRequest) (*tfprotov5.PlanResourceChangeResponse, error) {
	return &tfprotov5.PlanResourceChangeResponse{Diagnostics: p.notServed("planning " + req.TypeName)}, nil
}

func (p *server) ApplyResourceChange(_ context.Context, req *tfprotov5.ApplyResourceChangeRequest) (*tfprotov5.ApplyResourceChangeResponse, error) {
	return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: p.notServed("applying " + req.TypeName)}, nil
}

func (p *server) ImportResourceState(_ context.Context, req *tfprotov5.ImportResourceStateRequest) (*tfprotov5.ImportResourceStateResponse, error) {
	return &tfprotov5.ImportResourceStateResponse{Diagnostics: p.notServed("importing " + req.TypeName)}, nil
}

func (p *server) MoveResourceState(_ context.Context, req *tfprotov5.MoveResourceStateRequest) (*tfprotov5.MoveResourceStateResponse, error) {
	return &tfprotov5.MoveResourceStateResponse{Diagnostics: p.notServed("moving state to " + req.TargetTypeName)}, nil
}

func (p *server) UpgradeResourceIdentity(_ context.Context, req *tfprotov5.UpgradeResourceIdentityRequest) (*tfprotov5.UpgradeResourceIdentityResponse, error) {
	return &tfprotov5.UpgradeResourceIdentityResponse{Diagnostics: p.notServed("upgrading the identity of " + req.TypeName)}, nil
}

func (p *server) GenerateResourceConfig(_ context.Context, req *tfprotov5.GenerateResourceConfigRequest) (*tfprotov5.GenerateResourceConfigResponse, error) {
	return &tfprotov5.GenerateResourceConfigResponse{Diagnostics: p.notServed("generating configuration for " + req.TypeName)}, nil
}

func (p *server) ValidateDataSourceConfig(_ context.Context, req *tfprotov5.ValidateDataSourceConfigRequest) (*tfprotov5.ValidateDataSourceConfigResponse, error) {
	if _, ok := p.s.DataSources[req.TypeName]; !ok {
		return &tfprotov5.ValidateDataSourceConfigResponse{Diagnostics: unknown("data source", req.TypeName)}, nil
	}
	return &tfprotov5.ValidateDataSourceConfigResponse{}, nil
}

func (p *server) ReadDataSource(_ context.Context, req *tfprotov5.ReadDataSourceRequest) (*tfprotov5.ReadDataSourceResponse, error) {
	return &tfprotov5.ReadDataSourceResponse{Diagnostics: p.notServed("reading data source " + req.TypeName)}, nil
}

func (p *server) ValidateEphemeralResourceConfig(_ context.Context, req *tfprotov5.ValidateEphemeralResourceConfigRequest) (*tfprotov5.ValidateEphemeralResourceConfigResponse, error) {
	if _, ok := p.s.EphemeralResources[req.TypeName]; !ok {
		return &tfprotov5.ValidateEphemeralResourceConfigResponse{Diagnostics: unknown("ephemeral resource", req.TypeName)}, nil
	}
	return &tfprotov5.ValidateEphemeralResourceConfigResponse{}, nil
}

func (p *server) OpenEphemeralResource(_ context.Context, req *tfprotov5.OpenEphemeralResourceRequest) (*tfprotov5.OpenEphemeralResourceResponse, error) {
	return &tfprotov5.OpenEphemeralResourceResponse{Diagnostics: p.notServed("opening " + req.TypeName)}, nil
}

func (p *server) RenewEphemeralResource(_ context.Context, req *tfprotov5.RenewEphemeralResourceRequest) (*tfprotov5.RenewEphemeralResourceResponse, error) {
	return &tfprotov5.RenewEphemeralResourceResponse{Diagnostics: p.notServed("renewing " + req.TypeName)}, nil
}

func (p *server) CloseEphemeralResource(_ context.Context, req *tfprotov5.CloseEphemeralResourceRequest) (*tfprotov5.CloseEphemeralResourceResponse, error) {
	return &tfprotov5.CloseEphemeralResourceResponse{Diagnostics: p.notServed("closing " + req.TypeName)}, nil
}

func (p *server) GetFunctions(context.Context, *tfprotov5.GetFunctionsRequest) (*tfprotov5.GetFunctionsResponse, error) {
	return &tfprotov5.GetFunctionsResponse{Functions: p.s.Functions}, nil
}

func (p *server) CallFunction(_ context.Context, req *tfprotov5.CallFunctionRequest) (*tfprotov5.CallFunctionResponse, error) {
	return &tfprotov5.CallFunctionResponse{Error: &tfprotov5.FunctionError{
		Text: "provider::google::" + req.Name + " needs the real google provider; tfschema-provider serves its schema only",
	}}, nil
}

func unknown(kind, name string) []*tfprotov5.Diagnostic {
	return []*tfprotov5.Diagnostic{{
		Severity: tfprotov5.DiagnosticSeverityError,
		Summary:  "Unknown " + kind,
		Detail:   fmt.Sprintf("The google provider's schema has no %s %q.", kind, name),
	}}
}

func errorDiag(summary string, err error) []*tfprotov5.Diagnostic {
	return []*tfprotov5.Diagnostic{{Severity: tfprotov5.DiagnosticSeverityError, Summary: summary, Detail: err.Error()}}
}
