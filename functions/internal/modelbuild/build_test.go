package modelbuild

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
)

func buildOptions(t testing.TB, out string) BuildOptions {
	return BuildOptions{
		NeuroQuery: testenv.Data(t, "neuroquery_model"),
		Corpus:     testenv.Data(t, "neuroquery_corpus"),
		Metadata:   testenv.Data(t, "neurosynth", "metadata.tsv.gz"),
		Template:   testenv.Data(t, "templates", "mni152_t1_1mm.nii.gz"),
		Surface:    testenv.Data(t, "templates", "fsaverage5"),
		Out:        out,
	}
}

// Two builds of the same inputs must be byte-identical, so that the model version is stable and a
// rebuild never invalidates the cache.
func TestBuildIsDeterministicAndLoads(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	manA, err := Build(buildOptions(t, a))
	if err != nil {
		t.Fatal(err)
	}
	manB, err := Build(buildOptions(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if manA.ModelVersion != manB.ModelVersion {
		t.Errorf("model versions differ: %s, %s", manA.ModelVersion, manB.ModelVersion)
	}
	for _, name := range []string{bundle.ManifestFile, bundle.ModelFile, bundle.VocabularyFile, bundle.MaskFile, bundle.ArticlesFile, bundle.TemplateFile, bundle.SurfaceFile, bundle.DecoderFile} {
		x, errA := os.ReadFile(filepath.Join(a, name))
		y, errB := os.ReadFile(filepath.Join(b, name))
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v %v", name, errA, errB)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds of the same inputs", name)
		}
	}
	bu, err := bundle.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	if got := bu.Manifest.Grid.MaskVoxels; got != 28542 {
		t.Errorf("mask voxels %d, want 28542", got)
	}
	if got := bu.Articles.Len(); got < 13000 {
		t.Errorf("%d articles with a map, want about 13,000", got)
	}
	if !strings.HasPrefix(bu.Manifest.ModelVersion, "nq-") {
		t.Errorf("model version %q", bu.Manifest.ModelVersion)
	}
}

func BenchmarkBuild(b *testing.B) {
	opt := buildOptions(b, filepath.Join(b.TempDir(), "model"))
	for b.Loop() {
		if _, err := Build(opt); err != nil {
			b.Fatal(err)
		}
	}
}
