package neuroquery

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
)

// npyBytes is a .npy file of a 1-D array (or a scalar byte string for descr |S3), as NumPy writes.
func npyBytes(descr string, shape string, data []byte) []byte {
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	buf := append([]byte("\x93NUMPY\x01\x00"), byte(len(header)), byte(len(header)>>8))
	return append(append(buf, header...), data...)
}

func i32s(v ...int32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

func i64s(v ...int64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return b
}

func f64s(v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

// writeNPZ writes a zip of the named members, compressed or stored as scipy's save_npz
// (compressed=True or False) does.
func writeNPZ(t *testing.T, members map[string][]byte, method uint16) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"indices.npy", "indptr.npy", "format.npy", "shape.npy", "data.npy"} {
		data, ok := members[name]
		if !ok {
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.npz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The matrix [[0 2 0] [0 0 0] [1 0 3.5]].
func csrMembers() map[string][]byte {
	return map[string][]byte{
		"indices.npy": npyBytes("<i4", "(3,)", i32s(1, 0, 2)),
		"indptr.npy":  npyBytes("<i4", "(4,)", i32s(0, 1, 1, 3)),
		"format.npy":  npyBytes("|S3", "()", []byte("csr")),
		"shape.npy":   npyBytes("<i8", "(2,)", i64s(3, 3)),
		"data.npy":    npyBytes("<f8", "(3,)", f64s(2, 1, 3.5)),
	}
}

func TestReadCSR(t *testing.T) {
	want := &CSR{Rows: 3, Cols: 3, Indptr: []int{0, 1, 1, 3}, Indices: []int{1, 0, 2}, Data: []float64{2, 1, 3.5}}
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		got, err := ReadCSR(writeNPZ(t, csrMembers(), method))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("method %d (-want +got):\n%s", method, diff)
		}
		cols, vals := got.Row(2)
		if !cmp.Equal(cols, []int{0, 2}) || !cmp.Equal(vals, []float64{1, 3.5}) {
			t.Errorf("row 2: %v %v", cols, vals)
		}
	}
}

func TestReadCSRRejects(t *testing.T) {
	testCases := []struct {
		name string
		edit func(map[string][]byte)
		want string
	}{
		{"CSC format", func(m map[string][]byte) { m["format.npy"] = npyBytes("|S3", "()", []byte("csc")) }, "not in CSR format"},
		{"no data", func(m map[string][]byte) { delete(m, "data.npy") }, "no data.npy"},
		{"column out of range", func(m map[string][]byte) { m["indices.npy"] = npyBytes("<i4", "(3,)", i32s(1, 0, 3)) }, "out of range"},
		{"pointers past the data", func(m map[string][]byte) { m["indptr.npy"] = npyBytes("<i4", "(4,)", i32s(0, 1, 1, 4)) }, "row pointers"},
		{"decreasing pointers", func(m map[string][]byte) { m["indptr.npy"] = npyBytes("<i4", "(4,)", i32s(0, 2, 1, 3)) }, "decrease"},
		{"NaN value", func(m map[string][]byte) { m["data.npy"] = npyBytes("<f8", "(3,)", f64s(2, math.NaN(), 1)) }, "non-finite"},
		{"unsupported dtype", func(m map[string][]byte) { m["data.npy"] = npyBytes("<f2", "(3,)", make([]byte, 6)) }, "not supported"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			m := csrMembers()
			tc.edit(m)
			_, err := ReadCSR(writeNPZ(t, m, zip.Deflate))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one that says %q", err, tc.want)
			}
		})
	}
	if _, err := ReadCSR(filepath.Join(t.TempDir(), "none.npz")); err == nil {
		t.Error("a missing file was read")
	}
}

// The model's corpus_tfidf.npz: one row per training article over the 6,308 features.
func TestReadCSRReal(t *testing.T) {
	c, err := ReadCSR(testenv.Data(t, "neuroquery_model", "corpus_tfidf.npz"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rows != 13459 || c.Cols != 6308 || len(c.Data) != 708490 {
		t.Errorf("%d×%d with %d values, want 13459×6308 with 708490", c.Rows, c.Cols, len(c.Data))
	}
}
