package brain

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestSurfaceRoundTripAndSample(t *testing.T) {
	m := fullMask(t)
	// A map that is linear in x: trilinear sampling reproduces it exactly between voxel centres.
	values := make([]float32, m.Len())
	for p, idx := range m.Voxels {
		i, _, _ := Coords(int(idx))
		values[p] = float32(i)
	}
	c := VoxelToMNI(20, 30, 20)
	s := &Surface{Mesh: "test", Hemispheres: [2]Hemisphere{
		{Name: "left", Samples: 2, Points: [][3]float32{
			{float32(c[0]), float32(c[1]), float32(c[2])}, {float32(c[0] + 4), float32(c[1]), float32(c[2])}, // i = 20 and 21: mean 20.5
		}},
		{Name: "right", Samples: 1, Points: [][3]float32{{float32(c[0] + 2), float32(c[1]), float32(c[2])}, {1000, 0, 0}}}, // 20.5; outside: 0
	}}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	got, err := ReadSurface(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got.Mesh != "test" || got.Hemispheres[1].Vertices() != 2 || got.Hemispheres[0].Points[1] != s.Hemispheres[0].Points[1] {
		t.Fatalf("read back %+v", got)
	}
	vals := got.Sample(m, values)
	if len(vals[0]) != 1 || math.Abs(float64(vals[0][0])-20.5) > 1e-4 || math.Abs(float64(vals[1][0])-20.5) > 1e-4 || vals[1][1] != 0 {
		t.Errorf("sampled %v", vals)
	}

	var js bytes.Buffer
	if err := WriteSurfaceJSON(&js, got, [2][]float32{{1.23456, float32(math.NaN())}, {-0.0001}}); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&js)
	if err != nil {
		t.Fatal(err)
	}
	var sj SurfaceJSON
	if err := json.NewDecoder(zr).Decode(&sj); err != nil {
		t.Fatal(err)
	}
	if sj.Mesh != "test" || len(sj.Left) != 2 || sj.Left[0] != 1.235 || sj.Left[1] != 0 || sj.Right[0] != 0 {
		t.Errorf("JSON %+v", sj)
	}

	for name, bad := range map[string][]byte{
		"empty": nil, "not a surface": []byte("hello world"), "truncated": raw[:len(raw)-3],
		"trailing": append(append([]byte(nil), raw...), 0),
	} {
		if _, err := ReadSurface(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "surface") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
