// Package model is the prediction runtime: a verified bundle, the featurizer and an ONNX Runtime
// session, turning query text into a z-map, its peaks, related articles and related terms.
package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/text2brain/text2brain/functions/internal/model/articles"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/model/bundle/manifest"
	"github.com/text2brain/text2brain/functions/internal/model/textfeat"
)

// ErrNoKnownTerms is returned for text that contains no vocabulary term: its map would be all
// zeros, which must never be shown as a result.
var ErrNoKnownTerms = errors.New("the text contains no term the model knows")

// ErrNoMappedTerms is returned for text whose every recognised term has no brain map (the bundle's
// unmapped features, or a smoothed, selected vector that comes out zero): its map would be all
// zeros too. It is also ErrNoKnownTerms for errors.Is, the text having no term the model can use,
// so that a caller that refuses such text for good refuses this one too.
var ErrNoMappedTerms error = noMappedTerms{}

type noMappedTerms struct{}

func (noMappedTerms) Error() string { return "none of the text's terms has a brain map in the model" }

func (noMappedTerms) Is(target error) bool { return target == ErrNoKnownTerms }

// How much of each kind of result a prediction reports.
const (
	NumArticles    = 10
	NumTerms       = 10
	NumPeaks       = 10
	PeakDistanceMM = 12.0
	PreviewZ       = 3.1 // the preview shows |z| ≥ 3.1 (p < 0.001, one-sided)
)

// Options configure the runtime.
type Options struct {
	// ORTLibrary is the path of libonnxruntime.so.
	ORTLibrary string
}

// Model predicts brain maps. It is safe for concurrent use.
type Model struct {
	b       *bundle.Bundle
	feat    *textfeat.Featurizer
	session *ort.DynamicAdvancedSession
	// contract is the graph's input and outputs, from the manifest.
	contract manifest.Contract
	// mapNorm[j] is ‖coef[:, j]‖ for a selected feature j, 0 for the others.
	mapNorm []float64
	// unmapped are the terms of the bundle's features without a map.
	unmapped map[string]bool
	// preview draws previews over the bundle's template; made by the first one (previewer).
	preview *brain.Previewer
	// surface samples maps on the bundle's surface; made by the first one (surfaceSampler).
	surface *brain.SurfaceSampler
}

// Open loads and verifies the bundle in dir and starts an ONNX Runtime session on it (Load: the two
// overlap).
func Open(dir string, opt Options) (*Model, error) {
	return Load(bundle.Start(dir), opt)
}

// New starts an ONNX Runtime session on a loaded bundle.
func New(b *bundle.Bundle, opt Options) (*Model, error) {
	if err := initORT(opt.ORTLibrary); err != nil {
		return nil, err
	}
	session, err := newSession(b.ONNX, b.Manifest)
	if err != nil {
		return nil, err
	}
	return newModel(b, session)
}

// newModel is the model of a loaded bundle with a session on its graph; on an error it closes the
// session.
func newModel(b *bundle.Bundle, session *ort.DynamicAdvancedSession) (*Model, error) {
	feat, err := textfeat.New(b.Vocabulary.Vocabulary)
	if err != nil {
		session.Destroy()
		return nil, fmt.Errorf("model: %w", err)
	}
	m := &Model{b: b, feat: feat, session: session, contract: b.Contract(), mapNorm: make([]float64, feat.NumFeatures()),
		unmapped: b.Vocabulary.UnmappedTerms()}
	for i, j := range b.Vocabulary.Selected {
		m.mapNorm[j] = b.Vocabulary.MapNorms[i]
	}
	return m, nil
}

// Close releases the ONNX Runtime session.
func (m *Model) Close() error { return m.session.Destroy() }

// Version is the bundle's model version.
func (m *Model) Version() string { return m.b.Manifest.ModelVersion }

// Bundle is the loaded bundle.
func (m *Model) Bundle() *bundle.Bundle { return m.b }

// Featurizer is the model's featurizer.
func (m *Model) Featurizer() *textfeat.Featurizer { return m.feat }

