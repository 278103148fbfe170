package model

import (
	"context"
	"fmt"
	"math"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// AnatomyCheck is a query whose strongest peak must fall in a known region: the checks a model
// passes before it may be the default (README, "Models").
type AnatomyCheck struct {
	Query  string
	Region string
	// In reports whether a peak at MNI coordinates (mm) is in the region.
	In func(mni [3]float64) bool
}

// AnatomyChecks are the checks of the NeuroQuery model's tests, for any model.
var AnatomyChecks = []AnatomyCheck{
	{"faces", "the right fusiform gyrus (within 8 mm of 38, −50, −20)", func(p [3]float64) bool {
		return math.Hypot(math.Hypot(p[0]-38, p[1]+50), p[2]+20) <= 8
	}},
	{"working memory", "dorsal frontal or parietal cortex (z ≥ 30, y ≥ −80)", func(p [3]float64) bool {
		return p[2] >= 30 && p[1] >= -80
	}},
	{"self-generated thought", "the posterior cingulate or precuneus (|x| ≤ 14, −76 ≤ y ≤ −36, 10 ≤ z ≤ 54)", func(p [3]float64) bool {
		return math.Abs(p[0]) <= 14 && p[1] >= -76 && p[1] <= -36 && p[2] >= 10 && p[2] <= 54
	}},
}

// AnatomyResult is one check's outcome.
type AnatomyResult struct {
	AnatomyCheck
	Peak brain.Peak
	Pass bool
}

// CheckAnatomy runs AnatomyChecks on the model.
func (m *Model) CheckAnatomy(ctx context.Context) ([]AnatomyResult, error) {
	out := make([]AnatomyResult, 0, len(AnatomyChecks))
	for _, c := range AnatomyChecks {
		r, err := m.Predict(ctx, c.Query)
		if err != nil {
			return nil, fmt.Errorf("model: anatomy check %q: %w", c.Query, err)
		}
		if len(r.Peaks) == 0 {
			return nil, fmt.Errorf("model: anatomy check %q: the map has no peak", c.Query)
		}
		out = append(out, AnatomyResult{AnatomyCheck: c, Peak: r.Peaks[0], Pass: c.In(r.Peaks[0].MNI)})
	}
	return out, nil
}
