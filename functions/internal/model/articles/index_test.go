package articles

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

func peakVoxels(ix *Index, pmid int64) []int32 {
	for i, a := range ix.articles {
		if a.PMID == pmid {
			return ix.articlePeaks(i)
		}
	}
	return nil
}

func indexPMIDs(ix *Index) []int64 {
	var out []int64
	for i := range ix.Len() {
		out = append(out, ix.Article(i).PMID)
	}
	return out
}

func TestArticlesWithoutMap(t *testing.T) {
	m := boxMask(t, 10, 20) // MNI x in [−50, −10), y in [−86, −46), z in [−32, 8)
	arts := []Article{titled(1), titled(2), titled(3), titled(4), titled(5)}
	peaks := [][]int32{
		{mni(t, -70, -106, -52)}, // voxel (5,5,5): in the volume, outside the mask
		{mni(t, -30, -66, -12)},  // voxel (15,15,15): in the mask
		nil,                      // no peak at all
		{mni(t, -54, -66, -12)},  // voxel (9,15,15): next to the mask, whose blur reaches it
		{mni(t, -54, -66, -12), mni(t, -50, -66, -12)}, // outside the mask, but with a peak inside: voxel (10,15,15)
	}
	ix := newIndex(t, arts, peaks, m)
	if got, want := indexPMIDs(ix), []int64{2, 5}; !slices.Equal(got, want) {
		t.Errorf("articles with a map: %v, want %v", got, want)
	}
	// Article 5's outside peak still counts: the mask sees part of its blurred mass.
	if got := peakVoxels(ix, 5); len(got) != 2 {
		t.Errorf("article 5 keeps %d peaks, want 2", len(got))
	}
	// The articles keep their metadata and their order.
	if got := ix.Article(1); got != titled(5) {
		t.Errorf("article 1 is %+v, want %+v", got, titled(5))
	}

	// No article with a map is an empty index, not an error, and it still round-trips.
	empty := newIndex(t, arts[:1], peaks[:1], m)
	if empty.Len() != 0 {
		t.Fatalf("%d articles, want none", empty.Len())
	}
	back, err := ReadIndex(bytes.NewReader(encode(t, empty)))
	if err != nil || back.Len() != 0 {
		t.Errorf("empty index read back as %v, %v", back, err)
	}
	if got := empty.Related(m, bump(m, [3]float64{-30, -66, -12}, 8), 3); got != nil {
		t.Errorf("Related on an empty index: %v", got)
	}
}

