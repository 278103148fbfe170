package brain

// NIfTI-1 input and output, written here because no maintained Go NIfTI library is available on
// the module proxy this project builds from. The format is small: a fixed 348-byte header, an
// optional extension block, then the raw voxels with i varying fastest. Only what this project
// needs is supported: single-file (.nii / .nii.gz) 3D scalar images.
//
// Reference: https://nifti.nimh.nih.gov/pub/dist/src/niftilib/nifti1.h

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

const (
	headerSize = 348
	// dataOffset is where voxels start in a single-file NIfTI-1 with no extension: the header
	// plus the 4-byte extension flag.
	dataOffset = 352

	nifti2HeaderSize = 540

	xformMNI152 = 4 // NIFTI_XFORM_MNI_152
	unitsMM     = 2 // NIFTI_UNITS_MM
	dtUint8     = 2
	// intentZScore is NIFTI_INTENT_ZSCORE.
	intentZScore = 5
	dtFloat32    = 16
)

var (
	magicSingle = [4]byte{'n', '+', '1', 0}
	magicPair   = [4]byte{'n', 'i', '1', 0}
)

type datatype struct {
	name string
	size int
}

// datatypes maps NIfTI datatype codes to their name and size in bytes; size 0 marks a code that
// is recognised (for the error message) but not supported.
var datatypes = map[int16]datatype{
	1:    {"BINARY", 0},
	2:    {"UINT8", 1},
	4:    {"INT16", 2},
	8:    {"INT32", 4},
	16:   {"FLOAT32", 4},
	32:   {"COMPLEX64", 0},
	64:   {"FLOAT64", 8},
	128:  {"RGB24", 0},
	256:  {"INT8", 1},
	512:  {"UINT16", 2},
	768:  {"UINT32", 4},
	1024: {"INT64", 8},
	1280: {"UINT64", 8},
	1536: {"FLOAT128", 0},
	1792: {"COMPLEX128", 0},
	2048: {"COMPLEX256", 0},
	2304: {"RGBA32", 0},
}

// maxVoxels bounds the volume a header may announce, so that a corrupt header cannot make the
// reader's index arithmetic overflow. 2³⁰ voxels is far beyond any brain image.
const maxVoxels = 1 << 30

// Volume is a 3D image with its voxel → world (MNI mm) affine.
type Volume struct {
	Dims [3]int
	// Data is in C order: voxel (i, j, k) is at (i*Dims[1]+j)*Dims[2]+k, like mask order.
	Data []float64
	// Affine maps voxel indices (i, j, k, 1) to world millimetres; row-major.
	Affine [4][4]float64
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
	c := s.voxel(p)
	d := s.v.Dims
	for a := 0; a < 3; a++ {
		// The volume covers each voxel's full extent, half a voxel either side of its centre.
		if !(c[a] >= -0.5 && c[a] <= float64(d[a])-0.5) {
			return 0
		}
	}
	if interp == Nearest {
		i := min(int(math.Floor(c[0]+0.5)), d[0]-1)
		j := min(int(math.Floor(c[1]+0.5)), d[1]-1)
		k := min(int(math.Floor(c[2]+0.5)), d[2]-1)
		return s.v.Data[(i*d[1]+j)*d[2]+k]
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
	at := func(i, j, k int) float64 { return s.v.Data[(i*d[1]+j)*d[2]+k] }
	c00 := at(lo[0], lo[1], lo[2])*(1-w[2]) + at(lo[0], lo[1], hi[2])*w[2]
	c01 := at(lo[0], hi[1], lo[2])*(1-w[2]) + at(lo[0], hi[1], hi[2])*w[2]
	c10 := at(hi[0], lo[1], lo[2])*(1-w[2]) + at(hi[0], lo[1], hi[2])*w[2]
	c11 := at(hi[0], hi[1], lo[2])*(1-w[2]) + at(hi[0], hi[1], hi[2])*w[2]
	c0 := c00*(1-w[1]) + c01*w[1]
	c1 := c10*(1-w[1]) + c11*w[1]
	return c0*(1-w[0]) + c1*w[0]
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

// ReadNIfTI reads a single-file NIfTI-1 image, gzip-compressed or not, of either byte order.
// Values are scaled by scl_slope and scl_inter when the header asks for it. The affine is the
// sform if it is set, else the qform, else the voxel sizes alone (NIfTI's "method 1").
func ReadNIfTI(r io.Reader) (*Volume, error) {
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

	raw := make([]byte, headerSize)
	if n, err := io.ReadFull(in, raw); err != nil {
		return nil, fmt.Errorf("nifti: truncated header: %d of %d bytes", n, headerSize)
	}
	h, order, err := decodeHeader(raw)
	if err != nil {
		return nil, err
	}
	dims, dt, err := checkHeader(h)
	if err != nil {
		return nil, err
	}

	// Data starts at vox_offset; some writers leave it 0 in single files, meaning right after
	// the extension flag.
	offset := int64(h.VoxOffset)
	if offset < dataOffset {
		offset = dataOffset
	}
	if skipped, err := io.CopyN(io.Discard, in, offset-headerSize); err != nil {
		return nil, fmt.Errorf("nifti: truncated before the data at byte %d (file ends at %d)", offset, headerSize+skipped)
	}

	n := dims[0] * dims[1] * dims[2]
	want := int64(n) * int64(dt.size)
	// ReadAll grows with what is actually there, so a header announcing a huge image in a short
	// file costs no more memory than the file.
	buf, err := io.ReadAll(io.LimitReader(in, want))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("nifti: reading data: %w", err)
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

	v := &Volume{Dims: dims, Data: make([]float64, n), Affine: affineOf(h)}
	decode := decoder(h.Datatype, order)
	slope, inter := float64(h.SclSlope), float64(h.SclInter)
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
				v.Data[(i*ny+j)*nz+k] = x
				src += dt.size
			}
		}
	}
	return v, nil
}

