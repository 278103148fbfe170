package articles

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// The index file: a header (magic, version, payload length), the payload, and the payload's
// CRC-32 (IEEE). All numbers are little-endian. The payload is columnar, so that loading is a few
// bulk decodes rather than a parse:
//
//	maskLen u32, maskHash u64, n u32, nPeaks u32
//	pmid [n]i64, year [n]i32, mean [n]f64, norm [n]f64, peak count [n]u32, peaks [nPeaks]u32
//	for each article: title, authors, journal, doi, each a uvarint byte length and UTF-8 bytes
//
// The length in the header lets ReadIndex stop exactly at the end of the index, so that the index
// can sit inside a larger bundle stream.
const (
	indexMagic   = "T2BARTIX"
	indexVersion = 1
	headerSize   = len(indexMagic) + 4 + 8
	// maxPayload bounds what a corrupt length can make ReadIndex attempt; the real index is ~6 MB.
	maxPayload = 1 << 31
)

// WriteTo writes the index in its binary format. The same index always gives the same bytes.
func (ix *Index) WriteTo(w io.Writer) (int64, error) {
	n := ix.Len()
	p := make([]byte, 0, 24+n*36+len(ix.peaks)*4+n*128)
	le := binary.LittleEndian
	p = le.AppendUint32(p, uint32(ix.maskLen))
	p = le.AppendUint64(p, ix.maskHash)
	p = le.AppendUint32(p, uint32(n))
	p = le.AppendUint32(p, uint32(len(ix.peaks)))
	for _, a := range ix.articles {
		p = le.AppendUint64(p, uint64(a.PMID))
	}
	for _, a := range ix.articles {
		p = le.AppendUint32(p, uint32(int32(a.Year)))
	}
	for _, v := range ix.mean {
		p = le.AppendUint64(p, math.Float64bits(v))
	}
	for _, v := range ix.norm {
		p = le.AppendUint64(p, math.Float64bits(v))
	}
	for i := range n {
		p = le.AppendUint32(p, uint32(ix.peakStart[i+1]-ix.peakStart[i]))
	}
	for _, v := range ix.peaks {
		p = le.AppendUint32(p, uint32(v))
	}
	for _, a := range ix.articles {
		for _, s := range [...]string{a.Title, a.Authors, a.Journal, a.DOI} {
			p = binary.AppendUvarint(p, uint64(len(s)))
			p = append(p, s...)
		}
	}

	out := make([]byte, 0, headerSize+len(p)+4)
	out = append(out, indexMagic...)
	out = le.AppendUint32(out, indexVersion)
	out = le.AppendUint64(out, uint64(len(p)))
	out = append(out, p...)
	out = le.AppendUint32(out, crc32.ChecksumIEEE(p))
	written, err := w.Write(out)
	if err != nil {
		return int64(written), fmt.Errorf("articles: write index: %w", err)
	}
	return int64(written), nil
}

// ReadIndex reads an index written by WriteTo, consuming exactly its bytes.
func ReadIndex(r io.Reader) (*Index, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("articles: read index: header: %w", truncated(err))
	}
	if string(h[:len(indexMagic)]) != indexMagic {
		return nil, errors.New("articles: read index: not an article index (bad magic)")
	}
	le := binary.LittleEndian
	if v := le.Uint32(h[len(indexMagic):]); v != indexVersion {
		return nil, fmt.Errorf("articles: read index: format version %d, this program reads %d", v, indexVersion)
	}
	size := le.Uint64(h[len(indexMagic)+4:])
	if size > maxPayload {
		return nil, fmt.Errorf("articles: read index: corrupt header: payload of %d bytes", size)
	}
	// ReadAll grows with the data actually there, so a corrupt size cannot force a huge allocation.
	payload, err := io.ReadAll(io.LimitReader(r, int64(size)))
	if err != nil {
		return nil, fmt.Errorf("articles: read index: %w", err)
	}
	if uint64(len(payload)) != size {
		return nil, fmt.Errorf("articles: read index: truncated: %d of %d payload bytes", len(payload), size)
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return nil, fmt.Errorf("articles: read index: checksum: %w", truncated(err))
	}
	if le.Uint32(sum[:]) != crc32.ChecksumIEEE(payload) {
		return nil, errors.New("articles: read index: checksum mismatch: the file is corrupt")
	}
	ix, err := decodePayload(payload)
	if err != nil {
		return nil, fmt.Errorf("articles: read index: %w", err)
	}
	return ix, nil
}

