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
	"sync"

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
	KindNeuroQuery = manifest.KindNeuroQuery
)

// LoadHeader, VersionOf, FileInfoOf and Specs are the manifest package's.
var (
	LoadHeader = manifest.LoadHeader
	VersionOf  = manifest.VersionOf
	FileInfoOf = manifest.FileInfoOf
	Specs      = manifest.Specs
)

// Contract is the graph's contract, which check verified.
func (b *Bundle) Contract() manifest.Contract {
	c, _ := b.Manifest.Contract()
	return c
}

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
func Load(dir string) (*Bundle, error) { return Start(dir).Wait() }

// LoadFS reads and verifies a bundle from a file system.
func LoadFS(fsys fs.FS) (*Bundle, error) { return StartFS(fsys, "").Wait() }

// Loading is a bundle being read and verified. Its files are read at once and each is parsed as
// soon as its checksum agrees with the manifest, concurrently; Graph hands out the verified graph
// before the rest is done, so that ONNX Runtime can open it meanwhile; Wait gives the bundle, or
// what is wrong with it, as Load does.
type Loading struct {
	graphOnce sync.Once
	graphed   chan struct{} // closed when the graph is verified or the loading failed
	graph     []byte
	man       Manifest

	done chan struct{}
	b    *Bundle
	err  error
}

// Start begins loading the bundle in dir; its errors name dir.
func Start(dir string) *Loading {
	if _, err := os.Stat(dir); err != nil {
		return failed(fmt.Errorf("bundle: %s not found: build it with `make model` or `text2brain model build`", dir))
	}
	return StartFS(os.DirFS(dir), dir)
}

// StartFS begins loading a bundle from a file system, which must allow concurrent reads (a
// directory and a bucket do). where, if not empty, names the bundle in the errors.
func StartFS(fsys fs.FS, where string) *Loading {
	l := &Loading{graphed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.b, l.err = l.load(fsys)
		if l.err != nil && where != "" {
			l.err = fmt.Errorf("%w (bundle %s)", l.err, where)
		}
		l.setGraph(nil, Manifest{}) // when the graph never checked out
	}()
	return l
}

func failed(err error) *Loading {
	l := &Loading{graphed: make(chan struct{}), done: make(chan struct{}), err: err}
	close(l.graphed)
	close(l.done)
	return l
}

func (l *Loading) setGraph(onnx []byte, man Manifest) {
	l.graphOnce.Do(func() {
		l.graph, l.man = onnx, man
		close(l.graphed)
	})
}

// Graph waits for model.onnx and returns it, checked against the manifest, with the manifest
// (read and checked too); the rest of the bundle may still be loading, and may yet fail. ok is
// false when the bundle failed before its graph checked out: Wait says why.
func (l *Loading) Graph() (onnx []byte, man Manifest, ok bool) {
	<-l.graphed
	return l.graph, l.man, l.graph != nil
}

// Wait waits for the whole bundle: loaded and verified, or the reason it is not.
func (l *Loading) Wait() (*Bundle, error) {
	<-l.done
	return l.b, l.err
}

// load reads the bundle's files and parses each in the goroutine that read it. The errors are those
// of reading the parts one after the other: the files that are missing or corrupt all together
// (ReadFiles), then the first part, in the order of the struct, that does not parse, then the
// checks across parts.
func (l *Loading) load(fsys fs.FS) (*Bundle, error) {
	man, err := manifest.ReadManifest(fsys)
	if err != nil {
		return nil, err
	}
	// The decoder is required of every bundle whose manifest lists it; one built before decoders
	// loads without it, so that this program runs on an older bundle until the next `make model`.
	names := []string{ModelFile, VocabularyFile, MaskFile, ArticlesFile, TemplateFile, SurfaceFile}
	if _, listed := man.Files[DecoderFile]; listed {
		names = append(names, DecoderFile)
	}
	b := &Bundle{Manifest: man}
	// Each part is written by the goroutine of its file alone, and read after ReadFiles returns.
	var (
		vocErr, maskErr, articlesErr, templateErr, surfaceErr, decoderErr error
		decoderData                                                       *decode.Data
	)
	_, err = manifest.ReadFiles(fsys, man, names, func(name string, data []byte) {
		switch name {
		case ModelFile:
			b.ONNX = data
			l.setGraph(data, man)
		case VocabularyFile:
			b.Vocabulary, vocErr = manifest.ParseVocabulary(data)
		case MaskFile:
			b.Mask, maskErr = brain.ReadMask(bytes.NewReader(data))
		case ArticlesFile:
			b.Articles, articlesErr = articles.ReadIndex(bytes.NewReader(data))
		case TemplateFile:
			b.Template, templateErr = brain.ReadNIfTI(bytes.NewReader(data))
		case SurfaceFile:
			b.Surface, surfaceErr = brain.ReadSurface(bytes.NewReader(data))
		case DecoderFile:
			decoderData, decoderErr = decode.ParseData(data)
		}
	})
	if err != nil {
		return nil, err
	}
	if vocErr != nil {
		return nil, vocErr
	}
	for _, p := range []struct {
		file string
		err  error
	}{{MaskFile, maskErr}, {ArticlesFile, articlesErr}, {TemplateFile, templateErr}, {SurfaceFile, surfaceErr}, {DecoderFile, decoderErr}} {
		if p.err != nil {
			return nil, fmt.Errorf("bundle: %s: %w; rebuild it with `make model`", p.file, p.err)
		}
	}
	if decoderData != nil {
		if decoderData.MaskLen != b.Mask.Len() {
			return nil, fmt.Errorf("bundle: %s: a decoder for %d mask voxels, the mask has %d; rebuild it with `make model`", DecoderFile, decoderData.MaskLen, b.Mask.Len())
		}
		if b.Decoder, err = decode.New(decoderData, b.Vocabulary.Features); err != nil {
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
	if _, err := man.Contract(); err != nil {
		return err
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
