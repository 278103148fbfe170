package neuroquery

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"math"
)

// CSR is a sparse matrix in compressed-row form, as scipy.sparse.save_npz writes it: row r's
// non-zero entries are Data[Indptr[r]:Indptr[r+1]] at columns Indices[Indptr[r]:Indptr[r+1]].
type CSR struct {
	Rows, Cols int
	Indptr     []int
	Indices    []int
	Data       []float64
}

// Row returns row r's columns and values (the matrix's own slices).
func (c *CSR) Row(r int) (cols []int, vals []float64) {
	return c.Indices[c.Indptr[r]:c.Indptr[r+1]], c.Data[c.Indptr[r]:c.Indptr[r+1]]
}

// ReadCSR reads a scipy sparse matrix saved with save_npz (a zip of data.npy, indices.npy,
// indptr.npy, shape.npy and format.npy, compressed or not) in CSR format: the NeuroQuery corpus's
// term counts and the model's corpus_tfidf.npz.
func ReadCSR(path string) (*CSR, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("%s: not an .npz archive: %w", path, err)
	}
	defer zr.Close()
	member := func(name string) ([]byte, error) {
		f, err := zr.Open(name)
		if err != nil {
			return nil, fmt.Errorf("%s: no %s: not a scipy sparse matrix", path, name)
		}
		defer f.Close()
		return io.ReadAll(f)
	}
	// format.npy holds a byte string (dtype |S3), which the numeric reader refuses; its value is
	// all that matters and ends the file.
	raw, err := member("format.npy")
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(raw, []byte("csr")) {
		return nil, fmt.Errorf("%s: not in CSR format (format.npy ends %q)", path, raw[max(0, len(raw)-3):])
	}
	arrays := map[string]*array{}
	for _, name := range []string{"shape", "indptr", "indices", "data"} {
		raw, err := member(name + ".npy")
		if err != nil {
			return nil, err
		}
		a, err := decodeNPY(bytes.NewReader(raw), path+":"+name+".npy")
		if err != nil {
			return nil, err
		}
		if len(a.shape) != 1 {
			return nil, fmt.Errorf("%s: %s.npy has shape %v, want one dimension", path, name, a.shape)
		}
		arrays[name] = a
	}
	shape := arrays["shape"].data
	if len(shape) != 2 || shape[0] < 0 || shape[1] < 0 || shape[0] != math.Trunc(shape[0]) || shape[1] != math.Trunc(shape[1]) {
		return nil, fmt.Errorf("%s: shape %v, want two sizes", path, shape)
	}
	c := &CSR{Rows: int(shape[0]), Cols: int(shape[1]), Data: arrays["data"].data}
	ptr, idx := arrays["indptr"].data, arrays["indices"].data
	if len(ptr) != c.Rows+1 || ptr[0] != 0 || int(ptr[c.Rows]) != len(c.Data) || len(idx) != len(c.Data) {
		return nil, fmt.Errorf("%s: %d row pointers ending at %v for %d rows and %d values (%d indices)",
			path, len(ptr), ptr[len(ptr)-1], c.Rows, len(c.Data), len(idx))
	}
	c.Indptr = make([]int, len(ptr))
	for r, p := range ptr {
		c.Indptr[r] = int(p)
		if r > 0 && c.Indptr[r] < c.Indptr[r-1] {
			return nil, fmt.Errorf("%s: row pointers decrease at row %d", path, r)
		}
	}
	c.Indices = make([]int, len(idx))
	for i, j := range idx {
		if j < 0 || int(j) >= c.Cols {
			return nil, fmt.Errorf("%s: column %v out of range [0, %d)", path, j, c.Cols)
		}
		c.Indices[i] = int(j)
	}
	for _, v := range c.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: non-finite value", path)
		}
	}
	return c, nil
}
