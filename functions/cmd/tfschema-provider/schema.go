package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// The JSON of `terraform providers schema -json` (format 1.0), as far as a provider serves it.
type jsonSchemas struct {
	FormatVersion   string                        `json:"format_version"`
	ProviderSchemas map[string]jsonProviderSchema `json:"provider_schemas"`
}

type jsonProviderSchema struct {
	Provider           jsonSchema              `json:"provider"`
	Resources          map[string]jsonSchema   `json:"resource_schemas"`
	DataSources        map[string]jsonSchema   `json:"data_source_schemas"`
	EphemeralResources map[string]jsonSchema   `json:"ephemeral_resource_schemas"`
	Functions          map[string]jsonFunction `json:"functions"`
}

type jsonSchema struct {
	Version int64     `json:"version"`
	Block   jsonBlock `json:"block"`
}

type jsonBlock struct {
	Attributes      map[string]jsonAttribute `json:"attributes"`
	BlockTypes      map[string]jsonBlockType `json:"block_types"`
	Description     string                   `json:"description"`
	DescriptionKind string                   `json:"description_kind"`
	Deprecated      bool                     `json:"deprecated"`
}

type jsonAttribute struct {
	Type            json.RawMessage `json:"type"`
	NestedType      json.RawMessage `json:"nested_type"`
	Description     string          `json:"description"`
	DescriptionKind string          `json:"description_kind"`
	Required        bool            `json:"required"`
	Optional        bool            `json:"optional"`
	Computed        bool            `json:"computed"`
	Sensitive       bool            `json:"sensitive"`
	Deprecated      bool            `json:"deprecated"`
	WriteOnly       bool            `json:"write_only"`
}

type jsonBlockType struct {
	NestingMode string    `json:"nesting_mode"`
	Block       jsonBlock `json:"block"`
	MinItems    int64     `json:"min_items"`
	MaxItems    int64     `json:"max_items"`
}

type jsonFunction struct {
	Description        string          `json:"description"`
	Summary            string          `json:"summary"`
	DeprecationMessage string          `json:"deprecation_message"`
	ReturnType         json.RawMessage `json:"return_type"`
	Parameters         []jsonParameter `json:"parameters"`
	VariadicParameter  *jsonParameter  `json:"variadic_parameter"`
}

type jsonParameter struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	IsNullable  bool            `json:"is_nullable"`
	Type        json.RawMessage `json:"type"`
}

// providerSchema is one provider's schema in the plugin protocol's terms.
type providerSchema struct {
	Provider           *tfprotov5.Schema
	Resources          map[string]*tfprotov5.Schema
	DataSources        map[string]*tfprotov5.Schema
	EphemeralResources map[string]*tfprotov5.Schema
	Functions          map[string]*tfprotov5.Function
}

// loadSchema reads the schema file at path (gzip or plain JSON) and converts the schema of the
// provider at address.
func loadSchema(path, address string) (*providerSchema, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return parseSchema(raw, address)
}

