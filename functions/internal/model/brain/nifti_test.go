package brain

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	sharedMask     = "/work/shared/data/neuroquery_model/mask_img.nii.gz"
	sharedTemplate = "/work/shared/data/templates/mni152_t1_1mm.nii.gz"
)

// The shared files are read once for all tests and benchmarks: the template alone is 70 MB of
// float64.
var (
	loadMask     = sync.OnceValues(func() (*Mask, error) { return ReadMaskFile(sharedMask) })
	loadTemplate = sync.OnceValues(func() (*Volume, error) { return ReadNIfTIFile(sharedTemplate) })
)

func mustMask(tb testing.TB) *Mask {
	tb.Helper()
	m, err := loadMask()
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustTemplate(tb testing.TB) *Volume {
	tb.Helper()
	v, err := loadTemplate()
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// testImage describes a small NIfTI file for the reader's tests.
type testImage struct {
	dims     [3]int
	datatype int16
	big      bool
	gz       bool
	values   []float64 // C order, stored as datatype
	// nifti2 writes a NIfTI-2 header; edit2 edits it (edit edits a NIfTI-1 header).
	nifti2 bool
	// volumes > 1 writes a 4D image: values, then volumes − 1 volumes of 99s.
	volumes int
	edit    func(h *header)
	edit2   func(h *header2)
}

func (ti testImage) encode(tb testing.TB) []byte {
	tb.Helper()
	var order binary.ByteOrder = binary.LittleEndian
	if ti.big {
		order = binary.BigEndian
	}
	dt := datatypes[ti.datatype]
	nd, nt := 3, max(ti.volumes, 1)
	if ti.volumes > 1 {
		nd = 4
	}
	var buf bytes.Buffer
	var pad int // the extension flag, where offsets below the minimum put the data, or more
	if ti.nifti2 {
		h := &header2{
			SizeofHdr: nifti2HeaderSize,
			Magic:     magic2Single,
			Datatype:  ti.datatype,
			Bitpix:    int16(8 * dt.size),
			Dim:       [8]int64{int64(nd), int64(ti.dims[0]), int64(ti.dims[1]), int64(ti.dims[2]), int64(nt), 1, 1, 1},
			Pixdim:    [8]float64{1, 2, 2, 2},
			VoxOffset: dataOffset2,
			SformCode: 1,
			SrowX:     [4]float64{2, 0, 0, -10},
			SrowY:     [4]float64{0, 2, 0, -20},
			SrowZ:     [4]float64{0, 0, 2, -30},
		}
		if ti.edit2 != nil {
			ti.edit2(h)
		}
		if err := binary.Write(&buf, order, h); err != nil {
			tb.Fatal(err)
		}
		// An offset too large to be valid gets no padding: the reader refuses the header.
		pad = max(int(min(h.VoxOffset, 1<<20)), dataOffset2) - nifti2HeaderSize
	} else {
		h := &header{
			SizeofHdr: headerSize,
			Dim:       [8]int16{int16(nd), int16(ti.dims[0]), int16(ti.dims[1]), int16(ti.dims[2]), int16(nt), 1, 1, 1},
			Datatype:  ti.datatype,
			Bitpix:    int16(8 * dt.size),
			Pixdim:    [8]float32{1, 2, 2, 2},
			VoxOffset: dataOffset,
			SformCode: 1,
			SrowX:     [4]float32{2, 0, 0, -10},
			SrowY:     [4]float32{0, 2, 0, -20},
			SrowZ:     [4]float32{0, 0, 2, -30},
			Magic:     magicSingle,
		}
		if ti.edit != nil {
			ti.edit(h)
		}
		if err := binary.Write(&buf, order, h); err != nil {
			tb.Fatal(err)
		}
		pad = 4
		if h.VoxOffset >= dataOffset {
			pad = int(h.VoxOffset) - headerSize
		}
	}
	buf.Write(make([]byte, pad))
	nx, ny, nz := ti.dims[0], ti.dims[1], ti.dims[2]
	b := make([]byte, 8)
	for t := range nt {
		for k := 0; k < nz; k++ {
			for j := 0; j < ny; j++ {
				for i := 0; i < nx; i++ {
					x := 99.0
					if t == 0 {
						x = ti.values[(i*ny+j)*nz+k]
					}
					switch ti.datatype {
					case 2:
						b[0] = uint8(x)
					case 256:
						b[0] = uint8(int8(x))
					case 4:
						order.PutUint16(b, uint16(int16(x)))
					case 512:
						order.PutUint16(b, uint16(x))
					case 8:
						order.PutUint32(b, uint32(int32(x)))
					case 768:
						order.PutUint32(b, uint32(x))
					case 1024:
						order.PutUint64(b, uint64(int64(x)))
					case 1280:
						order.PutUint64(b, uint64(x))
					case 16:
						order.PutUint32(b, math.Float32bits(float32(x)))
					case 64:
						order.PutUint64(b, math.Float64bits(x))
					default:
						tb.Fatalf("no test encoder for datatype %d", ti.datatype)
					}
					buf.Write(b[:dt.size])
				}
			}
		}
	}
	if !ti.gz {
		return buf.Bytes()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(buf.Bytes())
	zw.Close()
	return z.Bytes()
}

// smallValues fills a 3×4×5 volume with distinct values that every datatype can hold, so that a
// transposed or misread voxel shows.
func smallValues(signed bool) []float64 {
	v := make([]float64, 3*4*5)
	for n := range v {
		v[n] = float64(n * 2)
		if signed && n%3 == 1 {
			v[n] = -v[n]
		}
	}
	return v
}

func TestReadNIfTIDatatypes(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name     string
		datatype int16
		signed   bool
	}{
		{"uint8", 2, false},
		{"int16", 4, true},
		{"int32", 8, true},
		{"float32", 16, true},
		{"float64", 64, true},
		{"int8", 256, true},
		{"uint16", 512, false},
		{"uint32", 768, false},
		{"int64", 1024, true},
		{"uint64", 1280, false},
	}
	for _, tc := range testCases {
		for _, nifti2 := range []bool{false, true} {
			for _, big := range []bool{false, true} {
				for _, gz := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/nifti2=%v/big=%v/gz=%v", tc.name, nifti2, big, gz), func(t *testing.T) {
						t.Parallel()
						ti := testImage{dims: [3]int{3, 4, 5}, datatype: tc.datatype, nifti2: nifti2, big: big, gz: gz, values: smallValues(tc.signed)}
						v, err := ReadNIfTI(bytes.NewReader(ti.encode(t)))
						if err != nil {
							t.Fatal(err)
						}
						if v.Dims != ti.dims {
							t.Errorf("Dims = %v, want %v", v.Dims, ti.dims)
						}
						if diff := cmp.Diff(ti.values, v.Data); diff != "" {
							t.Errorf("Data (-want +got):\n%s", diff)
						}
						if got, want := v.At(2, 3, 4), ti.values[len(ti.values)-1]; got != want {
							t.Errorf("At(2, 3, 4) = %v, want %v", got, want)
						}
						wantAffine := [4][4]float64{{2, 0, 0, -10}, {0, 2, 0, -20}, {0, 0, 2, -30}, {0, 0, 0, 1}}
						if v.Affine != wantAffine {
							t.Errorf("Affine = %v, want %v", v.Affine, wantAffine)
						}
						if v.Transform != TransformSform || v.Volumes != 1 || v.NonFinite != 0 {
							t.Errorf("Transform, Volumes, NonFinite = %q, %d, %d; want sform, 1, 0", v.Transform, v.Volumes, v.NonFinite)
						}
					})
				}
			}
		}
	}
}