// decodeHeader recognises the byte order by sizeof_hdr, which must be 348.
func decodeHeader(raw []byte) (*header, binary.ByteOrder, error) {
	var order binary.ByteOrder
	le, be := int32(binary.LittleEndian.Uint32(raw)), int32(binary.BigEndian.Uint32(raw))
	switch {
	case le == headerSize:
		order = binary.LittleEndian
	case be == headerSize:
		order = binary.BigEndian
	case le == nifti2HeaderSize || be == nifti2HeaderSize:
		return nil, nil, errors.New("nifti: NIfTI-2 files are not supported, only NIfTI-1")
	default:
		return nil, nil, fmt.Errorf("nifti: not a NIfTI-1 file (sizeof_hdr is %d, want 348)", le)
	}
	h := new(header)
	if err := binary.Read(bytes.NewReader(raw), order, h); err != nil {
		return nil, nil, fmt.Errorf("nifti: header: %w", err)
	}
	return h, order, nil
}

func checkHeader(h *header) ([3]int, datatype, error) {
	var dims [3]int
	switch h.Magic {
	case magicSingle:
	case magicPair:
		return dims, datatype{}, errors.New("nifti: header/image pairs (.hdr + .img, magic \"ni1\") are not supported, only single .nii files")
	default:
		return dims, datatype{}, fmt.Errorf("nifti: bad magic %q, want \"n+1\"", bytes.TrimRight(h.Magic[:], "\x00"))
	}
	dt, known := datatypes[h.Datatype]
	switch {
	case !known:
		return dims, datatype{}, fmt.Errorf("nifti: datatype %d is not a NIfTI-1 datatype", h.Datatype)
	case dt.size == 0:
		return dims, datatype{}, fmt.Errorf("nifti: datatype %d (%s) is not supported", h.Datatype, dt.name)
	}
	nd := int(h.Dim[0])
	if nd < 3 || nd > 7 {
		return dims, datatype{}, fmt.Errorf("nifti: %d dimensions (dim[0]), want a 3D image", nd)
	}
	for d := 4; d <= nd; d++ {
		if h.Dim[d] > 1 {
			return dims, datatype{}, fmt.Errorf("nifti: dim[%d] is %d: a 4D or higher image; only 3D images are supported", d, h.Dim[d])
		}
	}
	total := 1
	for a := 0; a < 3; a++ {
		if h.Dim[a+1] < 1 {
			return dims, datatype{}, fmt.Errorf("nifti: dim[%d] is %d, want ≥ 1", a+1, h.Dim[a+1])
		}
		dims[a] = int(h.Dim[a+1])
		total *= dims[a]
	}
	if total > maxVoxels {
		return dims, datatype{}, fmt.Errorf("nifti: %d×%d×%d voxels is too large", dims[0], dims[1], dims[2])
	}
	if !(h.VoxOffset >= 0 && h.VoxOffset < 1<<31) {
		return dims, datatype{}, fmt.Errorf("nifti: vox_offset %g is not a valid offset", h.VoxOffset)
	}
	return dims, dt, nil
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

// affineOf picks the header's best voxel → world transform, in NIfTI's order of preference.
func affineOf(h *header) [4][4]float64 {
	if h.SformCode > 0 {
		var a [4][4]float64
		for c := 0; c < 4; c++ {
			a[0][c], a[1][c], a[2][c] = float64(h.SrowX[c]), float64(h.SrowY[c]), float64(h.SrowZ[c])
		}
		a[3][3] = 1
		return a
	}
	dx, dy, dz := float64(h.Pixdim[1]), float64(h.Pixdim[2]), float64(h.Pixdim[3])
	if h.QformCode > 0 {
		return quaternToAffine(float64(h.QuaternB), float64(h.QuaternC), float64(h.QuaternD),
			[3]float64{float64(h.QoffsetX), float64(h.QoffsetY), float64(h.QoffsetZ)},
			[3]float64{dx, dy, dz}, float64(h.Pixdim[0]))
	}
	// Method 1 of the standard, for old ANALYZE-like files: scaling only, no origin.
	pos := func(d float64) float64 {
		if d > 0 {
			return d
		}
		return 1
	}
	return [4][4]float64{{pos(dx), 0, 0, 0}, {0, pos(dy), 0, 0}, {0, 0, pos(dz), 0}, {0, 0, 0, 1}}
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
	// byte-identical across runs.
	zw := gzip.NewWriter(w)
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
