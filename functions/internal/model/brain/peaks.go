package brain

import (
	"fmt"
	"sort"
)

// Peak is a local maximum of a map, reported to users as a coordinate they can look up.
type Peak struct {
	MNI [3]float64 `json:"mni"`
	Z   float64    `json:"z"`
}

// Peaks returns up to n of the strongest local maxima of the positive part of a mask-order map.
// A maximum is a mask voxel whose value is > 0 and ≥ every neighbour (26-connectivity) that is in
// the mask. They come strongest first, ties in volume order so that the result is reproducible;
// a maximum closer than minDistanceMM to one already reported is skipped, so that one blob is
// reported once. The result is never nil, so that it encodes as a JSON array.
// len(values) must be m.Len(); anything else is a programming error and panics.
func Peaks(m *Mask, values []float32, n int, minDistanceMM float64) []Peak {
	if len(values) != m.Len() {
		panic(fmt.Sprintf("brain: Peaks: %d values for a mask of %d voxels", len(values), m.Len()))
	}
	peaks := []Peak{}
	if n <= 0 {
		return peaks
	}

	var candidates []int // mask positions
	for p, idx := range m.Voxels {
		x := values[p]
		if !(x > 0) {
			continue
		}
		if isLocalMax(m, values, int(idx), x) {
			candidates = append(candidates, p)
		}
	}
	// Mask positions follow volume order, so a stable sort on value keeps ties in volume order.
	sort.SliceStable(candidates, func(a, b int) bool { return values[candidates[a]] > values[candidates[b]] })

	minSq := minDistanceMM * minDistanceMM
	for _, p := range candidates {
		if len(peaks) == n {
			break
		}
		i, j, k := Coords(int(m.Voxels[p]))
		pos := VoxelToMNI(i, j, k)
		near := false
		for _, q := range peaks {
			dx, dy, dz := pos[0]-q.MNI[0], pos[1]-q.MNI[1], pos[2]-q.MNI[2]
			if dx*dx+dy*dy+dz*dz < minSq {
				near = true
				break
			}
		}
		if !near {
			peaks = append(peaks, Peak{MNI: pos, Z: float64(values[p])})
		}
	}
	return peaks
}

// isLocalMax compares a voxel with its in-mask neighbours. NaN neighbours carry no information
// and do not prevent a maximum.
func isLocalMax(m *Mask, values []float32, idx int, x float32) bool {
	i, j, k := Coords(idx)
	for di := -1; di <= 1; di++ {
		for dj := -1; dj <= 1; dj++ {
			for dk := -1; dk <= 1; dk++ {
				ni, nj, nk := i+di, j+dj, k+dk
				if (di == 0 && dj == 0 && dk == 0) || ni < 0 || ni >= NX || nj < 0 || nj >= NY || nk < 0 || nk >= NZ {
					continue
				}
				q := m.Position(Index(ni, nj, nk))
				if q >= 0 && values[q] > x {
					return false
				}
			}
		}
	}
	return true
}