// TestReadNIfTIWith checks the limit and the error kinds a caller tells apart.
func TestReadNIfTIWith(t *testing.T) {
	t.Parallel()
	file := func(edit func(h *header)) []byte {
		return testImage{dims: [3]int{3, 4, 5}, datatype: 16, values: smallValues(true), volumes: 2, edit: edit}.encode(t)
	}
	testCases := []struct {
		name     string
		input    []byte
		opt      ReadOptions
		wantKind error
		want     string
	}{
		{"at the limit", file(nil), ReadOptions{MaxVoxels: 60}, nil, ""},
		{"no limit", file(nil), ReadOptions{}, nil, ""},
		{"limit above the reader's own", file(nil), ReadOptions{MaxVoxels: math.MaxInt}, nil, ""},
		// The limit is on what is held, one volume, not on the file's volumes.
		{"over the limit", file(nil), ReadOptions{MaxVoxels: 59}, ErrTooManyVoxels, "nifti: the image has 3×4×5 voxels, more than the 59 allowed"},
		{"over the reader's own limit", file(func(h *header) { h.Dim[1], h.Dim[2], h.Dim[3] = 2048, 2048, 1024 }), ReadOptions{}, ErrTooManyVoxels, "2048×2048×1024 voxels, more than the 1073741824 allowed"},
		{"2D", file(func(h *header) { h.Dim[0] = 2 }), ReadOptions{}, ErrNotVolume, "a 2D image"},
		{"one slice", file(func(h *header) { h.Dim[3] = 1 }), ReadOptions{}, ErrNotVolume, "a 2D image: 3×4×1 voxels"},
		{"not NIfTI", []byte(strings.Repeat("not a brain ", 50)), ReadOptions{}, nil, "not a NIfTI file"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := ReadNIfTIWith(bytes.NewReader(tc.input), tc.opt)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v.Dims != [3]int{3, 4, 5} || v.Volumes != 2 {
					t.Errorf("Dims, Volumes = %v, %d", v.Dims, v.Volumes)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadNIfTIWith = %v, want an error", v.Dims)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			for _, kind := range []error{ErrTooManyVoxels, ErrNotVolume, ErrNoTransform} {
				if got, want := errors.Is(err, kind), kind == tc.wantKind; got != want {
					t.Errorf("errors.Is(%q, %q) = %v, want %v", err, kind, got, want)
				}
			}
		})
	}
}

func TestReadNIfTI4D(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name        string
		ti          testImage
		wantVolumes int
	}{
		{"NIfTI-1 4D", testImage{volumes: 3}, 3},
		{"NIfTI-1 4D gzip big-endian", testImage{volumes: 7, gz: true, big: true}, 7},
		{"NIfTI-2 4D", testImage{volumes: 2, nifti2: true}, 2},
		{"NIfTI-2 4D gzip", testImage{volumes: 4, nifti2: true, gz: true}, 4},
		{"4D with one volume", testImage{edit: func(h *header) { h.Dim[0] = 4 }}, 1},
		// Two volumes along the 5th dimension: dims 3×4×5×1×2, as NIfTI's vector intents store them.
		{"5D", testImage{volumes: 2, edit: func(h *header) { h.Dim[0], h.Dim[4], h.Dim[5] = 5, 1, 2 }}, 2},
		{"7D", testImage{volumes: 24, edit: func(h *header) { h.Dim[0], h.Dim[4], h.Dim[5], h.Dim[6], h.Dim[7] = 7, 2, 3, 1, 4 }}, 24},
		// Unused dimensions are often 0; they count as 1.
		{"zero unused dimensions", testImage{volumes: 2, edit: func(h *header) { h.Dim[0], h.Dim[5], h.Dim[6] = 6, 0, -1 }}, 2},
		{"dims beyond dim[0] ignored", testImage{edit: func(h *header) { h.Dim[4], h.Dim[5] = 10, 3 }}, 1},
		// A corrupt count is not read, only reported.
		{"NIfTI-2 huge count saturates", testImage{nifti2: true, edit2: func(h *header2) { h.Dim[0], h.Dim[4], h.Dim[5] = 5, 1<<40, 1<<40 }}, math.MaxInt},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ti := tc.ti
			ti.dims, ti.datatype, ti.values = [3]int{3, 4, 5}, 4, smallValues(true)
			v, err := ReadNIfTI(bytes.NewReader(ti.encode(t)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ti.values, v.Data); diff != "" {
				t.Errorf("Data is not the first volume (-want +got):\n%s", diff)
			}
			if v.Dims != ti.dims || v.Volumes != tc.wantVolumes {
				t.Errorf("Dims, Volumes = %v, %d; want %v, %d", v.Dims, v.Volumes, ti.dims, tc.wantVolumes)
			}
		})
	}
}

