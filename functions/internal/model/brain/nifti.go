package brain

// NIfTI input and output, written here because no maintained Go NIfTI library is available on
// the module proxy this project builds from. The format is small: a fixed header (348 bytes in
// NIfTI-1, 540 in NIfTI-2, which widens the same fields to 64 bits), an optional extension block,
// then the raw voxels with i varying fastest. The reader takes what researchers upload as
// statistical maps: single-file (.nii / .nii.gz) scalar images of either version, 3D or the
// first volume of 4D and higher; the writer writes NIfTI-1 only, which every viewer reads.
//
// References: https://nifti.nimh.nih.gov/pub/dist/src/niftilib/nifti1.h and
// https://nifti.nimh.nih.gov/pub/dist/doc/nifti2.h

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"unicode/utf8"
)

// header is the NIfTI-1 header, field for field, so that encoding/binary reads and writes it in
// either byte order.
type header struct {
	SizeofHdr     int32
	DataType      [10]byte
	DBName        [18]byte
	Extents       int32
	SessionError  int16
	Regular       byte
	DimInfo       byte
	Dim           [8]int16
	IntentP1      float32
	IntentP2      float32
	IntentP3      float32
	IntentCode    int16
	Datatype      int16
	Bitpix        int16
	SliceStart    int16
	Pixdim        [8]float32
	VoxOffset     float32
	SclSlope      float32
	SclInter      float32
	SliceEnd      int16
	SliceCode     byte
	XYZTUnits     byte
	CalMax        float32
	CalMin        float32
	SliceDuration float32
	Toffset       float32
	Glmax         int32
	Glmin         int32
	Descrip       [80]byte
	AuxFile       [24]byte
	QformCode     int16
	SformCode     int16
	QuaternB      float32
	QuaternC      float32
	QuaternD      float32
	QoffsetX      float32
	QoffsetY      float32
	QoffsetZ      float32
	SrowX         [4]float32
	SrowY         [4]float32
	SrowZ         [4]float32
	IntentName    [16]byte
	Magic         [4]byte
}

// header2 is the NIfTI-2 header: NIfTI-1's fields reordered, the magic widened to 8 bytes, and
// dims, offsets and every float widened to 64 bits so that images can exceed 32767 voxels a side.
type header2 struct {
	SizeofHdr     int32
	Magic         [8]byte
	Datatype      int16
	Bitpix        int16
	Dim           [8]int64
	IntentP1      float64
	IntentP2      float64
	IntentP3      float64
	Pixdim        [8]float64
	VoxOffset     int64
	SclSlope      float64
	SclInter      float64
	CalMax        float64
	CalMin        float64
	SliceDuration float64
	Toffset       float64
	SliceStart    int64
	SliceEnd      int64
	Descrip       [80]byte
	AuxFile       [24]byte
	QformCode     int32
	SformCode     int32
	QuaternB      float64
	QuaternC      float64
	QuaternD      float64
	QoffsetX      float64
	QoffsetY      float64
	QoffsetZ      float64
	SrowX         [4]float64
	SrowY         [4]float64
	SrowZ         [4]float64
	SliceCode     int32
	XYZTUnits     int32
	IntentCode    int32
	IntentName    [16]byte
	DimInfo       byte
	UnusedStr     [15]byte
}

const (
	headerSize = 348
	// dataOffset is where voxels start in a single-file NIfTI-1 with no extension: the header
	// plus the 4-byte extension flag.
	dataOffset = 352

	nifti2HeaderSize = 540
	// dataOffset2 is dataOffset for NIfTI-2.
	dataOffset2 = nifti2HeaderSize + 4

	xformMNI152 = 4 // NIFTI_XFORM_MNI_152
	unitsMM     = 2 // NIFTI_UNITS_MM
	dtUint8     = 2
	// intentZScore is NIFTI_INTENT_ZSCORE.
	intentZScore = 5
	dtFloat32    = 16
)

var (
	magicSingle  = [4]byte{'n', '+', '1', 0}
	magicPair    = [4]byte{'n', 'i', '1', 0}
	magic2Single = [8]byte{'n', '+', '2', 0, '\r', '\n', 0x1a, '\n'}
	magic2Pair   = [4]byte{'n', 'i', '2', 0}
)

type datatype struct {
	name string
	size int
	// why says, for an unsupported datatype, what it holds instead of one number per voxel.
	why string
}

