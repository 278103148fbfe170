package gifti_test

import (
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/gifti"
)

// nibabel, the reference reader, reads the same meshes: every vertex and triangle agrees.
func TestMatchesNibabel(t *testing.T) {
	for _, name := range []string{"pial_left.gii.gz", "white_left.gii.gz", "infl_right.gii.gz"} {
		path := testenv.Data(t, "templates", "fsaverage5", name)
		m, err := gifti.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		script := `
import gzip, json, sys, nibabel as nib, numpy as np
img = nib.GiftiImage.from_bytes(gzip.open(sys.argv[1]).read())
pts = img.agg_data("NIFTI_INTENT_POINTSET").astype(np.float64)
tri = img.agg_data("NIFTI_INTENT_TRIANGLE").astype(np.int64)
print(json.dumps({"n": len(pts), "t": len(tri), "sum": pts.sum(axis=0).tolist(), "first": pts[0].tolist(),
                  "last": pts[-1].tolist(), "tsum": int(tri.sum()), "t0": tri[0].tolist()}))`
		out, err := exec.Command("/usr/bin/python3", "-c", script, path).Output()
		if err != nil {
			t.Fatalf("nibabel (python3-nibabel; make test installs it): %v", err)
		}
		var want struct {
			N, T  int
			Sum   [3]float64
			First [3]float64
			Last  [3]float64
			TSum  int64
			T0    [3]int32
		}
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatal(err)
		}
		var sum [3]float64
		var tsum int64
		for _, p := range m.Points {
			for k := range 3 {
				sum[k] += float64(p[k])
			}
		}
		for _, tr := range m.Triangles {
			tsum += int64(tr[0]) + int64(tr[1]) + int64(tr[2])
		}
		if len(m.Points) != want.N || len(m.Triangles) != want.T || tsum != want.TSum || m.Triangles[0] != want.T0 {
			t.Errorf("%s: %d points %d triangles (sum %d), nibabel %d %d (%d)", name, len(m.Points), len(m.Triangles), tsum, want.N, want.T, want.TSum)
		}
		for k := range 3 {
			if math.Abs(sum[k]-want.Sum[k]) > 1e-3*math.Max(1, math.Abs(want.Sum[k])) ||
				float64(m.Points[0][k]) != want.First[k] || float64(m.Points[len(m.Points)-1][k]) != want.Last[k] {
				t.Errorf("%s: axis %d: sum %v first %v last %v; nibabel %v %v %v", name, k, sum[k], m.Points[0], m.Points[len(m.Points)-1], want.Sum[k], want.First, want.Last)
			}
		}
	}
}

func TestEncodings(t *testing.T) {
	doc := func(enc, data string) []byte {
		return []byte(`<?xml version="1.0"?><GIFTI>` +
			`<DataArray Intent="NIFTI_INTENT_POINTSET" DataType="NIFTI_TYPE_FLOAT32" ArrayIndexingOrder="RowMajorOrder" Dimensionality="2" Dim0="3" Dim1="3" Encoding="` + enc + `" Endian="LittleEndian" ExternalFileName=""><Data>` + data + `</Data></DataArray>` +
			`<DataArray Intent="NIFTI_INTENT_TRIANGLE" DataType="NIFTI_TYPE_INT32" ArrayIndexingOrder="RowMajorOrder" Dimensionality="2" Dim0="1" Dim1="3" Encoding="ASCII" Endian="LittleEndian" ExternalFileName=""><Data>0 1 2</Data></DataArray></GIFTI>`)
	}
	m, err := gifti.Read(doc("ASCII", "0 0 0  1 0 0\n 0 1.5 0"))
	if err != nil || m.Points[2] != [3]float32{0, 1.5, 0} || m.Triangles[0] != [3]int32{0, 1, 2} {
		t.Fatalf("ASCII: %+v, %v", m, err)
	}
	// Base64 of nine little-endian float32: 0 0 0, 1 0 0, 0 1.5 0.
	if m, err := gifti.Read(doc("Base64Binary", "AAAAAAAAAAAAAAAAAACAPwAAAAAAAAAAAAAAAAAAwD8AAAAA")); err != nil || m.Points[1] != [3]float32{1, 0, 0} || m.Points[2] != [3]float32{0, 1.5, 0} {
		t.Fatalf("Base64Binary: %+v, %v", m, err)
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"not XML", "hello", "not a GIfTI document"},
		{"short data", string(doc("ASCII", "0 0 0")), "has 3 values, want 9"},
		{"unknown encoding", string(doc("External", "")), "encoding"},
		{"no triangles", `<GIFTI><DataArray Intent="NIFTI_INTENT_POINTSET" DataType="NIFTI_TYPE_FLOAT32" Dimensionality="2" Dim0="1" Dim1="3" Encoding="ASCII"><Data>0 0 0</Data></DataArray></GIFTI>`, "needs a"},
		{"bad triangle", strings.Replace(string(doc("ASCII", "0 0 0 1 0 0 0 1 0")), ">0 1 2<", ">0 1 7<", 1), "out of range"},
	} {
		if _, err := gifti.Read([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
