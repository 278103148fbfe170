// Package corpus reads the article corpus offline, for `text2brain model build`: the NeuroQuery
// corpus's peak coordinates, the model's training articles and Neurosynth's metadata. It turns
// them into the articles and their peak voxels on the prediction grid, and hands those to
// articles.New, which keeps the articles with a map and computes their statistics.
//
// The functions never link this package: they read the finished index from the bundle with
// articles.ReadIndex.
package corpus

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/text2brain/text2brain/functions/internal/model/articles"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// BuildFiles is Build on files; each may be gzip-compressed or not. An empty neurosynthPath means
// no Neurosynth metadata.
func BuildFiles(coordinatesPath, trainingCSVPath, neurosynthPath string, m *brain.Mask) (*articles.Index, error) {
	coords, err := os.Open(coordinatesPath)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	defer coords.Close()
	training, err := os.Open(trainingCSVPath)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	defer training.Close()
	var neurosynth io.Reader
	if neurosynthPath != "" {
		f, err := os.Open(neurosynthPath)
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		defer f.Close()
		neurosynth = f
	}
	return Build(coords, training, neurosynth, m)
}

// Build makes the index of the training articles that have a map on mask m.
//
// coordinates is the NeuroQuery corpus's coordinates.tsv (header `id table_id table_name x y z`,
// MNI mm); training is the model's corpus_metadata.csv (header `pmid,title,pubmed_url`, the
// training articles in order); neurosynth, which may be nil, is Neurosynth's metadata.tsv (header
// `id doi space title authors year journal`) and supplies authors, year, journal and DOI. Any of
// them may be gzip-compressed. Columns are found by header name, so extra or reordered columns are
// fine.
func Build(coordinates, training, neurosynth io.Reader, m *brain.Mask) (*articles.Index, error) {
	// Checked first: the files take seconds to read.
	if m == nil || m.Len() == 0 {
		return nil, errors.New("corpus: build: no mask")
	}
	arts, peaks, err := read(coordinates, training, neurosynth)
	if err != nil {
		return nil, err
	}
	return articles.New(arts, peaks, m)
}

// read returns every training article, in training order, with its metadata and its in-volume
// peak voxels (C-order indices, in file order). Whether an article has a map is for articles.New
// to decide.
func read(coordinates, training, neurosynth io.Reader) ([]articles.Article, [][]int32, error) {
	arts, row, err := readTraining(training)
	if err != nil {
		return nil, nil, err
	}
	peaks, err := readCoordinates(coordinates, row)
	if err != nil {
		return nil, nil, err
	}
	if neurosynth != nil {
		if err := readNeurosynth(neurosynth, row, arts); err != nil {
			return nil, nil, err
		}
	}
	return arts, peaks, nil
}

// table reads a delimited file whose columns are found by header name.
type table struct {
	name   string
	r      *csv.Reader
	header []string
	col    map[string]int
}

func openTable(name string, r io.Reader, comma rune, required ...string) (*table, error) {
	if r == nil {
		return nil, fmt.Errorf("corpus: %s: no input", name)
	}
	br := bufio.NewReaderSize(r, 1<<16)
	var in io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("corpus: %s: %w", name, err)
		}
		in = zr
	}
	cr := csv.NewReader(in)
	cr.Comma = comma
	// Titles and table names carry stray quotes; a strict reader would reject whole files for them.
	cr.LazyQuotes = true
	// Field counts are checked here, so that the message can name the file and the line.
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("corpus: %s: empty input, want a header with columns %s", name, strings.Join(required, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("corpus: %s: %w", name, err)
	}
	t := &table{name: name, r: cr, header: append([]string(nil), header...), col: map[string]int{}}
	for i, h := range t.header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := t.col[h]; !dup {
			t.col[h] = i
		}
	}
	var missing []string
	for _, c := range required {
		if _, ok := t.col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("corpus: %s: header %q lacks column(s) %s", name, strings.Join(t.header, string(comma)), strings.Join(missing, ", "))
	}
	return t, nil
}

// next returns the next record and the line it starts on; io.EOF at the end.
func (t *table) next() ([]string, int, error) {
	rec, err := t.r.Read()
	if err == io.EOF {
		return nil, 0, io.EOF
	}
	if err != nil {
		return nil, 0, fmt.Errorf("corpus: %s: %w", t.name, err)
	}
	line, _ := t.r.FieldPos(0)
	if len(rec) != len(t.header) {
		return nil, line, fmt.Errorf("corpus: %s: line %d: %d fields, want %d as in the header", t.name, line, len(rec), len(t.header))
	}
	return rec, line, nil
}