// datatypes maps NIfTI datatype codes to their name and size in bytes; size 0 marks a code that
// is recognised (for the error message) but not supported.
var datatypes = map[int16]datatype{
	1:    {"BINARY", 0, "bit-packed voxels"},
	2:    {"UINT8", 1, ""},
	4:    {"INT16", 2, ""},
	8:    {"INT32", 4, ""},
	16:   {"FLOAT32", 4, ""},
	32:   {"COMPLEX64", 0, "complex values; a brain map has one real value per voxel"},
	64:   {"FLOAT64", 8, ""},
	128:  {"RGB24", 0, "colours; a brain map has one value per voxel"},
	256:  {"INT8", 1, ""},
	512:  {"UINT16", 2, ""},
	768:  {"UINT32", 4, ""},
	1024: {"INT64", 8, ""},
	1280: {"UINT64", 8, ""},
	1536: {"FLOAT128", 0, "128-bit floats; save the map as float32 or float64"},
	1792: {"COMPLEX128", 0, "complex values; a brain map has one real value per voxel"},
	2048: {"COMPLEX256", 0, "complex values; a brain map has one real value per voxel"},
	2304: {"RGBA32", 0, "colours; a brain map has one value per voxel"},
}

// maxVoxels bounds the volume a header may announce, so that a corrupt header cannot make the
// reader's index arithmetic overflow. 2³⁰ voxels is far beyond any brain image.
const maxVoxels = 1 << 30

// Kinds of image the reader refuses that a caller may want to tell apart (test with errors.Is);
// the errors returned carry the details.
var (
	// ErrTooManyVoxels: the first volume has more voxels than ReadOptions.MaxVoxels.
	ErrTooManyVoxels = errors.New("nifti: too many voxels")
	// ErrNotVolume: the image is 1D or 2D (a single slice, say), not a 3D volume.
	ErrNotVolume = errors.New("nifti: not a 3D volume")
	// ErrNoTransform is for callers that need the image's position in the brain and find
	// Transform == TransformNone; ReadNIfTI itself reads such images.
	ErrNoTransform = errors.New("nifti: the image has no spatial transform (its sform_code and qform_code are both 0), so nothing says where its voxels are in the brain")
)

// kindError is an error with its own message that errors.Is matches to a sentinel.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Transforms a Volume's affine can come from (Volume.Transform).
const (
	// TransformSform is the header's sform (srow_x, srow_y, srow_z), used when sform_code > 0.
	TransformSform = "sform"
	// TransformQform is the header's quaternion, used when sform_code is 0 and qform_code > 0.
	TransformQform = "qform"
	// TransformNone means neither is set: the affine is the voxel sizes alone, with no origin
	// (NIfTI's "method 1"), so the voxels have no known position in the brain. It is also the
	// zero value, which volumes not read from a file have.
	TransformNone = ""
)

// Volume is a 3D image with its voxel → world (MNI mm) affine.
type Volume struct {
	Dims [3]int
	// Data is in C order: voxel (i, j, k) is at (i*Dims[1]+j)*Dims[2]+k, like mask order.
	Data []float64
	// Affine maps voxel indices (i, j, k, 1) to world millimetres; row-major.
	Affine [4][4]float64

	// What ReadNIfTI found in the file; zero in volumes made otherwise.

	// Transform is where Affine came from: TransformSform, TransformQform or TransformNone.
	Transform string
	// Volumes is how many 3D volumes the file holds (its 4th and higher dimensions multiplied,
	// at most math.MaxInt); Data is the first.
	Volumes int
	// NonFinite is how many voxels of Data were NaN or ±Inf in the file (after scaling) and are
	// 0 instead: NaN is how many tools mark "no value", and a single one would poison every sum.
	NonFinite int
}

// At returns the value of voxel (i, j, k), or 0 outside the volume.
func (v *Volume) At(i, j, k int) float64 {
	if i < 0 || i >= v.Dims[0] || j < 0 || j >= v.Dims[1] || k < 0 || k >= v.Dims[2] {
		return 0
	}
	return v.Data[(i*v.Dims[1]+j)*v.Dims[2]+k]
}

// Interpolation selects how a volume is sampled between voxel centres.
type Interpolation int

const (
	// Nearest takes the value of the voxel whose centre is nearest.
	Nearest Interpolation = iota
	// Trilinear blends the eight surrounding voxel centres.
	Trilinear
)

// SampleMNI returns the volume's value at a world position (mm). Positions outside the volume
// (beyond half a voxel from the outermost centres) and volumes whose affine cannot be inverted
// give 0.
func (v *Volume) SampleMNI(mni [3]float64, interp Interpolation) float64 {
	s, ok := newSampler(v)
	if !ok {
		return 0
	}
	return s.sample(mni, interp)
}

