package manifest

import (
	"strings"
	"testing"
)

func TestContract(t *testing.T) {
	const features, voxels = 10, 7
	in := TensorSpec{Name: "x", Shape: []int64{1, features}, Type: "float32"}
	maskOut := TensorSpec{Name: "y", Shape: []int64{1, voxels}, Type: "float32", Role: RoleMap}
	feat := TensorSpec{Name: "f", Shape: []int64{1, features}, Type: "float32", Role: RoleFeatures}
	man := func(in TensorSpec, outs ...TensorSpec) Manifest {
		return Manifest{Kind: "k", Features: features, Grid: Grid{MaskVoxels: voxels}, Input: in, Outputs: outs}
	}
	with := func(s TensorSpec, f func(*TensorSpec)) TensorSpec { f(&s); return s }

	for _, tc := range []struct {
		name     string
		man      Manifest
		volume   bool
		features bool
		err      string
	}{
		{name: "mask map", man: man(in, maskOut)},
		{name: "map and features", man: man(in, feat, maskOut), features: true},
		{name: "volume", man: man(in, with(maskOut, func(s *TensorSpec) { s.Shape = []int64{1, 46, 55, 46} })), volume: true},
		{name: "volume with a channel", man: man(in, with(maskOut, func(s *TensorSpec) { s.Shape = []int64{1, 1, 46, 55, 46} })), volume: true},
		{name: "extra outputs are not read", man: man(in, maskOut, TensorSpec{Name: "hidden", Shape: []int64{1, 512}, Type: "float32", Role: "code"})},
		{name: "a bundle from before roles", man: man(in, with(maskOut, func(s *TensorSpec) { s.Role = "" }), with(feat, func(s *TensorSpec) { s.Name, s.Role = OutputSmooth, "" })), features: true},
		{name: "input of the wrong size", man: man(with(in, func(s *TensorSpec) { s.Shape = []int64{1, 9} }), maskOut), err: "is not float32 [1, 10]"},
		{name: "float64 input", man: man(with(in, func(s *TensorSpec) { s.Type = "float64" }), maskOut), err: "is not float32"},
		{name: "a batch input", man: man(with(in, func(s *TensorSpec) { s.Shape = []int64{-1, features} }), maskOut), err: "is not float32 [1, 10]"},
		{name: "no map", man: man(in, feat), err: `no output of role "map"`},
		{name: "two maps", man: man(in, maskOut, with(maskOut, func(s *TensorSpec) { s.Name = "y2" })), err: "two map outputs"},
		{name: "map of the wrong size", man: man(in, with(maskOut, func(s *TensorSpec) { s.Shape = []int64{1, 8} })), err: "neither [1, 7]"},
		{name: "a volume of another grid", man: man(in, with(maskOut, func(s *TensorSpec) { s.Shape = []int64{1, 91, 109, 91} })), err: "neither"},
		{name: "features of the wrong size", man: man(in, maskOut, with(feat, func(s *TensorSpec) { s.Shape = []int64{1, 3} })), err: "feature output"},
		{name: "names not distinct", man: man(in, with(maskOut, func(s *TensorSpec) { s.Name = "x" })), err: "distinct names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.man.Contract()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Volume != tc.volume || (c.Features != nil) != tc.features || c.Input.Name != "x" {
				t.Errorf("contract %+v: want volume %v, features %v", c, tc.volume, tc.features)
			}
		})
	}
}

// Two kinds never share a model version, and a NeuroQuery bundle's is what it always was.
func TestVersionOfKind(t *testing.T) {
	files := map[string]FileInfo{"model.onnx": {SHA256: "ab", Bytes: 2}}
	nq, nn := VersionOf(files), VersionOfKind("text2brain-nn", files)
	if !strings.HasPrefix(nq, "nq-") || !strings.HasPrefix(nn, "nn-") || nq[3:] == nn[3:] || VersionOfKind("other", files) == nn {
		t.Errorf("versions %s, %s", nq, nn)
	}
}
