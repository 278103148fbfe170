package corpus

import (
	"math"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/neuroquery"
)

func TestTopKeepsTiesInFeatureOrder(t *testing.T) {
	t.Parallel()
	v := TFIDF{Features: []int32{2, 5, 7, 9, 11}, Values: []float64{1, 3, 1, 3, 2}}
	testCases := []struct {
		n    int
		want []int32
	}{
		{0, []int32{}},
		{1, []int32{5}},
		{3, []int32{5, 9, 11}},
		{4, []int32{5, 9, 11, 2}},
		{9, []int32{5, 9, 11, 2, 7}},
	}
	for _, tc := range testCases {
		if diff := cmp.Diff(tc.want, v.Top(tc.n)); diff != "" {
			t.Errorf("Top(%d) (-want +got):\n%s", tc.n, diff)
		}
	}
}

var realModel struct {
	once sync.Once
	nq   *neuroquery.Model
	err  error
}

func loadModel(tb testing.TB) *neuroquery.Model {
	tb.Helper()
	realModel.once.Do(func() { realModel.nq, realModel.err = neuroquery.Load(testenv.Data(tb, "neuroquery_model")) })
	if realModel.err != nil {
		tb.Fatal(realModel.err)
	}
	return realModel.nq
}

// The TF-IDF read from the corpus's counts is the model's own: normalised, it is corpus_tfidf.npz
// (which the model was trained on), article by article and feature by feature.
func TestRealTFIDFIsTheModels(t *testing.T) {
	realCorpus(t)
	nq := loadModel(t)
	pmids := make([]int64, len(shared.arts))
	for i, a := range shared.arts {
		pmids[i] = a.PMID
	}
	got, err := ReadTFIDF(testenv.Data(t, "neuroquery_corpus"), nq.Vocabulary, pmids)
	if err != nil {
		t.Fatal(err)
	}
	// corpus_tfidf.npz has the training rows of corpus_metadata.csv, the order of shared.arts.
	want, err := neuroquery.ReadCSR(testenv.Data(t, "neuroquery_model", "corpus_tfidf.npz"))
	if err != nil {
		t.Fatal(err)
	}
	if want.Rows != len(got) {
		t.Fatalf("%d articles, corpus_tfidf.npz has %d", len(got), want.Rows)
	}
	for i, v := range got {
		cols, vals := want.Row(i)
		if len(cols) != len(v.Features) {
			t.Fatalf("article %d: %d features, corpus_tfidf.npz %d", pmids[i], len(v.Features), len(cols))
		}
		var ss float64
		for _, x := range v.Values {
			ss += x * x
		}
		for t2, j := range v.Features {
			if int(j) != cols[t2] || math.Abs(v.Values[t2]/math.Sqrt(ss)-vals[t2]) > 1e-6 {
				t.Fatalf("article %d, feature %d: %g (normalised %g); corpus_tfidf.npz feature %d: %g",
					pmids[i], j, v.Values[t2], v.Values[t2]/math.Sqrt(ss), cols[t2], vals[t2])
			}
		}
	}
	// The first article (semantic retrieval in the left inferior prefrontal cortex).
	var first []string
	for _, j := range got[0].Top(5) {
		first = append(first, nq.Vocabulary.Features[j])
	}
	t.Logf("article %d: key terms %v", pmids[0], first)
}

func TestReadTFIDFUnknownArticle(t *testing.T) {
	nq := loadModel(t)
	if _, err := ReadTFIDF(testenv.Data(t, "neuroquery_corpus"), nq.Vocabulary, []int64{1}); err == nil {
		t.Error("an article outside the corpus has a TF-IDF")
	}
	if _, err := ReadTFIDF(t.TempDir(), nq.Vocabulary, nil); err == nil {
		t.Error("a directory without counts gave a TF-IDF")
	}
}