// sampler caches the inverse affine, which a picture needs for every one of its pixels.
type sampler struct {
	v   *Volume
	inv [3][4]float64
}

func newSampler(v *Volume) (sampler, bool) {
	inv, ok := invertAffine(v.Affine)
	return sampler{v: v, inv: inv}, ok
}

// voxel returns the continuous voxel coordinates of a world position.
func (s sampler) voxel(p [3]float64) [3]float64 {
	var c [3]float64
	for r := 0; r < 3; r++ {
		c[r] = s.inv[r][0]*p[0] + s.inv[r][1]*p[1] + s.inv[r][2]*p[2] + s.inv[r][3]
	}
	return c
}

func (s sampler) sample(p [3]float64, interp Interpolation) float64 {
	x, _ := s.at(s.voxel(p), interp)
	return x
}

// at returns the value at continuous voxel coordinates c, and whether c is inside the volume
// (outside, the value is 0).
func (s sampler) at(c [3]float64, interp Interpolation) (float64, bool) {
	d := s.v.Dims
	for a := 0; a < 3; a++ {
		// The volume covers each voxel's full extent, half a voxel either side of its centre.
		if !(c[a] >= -0.5 && c[a] <= float64(d[a])-0.5) {
			return 0, false
		}
	}
	if interp == Nearest {
		i := min(int(math.Floor(c[0]+0.5)), d[0]-1)
		j := min(int(math.Floor(c[1]+0.5)), d[1]-1)
		k := min(int(math.Floor(c[2]+0.5)), d[2]-1)
		return s.v.Data[(i*d[1]+j)*d[2]+k], true
	}
	var lo, hi [3]int
	var w [3]float64
	for a := 0; a < 3; a++ {
		f := math.Floor(c[a])
		w[a] = c[a] - f
		// In the outer half voxel, both corners are the edge voxel: the edge value extends to
		// the border instead of fading into zeros that are not in the image.
		lo[a] = max(int(f), 0)
		hi[a] = min(int(f)+1, d[a]-1)
	}
	// The four (i, j) rows the corners are in; k is the offset within a row.
	data := s.v.Data
	r00, r01 := (lo[0]*d[1]+lo[1])*d[2], (lo[0]*d[1]+hi[1])*d[2]
	r10, r11 := (hi[0]*d[1]+lo[1])*d[2], (hi[0]*d[1]+hi[1])*d[2]
	k0, k1, wk := lo[2], hi[2], w[2]
	c00 := data[r00+k0]*(1-wk) + data[r00+k1]*wk
	c01 := data[r01+k0]*(1-wk) + data[r01+k1]*wk
	c10 := data[r10+k0]*(1-wk) + data[r10+k1]*wk
	c11 := data[r11+k0]*(1-wk) + data[r11+k1]*wk
	c0 := c00*(1-w[1]) + c01*w[1]
	c1 := c10*(1-w[1]) + c11*w[1]
	return c0*(1-w[0]) + c1*w[0], true
}

// invertAffine inverts the 3×3 linear part and the translation of an affine.
func invertAffine(a [4][4]float64) ([3][4]float64, bool) {
	m00, m01, m02 := a[0][0], a[0][1], a[0][2]
	m10, m11, m12 := a[1][0], a[1][1], a[1][2]
	m20, m21, m22 := a[2][0], a[2][1], a[2][2]
	det := m00*(m11*m22-m12*m21) - m01*(m10*m22-m12*m20) + m02*(m10*m21-m11*m20)
	if det == 0 || math.IsNaN(det) || math.IsInf(det, 0) {
		return [3][4]float64{}, false
	}
	r := [3][3]float64{
		{(m11*m22 - m12*m21) / det, (m02*m21 - m01*m22) / det, (m01*m12 - m02*m11) / det},
		{(m12*m20 - m10*m22) / det, (m00*m22 - m02*m20) / det, (m02*m10 - m00*m12) / det},
		{(m10*m21 - m11*m20) / det, (m01*m20 - m00*m21) / det, (m00*m11 - m01*m10) / det},
	}
	var inv [3][4]float64
	for i := 0; i < 3; i++ {
		copy(inv[i][:3], r[i][:])
		inv[i][3] = -(r[i][0]*a[0][3] + r[i][1]*a[1][3] + r[i][2]*a[2][3])
	}
	return inv, true
}

