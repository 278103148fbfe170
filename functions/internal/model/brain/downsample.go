package brain

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Downsample makes a coarser copy of a volume: each voxel the mean of a factor³ block (blocks
// cut by the volume's edge average what they hold), with the affine moved to the blocks' centres.
// The page's viewer draws maps over a 2 mm copy of the 1 mm template: as sharp as the 4 mm maps
// need, an eighth of the download.
func Downsample(v *Volume, factor int) *Volume {
	if factor < 1 {
		panic("brain: Downsample: factor < 1")
	}
	var d [3]int
	for a := range 3 {
		d[a] = (v.Dims[a] + factor - 1) / factor
	}
	out := &Volume{Dims: d, Data: make([]float64, d[0]*d[1]*d[2])}
	for i := range d[0] {
		for j := range d[1] {
			for k := range d[2] {
				var sum float64
				var n int
				for di := range factor {
					for dj := range factor {
						for dk := range factor {
							x, y, z := i*factor+di, j*factor+dj, k*factor+dk
							if x < v.Dims[0] && y < v.Dims[1] && z < v.Dims[2] {
								sum += v.Data[(x*v.Dims[1]+y)*v.Dims[2]+z]
								n++
							}
						}
					}
				}
				out.Data[(i*d[1]+j)*d[2]+k] = sum / float64(n)
			}
		}
	}
	// Voxel (i, j, k) of the copy is centred on (f·i + (f−1)/2, …) of the original.
	off := float64(factor-1) / 2
	for r := range 3 {
		for c := range 3 {
			out.Affine[r][c] = v.Affine[r][c] * float64(factor)
		}
		out.Affine[r][3] = v.Affine[r][3] + off*(v.Affine[r][0]+v.Affine[r][1]+v.Affine[r][2])
	}
	out.Affine[3] = [4]float64{0, 0, 0, 1}
	return out
}

// WriteUint8 writes a volume as a gzip-compressed NIfTI-1 of unsigned bytes: its range mapped onto
// 0–255 (scl_slope and scl_inter give the values back to within a 255th of the range), the affine
// in the sform (MNI152), no qform (the affine need not be a rotation). For images, whose values
// are only looked at.
func WriteUint8(w io.Writer, v *Volume, description string) error {
	n := v.Dims[0] * v.Dims[1] * v.Dims[2]
	if len(v.Data) != n || n == 0 || v.Dims[0] > math.MaxInt16 || v.Dims[1] > math.MaxInt16 || v.Dims[2] > math.MaxInt16 {
		return fmt.Errorf("brain: WriteUint8: %d values for dims %v", len(v.Data), v.Dims)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range v.Data {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			lo, hi = min(lo, x), max(hi, x)
		}
	}
	if lo > hi {
		lo, hi = 0, 0
	}
	slope := (hi - lo) / 255
	if slope == 0 {
		slope = 1
	}
	h := &header{
		SizeofHdr: headerSize,
		Regular:   'r',
		Dim:       [8]int16{3, int16(v.Dims[0]), int16(v.Dims[1]), int16(v.Dims[2]), 1, 1, 1, 1},
		Datatype:  dtUint8,
		Bitpix:    8,
		VoxOffset: dataOffset,
		SclSlope:  float32(slope),
		SclInter:  float32(lo),
		XYZTUnits: unitsMM,
		CalMin:    float32(lo),
		CalMax:    float32(hi),
		SformCode: xformMNI152,
		Magic:     magicSingle,
	}
	h.Pixdim[0] = 1
	for a := range 3 {
		col := [3]float64{v.Affine[0][a], v.Affine[1][a], v.Affine[2][a]}
		h.Pixdim[a+1] = float32(math.Sqrt(col[0]*col[0] + col[1]*col[1] + col[2]*col[2]))
	}
	h.Pixdim[4] = 1
	for c := range 4 {
		h.SrowX[c], h.SrowY[c], h.SrowZ[c] = float32(v.Affine[0][c]), float32(v.Affine[1][c]), float32(v.Affine[2][c])
	}
	copy(h.Descrip[:], truncateUTF8(description, len(h.Descrip)-1))
	buf := make([]byte, dataOffset+n)
	if _, err := binary.Encode(buf, binary.LittleEndian, h); err != nil {
		return fmt.Errorf("brain: WriteUint8: header: %w", err)
	}
	dst := buf[dataOffset:]
	for k := range v.Dims[2] {
		for j := range v.Dims[1] {
			for i := range v.Dims[0] {
				x := v.Data[(i*v.Dims[1]+j)*v.Dims[2]+k]
				q := 0.0
				if !math.IsNaN(x) && !math.IsInf(x, 0) {
					q = math.Round((x - lo) / slope)
				}
				dst[0] = uint8(max(0, min(255, q)))
				dst = dst[1:]
			}
		}
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(buf); err != nil {
		return fmt.Errorf("brain: WriteUint8: %w", err)
	}
	return zw.Close()
}