func TestNewRejects(t *testing.T) {
	m := boxMask(t, 10, 20)
	in := mni(t, -30, -66, -12)
	tests := []struct {
		name  string
		arts  []Article
		peaks [][]int32
		m     *brain.Mask
		want  string
	}{
		{"nil mask", []Article{titled(1)}, [][]int32{{in}}, nil, "no mask"},
		{"fewer peak lists", []Article{titled(1), titled(2)}, [][]int32{{in}}, m, "2 articles but 1 peak lists"},
		{"more peak lists", []Article{titled(1)}, [][]int32{{in}, {in}}, m, "1 articles but 2 peak lists"},
		{"negative voxel", []Article{titled(1)}, [][]int32{{in, -1}}, m, "article 0 (pmid 1): voxel -1 outside the volume"},
		{"voxel past the volume", []Article{titled(1), titled(2)}, [][]int32{{in}, {brain.NVoxels}}, m, "article 1 (pmid 2): voxel 116380 outside the volume"},
		{"zero pmid", []Article{{Title: "x"}}, [][]int32{{in}}, m, "article 0: pmid 0"},
		{"negative pmid, no map", []Article{titled(1), {PMID: -3}}, [][]int32{{in}, nil}, m, "article 1: pmid -3"},
		{"year beyond 32 bits", []Article{{PMID: 1, Year: math.MaxInt32 + 1}}, [][]int32{{in}}, m, "year 2147483648 does not fit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix, err := New(tc.arts, tc.peaks, tc.m)
			if err == nil {
				t.Fatalf("index of %d articles, want error %q", ix.Len(), tc.want)
			}
			if !strings.HasPrefix(err.Error(), "articles: new index: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// The index is immutable: New keeps copies, not the caller's slices.
func TestNewCopiesItsInput(t *testing.T) {
	m := boxMask(t, 10, 20)
	arts := []Article{titled(1), titled(2)}
	peaks := [][]int32{{mni(t, -30, -66, -12), mni(t, -26, -66, -12)}, {mni(t, -30, -62, -12)}}
	ix := newIndex(t, arts, peaks, m)
	before := encode(t, ix)
	arts[0].Title = "changed"
	peaks[0][0] = mni(t, -22, -66, -12)
	peaks[1] = append(peaks[1][:0], 0)
	if !bytes.Equal(encode(t, ix), before) {
		t.Error("changing New's arguments changed the index")
	}
}

// wantStats are the mean and centred norm of article i's blurred count map computed densely.
func wantStats(ix *Index, i int, m *brain.Mask) (mean, norm float64) {
	vol := make([]float64, brain.NVoxels)
	for _, v := range ix.articlePeaks(i) {
		vol[v]++
	}
	brain.NewKernel(brain.BlurSigma).Blur3D(vol)
	a := m.FromVolume(vol)
	for _, v := range a {
		mean += v
	}
	mean /= float64(len(a))
	for _, v := range a {
		norm += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(norm)
}

func closeRel(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b)) }

func TestDuplicatedPeaksCountTwice(t *testing.T) {
	m := boxMask(t, 5, 30)
	v, w := int32(brain.Index(15, 15, 15)), int32(brain.Index(20, 15, 15))
	// Article 1 reports voxel v twice (two tables of the paper), article 2 once.
	ix := newIndex(t, []Article{titled(1), titled(2)}, [][]int32{{v, v, w}, {v, w}}, m)
	if got, want := ix.articlePeaks(0), []int32{v, v, w}; !slices.Equal(got, want) {
		t.Fatalf("peaks %v, want %v", got, want)
	}
	for i := range ix.Len() {
		mean, norm := wantStats(ix, i, m)
		if !closeRel(ix.mean[i], mean, 1e-12) || !closeRel(ix.norm[i], norm, 1e-12) {
			t.Errorf("article %d: mean, norm = %g, %g; dense %g, %g", ix.Article(i).PMID, ix.mean[i], ix.norm[i], mean, norm)
		}
	}
	if closeRel(ix.norm[0]/ix.mean[0], ix.norm[1]/ix.mean[1], 1e-3) {
		t.Error("a doubled peak left the map's shape unchanged")
	}
}

func TestArticleURLAndJSON(t *testing.T) {
	a := Article{PMID: 7, Title: "A title over two lines", Authors: "Doe J, Roe R", Year: 2004, Journal: "NeuroImage", DOI: "10.1/x"}
	if u := a.URL(); u != "https://pubmed.ncbi.nlm.nih.gov/7/" {
		t.Errorf("URL %q", u)
	}
	js, err := json.Marshal(Match{Article: a, Correlation: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pmid":7,"title":"A title over two lines","authors":"Doe J, Roe R","year":2004,"journal":"NeuroImage","doi":"10.1/x","correlation":0.5}`; string(js) != want {
		t.Errorf("JSON %s\nwant %s", js, want)
	}
}

// smallIndex has articles with metadata, duplicated peaks and boundary peaks, on a box mask: 40
// articles, each with up to 12 peaks drawn over and beyond the volume (those outside it dropped, as
// the corpus reader drops them) and two at the origin.
func smallIndex(t *testing.T) (*Index, *brain.Mask) {
	t.Helper()
	m := boxMask(t, 3, 40)
	rng := rand.New(rand.NewPCG(3, 4))
	// Coordinates come with one decimal, as in the corpus.
	oneDecimal := func(v float64) float64 {
		r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 1, 64), 64)
		return r
	}
	origin := mni(t, 0, 0, 0)
	var arts []Article
	var peaks [][]int32
	for a := range 40 {
		id := int64(1000 + 37*a)
		arts = append(arts, titled(id))
		var pk []int32
		for range 1 + rng.IntN(12) {
			x, y, z := oneDecimal(rng.Float64()*200-100), oneDecimal(rng.Float64()*230-130), oneDecimal(rng.Float64()*200-80)
			if i, j, k, in := brain.MNIToVoxel(x, y, z); in {
				pk = append(pk, int32(brain.Index(i, j, k)))
			}
		}
		peaks = append(peaks, append(pk, origin, origin))
	}
	arts[0].DOI, arts[0].Authors, arts[0].Year, arts[0].Journal = "10.1/a", "Åström K, Núñez R", 1999, "Brain"
	arts[1].Authors, arts[1].Year, arts[1].Journal = "Lee C", 2010, "Cortex"
	return newIndex(t, arts, peaks, m), m
}

func encode(t *testing.T, ix *Index) []byte {
	t.Helper()
	var b bytes.Buffer
	n, err := ix.WriteTo(&b)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(b.Len()) {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, b.Len())
	}
	return b.Bytes()
}

func TestSerialisationRoundTrip(t *testing.T) {
	ix, m := smallIndex(t)
	data := encode(t, ix)
	// Two copies back to back: ReadIndex must stop at the end of the first.
	stream := bytes.NewReader(append(append([]byte(nil), data...), data...))
	for copy := range 2 {
		got, err := ReadIndex(stream)
		if err != nil {
			t.Fatalf("copy %d: %v", copy, err)
		}
		if d := cmp.Diff(ix, got, cmp.AllowUnexported(Index{})); d != "" {
			t.Fatalf("copy %d differs (-written +read):\n%s", copy, d)
		}
		if again := encode(t, got); !bytes.Equal(again, data) {
			t.Fatalf("copy %d: re-encoding changed the bytes", copy)
		}
		values := bump(m, [3]float64{0, 0, 0}, 10)
		if d := cmp.Diff(ix.Related(m, values, 5), got.Related(m, values, 5)); d != "" {
			t.Errorf("copy %d: Related differs:\n%s", copy, d)
		}
	}
	if stream.Len() != 0 {
		t.Errorf("%d bytes left unread", stream.Len())
	}
}

func TestSerialisationDeterministic(t *testing.T) {
	a, _ := smallIndex(t)
	b, _ := smallIndex(t)
	if !bytes.Equal(encode(t, a), encode(t, b)) {
		t.Error("two builds of the same input encode differently")
	}
	if !bytes.Equal(encode(t, a), encode(t, a)) {
		t.Error("two encodings of one index differ")
	}
}

// resealed recomputes the checksum of a modified encoding, to reach the payload checks.
func resealed(data []byte) []byte {
	out := append([]byte(nil), data...)
	payload := out[headerSize : len(out)-4]
	binary.LittleEndian.PutUint32(out[len(out)-4:], crc32.ChecksumIEEE(payload))
	return out
}

func TestReadIndexCorrupt(t *testing.T) {
	ix, _ := smallIndex(t)
	data := encode(t, ix)
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), data...)
		f(b)
		return b
	}
	payload := headerSize
	n := ix.Len()
	peaksAt := payload + 20 + n*(8+4+8+8+4)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "header: truncated"},
		{"short header", data[:10], "header: truncated"},
		{"bad magic", mutate(func(b []byte) { b[0] = 'X' }), "bad magic"},
		{"future version", mutate(func(b []byte) { b[8] = 2 }), "format version 2"},
		{"absurd length", mutate(func(b []byte) { b[19] = 0x7f }), "corrupt header"},
		{"truncated payload", data[:len(data)/2], "truncated"},
		{"missing checksum", data[:len(data)-2], "checksum: truncated"},
		{"flipped bit", mutate(func(b []byte) { b[len(b)/2] ^= 4 }), "checksum mismatch"},
		{"article count too large", resealed(mutate(func(b []byte) { b[payload+12+3] = 0x10 })), "do not fit"},
		{"peak outside volume", resealed(mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[peaksAt:], brain.NVoxels) })), "outside the volume"},
		{"bad statistics", resealed(mutate(func(b []byte) {
			binary.LittleEndian.PutUint64(b[payload+20+n*12:], math.Float64bits(-1))
		})), "bad map statistics"},
		{"text length overrun", resealed(mutate(func(b []byte) { copy(b[peaksAt+4*len(ix.peaks):], []byte{0xff, 0xff, 0xff, 0x7f}) })), "text truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadIndex(bytes.NewReader(tc.data))
			if err == nil {
				t.Fatalf("read %d articles, want error %q", got.Len(), tc.want)
			}
			if !strings.HasPrefix(err.Error(), "articles: read index: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	// No prefix of a valid index may read as one, or panic.
	for l := range len(data) {
		if _, err := ReadIndex(bytes.NewReader(data[:l])); err == nil {
			t.Fatalf("prefix of %d of %d bytes read without error", l, len(data))
		}
	}
}

func TestAdjointBlurIsBlur3D(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	vol := make([]float64, brain.NVoxels)
	for i := range vol {
		vol[i] = rng.NormFloat64()
	}
	// Zero lines exercise the shortcut for lines outside the brain.
	clear(vol[:brain.NVoxels/3])
	want := slices.Clone(vol)
	brain.NewKernel(brain.BlurSigma).Blur3D(want)
	got := adjointBlur(slices.Clone(vol), make([]float64, brain.NVoxels), kernelResponses())
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("voxel %d: %g, Blur3D %g", i, got[i], want[i])
		}
	}
}