func parseSchema(raw []byte, address string) (*providerSchema, error) {
	var all jsonSchemas
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, fmt.Errorf("not the JSON of `terraform providers schema -json`: %w", err)
	}
	if all.FormatVersion != "1.0" {
		return nil, fmt.Errorf("schema format %q: want 1.0", all.FormatVersion)
	}
	js, ok := all.ProviderSchemas[address]
	if !ok {
		var have []string
		for a := range all.ProviderSchemas {
			have = append(have, a)
		}
		sort.Strings(have)
		return nil, fmt.Errorf("no schema for %s (the file has %v)", address, have)
	}
	var err error
	s := &providerSchema{}
	if s.Provider, err = convertSchema(js.Provider); err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	for _, set := range []struct {
		in  map[string]jsonSchema
		out *map[string]*tfprotov5.Schema
	}{{js.Resources, &s.Resources}, {js.DataSources, &s.DataSources}, {js.EphemeralResources, &s.EphemeralResources}} {
		*set.out = make(map[string]*tfprotov5.Schema, len(set.in))
		for name, sch := range set.in {
			if (*set.out)[name], err = convertSchema(sch); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	s.Functions = make(map[string]*tfprotov5.Function, len(js.Functions))
	for name, f := range js.Functions {
		if s.Functions[name], err = convertFunction(f); err != nil {
			return nil, fmt.Errorf("function %s: %w", name, err)
		}
	}
	return s, nil
}

func convertSchema(s jsonSchema) (*tfprotov5.Schema, error) {
	b, err := convertBlock(s.Block)
	if err != nil {
		return nil, err
	}
	b.Version = s.Version
	return &tfprotov5.Schema{Version: s.Version, Block: b}, nil
}

// convertBlock converts a block; attributes and nested blocks are sorted by name, as providers
// send them.
func convertBlock(b jsonBlock) (*tfprotov5.SchemaBlock, error) {
	out := &tfprotov5.SchemaBlock{
		Description:     b.Description,
		DescriptionKind: stringKind(b.DescriptionKind),
		Deprecated:      b.Deprecated,
	}
	for _, name := range sortedKeys(b.Attributes) {
		a := b.Attributes[name]
		if len(a.NestedType) > 0 {
			// Nested attribute types exist only in protocol 6; the google provider speaks 5.
			return nil, fmt.Errorf("attribute %s has a nested type, which protocol 5 cannot serve", name)
		}
		//lint:ignore SA1019 the recorded schema is in exactly the JSON type syntax this parses, and no other public parser exists
		t, err := tftypes.ParseJSONType(a.Type)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		out.Attributes = append(out.Attributes, &tfprotov5.SchemaAttribute{
			Name:            name,
			Type:            t,
			Description:     a.Description,
			DescriptionKind: stringKind(a.DescriptionKind),
			Required:        a.Required,
			Optional:        a.Optional,
			Computed:        a.Computed,
			Sensitive:       a.Sensitive,
			Deprecated:      a.Deprecated,
			WriteOnly:       a.WriteOnly,
		})
	}
	for _, name := range sortedKeys(b.BlockTypes) {
		bt := b.BlockTypes[name]
		nb, err := convertBlock(bt.Block)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", name, err)
		}
		mode, err := nestingMode(bt.NestingMode)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", name, err)
		}
		out.BlockTypes = append(out.BlockTypes, &tfprotov5.SchemaNestedBlock{
			TypeName: name, Block: nb, Nesting: mode, MinItems: bt.MinItems, MaxItems: bt.MaxItems,
		})
	}
	return out, nil
}

func convertFunction(f jsonFunction) (*tfprotov5.Function, error) {
	//lint:ignore SA1019 as in convertBlock
	ret, err := tftypes.ParseJSONType(f.ReturnType)
	if err != nil {
		return nil, fmt.Errorf("return type: %w", err)
	}
	out := &tfprotov5.Function{
		Summary:            f.Summary,
		Description:        f.Description,
		DescriptionKind:    tfprotov5.StringKindPlain,
		DeprecationMessage: f.DeprecationMessage,
		Return:             &tfprotov5.FunctionReturn{Type: ret},
	}
	param := func(p jsonParameter) (*tfprotov5.FunctionParameter, error) {
		//lint:ignore SA1019 as in convertBlock
		t, err := tftypes.ParseJSONType(p.Type)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		return &tfprotov5.FunctionParameter{
			Name: p.Name, Description: p.Description, DescriptionKind: tfprotov5.StringKindPlain,
			AllowNullValue: p.IsNullable, Type: t,
		}, nil
	}
	for _, p := range f.Parameters {
		fp, err := param(p)
		if err != nil {
			return nil, err
		}
		out.Parameters = append(out.Parameters, fp)
	}
	if f.VariadicParameter != nil {
		if out.VariadicParameter, err = param(*f.VariadicParameter); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func nestingMode(m string) (tfprotov5.SchemaNestedBlockNestingMode, error) {
	switch m {
	case "single":
		return tfprotov5.SchemaNestedBlockNestingModeSingle, nil
	case "list":
		return tfprotov5.SchemaNestedBlockNestingModeList, nil
	case "set":
		return tfprotov5.SchemaNestedBlockNestingModeSet, nil
	case "map":
		return tfprotov5.SchemaNestedBlockNestingModeMap, nil
	case "group":
		return tfprotov5.SchemaNestedBlockNestingModeGroup, nil
	}
	return 0, fmt.Errorf("unknown nesting mode %q", m)
}

func stringKind(k string) tfprotov5.StringKind {
	if k == "markdown" {
		return tfprotov5.StringKindMarkdown
	}
	return tfprotov5.StringKindPlain
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