// ReadNIfTIFile reads a .nii or .nii.gz file.
func ReadNIfTIFile(path string) (*Volume, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("brain: %w", err)
	}
	defer f.Close()
	v, err := ReadNIfTI(f)
	if err != nil {
		return nil, fmt.Errorf("brain: %s: %w", path, err)
	}
	return v, nil
}

// ReadNIfTI reads a single-file NIfTI-1 or NIfTI-2 image, gzip-compressed or not, of either byte
// order. Of a 4D or higher image it keeps the first volume and counts them all (Volumes). Values
// are scaled by scl_slope and scl_inter when the header asks for it, and NaN and ±Inf become 0
// (counted in NonFinite). The affine is the sform if it is set, else the qform, else the voxel
// sizes alone (NIfTI's "method 1"); Transform says which.
//
// Memory grows with what the input holds, never with what its header announces: a header that
// claims a huge image in a short file fails without allocating the image. A gzip stream is read
// to its end, to verify its checksum, so the time taken grows with the decompressed size, 4D
// volumes included; a caller reading untrusted files can bound it by decompressing them itself
// through an io.LimitReader, since ReadNIfTI takes uncompressed input as well.
func ReadNIfTI(r io.Reader) (*Volume, error) {
	return ReadNIfTIWith(r, ReadOptions{})
}

// ReadOptions are the limits of ReadNIfTIWith.
type ReadOptions struct {
	// MaxVoxels refuses an image whose first volume has more voxels, with an error that is
	// ErrTooManyVoxels; 0 (or more than 2³⁰) means 2³⁰. Data holds 8 bytes per voxel.
	MaxVoxels int
}

// ReadNIfTIWith is ReadNIfTI with limits, for files from untrusted sources.
func ReadNIfTIWith(r io.Reader, opt ReadOptions) (*Volume, error) {
	limit := int64(maxVoxels)
	if opt.MaxVoxels > 0 && int64(opt.MaxVoxels) < limit {
		limit = int64(opt.MaxVoxels)
	}
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if len(magic) == 0 {
		return nil, errors.New("nifti: file is empty")
	}
	if err != nil {
		return nil, fmt.Errorf("nifti: truncated header: %d of %d bytes", len(magic), headerSize)
	}
	var in io.Reader = br
	var gz *gzip.Reader
	if magic[0] == 0x1f && magic[1] == 0x8b {
		if gz, err = gzip.NewReader(br); err != nil {
			return nil, fmt.Errorf("nifti: gzip: %w", err)
		}
		in = gz
	}
	readErr := func(what string, err error) error {
		if gz != nil {
			return fmt.Errorf("nifti: gzip: reading %s: %w", what, err)
		}
		return fmt.Errorf("nifti: reading %s: %w", what, err)
	}

	// sizeof_hdr, the first 4 bytes, tells the version and so the header's size; until it is
	// known, a short file is reported short of the smaller header.
	raw, size := make([]byte, nifti2HeaderSize), headerSize
	n, err := io.ReadFull(in, raw[:4])
	if err == nil {
		if size, err = headerSizeOf(raw); err != nil {
			return nil, err
		}
		raw = raw[:size]
		var m int
		m, err = io.ReadFull(in, raw[4:])
		n += m
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("nifti: truncated header: %d of %d bytes", n, size)
	} else if err != nil {
		return nil, readErr("header", err)
	}
	h, err := decodeHeader(raw)
	if err != nil {
		return nil, err
	}
	dims, volumes, dt, err := checkHeader(h, limit)
	if err != nil {
		return nil, err
	}

	// Data starts at vox_offset; some writers leave it 0 in single files, meaning right after
	// the extension flag.
	offset := max(int64(h.voxOffset), int64(h.size)+4)
	if skipped, err := io.CopyN(io.Discard, in, offset-int64(h.size)); err != nil {
		return nil, fmt.Errorf("nifti: truncated before the data at byte %d (file ends at %d)", offset, int64(h.size)+skipped)
	}

	nvox := dims[0] * dims[1] * dims[2]
	want := int64(nvox) * int64(dt.size)
	// ReadAll grows with what is actually there, so a header announcing a huge image in a short
	// file costs no more memory than the file. Only the first volume is read.
	buf, err := io.ReadAll(io.LimitReader(in, want))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, readErr("data", err)
	}
	if int64(len(buf)) < want {
		return nil, fmt.Errorf("nifti: truncated data: %d×%d×%d %s needs %d bytes, file has %d",
			dims[0], dims[1], dims[2], dt.name, want, len(buf))
	}
	if gz != nil {
		// Reading to the end makes gzip verify its checksum, which catches corrupt files whose
		// damage does not show in the values.
		if _, err := io.Copy(io.Discard, gz); errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("nifti: gzip: truncated stream")
		} else if err != nil {
			return nil, fmt.Errorf("nifti: gzip: %w", err)
		}
	}

	affine, transform := affineOf(h)
	v := &Volume{Dims: dims, Data: make([]float64, nvox), Affine: affine, Transform: transform, Volumes: volumes}
	decode := decoder(h.datatype, h.order)
	slope, inter := h.slope, h.inter
	scale := slope != 0 && !math.IsNaN(slope) && !math.IsInf(slope, 0) && !(slope == 1 && inter == 0)
	if math.IsNaN(inter) || math.IsInf(inter, 0) {
		inter = 0
	}
	// The file has i fastest; Data has k fastest.
	nx, ny, nz := dims[0], dims[1], dims[2]
	src := 0
	for k := 0; k < nz; k++ {
		for j := 0; j < ny; j++ {
			for i := 0; i < nx; i++ {
				x := decode(buf[src:])
				if scale {
					x = x*slope + inter
				}
				if math.IsNaN(x) || math.IsInf(x, 0) {
					x = 0
					v.NonFinite++
				}
				v.Data[(i*ny+j)*nz+k] = x
				src += dt.size
			}
		}
	}
	return v, nil
}