func TestReadNIfTINonFinite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		datatype int16
		nifti2   bool
		edit     func(h *header)
	}{
		{"float32", 16, false, nil},
		{"float64 NIfTI-2", 64, true, nil},
		{"float32 scaled", 16, false, func(h *header) { h.SclSlope, h.SclInter = 2, 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vals := smallValues(true)
			want := slices.Clone(vals)
			if tc.edit != nil {
				for n := range want {
					want[n] = 2*want[n] + 1
				}
			}
			for _, n := range []int{0, 7, 59} {
				vals[n], want[n] = math.NaN(), 0
			}
			vals[10], want[10] = math.Inf(1), 0
			vals[11], want[11] = math.Inf(-1), 0
			ti := testImage{dims: [3]int{3, 4, 5}, datatype: tc.datatype, nifti2: tc.nifti2, values: vals, edit: tc.edit}
			v, err := ReadNIfTI(bytes.NewReader(ti.encode(t)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, v.Data); diff != "" {
				t.Errorf("Data (-want +got):\n%s", diff)
			}
			if v.NonFinite != 5 {
				t.Errorf("NonFinite = %d, want 5", v.NonFinite)
			}
		})
	}
	// Finite values that scaling takes beyond float64 count too.
	ti := testImage{dims: [3]int{3, 4, 5}, datatype: 64, values: smallValues(false), nifti2: true,
		edit2: func(h *header2) { h.SclSlope = 1e300 }}
	ti.values[5] = 1e10
	v, err := ReadNIfTI(bytes.NewReader(ti.encode(t)))
	if err != nil {
		t.Fatal(err)
	}
	if v.NonFinite != 1 || v.Data[5] != 0 {
		t.Errorf("NonFinite = %d and Data[5] = %v, want 1 and 0", v.NonFinite, v.Data[5])
	}
}

func TestReadNIfTIScaling(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name         string
		slope, inter float32
		want         func(x float64) float64
	}{
		{"slope and intercept", 0.5, -3, func(x float64) float64 { return x*0.5 - 3 }},
		{"intercept only with slope 1", 1, 10, func(x float64) float64 { return x + 10 }},
		{"identity", 1, 0, func(x float64) float64 { return x }},
		{"slope 0 means unscaled", 0, 7, func(x float64) float64 { return x }},
		{"NaN slope means unscaled", float32(math.NaN()), 0, func(x float64) float64 { return x }},
		{"NaN intercept is 0", 2, float32(math.NaN()), func(x float64) float64 { return 2 * x }},
	}
	for _, tc := range testCases {
		for _, nifti2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/nifti2=%v", tc.name, nifti2), func(t *testing.T) {
				t.Parallel()
				ti := testImage{dims: [3]int{3, 4, 5}, datatype: 4, values: smallValues(true), nifti2: nifti2,
					edit:  func(h *header) { h.SclSlope, h.SclInter = tc.slope, tc.inter },
					edit2: func(h *header2) { h.SclSlope, h.SclInter = float64(tc.slope), float64(tc.inter) }}
				v, err := ReadNIfTI(bytes.NewReader(ti.encode(t)))
				if err != nil {
					t.Fatal(err)
				}
				want := make([]float64, len(ti.values))
				for n, x := range ti.values {
					want[n] = tc.want(x)
				}
				if diff := cmp.Diff(want, v.Data); diff != "" {
					t.Errorf("Data (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestReadNIfTIAffine(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name          string
		edit          func(h *header)
		want          [4][4]float64
		wantTransform string
	}{
		{
			name:          "sform wins over qform",
			edit:          func(h *header) { h.QformCode, h.QuaternD = 1, 1 },
			want:          [4][4]float64{{2, 0, 0, -10}, {0, 2, 0, -20}, {0, 0, 2, -30}, {0, 0, 0, 1}},
			wantTransform: TransformSform,
		},
		{
			name: "qform identity",
			edit: func(h *header) {
				h.SformCode, h.QformCode = 0, 4
				h.QoffsetX, h.QoffsetY, h.QoffsetZ = -90, -126, -72
			},
			want:          [4][4]float64{{2, 0, 0, -90}, {0, 2, 0, -126}, {0, 0, 2, -72}, {0, 0, 0, 1}},
			wantTransform: TransformQform,
		},
		{
			name:          "qform with qfac -1 flips k",
			edit:          func(h *header) { h.SformCode, h.QformCode, h.Pixdim[0] = 0, 1, -1 },
			want:          [4][4]float64{{2, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, -2, 0}, {0, 0, 0, 1}},
			wantTransform: TransformQform,
		},
		{
			// b = c = 0, d = 1: a half turn about z, the LPI → RAS flip of radiological files.
			name: "qform half turn about z",
			edit: func(h *header) {
				h.SformCode, h.QformCode, h.QuaternD = 0, 1, 1
				h.Pixdim[1], h.Pixdim[2], h.Pixdim[3] = 1, 2, 3
				h.QoffsetX = 90
			},
			want:          [4][4]float64{{-1, 0, 0, 90}, {0, -2, 0, 0}, {0, 0, 3, 0}, {0, 0, 0, 1}},
			wantTransform: TransformQform,
		},
		{
			// b = sin(45°): a quarter turn about x takes j to z and k to −y.
			name: "qform quarter turn about x",
			edit: func(h *header) {
				h.SformCode, h.QformCode, h.QuaternB = 0, 1, float32(math.Sqrt(0.5))
				h.Pixdim[1], h.Pixdim[2], h.Pixdim[3] = 1, 1, 1
			},
			want:          [4][4]float64{{1, 0, 0, 0}, {0, 0, -1, 0}, {0, 1, 0, 0}, {0, 0, 0, 1}},
			wantTransform: TransformQform,
		},
		{
			name:          "voxel sizes when neither is set",
			edit:          func(h *header) { h.SformCode, h.QformCode, h.Pixdim[3] = 0, 0, 0 },
			want:          [4][4]float64{{2, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}},
			wantTransform: TransformNone,
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ti := testImage{dims: [3]int{3, 4, 5}, datatype: 2, values: smallValues(false), edit: tc.edit}
			v, err := ReadNIfTI(bytes.NewReader(ti.encode(t)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, v.Affine, cmpopts.EquateApprox(0, 1e-6)); diff != "" {
				t.Errorf("Affine (-want +got):\n%s", diff)
			}
			if v.Transform != tc.wantTransform {
				t.Errorf("Transform = %q, want %q", v.Transform, tc.wantTransform)
			}
		})
	}
}

// TestReadNIfTI2Affine checks that NIfTI-2's 64-bit transforms are read as such: the values
// below have no float32 representation.
func TestReadNIfTI2Affine(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name          string
		edit          func(h *header2)
		want          [4][4]float64
		wantTransform string
	}{
		{
			name: "sform",
			edit: func(h *header2) {
				h.SrowX, h.SrowY, h.SrowZ = [4]float64{0.1, 0, 0, -90.1}, [4]float64{0, 0.3, 0.01, -126.3}, [4]float64{0, -0.01, 0.7, 1e-9}
			},
			want:          [4][4]float64{{0.1, 0, 0, -90.1}, {0, 0.3, 0.01, -126.3}, {0, -0.01, 0.7, 1e-9}, {0, 0, 0, 1}},
			wantTransform: TransformSform,
		},
		{
			name: "qform half turn about z",
			edit: func(h *header2) {
				h.SformCode, h.QformCode, h.QuaternD = 0, 2, 1
				h.Pixdim[1], h.Pixdim[2], h.Pixdim[3] = 0.1, 0.2, 0.3
				h.QoffsetX = 90.1
			},
			want:          [4][4]float64{{-0.1, 0, 0, 90.1}, {0, -0.2, 0, 0}, {0, 0, 0.3, 0}, {0, 0, 0, 1}},
			wantTransform: TransformQform,
		},
		{
			name:          "none",
			edit:          func(h *header2) { h.SformCode = 0 },
			want:          [4][4]float64{{2, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 1}},
			wantTransform: TransformNone,
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ti := testImage{dims: [3]int{3, 4, 5}, datatype: 2, values: smallValues(false), nifti2: true, big: true, edit2: tc.edit}
			v, err := ReadNIfTI(bytes.NewReader(ti.encode(t)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, v.Affine, cmpopts.EquateApprox(0, 1e-15)); diff != "" {
				t.Errorf("Affine (-want +got):\n%s", diff)
			}
			if v.Transform != tc.wantTransform {
				t.Errorf("Transform = %q, want %q", v.Transform, tc.wantTransform)
			}
		})
	}
}