func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("truncated")
	}
	return err
}

// decoder reads the payload; after the first error every read returns zero values and the error
// sticks, so that decodePayload checks once per section.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errors.New("payload too short for its counts")
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u32() uint32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (d *decoder) u64() uint64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func decodePayload(p []byte) (*Index, error) {
	le := binary.LittleEndian
	d := &decoder{b: p}
	maskLen := int(d.u32())
	maskHash := d.u64()
	n := int(d.u32())
	nPeaks := int(d.u32())
	if d.err != nil {
		return nil, d.err
	}
	if maskLen <= 0 || maskLen > brain.NVoxels {
		return nil, fmt.Errorf("mask of %d voxels", maskLen)
	}
	// Checked before allocating: each article needs at least 36 bytes of numbers and one peak.
	if n > len(p)/36 || nPeaks > len(p)/4 || nPeaks < n {
		return nil, fmt.Errorf("%d articles and %d peaks do not fit in %d bytes", n, nPeaks, len(p))
	}
	ix := &Index{
		articles:  make([]Article, n),
		peakStart: make([]int32, n+1),
		peaks:     make([]int32, nPeaks),
		mean:      make([]float64, n),
		norm:      make([]float64, n),
		maskLen:   maskLen,
		maskHash:  maskHash,
	}
	if b := d.take(8 * n); b != nil {
		for i := range n {
			ix.articles[i].PMID = int64(le.Uint64(b[8*i:]))
		}
	}
	if b := d.take(4 * n); b != nil {
		for i := range n {
			ix.articles[i].Year = int(int32(le.Uint32(b[4*i:])))
		}
	}
	for _, col := range [][]float64{ix.mean, ix.norm} {
		if b := d.take(8 * n); b != nil {
			for i := range n {
				col[i] = math.Float64frombits(le.Uint64(b[8*i:]))
			}
		}
	}
	if b := d.take(4 * n); b != nil {
		total := 0
		for i := range n {
			c := int(le.Uint32(b[4*i:]))
			if c == 0 || c > nPeaks-total {
				return nil, fmt.Errorf("article %d: %d peaks, inconsistent with the total of %d", i, c, nPeaks)
			}
			total += c
			ix.peakStart[i+1] = int32(total)
		}
		if total != nPeaks {
			return nil, fmt.Errorf("articles' peaks add up to %d, want %d", total, nPeaks)
		}
	}
	if b := d.take(4 * nPeaks); b != nil {
		for i := range nPeaks {
			v := le.Uint32(b[4*i:])
			if v >= brain.NVoxels {
				return nil, fmt.Errorf("peak %d: voxel %d outside the volume", i, v)
			}
			ix.peaks[i] = int32(v)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	for i, a := range ix.articles {
		if a.PMID <= 0 {
			return nil, fmt.Errorf("article %d: pmid %d", i, a.PMID)
		}
		if !(ix.mean[i] > 0) || math.IsInf(ix.mean[i], 0) || !(ix.norm[i] >= 0) || math.IsInf(ix.norm[i], 0) {
			return nil, fmt.Errorf("article %d (pmid %d): bad map statistics (mean %g, norm %g)", i, a.PMID, ix.mean[i], ix.norm[i])
		}
	}

	// One string for the whole text section, sliced per field: 4 fields × 13,000 articles would
	// otherwise be as many allocations.
	text := string(d.b)
	off := 0
	for i := range ix.articles {
		a := &ix.articles[i]
		for _, f := range [...]*string{&a.Title, &a.Authors, &a.Journal, &a.DOI} {
			l, w := binary.Uvarint(d.b[off:])
			if w <= 0 || l > uint64(len(d.b)-off-w) {
				return nil, fmt.Errorf("article %d: text truncated", i)
			}
			off += w
			*f = text[off : off+int(l)]
			off += int(l)
		}
	}
	if off != len(d.b) {
		return nil, fmt.Errorf("%d unexpected bytes after the articles", len(d.b)-off)
	}
	return ix, nil
}

// Compile-time check that *Index is an io.WriterTo, the interface bundle writers use.
var _ io.WriterTo = (*Index)(nil)
