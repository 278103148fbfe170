// Package manifest is the light part of the serving bundle: its file names and manifest, the
// graph's contract, the vocabulary, and reading those verified. The Query function needs only this
// (the model version, and whether a text has a known term), so it links none of the maps; package
// bundle loads the whole bundle on top of it.
package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"sync"

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
	SurfaceFile    = "surface.bin"
	DecoderFile    = "decoder.bin"
)

// Names of the input and outputs of the graphs `text2brain model build` writes. Another bundle's
// graph may name its tensors otherwise: the runtime reads the names from the manifest (Contract).
const (
	InputName    = "tfidf"
	OutputZ      = "z"
	OutputSmooth = "smoothed"
)

// KindNeuroQuery is the kind of the bundles `text2brain model build` writes: NeuroQuery's linear
// model. Any other kind is served the same way, by its manifest's contract.
const KindNeuroQuery = "neuroquery"

// The roles of a graph's outputs (TensorSpec.Role).
const (
	// RoleMap is the predicted z-map, float32: [1, mask voxels] in mask order, or the grid's
	// volume, [1, 46, 55, 46] or [1, 1, 46, 55, 46] in C order (the last axis fastest), which the
	// runtime masks.
	RoleMap = "map"
	// RoleFeatures is optional: the features as the model weighs them, float32 [1, features]
	// (NeuroQuery's smoothed vector). The related terms are ranked by it; without it, by the
	// input vector itself.
	RoleFeatures = "features"
)

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
	// Name and Description present the model to people (the API's model list, the page's
	// picker); optional, the kind stands in for a missing name.
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// Evaluation is how well the model predicts maps of articles it was not trained on; nil when
	// it was trained on every article (the NeuroQuery bundle is) and so has no held-out figures.
	Evaluation *Evaluation `json:"evaluation,omitempty"`
}

// Evaluation is a model's held-out figures.
type Evaluation struct {
	// Split says which articles were held out.
	Split string `json:"split"`
	// Articles is how many were held out.
	Articles int `json:"articles"`
	// PearsonR is the mean Pearson r between each held-out article's predicted and actual map.
	PearsonR float64 `json:"pearson_r"`
	// RecallAt10 is the share of held-out articles whose own map is among the 10 closest to the
	// prediction from their text, of all the held-out maps.
	RecallAt10 float64 `json:"recall_at_10"`
	// Compared are other maps scored on the same split: the model's own served map if it is not
	// the one scored, and other methods.
	Compared []Baseline `json:"compared,omitempty"`
}

// Baseline is another method's figures on an Evaluation's split.
type Baseline struct {
	Name       string  `json:"name"`
	PearsonR   float64 `json:"pearson_r"`
	RecallAt10 float64 `json:"recall_at_10"`
}

// TensorSpec names a graph input or output.
type TensorSpec struct {
	Name  string  `json:"name"`
	Shape []int64 `json:"shape"`
	Type  string  `json:"type"`
	// Role is an output's meaning (RoleMap, RoleFeatures); empty in the bundles written before
	// roles were, whose outputs are the z-map and then the smoothed features.
	Role string `json:"role,omitempty"`
}

