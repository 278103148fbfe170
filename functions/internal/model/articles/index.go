package articles

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// Index holds the training articles that have a map, in training-row order (the order given to
// New), with what Pearson correlation against their maps needs: their peak voxels and two
// statistics of their maps.
//
// An article has a map if and only if at least one of its peaks falls in a mask voxel
// (model.md: "articles with no peak in the mask have no map"). Peaks outside the mask but inside
// the volume still belong to the map, because the blur carries part of their mass into the mask.
//
// An Index is immutable once built and safe for concurrent use.
type Index struct {
	articles []Article
	// Article i's peaks are peaks[peakStart[i]:peakStart[i+1]]: C-order volume indices, one
	// entry per reported peak, so that a voxel with two peaks counts twice.
	peakStart []int32
	peaks     []int32
	// mean and norm describe article i's blurred count map over the mask (before the division by
	// its mean, which does not change a correlation): its mean and its centred L2 norm
	// sqrt(Σ (a_v − mean)²).
	mean []float64
	norm []float64
	// The statistics are only valid for the mask they were computed on; Related checks that it
	// is given the same one.
	maskLen  int
	maskHash uint64
}

// Len is the number of articles with a map.
func (ix *Index) Len() int { return len(ix.articles) }

// Article returns article i, 0 ≤ i < Len(), in training-row order.
func (ix *Index) Article(i int) Article { return ix.articles[i] }

func (ix *Index) articlePeaks(i int) []int32 { return ix.peaks[ix.peakStart[i]:ix.peakStart[i+1]] }

// maskFingerprint identifies a mask cheaply enough to be checked on every lookup (FNV-1a over
// the voxel indices).
func maskFingerprint(m *brain.Mask) uint64 {
	h := uint64(14695981039346656037)
	for _, v := range m.Voxels {
		h ^= uint64(uint32(v))
		h *= 1099511628211
	}
	return h
}

// New makes the index of the articles that have a map on mask m. peaks[i] are article i's peaks
// as C-order voxel indices of the prediction grid, one entry per reported peak (a voxel reported
// twice counts twice); the articles keep their order. Articles with no peak in the mask are left
// out. New copies what it keeps, so the caller may reuse arts and peaks.
//
// Build makes arts and peaks from the NeuroQuery corpus; at run time the index is read from the
// bundle with ReadIndex.
func New(arts []Article, peaks [][]int32, m *brain.Mask) (*Index, error) {
	if m == nil || m.Len() == 0 {
		return nil, errors.New("articles: new index: no mask")
	}
	if len(arts) != len(peaks) {
		return nil, fmt.Errorf("articles: new index: %d articles but %d peak lists", len(arts), len(peaks))
	}
	ix := &Index{maskLen: m.Len(), maskHash: maskFingerprint(m), peakStart: []int32{0}}
	for i, pk := range peaks {
		a := arts[i]
		// What WriteTo could not write or ReadIndex would refuse is refused here, so that every
		// index round-trips.
		if a.PMID <= 0 {
			return nil, fmt.Errorf("articles: new index: article %d: pmid %d, want a positive integer", i, a.PMID)
		}
		if a.Year < math.MinInt32 || a.Year > math.MaxInt32 {
			return nil, fmt.Errorf("articles: new index: article %d (pmid %d): year %d does not fit in 32 bits", i, a.PMID, a.Year)
		}
		in := false
		for _, v := range pk {
			if v < 0 || v >= brain.NVoxels {
				return nil, fmt.Errorf("articles: new index: article %d (pmid %d): voxel %d outside the volume", i, a.PMID, v)
			}
			in = in || m.Contains(int(v))
		}
		if !in {
			continue // no map (model.md: "articles with no peak in the mask have no map")
		}
		if len(ix.peaks)+len(pk) > math.MaxInt32 {
			return nil, errors.New("articles: new index: too many peaks")
		}
		ix.articles = append(ix.articles, a)
		ix.peaks = append(ix.peaks, pk...)
		ix.peakStart = append(ix.peakStart, int32(len(ix.peaks)))
	}
	ix.computeStats(m)
	return ix, nil
}

