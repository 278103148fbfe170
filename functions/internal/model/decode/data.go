package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// Data is what a decoder is made of: built offline by package modelbuild, stored in the bundle as
// decoder.bin (WriteTo, ReadData) and turned into a Decoder by New.
type Data struct {
	// MaskLen is the number of mask voxels, Dim the length of a map's description and NFeatures
	// the number of terms (the vocabulary's features, in its order).
	MaskLen, Dim, NFeatures int
	// Basis holds Dim maps of MaskLen values: a map's description is its dot products with them,
	// after it is centred and scaled to unit norm.
	Basis Int8Rows
	// Center is the mean description of the training articles.
	Center []float32
	// Weights holds each term's regression weights (NFeatures rows of Dim), applied to a
	// description minus Center; Intercept the terms' base rates, the share of training articles
	// that have each among their key terms.
	Weights   Int8Rows
	Intercept []float32
	// Articles is the number of articles the decoder was trained on and Lambda the ridge penalty
	// used: a record of how it was made.
	Articles int
	Lambda   float64
}

// Int8Rows is a matrix stored as int8 with one scale per row: row r, column c is
// Scale[r]·int8(Q[r·Cols+c]). Rounding each value to 1/254 of its row's largest magnitude keeps
// the decoder's ranking (the evaluation measures no change) at a quarter of float32's size.
//
// Q holds the int8 values as bytes (two's complement), as the file does, so that a decoder read
// from a bundle computes on the file's own bytes: no copy of 8 MB at every cold start.
type Int8Rows struct {
	Rows, Cols int
	Scale      []float32
	Q          []byte
}

// QuantizeRows stores a rows × cols matrix (row-major values) as Int8Rows.
func QuantizeRows(rows, cols int, values []float64) Int8Rows {
	q := Int8Rows{Rows: rows, Cols: cols, Scale: make([]float32, rows), Q: make([]byte, rows*cols)}
	for r := range rows {
		row := values[r*cols : (r+1)*cols]
		var most float64
		for _, v := range row {
			most = max(most, math.Abs(v))
		}
		if most == 0 {
			continue // an all-zero row stays zero with a zero scale
		}
		q.Scale[r] = float32(most / 127)
		for c, v := range row {
			q.Q[r*cols+c] = byte(int8(math.Round(v / float64(q.Scale[r]))))
		}
	}
	return q
}

// Dequantize returns the matrix's values, row-major.
func (q Int8Rows) Dequantize() []float32 {
	out := make([]float32, len(q.Q))
	for r := range q.Rows {
		s := q.Scale[r]
		row := q.Q[r*q.Cols : (r+1)*q.Cols]
		dst := out[r*q.Cols : (r+1)*q.Cols]
		for c, v := range row {
			dst[c] = s * float32(int8(v))
		}
	}
	return out
}

// check reports what would make the data unusable: sizes that disagree, numbers that are not
// finite. ReadData and New both run it, so that a decoder never meets bad data at decode time.
func (d *Data) check() error {
	switch {
	case d.MaskLen <= 0 || d.Dim <= 0 || d.NFeatures <= 0:
		return fmt.Errorf("data of %d voxels, %d dimensions, %d terms", d.MaskLen, d.Dim, d.NFeatures)
	case d.Basis.Rows != d.Dim || d.Basis.Cols != d.MaskLen || len(d.Basis.Q) != d.Dim*d.MaskLen || len(d.Basis.Scale) != d.Dim:
		return fmt.Errorf("basis of %d×%d, want %d×%d", d.Basis.Rows, d.Basis.Cols, d.Dim, d.MaskLen)
	case d.Weights.Rows != d.NFeatures || d.Weights.Cols != d.Dim || len(d.Weights.Q) != d.NFeatures*d.Dim || len(d.Weights.Scale) != d.NFeatures:
		return fmt.Errorf("weights of %d×%d, want %d×%d", d.Weights.Rows, d.Weights.Cols, d.NFeatures, d.Dim)
	case len(d.Center) != d.Dim || len(d.Intercept) != d.NFeatures:
		return fmt.Errorf("%d centre values and %d intercepts, want %d and %d", len(d.Center), len(d.Intercept), d.Dim, d.NFeatures)
	}
	for _, s := range [][]float32{d.Basis.Scale, d.Weights.Scale, d.Center, d.Intercept} {
		for _, v := range s {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return errors.New("data has a non-finite number")
			}
		}
	}
	return nil
}

