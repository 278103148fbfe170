package brain

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// resampleScript has nibabel write the kinds of statistical map researchers upload, and computes
// for each, independently of this package, what ReadNIfTI and ResampleToMask must give: the
// first volume as nibabel reads it (non-finite values 0), and a numpy trilinear resampling at the
// world positions of the mask voxels, with the Go sampler's edge convention (inside when
// −0.5 ≤ c ≤ dim − 0.5 on every axis; in the outer half voxel the edge voxel's value holds).
// The references go to raw little-endian float64 files, too large for JSON.
const resampleScript = `
import gzip, json, os, shutil, sys
import numpy as np, nibabel as nib

out_dir, mask_path = sys.argv[1], sys.argv[2]
mask_img = nib.load(mask_path)
# np.argwhere lists voxels in C order, which is mask order.
ijk = np.argwhere(np.asanyarray(mask_img.dataobj) != 0)
world = ijk @ mask_img.affine[:3, :3].T + mask_img.affine[:3, 3]
rng = np.random.default_rng(10)

def trilinear(data, affine, pts):
    inv = np.linalg.inv(affine)
    c = pts @ inv[:3, :3].T + inv[:3, 3]
    dims = np.array(data.shape)
    inside = np.all((c >= -0.5) & (c <= dims - 0.5), axis=1)
    f = np.floor(c)
    w = c - f
    f = f.astype(np.int64)
    lo, hi = np.clip(f, 0, dims - 1), np.clip(f + 1, 0, dims - 1)
    out = np.zeros(len(c))
    for corner in range(8):
        idx, wt = [], np.ones(len(c))
        for a in range(3):
            if corner >> a & 1:
                idx.append(hi[:, a]); wt = wt * w[:, a]
            else:
                idx.append(lo[:, a]); wt = wt * (1 - w[:, a])
        out += wt * data[idx[0], idx[1], idx[2]]
    out[~inside] = 0
    return out, int(inside.sum())

def pattern(shape, affine):
    # Smooth in world space, so that a misplaced image shows, plus voxel noise, so that a
    # voxel off by one shows too.
    g = np.indices(shape, dtype=np.float64).reshape(3, -1).T
    p = g @ affine[:3, :3].T + affine[:3, 3]
    v = (3 * np.exp(-((p - [38, -50, -20]) ** 2).sum(1) / (2 * 15.0 ** 2))
         - 2 * np.exp(-((p - [-30, 10, 40]) ** 2).sum(1) / (2 * 20.0 ** 2))
         + 0.5 * np.sin(p[:, 0] / 7) * np.cos(p[:, 1] / 11) + 0.1 * rng.standard_normal(len(p)))
    return v.reshape(shape)

def rot(ax, deg):
    t = np.deg2rad(deg); c, s = np.cos(t), np.sin(t)
    r = np.eye(3)
    a, b = [(1, 2), (2, 0), (0, 1)][ax]
    r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
    return r

def affine_of(lin, centre, shape):
    # An affine whose voxel grid is centred on a world position.
    a = np.eye(4)
    a[:3, :3] = lin
    a[:3, 3] = np.asarray(centre) - lin @ ((np.asarray(shape) - 1) / 2)
    return a

mni1 = np.array([[1.0, 0, 0, -91], [0, 1, 0, -126], [0, 0, 1, -72], [0, 0, 0, 1]])
mni2 = np.array([[2.0, 0, 0, -90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
fsl2 = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
mni4 = np.array([[4.0, 0, 0, -90], [0, 4, 0, -126], [0, 0, 4, -72], [0, 0, 0, 1]])
oblique = affine_of(rot(2, 15) @ rot(0, 10) @ np.diag([3, 3.5, 2.5]), [2, -20, 15], (64, 60, 80))
oblique_q = affine_of(rot(1, -12) @ rot(2, 25) @ np.diag([2.5, 2.5, 3]), [0, -18, 18], (76, 90, 64))
mm3 = np.array([[3.0, 0, 0, -90], [0, 3, 0, -126], [0, 0, 3, -72], [0, 0, 0, 1]])

cases = {
    "mni1mm_float32_gz": dict(shape=(182, 218, 182), affine=mni1, dtype="<f4", gz=True),
    "mni2mm_float32": dict(shape=(91, 109, 91), affine=mni2, dtype="<f4"),
    "fsl2mm_flipped_int16_autoscaled_big_gz": dict(shape=(91, 109, 91), affine=fsl2, dtype=">i2", autoscale=True, gz=True),
    "mni4mm_float64": dict(shape=(46, 55, 46), affine=mni4, dtype="<f8"),
    "oblique_float32_big": dict(shape=(64, 60, 80), affine=oblique, dtype=">f4"),
    "oblique_qform_only_int16": dict(shape=(76, 90, 64), affine=oblique_q, dtype="<i2", slope=0.002, inter=0.5, qform_only=True),
    "no_transform_uint8": dict(shape=(60, 70, 60), affine=np.diag([2.0, 2, 2, 1]), dtype="u1", slope=0.02, inter=-2, no_transform=True),
    "partial_fov_float32": dict(shape=(20, 24, 16), affine=affine_of(np.diag([3.0, 3, 3]), [10, -40, 5], (20, 24, 16)), dtype="<f4"),
    "4d_float32_gz": dict(shape=(61, 73, 61), affine=mm3, dtype="<f4", volumes=3, gz=True),
    "nifti2_float64_gz": dict(shape=(91, 109, 91), affine=mni2, dtype="<f8", nifti2=True, gz=True),
    "nifti2_int32_4d_big": dict(shape=(73, 87, 73), affine=affine_of(np.diag([-2.5, 2.5, 2.5]), [0, -18, 18], (73, 87, 73)), dtype=">i4", slope=1e-6, inter=1, volumes=2, nifti2=True),
    "int8_scaled": dict(shape=(61, 73, 61), affine=mm3, dtype="i1", slope=0.05, inter=-0.5),
    "uint8_scaled": dict(shape=(61, 73, 61), affine=mm3, dtype="u1", slope=0.03, inter=-2),
    "int16_scaled": dict(shape=(61, 73, 61), affine=mm3, dtype="<i2", slope=0.001, inter=0.25),
    "uint16_scaled_big": dict(shape=(61, 73, 61), affine=mm3, dtype=">u2", slope=1e-4, inter=-3),
    "int32_scaled": dict(shape=(61, 73, 61), affine=mm3, dtype="<i4", slope=1e-6, inter=1),
    "float32_scaled": dict(shape=(61, 73, 61), affine=mm3, dtype="<f4", slope=2.0, inter=-1),
    "float64_scaled_big": dict(shape=(61, 73, 61), affine=mm3, dtype=">f8", slope=0.5, inter=0.125),
    "nan_inf_float32": dict(shape=(91, 109, 91), affine=mni2, dtype="<f4", nonfinite=True),
    "nan_inf_nifti2_float64_gz": dict(shape=(61, 73, 61), affine=mm3, dtype="<f8", nonfinite=True, nifti2=True, gz=True),
}

out = {}
for name, c in cases.items():
    shape, aff, dt = c["shape"], c["affine"], np.dtype(c["dtype"])
    vols = [pattern(shape, aff)]
    for t in range(1, c.get("volumes", 1)):
        vols.append(vols[0] * (t + 1) + 5)
    vals = np.stack(vols, axis=-1) if len(vols) > 1 else vols[0]
    if c.get("nonfinite"):
        vals = vals.copy()
        vals[10:20, 30:40, 20:30] = np.nan
        vals[40, 50, 40], vals[41, 50, 40], vals[0, 0, 0] = np.inf, -np.inf, np.nan
    slope, inter = c.get("slope"), c.get("inter")
    if c.get("autoscale"):
        arr = vals  # nibabel picks the slope and intercept itself
    elif slope is not None:
        raw = (vals - inter) / slope
        if dt.kind in "iu":
            info = np.iinfo(dt)
            raw = np.clip(np.rint(raw), info.min, info.max)
        arr = raw.astype(dt.newbyteorder("="))
    else:
        arr = vals.astype(dt.newbyteorder("="))
    hdr_class = nib.Nifti2Header if c.get("nifti2") else nib.Nifti1Header
    img_class = nib.Nifti2Image if c.get("nifti2") else nib.Nifti1Image
    hdr = hdr_class(endianness=c["dtype"][0] if c["dtype"][0] in "<>" else "<")
    hdr.set_data_dtype(dt)
    img = img_class(arr, None, hdr)
    if c.get("qform_only"):
        img.set_qform(aff, code=1)
        img.set_sform(None, code=0)
    elif c.get("no_transform"):
        pass  # nibabel always writes a transform: patched out below
    else:
        img.set_sform(aff, code=4)
        img.set_qform(aff, code=4)
    path = os.path.join(out_dir, name + ".nii")
    nib.save(img, path)
    if slope is not None or c.get("no_transform"):
        # nibabel works out the scaling of an array itself when saving, and writes a transform
        # even when given none; patch in the wanted header.
        h = nib.load(path).header.copy()
        if slope is not None:
            h["scl_slope"], h["scl_inter"] = slope, inter
        if c.get("no_transform"):
            h["sform_code"], h["qform_code"] = 0, 0
            h["pixdim"][:4] = [1] + list(np.diag(aff)[:3])
        with open(path, "r+b") as f:
            h.write_to(f)
    if c.get("gz"):
        with open(path, "rb") as src, gzip.open(path + ".gz", "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst)
        os.remove(path)
        path += ".gz"

    back = nib.load(path)
    s, i = back.dataobj.slope, back.dataobj.inter
    if (slope is not None or c.get("autoscale")) and s == 1 and i == 0:
        raise SystemExit(name + ": the file is not scaled")
    data = np.asarray(back.get_fdata(), dtype=np.float64)
    volumes = int(np.prod(data.shape[3:], dtype=np.int64))
    first = data.reshape(data.shape[:3] + (-1,), order="F")[..., 0].copy()
    bad = ~np.isfinite(first)
    first[bad] = 0
    # With no transform, ReadNIfTI uses the voxel sizes alone (NIfTI's method 1); nibabel's
    # affine centres the grid instead.
    if c.get("no_transform"):
        if back.header["sform_code"] != 0 or back.header["qform_code"] != 0:
            raise SystemExit(name + ": the file has a transform")
        go_affine = np.diag(list(back.header.get_zooms()[:3]) + [1.0])
    else:
        go_affine = back.affine
    res, inside = trilinear(first, go_affine, world)
    first.astype("<f8").ravel(order="C").tofile(os.path.join(out_dir, name + ".data"))
    res.astype("<f8").tofile(os.path.join(out_dir, name + ".resampled"))
    out[name] = {
        "path": path, "shape": list(first.shape), "affine": go_affine.tolist(),
        "transform": "qform" if c.get("qform_only") else ("" if c.get("no_transform") else "sform"),
        "volumes": volumes, "nonfinite": int(bad.sum()), "inside": inside, "mask": len(world),
        "slope": float(s), "inter": float(i), "magic": bytes(back.header["magic"]).decode().strip("\x00"),
    }
print(json.dumps(out))
`