// Term is a vocabulary term related to a query.
type Term struct {
	Term string `json:"term"`
	// Weight is the term's value in the feature vector the model weighs the terms by, renormalised:
	// NeuroQuery's smoothed vector; for a graph without that output, the query's own TF-IDF.
	Weight float64 `json:"weight"`
	// MapWeight is how much the term weighs in the brain map (0 for terms the regression does
	// not use).
	MapWeight float64 `json:"map_weight"`
}

// Timings of one prediction, in milliseconds.
type Timings struct {
	FeaturesMS float64 `json:"features_ms"`
	InferMS    float64 `json:"infer_ms"`
	ArticlesMS float64 `json:"articles_ms"`
	TermsMS    float64 `json:"terms_ms"`
	TotalMS    float64 `json:"total_ms"`
}

// Result is one prediction.
type Result struct {
	Query        string `json:"query"`
	ModelVersion string `json:"model_version"`
	// Phrases are the vocabulary phrases recognised in the text, as written.
	Phrases []string `json:"recognized_phrases"`
	// Terms are the distinct model terms those phrases map to.
	Terms           []string         `json:"recognized_terms"`
	Peaks           []brain.Peak     `json:"peaks"`
	RelatedArticles []articles.Match `json:"related_articles"`
	RelatedTerms    []Term           `json:"related_terms"`
	Timings         Timings          `json:"timings"`
	// Map is the z-map in mask order (of a decoding: the uploaded map, resampled).
	Map []float32 `json:"-"`
	// decoded marks a Decode's result.
	decoded bool
}

// Predict computes the map of text and what goes with it. Text with no known term gives
// ErrNoKnownTerms, text whose terms have no map ErrNoMappedTerms.
func (m *Model) Predict(ctx context.Context, text string) (*Result, error) {
	start := time.Now()
	since := func(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
	fs := m.feat.Featurize(text)
	if !fs.Known() {
		return nil, ErrNoKnownTerms
	}
	if manifest.NoneMapped(fs.Terms, m.unmapped) {
		return nil, ErrNoMappedTerms
	}
	r := &Result{Query: text, ModelVersion: m.Version(), Phrases: fs.Phrases, Terms: fs.Terms}
	r.Timings.FeaturesMS = since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	t := time.Now()
	z, weighed, err := m.Infer(fs.Vector)
	if err != nil {
		return nil, err
	}
	// What the bundle records, as the graph computes it: a bundle built before it was recorded,
	// or an exact cancellation, ends here too. A graph without a feature output is asked whether
	// its map is zero everywhere.
	if weighed != nil && m.unmappedVector(weighed) || weighed == nil && allZero(z) {
		return nil, ErrNoMappedTerms
	}
	if weighed == nil {
		weighed = make([]float32, len(fs.Vector))
		for i, v := range fs.Vector {
			weighed[i] = float32(v)
		}
	}
	r.Map = z
	r.Timings.InferMS = since(t)

	t = time.Now()
	r.RelatedArticles = m.b.Articles.Related(m.b.Mask, z, NumArticles)
	r.Peaks = brain.Peaks(m.b.Mask, z, NumPeaks, PeakDistanceMM)
	r.Timings.ArticlesMS = since(t)

	t = time.Now()
	r.RelatedTerms = m.relatedTerms(weighed)
	r.Timings.TermsMS = since(t)
	r.Timings.TotalMS = since(start)
	return r, nil
}

// Infer runs the ONNX graph on an L2-normalised TF-IDF vector and returns the z-map (mask order,
// masked here when the graph gives the whole volume) and the feature vector of the graph's
// feature output (nil when the graph has none).
func (m *Model) Infer(x []float64) (z, features []float32, err error) {
	nFeatures := m.feat.NumFeatures()
	if len(x) != nFeatures {
		return nil, nil, fmt.Errorf("model: feature vector of length %d, want %d", len(x), nFeatures)
	}
	in32 := make([]float32, nFeatures)
	for i, v := range x {
		in32[i] = float32(v)
	}
	out, features, err := run(m.session, m.contract, in32)
	if err != nil {
		return nil, nil, fmt.Errorf("model: ONNX Runtime: %w", err)
	}
	if m.contract.Volume {
		z = make([]float32, m.b.Mask.Len())
		for i, v := range m.b.Mask.Voxels {
			z[i] = out[v]
		}
		out = z
	}
	for _, v := range out {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, nil, errors.New("model: the graph gave a map with a non-finite value")
		}
	}
	return out, features, nil
}

