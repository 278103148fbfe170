package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// smallData is a decoder of 3 terms on a map of 6 voxels with 2 dimensions: the description is
// (u₀ − u₁, u₂ − u₃) of the standardised map, and the terms read it as "+first", "+second" and
// "a bit of both" over base rates.
func smallData() *Data {
	basis := []float64{
		1, -1, 0, 0, 0, 0,
		0, 0, 1, -1, 0, 0,
	}
	weights := []float64{
		1, 0,
		0, 1,
		0.5, 0.5,
	}
	return &Data{MaskLen: 6, Dim: 2, NFeatures: 3,
		Basis: QuantizeRows(2, 6, basis), Center: []float32{0, 0},
		Weights: QuantizeRows(3, 2, weights), Intercept: []float32{0.1, 0.1, 0.2},
		Articles: 42, Lambda: 0.5}
}

func newSmall(t *testing.T) *Decoder {
	t.Helper()
	d, err := New(smallData(), []string{"first", "second", "both"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func names(ts []Term) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Term)
	}
	return out
}

func TestTermsRanksByScore(t *testing.T) {
	t.Parallel()
	d := newSmall(t)
	testCases := []struct {
		name   string
		values []float32
		want   []string
	}{
		{"first pattern", []float32{3, 0, 0, 0, 0, 0}, []string{"first", "both", "second"}},
		{"second pattern", []float32{0, 0, 3, 0, 0, 0}, []string{"second", "both", "first"}},
		{"both", []float32{2, 0, 2, 0, 0, 0}, []string{"both", "first", "second"}},
		// Ties keep feature order: first and second score the same.
		{"neither", []float32{0, 0, 0, 0, 1, 0}, []string{"both", "first", "second"}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, names(d.Terms(tc.values, 3))); diff != "" {
				t.Errorf("Terms (-want +got):\n%s", diff)
			}
			if got := names(d.Terms(tc.values, 1)); !cmp.Equal(got, tc.want[:1]) {
				t.Errorf("Terms(k=1) = %v, want %v", got, tc.want[:1])
			}
			if got := d.Terms(tc.values, 10); len(got) != 3 {
				t.Errorf("Terms(k=10) gave %d terms, want all 3", len(got))
			}
		})
	}
}

// A map's offset and (positive) scale are not information: z-maps, t-maps and densities of the
// same pattern decode alike.
func TestTermsIgnoreOffsetAndScale(t *testing.T) {
	t.Parallel()
	d := newSmall(t)
	base := []float32{1, 0.2, 0.7, 0.1, 0.3, 0}
	want, err := d.Scores(base)
	if err != nil {
		t.Fatal(err)
	}
	moved := make([]float32, len(base))
	for i, v := range base {
		moved[i] = 40*v - 7
	}
	got, err := d.Scores(moved)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b float32) bool { return math.Abs(float64(a-b)) < 1e-5 })); diff != "" {
		t.Errorf("scores of 40·u − 7 differ from those of u (-u +moved):\n%s", diff)
	}
}

func TestBadMapsDecodeToNothing(t *testing.T) {
	t.Parallel()
	d := newSmall(t)
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	testCases := []struct {
		name   string
		values []float32
		want   error // nil: an error of its own (the length)
	}{
		{"NaN", []float32{1, nan, 0, 0, 0, 0}, ErrNotFinite},
		{"infinite", []float32{1, 0, inf, 0, 0, 0}, ErrNotFinite},
		{"all zeros", make([]float32, 6), ErrConstant},
		{"constant", []float32{2.5, 2.5, 2.5, 2.5, 2.5, 2.5}, ErrConstant},
		{"too short", []float32{1, 0, 0}, nil},
		{"too long", make([]float32, 7), nil},
		{"empty", nil, nil},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := d.Terms(tc.values, 3); got != nil {
				t.Errorf("Terms = %v, want nothing", got)
			}
			_, err := d.Scores(tc.values)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Scores error %v, want %v", err, tc.want)
			}
		})
	}
	if got := d.Terms([]float32{1, 0, 0, 0, 0, 0}, 0); got != nil {
		t.Errorf("Terms(k=0) = %v, want nothing", got)
	}
	var none *Decoder // a bundle without decoder.bin
	if got := none.Terms([]float32{1, 0, 0, 0, 0, 0}, 3); got != nil {
		t.Errorf("nil decoder: Terms = %v, want nothing", got)
	}
}

func TestQuantizeRows(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	const rows, cols = 5, 300
	values := make([]float64, rows*cols)
	for i := range values {
		values[i] = r.NormFloat64() * float64(i/cols+1)
	}
	for c := range cols {
		values[3*cols+c] = 0 // an all-zero row
	}
	q := QuantizeRows(rows, cols, values)
	got := q.Dequantize()
	for r := range rows {
		var most float64
		for _, v := range values[r*cols : (r+1)*cols] {
			most = math.Max(most, math.Abs(v))
		}
		for c := range cols {
			i := r*cols + c
			// Rounding to the nearest step of most/127, in float32.
			if err := math.Abs(float64(got[i]) - values[i]); err > most/254*1.0001+1e-12 {
				t.Fatalf("row %d col %d: %g stored as %g (row max %g)", r, c, values[i], got[i], most)
			}
		}
	}
	if q.Scale[3] != 0 {
		t.Errorf("all-zero row has scale %g", q.Scale[3])
	}
}

