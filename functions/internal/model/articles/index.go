package articles

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// Index holds the training articles that have a map, in training-row order (the order given to
// New), with what Pearson correlation against their maps needs: their peak voxels and two
// statistics of their maps.
//
// An article has a map if and only if at least one of its peaks falls in a mask voxel
// (model.md: "articles with no peak in the mask have no map"). Peaks outside the mask but inside
// the volume still belong to the map, because the blur carries part of their mass into the mask.
//
// An Index is immutable once built and safe for concurrent use.
type Index struct {
	articles []Article
	// Article i's peaks are peaks[peakStart[i]:peakStart[i+1]]: C-order volume indices, one
	// entry per reported peak, so that a voxel with two peaks counts twice.
	peakStart []int32
	peaks     []int32
	// mean and norm describe article i's blurred count map over the mask (before the division by
	// its mean, which does not change a correlation): its mean and its centred L2 norm
	// sqrt(Σ (a_v − mean)²).
	mean []float64
	norm []float64
	// The statistics are only valid for the mask they were computed on; Related checks that it
	// is given the same one.
	maskLen  int
	maskHash uint64
}

// Len is the number of articles with a map.
func (ix *Index) Len() int { return len(ix.articles) }

// Article returns article i, 0 ≤ i < Len(), in training-row order.
func (ix *Index) Article(i int) Article { return ix.articles[i] }

func (ix *Index) articlePeaks(i int) []int32 { return ix.peaks[ix.peakStart[i]:ix.peakStart[i+1]] }

// maskFingerprint identifies a mask cheaply enough to be checked on every lookup (FNV-1a over
// the voxel indices).
func maskFingerprint(m *brain.Mask) uint64 {
	h := uint64(14695981039346656037)
	for _, v := range m.Voxels {
		h ^= uint64(uint32(v))
		h *= 1099511628211
	}
	return h
}

// New makes the index of the articles that have a map on mask m. peaks[i] are article i's peaks
// as C-order voxel indices of the prediction grid, one entry per reported peak (a voxel reported
// twice counts twice); the articles keep their order. Articles with no peak in the mask are left
// out. New copies what it keeps, so the caller may reuse arts and peaks.
//
// Package corpus makes arts and peaks from the NeuroQuery corpus offline; at run time the index is
// read from the bundle with ReadIndex.
func New(arts []Article, peaks [][]int32, m *brain.Mask) (*Index, error) {
	if m == nil || m.Len() == 0 {
		return nil, errors.New("articles: new index: no mask")
	}
	if len(arts) != len(peaks) {
		return nil, fmt.Errorf("articles: new index: %d articles but %d peak lists", len(arts), len(peaks))
	}
	ix := &Index{maskLen: m.Len(), maskHash: maskFingerprint(m), peakStart: []int32{0}}
	for i, pk := range peaks {
		a := arts[i]
		// What WriteTo could not write or ReadIndex would refuse is refused here, so that every
		// index round-trips.
		if a.PMID <= 0 {
			return nil, fmt.Errorf("articles: new index: article %d: pmid %d, want a positive integer", i, a.PMID)
		}
		if a.Year < math.MinInt32 || a.Year > math.MaxInt32 {
			return nil, fmt.Errorf("articles: new index: article %d (pmid %d): year %d does not fit in 32 bits", i, a.PMID, a.Year)
		}
		in := false
		for _, v := range pk {
			if v < 0 || v >= brain.NVoxels {
				return nil, fmt.Errorf("articles: new index: article %d (pmid %d): voxel %d outside the volume", i, a.PMID, v)
			}
			in = in || m.Contains(int(v))
		}
		if !in {
			continue // no map (model.md: "articles with no peak in the mask have no map")
		}
		if len(ix.peaks)+len(pk) > math.MaxInt32 {
			return nil, errors.New("articles: new index: too many peaks")
		}
		ix.articles = append(ix.articles, a)
		ix.peaks = append(ix.peaks, pk...)
		ix.peakStart = append(ix.peakStart, int32(len(ix.peaks)))
	}
	ix.computeStats(m)
	return ix, nil
}

// support is the non-zero part of a 1D impulse response: weight w[t] at position lo+t.
type support struct {
	lo int
	w  []float64
}

// responses[axis][p] is the blurred 1D signal of a unit impulse at p along that axis. The blur
// being separable, a peak's blurred 3D map is the outer product of its three responses; and since
// the responses are brain.Kernel's own, with its edge reflection, they agree with Kernel.Blur3D.
type responses [3][]support

var (
	respOnce  sync.Once
	blurResps *responses
)