func TestRelatedMatchesDenseSmall(t *testing.T) {
	ix, m := smallIndex(t)
	rng := rand.New(rand.NewPCG(7, 8))
	noise := make([]float32, m.Len())
	for i := range noise {
		noise[i] = float32(rng.NormFloat64())
	}
	for name, values := range map[string][]float32{
		"bump":  bump(m, [3]float64{10, -20, 0}, 12),
		"noise": noise,
	} {
		t.Run(name, func(t *testing.T) {
			got := ix.Related(m, values, ix.Len())
			want := denseRelated(ix, m, values, ix.Len())
			compareMatches(t, got, want, 1e-12)
		})
	}
}

func compareMatches(t *testing.T, got, want []Match, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d matches, dense %d", len(got), len(want))
	}
	if !slices.Equal(pmids(got), pmids(want)) {
		t.Errorf("ranking %v\n   dense %v", pmids(got), pmids(want))
	}
	for i := range got {
		if got[i].Article != want[i].Article || math.Abs(got[i].Correlation-want[i].Correlation) > tol {
			t.Errorf("rank %d: %d r=%.15f, dense %d r=%.15f", i, got[i].PMID, got[i].Correlation, want[i].PMID, want[i].Correlation)
		}
	}
}

func TestRelatedEdgeCases(t *testing.T) {
	ix, m := smallIndex(t)
	values := bump(m, [3]float64{0, 0, 0}, 10)
	constant := make([]float32, m.Len())
	for i := range constant {
		constant[i] = 3.25
	}
	withNaN := slices.Clone(values)
	withNaN[7] = float32(math.NaN())
	withInf := slices.Clone(values)
	withInf[7] = float32(math.Inf(1))
	tests := []struct {
		name   string
		values []float32
		k      int
		want   int
	}{
		{"zeros", make([]float32, m.Len()), 5, 0},
		{"constant", constant, 5, 0},
		{"NaN", withNaN, 5, 0},
		{"infinity", withInf, 5, 0},
		{"k zero", values, 0, 0},
		{"k negative", values, -1, 0},
		{"k one", values, 1, 1},
		{"k beyond the articles", values, ix.Len() + 10, ix.Len()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ix.Related(m, tc.values, tc.k)
			if len(got) != tc.want || (tc.want == 0 && got != nil) {
				t.Errorf("%d matches (nil: %t), want %d", len(got), got == nil, tc.want)
			}
			for i := 1; i < len(got); i++ {
				if better(got[i], got[i-1]) {
					t.Errorf("rank %d before rank %d", i-1, i)
				}
			}
		})
	}

	panics := []struct {
		name   string
		m      *brain.Mask
		values []float32
	}{
		{"other mask", boxMask(t, 4, 41), values},
		{"nil mask", nil, values},
		{"short values", m, values[1:]},
	}
	for _, tc := range panics {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "articles: Related: ") {
					t.Errorf("panic %v, want an articles: Related: message", r)
				}
			}()
			ix.Related(tc.m, tc.values, 3)
		})
	}
}

