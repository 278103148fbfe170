// Package bundle loads and verifies the serving bundle: everything a prediction needs, in one
// directory with a manifest that names its version and checks every file. The bundle is built
// offline by package modelbuild; this package is what the functions link.
//
//	manifest.json     format and model version, tensor names and shapes, grid, file checksums
//	model.onnx        the numeric path, L2-normalised TF-IDF → z-map (and the smoothed features)
//	vocabulary.json   features, IDF, synonyms, stop words, selected features and their map weights
//	mask.nii.gz       the brain mask of the 4 mm grid
//	articles.bin      the related-article index
//	template.nii.gz   the 1 mm T1 template the preview is drawn over
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/text2brain/text2brain/functions/internal/model/articles"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/textfeat"
)

// DirEnv names the environment variable of the bundle directory, and DefaultDir is where
// `make model` builds it, relative to the repository root.
const (
	DirEnv     = "TEXT2BRAIN_MODEL"
	DefaultDir = "build/model"
)

// FormatVersion is the bundle layout this code reads and writes.
const FormatVersion = 1

// Bundle file names.
const (
	ManifestFile   = "manifest.json"
	ModelFile      = "model.onnx"
	VocabularyFile = "vocabulary.json"
	MaskFile       = "mask.nii.gz"
	ArticlesFile   = "articles.bin"
	TemplateFile   = "template.nii.gz"
)

// Names of the graph's input and outputs: the runtime and the manifest use these.
const (
	InputName    = "tfidf"
	OutputZ      = "z"
	OutputSmooth = "smoothed"
)

var requiredFiles = []string{ModelFile, VocabularyFile, MaskFile, ArticlesFile, TemplateFile}

// Manifest describes a bundle.
type Manifest struct {
	FormatVersion int `json:"format_version"`
	// ModelVersion is a hash of the content of every file: a new model is a new version.
	ModelVersion string              `json:"model_version"`
	Kind         string              `json:"kind"`
	Input        TensorSpec          `json:"input"`
	Outputs      []TensorSpec        `json:"outputs"`
	Grid         Grid                `json:"grid"`
	Features     int                 `json:"features"`
	Articles     int                 `json:"articles"`
	Files        map[string]FileInfo `json:"files"`
}

// TensorSpec names a graph input or output.
type TensorSpec struct {
	Name  string  `json:"name"`
	Shape []int64 `json:"shape"`
	Type  string  `json:"type"`
}

// Grid is the voxel grid of the maps.
type Grid struct {
	Dims       [3]int        `json:"dims"`
	Affine     [4][4]float64 `json:"affine"`
	Space      string        `json:"space"`
	MaskVoxels int           `json:"mask_voxels"`
}

// FileInfo checks one file.
type FileInfo struct {
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// Vocabulary is the content of vocabulary.json: the featurizer's data, and for the selected
// features the norm of their coefficient column, which turns a smoothed feature value into its
// weight in the brain map.
type Vocabulary struct {
	textfeat.Vocabulary
	Selected []int     `json:"selected"`
	MapNorms []float64 `json:"map_norms"`
}

// Bundle is a loaded, verified bundle.
type Bundle struct {
	Manifest   Manifest
	ONNX       []byte
	Vocabulary Vocabulary
	Mask       *brain.Mask
	Articles   *articles.Index
	Template   *brain.Volume
}

// GridOf is the grid of maps on mask m.
func GridOf(m *brain.Mask) Grid {
	return Grid{Dims: brain.Dims, Affine: brain.Affine, Space: "MNI152", MaskVoxels: m.Len()}
}

// VersionOf is the model version of a bundle with these files: a hash of their checksums in name
// order.
func VersionOf(files map[string]FileInfo) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s %s %d\n", n, files[n].SHA256, files[n].Bytes)
	}
	return "nq-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// FileInfoOf is the checksum entry of a file's content.
func FileInfoOf(data []byte) FileInfo {
	sum := sha256.Sum256(data)
	return FileInfo{SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(data))}
}

// Load reads and verifies the bundle in dir.
func Load(dir string) (*Bundle, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("bundle: %s not found: build it with `make model` or `text2brain model build`", dir)
	}
	b, err := LoadFS(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("%w (bundle %s)", err, dir)
	}
	return b, nil
}

// readManifest reads and checks manifest.json.
func readManifest(fsys fs.FS) (Manifest, error) {
	var man Manifest
	raw, err := fs.ReadFile(fsys, ManifestFile)
	if errors.Is(err, fs.ErrNotExist) {
		return man, fmt.Errorf("bundle: %s missing: this is not a model bundle; rebuild it with `make model`", ManifestFile)
	}
	if err != nil {
		return man, fmt.Errorf("bundle: reading %s: %w", ManifestFile, err)
	}
	if err := json.Unmarshal(raw, &man); err != nil {
		return man, fmt.Errorf("bundle: %s is corrupt (%v); rebuild it with `make model`", ManifestFile, err)
	}
	if man.FormatVersion != FormatVersion {
		return man, fmt.Errorf("bundle: format version %d, this program reads version %d; rebuild it with this version's `make model`", man.FormatVersion, FormatVersion)
	}
	if v := VersionOf(man.Files); v != man.ModelVersion {
		return man, fmt.Errorf("bundle: model version %s does not match its files (%s); rebuild it with `make model`", man.ModelVersion, v)
	}
	return man, nil
}

