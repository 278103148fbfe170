package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
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

// faultFS is a bundle directory with faults: a file that is missing, one whose first byte read
// is flipped, one whose reading fails after its first kilobyte (a bucket that stops answering).
type faultFS struct {
	fs.FS
	missing, corrupt, failing string
}

func (f faultFS) Open(name string) (fs.File, error) {
	if name == f.missing {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	file, err := f.FS.Open(name)
	switch {
	case err != nil:
		return nil, err
	case name == f.corrupt:
		return &flippedFile{File: file}, nil
	case name == f.failing:
		return &failingFile{File: file}, nil
	}
	return file, nil
}

type flippedFile struct {
	fs.File
	flipped bool
}

func (f *flippedFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	if n > 0 && !f.flipped {
		p[0] ^= 0xff
		f.flipped = true
	}
	return n, err
}

type failingFile struct {
	fs.File
	read int
}

func (f *failingFile) Read(p []byte) (int, error) {
	if f.read >= 1024 {
		return 0, errors.New("connection reset by peer")
	}
	n, err := f.File.Read(p[:min(len(p), 1024)])
	f.read += n
	return n, err
}

// Graph hands out the graph, verified, before the rest of the bundle is loaded, and refuses a
// corrupt one; Wait then says what Load says, every file that is missing or corrupt together, in
// the manifest's order of parts, and names where the bundle is.
func TestLoading(t *testing.T) {
	dir := testenv.BundleDir(t)
	want, err := os.ReadFile(filepath.Join(dir, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	l := StartFS(os.DirFS(dir), "")
	onnx, man, ok := l.Graph()
	if !ok || !bytes.Equal(onnx, want) || man.Files[ModelFile] != FileInfoOf(want) {
		t.Fatalf("Graph: %d bytes, ok %v, manifest %+v", len(onnx), ok, man.Files[ModelFile])
	}
	if b, err := l.Wait(); err != nil || !bytes.Equal(b.ONNX, want) || b.Template == nil || b.Decoder == nil {
		t.Fatalf("Wait: %v", err)
	}

	for _, tc := range []struct {
		name      string
		fsys      faultFS
		graph     bool
		want      string
		noRebuild bool
	}{
		{"corrupt graph", faultFS{corrupt: ModelFile}, false, "bundle: model.onnx is corrupt", false},
		{"corrupt template, good graph", faultFS{corrupt: TemplateFile}, true, "bundle: template.nii.gz is corrupt", false},
		{"two bad files", faultFS{missing: TemplateFile, corrupt: ArticlesFile}, true,
			"bundle: articles.bin is corrupt (4698026 bytes, checksum", false},
		{"a read that fails", faultFS{failing: DecoderFile}, true, "bundle: reading decoder.bin: connection reset by peer", true},
		{"no manifest", faultFS{missing: ManifestFile}, false, "bundle: manifest.json missing", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fsys.FS = os.DirFS(dir)
			l := StartFS(tc.fsys, "gs://models/m")
			if _, _, ok := l.Graph(); ok != tc.graph {
				t.Errorf("Graph: ok %v, want %v", ok, tc.graph)
			}
			b, err := l.Wait()
			if b != nil || err == nil || !strings.HasPrefix(err.Error(), tc.want) || !strings.HasSuffix(err.Error(), "(bundle gs://models/m)") {
				t.Fatalf("Wait: %v, want an error that starts %q and names the bundle", err, tc.want)
			}
			if rebuild := strings.Contains(err.Error(), "make model"); rebuild == tc.noRebuild {
				t.Errorf("error %q: advice to rebuild %v, want %v", err, rebuild, !tc.noRebuild)
			}
		})
	}
	t.Run("every bad file, in order", func(t *testing.T) {
		_, err := LoadFS(faultFS{FS: os.DirFS(dir), missing: TemplateFile, corrupt: ArticlesFile})
		if err == nil || !strings.Contains(err.Error(), "…); template.nii.gz is missing; rebuild it with `make model`") {
			t.Errorf("LoadFS: %v, want the corrupt article index, then the missing template", err)
		}
	})
	t.Run("no directory", func(t *testing.T) {
		l := Start(filepath.Join(t.TempDir(), "none"))
		if _, _, ok := l.Graph(); ok {
			t.Error("Graph of no bundle")
		}
		if _, err := l.Wait(); err == nil || !strings.Contains(err.Error(), "not found: build it with `make model`") {
			t.Errorf("Wait: %v", err)
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	dir := testenv.BundleDir(b)
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