type resampleCase struct {
	Path      string
	Shape     []int
	Affine    [4][4]float64
	Transform string
	Volumes   int
	NonFinite int
	Inside    int
	Mask      int
	Slope     float64
	Inter     float64
	Magic     string
}

func readFloat64s(t *testing.T, path string) []float64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(raw)/8)
	for n := range out {
		out[n] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*n:]))
	}
	return out
}

// closeTo reports the first index where got and want differ by more than tol relative to
// max(|want|, 1), or -1.
func closeTo[T float32 | float64](got []T, want []float64, tol float64) int {
	for n := range want {
		if !(math.Abs(float64(got[n])-want[n]) <= tol*max(math.Abs(want[n]), 1)) {
			return n
		}
	}
	return -1
}

// TestResampleNibabel reads files that nibabel wrote on many grids and checks both what is read
// and what is resampled against nibabel and numpy.
func TestResampleNibabel(t *testing.T) {
	t.Parallel()
	requireNibabel(t)
	m := mustMask(t)
	dir := t.TempDir()
	var cases map[string]resampleCase
	if err := json.Unmarshal(runPython(t, resampleScript, dir, sharedMask), &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) != 20 {
		t.Fatalf("the script wrote %d files, want 20", len(cases))
	}
	for name, want := range cases {
		// Not parallel: the 1 mm volume alone is 60 MB of float64.
		t.Run(name, func(t *testing.T) {
			v, err := ReadNIfTIFile(want.Path)
			if err != nil {
				t.Fatal(err)
			}
			if want.Magic != map[bool]string{false: "n+1", true: "n+2"}[strings.HasPrefix(name, "nifti2") || strings.Contains(name, "_nifti2_")] {
				t.Fatalf("nibabel wrote magic %q: the case is not what its name says", want.Magic)
			}
			got := resampleCase{Path: want.Path, Shape: v.Dims[:], Affine: v.Affine, Transform: v.Transform,
				Volumes: v.Volumes, NonFinite: v.NonFinite, Mask: m.Len(), Slope: want.Slope, Inter: want.Inter, Magic: want.Magic}
			values, st, err := ResampleToMask(v, m)
			if err != nil {
				t.Fatal(err)
			}
			got.Inside = st.Inside
			if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-5)); diff != "" {
				t.Errorf("(-nibabel +ReadNIfTI):\n%s", diff)
			}

			data := readFloat64s(t, filepath.Join(dir, name+".data"))
			if len(data) != len(v.Data) {
				t.Fatalf("%d values, nibabel has %d", len(v.Data), len(data))
			}
			if n := closeTo(v.Data, data, 1e-5); n >= 0 {
				t.Errorf("voxel %d (C order) = %v, nibabel reads %v", n, v.Data[n], data[n])
			}

			ref := readFloat64s(t, filepath.Join(dir, name+".resampled"))
			if n := closeTo(values, ref, 1e-5); n >= 0 {
				i, j, k := Coords(int(m.Voxels[n]))
				t.Errorf("mask voxel %d at MNI %v = %v, numpy's trilinear gives %v", n, VoxelToMNI(i, j, k), values[n], ref[n])
			}
			if st.Voxels != m.Len() || st.Nonzero == 0 || st.NonFinite != 0 || st.Min >= st.Max {
				t.Errorf("stats %+v", st)
			}
			if name == "mni4mm_float64" {
				// On the prediction grid itself, resampling is the identity.
				for p, idx := range m.Voxels {
					if values[p] != float32(v.Data[idx]) {
						t.Fatalf("mask voxel %d = %v, the image has %v there", p, values[p], v.Data[idx])
					}
				}
			}
		})
	}
	// The cases cover what they claim: a partial field of view and a full one.
	if c := cases["partial_fov_float32"]; c.Inside == 0 || c.Inside >= c.Mask/2 {
		t.Errorf("partial field of view covers %d of %d mask voxels", c.Inside, c.Mask)
	}
	if c := cases["mni2mm_float32"]; c.Inside != c.Mask {
		t.Errorf("the 2 mm MNI grid covers %d of %d mask voxels", c.Inside, c.Mask)
	}
}

