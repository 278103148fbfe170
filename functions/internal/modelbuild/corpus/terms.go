package corpus

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/text2brain/text2brain/functions/internal/model/textfeat"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/neuroquery"
)

// TFIDF is an article's TF-IDF over a model's features, sparse: Values[t] at feature Features[t],
// features in increasing order. It is the raw product count × IDF, not normalised: the order of
// the values is what defines an article's key terms.
type TFIDF struct {
	Features []int32
	Values   []float64
}

// Top returns the n features of highest TF-IDF, highest first; equal values are in feature order
// (the vocabulary's byte order), so that the key terms of an article are one well-defined set.
func (v TFIDF) Top(n int) []int32 {
	ord := make([]int, len(v.Features))
	for i := range ord {
		ord[i] = i
	}
	// Features are in increasing order, so a stable sort by value keeps ties in feature order.
	slices.SortStableFunc(ord, func(a, b int) int {
		switch {
		case v.Values[a] > v.Values[b]:
			return -1
		case v.Values[a] < v.Values[b]:
			return 1
		}
		return 0
	})
	top := make([]int32, 0, min(n, len(ord)))
	for _, i := range ord[:min(n, len(ord))] {
		top = append(top, v.Features[i])
	}
	return top
}

// The term-count files of the NeuroQuery corpus (neuroquery_data's data/ folder): scipy CSR
// matrices of counts per article (rows in pmids.txt order) over vocabulary.txt (columns).
var countFiles = []string{"counts_abstract.npz", "counts_title.npz", "counts_keywords.npz"}

// ReadTFIDF returns the TF-IDF of each of the articles pmids (in that order) over voc's
// features, from the corpus directory dir: the counts of abstract, title and keywords added up,
// each vocabulary term folded onto its feature by the synonym map, times the feature's IDF
// (model.md). A PMID the corpus lacks is an error.
func ReadTFIDF(dir string, voc textfeat.Vocabulary, pmids []int64) ([]TFIDF, error) {
	terms, err := readLines(filepath.Join(dir, "vocabulary.txt"))
	if err != nil {
		return nil, err
	}
	ids, err := readLines(filepath.Join(dir, "pmids.txt"))
	if err != nil {
		return nil, err
	}
	feature := make(map[string]int, len(voc.Features))
	for j, f := range voc.Features {
		feature[f] = j
	}
	column := make([]int, len(terms)) // the feature of each count column
	for c, t := range terms {
		if to, ok := voc.Synonyms[t]; ok {
			t = to
		}
		j, ok := feature[t]
		if !ok {
			return nil, fmt.Errorf("corpus: %s: term %q (line %d) is not a feature of the model or a synonym of one", filepath.Join(dir, "vocabulary.txt"), t, c+1)
		}
		column[c] = j
	}
	row := make(map[int64]int, len(ids))
	for i, s := range ids {
		id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("corpus: %s line %d: bad pmid %q", filepath.Join(dir, "pmids.txt"), i+1, s)
		}
		row[id] = i
	}
	var counts []*neuroquery.CSR
	for _, name := range countFiles {
		c, err := neuroquery.ReadCSR(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		if c.Rows != len(ids) || c.Cols != len(terms) {
			return nil, fmt.Errorf("corpus: %s is %d×%d, want %d articles (pmids.txt) × %d terms (vocabulary.txt)", name, c.Rows, c.Cols, len(ids), len(terms))
		}
		counts = append(counts, c)
	}

	out := make([]TFIDF, len(pmids))
	acc := make([]float64, len(voc.Features))
	seen := make([]bool, len(voc.Features))
	var touched []int32
	for a, id := range pmids {
		r, ok := row[id]
		if !ok {
			return nil, fmt.Errorf("corpus: article %d has no term counts in %s", id, filepath.Join(dir, "pmids.txt"))
		}
		touched = touched[:0]
		for _, c := range counts {
			cols, vals := c.Row(r)
			for t, col := range cols {
				j := column[col]
				if !seen[j] {
					seen[j] = true
					touched = append(touched, int32(j))
				}
				acc[j] += vals[t]
			}
		}
		slices.Sort(touched)
		v := TFIDF{Features: make([]int32, 0, len(touched)), Values: make([]float64, 0, len(touched))}
		for _, j := range touched {
			if acc[j] != 0 {
				v.Features = append(v.Features, j)
				v.Values = append(v.Values, acc[j]*voc.IDF[j])
			}
			acc[j], seen[j] = 0, false
		}
		out[a] = v
	}
	return out, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("corpus: %s: %w", path, err)
	}
	if len(lines) == 0 {
		return nil, errors.New("corpus: " + path + " is empty")
	}
	return lines, nil
}