func TestReadNIfTIVoxOffset(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name   string
		offset float32
	}{
		{"zero means 352", 0},
		{"after an extension", 352 + 32},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ti := testImage{dims: [3]int{3, 4, 5}, datatype: 16, values: smallValues(true),
				edit: func(h *header) { h.VoxOffset = tc.offset }}
			v, err := ReadNIfTI(bytes.NewReader(ti.encode(t)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ti.values, v.Data); diff != "" {
				t.Errorf("Data (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadNIfTIErrors(t *testing.T) {
	t.Parallel()
	valid := func(edit func(h *header)) []byte {
		return testImage{dims: [3]int{3, 4, 5}, datatype: 16, values: smallValues(true), edit: edit}.encode(t)
	}
	gz := func(b []byte) []byte {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(b)
		zw.Close()
		return z.Bytes()
	}
	good := valid(nil)
	badCRC := gz(good)
	badCRC[len(badCRC)-6] ^= 0xff // the CRC-32 in the gzip trailer
	offsetPastEnd := bytes.Clone(good)
	binary.LittleEndian.PutUint32(offsetPastEnd[108:], math.Float32bits(1e6))
	valid2 := func(edit func(h *header2)) []byte {
		return testImage{dims: [3]int{3, 4, 5}, datatype: 16, values: smallValues(true), nifti2: true, edit2: edit}.encode(t)
	}
	good2 := valid2(nil)
	gz4D := testImage{dims: [3]int{3, 4, 5}, datatype: 16, values: smallValues(true), volumes: 5, gz: true}.encode(t)
	testCases := []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty", nil, "file is empty"},
		{"one byte", good[:1], "truncated header: 1 of 348 bytes"},
		{"short header", good[:100], "truncated header: 100 of 348 bytes"},
		{"not NIfTI", bytes.Repeat([]byte("hello world "), 40), "nifti: not a NIfTI file (sizeof_hdr is 1819043176, want 348 or 540)"},
		{"PNG", append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 600)...), "not a NIfTI file"},
		{"NIfTI-1 claiming the NIfTI-2 size", append([]byte{0x1c, 2, 0, 0}, good[4:]...), `bad magic "", want "n+2"`},
		{"bad magic", valid(func(h *header) { h.Magic = [4]byte{'x', 'y', 'z', 0} }), `bad magic "xyz"`},
		{"header/image pair", valid(func(h *header) { h.Magic = magicPair }), "header/image pairs"},
		{"RGB24", valid(func(h *header) { h.Datatype = 128 }), "nifti: datatype 128 (RGB24) is not supported"},
		{"COMPLEX64", valid(func(h *header) { h.Datatype = 32 }), "nifti: datatype 32 (COMPLEX64) is not supported: complex values"},
		{"BINARY", valid(func(h *header) { h.Datatype = 1 }), "(BINARY) is not supported"},
		{"unknown datatype", valid(func(h *header) { h.Datatype = 3 }), "datatype 3 is not a NIfTI datatype"},
		{"2D", valid(func(h *header) { h.Dim[0] = 2 }), "nifti: a 2D image: dim[0] is 2; a brain map is a 3D volume"},
		{"1D", valid(func(h *header) { h.Dim[0] = 1 }), "a 1D image"},
		{"no dimensions", valid(func(h *header) { h.Dim[0] = 0 }), "dim[0] is 0, want 3 to 7"},
		{"8 dimensions", valid(func(h *header) { h.Dim[0] = 8 }), "dim[0] is 8, want 3 to 7"},
		{"one slice", valid(func(h *header) { h.Dim[3] = 1 }), "nifti: a 2D image: 3×4×1 voxels; a brain map is a 3D volume"},
		{"one sagittal slice", valid(func(h *header) { h.Dim[1] = 1 }), "a 2D image: 1×4×5 voxels"},
		{"one line", valid(func(h *header) { h.Dim[1], h.Dim[2] = 1, 1 }), "a 1D image: 1×1×5 voxels"},
		{"one voxel", valid(func(h *header) { h.Dim[1], h.Dim[2], h.Dim[3] = 1, 1, 1 }), "nifti: a single voxel (1×1×1)"},
		{"zero size", valid(func(h *header) { h.Dim[2] = 0 }), "dim[2] is 0"},
		{"negative size", valid(func(h *header) { h.Dim[3] = -5 }), "dim[3] is -5"},
		{"negative offset", valid(func(h *header) { h.VoxOffset = -1 }), "vox_offset"},
		{"offset past the end", offsetPastEnd, "truncated before the data"},
		{"truncated data", good[:len(good)-7], "truncated data"},
		{"huge dims in a short file", valid(func(h *header) { h.Dim[1], h.Dim[2], h.Dim[3] = 1000, 1000, 1000 }), "truncated data"},
		{"truncated gzip header", gz(good)[:5], "gzip"},
		{"truncated gzip", gz(good)[:100], "truncated header"},
		{"truncated gzip trailer", gz(good)[:len(gz(good))-12], "truncated"},
		{"truncated gzip data", gz(good)[:len(gz(good))/2+10], "truncated data"},
		{"bad gzip checksum", badCRC, "checksum"},

		{"NIfTI-2 short header", good2[:400], "truncated header: 400 of 540 bytes"},
		{"NIfTI-2 bad magic", valid2(func(h *header2) { copy(h.Magic[:], "n+1\x00") }), `bad magic "n+1", want "n+2"`},
		{"NIfTI-2 header/image pair", valid2(func(h *header2) { copy(h.Magic[:], "ni2\x00") }), `header/image pairs (.hdr + .img, magic "ni2")`},
		{"NIfTI-2 line endings converted", valid2(func(h *header2) { copy(h.Magic[4:], "\n\x1a\n\x00") }), "changed in transfer"},
		{"NIfTI-2 2D", valid2(func(h *header2) { h.Dim[3] = 1 }), "a 2D image: 3×4×1 voxels"},
		{"NIfTI-2 dim beyond int32", valid2(func(h *header2) { h.Dim[1] = 1 << 40 }), "the image has 1099511627776×4×5 voxels, more than the 1073741824 allowed"},
		{"NIfTI-2 too many voxels", valid2(func(h *header2) { h.Dim[1], h.Dim[2], h.Dim[3] = 1<<20, 1<<20, 1<<20 }), "1048576×1048576×1048576 voxels, more than"},
		{"NIfTI-2 negative dim", valid2(func(h *header2) { h.Dim[2] = -1 << 62 }), "dim[2] is -4611686018427387904"},
		{"NIfTI-2 huge vox_offset", valid2(func(h *header2) { h.VoxOffset = 1 << 40 }), "vox_offset 1.099511627776e+12 is not a valid offset"},
		{"NIfTI-2 negative vox_offset", valid2(func(h *header2) { h.VoxOffset = -1 }), "vox_offset -1"},
		{"NIfTI-2 truncated data", good2[:len(good2)-7], "truncated data: 3×4×5 FLOAT32 needs 240 bytes, file has 233"},
		{"NIfTI-2 truncated gzip", gz(good2)[:len(gz(good2))/2], "truncated"},
		{"NIfTI-2 unknown datatype", valid2(func(h *header2) { h.Datatype = 3 }), "datatype 3 is not a NIfTI datatype"},
		{"4D gzip truncated in a later volume", gz4D[:len(gz4D)-10], "gzip: truncated stream"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := ReadNIfTI(bytes.NewReader(tc.input))
			if err == nil {
				t.Fatalf("ReadNIfTI = %v, want an error", v.Dims)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}

	// nibabel accepts a NIfTI-2 magic whose line-ending check is all zeros, which an early
	// writer left; so does ReadNIfTI.
	if _, err := ReadNIfTI(bytes.NewReader(valid2(func(h *header2) { copy(h.Magic[4:], "\x00\x00\x00\x00") }))); err != nil {
		t.Errorf("NIfTI-2 with a zero line-ending check: %v", err)
	}
}

// TestReadNIfTICorruptNoPanic damages a valid file in many ways: the reader may accept some
// (a changed voxel is still a valid file) but must never panic.
func TestReadNIfTICorruptNoPanic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		gz, nifti2 bool
		volumes    int
	}{{false, false, 0}, {true, false, 0}, {false, true, 0}, {true, true, 2}, {false, false, 3}} {
		t.Run(fmt.Sprintf("gz=%v/nifti2=%v/volumes=%d", tc.gz, tc.nifti2, tc.volumes), func(t *testing.T) {
			t.Parallel()
			good := testImage{dims: [3]int{3, 4, 5}, datatype: 4, gz: tc.gz, nifti2: tc.nifti2, volumes: tc.volumes, values: smallValues(true)}.encode(t)
			for n := 0; n < len(good); n++ {
				ReadNIfTI(bytes.NewReader(good[:n]))
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 2000 {
				bad := bytes.Clone(good)
				for range 1 + rng.IntN(4) {
					bad[rng.IntN(len(bad))] = byte(rng.Uint32())
				}
				ReadNIfTI(bytes.NewReader(bad))
			}
		})
	}
}

func FuzzReadNIfTI(f *testing.F) {
	f.Add(testImage{dims: [3]int{3, 4, 5}, datatype: 4, values: smallValues(true)}.encode(f))
	f.Add(testImage{dims: [3]int{3, 4, 5}, datatype: 64, big: true, gz: true, values: smallValues(true)}.encode(f))
	f.Add(testImage{dims: [3]int{3, 4, 5}, datatype: 16, nifti2: true, values: smallValues(true)}.encode(f))
	f.Add(testImage{dims: [3]int{3, 4, 5}, datatype: 512, nifti2: true, big: true, gz: true, values: smallValues(false)}.encode(f))
	f.Add(testImage{dims: [3]int{3, 4, 5}, datatype: 8, volumes: 3, values: smallValues(true)}.encode(f))
	f.Add(testImage{dims: [3]int{3, 4, 5}, datatype: 16, nifti2: true, volumes: 2, gz: true, values: smallValues(true)}.encode(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ReadNIfTI(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(v.Data) != v.Dims[0]*v.Dims[1]*v.Dims[2] {
			t.Errorf("%d values for dims %v", len(v.Data), v.Dims)
		}
		// Every caller relies on finite values.
		for _, x := range v.Data {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("non-finite value %v in Data", x)
			}
		}
		if v.Volumes < 1 {
			t.Errorf("Volumes = %d", v.Volumes)
		}
		// Resampling whatever was read must not panic either; refusing it is fine.
		if m := fuzzMask(); m != nil {
			ResampleToMask(v, m)
		}
	})
}

// fuzzMask is a sparse mask (1 voxel in 97) that keeps the fuzz target's resampling fast.
var fuzzMask = sync.OnceValue(func() *Mask {
	in := make([]bool, NVoxels)
	for idx := range in {
		in[idx] = idx%97 == 0
	}
	m, _ := NewMask(in)
	return m
})

func TestSampleMNI(t *testing.T) {
	t.Parallel()
	// 2×2×2 voxels of 10 mm with the first centre at (100, 200, 300); value = 1·i + 2·j + 4·k.
	v := &Volume{Dims: [3]int{2, 2, 2}, Data: []float64{0, 4, 2, 6, 1, 5, 3, 7},
		Affine: [4][4]float64{{10, 0, 0, 100}, {0, 10, 0, 200}, {0, 0, 10, 300}, {0, 0, 0, 1}}}
	testCases := []struct {
		name    string
		mni     [3]float64
		interp  Interpolation
		want    float64
		wantTol float64
	}{
		{"nearest at a centre", [3]float64{110, 200, 310}, Nearest, 5, 0},
		{"nearest rounds", [3]float64{104, 206, 301}, Nearest, 2, 0},
		{"trilinear at a centre", [3]float64{110, 210, 310}, Trilinear, 7, 0},
		{"trilinear midway", [3]float64{105, 205, 305}, Trilinear, 3.5, 1e-12},
		{"trilinear quarter", [3]float64{102.5, 200, 300}, Trilinear, 0.25, 1e-12},
		{"trilinear holds the edge value in the outer half voxel", [3]float64{96, 200, 300}, Trilinear, 0, 0},
		{"inside the outer half voxel", [3]float64{114, 214, 314}, Nearest, 7, 0},
		{"outside", [3]float64{116, 200, 300}, Trilinear, 0, 0},
		{"outside below", [3]float64{100, 194, 300}, Nearest, 0, 0},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := v.SampleMNI(tc.mni, tc.interp); math.Abs(got-tc.want) > tc.wantTol {
				t.Errorf("SampleMNI(%v) = %v, want %v", tc.mni, got, tc.want)
			}
		})
	}
	if got := v.At(2, 0, 0); got != 0 {
		t.Errorf("At outside = %v, want 0", got)
	}
}

