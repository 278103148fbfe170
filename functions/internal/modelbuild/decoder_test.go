package modelbuild

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/decode"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/corpus"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/neuroquery"
)

// The decoder trained without 200 articles: the descriptions it was trained on are those it
// computes from the maps at decode time, and it decodes the left-out articles' maps better than
// the base rates do (functions/cmd/decodeeval measures it properly: 0.22 against 0.15).
func TestDecoderOnLeftOutArticles(t *testing.T) {
	nq, err := neuroquery.Load(testenv.Data(t, "neuroquery_model"))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := corpus.BuildFiles(testenv.Data(t, "neuroquery_corpus", "coordinates.tsv.gz"),
		testenv.Data(t, "neuroquery_model", "corpus_metadata.csv"), "", nq.Mask)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := KeyTerms(testenv.Data(t, "neuroquery_corpus"), nq, ix)
	if err != nil {
		t.Fatal(err)
	}
	left := rand.New(rand.NewPCG(5, 6)).Perm(ix.Len())[:200]
	data, err := TrainDecoder(nq, ix, keys, DecoderOptions{Exclude: left})
	if err != nil {
		t.Fatal(err)
	}
	if data.Articles != ix.Len()-len(left) {
		t.Errorf("trained on %d articles, want %d − %d", data.Articles, ix.Len(), len(left))
	}
	dec, err := decode.New(data, nq.Vocabulary.Features)
	if err != nil {
		t.Fatal(err)
	}

	basis := data.Basis.Dequantize()
	desc := describeArticles(basis, data.Dim, nq.Mask, ix)
	for _, i := range left[:20] {
		got, err := dec.Describe(ix.Map(nq.Mask, i))
		if err != nil {
			t.Fatal(err)
		}
		want := desc[i*data.Dim : (i+1)*data.Dim]
		var norm, worst float64
		for c := range want {
			norm = math.Max(norm, math.Abs(want[c]))
			worst = math.Max(worst, math.Abs(float64(got[c])-want[c]))
		}
		if worst > 1e-4*norm {
			t.Errorf("article %d: Describe differs from the training description by %g (largest value %g)", ix.Article(i).PMID, worst, norm)
		}
	}

	// Precision@10 against the key terms, for the decoder and for the 10 highest base rates.
	base := make([]int, len(data.Intercept))
	for j := range base {
		base[j] = j
	}
	slices.SortStableFunc(base, func(a, b int) int {
		switch {
		case data.Intercept[a] > data.Intercept[b]:
			return -1
		case data.Intercept[a] < data.Intercept[b]:
			return 1
		}
		return 0
	})
	index := map[string]int32{}
	for j, f := range nq.Vocabulary.Features {
		index[f] = int32(j)
	}
	var decoded, constant float64
	for _, i := range left {
		for _, term := range dec.Terms(ix.Map(nq.Mask, i), 10) {
			if slices.Contains(keys[i], index[term.Term]) {
				decoded += 0.1
			}
		}
		for _, j := range base[:10] {
			if slices.Contains(keys[i], int32(j)) {
				constant += 0.1
			}
		}
	}
	decoded, constant = decoded/float64(len(left)), constant/float64(len(left))
	t.Logf("precision@10 on %d left-out articles: decoder %.3f, base rates %.3f", len(left), decoded, constant)
	if decoded < constant+0.04 {
		t.Errorf("the decoder's precision@10 %.3f is not clearly above the base rates' %.3f", decoded, constant)
	}

	if _, err := TrainDecoder(nq, ix, keys[:10], DecoderOptions{}); err == nil {
		t.Error("key terms for 10 articles were accepted for the whole index")
	}
	if _, err := TrainDecoder(nq, ix, keys, DecoderOptions{Exclude: []int{ix.Len()}}); err == nil {
		t.Error("leaving out an article that is not in the index was accepted")
	}
}