func TestRelatedTiesByPMID(t *testing.T) {
	m := boxMask(t, 5, 35)
	// Identical peaks give identical maps and correlations; training order puts larger PMIDs first.
	arts := []Article{titled(60)}
	peaks := [][]int32{{mni(t, 30, 10, 40)}}
	for _, id := range []int64{50, 40, 30, 20, 10} {
		arts = append(arts, titled(id))
		peaks = append(peaks, []int32{mni(t, -30, -66, -12), mni(t, -10, -46, 0)})
	}
	ix := newIndex(t, arts, peaks, m)
	values := bump(m, [3]float64{-20, -56, -6}, 10)
	got := ix.Related(m, values, 4)
	if want := []int64{10, 20, 30, 40}; !slices.Equal(pmids(got), want) {
		t.Errorf("top 4 %v, want %v", pmids(got), want)
	}
	for _, g := range got[1:] {
		if g.Correlation != got[0].Correlation {
			t.Errorf("pmid %d: r=%v, want the tie %v", g.PMID, g.Correlation, got[0].Correlation)
		}
	}
	all := ix.Related(m, values, 10)
	if len(all) != 6 || all[5].PMID != 60 {
		t.Errorf("all matches %v, want the five ties then 60", pmids(all))
	}
}

func TestRelatedConcurrent(t *testing.T) {
	ix, m := smallIndex(t)
	rng := rand.New(rand.NewPCG(9, 10))
	var inputs [][]float32
	var want [][]Match
	for range 8 {
		v := bump(m, [3]float64{rng.Float64()*100 - 50, rng.Float64()*100 - 70, rng.Float64()*60 - 20}, 8)
		inputs = append(inputs, v)
		want = append(want, ix.Related(m, v, 5))
	}
	var wg sync.WaitGroup
	got := make([][]Match, len(inputs))
	for g := range inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				got[g] = ix.Related(m, inputs[g], 5)
			}
		}()
	}
	wg.Wait()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("concurrent results differ (-sequential +concurrent):\n%s", d)
	}
}
