// Package neuroquery reads a trained model in the layout of the official NeuroQuery model download
// (vocabulary.csv, the synonym map, mask_img.nii.gz, regression/ and smoothing/) and computes its
// z-maps in float64 with gonum. The serving path runs the same maths in ONNX Runtime; this package
// is what the bundle is built from and the reference that the ONNX output is checked against.
package neuroquery

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/textfeat"
)

// Model is a NeuroQuery model loaded in memory.
type Model struct {
	Vocabulary textfeat.Vocabulary
	Mask       *brain.Mask
	// V holds the term embeddings (features × m) and Vn the same rows scaled by the norm of the
	// matching row of V·Vᵀ: smoothing is w·(x·Vn)·Vᵀ + (1−w)·x.
	V, Vn *mat.Dense
	// SmoothingWeight is w.
	SmoothingWeight float64
	// Selected lists the features the regression uses (d of them).
	Selected []int
	// Coef is voxels × d.
	Coef *mat.Dense
	// Gram is M·Mᵀ (d × d), the only part of M that z-maps need.
	Gram *mat.SymDense
	// ResidualVar is the residual variance of each voxel.
	ResidualVar []float64
}

// Load reads a model directory. Every inconsistency is reported with the file it comes from.
func Load(dir string) (*Model, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("neuroquery: model directory %s not found (the NeuroQuery model download, https://osf.io/598tj/download, unzipped, or ../shared/data/neuroquery_model)", dir)
	}
	m := &Model{}
	var err error
	if m.Vocabulary, err = loadVocabulary(dir); err != nil {
		return nil, fmt.Errorf("neuroquery: %w", err)
	}
	if m.Mask, err = brain.ReadMaskFile(filepath.Join(dir, "mask_img.nii.gz")); err != nil {
		return nil, fmt.Errorf("neuroquery: %w", err)
	}
	if err := m.loadArrays(dir); err != nil {
		return nil, fmt.Errorf("neuroquery: %w", err)
	}
	return m, nil
}

func loadVocabulary(dir string) (textfeat.Vocabulary, error) {
	var voc textfeat.Vocabulary
	path := filepath.Join(dir, "vocabulary.csv")
	f, err := os.Open(path)
	if err != nil {
		return voc, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 2
	type row struct {
		term string
		df   float64
	}
	var rows []row
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return voc, fmt.Errorf("%s: %w", path, err)
		}
		df, err := strconv.ParseFloat(rec[1], 64)
		if err != nil || df <= 0 {
			return voc, fmt.Errorf("%s line %d: document frequency %q is not a positive number", path, line, rec[1])
		}
		rows = append(rows, row{rec[0], df})
	}
	if len(rows) == 0 {
		return voc, fmt.Errorf("%s: no terms", path)
	}

	mapPath := filepath.Join(dir, "vocabulary.csv_voc_mapping_identity.json")
	raw, err := os.ReadFile(mapPath)
	if err != nil {
		return voc, err
	}
	if err := json.Unmarshal(raw, &voc.Synonyms); err != nil {
		return voc, fmt.Errorf("%s: %w", mapPath, err)
	}

	df := map[string]float64{}
	inVocabulary := map[string]bool{}
	for _, r := range rows {
		inVocabulary[r.term] = true
		if _, folded := voc.Synonyms[r.term]; !folded {
			voc.Features = append(voc.Features, r.term)
		}
	}
	sort.Strings(voc.Features)
	for from, to := range voc.Synonyms {
		if !inVocabulary[from] {
			// A synonym for a phrase the vocabulary does not have can never match; drop it.
			delete(voc.Synonyms, from)
			continue
		}
		if !inVocabulary[to] {
			return voc, fmt.Errorf("%s: %q maps to %q, which is not in the vocabulary", mapPath, from, to)
		}
	}
	for _, r := range rows {
		term := r.term
		if to, ok := voc.Synonyms[term]; ok {
			term = to
		}
		df[term] += r.df
	}
	voc.IDF = make([]float64, len(voc.Features))
	for j, term := range voc.Features {
		voc.IDF[j] = 1 - math.Log(df[term])
	}

	voc.StopWords = defaultStopWords
	if raw, err := os.ReadFile(filepath.Join(dir, "stop_words.txt")); err == nil {
		voc.StopWords = strings.Fields(string(raw))
	} else if !errors.Is(err, os.ErrNotExist) {
		return voc, err
	}
	return voc, nil
}

