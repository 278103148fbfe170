package brain

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
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

// testImage describes a small NIfTI-1 file for the reader's tests.
type testImage struct {
	dims     [3]int
	datatype int16
	big      bool
	gz       bool
	values   []float64 // C order, stored as datatype
	edit     func(h *header)
}

func (ti testImage) encode(tb testing.TB) []byte {
	tb.Helper()
	var order binary.ByteOrder = binary.LittleEndian
	if ti.big {
		order = binary.BigEndian
	}
	dt := datatypes[ti.datatype]
	h := &header{
		SizeofHdr: headerSize,
		Dim:       [8]int16{3, int16(ti.dims[0]), int16(ti.dims[1]), int16(ti.dims[2]), 1, 1, 1, 1},
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
	var buf bytes.Buffer
	if err := binary.Write(&buf, order, h); err != nil {
		tb.Fatal(err)
	}
	pad := 4 // the extension flag, where offsets below 352 put the data
	if h.VoxOffset >= dataOffset {
		pad = int(h.VoxOffset) - headerSize
	}
	buf.Write(make([]byte, pad))
	nx, ny, nz := ti.dims[0], ti.dims[1], ti.dims[2]
	b := make([]byte, 8)
	for k := 0; k < nz; k++ {
		for j := 0; j < ny; j++ {
			for i := 0; i < nx; i++ {
				x := ti.values[(i*ny+j)*nz+k]
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
		for _, big := range []bool{false, true} {
			for _, gz := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/big=%v/gz=%v", tc.name, big, gz), func(t *testing.T) {
					t.Parallel()
					ti := testImage{dims: [3]int{3, 4, 5}, datatype: tc.datatype, big: big, gz: gz, values: smallValues(tc.signed)}
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
				})
			}
		}
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
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ti := testImage{dims: [3]int{3, 4, 5}, datatype: 4, values: smallValues(true),
				edit: func(h *header) { h.SclSlope, h.SclInter = tc.slope, tc.inter }}
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

func TestReadNIfTIAffine(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name string
		edit func(h *header)
		want [4][4]float64
	}{
		{
			name: "sform wins over qform",
			edit: func(h *header) { h.QformCode, h.QuaternD = 1, 1 },
			want: [4][4]float64{{2, 0, 0, -10}, {0, 2, 0, -20}, {0, 0, 2, -30}, {0, 0, 0, 1}},
		},
		{
			name: "qform identity",
			edit: func(h *header) {
				h.SformCode, h.QformCode = 0, 4
				h.QoffsetX, h.QoffsetY, h.QoffsetZ = -90, -126, -72
			},
			want: [4][4]float64{{2, 0, 0, -90}, {0, 2, 0, -126}, {0, 0, 2, -72}, {0, 0, 0, 1}},
		},
		{
			name: "qform with qfac -1 flips k",
			edit: func(h *header) { h.SformCode, h.QformCode, h.Pixdim[0] = 0, 1, -1 },
			want: [4][4]float64{{2, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, -2, 0}, {0, 0, 0, 1}},
		},
		{
			// b = c = 0, d = 1: a half turn about z, the LPI → RAS flip of radiological files.
			name: "qform half turn about z",
			edit: func(h *header) {
				h.SformCode, h.QformCode, h.QuaternD = 0, 1, 1
				h.Pixdim[1], h.Pixdim[2], h.Pixdim[3] = 1, 2, 3
				h.QoffsetX = 90
			},
			want: [4][4]float64{{-1, 0, 0, 90}, {0, -2, 0, 0}, {0, 0, 3, 0}, {0, 0, 0, 1}},
		},
		{
			// b = sin(45°): a quarter turn about x takes j to z and k to −y.
			name: "qform quarter turn about x",
			edit: func(h *header) {
				h.SformCode, h.QformCode, h.QuaternB = 0, 1, float32(math.Sqrt(0.5))
				h.Pixdim[1], h.Pixdim[2], h.Pixdim[3] = 1, 1, 1
			},
			want: [4][4]float64{{1, 0, 0, 0}, {0, 0, -1, 0}, {0, 1, 0, 0}, {0, 0, 0, 1}},
		},
		{
			name: "voxel sizes when neither is set",
			edit: func(h *header) { h.SformCode, h.QformCode, h.Pixdim[3] = 0, 0, 0 },
			want: [4][4]float64{{2, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}},
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
	testCases := []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty", nil, "file is empty"},
		{"one byte", good[:1], "truncated header: 1 of 348 bytes"},
		{"short header", good[:100], "truncated header: 100 of 348 bytes"},
		{"not NIfTI", bytes.Repeat([]byte("hello world "), 40), "not a NIfTI-1 file"},
		{"NIfTI-2", append([]byte{0x1c, 2, 0, 0}, good[4:]...), "NIfTI-2"},
		{"bad magic", valid(func(h *header) { h.Magic = [4]byte{'x', 'y', 'z', 0} }), `bad magic "xyz"`},
		{"header/image pair", valid(func(h *header) { h.Magic = magicPair }), "header/image pairs"},
		{"RGB24", valid(func(h *header) { h.Datatype = 128 }), "nifti: datatype 128 (RGB24) is not supported"},
		{"unknown datatype", valid(func(h *header) { h.Datatype = 3 }), "datatype 3 is not a NIfTI-1 datatype"},
		{"2D", valid(func(h *header) { h.Dim[0] = 2 }), "2 dimensions"},
		{"4D", valid(func(h *header) { h.Dim[0], h.Dim[4] = 4, 10 }), "dim[4] is 10"},
		{"zero size", valid(func(h *header) { h.Dim[2] = 0 }), "dim[2] is 0"},
		{"negative offset", valid(func(h *header) { h.VoxOffset = -1 }), "vox_offset"},
		{"offset past the end", offsetPastEnd, "truncated before the data"},
		{"truncated data", good[:len(good)-7], "truncated data"},
		{"huge dims in a short file", valid(func(h *header) { h.Dim[1], h.Dim[2], h.Dim[3] = 1000, 1000, 1000 }), "truncated data"},
		{"truncated gzip header", gz(good)[:5], "gzip"},
		{"truncated gzip", gz(good)[:100], "truncated header"},
		{"truncated gzip trailer", gz(good)[:len(gz(good))-12], "truncated"},
		{"truncated gzip data", gz(good)[:len(gz(good))/2+10], "truncated data"},
		{"bad gzip checksum", badCRC, "checksum"},
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
}

// TestReadNIfTICorruptNoPanic damages a valid file in many ways: the reader may accept some
// (a changed voxel is still a valid file) but must never panic.
func TestReadNIfTICorruptNoPanic(t *testing.T) {
	t.Parallel()
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gz=%v", gz), func(t *testing.T) {
			t.Parallel()
			good := testImage{dims: [3]int{3, 4, 5}, datatype: 4, gz: gz, values: smallValues(true)}.encode(t)
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
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ReadNIfTI(bytes.NewReader(b))
		if err == nil && len(v.Data) != v.Dims[0]*v.Dims[1]*v.Dims[2] {
			t.Errorf("%d values for dims %v", len(v.Data), v.Dims)
		}
	})
}

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