func TestReadSharedMask(t *testing.T) {
	t.Parallel()
	m := mustMask(t)
	if m.Len() != 28542 {
		t.Errorf("mask has %d voxels, want 28542", m.Len())
	}
	// The "faces" peak of model.md is a brain voxel.
	i, j, k, _ := MNIToVoxel(38, -50, -20)
	if !m.Contains(Index(i, j, k)) {
		t.Errorf("voxel (%d, %d, %d) at MNI (38, -50, -20) is not in the mask", i, j, k)
	}
}

func TestReadMaskFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	onGrid := func(name string, brain bool, edit func(h *header)) string {
		vals := make([]float64, NVoxels)
		if brain {
			vals[Index(20, 20, 20)] = 1
		}
		raw := testImage{dims: Dims, datatype: 2, values: vals, edit: func(h *header) {
			h.SrowX = [4]float32{4, 0, 0, -90}
			h.SrowY = [4]float32{0, 4, 0, -126}
			h.SrowZ = [4]float32{0, 0, 4, -72}
			if edit != nil {
				edit(h)
			}
		}}.encode(t)
		path := filepath.Join(dir, name+".nii")
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	testCases := []struct {
		name string
		path string
		want string
	}{
		{"1 mm template", sharedTemplate, "is 197×233×189, want 46×55×46"},
		{"shifted origin", onGrid("shifted", true, func(h *header) { h.SrowY[3] = -122 }), "want [[4 0 0 -90] [0 4 0 -126]"},
		{"2 mm voxels", onGrid("2mm", true, func(h *header) { h.SrowZ[2] = 2 }), "has affine"},
		{"empty", onGrid("empty", false, nil), "mask is empty"},
		{"missing", filepath.Join(dir, "nope.nii.gz"), "no such file"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ReadMaskFile(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadMaskFile error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	m, err := ReadMaskFile(onGrid("good", true, nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int32{int32(Index(20, 20, 20))}, m.Voxels); diff != "" {
		t.Errorf("Voxels (-want +got):\n%s", diff)
	}
}

func TestReadTemplate(t *testing.T) {
	t.Parallel()
	v := mustTemplate(t)
	if want := [3]int{197, 233, 189}; v.Dims != want {
		t.Errorf("Dims = %v, want %v", v.Dims, want)
	}
	want := [4][4]float64{{1, 0, 0, -98}, {0, 1, 0, -134}, {0, 0, 1, -72}, {0, 0, 0, 1}}
	if v.Affine != want {
		t.Errorf("Affine = %v, want %v", v.Affine, want)
	}
	var lo, hi float64
	for _, x := range v.Data {
		lo, hi = min(lo, x), max(hi, x)
	}
	if lo != 0 || hi != 255 {
		t.Errorf("range [%v, %v], want [0, 255] (uint8)", lo, hi)
	}
	// The brain is brighter than the background, and the volume ends at its edges.
	if got := v.SampleMNI([3]float64{30, -20, 50}, Nearest); got < 100 {
		t.Errorf("white matter at (30, -20, 50) = %v, want > 100", got)
	}
	if got := v.SampleMNI([3]float64{-95, -130, -70}, Trilinear); got != 0 {
		t.Errorf("corner = %v, want 0 (background)", got)
	}
	if got := v.SampleMNI([3]float64{0, 0, 200}, Trilinear); got != 0 {
		t.Errorf("outside = %v, want 0", got)
	}
}

// bumpMap is a Gaussian of amplitude amp and width sigma mm at an MNI position, in mask order.
func bumpMap(m *Mask, centre [3]float64, amp, sigma float64) []float32 {
	vals := make([]float32, m.Len())
	for p, idx := range m.Voxels {
		i, j, k := Coords(int(idx))
		q := VoxelToMNI(i, j, k)
		d2 := (q[0]-centre[0])*(q[0]-centre[0]) + (q[1]-centre[1])*(q[1]-centre[1]) + (q[2]-centre[2])*(q[2]-centre[2])
		vals[p] = float32(amp * math.Exp(-d2/(2*sigma*sigma)))
	}
	return vals
}

func randomMap(m *Mask, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	vals := make([]float32, m.Len())
	for p := range vals {
		vals[p] = float32(rng.NormFloat64() * 3)
	}
	return vals
}

func TestWriteMapRoundTrip(t *testing.T) {
	t.Parallel()
	m := mustMask(t)
	vals := randomMap(m, 1)
	var buf bytes.Buffer
	if err := WriteMap(&buf, m, vals, "text2brain: faces"); err != nil {
		t.Fatal(err)
	}

	v, err := ReadNIfTI(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if v.Dims != Dims || v.Affine != Affine {
		t.Errorf("read back dims %v affine %v, want %v %v", v.Dims, v.Affine, Dims, Affine)
	}
	if diff := cmp.Diff(m.ToVolume(vals), v.Data); diff != "" {
		t.Errorf("volume (-want +got):\n%s", diff)
	}

	zr, err := gzip.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header has time %v and name %q; want neither, for reproducible files", zr.ModTime, zr.Name)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != dataOffset+4*NVoxels {
		t.Errorf("file is %d bytes, want %d", len(raw), dataOffset+4*NVoxels)
	}
	var h header
	if _, err := binary.Decode(raw, binary.LittleEndian, &h); err != nil {
		t.Fatal(err)
	}
	lo, hi := float32(0), float32(0)
	for _, x := range vals {
		lo, hi = min(lo, x), max(hi, x)
	}
	got := struct {
		VoxOffset                    float32
		Magic                        string
		Datatype, Bitpix             int16
		Dim                          [8]int16
		Pixdim                       [4]float32
		XYZTUnits                    byte
		QformCode, SformCode         int16
		QuaternB, QuaternC, QuaternD float32
		QoffsetX, QoffsetY, QoffsetZ float32
		SrowX, SrowY, SrowZ          [4]float32
		CalMin, CalMax               float32
		Descrip                      string
		Extension                    []byte
		SclSlope, SclInter           float32
	}{
		h.VoxOffset, string(h.Magic[:]), h.Datatype, h.Bitpix, h.Dim, [4]float32(h.Pixdim[:4]), h.XYZTUnits,
		h.QformCode, h.SformCode, h.QuaternB, h.QuaternC, h.QuaternD, h.QoffsetX, h.QoffsetY, h.QoffsetZ,
		h.SrowX, h.SrowY, h.SrowZ, h.CalMin, h.CalMax, string(bytes.TrimRight(h.Descrip[:], "\x00")),
		raw[headerSize:dataOffset], h.SclSlope, h.SclInter,
	}
	want := got
	want.VoxOffset, want.Magic, want.Datatype, want.Bitpix = 352, "n+1\x00", 16, 32
	want.Dim = [8]int16{3, 46, 55, 46, 1, 1, 1, 1}
	want.Pixdim = [4]float32{1, 4, 4, 4}
	want.XYZTUnits, want.QformCode, want.SformCode = 2, 4, 4
	want.QuaternB, want.QuaternC, want.QuaternD = 0, 0, 0
	want.QoffsetX, want.QoffsetY, want.QoffsetZ = -90, -126, -72
	want.SrowX, want.SrowY, want.SrowZ = [4]float32{4, 0, 0, -90}, [4]float32{0, 4, 0, -126}, [4]float32{0, 0, 4, -72}
	want.CalMin, want.CalMax = lo, hi
	want.Descrip = "text2brain: faces"
	want.Extension = []byte{0, 0, 0, 0}
	want.SclSlope, want.SclInter = 1, 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}

	var again bytes.Buffer
	if err := WriteMap(&again, m, vals, "text2brain: faces"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two writes of the same map differ")
	}
}

func TestWriteMapDescription(t *testing.T) {
	t.Parallel()
	m := mustMask(t)
	testCases := []struct {
		name, in, want string
	}{
		{"short", "faces", "faces"},
		{"exactly 79 bytes", strings.Repeat("a", 79), strings.Repeat("a", 79)},
		{"too long", strings.Repeat("b", 100), strings.Repeat("b", 79)},
		// 78 ASCII bytes then a 2-byte "é": the é would end at byte 80, so it goes.
		{"no split character", strings.Repeat("c", 78) + "é", strings.Repeat("c", 78)},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := WriteMap(&buf, m, make([]float32, m.Len()), tc.in); err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(&buf)
			if err != nil {
				t.Fatal(err)
			}
			var h header
			if err := binary.Read(zr, binary.LittleEndian, &h); err != nil {
				t.Fatal(err)
			}
			if got := string(bytes.TrimRight(h.Descrip[:], "\x00")); got != tc.want {
				t.Errorf("descrip = %q, want %q", got, tc.want)
			}
			if h.Descrip[79] != 0 {
				t.Error("descrip is not NUL-terminated")
			}
		})
	}
}

func TestWriteMapErrors(t *testing.T) {
	t.Parallel()
	m := mustMask(t)
	testCases := []struct {
		name   string
		mask   *Mask
		values []float32
		want   string
	}{
		{"nil mask", nil, nil, "nil mask"},
		{"too few", m, make([]float32, m.Len()-1), "28541 values for a mask of 28542 voxels"},
		{"too many", m, make([]float32, NVoxels), "116380 values"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := WriteMap(io.Discard, tc.mask, tc.values, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("WriteMap error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// requireNibabel fails, never skips: the independent reader is the point of these tests.
func requireNibabel(t *testing.T) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", "import nibabel, numpy").CombinedOutput()
	if err != nil {
		t.Fatalf("nibabel is needed to check NIfTI files independently: install python3-nibabel (make test does): %v\n%s", err, out)
	}
}

func runPython(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", append([]string{"-c", script}, args...)...).Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python: %v\n%s", err, stderr)
	}
	return out
}

// TestNibabelReadsWriteMap has nibabel, the reference Python reader, open a written map.
func TestNibabelReadsWriteMap(t *testing.T) {
	t.Parallel()
	requireNibabel(t)
	m := mustMask(t)
	vals := bumpMap(m, [3]float64{38, -50, -20}, 28, 6)
	for p := range vals {
		vals[p] -= 0.5 // negative values away from the bump
	}
	path := filepath.Join(t.TempDir(), "map.nii.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteMap(f, m, vals, "faces"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	const script = `
import json, sys
import nibabel as nib, numpy as np
img = nib.load(sys.argv[1])
data = np.asanyarray(img.dataobj)
inv = np.linalg.inv(img.affine)
def at(mni):
    i, j, k = np.rint(inv @ np.array(list(mni) + [1.0]))[:3].astype(int)
    return float(data[i, j, k])
h = img.header
print(json.dumps({
    "shape": list(data.shape),
    "dtype": str(data.dtype),
    "affine": img.affine.tolist(),
    "sform": img.get_sform().tolist(),
    "qform": img.get_qform().tolist(),
    "sform_code": int(h["sform_code"]),
    "qform_code": int(h["qform_code"]),
    "units": list(h.get_xyzt_units()),
    "descrip": h["descrip"].item().decode(),
    "intent": h.get_intent()[0],
    "values": [at(p) for p in json.loads(sys.argv[2])],
    "nonzero": int(np.count_nonzero(data)),
}))
`
	positions := [][3]float64{{38, -50, -20}, {42, -50, -20}, {38, -46, -16}, {-38, -50, -20}, {0, 0, 0}, {-90, -126, -72}}
	posJSON, _ := json.Marshal(positions)
	var got struct {
		Shape     []int
		Dtype     string
		Affine    [4][4]float64
		Sform     [4][4]float64
		Qform     [4][4]float64
		SformCode int `json:"sform_code"`
		QformCode int `json:"qform_code"`
		Units     []string
		Descrip   string
		Intent    string
		Values    []float64
		Nonzero   int
	}
	if err := json.Unmarshal(runPython(t, script, path, string(posJSON)), &got); err != nil {
		t.Fatal(err)
	}
	if got.Intent != "z score" {
		t.Errorf("nibabel reads intent %q, want z score", got.Intent)
	}

	vol := m.ToVolume(vals)
	wantValues := make([]float64, len(positions))
	for n, p := range positions {
		i, j, k, ok := MNIToVoxel(p[0], p[1], p[2])
		if !ok {
			t.Fatalf("%v is outside the grid", p)
		}
		wantValues[n] = vol[Index(i, j, k)]
	}
	if wantValues[0] < 27 || wantValues[len(wantValues)-1] != 0 {
		t.Fatalf("test map is not what the test expects: values %v", wantValues)
	}
	want := got
	want.Shape, want.Dtype = []int{46, 55, 46}, "float32"
	want.Affine, want.Sform, want.Qform = Affine, Affine, Affine
	want.SformCode, want.QformCode = 4, 4
	want.Units = []string{"mm", "unknown"}
	want.Descrip = "faces"
	want.Values = wantValues
	want.Nonzero = m.Len()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nibabel's view (-want +got):\n%s", diff)
	}
}

// TestReadNibabelFiles reads files that nibabel wrote: another writer's idea of the format.
func TestReadNibabelFiles(t *testing.T) {
	t.Parallel()
	requireNibabel(t)
	dir := t.TempDir()
	const script = `
import json, sys, os
import nibabel as nib, numpy as np
out = {}
base = np.arange(3 * 4 * 5, dtype=np.float64).reshape(3, 4, 5) - 20
cases = {
    "int16_big_scaled": dict(dtype=">i2", scaled=True),
    "float64_little": dict(dtype="<f8"),
    "uint8": dict(dtype="u1", offset=20),
    "float32_big": dict(dtype=">f4"),
    "qform_only": dict(dtype="<i4", qform_only=True),
}
aff = np.array([[-2.0, 0, 0, 30], [0, 2.5, 0, -40], [0, 0, 3, -50], [0, 0, 0, 1]])
rot = np.array([[0, -2.0, 0, 10], [2.0, 0, 0, 20], [0, 0, 2.0, 30], [0, 0, 0, 1]])
for name, c in cases.items():
    arr = (base + c.get("offset", 0)).astype(np.dtype(c["dtype"]).newbyteorder("="))
    if c.get("scaled"):
        # Float data stored as int16 makes nibabel pick a slope and an intercept.
        arr = base * 0.37 + 1000.25
    hdr = nib.Nifti1Header(endianness=c["dtype"][0] if c["dtype"][0] in "<>" else "<")
    hdr.set_data_dtype(np.dtype(c["dtype"]))
    img = nib.Nifti1Image(arr, None, hdr)
    if c.get("qform_only"):
        img.set_qform(rot, code=1)
        img.set_sform(None, code=0)
    else:
        img.set_sform(aff, code=2)
        img.set_qform(aff, code=2)
    path = os.path.join(sys.argv[1], name + ".nii" + (".gz" if name.startswith("int16") else ""))
    nib.save(img, path)
    back = nib.load(path)
    out[name] = {"path": path, "data": np.asarray(back.get_fdata(), dtype=np.float64).ravel(order="C").tolist(),
                 "affine": back.affine.tolist(), "shape": list(back.shape),
                 "slope": float(back.dataobj.slope), "inter": float(back.dataobj.inter)}
print(json.dumps(out))
`
	var files map[string]struct {
		Path   string
		Data   []float64
		Affine [4][4]float64
		Shape  []int
		Slope  float64
		Inter  float64
	}
	if err := json.Unmarshal(runPython(t, script, dir), &files); err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Fatalf("nibabel wrote %d files, want 5", len(files))
	}
	if s := files["int16_big_scaled"]; s.Slope == 1 || s.Inter == 0 {
		t.Fatalf("nibabel stored the int16 file with slope %v and intercept %v; the test needs scaling", s.Slope, s.Inter)
	}
	for name, want := range files {
		t.Run(name, func(t *testing.T) {
			v, err := ReadNIfTIFile(want.Path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.Shape, v.Dims[:]); diff != "" {
				t.Errorf("dims (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want.Affine, v.Affine, cmpopts.EquateApprox(0, 1e-6)); diff != "" {
				t.Errorf("affine (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want.Data, v.Data, cmpopts.EquateApprox(1e-12, 1e-12)); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}
}

func BenchmarkWriteMap(b *testing.B) {
	m := mustMask(b)
	vals := randomMap(m, 2)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteMap(io.Discard, m, vals, "benchmark"); err != nil {
			b.Fatal(err)
		}
	}
}