// DisplayName is the model's name for people: its Name, or its kind.
func (m Manifest) DisplayName() string {
	if m.Name != "" {
		return m.Name
	}
	return m.Kind
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

// Vocabulary is the content of vocabulary.json: the featurizer's data, for the selected features
// the norm of their coefficient column, which turns a smoothed feature value into its weight in
// the brain map, and the features that have no brain map at all.
type Vocabulary struct {
	textfeat.Vocabulary
	Selected []int     `json:"selected"`
	MapNorms []float64 `json:"map_norms"`
	// Unmapped lists, in order, the features whose predicted map is zero everywhere: their
	// smoothed, selected vector is zero (model.md; the builder computes it as the model does). A
	// text whose every recognised term is one of them has no map, and Query says so at once
	// instead of computing an empty brain. nil in a bundle built before it was recorded: then
	// every feature is taken to have a map, and only Predict finds out.
	Unmapped []int `json:"unmapped"`
}

// UnmappedTerms is the set of the terms of the Unmapped features (empty when the bundle does not
// record them).
func (v *Vocabulary) UnmappedTerms() map[string]bool {
	set := make(map[string]bool, len(v.Unmapped))
	for _, j := range v.Unmapped {
		if j >= 0 && j < len(v.Features) {
			set[v.Features[j]] = true
		}
	}
	return set
}

// NoneMapped reports whether terms (a text's recognised terms) are all in unmapped, the set of
// UnmappedTerms: the text has known terms but no map. False for no terms: that is no known
// term, another answer.
func NoneMapped(terms []string, unmapped map[string]bool) bool {
	for _, t := range terms {
		if !unmapped[t] {
			return false
		}
	}
	return len(terms) > 0
}

// VersionOf is the model version of a NeuroQuery bundle with these files: a hash of their
// checksums in name order.
func VersionOf(files map[string]FileInfo) string { return VersionOfKind(KindNeuroQuery, files) }

// VersionOfKind is the model version of a bundle of a kind with these files. A NeuroQuery bundle's
// is "nq-" and a hash of the files' checksums; any other kind's "nn-" and a hash of the kind and
// the checksums, so that two kinds never share a version, and so a key space.
func VersionOfKind(kind string, files map[string]FileInfo) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	prefix := "nq-"
	if kind != KindNeuroQuery {
		prefix = "nn-"
		fmt.Fprintf(h, "kind %s\n", kind)
	}
	for _, n := range names {
		fmt.Fprintf(h, "%s %s %d\n", n, files[n].SHA256, files[n].Bytes)
	}
	return prefix + hex.EncodeToString(h.Sum(nil))[:16]
}

// FileInfoOf is the checksum entry of a file's content.
func FileInfoOf(data []byte) FileInfo {
	sum := sha256.Sum256(data)
	return FileInfo{SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(data))}
}

// ReadManifest reads and checks manifest.json: its format version, and that its model version is
// the hash of the files it lists.
func ReadManifest(fsys fs.FS) (Manifest, error) {
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
	if man.Kind == "" {
		return man, fmt.Errorf("bundle: %s names no model kind; rebuild it", ManifestFile)
	}
	if v := VersionOfKind(man.Kind, man.Files); v != man.ModelVersion {
		return man, fmt.Errorf("bundle: model version %s does not match its files (%s); rebuild it with `make model`", man.ModelVersion, v)
	}
	return man, nil
}

// ReadFiles reads the named files, all at once (they are independent, and from a bucket each is a
// request), and checks each against the manifest as it arrives: its SHA-256 is computed while it
// is read, not in a second pass. got, if not nil, is called with each file that checks out, from
// the goroutine that read it and as soon as it is checked, so that the caller can parse the files
// concurrently too; ReadFiles returns after every call of got has. The error names every file that
// is not listed, missing or corrupt, in the order of names; a file that cannot be read for another
// reason (a bucket that did not answer) is reported alone, as the first such in names.
func ReadFiles(fsys fs.FS, man Manifest, names []string, got func(name string, data []byte)) (map[string][]byte, error) {
	type outcome struct {
		data    []byte
		problem string
		err     error
	}
	out := make([]outcome, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		want, listed := man.Files[name]
		if !listed {
			out[i].problem = name + " is not in the manifest"
			continue
		}
		wg.Go(func() {
			data, sum, err := readHashed(fsys, name)
			o := &out[i]
			switch {
			case err != nil && !errors.Is(err, fs.ErrNotExist):
				// Not the bundle's fault (a bucket that did not answer, say): no advice to rebuild.
				o.err = fmt.Errorf("bundle: reading %s: %w", name, err)
			case err != nil:
				o.problem = name + " is missing"
			case int64(len(data)) != want.Bytes || hex.EncodeToString(sum[:]) != want.SHA256:
				o.problem = fmt.Sprintf("%s is corrupt (%d bytes, checksum %s…; the manifest says %d bytes, %s…)",
					name, len(data), hex.EncodeToString(sum[:6]), want.Bytes, want.SHA256[:min(12, len(want.SHA256))])
			default:
				o.data = data
				if got != nil {
					got(name, data)
				}
			}
		})
	}
	wg.Wait()
	files := make(map[string][]byte, len(names))
	var problems []string
	for i, o := range out {
		if o.err != nil {
			return nil, o.err
		}
		if o.problem != "" {
			problems = append(problems, o.problem)
			continue
		}
		files[names[i]] = o.data
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("bundle: %s; rebuild it with `make model`", strings.Join(problems, "; "))
	}
	return files, nil
}