// The decoder file: a header (magic, version, payload length), the payload, and the payload's
// CRC-32 (IEEE), little-endian, as the article index is laid out. The payload:
//
//	maskLen u32, dim u32, nFeatures u32, articles u32, lambda f64
//	basis scales [dim]f32, basis [dim·maskLen]i8, center [dim]f32
//	weight scales [nFeatures]f32, weights [nFeatures·dim]i8, intercept [nFeatures]f32
const (
	dataMagic   = "T2BDECOD"
	dataVersion = 1
	headerSize  = len(dataMagic) + 4 + 8
	// maxPayload bounds what a corrupt length can make ReadData attempt; the real file is ~8 MB.
	maxPayload = 1 << 30
)

// WriteTo writes the data in its binary format. The same data always gives the same bytes.
func (d *Data) WriteTo(w io.Writer) (int64, error) {
	if err := d.check(); err != nil {
		return 0, fmt.Errorf("decode: write data: %w", err)
	}
	le := binary.LittleEndian
	p := make([]byte, 0, 24+len(d.Basis.Q)+len(d.Weights.Q)+4*(2*d.Dim+2*d.NFeatures))
	for _, v := range []int{d.MaskLen, d.Dim, d.NFeatures, d.Articles} {
		p = le.AppendUint32(p, uint32(v))
	}
	p = le.AppendUint64(p, math.Float64bits(d.Lambda))
	f32s := func(s []float32) {
		for _, v := range s {
			p = le.AppendUint32(p, math.Float32bits(v))
		}
	}
	f32s(d.Basis.Scale)
	p = append(p, d.Basis.Q...)
	f32s(d.Center)
	f32s(d.Weights.Scale)
	p = append(p, d.Weights.Q...)
	f32s(d.Intercept)

	out := make([]byte, 0, headerSize+len(p)+4)
	out = append(out, dataMagic...)
	out = le.AppendUint32(out, dataVersion)
	out = le.AppendUint64(out, uint64(len(p)))
	out = append(out, p...)
	out = le.AppendUint32(out, crc32.ChecksumIEEE(p))
	n, err := w.Write(out)
	if err != nil {
		return int64(n), fmt.Errorf("decode: write data: %w", err)
	}
	return int64(n), nil
}

// ReadData reads data written by WriteTo, consuming exactly its bytes.
func ReadData(r io.Reader) (*Data, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("decode: read data: header: %w", truncated(err))
	}
	size, err := readHeader(h[:])
	if err != nil {
		return nil, err
	}
	// ReadAll grows with the data actually there, so a corrupt size cannot force a huge allocation.
	p, err := io.ReadAll(io.LimitReader(r, int64(size)))
	if err != nil {
		return nil, fmt.Errorf("decode: read data: %w", err)
	}
	if uint64(len(p)) != size {
		return nil, fmt.Errorf("decode: read data: truncated: %d of %d payload bytes", len(p), size)
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return nil, fmt.Errorf("decode: read data: checksum: %w", truncated(err))
	}
	return parsePayload(p, sum[:])
}