// linearVolume fills a volume with f(x, y, z) = x + 2y − z of each voxel centre's world position.
func linearVolume(dims [3]int, affine [4][4]float64) *Volume {
	v := &Volume{Dims: dims, Affine: affine, Data: make([]float64, dims[0]*dims[1]*dims[2])}
	for i := range dims[0] {
		for j := range dims[1] {
			for k := range dims[2] {
				var p [3]float64
				for r := range 3 {
					p[r] = affine[r][0]*float64(i) + affine[r][1]*float64(j) + affine[r][2]*float64(k) + affine[r][3]
				}
				v.Data[(i*dims[1]+j)*dims[2]+k] = p[0] + 2*p[1] - p[2]
			}
		}
	}
	return v
}

// rotation returns the rotation by the given angles (degrees) about x, then y, then z.
func rotation(ax, ay, az float64) [3][3]float64 {
	c := func(d float64) float64 { return math.Cos(d * math.Pi / 180) }
	s := func(d float64) float64 { return math.Sin(d * math.Pi / 180) }
	rx := [3][3]float64{{1, 0, 0}, {0, c(ax), -s(ax)}, {0, s(ax), c(ax)}}
	ry := [3][3]float64{{c(ay), 0, s(ay)}, {0, 1, 0}, {-s(ay), 0, c(ay)}}
	rz := [3][3]float64{{c(az), -s(az), 0}, {s(az), c(az), 0}, {0, 0, 1}}
	mul := func(a, b [3][3]float64) (m [3][3]float64) {
		for r := range 3 {
			for col := range 3 {
				for q := range 3 {
					m[r][col] += a[r][q] * b[q][col]
				}
			}
		}
		return m
	}
	return mul(rz, mul(ry, rx))
}