func kernelResponses() *responses {
	respOnce.Do(func() {
		kn := brain.NewKernel(brain.BlurSigma)
		var rs responses
		for axis, n := range brain.Dims {
			rs[axis] = make([]support, n)
			for p := 0; p < n; p++ {
				r := kn.Response1D(p, n)
				lo, hi := 0, n
				for lo < hi && r[lo] == 0 {
					lo++
				}
				for hi > lo && r[hi-1] == 0 {
					hi--
				}
				rs[axis][p] = support{lo: lo, w: r[lo:hi]}
			}
		}
		blurResps = &rs
	})
	return blurResps
}

// computeStats fills mean and norm of every article's blurred count map over the mask. A dense
// blur per article would cost ~5 ms each (about a minute for the corpus); the outer products of
// the 1D responses touch only the ~9³ voxels around each peak.
func (ix *Index) computeStats(m *brain.Mask) {
	n := ix.Len()
	ix.mean = make([]float64, n)
	ix.norm = make([]float64, n)
	rs := kernelResponses()
	workers := min(runtime.GOMAXPROCS(0), max(n, 1))
	var next atomic.Int64
	const chunk = 64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newSparseMap()
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= n {
					return
				}
				for i := start; i < min(start+chunk, n); i++ {
					s.accumulate(ix.articlePeaks(i), rs)
					ix.mean[i], ix.norm[i] = s.stats(m)
				}
			}
		}()
	}
	wg.Wait()
}

// sparseMap is a blurred count map kept in a dense volume that is only reset where it was touched:
// a voxel holds a value of the current map iff its stamp is the current one.
type sparseMap struct {
	vol     []float64
	stamp   []uint32
	cur     uint32
	touched []int32
}

func newSparseMap() *sparseMap {
	return &sparseMap{vol: make([]float64, brain.NVoxels), stamp: make([]uint32, brain.NVoxels)}
}

// accumulate replaces the map by the blurred count map of peaks.
func (s *sparseMap) accumulate(peaks []int32, rs *responses) {
	s.cur++
	if s.cur == 0 { // wrapped: old stamps could look current
		clear(s.stamp)
		s.cur = 1
	}
	s.touched = s.touched[:0]
	for _, v := range peaks {
		i, j, k := brain.Coords(int(v))
		sx, sy, sz := rs[0][i], rs[1][j], rs[2][k]
		for a, wx := range sx.w {
			for b, wy := range sy.w {
				wxy := wx * wy
				base := brain.Index(sx.lo+a, sy.lo+b, sz.lo)
				vol := s.vol[base : base+len(sz.w)]
				stamp := s.stamp[base : base+len(sz.w)]
				for c, wz := range sz.w {
					if stamp[c] != s.cur {
						stamp[c] = s.cur
						vol[c] = 0
						s.touched = append(s.touched, int32(base+c))
					}
					vol[c] += wxy * wz
				}
			}
		}
	}
}

// stats returns the map's mean and centred norm over the mask. Voxels never touched hold zero, so
// they enter in closed form; the two passes keep the norm free of the cancellation of Σa² − n·mean².
func (s *sparseMap) stats(m *brain.Mask) (mean, norm float64) {
	var sum float64
	in := 0
	for _, v := range s.touched {
		if m.Contains(int(v)) {
			sum += s.vol[v]
			in++
		}
	}
	nm := float64(m.Len())
	mean = sum / nm
	var ss float64
	for _, v := range s.touched {
		if m.Contains(int(v)) {
			d := s.vol[v] - mean
			ss += d * d
		}
	}
	ss += (nm - float64(in)) * mean * mean
	return mean, math.Sqrt(ss)
}

// Peaks returns article i's peaks as C-order voxel indices of the prediction grid, one entry per
// reported peak, in file order. The slice is the index's own: do not modify it.
func (ix *Index) Peaks(i int) []int32 { return ix.articlePeaks(i) }

// Map materialises article i's map in mask order on m, the index's mask (model.md: count image,
// 9 mm FWHM blur, masked, divided by its mean over the mask). Lookups never need it; it is for
// evaluating what is computed from maps, such as decoding an article's own map.
func (ix *Index) Map(m *brain.Mask, i int) []float32 {
	if m == nil || m.Len() != ix.maskLen || maskFingerprint(m) != ix.maskHash {
		panic("articles: Map: the mask is not the one the index was built on")
	}
	s := newSparseMap()
	s.accumulate(ix.articlePeaks(i), kernelResponses())
	out := make([]float32, m.Len())
	for _, v := range s.touched {
		if p := m.Position(int(v)); p >= 0 {
			out[p] = float32(s.vol[v] / ix.mean[i])
		}
	}
	return out
}

// MapStats returns the mean over the mask and the centred norm, sqrt(Σ (a_v − mean)²), of article
// i's blurred count map before its division by the mean: what a correlation with the map needs
// besides its peaks. The offline decoder build uses them to describe every article's map without
// materialising it.
func (ix *Index) MapStats(i int) (mean, norm float64) { return ix.mean[i], ix.norm[i] }
