package corpus

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/model/articles"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

const coordHeader = "id\ttable_id\ttable_name\tx\ty\tz\n"

// trainingCSV lists pmids as training rows, with title "T<pmid>".
func trainingCSV(ids ...int64) string {
	var b strings.Builder
	b.WriteString("pmid,title,pubmed_url\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "%d,T%d,https://www.ncbi.nlm.nih.gov/pubmed/%d\n", id, id, id)
	}
	return b.String()
}

// optional is a reader of s, or no reader at all (a nil interface, not a nil *strings.Reader) for
// "": no Neurosynth file.
func optional(s string) io.Reader {
	if s == "" {
		return nil
	}
	return strings.NewReader(s)
}

// buildStrings builds an index from in-memory tables; an empty neurosynth means none.
func buildStrings(coords, training, neurosynth string, m *brain.Mask) (*articles.Index, error) {
	return Build(strings.NewReader(coords), strings.NewReader(training), optional(neurosynth), m)
}

// parsed is what read makes of the tables: the training articles and their in-volume peaks.
type parsed struct {
	arts  []articles.Article
	peaks [][]int32
}

func readStrings(t *testing.T, coords, training, neurosynth string) parsed {
	t.Helper()
	arts, peaks, err := read(strings.NewReader(coords), strings.NewReader(training), optional(neurosynth))
	if err != nil {
		t.Fatal(err)
	}
	return parsed{arts, peaks}
}

// peaksOf are the peaks read for a training article.
func (p parsed) peaksOf(t *testing.T, pmid int64) []int32 {
	t.Helper()
	for i, a := range p.arts {
		if a.PMID == pmid {
			return p.peaks[i]
		}
	}
	t.Fatalf("pmid %d is not a training article", pmid)
	return nil
}

func pmids(ix *articles.Index) []int64 {
	var out []int64
	for i := range ix.Len() {
		out = append(out, ix.Article(i).PMID)
	}
	return out
}

func encode(t testing.TB, ix *articles.Index) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := ix.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

// boxMask is a mask of the voxels with i, j, k all in [lo, hi).
func boxMask(tb testing.TB, lo, hi int) *brain.Mask {
	tb.Helper()
	in := make([]bool, brain.NVoxels)
	for i := lo; i < min(hi, brain.NX); i++ {
		for j := lo; j < min(hi, brain.NY); j++ {
			for k := lo; k < min(hi, brain.NZ); k++ {
				in[brain.Index(i, j, k)] = true
			}
		}
	}
	m, err := brain.NewMask(in)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func fullMask(tb testing.TB) *brain.Mask { return boxMask(tb, 0, max(brain.NX, brain.NY, brain.NZ)) }
