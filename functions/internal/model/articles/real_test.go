package articles

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// The real index is the bundle's (see realIndex); package corpus checks that its ingest makes
// exactly these bytes from the shared data.

// Figures of the shared data computed independently (a Python script reading the same files with
// the floor rule and the mask): 13,459 training articles, of which 18635394 and 21687724 have no
// peak in the mask, and 468,529 in-volume peaks for the others; 8,680 of those are in Neurosynth
// (which covers about two thirds of the training articles).
func TestRealIndex(t *testing.T) {
	ix, m := realIndex(t)
	if ix.Len() != 13457 || len(ix.peaks) != 468529 {
		t.Errorf("%d articles, %d peaks; want 13457, 468529", ix.Len(), len(ix.peaks))
	}
	if m.Len() != 28542 {
		t.Fatalf("mask of %d voxels, want 28542", m.Len())
	}
	for i := range ix.Len() {
		if p := ix.Article(i).PMID; p == 18635394 || p == 21687724 {
			t.Errorf("article %d has no peak in the mask but is indexed", p)
		}
	}
	want := Article{
		PMID:    9405692,
		Title:   "Role of left inferior prefrontal cortex in retrieval of semantic knowledge: A reevaluation",
		Authors: "Thompson-Schill SL, D'Esposito M, Aguirre GK, Farah MJ",
		Year:    1997,
		Journal: "Proceedings of the National Academy of Sciences of the United States of America",
	}
	if d := cmp.Diff(want, ix.Article(0)); d != "" {
		t.Errorf("first article (-want +got):\n%s", d)
	}
	withAuthors := 0
	for i := range ix.Len() {
		if ix.Article(i).Authors != "" {
			withAuthors++
		}
	}
	if withAuthors != 8680 {
		t.Errorf("%d articles have Neurosynth authors, want 8680", withAuthors)
	}
}

func TestRealRoundTrip(t *testing.T) {
	ix, _ := realIndex(t)
	data := realIndexBytes(t)
	var b bytes.Buffer
	if _, err := ix.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, b.Bytes()) {
		t.Fatal("re-encoding the bundle's index changed the bytes")
	}
	got, err := ReadIndex(&b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(ix, got, cmp.AllowUnexported(Index{})); d != "" {
		t.Fatalf("round trip differs:\n%s", d)
	}
	var again bytes.Buffer
	got.WriteTo(&again)
	if !bytes.Equal(data, again.Bytes()) {
		t.Error("re-encoding the read index changed the bytes")
	}
}

// New, given the bundle's articles and peaks, recomputes the bundle's statistics to the bit: the
// statistics do not depend on the goroutines' schedule, and the index New makes is the one served.
func TestRealNewIsTheBundle(t *testing.T) {
	ix, m := realIndex(t)
	arts := make([]Article, ix.Len())
	peaks := make([][]int32, ix.Len())
	for i := range arts {
		arts[i], peaks[i] = ix.Article(i), ix.articlePeaks(i)
	}
	again := newIndex(t, arts, peaks, m)
	if !bytes.Equal(encode(t, again), realIndexBytes(t)) {
		t.Error("New on the bundle's articles and peaks does not give the bundle's index")
	}
}

// TestRelatedMatchesDenseReal checks the sparse lookup against the brute force of model.md on ~300
// real articles: the statistics of each map, the top 10 and every correlation.
func TestRelatedMatchesDenseReal(t *testing.T) {
	full, m := realIndex(t)
	var rows []int
	for i := 0; i < full.Len(); i += 45 {
		rows = append(rows, i)
	}
	ix := subset(full, rows)
	maps := denseMaps(ix, m)

	// Statistics: the dense map is divided by its mean, so its mean is 1 and its centred norm is
	// the index's norm over the index's mean.
	for i, a := range maps {
		var sum float64
		for _, v := range a {
			sum += v
		}
		mean := sum / float64(len(a))
		var ss float64
		for _, v := range a {
			ss += (v - mean) * (v - mean)
		}
		if got := ix.norm[i] / ix.mean[i]; math.Abs(got-math.Sqrt(ss)) > 1e-10*math.Sqrt(ss) {
			t.Errorf("article %d: norm/mean %.15g, dense %.15g", ix.Article(i).PMID, got, math.Sqrt(ss))
		}
	}

	rng := rand.New(rand.NewPCG(42, 2026))
	noise := make([]float32, m.Len())
	for i := range noise {
		noise[i] = float32(rng.NormFloat64())
	}
	negative := bump(m, [3]float64{-40, 20, 10}, 15)
	for i := range negative {
		negative[i] = -negative[i]
	}
	tests := []struct {
		name   string
		values []float32
	}{
		{"right fusiform bump", bump(m, [3]float64{38, -50, -20}, 8)},
		{"frontal bump", bump(m, [3]float64{30, 2, 52}, 8)},
		{"negative bump", negative},
		{"noise", noise},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ix.Related(m, tc.values, ix.Len())
			want := denseRelatedMaps(ix, maps, tc.values, ix.Len())
			if len(got) != ix.Len() || len(want) != ix.Len() {
				t.Fatalf("%d and %d matches, want %d", len(got), len(want), ix.Len())
			}
			if !slices.Equal(pmids(got[:10]), pmids(want[:10])) {
				t.Errorf("top 10 %v\n   dense %v", pmids(got[:10]), pmids(want[:10]))
			}
			// All correlations, not only the top: a wrong statistic would show anywhere.
			byPMID := map[int64]float64{}
			for _, w := range want {
				byPMID[w.PMID] = w.Correlation
			}
			worst := 0.0
			for _, g := range got {
				worst = max(worst, math.Abs(g.Correlation-byPMID[g.PMID]))
			}
			if worst > 1e-9 {
				t.Errorf("correlations differ from dense by up to %g", worst)
			}
			if top := ix.Related(m, tc.values, 10); !slices.Equal(pmids(top), pmids(got[:10])) {
				t.Errorf("top 10 with k=10 %v, with k=all %v", pmids(top), pmids(got[:10]))
			}
			t.Logf("top r=%.4f (pmid %d); max |r − dense r| = %.2g", got[0].Correlation, got[0].PMID, worst)
		})
	}
}

// On the full corpus: a bump at the fusiform face area must find articles whose peaks are there.
func TestRealRelatedFull(t *testing.T) {
	ix, m := realIndex(t)
	got := ix.Related(m, bump(m, [3]float64{38, -50, -20}, 8), 5)
	if len(got) != 5 {
		t.Fatalf("%d matches, want 5", len(got))
	}
	for r, g := range got {
		if !(g.Correlation > 0 && g.Correlation <= 1) {
			t.Errorf("rank %d: r=%v", r, g.Correlation)
		}
		if r > 0 && better(g, got[r-1]) {
			t.Errorf("rank %d before rank %d", r-1, r)
		}
		i := slices.IndexFunc(ix.articles, func(a Article) bool { return a.PMID == g.PMID })
		near := false
		for _, v := range ix.articlePeaks(i) {
			x, y, z := brain.Coords(int(v))
			p := brain.VoxelToMNI(x, y, z)
			near = near || math.Hypot(math.Hypot(p[0]-38, p[1]+50), p[2]+20) < 12
		}
		if !near {
			t.Errorf("rank %d (pmid %d) has no peak within 12 mm of (38, −50, −20)", r, g.PMID)
		}
	}
}