func encode(t *testing.T, d *Data) []byte {
	t.Helper()
	var b bytes.Buffer
	n, err := d.WriteTo(&b)
	if err != nil || n != int64(b.Len()) {
		t.Fatalf("WriteTo: %d bytes, %v (buffer %d)", n, err, b.Len())
	}
	return b.Bytes()
}

func TestDataRoundTrip(t *testing.T) {
	t.Parallel()
	want := smallData()
	raw := encode(t, want)
	// Inside a longer stream, ReadData stops at its end.
	r := bytes.NewReader(append(append([]byte(nil), raw...), "after"...))
	got, err := ReadData(r)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if rest, _ := r.ReadByte(); rest != 'a' {
		t.Errorf("ReadData consumed past its data")
	}
	if again := encode(t, got); !bytes.Equal(raw, again) {
		t.Error("re-encoding the read data changed the bytes")
	}
	parsed, err := ParseData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, parsed); diff != "" {
		t.Errorf("ParseData (-want +got):\n%s", diff)
	}
	// ParseData takes a whole file: what follows the data is an error, not ignored.
	if _, err := ParseData(append(append([]byte(nil), raw...), 0)); err == nil || !strings.Contains(err.Error(), "unexpected bytes") {
		t.Errorf("ParseData with a byte more: error %v", err)
	}
}

// resealed recomputes the checksum of a file whose payload was edited, so that the payload's own
// checks are reached.
func resealed(raw []byte) []byte {
	out := append([]byte(nil), raw...)
	p := out[headerSize : len(out)-4]
	binary.LittleEndian.PutUint32(out[len(out)-4:], crc32.ChecksumIEEE(p))
	return out
}

func TestReadDataRejectsCorruptFiles(t *testing.T) {
	t.Parallel()
	raw := encode(t, smallData())
	le := binary.LittleEndian
	testCases := []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		{"empty", func([]byte) []byte { return nil }, "truncated"},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, "bad magic"},
		{"newer version", func(b []byte) []byte { le.PutUint32(b[len(dataMagic):], dataVersion+1); return b }, "format version"},
		{"huge length", func(b []byte) []byte { le.PutUint64(b[len(dataMagic)+4:], 1<<40); return b }, "corrupt header"},
		{"truncated payload", func(b []byte) []byte { return b[:len(b)/2] }, "truncated"},
		{"no checksum", func(b []byte) []byte { return b[:len(b)-4] }, "truncated"},
		{"flipped byte", func(b []byte) []byte { b[headerSize+30] ^= 0x40; return b }, "checksum mismatch"},
		{"sizes that do not add up", func(b []byte) []byte {
			le.PutUint32(b[headerSize+4:], 3) // dim 3 instead of 2
			return resealed(b)
		}, "do not make"},
		{"zero terms", func(b []byte) []byte { le.PutUint32(b[headerSize+8:], 0); return resealed(b) }, "do not make"},
		{"NaN intercept", func(b []byte) []byte {
			le.PutUint32(b[len(b)-8:], math.Float32bits(float32(math.NaN())))
			return resealed(b)
		}, "non-finite"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			edited := tc.edit(append([]byte(nil), raw...))
			_, err := ReadData(bytes.NewReader(edited))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadData: error %v, want one that says %q", err, tc.want)
			}
			_, err = ParseData(edited)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseData: error %v, want one that says %q", err, tc.want)
			}
		})
	}
}

func TestNewRejectsInconsistentData(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name  string
		edit  func(*Data)
		terms int
	}{
		{"fewer names than terms", func(*Data) {}, 2},
		{"short basis", func(d *Data) { d.Basis.Q = d.Basis.Q[:5] }, 3},
		{"weights of another dimension", func(d *Data) { d.Weights = QuantizeRows(3, 3, make([]float64, 9)) }, 3},
		{"short intercept", func(d *Data) { d.Intercept = d.Intercept[:2] }, 3},
		{"infinite centre", func(d *Data) { d.Center[1] = float32(math.Inf(-1)) }, 3},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := smallData()
			tc.edit(d)
			if _, err := New(d, []string{"a", "b", "c"}[:tc.terms]); err == nil {
				t.Error("New accepted it")
			}
			if _, err := d.WriteTo(new(bytes.Buffer)); err == nil && tc.terms == 3 {
				t.Error("WriteTo accepted it")
			}
		})
	}
}

func TestTopK(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		n := 1 + r.IntN(60)
		scores := make([]float32, n)
		for i := range scores {
			scores[i] = float32(r.IntN(8)) // many ties
		}
		k := 1 + r.IntN(12)
		got := topK(scores, k)
		// The reference: a stable sort of all indices by score.
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		for i := 1; i < n; i++ {
			for j := i; j > 0 && scores[want[j]] > scores[want[j-1]]; j-- {
				want[j], want[j-1] = want[j-1], want[j]
			}
		}
		if diff := cmp.Diff(want[:min(k, n)], got); diff != "" {
			t.Fatalf("trial %d: topK(%v, %d) (-want +got):\n%s", trial, scores, k, diff)
		}
	}
}

func TestTermsConcurrent(t *testing.T) {
	t.Parallel()
	d := newSmall(t)
	want := names(d.Terms([]float32{3, 0, 0, 0, 0, 0}, 3))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if got := names(d.Terms([]float32{3, 0, 0, 0, 0, 0}, 3)); !cmp.Equal(got, want) {
					t.Errorf("concurrent Terms %v, want %v", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
