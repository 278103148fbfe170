package neuroquery

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/textfeat"
)

var (
	sharedOnce  sync.Once
	sharedModel *Model
	sharedErr   error
)

func shared(t *testing.T) (*Model, *textfeat.Featurizer) {
	t.Helper()
	dir := testenv.Data(t, "neuroquery_model")
	sharedOnce.Do(func() { sharedModel, sharedErr = Load(dir) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	f, err := textfeat.New(sharedModel.Vocabulary)
	if err != nil {
		t.Fatal(err)
	}
	return sharedModel, f
}

func TestVocabulary(t *testing.T) {
	m, _ := shared(t)
	voc := m.Vocabulary
	if got := len(voc.Features); got != 6308 {
		t.Errorf("%d features, want 6308 (7,547 terms − 1,239 synonyms)", got)
	}
	if got := len(voc.Synonyms); got != 1239 {
		t.Errorf("%d synonyms, want 1239", got)
	}
	if got := len(voc.StopWords); got != 153 {
		t.Errorf("%d stop words, want 153", got)
	}
	if got := m.Mask.Len(); got != 28542 {
		t.Errorf("mask has %d voxels, want 28542", got)
	}
	if r, c := m.Coef.Dims(); r != 28542 || c != len(m.Selected) {
		t.Errorf("coef is %d×%d", r, c)
	}
}

// The reference values of ../shared/docs/model.md.
func TestReferenceMaps(t *testing.T) {
	m, f := shared(t)
	testCases := []struct {
		query string
		terms []string
		maxZ  float64
		atMNI [3]float64
	}{
		{"faces", []string{"face"}, 28.08, [3]float64{38, -50, -20}},
		{"working memory", []string{"working memory"}, 17.03, [3]float64{30, 2, 52}},
	}
	for _, tc := range testCases {
		t.Run(tc.query, func(t *testing.T) {
			fs := f.Featurize(tc.query)
			if diff := cmp.Diff(tc.terms, fs.Terms); diff != "" {
				t.Errorf("terms (-want +got):\n%s", diff)
			}
			z := m.ZMap(fs.Vector)
			best := 0
			for v := range z {
				if z[v] > z[best] {
					best = v
				}
			}
			if math.Abs(z[best]-tc.maxZ) > 0.01 {
				t.Errorf("max z = %.4f, want ≈ %.2f", z[best], tc.maxZ)
			}
			if at := brain.VoxelToMNI(brain.Coords(int(m.Mask.Voxels[best]))); at != tc.atMNI {
				t.Errorf("max at MNI %v, want %v", at, tc.atMNI)
			}
		})
	}
	if fs := f.Featurize("oh i believe in yesterday"); fs.Known() {
		t.Errorf("\"oh i believe in yesterday\" has known terms %v, want none", fs.Terms)
	}
}

// The official download has no stop_words.txt: the built-in list must be the same as the file's.
func TestDefaultStopWords(t *testing.T) {
	voc, err := loadVocabulary(testenv.Data(t, "neuroquery_model"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(voc.StopWords, defaultStopWords); diff != "" {
		t.Errorf("built-in stop words differ from stop_words.txt (-file +built-in):\n%s", diff)
	}
}

func TestLoadErrors(t *testing.T) {
	src := testenv.Data(t, "neuroquery_model")
	// copyModel makes a private copy of the model directory that a test can break.
	copyModel := func(t *testing.T) string {
		dir := t.TempDir()
		err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if info.IsDir() {
				return os.MkdirAll(filepath.Join(dir, rel), 0o755)
			}
			return os.Symlink(p, filepath.Join(dir, rel))
		})
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	writeNPY := func(t *testing.T, path, descr, shape string, data []byte) {
		header := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }"
		for (10+len(header)+1)%64 != 0 {
			header += " "
		}
		header += "\n"
		buf := append([]byte("\x93NUMPY\x01\x00"), byte(len(header)), byte(len(header)>>8))
		buf = append(append(buf, header...), data...)
		os.Remove(path)
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testCases := []struct {
		name    string
		breakIt func(t *testing.T, dir string)
		want    string
	}{
		{"missing directory", func(t *testing.T, dir string) { os.RemoveAll(dir) }, "not found"},
		{"unsupported dtype", func(t *testing.T, dir string) {
			writeNPY(t, filepath.Join(dir, "regression/residual_var.npy"), "<f2", "(28542,)", make([]byte, 2*28542))
		}, `dtype "<f2" is not supported`},
		{"wrong shape", func(t *testing.T, dir string) {
			writeNPY(t, filepath.Join(dir, "regression/residual_var.npy"), "<f4", "(100,)", make([]byte, 400))
		}, "shape [100]"},
		{"truncated", func(t *testing.T, dir string) {
			writeNPY(t, filepath.Join(dir, "regression/residual_var.npy"), "<f4", "(28542,)", make([]byte, 400))
		}, "truncated"},
		{"missing vocabulary", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "vocabulary.csv")) }, "vocabulary.csv"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyModel(t)
			tc.breakIt(t, dir)
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load: error %v, want one that says %q", err, tc.want)
			}
		})
	}
}

