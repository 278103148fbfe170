package queryapi

import (
	"net/http"
	"net/url"
	"os"
	"slices"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/bundle/manifest"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// twoModels is a server on in-memory backends that serves the tiny network beside NeuroQuery.
func twoModels(t *testing.T) (*backends, *manifest.Header) {
	t.Helper()
	b := newBackends(t)
	nn, err := manifest.LoadHeader(os.DirFS(testenv.NeuralBundleDir(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.s.AddModel(nn); err != nil {
		t.Fatal(err)
	}
	return b, nn
}

func TestModels(t *testing.T) {
	b, nn := twoModels(t)
	nnID := ModelID(nn.Manifest)
	if nnID != "text2brain-nn-tiny" {
		t.Fatalf("the tiny network's id is %q", nnID)
	}

	list := b.get(t, "/api/v1/models")
	models, _ := list.body["models"].([]any)
	if list.status != http.StatusOK || list.body["default"] != "neuroquery" || len(models) != 2 {
		t.Fatalf("GET /api/v1/models: %d %v", list.status, list.body)
	}
	nq, second := models[0].(map[string]any), models[1].(map[string]any)
	if nq["id"] != "neuroquery" || nq["default"] != true || nq["evaluation"] != nil || nq["model_version"] != b.s.ModelVersion() {
		t.Errorf("the NeuroQuery model: %v", nq)
	}
	ev, _ := second["evaluation"].(map[string]any)
	if second["id"] != nnID || second["default"] != false || second["kind"] != nn.Manifest.Kind ||
		second["model_version"] != nn.Manifest.ModelVersion || ev == nil || ev["pearson_r"] == nil || ev["articles"] == 0.0 ||
		second["mapped_features"] != float64(nn.Manifest.Features-len(nn.Vocabulary.Unmapped)) {
		t.Errorf("the network: %v", second)
	}

	// One text, two models: two key spaces, two jobs, each for its model's version.
	n, _ := querytext.Normalize("faces")
	nqID, netID := querytext.Key(b.s.ModelVersion(), n), querytext.Key(nn.Manifest.ModelVersion, n)
	first := b.get(t, "/api/v1/maps?q=faces&model="+nnID)
	if first.status != http.StatusAccepted || first.body["id"] != netID || first.body["model"] != nnID ||
		first.body["model_version"] != nn.Manifest.ModelVersion {
		t.Fatalf("?model=%s: %d %v", nnID, first.status, first.body)
	}
	byVersion := b.post(t, "/api/v1/maps", `{"query": "faces", "model": "`+nn.Manifest.ModelVersion+`"}`)
	if byVersion.status != http.StatusAccepted || byVersion.body["id"] != netID {
		t.Errorf("the model named by its version: %d %v", byVersion.status, byVersion.body)
	}
	def := b.get(t, "/api/v1/maps?q=faces")
	if def.status != http.StatusAccepted || def.body["id"] != nqID || def.body["model"] != "neuroquery" {
		t.Errorf("no model: %d %v", def.status, def.body)
	}
	want := []queue.Message{{ID: netID, Text: "faces", ModelVersion: nn.Manifest.ModelVersion}, {ID: nqID, Text: "faces", ModelVersion: b.s.ModelVersion()}}
	if got := b.q.Messages(); !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
	b.complete(t, netID)
	if done := b.get(t, "/api/v1/maps/"+netID); done.status != http.StatusOK || done.body["model"] != nnID {
		t.Errorf("the network's finished map: %d %v", done.status, done.body)
	}

	// A term the tiny network never saw in training has no map in it, and has one in NeuroQuery.
	unseen := ""
	nqUnmapped := b.s.models[0].unmapped
	for _, j := range nn.Vocabulary.Unmapped {
		f := nn.Vocabulary.Features[j]
		if terms := b.s.feat.Terms(f); len(terms) == 1 && terms[0] == f && !nqUnmapped[f] {
			unseen = f
			break
		}
	}
	if unseen == "" {
		t.Fatal("no term without a map in the network alone")
	}
	if a := b.get(t, "/api/v1/maps?q="+url.QueryEscape(unseen)+"&model="+nnID); a.status != http.StatusUnprocessableEntity || a.errorCode() != "no_mapped_terms" {
		t.Errorf("%q in the network: %d %v", unseen, a.status, a.body)
	}
	if a := b.get(t, "/api/v1/terms?q="+url.QueryEscape(unseen)+"&model="+nnID); a.status != http.StatusOK || len(a.body["unmapped_terms"].([]any)) != 1 {
		t.Errorf("/api/v1/terms of %q in the network: %d %v", unseen, a.status, a.body)
	}
	if a := b.get(t, "/api/v1/maps?q="+url.QueryEscape(unseen)); a.status != http.StatusAccepted {
		t.Errorf("%q in NeuroQuery: %d %v", unseen, a.status, a.body)
	}

	// Unknown models are refused with the list.
	for _, a := range []answer{
		b.get(t, "/api/v1/maps?q=faces&model=gpt"),
		b.post(t, "/api/v1/maps", `{"query": "faces", "model": "gpt"}`),
		b.post(t, "/api/v1/maps", `{"query": "faces", "model": 3}`),
		b.get(t, "/api/v1/terms?q=faces&model=gpt"),
	} {
		if a.status != http.StatusBadRequest || a.errorCode() != "unknown_model" {
			t.Errorf("an unknown model: %d %v", a.status, a.body)
		}
	}
}

func TestAddModelRefusesAnotherVocabulary(t *testing.T) {
	b, nn := twoModels(t)
	if err := b.s.AddModel(nn); err == nil {
		t.Error("the same model twice")
	}
	other := *nn
	other.Manifest.ModelVersion = "nn-other"
	other.Manifest.Name = "other"
	other.Vocabulary.Features = slices.Clone(nn.Vocabulary.Features)
	other.Vocabulary.Features[0] = "zzz"
	if err := b.s.AddModel(&other); err == nil {
		t.Error("a model of other features")
	}
}
