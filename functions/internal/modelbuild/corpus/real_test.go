package corpus

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/articles"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

type realPaths struct{ coordinates, training, neurosynth, mask string }

func paths(tb testing.TB) realPaths {
	return realPaths{
		coordinates: testenv.Data(tb, "neuroquery_corpus", "coordinates.tsv.gz"),
		training:    testenv.Data(tb, "neuroquery_model", "corpus_metadata.csv"),
		neurosynth:  testenv.Data(tb, "neurosynth", "metadata.tsv.gz"),
		mask:        testenv.Data(tb, "neuroquery_model", "mask_img.nii.gz"),
	}
}

// The shared data, read once: every training article with its peaks, and the index of those with
// a map.
var shared struct {
	once  sync.Once
	mask  *brain.Mask
	arts  []articles.Article
	peaks [][]int32
	ix    *articles.Index
	err   error
}

func realCorpus(tb testing.TB) {
	tb.Helper()
	p := paths(tb)
	shared.once.Do(func() {
		if shared.mask, shared.err = brain.ReadMaskFile(p.mask); shared.err != nil {
			return
		}
		var files [3]*os.File
		for i, name := range []string{p.coordinates, p.training, p.neurosynth} {
			if files[i], shared.err = os.Open(name); shared.err != nil {
				return
			}
			defer files[i].Close()
		}
		if shared.arts, shared.peaks, shared.err = read(files[0], files[1], files[2]); shared.err != nil {
			return
		}
		shared.ix, shared.err = articles.New(shared.arts, shared.peaks, shared.mask)
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
}

// Figures of the shared data computed independently (a Python script reading the same files with
// the floor rule and the mask): 13,459 training articles, of which 18635394 and 21687724 have no
// peak in the mask, and 468,529 in-volume peaks for the others; 8,680 of those are in Neurosynth
// (which covers about two thirds of the training articles).
func TestRealCorpus(t *testing.T) {
	realCorpus(t)
	arts, peaks, ix, m := shared.arts, shared.peaks, shared.ix, shared.mask
	if len(arts) != 13459 {
		t.Errorf("%d training articles, want 13459", len(arts))
	}
	if ix.Len() != 13457 {
		t.Errorf("%d articles with a map, want 13457", ix.Len())
	}
	if m.Len() != 28542 {
		t.Fatalf("mask of %d voxels, want 28542", m.Len())
	}
	indexed := map[int64]bool{}
	for i := range ix.Len() {
		indexed[ix.Article(i).PMID] = true
	}
	total := 0
	for i, a := range arts {
		if indexed[a.PMID] {
			total += len(peaks[i])
			continue
		}
		if a.PMID != 18635394 && a.PMID != 21687724 {
			t.Errorf("article %d is not indexed", a.PMID)
		}
		for _, v := range peaks[i] {
			if m.Contains(int(v)) {
				t.Errorf("article %d has a peak in the mask but is not indexed", a.PMID)
			}
		}
	}
	if total != 468529 {
		t.Errorf("%d peaks in the indexed articles, want 468529", total)
	}
	want := articles.Article{
		PMID:    9405692,
		Title:   "Role of left inferior prefrontal cortex in retrieval of semantic knowledge: A reevaluation",
		Authors: "Thompson-Schill SL, D'Esposito M, Aguirre GK, Farah MJ",
		Year:    1997,
		Journal: "Proceedings of the National Academy of Sciences of the United States of America",
	}
	if d := cmp.Diff(want, ix.Article(0)); d != "" {
		t.Errorf("first article (-want +got):\n%s", d)
	}
	withAuthors := 0
	for i := range ix.Len() {
		if ix.Article(i).Authors != "" {
			withAuthors++
		}
	}
	if withAuthors != 8680 {
		t.Errorf("%d articles have Neurosynth authors, want 8680", withAuthors)
	}
}

// The files, read by BuildFiles, give the bundle's articles.bin byte for byte; articles' tests of
// the lookup run on that file. (`make test` rebuilds the bundle when this package changes.)
func TestRealBuildFilesIsTheBundle(t *testing.T) {
	p := paths(t)
	realCorpus(t)
	ix, err := BuildFiles(p.coordinates, p.training, p.neurosynth, shared.mask)
	if err != nil {
		t.Fatal(err)
	}
	data := encode(t, ix)
	if !bytes.Equal(data, encode(t, shared.ix)) {
		t.Error("BuildFiles differs from read and articles.New")
	}
	bundled, err := os.ReadFile(filepath.Join(testenv.BundleDir(t), "articles.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, bundled) {
		t.Errorf("the index of the shared data differs from the bundle's articles.bin: rebuild it with `make model`")
	}
}

func BenchmarkBuild(b *testing.B) {
	p := paths(b)
	m, err := brain.ReadMaskFile(p.mask)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := BuildFiles(p.coordinates, p.training, p.neurosynth, m); err != nil {
			b.Fatal(err)
		}
	}
}