// readChunk is how much of a file is read, then hashed, at a time: small enough to be hashed while
// it is still in the cache.
const readChunk = 1 << 20

// readHashed reads a whole file and its SHA-256, hashing each piece as it is read. Like
// fs.ReadFile, it allocates the size the file states once (a bucket's object states its size) and
// grows beyond it only if the file is longer.
func readHashed(fsys fs.FS, name string) ([]byte, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := fsys.Open(name)
	if err != nil {
		return nil, sum, err
	}
	defer f.Close()
	size := 0
	if info, err := f.Stat(); err == nil {
		if s := info.Size(); s > 0 && int64(int(s)) == s {
			size = int(s)
		}
	}
	data := make([]byte, 0, size+1) // +1: a read at the end sees EOF without growing the buffer
	h := sha256.New()
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := f.Read(data[len(data):min(cap(data), len(data)+readChunk)])
		h.Write(data[len(data) : len(data)+n])
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, sum, err
		}
	}
	h.Sum(sum[:0])
	return data, sum, nil
}

// ParseVocabulary decodes vocabulary.json.
func ParseVocabulary(raw []byte) (Vocabulary, error) {
	var voc Vocabulary
	if err := json.Unmarshal(raw, &voc); err != nil {
		return Vocabulary{}, fmt.Errorf("bundle: %s: %w; rebuild it with `make model`", VocabularyFile, err)
	}
	return voc, nil
}

// Header is the light part of a bundle: what the Query function needs to name the model version
// and to tell whether a text has any known term, without the 40 MB of maps.
type Header struct {
	Manifest   Manifest
	Vocabulary Vocabulary
}

// LoadHeader reads and verifies the manifest and the vocabulary of a bundle.
func LoadHeader(fsys fs.FS) (*Header, error) {
	h, _, err := ReadHeader(fsys, []string{VocabularyFile})
	return h, err
}

// ReadHeader reads the manifest and the named files (the vocabulary among them), each checked
// against the manifest, and decodes the vocabulary; package bundle reads the rest of the files
// with it.
func ReadHeader(fsys fs.FS, names []string) (*Header, map[string][]byte, error) {
	return ReadHeaderOptional(fsys, names, nil)
}

// ReadHeaderOptional is ReadHeader that also reads each file of optional that the manifest lists,
// checked like the others: a file added to the bundle format after some bundles were built is
// required of the bundles that have it, and absent from the others.
func ReadHeaderOptional(fsys fs.FS, names, optional []string) (*Header, map[string][]byte, error) {
	man, err := ReadManifest(fsys)
	if err != nil {
		return nil, nil, err
	}
	names = slices.Clip(names)
	for _, name := range optional {
		if _, listed := man.Files[name]; listed {
			names = append(names, name)
		}
	}
	files, err := ReadFiles(fsys, man, names, nil)
	if err != nil {
		return nil, nil, err
	}
	voc, err := ParseVocabulary(files[VocabularyFile])
	if err != nil {
		return nil, nil, err
	}
	return &Header{Manifest: man, Vocabulary: voc}, files, nil
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
			{Name: OutputZ, Shape: []int64{1, int64(nVoxels)}, Type: "float32", Role: RoleMap},
			{Name: OutputSmooth, Shape: []int64{1, int64(nFeatures)}, Type: "float32", Role: RoleFeatures},
		},
	}
}

