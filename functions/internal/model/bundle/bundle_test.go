package bundle

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/decode"
)

// copyBundle copies the bundle in src, the manifest and every file it lists, to a new directory.
func copyBundle(t *testing.T, src string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(src, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var man Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	names := []string{ManifestFile}
	for name := range man.Files {
		names = append(names, name)
	}
	for _, name := range names {
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

func editManifest(t *testing.T, dir string, edit func(*Manifest)) {
	t.Helper()
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

// replaceFile writes a file of the bundle and keeps the manifest's checksums true.
func replaceFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	os.WriteFile(filepath.Join(dir, name), data, 0o644)
	editManifest(t, dir, func(m *Manifest) {
		m.Files[name] = FileInfoOf(data)
		m.ModelVersion = VersionOf(m.Files)
	})
}

func TestLoadRejectsBrokenBundles(t *testing.T) {
	src := testenv.BundleDir(t)
	copyBundle := func(t *testing.T) string { return copyBundle(t, src) }
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
		replaceFile(t, dir, VocabularyFile, raw)
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

// The decoder (decoder.bin) is checked like the other files, and against the mask and the
// vocabulary; a bundle built before decoders existed (its manifest lists none) loads without one.
func TestLoadChecksTheDecoder(t *testing.T) {
	src := testenv.BundleDir(t)
	if b, err := Load(src); err != nil || b.Decoder == nil {
		t.Fatalf("the bundle %s has no decoder (%v): it was built before decoders; rebuild it with `make model`", src, err)
	} else if b.Decoder.MaskLen() != b.Mask.Len() {
		t.Errorf("decoder for %d voxels, mask %d", b.Decoder.MaskLen(), b.Mask.Len())
	}
	t.Run("bundle from before decoders", func(t *testing.T) {
		dir := copyBundle(t, src)
		os.Remove(filepath.Join(dir, DecoderFile))
		editManifest(t, dir, func(m *Manifest) {
			delete(m.Files, DecoderFile)
			m.ModelVersion = VersionOf(m.Files)
		})
		b, err := Load(dir)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if b.Decoder != nil || b.Decoder.Terms(make([]float32, b.Mask.Len()), 10) != nil {
			t.Error("a bundle without decoder.bin has a decoder")
		}
	})
	testCases := []struct {
		name    string
		breakIt func(t *testing.T, dir string)
		want    string
	}{
		{"missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, DecoderFile)) }, "decoder.bin is missing"},
		{"truncated", func(t *testing.T, dir string) {
			path := filepath.Join(dir, DecoderFile)
			data, _ := os.ReadFile(path)
			os.WriteFile(path, data[:len(data)/2], 0o644)
		}, "decoder.bin is corrupt"},
		{"bad payload", func(t *testing.T, dir string) {
			data, _ := os.ReadFile(filepath.Join(dir, DecoderFile))
			data[len(data)/2] ^= 0xff // the manifest's checksum is made to agree; the file's own does not
			replaceFile(t, dir, DecoderFile, data)
		}, "decoder.bin: decode: read data: checksum mismatch"},
		{"another vocabulary", func(t *testing.T, dir string) {
			replaceFile(t, dir, DecoderFile, otherDecoder(t, 28542, 3))
		}, "3 terms, the vocabulary 6308"},
		{"another mask", func(t *testing.T, dir string) {
			replaceFile(t, dir, DecoderFile, otherDecoder(t, 100, 6308))
		}, "100 mask voxels"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyBundle(t, src)
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

// otherDecoder is a valid decoder file for a mask of maskLen voxels and nFeatures terms.
func otherDecoder(t *testing.T, maskLen, nFeatures int) []byte {
	t.Helper()
	const dim = 2
	d := &decode.Data{MaskLen: maskLen, Dim: dim, NFeatures: nFeatures,
		Basis: decode.QuantizeRows(dim, maskLen, make([]float64, dim*maskLen)), Center: make([]float32, dim),
		Weights: decode.QuantizeRows(nFeatures, dim, make([]float64, nFeatures*dim)), Intercept: make([]float32, nFeatures)}
	var b bytes.Buffer
	if _, err := d.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func BenchmarkLoad(b *testing.B) {
	dir := testenv.BundleDir(b)
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