// BuildFiles is Build on files; each may be gzip-compressed or not. An empty neurosynthPath means
// no Neurosynth metadata.
func BuildFiles(coordinatesPath, trainingCSVPath, neurosynthPath string, m *brain.Mask) (*Index, error) {
	coords, err := os.Open(coordinatesPath)
	if err != nil {
		return nil, fmt.Errorf("articles: %w", err)
	}
	defer coords.Close()
	training, err := os.Open(trainingCSVPath)
	if err != nil {
		return nil, fmt.Errorf("articles: %w", err)
	}
	defer training.Close()
	var neurosynth io.Reader
	if neurosynthPath != "" {
		f, err := os.Open(neurosynthPath)
		if err != nil {
			return nil, fmt.Errorf("articles: %w", err)
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
func Build(coordinates, training, neurosynth io.Reader, m *brain.Mask) (*Index, error) {
	if m == nil || m.Len() == 0 {
		return nil, errors.New("articles: build: no mask")
	}
	arts, row, err := readTraining(training)
	if err != nil {
		return nil, err
	}
	peaksByRow, err := readCoordinates(coordinates, row)
	if err != nil {
		return nil, err
	}

	ix, err := New(arts, peaksByRow, m)
	if err != nil {
		return nil, err
	}

	if neurosynth != nil {
		pos := make(map[int64]int, len(ix.articles))
		for i, a := range ix.articles {
			pos[a.PMID] = i
		}
		if err := readNeurosynth(neurosynth, pos, ix.articles); err != nil {
			return nil, err
		}
	}

	return ix, nil
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
		return nil, fmt.Errorf("articles: %s: no input", name)
	}
	br := bufio.NewReaderSize(r, 1<<16)
	var in io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("articles: %s: %w", name, err)
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
		return nil, fmt.Errorf("articles: %s: empty input, want a header with columns %s", name, strings.Join(required, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("articles: %s: %w", name, err)
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
		return nil, fmt.Errorf("articles: %s: header %q lacks column(s) %s", name, strings.Join(t.header, string(comma)), strings.Join(missing, ", "))
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
		return nil, 0, fmt.Errorf("articles: %s: %w", t.name, err)
	}
	line, _ := t.r.FieldPos(0)
	if len(rec) != len(t.header) {
		return nil, line, fmt.Errorf("articles: %s: line %d: %d fields, want %d as in the header", t.name, line, len(rec), len(t.header))
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
	return fmt.Errorf("articles: %s: line %d: %s", t.name, line, fmt.Sprintf(format, args...))
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
func readTraining(r io.Reader) ([]Article, map[int64]int, error) {
	t, err := openTable("training metadata", r, ',', "pmid", "title")
	if err != nil {
		return nil, nil, err
	}
	var arts []Article
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
		arts = append(arts, Article{PMID: id, Title: cleanText(t.field(rec, "title"))})
	}
	if len(arts) == 0 {
		return nil, nil, errors.New("articles: training metadata: no articles")
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

// readNeurosynth fills authors, year, journal and DOI of the articles whose PMID is in pos.
func readNeurosynth(r io.Reader, pos map[int64]int, arts []Article) error {
	t, err := openTable("neurosynth metadata", r, '\t', "id")
	if err != nil {
		return err
	}
	seen := make(map[int64]bool, len(pos))
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
		i, ok := pos[id]
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

// support is the non-zero part of a 1D impulse response: weight w[t] at position lo+t.
type support struct {
	lo int
	w  []float64
}

// responses[axis][p] is the blurred 1D signal of a unit impulse at p along that axis. The blur
// being separable, a peak's blurred 3D map is the outer product of its three responses; and since
// the responses are brain.Kernel's own, with its edge reflection, they agree with Kernel.Blur3D.
type responses [3][]support

var (
	respOnce  sync.Once
	blurResps *responses
)

func kernelResponses() *responses {
	respOnce.Do(func() {
		kn := brain.NewKernel(brain.BlurSigma)
		var rs responses
		for axis, n := range brain.Dims {
			rs[axis] = make([]support, n)
			for p := 0; p < n; p++ {
				r := kn.Response1D(p, n)
				lo, hi := 0, n
				for lo < hi && r[lo] == 0 {
					lo++
				}
				for hi > lo && r[hi-1] == 0 {
					hi--
				}
				rs[axis][p] = support{lo: lo, w: r[lo:hi]}
			}
		}
		blurResps = &rs
	})
	return blurResps
}

// computeStats fills mean and norm of every article's blurred count map over the mask. A dense
// blur per article would cost ~5 ms each (about a minute for the corpus); the outer products of
// the 1D responses touch only the ~9³ voxels around each peak.
func (ix *Index) computeStats(m *brain.Mask) {
	n := ix.Len()
	ix.mean = make([]float64, n)
	ix.norm = make([]float64, n)
	rs := kernelResponses()
	workers := min(runtime.GOMAXPROCS(0), max(n, 1))
	var next atomic.Int64
	const chunk = 64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newSparseMap()
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= n {
					return
				}
				for i := start; i < min(start+chunk, n); i++ {
					s.accumulate(ix.articlePeaks(i), rs)
					ix.mean[i], ix.norm[i] = s.stats(m)
				}
			}
		}()
	}
	wg.Wait()
}

// sparseMap is a blurred count map kept in a dense volume that is only reset where it was touched:
// a voxel holds a value of the current map iff its stamp is the current one.
type sparseMap struct {
	vol     []float64
	stamp   []uint32
	cur     uint32
	touched []int32
}

func newSparseMap() *sparseMap {
	return &sparseMap{vol: make([]float64, brain.NVoxels), stamp: make([]uint32, brain.NVoxels)}
}

// accumulate replaces the map by the blurred count map of peaks.
func (s *sparseMap) accumulate(peaks []int32, rs *responses) {
	s.cur++
	if s.cur == 0 { // wrapped: old stamps could look current
		clear(s.stamp)
		s.cur = 1
	}
	s.touched = s.touched[:0]
	for _, v := range peaks {
		i, j, k := brain.Coords(int(v))
		sx, sy, sz := rs[0][i], rs[1][j], rs[2][k]
		for a, wx := range sx.w {
			for b, wy := range sy.w {
				wxy := wx * wy
				base := brain.Index(sx.lo+a, sy.lo+b, sz.lo)
				vol := s.vol[base : base+len(sz.w)]
				stamp := s.stamp[base : base+len(sz.w)]
				for c, wz := range sz.w {
					if stamp[c] != s.cur {
						stamp[c] = s.cur
						vol[c] = 0
						s.touched = append(s.touched, int32(base+c))
					}
					vol[c] += wxy * wz
				}
			}
		}
	}
}

// stats returns the map's mean and centred norm over the mask. Voxels never touched hold zero, so
// they enter in closed form; the two passes keep the norm free of the cancellation of Σa² − n·mean².
func (s *sparseMap) stats(m *brain.Mask) (mean, norm float64) {
	var sum float64
	in := 0
	for _, v := range s.touched {
		if m.Contains(int(v)) {
			sum += s.vol[v]
			in++
		}
	}
	nm := float64(m.Len())
	mean = sum / nm
	var ss float64
	for _, v := range s.touched {
		if m.Contains(int(v)) {
			d := s.vol[v] - mean
			ss += d * d
		}
	}
	ss += (nm - float64(in)) * mean * mean
	return mean, math.Sqrt(ss)
}