// TestResampleLinearFunction checks placement without any reference implementation: trilinear
// interpolation reproduces a linear function of position exactly, whatever the grid's
// orientation, so every mask voxel well inside the image must get f at its own MNI position.
// The files go through ReadNIfTI, so that the header's affine is what places them.
func TestResampleLinearFunction(t *testing.T) {
	t.Parallel()
	m := mustMask(t)
	r := rotation(12, -8, 20)
	var oblique [4][4]float64
	sizes := [3]float64{2.5, 3, 2}
	for row := range 3 {
		for col := range 3 {
			oblique[row][col] = r[row][col] * sizes[col]
		}
	}
	// Centre the 90×90×100 grid near the brain's centre.
	for row := range 3 {
		oblique[row][3] = [3]float64{0, -18, 18}[row] - (oblique[row][0]*44.5 + oblique[row][1]*44.5 + oblique[row][2]*49.5)
	}
	oblique[3][3] = 1
	testCases := []struct {
		name   string
		dims   [3]int
		affine [4][4]float64
	}{
		{"2 mm MNI", [3]int{91, 109, 91}, [4][4]float64{{2, 0, 0, -90}, {0, 2, 0, -126}, {0, 0, 2, -72}, {0, 0, 0, 1}}},
		{"2 mm flipped x", [3]int{91, 109, 91}, [4][4]float64{{-2, 0, 0, 90}, {0, 2, 0, -126}, {0, 0, 2, -72}, {0, 0, 0, 1}}},
		// Axes permuted and flipped, as in a coronal acquisition: i → −y, j → z, k → x.
		{"3 mm permuted axes", [3]int{75, 65, 63}, [4][4]float64{{0, 0, 3, -93}, {-3, 0, 0, 96}, {0, 3, 0, -80}, {0, 0, 0, 1}}},
		{"oblique", [3]int{90, 90, 100}, oblique},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lin := linearVolume(tc.dims, tc.affine)
			raw := testImage{dims: tc.dims, datatype: 64, values: lin.Data, edit: func(h *header) {
				// float32 cannot hold these affines exactly; the check below uses what was read.
				for c := range 4 {
					h.SrowX[c], h.SrowY[c], h.SrowZ[c] = float32(tc.affine[0][c]), float32(tc.affine[1][c]), float32(tc.affine[2][c])
				}
			}}.encode(t)
			v, err := ReadNIfTI(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			// The values were computed with the float64 affine; recompute them with the one read.
			v.Data = linearVolume(v.Dims, v.Affine).Data
			values, st, err := ResampleToMask(v, m)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := newSampler(v)
			checked := 0
			for p, idx := range m.Voxels {
				i, j, k := Coords(int(idx))
				q := VoxelToMNI(i, j, k)
				c := s.voxel(q)
				// Beyond the outermost centres the edge value holds, which is not linear.
				interior := true
				for a := range 3 {
					interior = interior && c[a] >= 0 && c[a] <= float64(tc.dims[a]-1)
				}
				if !interior {
					continue
				}
				checked++
				if want := q[0] + 2*q[1] - q[2]; math.Abs(float64(values[p])-want) > 1e-4*max(math.Abs(want), 1) {
					t.Fatalf("mask voxel at MNI %v = %v, want %v", q, values[p], want)
				}
			}
			if checked < m.Len()*3/4 {
				t.Errorf("only %d of %d mask voxels are inside the grid: the test checks too little", checked, m.Len())
			}
			if st.Inside < checked {
				t.Errorf("Inside = %d, but %d voxels are inside the grid", st.Inside, checked)
			}
		})
	}
}