// readFiles reads the named files and checks each against the manifest.
func readFiles(fsys fs.FS, man Manifest, names []string) (map[string][]byte, error) {
	files := map[string][]byte{}
	var problems []string
	for _, name := range names {
		want, listed := man.Files[name]
		if !listed {
			problems = append(problems, name+" is not in the manifest")
			continue
		}
		data, err := fs.ReadFile(fsys, name)
		switch {
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			// Not the bundle's fault (a bucket that did not answer, say): no advice to rebuild.
			return nil, fmt.Errorf("bundle: reading %s: %w", name, err)
		case err != nil:
			problems = append(problems, name+" is missing")
		case FileInfoOf(data) != want:
			problems = append(problems, fmt.Sprintf("%s is corrupt (%d bytes, checksum %s…; the manifest says %d bytes, %s…)",
				name, len(data), FileInfoOf(data).SHA256[:12], want.Bytes, want.SHA256[:min(12, len(want.SHA256))]))
		default:
			files[name] = data
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("bundle: %s; rebuild it with `make model`", strings.Join(problems, "; "))
	}
	return files, nil
}

// Header is the light part of a bundle: what the Query function needs to name the model version
// and to tell whether a text has any known term, without the 40 MB of maps.
type Header struct {
	Manifest   Manifest
	Vocabulary Vocabulary
}

// LoadHeader reads and verifies the manifest and the vocabulary of a bundle.
func LoadHeader(fsys fs.FS) (*Header, error) {
	h, _, err := readHeader(fsys, []string{VocabularyFile})
	return h, err
}

// readHeader reads the manifest and the named files (the vocabulary among them), each checked
// against the manifest, and decodes the vocabulary.
func readHeader(fsys fs.FS, names []string) (*Header, map[string][]byte, error) {
	man, err := readManifest(fsys)
	if err != nil {
		return nil, nil, err
	}
	files, err := readFiles(fsys, man, names)
	if err != nil {
		return nil, nil, err
	}
	h := &Header{Manifest: man}
	if err := json.Unmarshal(files[VocabularyFile], &h.Vocabulary); err != nil {
		return nil, nil, fmt.Errorf("bundle: %s: %w; rebuild it with `make model`", VocabularyFile, err)
	}
	return h, files, nil
}

// LoadFS reads and verifies a bundle from a file system.
func LoadFS(fsys fs.FS) (*Bundle, error) {
	h, files, err := readHeader(fsys, requiredFiles)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Manifest: h.Manifest, Vocabulary: h.Vocabulary, ONNX: files[ModelFile]}
	if b.Mask, err = brain.ReadMask(bytes.NewReader(files[MaskFile])); err != nil {
		return nil, fmt.Errorf("bundle: %s: %w; rebuild it with `make model`", MaskFile, err)
	}
	if b.Articles, err = articles.ReadIndex(bytes.NewReader(files[ArticlesFile])); err != nil {
		return nil, fmt.Errorf("bundle: %s: %w; rebuild it with `make model`", ArticlesFile, err)
	}
	if b.Template, err = brain.ReadNIfTI(bytes.NewReader(files[TemplateFile])); err != nil {
		return nil, fmt.Errorf("bundle: %s: %w; rebuild it with `make model`", TemplateFile, err)
	}
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("bundle: %w; rebuild it with `make model`", err)
	}
	return b, nil
}

// check compares the manifest's promises with what the files hold.
func (b *Bundle) check() error {
	man, voc := b.Manifest, b.Vocabulary
	nFeatures := len(voc.Features)
	switch {
	case man.Grid != GridOf(b.Mask):
		return fmt.Errorf("grid %+v in the manifest, %+v in this program and the mask", man.Grid, GridOf(b.Mask))
	case man.Features != nFeatures || len(voc.IDF) != nFeatures:
		return fmt.Errorf("manifest says %d features, vocabulary has %d (and %d IDF values)", man.Features, nFeatures, len(voc.IDF))
	case len(voc.Selected) != len(voc.MapNorms):
		return fmt.Errorf("%d selected features but %d map weights", len(voc.Selected), len(voc.MapNorms))
	case man.Articles != b.Articles.Len():
		return fmt.Errorf("manifest says %d articles, the index has %d", man.Articles, b.Articles.Len())
	}
	want := Specs(nFeatures, b.Mask.Len())
	if !equalSpec(man.Input, want.Input) || len(man.Outputs) != 2 || !equalSpec(man.Outputs[0], want.Outputs[0]) || !equalSpec(man.Outputs[1], want.Outputs[1]) {
		return fmt.Errorf("tensors %v → %v in the manifest, want %v → %v", man.Input, man.Outputs, want.Input, want.Outputs)
	}
	for _, j := range voc.Selected {
		if j < 0 || j >= nFeatures {
			return fmt.Errorf("selected feature %d out of range", j)
		}
	}
	for _, v := range voc.IDF {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("vocabulary has a non-finite IDF")
		}
	}
	return nil
}

// TensorSpecs are the graph's input and outputs for a vocabulary and a mask.
type TensorSpecs struct {
	Input   TensorSpec
	Outputs []TensorSpec
}

// Specs is the contract of the graph with nFeatures features and nVoxels mask voxels.
func Specs(nFeatures, nVoxels int) TensorSpecs {
	return TensorSpecs{
		Input: TensorSpec{Name: InputName, Shape: []int64{1, int64(nFeatures)}, Type: "float32"},
		Outputs: []TensorSpec{
			{Name: OutputZ, Shape: []int64{1, int64(nVoxels)}, Type: "float32"},
			{Name: OutputSmooth, Shape: []int64{1, int64(nFeatures)}, Type: "float32"},
		},
	}
}

func equalSpec(a, b TensorSpec) bool {
	if a.Name != b.Name || a.Type != b.Type || len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	return true
}
