package neuroquery

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/sbinet/npyio/npy"
)

// array is a NumPy array converted to float64 in C order.
type array struct {
	shape []int
	data  []float64
}

// readNPY reads a .npy file of one of the dtypes NeuroQuery models use. npyio parses the header;
// the data is decoded here in bulk because npyio converts element by element and not across dtypes.
func readNPY(path string) (*array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return decodeNPY(f, path)
}

// decodeNPY is readNPY on a stream; path names it in errors.
func decodeNPY(in io.Reader, path string) (*array, error) {
	br := bufio.NewReaderSize(in, 1<<20)
	r, err := npy.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("%s: not a valid .npy file: %w", path, err)
	}
	h := r.Header.Descr
	var size int
	var decode func([]byte) float64
	switch h.Type {
	case "<f4":
		size, decode = 4, func(b []byte) float64 { return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))) }
	case "<f8":
		size, decode = 8, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }
	case "<i4":
		size, decode = 4, func(b []byte) float64 { return float64(int32(binary.LittleEndian.Uint32(b))) }
	case "<i8":
		size, decode = 8, func(b []byte) float64 { return float64(int64(binary.LittleEndian.Uint64(b))) }
	default:
		return nil, fmt.Errorf("%s: dtype %q is not supported (want <f4, <f8, <i4 or <i8)", path, h.Type)
	}
	n := 1
	for _, d := range h.Shape {
		n *= d
	}
	raw := make([]byte, n*size)
	if _, err := io.ReadFull(br, raw); err != nil {
		return nil, fmt.Errorf("%s: truncated data (want %d values of shape %v): %w", path, n, h.Shape, err)
	}
	a := &array{shape: h.Shape, data: make([]float64, n)}
	if h.Fortran && len(h.Shape) == 2 {
		rows, cols := h.Shape[0], h.Shape[1]
		for c := 0; c < cols; c++ {
			for r := 0; r < rows; r++ {
				a.data[r*cols+c] = decode(raw[(c*rows+r)*size:])
			}
		}
	} else if h.Fortran && len(h.Shape) > 2 {
		return nil, fmt.Errorf("%s: Fortran-ordered arrays of %d dimensions are not supported", path, len(h.Shape))
	} else {
		for i := range a.data {
			a.data[i] = decode(raw[i*size:])
		}
	}
	return a, nil
}

// wantShape checks an array's shape; -1 matches any length.
func (a *array) wantShape(name string, shape ...int) error {
	ok := len(a.shape) == len(shape)
	for i := 0; ok && i < len(shape); i++ {
		ok = shape[i] < 0 || shape[i] == a.shape[i]
	}
	if !ok {
		return fmt.Errorf("%s has shape %v, want %v", name, a.shape, shape)
	}
	return nil
}
