package brain

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"math"
	"math/rand/v2"
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

// randomSurface has n vertices a hemisphere, 3 sampling positions each, spread over the grid's
// field of view and a little beyond it (positions outside the volume sample 0).
func randomSurface(n int, seed uint64) *Surface {
	r := rand.New(rand.NewPCG(seed, 1))
	s := &Surface{Mesh: "random"}
	for h := range s.Hemispheres {
		pts := make([][3]float32, 3*n)
		for i := range pts {
			pts[i] = [3]float32{float32(-100 + 200*r.Float64()), float32(-136 + 232*r.Float64()), float32(-82 + 190*r.Float64())}
		}
		s.Hemispheres[h] = Hemisphere{Name: []string{"left", "right"}[h], Samples: 3, Points: pts}
	}
	return s
}

// The precomputed sampler gives Sample's values, on the real mask, inside and outside it and
// beyond the volume's edge.
func TestSurfaceSamplerIsSample(t *testing.T) {
	m := mustMask(t)
	s := randomSurface(3000, 7)
	ss := NewSurfaceSampler(s, m)
	for seed := range uint64(3) {
		values := randomMap(m, seed)
		want, got := s.Sample(m, values), ss.Sample(values)
		var zeros int
		for h := range want {
			if len(got[h]) != len(want[h]) {
				t.Fatalf("hemisphere %d: %d values, want %d", h, len(got[h]), len(want[h]))
			}
			for v := range want[h] {
				if math.Abs(float64(got[h][v]-want[h][v])) > 1e-5*max(1, math.Abs(float64(want[h][v]))) {
					t.Fatalf("hemisphere %d vertex %d: %v, want %v", h, v, got[h][v], want[h][v])
				}
				if want[h][v] == 0 {
					zeros++
				}
			}
		}
		if zeros == 0 || zeros == 2*3000 {
			t.Errorf("%d of the vertices sample 0: the test covers only one side of the mask", zeros)
		}
	}
}

// BenchmarkSurfaceSample samples a map on a surface of fsaverage5's size (10,242 vertices a
// hemisphere, 3 positions each), per position and through the precomputed weights.
func BenchmarkSurfaceSample(b *testing.B) {
	m := mustMask(b)
	s := randomSurface(10242, 1)
	values := randomMap(m, 1)
	b.Run("per-position", func(b *testing.B) {
		for b.Loop() {
			s.Sample(m, values)
		}
	})
	b.Run("precomputed", func(b *testing.B) {
		ss := NewSurfaceSampler(s, m)
		b.ResetTimer()
		for b.Loop() {
			ss.Sample(values)
		}
	})
}
