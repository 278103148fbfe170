package brain

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fullMask has every voxel of the grid, so that synthetic maps are not cut by the brain's shape.
func fullMask(t *testing.T) *Mask {
	t.Helper()
	in := make([]bool, NVoxels)
	for i := range in {
		in[i] = true
	}
	m, err := NewMask(in)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPeaks(t *testing.T) {
	t.Parallel()
	full := fullMask(t)
	set := func(vals []float32, v float32, ijk ...[3]int) []float32 {
		for _, c := range ijk {
			vals[Index(c[0], c[1], c[2])] = v
		}
		return vals
	}
	zeros := func() []float32 { return make([]float32, NVoxels) }
	mni := func(i, j, k int) [3]float64 { return VoxelToMNI(i, j, k) }
	bumps := func() []float32 {
		a := bumpMap(full, mni(10, 20, 30), 5, 6)
		b := bumpMap(full, mni(30, 30, 10), 8, 6)
		for p := range a {
			a[p] += b[p]
		}
		return a
	}
	testCases := []struct {
		name   string
		values []float32
		n      int
		minMM  float64
		want   []Peak
	}{
		{
			name:   "two bumps, strongest first",
			values: bumps(),
			n:      10,
			minMM:  8,
			want:   []Peak{{MNI: mni(30, 30, 10), Z: 8}, {MNI: mni(10, 20, 30), Z: 5}},
		},
		{
			name:   "n limits the count",
			values: bumps(),
			n:      1,
			minMM:  8,
			want:   []Peak{{MNI: mni(30, 30, 10), Z: 8}},
		},
		{
			name:   "n of 0",
			values: bumps(),
			n:      0,
			want:   []Peak{},
		},
		{
			name:   "all zero",
			values: zeros(),
			n:      5,
			want:   []Peak{},
		},
		{
			name:   "all negative",
			values: set(set(zeros(), -1, [3]int{0, 0, 0}), -3, [3]int{5, 5, 5}),
			n:      5,
			want:   []Peak{},
		},
		{
			name:   "negative bump is not a peak",
			values: set(set(zeros(), -9, [3]int{20, 20, 20}), 2, [3]int{10, 10, 10}),
			n:      5,
			want:   []Peak{{MNI: mni(10, 10, 10), Z: 2}},
		},
		{
			// Every voxel of a plateau is ≥ its neighbours; ties come in volume order.
			name:   "plateau without min distance",
			values: set(zeros(), 3, [3]int{10, 10, 11}, [3]int{10, 10, 10}, [3]int{11, 10, 10}),
			n:      5,
			want:   []Peak{{MNI: mni(10, 10, 10), Z: 3}, {MNI: mni(10, 10, 11), Z: 3}, {MNI: mni(11, 10, 10), Z: 3}},
		},
		{
			name:   "plateau reported once",
			values: set(zeros(), 3, [3]int{10, 10, 11}, [3]int{10, 10, 10}, [3]int{11, 10, 10}),
			n:      5,
			minMM:  8,
			want:   []Peak{{MNI: mni(10, 10, 10), Z: 3}},
		},
		{
			name:   "a stronger neighbour on a diagonal",
			values: set(set(zeros(), 3, [3]int{10, 10, 10}), 4, [3]int{11, 11, 11}),
			n:      5,
			want:   []Peak{{MNI: mni(11, 11, 11), Z: 4}},
		},
		{
			// Two maxima 12 mm apart (3 voxels): kept at 12 mm, the weaker one skipped above.
			name:   "exactly min distance apart",
			values: set(set(zeros(), 5, [3]int{10, 10, 10}), 4, [3]int{13, 10, 10}),
			n:      5,
			minMM:  12,
			want:   []Peak{{MNI: mni(10, 10, 10), Z: 5}, {MNI: mni(13, 10, 10), Z: 4}},
		},
		{
			name:   "closer than min distance",
			values: set(set(zeros(), 5, [3]int{10, 10, 10}), 4, [3]int{13, 10, 10}),
			n:      5,
			minMM:  12.5,
			want:   []Peak{{MNI: mni(10, 10, 10), Z: 5}},
		},
		{
			// The skipped maximum does not block the next one, which is far from the first.
			name:   "skipped peak does not count",
			values: set(set(set(zeros(), 5, [3]int{10, 10, 10}), 4, [3]int{12, 10, 10}), 3, [3]int{14, 10, 10}),
			n:      5,
			minMM:  10,
			want:   []Peak{{MNI: mni(10, 10, 10), Z: 5}, {MNI: mni(14, 10, 10), Z: 3}},
		},
		{
			name:   "volume edges",
			values: set(set(zeros(), 1, [3]int{0, 0, 0}), 2, [3]int{NX - 1, NY - 1, NZ - 1}),
			n:      5,
			want:   []Peak{{MNI: mni(NX-1, NY-1, NZ-1), Z: 2}, {MNI: mni(0, 0, 0), Z: 1}},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Peaks(full, tc.values, tc.n, tc.minMM)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Peaks (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPeaksMaskEdge: a voxel outside the mask is no neighbour, even if it would be stronger.
func TestPeaksMaskEdge(t *testing.T) {
	t.Parallel()
	in := make([]bool, NVoxels)
	in[Index(10, 10, 10)] = true
	in[Index(10, 10, 11)] = true
	m, err := NewMask(in)
	if err != nil {
		t.Fatal(err)
	}
	got := Peaks(m, []float32{2, 1}, 5, 0)
	want := []Peak{{MNI: VoxelToMNI(10, 10, 10), Z: 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Peaks (-want +got):\n%s", diff)
	}
}

func TestPeaksSharedMask(t *testing.T) {
	t.Parallel()
	m := mustMask(t)
	at := [3]float64{38, -50, -20}
	got := Peaks(m, bumpMap(m, at, 28, 6), 3, 8)
	if len(got) != 1 || got[0].MNI != at || got[0].Z < 27.9 {
		t.Errorf("Peaks = %v, want one peak at %v", got, at)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"mni":[38,-50,-20],"z":28}]`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	if b, _ := json.Marshal(Peaks(m, make([]float32, m.Len()), 3, 8)); string(b) != "[]" {
		t.Errorf("JSON of no peaks = %s, want []", b)
	}
}

func TestPeaksBadLength(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("Peaks with a wrong length did not panic")
		}
	}()
	Peaks(mustMask(t), make([]float32, 3), 1, 0)
}
