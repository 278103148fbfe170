package articles

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// Related returns the k articles whose maps correlate best (Pearson, over the mask) with a
// prediction given in mask order on m, best first; equal correlations are ordered by PMID. It
// returns nil when no correlation is defined: a constant prediction (all zeros, say), one with a
// NaN or infinite value, or k ≤ 0.
//
// m must be the mask the index was built on, and values must have one value per mask voxel: a
// mismatch is a wiring error of the program and panics.
//
// No article map is materialised. With p_c the centred prediction spread over the volume, B the
// (linear) blur and c_i article i's count image, ⟨p_c, B c_i⟩ = ⟨Bᵀ p_c, c_i⟩, and the latter is a
// sum of Bᵀ p_c over the article's peaks. So one blur of the prediction serves every article, and
// each correlation costs one addition per peak. Bᵀ is applied with brain.Kernel's own 1D responses
// rather than assumed equal to B; for this symmetric kernel the two coincide (see the tests).
func (ix *Index) Related(m *brain.Mask, values []float32, k int) []Match {
	ix.checkInput("Related", m, values)
	if k <= 0 {
		return nil
	}
	top := topK{ix: ix, k: k}
	if !ix.correlate(m, values, top.offer) {
		return nil
	}
	return top.matches()
}

// Correlations returns the Pearson correlation of the prediction with every article's map, in
// index order (Article(i)'s at i), the pass Related ranks; an article whose map is constant over
// the mask gets 0. It reuses dst when it has room. It returns nil, as Related does, when no
// correlation is defined (a constant prediction, a NaN or infinite value), and panics on the same
// wiring errors.
func (ix *Index) Correlations(m *brain.Mask, values []float32, dst []float64) []float64 {
	ix.checkInput("Correlations", m, values)
	dst = slices.Grow(dst[:0], ix.Len())[:ix.Len()]
	clear(dst)
	if !ix.correlate(m, values, func(i int, r float64) { dst[i] = r }) {
		return nil
	}
	return dst
}

func (ix *Index) checkInput(fn string, m *brain.Mask, values []float32) {
	if m == nil || m.Len() != ix.maskLen || maskFingerprint(m) != ix.maskHash {
		panic("articles: " + fn + ": the mask is not the one the index was built on")
	}
	if len(values) != m.Len() {
		panic(fmt.Sprintf("articles: %s: %d values for a mask of %d voxels", fn, len(values), m.Len()))
	}
}

// correlate calls emit with the correlation of every article whose map is not constant, in index
// order, and reports whether the prediction has correlations at all.
func (ix *Index) correlate(m *brain.Mask, values []float32, emit func(i int, r float64)) bool {
	if ix.Len() == 0 {
		return false
	}
	lo, hi := values[0], values[0]
	var sum float64
	for _, v := range values {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
		lo, hi = min(lo, v), max(hi, v)
		sum += float64(v)
	}
	// Testing constancy exactly: after subtracting a rounded mean, a constant map would leave
	// tiny residues whose "correlations" are noise.
	if lo == hi {
		return false
	}
	n := float64(len(values))
	mean := sum / n

	s := scratchPool.Get().(*blurScratch)
	defer scratchPool.Put(s)
	clear(s.a)
	var ss, residue float64
	for p, idx := range m.Voxels {
		d := float64(values[p]) - mean
		s.a[idx] = d
		ss += d * d
		residue += d
	}
	pnorm := math.Sqrt(ss)
	if pnorm == 0 {
		return false
	}
	blurred := adjointBlur(s.a, s.b, kernelResponses())

	for i := range ix.articles {
		if ix.norm[i] == 0 {
			continue // a map constant over the mask has no correlation
		}
		var dot float64
		for _, v := range ix.articlePeaks(i) {
			dot += blurred[v]
		}
		// ⟨p_c, a⟩ = ⟨p_c, a − ā⟩ only if Σ p_c is 0, which rounding of the mean breaks slightly.
		dot -= ix.mean[i] * residue
		emit(i, dot/(pnorm*ix.norm[i]))
	}
	return true
}

