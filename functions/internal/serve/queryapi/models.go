package queryapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/text2brain/text2brain/functions/internal/model/bundle/manifest"
)

// servedModel is one model the server answers for: its own model version, so its own key space.
// Every model shares the default model's vocabulary (the featurizer), and has its own features
// without a map.
type servedModel struct {
	id       string
	header   *manifest.Header
	unmapped map[string]bool
}

// ModelID is the name the API gives a model (?model=…): its manifest's name, lower-cased, with
// a dash for each run of characters other than letters and digits ("NeuroQuery" → "neuroquery").
func ModelID(man manifest.Manifest) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(man.DisplayName()) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	if b.Len() == 0 {
		return man.ModelVersion
	}
	return b.String()
}

func newServedModel(h *manifest.Header) *servedModel {
	return &servedModel{id: ModelID(h.Manifest), header: h, unmapped: h.Vocabulary.UnmappedTerms()}
}

// AddModel serves another model beside the default one: ?model= and a body's "model" name it by
// its ModelID or its version. It must read the same features as the default model (a bundle made
// by `text2brain model build-neural` on the default bundle does). Call it before serving.
func (s *Server) AddModel(h *manifest.Header) error {
	def := s.models[0].header
	if !slices.Equal(h.Vocabulary.Features, def.Vocabulary.Features) || !slices.Equal(h.Vocabulary.IDF, def.Vocabulary.IDF) {
		return fmt.Errorf("api: model %s does not read the features of the default model %s; build it on that bundle",
			h.Manifest.ModelVersion, def.Manifest.ModelVersion)
	}
	m := newServedModel(h)
	for _, o := range s.models {
		if o.id == m.id || o.header.Manifest.ModelVersion == h.Manifest.ModelVersion {
			return fmt.Errorf("api: model %s (%s) is served already as %s (%s)", m.id, h.Manifest.ModelVersion, o.id, o.header.Manifest.ModelVersion)
		}
	}
	s.models = append(s.models, m)
	return nil
}

// modelNamed is the model a request names ("" for the default), or answers 400 itself.
func (s *Server) modelNamed(w http.ResponseWriter, name string) (*servedModel, bool) {
	if name == "" {
		return s.models[0], true
	}
	for _, m := range s.models {
		if name == m.id || name == m.header.Manifest.ModelVersion {
			return m, true
		}
	}
	ids := make([]string, len(s.models))
	for i, m := range s.models {
		ids[i] = m.id
	}
	shown := name
	if len(shown) > 60 {
		shown = shown[:60] + "…"
	}
	WriteError(w, http.StatusBadRequest, "unknown_model", fmt.Sprintf("There is no model %q here; the models are %s (see /api/v1/models).",
		shown, strings.Join(ids, ", ")))
	return nil, false
}

// modelOfVersion is the served model of a version (nil for one not served any more).
func (s *Server) modelOfVersion(version string) *servedModel {
	for _, m := range s.models {
		if m.header.Manifest.ModelVersion == version {
			return m
		}
	}
	return nil
}

// ModelInfo is a model as GET /api/v1/models lists it.
type ModelInfo struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	ModelVersion string `json:"model_version"`
	Description  string `json:"description,omitempty"`
	// Default marks the model a query without "model" gets.
	Default bool `json:"default"`
	// Features is the vocabulary's size, MappedFeatures how many of them move the map.
	Features       int `json:"features"`
	MappedFeatures int `json:"mapped_features"`
	// Evaluation is null for a model trained on every article, which has no held-out figures.
	Evaluation *manifest.Evaluation `json:"evaluation"`
}

// Models is the answer of GET /api/v1/models.
type Models struct {
	Default string      `json:"default"`
	Models  []ModelInfo `json:"models"`
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	out := Models{Default: s.models[0].id, Models: make([]ModelInfo, len(s.models))}
	for i, m := range s.models {
		man := m.header.Manifest
		out.Models[i] = ModelInfo{ID: m.id, Name: man.DisplayName(), Kind: man.Kind, ModelVersion: man.ModelVersion,
			Description: man.Description, Default: i == 0, Features: man.Features,
			MappedFeatures: man.Features - len(m.header.Vocabulary.Unmapped), Evaluation: man.Evaluation}
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, out)
}
