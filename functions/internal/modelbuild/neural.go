package modelbuild

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/model/bundle/manifest"
)

// NeuralOptions names the inputs of a bundle around another model's ONNX export (`text2brain
// model build-neural`): the graph, its description, and a NeuroQuery bundle whose vocabulary,
// mask, articles, template, surface and decoder it shares.
type NeuralOptions struct {
	// ONNX is the exported graph; Meta the JSON that describes it (NeuralMeta, which
	// neural/train.py writes as neural.json).
	ONNX, Meta string
	// Base is a bundle `text2brain model build` wrote.
	Base string
	// Out is the bundle directory to write; it is replaced as a whole.
	Out string
}

// NeuralMeta is what a bundle needs to know of an exported model: the contract its graph meets
// (neural/README.md), the features it has a map for, and its held-out figures.
type NeuralMeta struct {
	Kind        string              `json:"kind"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Input       manifest.TensorSpec `json:"input"`
	Output      manifest.TensorSpec `json:"output"`
	// MappedFeatures are the features (vocabulary indices, in order) that move the map: the
	// others are the bundle's unmapped features, whose text gets no map. MapNorms[i] is how far
	// the map of MappedFeatures[i] alone is from the map of nothing, in z units (the related
	// terms' map weight).
	MappedFeatures []int     `json:"mapped_features"`
	MapNorms       []float64 `json:"map_norms"`
	Split          struct {
		Permutation string `json:"permutation"`
		HeldOut     int    `json:"held_out"`
		Test        int    `json:"test"`
	} `json:"split"`
	// Figures are held-out figures by map: "neural" (the network's prediction) and, if there,
	// "neural_z" (its served, standardised map), "training_mean", "ridge_smoothed_tfidf".
	Figures map[string]struct {
		PearsonR   float64 `json:"pearson_r"`
		RecallAt10 float64 `json:"recall_at_10"`
		Articles   int     `json:"articles"`
	} `json:"figures"`
}

// The names Evaluation gives the figures of NeuralMeta.
var figureNames = []struct{ key, name string }{
	{"neural_z", "the same network's standardised z-map (the served map)"},
	{"ridge_smoothed_tfidf", "ridge regression on NeuroQuery's smoothed TF-IDF, trained on the same training part"},
	{"training_mean", "the training articles' mean map"},
}

// BuildNeural writes a bundle of an exported network. The graph is not run here: loading the bundle
// does that (model.Load), and `text2brain model build-neural` loads it when it is written.
func BuildNeural(opt NeuralOptions) (*bundle.Manifest, error) {
	var missing []string
	for _, p := range []struct{ flag, path string }{{"--onnx", opt.ONNX}, {"--meta", opt.Meta}, {"--base", opt.Base}, {"--out", opt.Out}} {
		if p.path == "" {
			missing = append(missing, p.flag)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("model build-neural: missing %v", missing)
	}
	var meta NeuralMeta
	raw, err := os.ReadFile(opt.Meta)
	if err != nil {
		return nil, fmt.Errorf("model build-neural: %w", err)
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("model build-neural: %s: %w", opt.Meta, err)
	}
	if meta.Kind == "" || meta.Kind == manifest.KindNeuroQuery {
		return nil, fmt.Errorf("model build-neural: %s: kind %q; a network needs a kind of its own", opt.Meta, meta.Kind)
	}
	graph, err := os.ReadFile(opt.ONNX)
	if err != nil {
		return nil, fmt.Errorf("model build-neural: %w", err)
	}

	baseFS := os.DirFS(opt.Base)
	base, err := manifest.ReadManifest(baseFS)
	if err != nil {
		return nil, fmt.Errorf("model build-neural: base %s: %w", opt.Base, err)
	}
	shared := []string{bundle.VocabularyFile, bundle.MaskFile, bundle.ArticlesFile, bundle.TemplateFile, bundle.SurfaceFile}
	if _, ok := base.Files[bundle.DecoderFile]; ok {
		shared = append(shared, bundle.DecoderFile)
	}
	files, err := manifest.ReadFiles(baseFS, base, shared, nil)
	if err != nil {
		return nil, fmt.Errorf("model build-neural: base %s: %w", opt.Base, err)
	}
	files[bundle.ModelFile] = graph

	baseVoc, err := manifest.ParseVocabulary(files[bundle.VocabularyFile])
	if err != nil {
		return nil, err
	}
	n := len(baseVoc.Features)
	if len(meta.MappedFeatures) != len(meta.MapNorms) {
		return nil, fmt.Errorf("model build-neural: %s: %d mapped features, %d map norms", opt.Meta, len(meta.MappedFeatures), len(meta.MapNorms))
	}
	voc := bundle.Vocabulary{Vocabulary: baseVoc.Vocabulary, Selected: meta.MappedFeatures, MapNorms: meta.MapNorms, Unmapped: []int{}}
	mapped := make([]bool, n)
	for i, j := range meta.MappedFeatures {
		if j < 0 || j >= n || i > 0 && meta.MappedFeatures[i-1] >= j {
			return nil, fmt.Errorf("model build-neural: %s: the mapped features are not distinct features of the base's %d in order (%d at %d)", opt.Meta, n, j, i)
		}
		if v := meta.MapNorms[i]; math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return nil, fmt.Errorf("model build-neural: %s: map norm %v of feature %d", opt.Meta, v, j)
		}
		mapped[j] = true
	}
	for j, ok := range mapped {
		if !ok {
			voc.Unmapped = append(voc.Unmapped, j)
		}
	}
	if files[bundle.VocabularyFile], err = json.Marshal(voc); err != nil {
		return nil, err
	}

	out := meta.Output
	if out.Role == "" {
		out.Role = manifest.RoleMap
	}
	man := bundle.Manifest{FormatVersion: bundle.FormatVersion, Kind: meta.Kind, Name: meta.Name, Description: meta.Description,
		Input: meta.Input, Outputs: []bundle.TensorSpec{out}, Grid: base.Grid, Features: n, Articles: base.Articles,
		Files: map[string]bundle.FileInfo{}}
	if _, err := man.Contract(); err != nil {
		return nil, fmt.Errorf("model build-neural: %s: %w", opt.Meta, err)
	}
	if f, ok := meta.Figures["neural"]; ok {
		ev := &manifest.Evaluation{Split: fmt.Sprintf("%s, the first %d articles held out", meta.Split.Permutation, meta.Split.HeldOut),
			Articles: f.Articles, PearsonR: f.PearsonR, RecallAt10: f.RecallAt10}
		for _, fn := range figureNames {
			if g, ok := meta.Figures[fn.key]; ok {
				ev.Compared = append(ev.Compared, manifest.Baseline{Name: fn.name, PearsonR: g.PearsonR, RecallAt10: g.RecallAt10})
			}
		}
		man.Evaluation = ev
	}
	for name, data := range files {
		man.Files[name] = bundle.FileInfoOf(data)
	}
	man.ModelVersion = manifest.VersionOfKind(man.Kind, man.Files)
	if files[bundle.ManifestFile], err = json.MarshalIndent(man, "", "  "); err != nil {
		return nil, err
	}
	if err := writeBundle(opt.Out, files); err != nil {
		return nil, err
	}
	return &man, nil
}

// writeBundle writes a bundle's files next to the destination and swaps them in, so that a failed
// build never leaves half a bundle.
func writeBundle(dir string, files map[string][]byte) error {
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("model build: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".bundle-*")
	if err != nil {
		return fmt.Errorf("model build: %w", err)
	}
	defer os.RemoveAll(tmp)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(tmp, name), files[name], 0o644); err != nil {
			return fmt.Errorf("model build: %w", err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("model build: replacing %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("model build: %w", err)
	}
	return nil
}
