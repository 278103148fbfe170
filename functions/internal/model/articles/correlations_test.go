package articles

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Correlations is Related's pass over every article, unranked: the same numbers, in index order,
// and nil where Related gives nothing.
func TestCorrelationsAreRelated(t *testing.T) {
	ix, m := smallIndex(t)
	rng := rand.New(rand.NewPCG(9, 10))
	noise := make([]float32, m.Len())
	for i := range noise {
		noise[i] = float32(rng.NormFloat64())
	}
	for name, values := range map[string][]float32{"bump": bump(m, [3]float64{10, -20, 0}, 12), "noise": noise} {
		t.Run(name, func(t *testing.T) {
			buf := make([]float64, 3) // too short: Correlations grows it
			got := ix.Correlations(m, values, buf)
			if len(got) != ix.Len() {
				t.Fatalf("%d correlations for %d articles", len(got), ix.Len())
			}
			maps := denseMaps(ix, m)
			p := make([]float64, len(values))
			for i, v := range values {
				p[i] = float64(v)
			}
			for i, r := range got {
				if want := pearson(maps[i], p); math.Abs(r-want) > 1e-12 {
					t.Errorf("article %d: r=%.15f, dense %.15f", ix.Article(i).PMID, r, want)
				}
			}
			for _, match := range ix.Related(m, values, ix.Len()) {
				i := slices.IndexFunc(ix.articles, func(a Article) bool { return a.PMID == match.PMID })
				if got[i] != match.Correlation {
					t.Errorf("article %d: Correlations %v, Related %v", match.PMID, got[i], match.Correlation)
				}
			}
		})
	}
	constant := make([]float32, m.Len())
	if got := ix.Correlations(m, constant, nil); got != nil {
		t.Errorf("a constant map has correlations %v", got[:3])
	}
	withNaN := bump(m, [3]float64{0, 0, 0}, 10)
	withNaN[5] = float32(math.NaN())
	if got := ix.Correlations(m, withNaN, nil); got != nil {
		t.Error("a map with NaN has correlations")
	}
}

// Map is the article's map as model.md defines it (count image, Blur3D, masked, over its mean).
func TestMapIsTheDenseMap(t *testing.T) {
	ix, m := smallIndex(t)
	for i := range ix.Len() {
		got, want := ix.Map(m, i), denseMap(ix, i, m)
		for p := range want {
			if math.Abs(float64(got[p])-want[p]) > 1e-6*(1+math.Abs(want[p])) {
				t.Fatalf("article %d voxel %d: %g, dense %g", ix.Article(i).PMID, p, got[p], want[p])
			}
		}
		mean, norm := ix.MapStats(i)
		if mean != ix.mean[i] || norm != ix.norm[i] {
			t.Errorf("article %d: MapStats %g %g, index %g %g", i, mean, norm, ix.mean[i], ix.norm[i])
		}
	}
}

// An article's own map finds that article first among the related studies (correlation 1), but
// for articles whose maps are the same as its own (the same peaks reported twice in the corpus),
// which tie at 1 and are ordered by PMID.
func TestRealOwnMapFindsItsArticle(t *testing.T) {
	ix, m := realIndex(t)
	rng := rand.New(rand.NewPCG(11, 12))
	for range 200 {
		i := rng.IntN(ix.Len())
		got := ix.Related(m, ix.Map(m, i), 3)
		self := ix.Article(i).PMID
		if len(got) == 0 || math.Abs(got[0].Correlation-1) > 1e-6 {
			t.Fatalf("article %d: its own map's best match %v, want correlation 1", self, got)
		}
		if got[0].PMID == self {
			continue
		}
		// Only an identical map may come first.
		j := slices.IndexFunc(got, func(x Match) bool { return x.PMID == self })
		if j < 0 || math.Abs(got[j].Correlation-got[0].Correlation) > 1e-6 {
			t.Errorf("article %d: its own map ranks %v first, itself not among the ties", self, got)
		}
	}
}