// headerSizeOf recognises the version and byte order by sizeof_hdr: 348 for NIfTI-1, 540 for
// NIfTI-2.
func headerSizeOf(raw []byte) (int, error) {
	le, be := int32(binary.LittleEndian.Uint32(raw)), int32(binary.BigEndian.Uint32(raw))
	switch {
	case le == headerSize || be == headerSize:
		return headerSize, nil
	case le == nifti2HeaderSize || be == nifti2HeaderSize:
		return nifti2HeaderSize, nil
	}
	return 0, fmt.Errorf("nifti: not a NIfTI file (sizeof_hdr is %d, want 348 or 540)", le)
}

// imageHeader is what the reader uses of either header version, in NIfTI-2's wider types.
type imageHeader struct {
	size                 int // of the header: 348 or 540
	order                binary.ByteOrder
	datatype             int16
	dim                  [8]int64
	pixdim               [8]float64
	voxOffset            float64
	slope, inter         float64
	qformCode, sformCode int32
	quatern              [3]float64 // b, c, d
	qoffset              [3]float64
	srow                 [3][4]float64
}

// decodeHeader decodes a NIfTI-1 or NIfTI-2 header whose size headerSizeOf accepted, and checks
// its magic.
func decodeHeader(raw []byte) (*imageHeader, error) {
	var order binary.ByteOrder = binary.LittleEndian
	if int32(binary.LittleEndian.Uint32(raw)) != int32(len(raw)) {
		order = binary.BigEndian
	}
	if len(raw) == nifti2HeaderSize {
		return decodeHeader2(raw, order)
	}
	h := new(header)
	if err := binary.Read(bytes.NewReader(raw), order, h); err != nil {
		return nil, fmt.Errorf("nifti: header: %w", err)
	}
	switch h.Magic {
	case magicSingle:
	case magicPair:
		return nil, errors.New("nifti: header/image pairs (.hdr + .img, magic \"ni1\") are not supported, only single .nii files")
	default:
		return nil, fmt.Errorf("nifti: bad magic %q, want \"n+1\"", bytes.TrimRight(h.Magic[:], "\x00"))
	}
	w := &imageHeader{
		size: headerSize, order: order, datatype: h.Datatype,
		voxOffset: float64(h.VoxOffset), slope: float64(h.SclSlope), inter: float64(h.SclInter),
		qformCode: int32(h.QformCode), sformCode: int32(h.SformCode),
		quatern: [3]float64{float64(h.QuaternB), float64(h.QuaternC), float64(h.QuaternD)},
		qoffset: [3]float64{float64(h.QoffsetX), float64(h.QoffsetY), float64(h.QoffsetZ)},
	}
	for d := range 8 {
		w.dim[d], w.pixdim[d] = int64(h.Dim[d]), float64(h.Pixdim[d])
	}
	for c := range 4 {
		w.srow[0][c], w.srow[1][c], w.srow[2][c] = float64(h.SrowX[c]), float64(h.SrowY[c]), float64(h.SrowZ[c])
	}
	return w, nil
}

