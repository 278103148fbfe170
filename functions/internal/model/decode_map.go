package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// ErrUndecodable wraps the reasons an image cannot be decoded: it has no spatial transform, it
// does not cover the brain, or it is zero or constant there. A retry cannot change them.
var ErrUndecodable = errors.New("the map cannot be decoded")

// Decode is the other way round from Predict: an uploaded statistical map in MNI space (any grid
// and orientation) is resampled onto the model's grid, and the result holds that map, its peaks,
// the studies whose maps correlate best with it and the terms the decoder ranks highest (each
// term's Weight is its decoder score). name titles the preview.
func (m *Model) Decode(ctx context.Context, v *brain.Volume, name string) (*Result, error) {
	start := time.Now()
	since := func(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
	if m.b.Decoder == nil {
		return nil, errors.New("model: this bundle has no decoder (it was built before decoding existed): rebuild it with `make model`")
	}
	if v.Transform == brain.TransformNone {
		return nil, fmt.Errorf("%w: %w", ErrUndecodable, brain.ErrNoTransform)
	}
	values, _, err := brain.ResampleToMask(v, m.b.Mask)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &Result{Query: name, ModelVersion: m.Version(), Map: values, Phrases: []string{}, Terms: []string{}}
	r.Timings.FeaturesMS = since(start) // the resampling

	t := time.Now()
	r.RelatedArticles = m.b.Articles.Related(m.b.Mask, values, NumArticles)
	r.Peaks = brain.Peaks(m.b.Mask, values, NumPeaks, PeakDistanceMM)
	r.Timings.ArticlesMS = since(t)

	t = time.Now()
	for _, d := range m.b.Decoder.Terms(values, NumTerms) {
		r.RelatedTerms = append(r.RelatedTerms, Term{Term: d.Term, Weight: d.Score})
	}
	r.Timings.TermsMS = since(t)
	r.Timings.TotalMS = since(start)
	r.decoded = true
	return r, nil
}

// previewThreshold is the threshold a preview draws the map at: |z| ≥ 3.1 for the model's own
// z-maps; for a decoded upload, whose units may be anything (t, z, beta, a probability), the same
// 3.1 if its values reach well beyond it, else 30 % of its largest absolute value.
func (r *Result) previewThreshold() float64 {
	if !r.decoded {
		return PreviewZ
	}
	var peak float64
	for _, v := range r.Map {
		peak = math.Max(peak, math.Abs(float64(v)))
	}
	return math.Min(PreviewZ, 0.3*peak)
}
