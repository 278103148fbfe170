package articles

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// BenchmarkNew times the statistics of the real corpus's maps, New's whole cost: what the offline
// build pays on top of reading the files (corpus.BenchmarkBuild).
func BenchmarkNew(b *testing.B) {
	ix, m := realIndex(b)
	arts := make([]Article, ix.Len())
	peaks := make([][]int32, ix.Len())
	for i := range arts {
		arts[i], peaks[i] = ix.Article(i), ix.articlePeaks(i)
	}
	for b.Loop() {
		if _, err := New(arts, peaks, m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadIndex(b *testing.B) {
	data := realIndexBytes(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ReadIndex(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRelated(b *testing.B) {
	ix, m := realIndex(b)
	values := bump(m, [3]float64{38, -50, -20}, 8)
	for b.Loop() {
		ix.Related(m, values, 5)
	}
}

// BenchmarkDenseRelated times the brute force over all articles with their dense maps already in
// memory (float32 rows, 1.5 GB, built outside the timed loop): only the Pearson pass and the
// ranking are timed, which is what a dense implementation would pay per query.
func BenchmarkDenseRelated(b *testing.B) {
	ix, m := realIndex(b)
	nm := m.Len()
	rows := make([]float32, ix.Len()*nm)
	// The rows come from the sparse accumulation (a Blur3D per article would take over a minute);
	// a sample is checked against Blur3D below, and TestRelatedMatchesDenseReal checks the rest.
	s := newSparseMap()
	rs := kernelResponses()
	for i := range ix.Len() {
		s.accumulate(ix.articlePeaks(i), rs)
		row := rows[i*nm : (i+1)*nm]
		for p, idx := range m.Voxels {
			if s.stamp[idx] == s.cur {
				row[p] = float32(s.vol[idx] / ix.mean[i])
			}
		}
	}
	for i := 0; i < ix.Len(); i += 1000 {
		want := denseMap(ix, i, m)
		for p, w := range want {
			if math.Abs(float64(rows[i*nm+p])-w) > 1e-5*(1+math.Abs(w)) {
				b.Fatalf("article %d voxel %d: row %g, Blur3D map %g", i, p, rows[i*nm+p], w)
			}
		}
	}
	values := bump(m, [3]float64{38, -50, -20}, 8)
	var got []Match
	for b.Loop() {
		got = denseRelatedRows(ix, rows, nm, values, 5)
	}
	if want := ix.Related(m, values, 5); !slices.Equal(pmids(got), pmids(want)) {
		b.Fatalf("dense top 5 %v, Related %v", pmids(got), pmids(want))
	}
}

// denseRelatedRows is the dense lookup: one pass over each article's map for its sums, then Pearson.
func denseRelatedRows(ix *Index, rows []float32, nm int, values []float32, k int) []Match {
	var mean float64
	for _, v := range values {
		mean += float64(v)
	}
	mean /= float64(nm)
	p := make([]float64, nm)
	var pp float64
	for i, v := range values {
		p[i] = float64(v) - mean
		pp += p[i] * p[i]
	}
	all := make([]Match, ix.Len())
	for i := range all {
		row := rows[i*nm : (i+1)*nm]
		var sa, saa, sap float64
		for v, a := range row {
			x := float64(a)
			sa += x
			saa += x * x
			sap += x * p[v]
		}
		r := sap / math.Sqrt(pp*(saa-sa*sa/float64(nm)))
		all[i] = Match{Article: ix.articles[i], Correlation: r}
	}
	slices.SortFunc(all, byRank)
	return all[:k]
}

// The two blurs, for the record: the lookup's cost is almost all blur.
func BenchmarkBlur3D(b *testing.B) {
	kn := brain.NewKernel(brain.BlurSigma)
	_, m := realIndex(b)
	vol := m.ToVolume(bump(m, [3]float64{0, 0, 0}, 20))
	for b.Loop() {
		kn.Blur3D(vol)
	}
}

func BenchmarkAdjointBlur(b *testing.B) {
	_, m := realIndex(b)
	vol := m.ToVolume(bump(m, [3]float64{0, 0, 0}, 20))
	src, dst := make([]float64, brain.NVoxels), make([]float64, brain.NVoxels)
	rs := kernelResponses()
	for b.Loop() {
		copy(src, vol)
		adjointBlur(src, dst, rs)
	}
}