func decodeHeader2(raw []byte, order binary.ByteOrder) (*imageHeader, error) {
	h := new(header2)
	if err := binary.Read(bytes.NewReader(raw), order, h); err != nil {
		return nil, fmt.Errorf("nifti: header: %w", err)
	}
	switch [4]byte(h.Magic[:4]) {
	case [4]byte(magic2Single[:4]):
	case magic2Pair:
		return nil, errors.New("nifti: header/image pairs (.hdr + .img, magic \"ni2\") are not supported, only single .nii files")
	default:
		return nil, fmt.Errorf("nifti: bad magic %q, want \"n+2\"", bytes.TrimRight(h.Magic[:4], "\x00"))
	}
	// The last 4 bytes of the magic are PNG's line-ending check. nibabel accepts them all 0, as
	// an early writer left them; anything else means the file was damaged in transfer.
	if eol := h.Magic[4:]; !bytes.Equal(eol, magic2Single[4:]) && !bytes.Equal(eol, make([]byte, 4)) {
		return nil, fmt.Errorf("nifti: NIfTI-2 magic ends in %q, want \"\\r\\n\\x1a\\n\": the file was changed in transfer, probably as text (line endings converted)", eol)
	}
	return &imageHeader{
		size: nifti2HeaderSize, order: order, datatype: h.Datatype, dim: h.Dim, pixdim: h.Pixdim,
		voxOffset: float64(h.VoxOffset), slope: h.SclSlope, inter: h.SclInter,
		qformCode: h.QformCode, sformCode: h.SformCode,
		quatern: [3]float64{h.QuaternB, h.QuaternC, h.QuaternD},
		qoffset: [3]float64{h.QoffsetX, h.QoffsetY, h.QoffsetZ},
		srow:    [3][4]float64{h.SrowX, h.SrowY, h.SrowZ},
	}, nil
}

// checkHeader returns the dimensions of one volume, the number of volumes and the datatype, or
// why the image cannot be read as a brain map. limit, at most maxVoxels, bounds a volume's voxels.
func checkHeader(h *imageHeader, limit int64) ([3]int, int, datatype, error) {
	var dims [3]int
	fail := func(format string, a ...any) ([3]int, int, datatype, error) {
		return dims, 0, datatype{}, fmt.Errorf(format, a...)
	}
	failKind := func(kind error, format string, a ...any) ([3]int, int, datatype, error) {
		return dims, 0, datatype{}, &kindError{fmt.Sprintf(format, a...), kind}
	}
	dt, known := datatypes[h.datatype]
	switch {
	case !known:
		return fail("nifti: datatype %d is not a NIfTI datatype", h.datatype)
	case dt.size == 0:
		return fail("nifti: datatype %d (%s) is not supported: %s", h.datatype, dt.name, dt.why)
	}
	nd := h.dim[0]
	switch {
	case nd == 1 || nd == 2:
		return failKind(ErrNotVolume, "nifti: a %dD image: dim[0] is %d; a brain map is a 3D volume", nd, nd)
	case nd < 1 || nd > 7:
		return fail("nifti: dim[0] is %d, want 3 to 7 (the number of dimensions)", nd)
	}
	total, flat := int64(1), 0
	for a := 0; a < 3; a++ {
		n := h.dim[a+1]
		if n < 1 {
			return fail("nifti: dim[%d] is %d, want ≥ 1", a+1, n)
		}
		// Both factors are at most 2³⁰, so the product cannot overflow.
		if n > limit || total*n > limit {
			return failKind(ErrTooManyVoxels, "nifti: the image has %d×%d×%d voxels, more than the %d allowed",
				h.dim[1], h.dim[2], h.dim[3], limit)
		}
		dims[a] = int(n)
		total *= n
		if n == 1 {
			flat++
		}
	}
	switch {
	case flat == 3:
		return failKind(ErrNotVolume, "nifti: a single voxel (1×1×1); a brain map is a 3D volume")
	case flat > 0:
		return failKind(ErrNotVolume, "nifti: a %dD image: %d×%d×%d voxels; a brain map is a 3D volume", 3-flat, dims[0], dims[1], dims[2])
	}
	// Writers leave dimensions beyond the image's 0 or 1, and some put 0 in unused ones within
	// dim[0]: both count as 1.
	volumes := int64(1)
	for d := 4; d <= int(nd); d++ {
		if n := h.dim[d]; n > 1 {
			if volumes > math.MaxInt/n {
				volumes = math.MaxInt
				break
			}
			volumes *= n
		}
	}
	if !(h.voxOffset >= 0 && h.voxOffset < 1<<31) {
		return fail("nifti: vox_offset %g is not a valid offset", h.voxOffset)
	}
	return dims, int(volumes), dt, nil
}

