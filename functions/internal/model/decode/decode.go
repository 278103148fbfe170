// Package decode ranks the model's terms by how related they are to a brain map: brain → text,
// the reverse of a prediction. Give it any map on the 4 mm grid in mask order (a prediction, an
// uploaded statistical map, an article's peak map) and it returns the terms an article reporting
// such a map would most likely be about.
//
// The decoder is linear. A map u, centred and scaled to unit norm, is first described by its
// dot products with Dim basis maps: the model's own term-map directions, the columns of
// diag(residual_var)^(−1/2)·coef centred over the mask (model.md, "A term's predicted map"), so
// that the description is what the text → brain model can express. A ridge regression, trained
// offline on every article of the corpus (package modelbuild), maps that description to each
// term's score: its estimated chance of being among the article's key terms, the 20 features of
// highest TF-IDF in its abstract, title and keywords. The regression weighs how common a term is
// and where its articles report peaks at once, across the whole corpus: on held-out articles' maps
// its top 10 terms have a precision of 0.228 against their key terms, where a vote of the 200
// articles whose maps correlate best gives 0.205 and the same 10 frequent terms every time 0.155
// (functions/cmd/decodeeval, 300 articles).
//
// The numbers are stored as int8 with one float32 scale per row (decoder.bin is ~8 MB instead of
// ~32 MB, which matters for a cold start that downloads the bundle); the ranking they give differs
// from the float64 one by less than the noise of the evaluation.
package decode

import (
	"errors"
	"fmt"
	"math"
)

// KeyTerms is how many of an article's features, by TF-IDF, the decoder is trained to predict.
const KeyTerms = 20

// Term is a term related to a map.
type Term struct {
	Term string `json:"term"`
	// Score is the estimated chance that an article with this map has the term among its key terms.
	// It orders the terms of one map; being a linear estimate, it is not a calibrated probability:
	// it goes beyond 1 for a map more typical of a term than any article's (the term's own
	// predicted map, say) and can be slightly negative.
	Score float64 `json:"score"`
}

// Errors for maps that have nothing to decode.
var (
	ErrNotFinite = errors.New("decode: the map has NaN or infinite values")
	ErrConstant  = errors.New("decode: the map is constant over the brain mask, so it has no pattern to decode")
)

// Decoder ranks terms for maps. It is immutable and safe for concurrent use.
//
// It computes with the int8 numbers as stored, each row's scale applied to its dot product:
// converting them to float32 once would take 4× the memory (32 MB) and 20 ms more of every
// bundle load, and make the decode slower, not faster (see dot).
type Decoder struct {
	maskLen, dim int
	terms        []string
	// basis is dim rows of maskLen values; center (dim) is the training articles' mean description;
	// weights is one row of dim values per term, and intercept the terms' base rates.
	basis, weights    Int8Rows
	center, intercept []float32
}

// New makes the decoder of data for a vocabulary's features (terms[j] is feature j).
func New(data *Data, terms []string) (*Decoder, error) {
	if err := data.check(); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(terms) != data.NFeatures {
		return nil, fmt.Errorf("decode: the decoder has %d terms, the vocabulary %d features", data.NFeatures, len(terms))
	}
	return &Decoder{maskLen: data.MaskLen, dim: data.Dim, terms: terms,
		basis: data.Basis, center: data.Center, weights: data.Weights, intercept: data.Intercept}, nil
}

// MaskLen is the number of values a map must have.
func (d *Decoder) MaskLen() int { return d.maskLen }

// Terms returns the k terms most related to the map values (mask order), best first; equal
// scores are in feature order. It returns nil when there is nothing to decode: a map of the wrong
// length, with a NaN or infinite value or constant over the mask (Scores says which), k ≤ 0, or a
// nil decoder (a bundle built without one).
func (d *Decoder) Terms(values []float32, k int) []Term {
	if d == nil || k <= 0 {
		return nil
	}
	scores, err := d.Scores(values)
	if err != nil {
		return nil
	}
	top := topK(scores, k)
	out := make([]Term, len(top))
	for i, j := range top {
		out[i] = Term{Term: d.terms[j], Score: float64(scores[j])}
	}
	return out
}