type blurScratch struct{ a, b []float64 }

var scratchPool = sync.Pool{New: func() any {
	return &blurScratch{a: make([]float64, brain.NVoxels), b: make([]float64, brain.NVoxels)}
}}

// adjointBlur applies the transpose of the separable blur to the C-order volume src, using dst as
// well; src is overwritten and the result is returned (it is dst). Row-wise updates along the two
// outer axes keep memory access contiguous, which makes this several times faster than
// Kernel.Blur3D's line-by-line loop; the lookup's whole budget is this blur.
func adjointBlur(src, dst []float64, rs *responses) []float64 {
	const nz, nyz = brain.NZ, brain.NY * brain.NZ
	// Along k: the lines of the volume, most of them outside the brain and zero.
	for base := 0; base < brain.NVoxels; base += nz {
		in, out := src[base:base+nz], dst[base:base+nz]
		if allZero(in) {
			clear(out)
			continue
		}
		for p, sp := range rs[2] {
			var s float64
			for t, w := range sp.w {
				s += w * in[sp.lo+t]
			}
			out[p] = s
		}
	}
	// Along j, then i: weighted sums of whole rows, then of whole slabs.
	for i := 0; i < brain.NX; i++ {
		slab := dst[i*nyz : (i+1)*nyz]
		for p, sp := range rs[1] {
			out := src[i*nyz+p*nz : i*nyz+(p+1)*nz]
			clear(out)
			for t, w := range sp.w {
				axpy(w, slab[(sp.lo+t)*nz:(sp.lo+t+1)*nz], out)
			}
		}
	}
	for p, sp := range rs[0] {
		out := dst[p*nyz : (p+1)*nyz]
		clear(out)
		for t, w := range sp.w {
			axpy(w, src[(sp.lo+t)*nyz:(sp.lo+t+1)*nyz], out)
		}
	}
	return dst
}

func allZero(x []float64) bool {
	for _, v := range x {
		if v != 0 {
			return false
		}
	}
	return true
}

func axpy(a float64, x, y []float64) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}

// topK keeps the k best correlations seen, as a heap whose root is the worst kept.
type topK struct {
	ix   *Index
	k    int
	heap []Match
}

// better orders matches: higher correlation first, then lower PMID.
// byRank orders matches best first, for slices.SortFunc.
func byRank(a, b Match) int {
	switch {
	case better(a, b):
		return -1
	case better(b, a):
		return 1
	}
	return 0
}

func better(a, b Match) bool {
	if a.Correlation != b.Correlation {
		return a.Correlation > b.Correlation
	}
	return a.PMID < b.PMID
}

func (t *topK) offer(i int, r float64) {
	if len(t.heap) == t.k {
		root := t.heap[0]
		if r < root.Correlation || (r == root.Correlation && t.ix.articles[i].PMID > root.PMID) {
			return
		}
		t.heap[0] = Match{Article: t.ix.articles[i], Correlation: r}
		t.down(0)
		return
	}
	t.heap = append(t.heap, Match{Article: t.ix.articles[i], Correlation: r})
	for c := len(t.heap) - 1; c > 0; {
		p := (c - 1) / 2
		if !better(t.heap[p], t.heap[c]) {
			break
		}
		t.heap[p], t.heap[c] = t.heap[c], t.heap[p]
		c = p
	}
}

func (t *topK) down(p int) {
	for {
		worst, l, r := p, 2*p+1, 2*p+2
		if l < len(t.heap) && better(t.heap[worst], t.heap[l]) {
			worst = l
		}
		if r < len(t.heap) && better(t.heap[worst], t.heap[r]) {
			worst = r
		}
		if worst == p {
			return
		}
		t.heap[p], t.heap[worst] = t.heap[worst], t.heap[p]
		p = worst
	}
}

func (t *topK) matches() []Match {
	if len(t.heap) == 0 {
		return nil
	}
	slices.SortFunc(t.heap, byRank)
	return t.heap
}
