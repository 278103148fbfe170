package bundle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
)

func TestLoadRejectsBrokenBundles(t *testing.T) {
	src := testenv.BundleDir(t)
	copyBundle := func(t *testing.T) string {
		dir := t.TempDir()
		for _, name := range append(requiredFiles, ManifestFile) {
			data, err := os.ReadFile(filepath.Join(src, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	editManifest := func(t *testing.T, dir string, edit func(*Manifest)) {
		path := filepath.Join(dir, ManifestFile)
		raw, _ := os.ReadFile(path)
		var man Manifest
		if err := json.Unmarshal(raw, &man); err != nil {
			t.Fatal(err)
		}
		edit(&man)
		raw, _ = json.Marshal(man)
		os.WriteFile(path, raw, 0o644)
	}
	// editVocabulary changes vocabulary.json and keeps the manifest's checksums true.
	editVocabulary := func(t *testing.T, dir string, edit func(map[string]any)) {
		path := filepath.Join(dir, VocabularyFile)
		raw, _ := os.ReadFile(path)
		var voc map[string]any
		if err := json.Unmarshal(raw, &voc); err != nil {
			t.Fatal(err)
		}
		edit(voc)
		raw, _ = json.Marshal(voc)
		os.WriteFile(path, raw, 0o644)
		editManifest(t, dir, func(m *Manifest) {
			m.Files[VocabularyFile] = FileInfoOf(raw)
			m.ModelVersion = VersionOf(m.Files)
		})
	}
	// A bundle built before the features without a map were recorded still loads, recording none.
	t.Run("no record of unmapped features", func(t *testing.T) {
		dir := copyBundle(t)
		editVocabulary(t, dir, func(v map[string]any) { delete(v, "unmapped") })
		b, err := Load(dir)
		if err != nil || b.Vocabulary.Unmapped != nil || len(b.Vocabulary.UnmappedTerms()) != 0 {
			t.Fatalf("Load: %v", err)
		}
	})
	testCases := []struct {
		name    string
		breakIt func(t *testing.T, dir string)
		want    string
	}{
		{"unmapped features out of order", func(t *testing.T, dir string) {
			editVocabulary(t, dir, func(v map[string]any) { v["unmapped"] = []int{5, 3} })
		}, "without a map"},
		{"unmapped feature out of range", func(t *testing.T, dir string) {
			editVocabulary(t, dir, func(v map[string]any) { v["unmapped"] = []int{1 << 20} })
		}, "without a map"},
		{"no bundle", func(t *testing.T, dir string) { os.RemoveAll(dir) }, "not found"},
		{"no manifest", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, ManifestFile)) }, "not a model bundle"},
		{"corrupt manifest", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, ManifestFile), []byte("{not json"), 0o644)
		}, "manifest.json is corrupt"},
		{"flipped byte in the model", func(t *testing.T, dir string) {
			path := filepath.Join(dir, ModelFile)
			data, _ := os.ReadFile(path)
			data[len(data)/2] ^= 0xff
			os.WriteFile(path, data, 0o644)
		}, "model.onnx is corrupt"},
		{"truncated article index", func(t *testing.T, dir string) {
			path := filepath.Join(dir, ArticlesFile)
			data, _ := os.ReadFile(path)
			os.WriteFile(path, data[:len(data)/2], 0o644)
		}, "articles.bin is corrupt"},
		{"missing template", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, TemplateFile)) }, "template.nii.gz is missing"},
		{"newer format", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *Manifest) { m.FormatVersion = FormatVersion + 1 })
		}, "format version"},
		{"edited version", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *Manifest) { m.ModelVersion = "nq-0000000000000000" })
		}, "does not match its files"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyBundle(t)
			tc.breakIt(t, dir)
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: error %v, want one that says %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "make model") {
				t.Errorf("error %q does not say how to fix it", err)
			}
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	dir := testenv.BundleDir(b)
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
