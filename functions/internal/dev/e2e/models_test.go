package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// The stack serves the tiny network beside NeuroQuery (stacktest): one text gets a map from each,
// under two ids, each computed by its own model in the Predict function and stored under its own
// version, and the model list names both with the network's held-out figures.
func TestTwoModelsOnTheStack(t *testing.T) {
	if len(stack.MoreModelVersions) != 1 {
		t.Fatalf("the stack serves %d other models, want the tiny network", len(stack.MoreModelVersions))
	}
	nnVersion := stack.MoreModelVersions[0]
	list := get(t, "/api/v1/models")
	body := list.json(t)
	models, _ := body["models"].([]any)
	if list.status != http.StatusOK || len(models) != 2 || body["default"] != "neuroquery" {
		t.Fatalf("GET /api/v1/models: %d %s", list.status, list.body)
	}
	nn := models[1].(map[string]any)
	if nn["model_version"] != nnVersion || nn["evaluation"] == nil {
		t.Fatalf("the network in the list: %v", nn)
	}
	nnID := nn["id"].(string)

	text := "motor imagery" // a text no other test maps: some delete their stored files
	n, _ := querytext.Normalize(text)
	byNN := get(t, query(text, 10)+"&model="+nnID)
	if byNN.status != http.StatusOK {
		t.Fatalf("the network's map: %d %s", byNN.status, byNN.body)
	}
	got := byNN.json(t)
	if got["id"] != querytext.Key(nnVersion, n) || got["model"] != nnID || got["model_version"] != nnVersion {
		t.Errorf("the network's map: %v", got)
	}
	byNQ := pollDone(t, get(t, query(text, 10)).json(t)["id"].(string)).json(t)
	if byNQ["id"] != querytext.Key(stack.ModelVersion, n) || byNQ["model"] != "neuroquery" || byNQ["id"] == got["id"] {
		t.Errorf("NeuroQuery's map: %v", byNQ)
	}

	// The two stored maps are the models' own: both NIfTI files on the same grid, and different.
	var files [][]byte
	for _, r := range []map[string]any{got, byNQ} {
		f := get(t, "/api/v1/maps/"+r["id"].(string)+"/map.nii.gz")
		if f.status != http.StatusOK {
			t.Fatalf("map file of %s: %d", r["id"], f.status)
		}
		zr, err := gzip.NewReader(bytes.NewReader(f.body))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, raw)
	}
	if len(files[0]) != len(files[1]) || bytes.Equal(files[0], files[1]) {
		t.Errorf("the two models' maps: %d and %d bytes, equal %v", len(files[0]), len(files[1]), bytes.Equal(files[0], files[1]))
	}

	if bad := get(t, query(text, 0)+"&model=nope"); bad.status != http.StatusBadRequest {
		t.Errorf("an unknown model: %d %s", bad.status, bad.body)
	}
}