// field returns column c of rec, or "" if the table has no such column.
func (t *table) field(rec []string, c string) string {
	i, ok := t.col[c]
	if !ok {
		return ""
	}
	return rec[i]
}

func (t *table) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("corpus: %s: line %d: %s", t.name, line, fmt.Sprintf(format, args...))
}

func parsePMID(t *table, rec []string, line int, c string) (int64, error) {
	s := strings.TrimSpace(t.field(rec, c))
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, t.errorf(line, "bad %s %q: want a positive integer", c, s)
	}
	return id, nil
}

// cleanText folds the line breaks and runs of spaces that some titles carry into single spaces, so
// that they show on one line.
func cleanText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// readTraining returns the training articles in order and the row of each PMID.
func readTraining(r io.Reader) ([]articles.Article, map[int64]int, error) {
	t, err := openTable("training metadata", r, ',', "pmid", "title")
	if err != nil {
		return nil, nil, err
	}
	var arts []articles.Article
	row := map[int64]int{}
	for {
		rec, line, err := t.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		id, err := parsePMID(t, rec, line, "pmid")
		if err != nil {
			return nil, nil, err
		}
		// A repeated PMID would make a training row ambiguous; the file is expected to be unique.
		if prev, dup := row[id]; dup {
			return nil, nil, t.errorf(line, "pmid %d repeats training row %d", id, prev+1)
		}
		row[id] = len(arts)
		arts = append(arts, articles.Article{PMID: id, Title: cleanText(t.field(rec, "title"))})
	}
	if len(arts) == 0 {
		return nil, nil, errors.New("corpus: training metadata: no articles")
	}
	return arts, row, nil
}

// readCoordinates returns the in-volume peak voxels of each training row, in file order.
func readCoordinates(r io.Reader, row map[int64]int) ([][]int32, error) {
	t, err := openTable("coordinates", r, '\t', "id", "x", "y", "z")
	if err != nil {
		return nil, err
	}
	peaks := make([][]int32, len(row))
	var xyz [3]float64
	for {
		rec, line, err := t.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		id, err := parsePMID(t, rec, line, "id")
		if err != nil {
			return nil, err
		}
		for a, c := range [3]string{"x", "y", "z"} {
			s := strings.TrimSpace(t.field(rec, c))
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, t.errorf(line, "bad %s coordinate %q: want a finite number", c, s)
			}
			xyz[a] = v
		}
		tr, ok := row[id]
		if !ok {
			continue // not a training article
		}
		i, j, k, in := brain.MNIToVoxel(xyz[0], xyz[1], xyz[2])
		if !in {
			continue
		}
		peaks[tr] = append(peaks[tr], int32(brain.Index(i, j, k)))
	}
	return peaks, nil
}

// readNeurosynth fills authors, year, journal and DOI of the training articles, whose rows row
// gives. It covers every training article, map or not, so that whether the file is accepted does
// not depend on the mask.
func readNeurosynth(r io.Reader, row map[int64]int, arts []articles.Article) error {
	t, err := openTable("neurosynth metadata", r, '\t', "id")
	if err != nil {
		return err
	}
	seen := make(map[int64]bool, len(row))
	for {
		rec, line, err := t.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		id, err := parsePMID(t, rec, line, "id")
		if err != nil {
			return err
		}
		i, ok := row[id]
		if !ok || seen[id] {
			continue // the first row of a PMID wins, so that the result does not depend on repeats
		}
		seen[id] = true
		year := 0
		if s := strings.TrimSpace(t.field(rec, "year")); s != "" {
			// The index stores years in 32 bits; anything beyond four digits is a broken file anyway.
			if year, err = strconv.Atoi(s); err != nil || year < 0 || year > 9999 {
				return t.errorf(line, "bad year %q", s)
			}
		}
		a := &arts[i]
		a.Authors = cleanText(t.field(rec, "authors"))
		a.Year = year
		a.Journal = cleanText(t.field(rec, "journal"))
		a.DOI = strings.TrimSpace(t.field(rec, "doi"))
	}
}
