// Package modelbuild builds the serving bundle offline (`text2brain model build`): it reads the
// NeuroQuery model and corpus, writes the whole numeric path as an ONNX graph, indexes the
// articles, trains the brain → text decoder on them, and writes the files with their manifest.
// The functions never link it: they read the bundle with package bundle.
package modelbuild

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/text2brain/text2brain/functions/internal/model/articles"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/model/decode"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/corpus"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/neuroquery"
)

// BuildOptions names the inputs of a bundle.
type BuildOptions struct {
	// NeuroQuery is a model directory in the NeuroQuery layout.
	NeuroQuery string
	// Corpus is the NeuroQuery corpus directory (coordinates.tsv.gz, and the term counts the
	// decoder learns from: counts_{abstract,title,keywords}.npz, vocabulary.txt, pmids.txt).
	Corpus string
	// Metadata is Neurosynth's metadata.tsv.gz (authors, year, journal, DOI); optional.
	Metadata string
	// Template is the 1 mm MNI T1 template the preview is drawn over.
	Template string
	// Surface is the fsaverage5 mesh directory (pial and white GIfTI files) the maps are sampled
	// on for the page's surface view.
	Surface string
	// Out is the bundle directory to write; it is replaced as a whole.
	Out string
}

// Build writes a bundle. The same inputs give byte-identical files.
func Build(opt BuildOptions) (*bundle.Manifest, error) {
	var missing []string
	for _, p := range []struct{ flag, path string }{{"--neuroquery", opt.NeuroQuery}, {"--corpus", opt.Corpus}, {"--template", opt.Template}, {"--surface", opt.Surface}, {"--out", opt.Out}} {
		if p.path == "" {
			missing = append(missing, p.flag)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("model build: missing %v", missing)
	}
	nq, err := neuroquery.Load(opt.NeuroQuery)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}

	if files[bundle.ModelFile], err = buildGraph(nq); err != nil {
		return nil, fmt.Errorf("model build: writing the ONNX graph: %w", err)
	}

	voc := bundle.Vocabulary{Vocabulary: nq.Vocabulary, Selected: nq.Selected, Unmapped: nq.Unmapped()}
	for i := range nq.Selected {
		voc.MapNorms = append(voc.MapNorms, floats.Norm(mat.Col(nil, i, nq.Coef), 2))
	}
	if files[bundle.VocabularyFile], err = json.Marshal(voc); err != nil {
		return nil, err
	}

	if files[bundle.MaskFile], err = os.ReadFile(filepath.Join(opt.NeuroQuery, "mask_img.nii.gz")); err != nil {
		return nil, fmt.Errorf("model build: %w", err)
	}
	if files[bundle.TemplateFile], err = os.ReadFile(opt.Template); err != nil {
		return nil, fmt.Errorf("model build: template: %w", err)
	}

	if files[bundle.SurfaceFile], err = surfaceFile(opt.Surface); err != nil {
		return nil, err
	}

	ix, err := corpus.BuildFiles(filepath.Join(opt.Corpus, "coordinates.tsv.gz"),
		filepath.Join(opt.NeuroQuery, "corpus_metadata.csv"), opt.Metadata, nq.Mask)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := ix.WriteTo(&buf); err != nil {
		return nil, err
	}
	files[bundle.ArticlesFile] = buf.Bytes()

	if files[bundle.DecoderFile], err = decoderFile(nq, ix, opt.Corpus); err != nil {
		return nil, err
	}

	s := bundle.Specs(len(nq.Vocabulary.Features), nq.Mask.Len())
	man := bundle.Manifest{FormatVersion: bundle.FormatVersion, Kind: bundle.KindNeuroQuery, Name: "NeuroQuery",
		Description: "NeuroQuery's linear model (Dockès et al., eLife 2020): smoothed TF-IDF → ridge regression onto the article maps", Input: s.Input, Outputs: s.Outputs,
		Grid: bundle.GridOf(nq.Mask), Features: len(nq.Vocabulary.Features), Articles: ix.Len(), Files: map[string]bundle.FileInfo{}}
	for name, data := range files {
		man.Files[name] = bundle.FileInfoOf(data)
	}
	man.ModelVersion = bundle.VersionOf(man.Files)
	if files[bundle.ManifestFile], err = json.MarshalIndent(man, "", "  "); err != nil {
		return nil, err
	}

	if err := writeBundle(opt.Out, files); err != nil {
		return nil, err
	}
	return &man, nil
}

// decoderFile trains the brain → text decoder on every indexed article and encodes it.
func decoderFile(nq *neuroquery.Model, ix *articles.Index, corpusDir string) ([]byte, error) {
	keyTerms, err := KeyTerms(corpusDir, nq, ix)
	if err != nil {
		return nil, err
	}
	data, err := TrainDecoder(nq, ix, keyTerms, DecoderOptions{})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := data.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// KeyTerms returns each indexed article's key terms, its decode.KeyTerms features of highest
// TF-IDF (corpus.ReadTFIDF), in index order.
func KeyTerms(corpusDir string, nq *neuroquery.Model, ix *articles.Index) ([][]int32, error) {
	pmids := make([]int64, ix.Len())
	for i := range pmids {
		pmids[i] = ix.Article(i).PMID
	}
	tfidf, err := corpus.ReadTFIDF(corpusDir, nq.Vocabulary, pmids)
	if err != nil {
		return nil, err
	}
	keys := make([][]int32, len(tfidf))
	for i, v := range tfidf {
		keys[i] = v.Top(decode.KeyTerms)
	}
	return keys, nil
}
