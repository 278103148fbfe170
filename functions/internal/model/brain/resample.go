package brain

import (
	"errors"
	"fmt"
	"math"
)

// Why ResampleToMask refuses an image. They are returned wrapped with the details of the image
// (test with errors.Is); their text is written for the person who uploaded it.
var (
	// ErrSingularAffine: the image's voxel → world transform cannot be inverted, so no world
	// position has a voxel.
	ErrSingularAffine = errors.New("nifti: the image's voxel-to-world transform cannot be inverted, so its voxels have no position in the brain")
	// ErrNoOverlap: no mask voxel lies within the image's field of view.
	ErrNoOverlap = errors.New("nifti: the image does not cover the brain")
	// ErrZeroMap: the resampled map is 0 at every mask voxel.
	ErrZeroMap = errors.New("nifti: the map is zero everywhere in the brain")
	// ErrConstantMap: the resampled map has one non-zero value at every mask voxel.
	ErrConstantMap = errors.New("nifti: the map has the same value everywhere in the brain")
)

// ResampleStats describes how an image met the mask in ResampleToMask.
type ResampleStats struct {
	// Voxels is the number of mask voxels: the length of the map.
	Voxels int
	// Inside is how many of them lie within the image's field of view; the others are 0.
	Inside int
	// Nonzero is how many have a non-zero value.
	Nonzero int
	// NonFinite is how many came out NaN or ±Inf and were set to 0: a Volume built in memory
	// with such values (ReadNIfTI removes them), or values beyond float32's range.
	NonFinite int
	// Min and Max are the map's smallest and largest values over the mask.
	Min, Max float32
}

// ResampleToMask puts an image on the prediction grid: for each mask voxel, in mask order, the
// trilinear value of v at that voxel's world (MNI mm) position. Working in world coordinates
// through v's affine is what lands images of any voxel size, orientation or field of view in the
// right place; positions outside v's field of view (beyond half a voxel from its outermost
// centres) are 0. The world is assumed to be MNI space: nothing in a NIfTI file proves it. Nor
// is v.Transform looked at, since volumes built in memory have none: a caller refuses a file
// without a transform itself (ErrNoTransform).
//
// The errors are ErrSingularAffine, ErrNoOverlap, ErrZeroMap and ErrConstantMap, wrapped, and
// errors for arguments no file can produce (nil, or Data that does not match Dims). The stats
// are filled in as far as the resampling went, on error too.
func ResampleToMask(v *Volume, m *Mask) ([]float32, ResampleStats, error) {
	var st ResampleStats
	switch {
	case v == nil || m == nil:
		return nil, st, errors.New("brain: ResampleToMask: nil volume or mask")
	case v.Dims[0] < 1 || v.Dims[1] < 1 || v.Dims[2] < 1 || len(v.Data) != v.Dims[0]*v.Dims[1]*v.Dims[2]:
		return nil, st, fmt.Errorf("brain: ResampleToMask: volume has %d values for %d×%d×%d voxels",
			len(v.Data), v.Dims[0], v.Dims[1], v.Dims[2])
	}
	st.Voxels = m.Len()
	s, ok := newSampler(v)
	if !ok {
		return nil, st, fmt.Errorf("%w (affine %v)", ErrSingularAffine, v.Affine)
	}

	// The mask voxels are a regular grid, so their voxel coordinates in v are an affine function
	// of (i, j, k): composing the two transforms once leaves three multiply-adds per axis.
	var g [3][4]float64
	for r := range 3 {
		for c := range 4 {
			g[r][c] = s.inv[r][0]*Affine[0][c] + s.inv[r][1]*Affine[1][c] + s.inv[r][2]*Affine[2][c]
		}
		g[r][3] += s.inv[r][3]
	}

	out := make([]float32, st.Voxels)
	st.Min, st.Max = float32(math.Inf(1)), float32(math.Inf(-1))
	for p, idx := range m.Voxels {
		i, j, k := Coords(int(idx))
		fi, fj, fk := float64(i), float64(j), float64(k)
		var c [3]float64
		for r := range 3 {
			c[r] = g[r][0]*fi + g[r][1]*fj + g[r][2]*fk + g[r][3]
		}
		x, in := s.at(c, Trilinear)
		if in {
			st.Inside++
		}
		f := float32(x)
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			f = 0
			st.NonFinite++
		}
		if f != 0 {
			st.Nonzero++
		}
		st.Min, st.Max = min(st.Min, f), max(st.Max, f)
		out[p] = f
	}

	switch {
	case st.Inside == 0:
		lo, hi := fieldOfView(v)
		return nil, st, fmt.Errorf("%w: none of the %d brain voxels is inside its field of view "+
			"(x %.0f to %.0f, y %.0f to %.0f, z %.0f to %.0f mm); is it in MNI space?",
			ErrNoOverlap, st.Voxels, lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
	case st.Nonzero == 0:
		err := fmt.Errorf("%w: its %d voxels inside the brain mask are all 0", ErrZeroMap, st.Inside)
		if out := st.Voxels - st.Inside; out > 0 {
			err = fmt.Errorf("%w, and the other %d mask voxels are outside its field of view", err, out)
		}
		return nil, st, err
	case st.Min == st.Max:
		return nil, st, fmt.Errorf("%w (%g): there is no pattern to decode", ErrConstantMap, st.Min)
	}
	return out, st, nil
}

// fieldOfView returns the world bounding box of the volume's voxels, edges included, for
// messages.
func fieldOfView(v *Volume) (lo, hi [3]float64) {
	lo = [3]float64{math.Inf(1), math.Inf(1), math.Inf(1)}
	hi = [3]float64{math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	for corner := range 8 {
		var c [3]float64
		for a := range 3 {
			c[a] = -0.5
			if corner&(1<<a) != 0 {
				c[a] = float64(v.Dims[a]) - 0.5
			}
		}
		for r := range 3 {
			w := v.Affine[r][0]*c[0] + v.Affine[r][1]*c[1] + v.Affine[r][2]*c[2] + v.Affine[r][3]
			lo[r], hi[r] = min(lo[r], w), max(hi[r], w)
		}
	}
	return lo, hi
}