// decoder returns the conversion of one stored voxel to float64.
func decoder(code int16, o binary.ByteOrder) func([]byte) float64 {
	switch code {
	case 2:
		return func(b []byte) float64 { return float64(b[0]) }
	case 256:
		return func(b []byte) float64 { return float64(int8(b[0])) }
	case 4:
		return func(b []byte) float64 { return float64(int16(o.Uint16(b))) }
	case 512:
		return func(b []byte) float64 { return float64(o.Uint16(b)) }
	case 8:
		return func(b []byte) float64 { return float64(int32(o.Uint32(b))) }
	case 768:
		return func(b []byte) float64 { return float64(o.Uint32(b)) }
	case 1024:
		return func(b []byte) float64 { return float64(int64(o.Uint64(b))) }
	case 1280:
		return func(b []byte) float64 { return float64(o.Uint64(b)) }
	case 16:
		return func(b []byte) float64 { return float64(math.Float32frombits(o.Uint32(b))) }
	case 64:
		return func(b []byte) float64 { return math.Float64frombits(o.Uint64(b)) }
	}
	panic(fmt.Sprintf("brain: no decoder for checked datatype %d", code))
}

// affineOf picks the header's best voxel → world transform, in NIfTI's order of preference, and
// says which it took.
func affineOf(h *imageHeader) ([4][4]float64, string) {
	if h.sformCode > 0 {
		var a [4][4]float64
		copy(a[:3], h.srow[:])
		a[3][3] = 1
		return a, TransformSform
	}
	size := [3]float64(h.pixdim[1:4])
	if h.qformCode > 0 {
		return quaternToAffine(h.quatern[0], h.quatern[1], h.quatern[2], h.qoffset, size, h.pixdim[0]), TransformQform
	}
	// Method 1 of the standard, for old ANALYZE-like files: scaling only, no origin.
	pos := func(d float64) float64 {
		if d > 0 {
			return d
		}
		return 1
	}
	return [4][4]float64{{pos(size[0]), 0, 0, 0}, {0, pos(size[1]), 0, 0}, {0, 0, pos(size[2]), 0}, {0, 0, 0, 1}}, TransformNone
}

// quaternToAffine follows nifti1_io.c's quatern_to_mat44, including its handling of
// non-positive voxel sizes and of a quaternion whose implied a would be imaginary.
func quaternToAffine(b, c, d float64, offset, size [3]float64, qfac float64) [4][4]float64 {
	a := 1 - (b*b + c*c + d*d)
	if a < 1e-7 {
		norm := 1 / math.Sqrt(b*b+c*c+d*d)
		b, c, d, a = b*norm, c*norm, d*norm, 0
	} else {
		a = math.Sqrt(a)
	}
	for i := range size {
		if !(size[i] > 0) {
			size[i] = 1
		}
	}
	if qfac < 0 {
		size[2] = -size[2]
	}
	xd, yd, zd := size[0], size[1], size[2]
	return [4][4]float64{
		{(a*a + b*b - c*c - d*d) * xd, 2 * (b*c - a*d) * yd, 2 * (b*d + a*c) * zd, offset[0]},
		{2 * (b*c + a*d) * xd, (a*a + c*c - b*b - d*d) * yd, 2 * (c*d - a*b) * zd, offset[1]},
		{2 * (b*d - a*c) * xd, 2 * (c*d + a*b) * yd, (a*a + d*d - c*c - b*b) * zd, offset[2]},
		{0, 0, 0, 1},
	}
}

// ReadMaskFile reads a brain mask file; see ReadMask.
func ReadMaskFile(path string) (*Mask, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("brain: %w", err)
	}
	defer f.Close()
	m, err := ReadMask(f)
	if err != nil {
		return nil, fmt.Errorf("brain: mask %s: %w", path, err)
	}
	return m, nil
}

