package modelbuild

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/text2brain/text2brain/functions/internal/model/articles"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/decode"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/neuroquery"
)

// RidgeStrength is the decoder's ridge penalty as a fraction of the mean diagonal of the
// descriptions' Gram matrix, so that it does not depend on the model's scale. With 13,000
// articles and 229 dimensions the fit is well determined: on the tuning sample of
// functions/cmd/decodeeval, precision@10 is flat from 0.0001 to 0.001 (0.223) and falls beyond
// (0.218 at 0.01, 0.215 at 0.03).
const RidgeStrength = 0.001

// DecoderBasis is the decoder's basis (package decode): the model's term-map directions
// A = diag(residual_var)^(−1/2)·coef, one per selected feature, each centred over the mask, as
// rows of mask values. A term's predicted map is a combination of them (model.md), so describing
// a map by its dot products with them keeps what the text → brain model can say about it.
func DecoderBasis(nq *neuroquery.Model) decode.Int8Rows {
	nVoxels, dim := nq.Coef.Dims()
	rows := make([]float64, dim*nVoxels)
	for v := range nVoxels {
		s := 1 / math.Sqrt(nq.ResidualVar[v])
		for c, x := range nq.Coef.RawRowView(v) {
			rows[c*nVoxels+v] = x * s
		}
	}
	for c := range dim {
		row := rows[c*nVoxels : (c+1)*nVoxels]
		var mean float64
		for _, x := range row {
			mean += x
		}
		mean /= float64(nVoxels)
		for v := range row {
			row[v] -= mean
		}
	}
	return decode.QuantizeRows(dim, nVoxels, rows)
}

// DecoderOptions adjust TrainDecoder for an evaluation.
type DecoderOptions struct {
	// Exclude lists index articles to leave out of training: an evaluation's articles.
	Exclude []int
	// RidgeStrength replaces the package's RidgeStrength when positive.
	RidgeStrength float64
}

// TrainDecoder fits the decoder on the articles of ix, but for those opt excludes and those whose
// map is constant. keyTerms[i] are article i's key terms (feature indices: its decode.KeyTerms
// features of highest TF-IDF, as KeyTerms returns them).
//
// Each article's description is what Decoder.Describe computes from its map, but obtained from its
// peaks: the blur being linear and symmetric, ⟨b, blur(counts)⟩ = Σ over the peaks of blur(b), so
// one blur per basis row serves every article (a dense map per article would take minutes).
func TrainDecoder(nq *neuroquery.Model, ix *articles.Index, keyTerms [][]int32, opt DecoderOptions) (*decode.Data, error) {
	nFeatures := len(nq.Vocabulary.Features)
	if len(keyTerms) != ix.Len() {
		return nil, fmt.Errorf("model build: decoder: key terms for %d articles, the index has %d", len(keyTerms), ix.Len())
	}
	strength := RidgeStrength
	if opt.RidgeStrength > 0 {
		strength = opt.RidgeStrength
	}
	basis := DecoderBasis(nq)
	desc := describeArticles(basis.Dequantize(), basis.Rows, nq.Mask, ix)

	left := make([]bool, ix.Len())
	for _, i := range opt.Exclude {
		if i < 0 || i >= ix.Len() {
			return nil, fmt.Errorf("model build: decoder: article %d to leave out is not in the index", i)
		}
		left[i] = true
	}
	var train []int
	for i := range ix.Len() {
		if _, norm := ix.MapStats(i); !left[i] && norm > 0 {
			train = append(train, i)
		}
	}
	dim := basis.Rows
	if len(train) <= dim {
		return nil, fmt.Errorf("model build: decoder: %d articles to train on, want more than %d", len(train), dim)
	}

	// Centred descriptions X, the key-term indicators Y; W = (XᵀX + λI)⁻¹ XᵀY.
	n := len(train)
	center := make([]float64, dim)
	for _, i := range train {
		for c, x := range desc[i*dim : (i+1)*dim] {
			center[c] += x
		}
	}
	for c := range center {
		center[c] /= float64(n)
	}
	X := mat.NewDense(n, dim, nil)
	counts := make([]float64, nFeatures)
	YtX := mat.NewDense(nFeatures, dim, nil)
	for r, i := range train {
		row := X.RawRowView(r)
		for c, x := range desc[i*dim : (i+1)*dim] {
			row[c] = x - center[c]
		}
		for _, j := range keyTerms[i] {
			if j < 0 || int(j) >= nFeatures {
				return nil, fmt.Errorf("model build: decoder: article %d: key term %d is not a feature", i, j)
			}
			counts[j]++
			floatsAdd(YtX.RawRowView(int(j)), row)
		}
	}
	gram := mat.NewSymDense(dim, nil)
	gram.SymOuterK(1, X.T())
	lambda := strength * mat.Trace(gram) / float64(dim)
	for c := range dim {
		gram.SetSym(c, c, gram.At(c, c)+lambda)
	}
	var chol mat.Cholesky
	if !chol.Factorize(gram) {
		return nil, errors.New("model build: decoder: the descriptions' Gram matrix is not positive definite")
	}
	var W mat.Dense // dim × nFeatures
	if err := chol.SolveTo(&W, YtX.T()); err != nil {
		return nil, fmt.Errorf("model build: decoder: %w", err)
	}

	weights := make([]float64, nFeatures*dim) // one row per term
	for c := range dim {
		for j, w := range W.RawRowView(c) {
			weights[j*dim+c] = w
		}
	}
	d := &decode.Data{MaskLen: nq.Mask.Len(), Dim: dim, NFeatures: nFeatures, Basis: basis,
		Center: make([]float32, dim), Weights: decode.QuantizeRows(nFeatures, dim, weights),
		Intercept: make([]float32, nFeatures), Articles: n, Lambda: lambda}
	for c, x := range center {
		d.Center[c] = float32(x)
	}
	for j, k := range counts {
		d.Intercept[j] = float32(k / float64(n))
	}
	return d, nil
}

func floatsAdd(dst, x []float64) {
	for i, v := range x {
		dst[i] += v
	}
}

// describeArticles returns every article's description (ix.Len() rows of dim values): the dot
// products of its map, centred and scaled to unit norm, with each basis row. Article i's map is
// a = blur(c_i)/m_i over the mask (m_i its mean, so mean(a) = 1) and ‖a − 1‖ = norm_i/m_i, so the
// dot product with row b is (Σ_peaks blur(b) − m_i·Σ b) / norm_i. Articles with a constant map get
// zeros.
func describeArticles(basis []float32, dim int, m *brain.Mask, ix *articles.Index) []float64 {
	nm := m.Len()
	desc := make([]float64, ix.Len()*dim)
	kn := brain.NewKernel(brain.BlurSigma)
	var next sync.Mutex
	c := 0
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vol := make([]float64, brain.NVoxels)
			for {
				next.Lock()
				row := c
				c++
				next.Unlock()
				if row >= dim {
					return
				}
				clear(vol)
				b := basis[row*nm : (row+1)*nm]
				var sum float64
				for p, idx := range m.Voxels {
					vol[idx] = float64(b[p])
					sum += float64(b[p])
				}
				// Blur3D is the blur of the article maps and its own adjoint (the kernel is
				// symmetric and the edges reflect; package articles tests both).
				kn.Blur3D(vol)
				for i := range ix.Len() {
					mean, norm := ix.MapStats(i)
					if norm == 0 {
						continue
					}
					var s float64
					for _, v := range ix.Peaks(i) {
						s += vol[v]
					}
					desc[i*dim+row] = (s - mean*sum) / norm
				}
			}
		}()
	}
	wg.Wait()
	return desc
}