// Scores returns every term's score for the map values, in feature order. A map of the wrong
// length is an error, as are one with a NaN or infinite value (ErrNotFinite) and one constant
// over the mask (ErrConstant).
func (d *Decoder) Scores(values []float32) ([]float32, error) {
	if len(values) != d.maskLen {
		return nil, fmt.Errorf("decode: a map of %d values, want one per mask voxel (%d)", len(values), d.maskLen)
	}
	u, err := standardize(values)
	if err != nil {
		return nil, err
	}
	desc := d.describe(u)
	for c := range desc {
		desc[c] -= d.center[c]
	}
	scores := make([]float32, len(d.terms))
	for j := range scores {
		scores[j] = d.intercept[j] + d.weights.Scale[j]*dot(d.weights.Q[j*d.dim:(j+1)*d.dim], desc)
	}
	return scores, nil
}

// Describe returns the map's description (dot products with the basis) before centring: what the
// ridge regression reads. modelbuild computes the training articles' descriptions another way
// and checks it against this one.
func (d *Decoder) Describe(values []float32) ([]float32, error) {
	if len(values) != d.maskLen {
		return nil, fmt.Errorf("decode: a map of %d values, want %d", len(values), d.maskLen)
	}
	u, err := standardize(values)
	if err != nil {
		return nil, err
	}
	return d.describe(u), nil
}

// describe is the description of a standardised map.
func (d *Decoder) describe(u []float32) []float32 {
	desc := make([]float32, d.dim)
	for c := range desc {
		desc[c] = d.basis.Scale[c] * dot(d.basis.Q[c*d.maskLen:(c+1)*d.maskLen], u)
	}
	return desc
}

// standardize returns the map centred over the mask and scaled to unit norm, so that a
// description does not depend on the map's offset or scale (z-maps, t-maps and peak densities
// all decode alike).
func standardize(values []float32) ([]float32, error) {
	lo, hi := values[0], values[0]
	var sum float64
	for _, v := range values {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, ErrNotFinite
		}
		lo, hi = min(lo, v), max(hi, v)
		sum += float64(v)
	}
	// Tested exactly, as articles.Related does: a constant map minus its rounded mean would leave
	// residues whose direction is noise.
	if lo == hi {
		return nil, ErrConstant
	}
	mean := sum / float64(len(values))
	var ss float64
	for _, v := range values {
		x := float64(v) - mean
		ss += x * x
	}
	norm := math.Sqrt(ss)
	if norm == 0 || math.IsInf(norm, 0) {
		return nil, ErrConstant
	}
	u := make([]float32, len(values))
	for i, v := range values {
		u[i] = float32((float64(v) - mean) / norm)
	}
	return u, nil
}

// dot is the dot product of an int8 row (as bytes) with float32 values, in four independent sums, which lets
// the CPU overlap the additions (the decode is these products; the compiler does not vectorise
// them). The int8 → float32 conversion is a table look-up: faster than the conversion
// instruction, and than float32 rows, which take 4× the memory bandwidth (measured: 2.8, 4.3 and
// 3.3 ms for the basis).
func dot(a []byte, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += int8Value[a[i]] * b[i]
		s1 += int8Value[a[i+1]] * b[i+1]
		s2 += int8Value[a[i+2]] * b[i+2]
		s3 += int8Value[a[i+3]] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += int8Value[a[i]] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// int8Value[b] is the int8 of byte b as a float32.
var int8Value = func() (t [256]float32) {
	for b := range t {
		t[b] = float32(int8(uint8(b)))
	}
	return t
}()

// topK returns the indices of the k largest scores, best first, ties in index order.
func topK(scores []float32, k int) []int {
	k = min(k, len(scores))
	// A sorted insertion into k slots: k is small (10) against thousands of terms.
	top := make([]int, 0, k)
	for j, s := range scores {
		if len(top) == k && s <= scores[top[k-1]] {
			continue
		}
		p := len(top)
		if p < k {
			top = append(top, j)
		} else {
			p = k - 1
		}
		for p > 0 && s > scores[top[p-1]] {
			top[p] = top[p-1]
			p--
		}
		top[p] = j
	}
	return top
}