func (m *Model) loadArrays(dir string) error {
	read := func(rel string) (*array, error) { return readNPY(filepath.Join(dir, rel)) }
	nFeatures := len(m.Vocabulary.Features)
	nVoxels := m.Mask.Len()

	if a, err := read("regression/original_n_features.npy"); err != nil {
		return err
	} else if len(a.data) != 1 || int(a.data[0]) != nFeatures {
		return fmt.Errorf("regression/original_n_features.npy says %v features, the vocabulary gives %d", a.data, nFeatures)
	}

	sel, err := read("regression/selected_features.npy")
	if err != nil {
		return err
	}
	if err := sel.wantShape("regression/selected_features.npy", -1); err != nil {
		return err
	}
	for _, v := range sel.data {
		if v < 0 || int(v) >= nFeatures || v != math.Trunc(v) {
			return fmt.Errorf("regression/selected_features.npy: index %v out of range [0, %d)", v, nFeatures)
		}
		m.Selected = append(m.Selected, int(v))
	}
	d := len(m.Selected)

	coef, err := read("regression/coef.npy")
	if err != nil {
		return err
	}
	if err := coef.wantShape("regression/coef.npy", nVoxels, d); err != nil {
		return fmt.Errorf("%w (mask voxels × selected features)", err)
	}
	m.Coef = mat.NewDense(nVoxels, d, coef.data)

	M, err := read("regression/M.npy")
	if err != nil {
		return err
	}
	if err := M.wantShape("regression/M.npy", d, -1); err != nil {
		return err
	}
	m.Gram = mat.NewSymDense(d, nil)
	m.Gram.SymOuterK(1, mat.NewDense(d, M.shape[1], M.data))

	rv, err := read("regression/residual_var.npy")
	if err != nil {
		return err
	}
	if err := rv.wantShape("regression/residual_var.npy", nVoxels); err != nil {
		return err
	}
	m.ResidualVar = rv.data

	V, err := read("smoothing/V.npy")
	if err != nil {
		return err
	}
	if err := V.wantShape("smoothing/V.npy", nFeatures, -1); err != nil {
		return err
	}
	m.V = mat.NewDense(nFeatures, V.shape[1], V.data)
	m.Vn = normalizeRows(m.V)

	w, err := read("smoothing/smoothing_weight.npy")
	if err != nil {
		return err
	}
	if len(w.data) != 1 || w.data[0] < 0 || w.data[0] > 1 {
		return fmt.Errorf("smoothing/smoothing_weight.npy: want one number in [0, 1], got %v", w.data)
	}
	m.SmoothingWeight = w.data[0]
	return nil
}

// normalizeRows divides row i of V by ‖(V·Vᵀ)ᵢ‖₂. That norm is sqrt(vᵢ·(VᵀV)·vᵢᵀ), so the
// features × features product is never formed.
func normalizeRows(V *mat.Dense) *mat.Dense {
	rows, cols := V.Dims()
	var C mat.SymDense
	C.SymOuterK(1, V.T())
	out := mat.NewDense(rows, cols, nil)
	for i := 0; i < rows; i++ {
		v := V.RowView(i)
		n := math.Sqrt(math.Max(mat.Inner(v, &C, v), 0))
		if n == 0 {
			continue
		}
		for j := 0; j < cols; j++ {
			out.Set(i, j, V.At(i, j)/n)
		}
	}
	return out
}

// Smooth applies semantic smoothing to a feature vector: w·(x·Vn)·Vᵀ + (1−w)·x.
func (m *Model) Smooth(x []float64) []float64 {
	xv := mat.NewVecDense(len(x), x)
	var emb, back mat.VecDense
	emb.MulVec(m.Vn.T(), xv)
	back.MulVec(m.V, &emb)
	out := make([]float64, len(x))
	for j := range out {
		out[j] = m.SmoothingWeight*back.AtVec(j) + (1-m.SmoothingWeight)*x[j]
	}
	return out
}

// Unmapped lists, in order, the features that have no brain map: those whose smoothed, selected
// vector x_d(e_j) is all zeros (model.md: 1,394 of the 6,308 features of the data here), so that
// the z-map of a query of that term alone is zero everywhere. x_d(e_j) is Smooth(e_j) at the
// selected features, w·(V_sel · Vn_jᵀ) + (1 − w)·[j selected], computed for every j at once. A
// query's x_d is the sum of its terms' x_d(e_j) with positive weights, so a query whose every term
// is unmapped has an all-zero map too (and one with a mapped term has a map, but for an exact
// cancellation, which the runtime checks on its output).
func (m *Model) Unmapped() []int {
	nFeatures, dim := m.V.Dims()
	vSel := mat.NewDense(len(m.Selected), dim, nil)
	for i, j := range m.Selected {
		vSel.SetRow(i, m.V.RawRowView(j))
	}
	var back mat.Dense // back[i][j] = V[selected[i]] · Vn[j]
	back.Mul(vSel, m.Vn.T())
	w := m.SmoothingWeight
	unmapped := []int{}
	for j := 0; j < nFeatures; j++ {
		mapped := false
		for i, s := range m.Selected {
			v := w * back.At(i, j)
			if s == j {
				v += 1 - w
			}
			if v != 0 {
				mapped = true
				break
			}
		}
		if !mapped {
			unmapped = append(unmapped, j)
		}
	}
	return unmapped
}

// ZMap is the float64 reference of the whole numeric path: from the L2-normalised TF-IDF vector to
// the z-map in mask order.
func (m *Model) ZMap(x []float64) []float64 {
	xs := m.Smooth(x)
	xd := mat.NewVecDense(len(m.Selected), nil)
	for i, j := range m.Selected {
		xd.SetVec(i, xs[j])
	}
	var num mat.VecDense
	num.MulVec(m.Coef, xd)
	q := mat.Inner(xd, m.Gram, xd)
	z := make([]float64, num.Len())
	for v := range z {
		z[v] = num.AtVec(v) / math.Max(math.Sqrt(q*m.ResidualVar[v]), 1e-24)
	}
	return z
}
