// Package bundle loads and verifies the serving bundle: everything a prediction needs, in one
// directory with a manifest that names its version and checks every file. The bundle is built
// offline by package modelbuild; Predict loads it with this package, and Query reads only its
// manifest and vocabulary (package manifest).
//
//	manifest.json     format and model version, tensor names and shapes, grid, file checksums
//	model.onnx        the numeric path, L2-normalised TF-IDF → z-map (and the smoothed features)
//	vocabulary.json   features, IDF, synonyms, stop words, selected features and their map weights
//	mask.nii.gz       the brain mask of the 4 mm grid
//	articles.bin      the related-article index
//	template.nii.gz   the 1 mm T1 template the preview is drawn over
//	surface.bin       where maps are sampled for each vertex of fsaverage5 (brain.Surface)
//	decoder.bin       the brain → text decoder (decode.Data)
package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"

	"github.com/text2brain/text2brain/functions/internal/model/articles"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/bundle/manifest"
	"github.com/text2brain/text2brain/functions/internal/model/decode"
)

// The manifest's names, so that a caller of the whole bundle needs this package alone.
type (
	Manifest    = manifest.Manifest
	TensorSpec  = manifest.TensorSpec
	TensorSpecs = manifest.TensorSpecs
	Grid        = manifest.Grid
	FileInfo    = manifest.FileInfo
	Vocabulary  = manifest.Vocabulary
	Header      = manifest.Header
)

const (
	DirEnv         = manifest.DirEnv
	DefaultDir     = manifest.DefaultDir
	FormatVersion  = manifest.FormatVersion
	ManifestFile   = manifest.ManifestFile
	ModelFile      = manifest.ModelFile
	VocabularyFile = manifest.VocabularyFile
	MaskFile       = manifest.MaskFile
	ArticlesFile   = manifest.ArticlesFile
	TemplateFile   = manifest.TemplateFile
	SurfaceFile    = manifest.SurfaceFile
	DecoderFile    = manifest.DecoderFile
	InputName      = manifest.InputName
	OutputZ        = manifest.OutputZ
	OutputSmooth   = manifest.OutputSmooth
)

// LoadHeader, VersionOf, FileInfoOf and Specs are the manifest package's.
var (
	LoadHeader = manifest.LoadHeader
	VersionOf  = manifest.VersionOf
	FileInfoOf = manifest.FileInfoOf
	Specs      = manifest.Specs
)

var requiredFiles = []string{ModelFile, VocabularyFile, MaskFile, ArticlesFile, TemplateFile, SurfaceFile}

// Bundle is a loaded, verified bundle.
type Bundle struct {
	Manifest   Manifest
	ONNX       []byte
	Vocabulary Vocabulary
	Mask       *brain.Mask
	Articles   *articles.Index
	Template   *brain.Volume
	Surface    *brain.Surface
	// Decoder ranks terms for a map (brain → text). nil for a bundle built before decoders were
	// (its manifest lists no decoder.bin): such a bundle still predicts, and has no decoder.
	Decoder *decode.Decoder
}

// GridOf is the grid of maps on mask m.
func GridOf(m *brain.Mask) Grid {
	return Grid{Dims: brain.Dims, Affine: brain.Affine, Space: "MNI152", MaskVoxels: m.Len()}
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

// LoadFS reads and verifies a bundle from a file system.
func LoadFS(fsys fs.FS) (*Bundle, error) {
	// The decoder is required of every bundle whose manifest lists it; one built before decoders
	// loads without it, so that this program runs on an older bundle until the next `make model`.
	h, files, err := manifest.ReadHeaderOptional(fsys, requiredFiles, []string{DecoderFile})
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
	if b.Surface, err = brain.ReadSurface(bytes.NewReader(files[SurfaceFile])); err != nil {
		return nil, fmt.Errorf("bundle: %s: %w; rebuild it with `make model`", SurfaceFile, err)
	}
	if raw, ok := files[DecoderFile]; ok {
		data, err := decode.ParseData(raw)
		if err != nil {
			return nil, fmt.Errorf("bundle: %s: %w; rebuild it with `make model`", DecoderFile, err)
		}
		if data.MaskLen != b.Mask.Len() {
			return nil, fmt.Errorf("bundle: %s: a decoder for %d mask voxels, the mask has %d; rebuild it with `make model`", DecoderFile, data.MaskLen, b.Mask.Len())
		}
		if b.Decoder, err = decode.New(data, b.Vocabulary.Features); err != nil {
			return nil, fmt.Errorf("bundle: %s: %w; rebuild it with `make model`", DecoderFile, err)
		}
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
	if !manifest.EqualSpec(man.Input, want.Input) || len(man.Outputs) != 2 || !manifest.EqualSpec(man.Outputs[0], want.Outputs[0]) || !manifest.EqualSpec(man.Outputs[1], want.Outputs[1]) {
		return fmt.Errorf("tensors %v → %v in the manifest, want %v → %v", man.Input, man.Outputs, want.Input, want.Outputs)
	}
	for _, j := range voc.Selected {
		if j < 0 || j >= nFeatures {
			return fmt.Errorf("selected feature %d out of range", j)
		}
	}
	for i, j := range voc.Unmapped {
		if j < 0 || j >= nFeatures || i > 0 && voc.Unmapped[i-1] >= j {
			return fmt.Errorf("the features without a map are not distinct features in order (%d at %d)", j, i)
		}
	}
	for _, v := range voc.IDF {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("vocabulary has a non-finite IDF")
		}
	}
	return nil
}
