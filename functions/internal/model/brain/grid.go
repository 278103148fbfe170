// Package brain holds the 4 mm MNI grid that every model of this project predicts on, the brain
// mask, and what is done with a map on that grid: NIfTI input and output, Gaussian blur, peak
// finding and the preview picture.
package brain

import (
	"fmt"
	"math"
)

// The prediction grid: 46×55×46 voxels of 4 mm, the grid of Text2Brain and NeuroQuery.
const (
	NX = 46
	NY = 55
	NZ = 46
	// NVoxels is the number of voxels in the whole volume.
	NVoxels = NX * NY * NZ
	// VoxelSize is the edge of a voxel in millimetres.
	VoxelSize = 4.0
)

// Dims are the grid's dimensions, in the order of the affine's axes.
var Dims = [3]int{NX, NY, NZ}

// Origin is the MNI position (mm) of voxel (0, 0, 0).
var Origin = [3]float64{-90, -126, -72}

// Affine is the voxel → MNI mm transform of the grid (row-major 4×4).
var Affine = [4][4]float64{
	{VoxelSize, 0, 0, Origin[0]},
	{0, VoxelSize, 0, Origin[1]},
	{0, 0, VoxelSize, Origin[2]},
	{0, 0, 0, 1},
}

// Index is the C-order (k fastest) flat index of voxel (i, j, k): the order of mask vectors.
func Index(i, j, k int) int { return (i*NY+j)*NZ + k }

// Coords inverts Index.
func Coords(idx int) (i, j, k int) {
	k = idx % NZ
	j = (idx / NZ) % NY
	i = idx / (NY * NZ)
	return i, j, k
}

// VoxelToMNI returns the MNI position (mm) of voxel (i, j, k).
func VoxelToMNI(i, j, k int) [3]float64 {
	return [3]float64{
		VoxelSize*float64(i) + Origin[0],
		VoxelSize*float64(j) + Origin[1],
		VoxelSize*float64(k) + Origin[2],
	}
}

// MNIToVoxel maps an MNI position (mm) to the voxel that contains it, with the single rounding
// rule of this project: floor((x − origin) / 4). ok is false outside the volume.
func MNIToVoxel(x, y, z float64) (i, j, k int, ok bool) {
	i = int(math.Floor((x - Origin[0]) / VoxelSize))
	j = int(math.Floor((y - Origin[1]) / VoxelSize))
	k = int(math.Floor((z - Origin[2]) / VoxelSize))
	ok = i >= 0 && i < NX && j >= 0 && j < NY && k >= 0 && k < NZ
	return i, j, k, ok
}

// Mask is the set of brain voxels a map is predicted on. Mask order is C order over the volume.
type Mask struct {
	// Voxels holds, for each mask position, the C-order volume index of its voxel.
	Voxels []int32
	// position maps a volume index to its mask position, or -1 outside the mask.
	position []int32
}

// NewMask builds a mask from a C-order volume where non-zero values are brain.
func NewMask(inBrain []bool) (*Mask, error) {
	if len(inBrain) != NVoxels {
		return nil, fmt.Errorf("brain: mask has %d voxels, want %d (%d×%d×%d)", len(inBrain), NVoxels, NX, NY, NZ)
	}
	m := &Mask{position: make([]int32, NVoxels)}
	for idx, in := range inBrain {
		m.position[idx] = -1
		if in {
			m.position[idx] = int32(len(m.Voxels))
			m.Voxels = append(m.Voxels, int32(idx))
		}
	}
	if len(m.Voxels) == 0 {
		return nil, fmt.Errorf("brain: mask is empty")
	}
	return m, nil
}

// Len is the number of voxels in the mask.
func (m *Mask) Len() int { return len(m.Voxels) }

// Position returns the mask position of a C-order volume index, or -1 outside the mask.
func (m *Mask) Position(idx int) int { return int(m.position[idx]) }

// Contains reports whether a C-order volume index is in the mask.
func (m *Mask) Contains(idx int) bool { return m.position[idx] >= 0 }

// ToVolume spreads a mask-order vector over a C-order volume, zero outside the mask.
func (m *Mask) ToVolume(values []float32) []float64 {
	vol := make([]float64, NVoxels)
	for p, idx := range m.Voxels {
		vol[idx] = float64(values[p])
	}
	return vol
}

// FromVolume gathers the mask voxels of a C-order volume.
func (m *Mask) FromVolume(vol []float64) []float64 {
	out := make([]float64, len(m.Voxels))
	for p, idx := range m.Voxels {
		out[p] = vol[idx]
	}
	return out
}
