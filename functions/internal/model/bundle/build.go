package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/text2brain/text2brain/functions/internal/model/articles"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/neuroquery"
)

// BuildOptions names the inputs of a bundle.
type BuildOptions struct {
	// NeuroQuery is a model directory in the NeuroQuery layout.
	NeuroQuery string
	// Corpus is the NeuroQuery corpus directory (coordinates.tsv.gz).
	Corpus string
	// Metadata is Neurosynth's metadata.tsv.gz (authors, year, journal, DOI); optional.
	Metadata string
	// Template is the 1 mm MNI T1 template the preview is drawn over.
	Template string
	// Out is the bundle directory to write; it is replaced as a whole.
	Out string
}

// Build writes a bundle. The same inputs give byte-identical files.
func Build(opt BuildOptions) (*Manifest, error) {
	var missing []string
	for _, p := range []struct{ flag, path string }{{"--neuroquery", opt.NeuroQuery}, {"--corpus", opt.Corpus}, {"--template", opt.Template}, {"--out", opt.Out}} {
		if p.path == "" {
			missing = append(missing, p.flag)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("bundle: missing %v", missing)
	}
	nq, err := neuroquery.Load(opt.NeuroQuery)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}

	if files[ModelFile], err = buildGraph(nq); err != nil {
		return nil, fmt.Errorf("bundle: writing the ONNX graph: %w", err)
	}

	voc := Vocabulary{Vocabulary: nq.Vocabulary, Selected: nq.Selected}
	for i := range nq.Selected {
		voc.MapNorms = append(voc.MapNorms, floats.Norm(mat.Col(nil, i, nq.Coef), 2))
	}
	if files[VocabularyFile], err = json.Marshal(voc); err != nil {
		return nil, err
	}

	if files[MaskFile], err = os.ReadFile(filepath.Join(opt.NeuroQuery, "mask_img.nii.gz")); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if files[TemplateFile], err = os.ReadFile(opt.Template); err != nil {
		return nil, fmt.Errorf("bundle: template: %w", err)
	}

	ix, err := articles.BuildFiles(filepath.Join(opt.Corpus, "coordinates.tsv.gz"),
		filepath.Join(opt.NeuroQuery, "corpus_metadata.csv"), opt.Metadata, nq.Mask)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := ix.WriteTo(&buf); err != nil {
		return nil, err
	}
	files[ArticlesFile] = buf.Bytes()

	s := specs(len(nq.Vocabulary.Features), nq.Mask.Len())
	man := Manifest{FormatVersion: FormatVersion, Kind: "neuroquery", Input: s.input, Outputs: s.outputs,
		Grid: grid(nq.Mask), Features: len(nq.Vocabulary.Features), Articles: ix.Len(), Files: map[string]FileInfo{}}
	for name, data := range files {
		man.Files[name] = fileInfo(data)
	}
	man.ModelVersion = versionOf(man.Files)
	if files[ManifestFile], err = json.MarshalIndent(man, "", "  "); err != nil {
		return nil, err
	}

	// Write next to the destination and swap, so that a failed build never leaves half a bundle.
	parent := filepath.Dir(filepath.Clean(opt.Out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".bundle-*")
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(opt.Out); err != nil {
		return nil, fmt.Errorf("bundle: replacing %s: %w", opt.Out, err)
	}
	if err := os.Rename(tmp, opt.Out); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return &man, nil
}