// The official NeuroQuery download ships regression/M.npy as float64 and no stop_words.txt; both
// layouts must load and give the same maps.
func TestOfficialLayout(t *testing.T) {
	src := testenv.Data(t, "neuroquery_model")
	dir := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		switch {
		case info.IsDir():
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		case rel == "stop_words.txt" || rel == filepath.Join("regression", "M.npy"):
			return nil
		}
		return os.Symlink(p, filepath.Join(dir, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
	M, err := readNPY(filepath.Join(src, "regression", "M.npy"))
	if err != nil {
		t.Fatal(err)
	}
	header := fmt.Sprintf("{'descr': '<f8', 'fortran_order': False, 'shape': (%d, %d), }", M.shape[0], M.shape[1])
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	buf := append([]byte("\x93NUMPY\x01\x00"), byte(len(header)), byte(len(header)>>8))
	buf = append(buf, header...)
	for _, v := range M.data {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
	}
	if err := os.WriteFile(filepath.Join(dir, "regression", "M.npy"), buf, 0o644); err != nil {
		t.Fatal(err)
	}

	official, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, f := shared(t)
	if diff := cmp.Diff(m.Vocabulary, official.Vocabulary); diff != "" {
		t.Errorf("vocabulary differs without stop_words.txt (-shared +official):\n%s", diff)
	}
	x := f.Featurize("self-generated thought").Vector
	want, got := m.ZMap(x), official.ZMap(x)
	for v := range want {
		if math.Abs(want[v]-got[v]) > 1e-9*math.Max(1, math.Abs(want[v])) {
			t.Fatalf("voxel %d: %v with a float32 M, %v with a float64 M", v, want[v], got[v])
		}
	}
}

// The features without a map are model.md's 1,394, and exactly those whose smoothed, selected
// vector is zero when computed the way a query's is (Smooth, then the selection), for a sample of
// both kinds; a query of such terms only has a zero map, and one with a mapped term does not.
func TestUnmapped(t *testing.T) {
	m, f := shared(t)
	unmapped := m.Unmapped()
	if len(unmapped) != 1394 {
		t.Errorf("%d features without a map, want model.md's 1,394", len(unmapped))
	}
	isUnmapped := map[int]bool{}
	for i, j := range unmapped {
		if i > 0 && unmapped[i-1] >= j {
			t.Fatal("not in order")
		}
		isUnmapped[j] = true
	}
	for j := 0; j < len(m.Vocabulary.Features); j += 37 { // a sample of 171 features
		x := make([]float64, len(m.Vocabulary.Features))
		x[j] = 1
		xs := m.Smooth(x)
		zero := true
		for _, s := range m.Selected {
			zero = zero && xs[s] == 0
		}
		if zero != isUnmapped[j] {
			t.Errorf("feature %d %q: x_d zero %v, Unmapped says %v", j, m.Vocabulary.Features[j], zero, isUnmapped[j])
		}
	}
	index := map[string]int{}
	for j, term := range m.Vocabulary.Features {
		index[term] = j
	}
	for _, term := range []string{"abscess", "abuse alcohol"} {
		if !isUnmapped[index[term]] {
			t.Errorf("%q has a map; the API's examples of unmapped terms must not", term)
		}
	}
	maxAbs := func(q string) float64 {
		var best float64
		for _, z := range m.ZMap(f.Featurize(q).Vector) {
			best = math.Max(best, math.Abs(z))
		}
		return best
	}
	if z := maxAbs("abscess abuse alcohol"); z != 0 {
		t.Errorf("a query of unmapped terms has |z| up to %g, want 0", z)
	}
	if z := maxAbs("abscess faces"); z < 10 {
		t.Errorf("a query with a mapped term has |z| up to %g only", z)
	}
}