func TestResampleToMaskErrors(t *testing.T) {
	t.Parallel()
	m := mustMask(t)
	mni2 := [4][4]float64{{2, 0, 0, -90}, {0, 2, 0, -126}, {0, 0, 2, -72}, {0, 0, 0, 1}}
	dims2 := [3]int{91, 109, 91}
	filled := func(f func(n int) float64) []float64 {
		d := make([]float64, dims2[0]*dims2[1]*dims2[2])
		for n := range d {
			d[n] = f(n)
		}
		return d
	}
	// Non-zero only in the corners of the 2 mm grid, outside the brain.
	outsideBrain := &Volume{Dims: dims2, Affine: mni2, Data: filled(func(n int) float64 {
		if n < 10 || n >= dims2[0]*dims2[1]*dims2[2]-10 {
			return 5
		}
		return 0
	})}
	testCases := []struct {
		name    string
		v       *Volume
		mask    *Mask
		wantErr error
		want    string
	}{
		{"singular affine", &Volume{Dims: dims2, Data: filled(func(int) float64 { return 1 })}, m, ErrSingularAffine, "cannot be inverted"},
		{"rank-deficient affine", &Volume{Dims: dims2, Data: filled(func(int) float64 { return 1 }),
			Affine: [4][4]float64{{2, 2, 0, 0}, {1, 1, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 1}}}, m, ErrSingularAffine, "cannot be inverted"},
		{"NaN affine", &Volume{Dims: dims2, Data: filled(func(int) float64 { return 1 }),
			Affine: [4][4]float64{{math.NaN(), 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 1}}}, m, ErrSingularAffine, "cannot be inverted"},
		{"far from the brain", &Volume{Dims: dims2, Data: filled(func(n int) float64 { return float64(n) }),
			Affine: [4][4]float64{{2, 0, 0, 1000}, {0, 2, 0, -126}, {0, 0, 2, -72}, {0, 0, 0, 1}}}, m, ErrNoOverlap,
			"nifti: the image does not cover the brain: none of the 28542 brain voxels is inside its field of view (x 999 to 1181, y -127 to 91, z -73 to 109 mm); is it in MNI space?"},
		{"in native space", &Volume{Dims: [3]int{64, 64, 30}, Data: make([]float64, 64*64*30),
			Affine: [4][4]float64{{3, 0, 0, 0}, {0, 3, 0, 200}, {0, 0, 4, 0}, {0, 0, 0, 1}}}, m, ErrNoOverlap, "is it in MNI space?"},
		{"all zero", &Volume{Dims: dims2, Affine: mni2, Data: filled(func(int) float64 { return 0 })}, m, ErrZeroMap,
			"nifti: the map is zero everywhere in the brain: its 28542 voxels inside the brain mask are all 0"},
		{"zero in the brain", outsideBrain, m, ErrZeroMap, "zero everywhere in the brain"},
		{"zero where it covers the brain", &Volume{Dims: [3]int{10, 10, 10}, Data: make([]float64, 1000),
			Affine: [4][4]float64{{4, 0, 0, -20}, {0, 4, 0, -40}, {0, 0, 4, 0}, {0, 0, 0, 1}}}, m, ErrZeroMap,
			"are all 0, and the other"},
		{"constant", &Volume{Dims: dims2, Affine: mni2, Data: filled(func(int) float64 { return 1 })}, m, ErrConstantMap,
			"nifti: the map has the same value everywhere in the brain (1): there is no pattern to decode"},
		{"nil volume", nil, m, nil, "brain: ResampleToMask: nil volume or mask"},
		{"nil mask", &Volume{Dims: dims2, Affine: mni2, Data: filled(func(int) float64 { return 1 })}, nil, nil, "nil volume or mask"},
		{"data does not match dims", &Volume{Dims: dims2, Affine: mni2, Data: make([]float64, 10)}, m, nil,
			"brain: ResampleToMask: volume has 10 values for 91×109×91 voxels"},
		{"zero dims", &Volume{Affine: mni2}, m, nil, "volume has 0 values for 0×0×0 voxels"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			values, _, err := ResampleToMask(tc.v, tc.mask)
			if err == nil {
				t.Fatalf("ResampleToMask = %d values, want an error", len(values))
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q is not %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if values != nil {
				t.Errorf("%d values with an error", len(values))
			}
		})
	}
}