func allZero(z []float32) bool {
	for _, v := range z {
		if v != 0 {
			return false
		}
	}
	return true
}

// unmappedVector reports whether a smoothed vector is zero at every selected feature: the ones
// the regression reads, so the z-map is zero everywhere.
func (m *Model) unmappedVector(smoothed []float32) bool {
	for _, j := range m.b.Vocabulary.Selected {
		if smoothed[j] != 0 {
			return false
		}
	}
	return true
}

// Kind is the bundle's model kind.
func (m *Model) Kind() string { return m.b.Manifest.Kind }

// relatedTerms ranks the features by their weight (smoothed, for NeuroQuery), the way NeuroQuery
// shows the terms that shaped a map.
func (m *Model) relatedTerms(smoothed []float32) []Term {
	var norm float64
	for _, v := range smoothed {
		norm += float64(v) * float64(v)
	}
	norm = math.Sqrt(norm)
	if norm == 0 {
		return nil
	}
	idx := make([]int, 0, len(smoothed))
	for j, v := range smoothed {
		if v > 0 {
			idx = append(idx, j)
		}
	}
	sort.Slice(idx, func(a, b int) bool {
		va, vb := smoothed[idx[a]], smoothed[idx[b]]
		if va != vb {
			return va > vb
		}
		return idx[a] < idx[b]
	})
	if len(idx) > NumTerms {
		idx = idx[:NumTerms]
	}
	terms := make([]Term, len(idx))
	for i, j := range idx {
		terms[i] = Term{Term: m.feat.Feature(j), Weight: float64(smoothed[j]) / norm,
			MapWeight: float64(smoothed[j]) * m.mapNorm[j]}
	}
	return terms
}

// WriteNIfTI writes the result's map as a .nii.gz on the model's grid.
func (m *Model) WriteNIfTI(w io.Writer, r *Result) error {
	return brain.WriteMap(w, m.b.Mask, r.Map, "text2brain z-map "+r.ModelVersion)
}

// WritePreview draws the result's map over the T1 template, through its strongest peak: a
// prediction's and a decoding's alike.
func (m *Model) WritePreview(w io.Writer, r *Result) error {
	p, err := m.previewer()
	if err != nil {
		return err
	}
	at := [3]float64{0, 0, 0}
	if len(r.Peaks) > 0 {
		at = r.Peaks[0].MNI
	}
	return p.Render(w, r.Map, at, brain.PreviewOptions{Threshold: r.previewThreshold(), Title: r.Query})
}

// previewMu guards making a Model's preview and surface sampler: a lock of the model's own would make Model, which a
// test copies, unsafe to copy.
var previewMu sync.Mutex

// previewer is the model's preview renderer, which keeps what depends only on the template (its
// white level, the slices drawn so far) from one preview to the next.
func (m *Model) previewer() (*brain.Previewer, error) {
	previewMu.Lock()
	defer previewMu.Unlock()
	if m.preview == nil {
		p, err := brain.NewPreviewer(m.b.Template, m.b.Mask)
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		m.preview = p
	}
	return m.preview, nil
}

// WriteSurface writes the result's map sampled on the template's cortical surface (each vertex's
// value, both hemispheres) as the gzip-compressed JSON the API serves.
func (m *Model) WriteSurface(w io.Writer, r *Result) error {
	return brain.WriteSurfaceJSON(w, m.b.Surface, m.surfaceSampler().Sample(r.Map))
}

// surfaceSampler is the model's surface sampler, whose weights are worked out on first use (as
// the previewer, under previewMu).
func (m *Model) surfaceSampler() *brain.SurfaceSampler {
	previewMu.Lock()
	defer previewMu.Unlock()
	if m.surface == nil {
		m.surface = brain.NewSurfaceSampler(m.b.Surface, m.b.Mask)
	}
	return m.surface
}