// ReadMask reads a brain mask and checks that it is on the prediction grid, since a mask on any
// other grid would silently misplace every voxel of every map.
func ReadMask(r io.Reader) (*Mask, error) {
	v, err := ReadNIfTI(r)
	if err != nil {
		return nil, err
	}
	if v.Dims != Dims {
		return nil, fmt.Errorf("mask is %d×%d×%d, want %d×%d×%d",
			v.Dims[0], v.Dims[1], v.Dims[2], NX, NY, NZ)
	}
	for r := 0; r < 4; r++ {
		for c := 0; c < 4; c++ {
			if !(math.Abs(v.Affine[r][c]-Affine[r][c]) <= 1e-3) {
				return nil, fmt.Errorf("mask has affine %v, want %v (4 mm MNI grid)", v.Affine, Affine)
			}
		}
	}
	in := make([]bool, NVoxels)
	for idx, x := range v.Data {
		in[idx] = x != 0 && !math.IsNaN(x)
	}
	return NewMask(in)
}

// WriteMap writes a mask-order map as a gzip-compressed single-file NIfTI-1 (.nii.gz) on the
// prediction grid: float32, sform and qform both the grid's MNI152 affine, zeros outside the
// mask. The output depends only on the arguments, byte for byte, so that it can be cached and
// compared by content.
func WriteMap(w io.Writer, m *Mask, values []float32, description string) error {
	if m == nil {
		return errors.New("brain: WriteMap: nil mask")
	}
	if len(values) != m.Len() {
		return fmt.Errorf("brain: WriteMap: %d values for a mask of %d voxels", len(values), m.Len())
	}

	vol := make([]float32, NVoxels)
	for p, idx := range m.Voxels {
		vol[idx] = values[p]
	}
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, x := range vol {
		if x == x { // NaN would poison the range viewers use as their default window.
			lo, hi = min(lo, x), max(hi, x)
		}
	}
	if lo > hi {
		lo, hi = 0, 0
	}

	h := mapHeader(lo, hi, description)
	buf := make([]byte, dataOffset+4*NVoxels)
	if _, err := binary.Encode(buf, binary.LittleEndian, h); err != nil {
		return fmt.Errorf("brain: WriteMap: header: %w", err)
	}
	// Bytes 348–351 stay zero: no extension. Then the transpose from mask order (k fastest)
	// to NIfTI order (i fastest).
	dst := buf[dataOffset:]
	for k := 0; k < NZ; k++ {
		for j := 0; j < NY; j++ {
			for i := 0; i < NX; i++ {
				binary.LittleEndian.PutUint32(dst, math.Float32bits(vol[Index(i, j, k)]))
				dst = dst[4:]
			}
		}
	}

	// A zero gzip.Header has no name and no modification time, which keeps the output
	// byte-identical across runs. The fastest level: a map is written on the way to every new
	// result, and the default level took 1.4 times as long (BenchmarkWriteMap: 4.1 against 2.8 ms).
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("brain: WriteMap: %w", err)
	}
	if _, err := zw.Write(buf); err != nil {
		return fmt.Errorf("brain: WriteMap: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("brain: WriteMap: %w", err)
	}
	return nil
}

func mapHeader(calMin, calMax float32, description string) *header {
	h := &header{
		SizeofHdr: headerSize,
		Regular:   'r',
		Dim:       [8]int16{3, NX, NY, NZ, 1, 1, 1, 1},
		// The values are z-scores (NIFTI_INTENT_ZSCORE), which viewers may use to pick a colour map.
		IntentCode: intentZScore,
		Datatype:   dtFloat32,
		Bitpix:     32,
		// pixdim[0] is qfac: +1, a right-handed voxel grid.
		Pixdim:    [8]float32{1, VoxelSize, VoxelSize, VoxelSize, 1, 1, 1, 1},
		VoxOffset: dataOffset,
		SclSlope:  1,
		XYZTUnits: unitsMM,
		CalMax:    calMax,
		CalMin:    calMin,
		QformCode: xformMNI152,
		SformCode: xformMNI152,
		// The grid is axis-aligned, so the qform's rotation is the identity (b = c = d = 0).
		QoffsetX: float32(Origin[0]),
		QoffsetY: float32(Origin[1]),
		QoffsetZ: float32(Origin[2]),
		Magic:    magicSingle,
	}
	for c := 0; c < 4; c++ {
		h.SrowX[c], h.SrowY[c], h.SrowZ[c] = float32(Affine[0][c]), float32(Affine[1][c]), float32(Affine[2][c])
	}
	copy(h.Descrip[:], truncateUTF8(description, len(h.Descrip)-1))
	return h
}

// truncateUTF8 cuts s to at most n bytes without splitting a character, so that viewers that
// decode descrip as UTF-8 do not show a broken last character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