func TestResampleToMaskStats(t *testing.T) {
	t.Parallel()
	m := mustMask(t)
	// A 10 mm grid with a few large voxels over the left hemisphere only (x < 0), values 1 to n,
	// and one NaN that a Volume built in memory may hold.
	dims := [3]int{9, 22, 19}
	v := &Volume{Dims: dims, Affine: [4][4]float64{{10, 0, 0, -85}, {0, 10, 0, -120}, {0, 0, 10, -70}, {0, 0, 0, 1}},
		Data: make([]float64, dims[0]*dims[1]*dims[2])}
	for n := range v.Data {
		v.Data[n] = float64(n + 1)
	}
	values, st, err := ResampleToMask(v, m)
	if err != nil {
		t.Fatal(err)
	}
	wantInside := 0
	for _, idx := range m.Voxels {
		i, _, _ := Coords(int(idx))
		// The grid ends at x = −85 + 8.5·10 = 0 mm.
		if VoxelToMNI(i, 0, 0)[0] <= 0 {
			wantInside++
		}
	}
	if st.Voxels != m.Len() || st.Inside != wantInside || st.Nonzero != wantInside || st.NonFinite != 0 || st.Min != 0 {
		t.Errorf("stats %+v, want Voxels %d, Inside = Nonzero = %d, NonFinite 0, Min 0", st, m.Len(), wantInside)
	}
	if len(values) != m.Len() {
		t.Fatalf("%d values", len(values))
	}

	v.Data[(4*dims[1]+10)*dims[2]+9] = math.NaN()
	_, st, err = ResampleToMask(v, m)
	if err != nil {
		t.Fatal(err)
	}
	// Mask voxels within one 10 mm voxel of the NaN's centre on each axis: at most 6 a side.
	if st.NonFinite == 0 || st.NonFinite > 6*6*6 {
		t.Errorf("NonFinite = %d, want the mask voxels around one NaN voxel", st.NonFinite)
	}
}

func BenchmarkResample2mm(b *testing.B) {
	m := mustMask(b)
	v := linearVolume([3]int{91, 109, 91}, [4][4]float64{{2, 0, 0, -90}, {0, 2, 0, -126}, {0, 0, 2, -72}, {0, 0, 0, 1}})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ResampleToMask(v, m); err != nil {
			b.Fatal(err)
		}
	}
}