// EqualSpec reports whether two tensor specs are the same.
func EqualSpec(a, b TensorSpec) bool {
	if a.Name != b.Name || a.Type != b.Type || a.Role != b.Role || len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	return true
}

// Grid dimensions of a volume output (brain.Dims; this package links none of package brain).
var volumeDims = [3]int64{46, 55, 46}

// Contract is what the runtime needs of a bundle's graph, read from its manifest: one float32
// input of the vocabulary's features, in the vocabulary's order, L2-normalised TF-IDF
// ([1, features]); one output of role RoleMap; optionally one of role RoleFeatures. Other outputs
// are not read.
type Contract struct {
	Input TensorSpec
	Map   TensorSpec
	// Volume is whether Map is the grid's volume (masked by the runtime) rather than the mask's
	// voxels.
	Volume bool
	// Features is the RoleFeatures output; nil when the graph has none.
	Features *TensorSpec
}

// Contract checks the manifest's input and outputs against the contract and returns it.
func (m Manifest) Contract() (Contract, error) {
	var c Contract
	in := m.Input
	if in.Name == "" || in.Type != "float32" || len(in.Shape) != 2 || in.Shape[0] != 1 || in.Shape[1] != int64(m.Features) {
		return c, fmt.Errorf("the graph's input %v is not float32 [1, %d] (one row of the vocabulary's features)", in, m.Features)
	}
	c.Input = in
	var mapOut *TensorSpec
	for i := range m.Outputs {
		o := m.Outputs[i]
		role := o.Role
		if role == "" { // a bundle written before roles were
			switch {
			case o.Name == OutputSmooth:
				role = RoleFeatures
			case mapOut == nil && i == 0:
				role = RoleMap
			}
		}
		switch role {
		case RoleMap:
			if mapOut != nil {
				return c, fmt.Errorf("the graph has two map outputs, %q and %q", mapOut.Name, o.Name)
			}
			mapOut = &m.Outputs[i]
		case RoleFeatures:
			if c.Features != nil {
				return c, fmt.Errorf("the graph has two feature outputs, %q and %q", c.Features.Name, o.Name)
			}
			if o.Type != "float32" || !slices.Equal(o.Shape, []int64{1, int64(m.Features)}) {
				return c, fmt.Errorf("the graph's feature output %v is not float32 [1, %d]", o, m.Features)
			}
			c.Features = &m.Outputs[i]
		}
	}
	if mapOut == nil {
		return c, fmt.Errorf("the graph has no output of role %q among %v", RoleMap, m.Outputs)
	}
	c.Map = *mapOut
	sh := c.Map.Shape
	switch {
	case c.Map.Type != "float32":
		return c, fmt.Errorf("the graph's map output %v is not float32", c.Map)
	case slices.Equal(sh, []int64{1, int64(m.Grid.MaskVoxels)}):
	case slices.Equal(sh, []int64{1, volumeDims[0], volumeDims[1], volumeDims[2]}),
		slices.Equal(sh, []int64{1, 1, volumeDims[0], volumeDims[1], volumeDims[2]}):
		c.Volume = true
	default:
		return c, fmt.Errorf("the graph's map output %v is neither [1, %d] (the mask's voxels) nor the grid's volume [1, %d, %d, %d]",
			c.Map, m.Grid.MaskVoxels, volumeDims[0], volumeDims[1], volumeDims[2])
	}
	if c.Map.Name == c.Input.Name || c.Features != nil && c.Features.Name == c.Map.Name {
		return c, fmt.Errorf("the graph's tensors do not have distinct names: %v → %v", c.Input, m.Outputs)
	}
	return c, nil
}

// Len is the number of values in a tensor of the spec's shape.
func (s TensorSpec) Len() int64 {
	n := int64(1)
	for _, d := range s.Shape {
		n *= d
	}
	return n
}