// ParseData is ReadData on a whole file held in memory (the bundle loader's), without copying it:
// the data's int8 matrices are slices of raw, which must not change afterwards. raw must hold the
// data and nothing else.
func ParseData(raw []byte) (*Data, error) {
	if len(raw) < headerSize {
		return nil, errors.New("decode: read data: header: truncated")
	}
	size, err := readHeader(raw[:headerSize])
	if err != nil {
		return nil, err
	}
	if uint64(len(raw)-headerSize) < size+4 {
		return nil, fmt.Errorf("decode: read data: truncated: %d bytes, the header promises %d", len(raw), uint64(headerSize)+size+4)
	}
	if uint64(len(raw)-headerSize) > size+4 {
		return nil, fmt.Errorf("decode: read data: %d unexpected bytes after the data", uint64(len(raw)-headerSize)-size-4)
	}
	end := headerSize + int(size)
	return parsePayload(raw[headerSize:end], raw[end:])
}

// readHeader checks the header and returns the payload's length.
func readHeader(h []byte) (uint64, error) {
	if string(h[:len(dataMagic)]) != dataMagic {
		return 0, errors.New("decode: read data: not decoder data (bad magic)")
	}
	le := binary.LittleEndian
	if v := le.Uint32(h[len(dataMagic):]); v != dataVersion {
		return 0, fmt.Errorf("decode: read data: format version %d, this program reads %d", v, dataVersion)
	}
	size := le.Uint64(h[len(dataMagic)+4:])
	if size > maxPayload {
		return 0, fmt.Errorf("decode: read data: corrupt header: payload of %d bytes", size)
	}
	return size, nil
}

func parsePayload(p, sum []byte) (*Data, error) {
	if binary.LittleEndian.Uint32(sum) != crc32.ChecksumIEEE(p) {
		return nil, errors.New("decode: read data: checksum mismatch: the file is corrupt")
	}
	d, err := decodePayload(p)
	if err != nil {
		return nil, fmt.Errorf("decode: read data: %w", err)
	}
	return d, nil
}

func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("truncated")
	}
	return err
}

func decodePayload(p []byte) (*Data, error) {
	le := binary.LittleEndian
	if len(p) < 24 {
		return nil, errors.New("payload too short")
	}
	d := &Data{MaskLen: int(le.Uint32(p)), Dim: int(le.Uint32(p[4:])), NFeatures: int(le.Uint32(p[8:])),
		Articles: int(le.Uint32(p[12:])), Lambda: math.Float64frombits(le.Uint64(p[16:]))}
	// The sizes are checked against the payload before anything is allocated from them.
	want := uint64(24) + uint64(d.Dim)*uint64(d.MaskLen) + uint64(d.NFeatures)*uint64(d.Dim) +
		4*(2*uint64(d.Dim)+2*uint64(d.NFeatures))
	if d.MaskLen <= 0 || d.Dim <= 0 || d.NFeatures <= 0 || want != uint64(len(p)) {
		return nil, fmt.Errorf("%d voxels, %d dimensions and %d terms do not make %d bytes", d.MaskLen, d.Dim, d.NFeatures, len(p))
	}
	off := 24
	f32s := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = math.Float32frombits(le.Uint32(p[off+4*i:]))
		}
		off += 4 * n
		return s
	}
	// The int8 values stay in the payload: the data shares it.
	i8s := func(n int) []byte {
		s := p[off : off+n : off+n]
		off += n
		return s
	}
	d.Basis = Int8Rows{Rows: d.Dim, Cols: d.MaskLen, Scale: f32s(d.Dim)}
	d.Basis.Q = i8s(d.Dim * d.MaskLen)
	d.Center = f32s(d.Dim)
	d.Weights = Int8Rows{Rows: d.NFeatures, Cols: d.Dim, Scale: f32s(d.NFeatures)}
	d.Weights.Q = i8s(d.NFeatures * d.Dim)
	d.Intercept = f32s(d.NFeatures)
	if err := d.check(); err != nil {
		return nil, err
	}
	return d, nil
}

// Compile-time check that *Data is an io.WriterTo, the interface bundle writers use.
var _ io.WriterTo = (*Data)(nil)
