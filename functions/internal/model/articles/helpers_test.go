package articles

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// The real index is the bundle's (`make model`), read once for all tests and benchmarks that need
// it, with the mask it was built on. The file names repeat package bundle's, which imports this one.
var shared struct {
	once sync.Once
	mask *brain.Mask
	ix   *Index
	data []byte // articles.bin as written by the build
	err  error
}

func realIndex(tb testing.TB) (*Index, *brain.Mask) {
	tb.Helper()
	dir := testenv.BundleDir(tb)
	shared.once.Do(func() {
		shared.mask, shared.err = brain.ReadMaskFile(filepath.Join(dir, "mask.nii.gz"))
		if shared.err != nil {
			return
		}
		if shared.data, shared.err = os.ReadFile(filepath.Join(dir, "articles.bin")); shared.err != nil {
			return
		}
		shared.ix, shared.err = ReadIndex(bytes.NewReader(shared.data))
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.ix, shared.mask
}

// realIndexBytes is the bundle's articles.bin.
func realIndexBytes(tb testing.TB) []byte {
	tb.Helper()
	realIndex(tb)
	return shared.data
}

// newIndex is New that fails the test on an error.
func newIndex(tb testing.TB, arts []Article, peaks [][]int32, m *brain.Mask) *Index {
	tb.Helper()
	ix, err := New(arts, peaks, m)
	if err != nil {
		tb.Fatal(err)
	}
	return ix
}

// mni is the voxel of an MNI position by the corpus's floor rule; the position must be in the
// volume.
func mni(tb testing.TB, x, y, z float64) int32 {
	tb.Helper()
	i, j, k, in := brain.MNIToVoxel(x, y, z)
	if !in {
		tb.Fatalf("(%g, %g, %g) is outside the volume", x, y, z)
	}
	return int32(brain.Index(i, j, k))
}

// titled is an article with title "T<pmid>" and no other metadata, as a bare training row gives.
func titled(pmid int64) Article { return Article{PMID: pmid, Title: fmt.Sprintf("T%d", pmid)} }

// subset is the index of some of ix's articles; each article's statistics do not depend on the
// others, so it is what New would give for those articles alone.
func subset(ix *Index, rows []int) *Index {
	sub := &Index{maskLen: ix.maskLen, maskHash: ix.maskHash, peakStart: []int32{0}}
	for _, i := range rows {
		sub.articles = append(sub.articles, ix.articles[i])
		sub.peaks = append(sub.peaks, ix.articlePeaks(i)...)
		sub.peakStart = append(sub.peakStart, int32(len(sub.peaks)))
		sub.mean = append(sub.mean, ix.mean[i])
		sub.norm = append(sub.norm, ix.norm[i])
	}
	return sub
}

// denseMap is article i's map exactly as model.md defines it: count image, Kernel.Blur3D, masked,
// divided by its mean over the mask.
func denseMap(ix *Index, i int, m *brain.Mask) []float64 {
	vol := make([]float64, brain.NVoxels)
	for _, v := range ix.articlePeaks(i) {
		vol[v]++
	}
	brain.NewKernel(brain.BlurSigma).Blur3D(vol)
	a := m.FromVolume(vol)
	var sum float64
	for _, v := range a {
		sum += v
	}
	mean := sum / float64(len(a))
	for j := range a {
		a[j] /= mean
	}
	return a
}

// denseMaps computes every article's dense map, in parallel because each takes a full 3D blur.
func denseMaps(ix *Index, m *brain.Mask) [][]float64 {
	maps := make([][]float64, ix.Len())
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < ix.Len(); i += workers {
				maps[i] = denseMap(ix, i, m)
			}
		}()
	}
	wg.Wait()
	return maps
}

// pearson is the textbook two-pass Pearson correlation in float64.
func pearson(a, b []float64) float64 {
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma /= float64(len(a))
	mb /= float64(len(b))
	var sab, saa, sbb float64
	for i := range a {
		da, db := a[i]-ma, b[i]-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	return sab / math.Sqrt(saa*sbb)
}

// denseRelatedMaps ranks precomputed dense maps against the prediction the way Related does.
func denseRelatedMaps(ix *Index, maps [][]float64, values []float32, k int) []Match {
	if k <= 0 || slices.Min(values) == slices.Max(values) {
		return nil
	}
	p := make([]float64, len(values))
	for i, v := range values {
		p[i] = float64(v)
	}
	all := make([]Match, ix.Len())
	for i := range all {
		all[i] = Match{Article: ix.Article(i), Correlation: pearson(maps[i], p)}
	}
	slices.SortFunc(all, byRank)
	return all[:min(k, len(all))]
}

// denseRelated is the brute-force reference of Related.
func denseRelated(ix *Index, m *brain.Mask, values []float32, k int) []Match {
	return denseRelatedMaps(ix, denseMaps(ix, m), values, k)
}

// boxMask is a mask of the voxels with i, j, k all in [lo, hi).
func boxMask(tb testing.TB, lo, hi int) *brain.Mask {
	tb.Helper()
	in := make([]bool, brain.NVoxels)
	for i := lo; i < min(hi, brain.NX); i++ {
		for j := lo; j < min(hi, brain.NY); j++ {
			for k := lo; k < min(hi, brain.NZ); k++ {
				in[brain.Index(i, j, k)] = true
			}
		}
	}
	m, err := brain.NewMask(in)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// bump is a Gaussian blob of width sigma mm around an MNI position, in mask order.
func bump(m *brain.Mask, center [3]float64, sigma float64) []float32 {
	out := make([]float32, m.Len())
	for p, idx := range m.Voxels {
		i, j, k := brain.Coords(int(idx))
		x := brain.VoxelToMNI(i, j, k)
		var d2 float64
		for a := range 3 {
			d2 += (x[a] - center[a]) * (x[a] - center[a])
		}
		out[p] = float32(math.Exp(-d2 / (2 * sigma * sigma)))
	}
	return out
}

func pmids(ms []Match) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.PMID
	}
	return out
}
