package brain

import "math"

// BlurFWHM is the smoothing of article maps: a 9 mm FWHM Gaussian (Text2Brain, NeuroQuery).
const BlurFWHM = 9.0

// BlurSigma is BlurFWHM as a standard deviation in voxels of the 4 mm grid (≈ 0.9555).
var BlurSigma = BlurFWHM / (2 * math.Sqrt(2*math.Ln2)) / VoxelSize

// Kernel is a normalised 1D Gaussian truncated at 4σ, with scipy.ndimage's radius rule
// (int(4σ + 0.5)), so that results match the reference implementation of NeuroQuery.
type Kernel struct {
	Radius  int
	Weights []float64 // Weights[k+Radius] is the weight of offset k
}

// NewKernel builds the kernel for a standard deviation in voxels.
func NewKernel(sigma float64) Kernel {
	r := int(4*sigma + 0.5)
	w := make([]float64, 2*r+1)
	var sum float64
	for k := -r; k <= r; k++ {
		w[k+r] = math.Exp(-float64(k*k) / (2 * sigma * sigma))
		sum += w[k+r]
	}
	for i := range w {
		w[i] /= sum
	}
	return Kernel{Radius: r, Weights: w}
}

// reflect maps an index outside [0, n) back inside by half-sample symmetry (d c b a | a b c d),
// scipy.ndimage's "reflect" mode.
func reflect(i, n int) int {
	for i < 0 || i >= n {
		if i < 0 {
			i = -i - 1
		}
		if i >= n {
			i = 2*n - i - 1
		}
	}
	return i
}

// Response1D returns the blurred 1D signal of a unit impulse at position p on an axis of length n.
// It is exact at the edges: with reflection, mass that would leave the axis folds back.
func (kn Kernel) Response1D(p, n int) []float64 {
	out := make([]float64, n)
	for o := 0; o < n; o++ {
		for k := -kn.Radius; k <= kn.Radius; k++ {
			if reflect(o+k, n) == p {
				out[o] += kn.Weights[k+kn.Radius]
			}
		}
	}
	return out
}

// Blur3D smooths a C-order volume of the prediction grid in place, one axis after another.
func (kn Kernel) Blur3D(vol []float64) {
	dims := Dims
	strides := [3]int{NY * NZ, NZ, 1}
	line := make([]float64, 0, NY)
	buf := make([]float64, 0, NY)
	for axis := 0; axis < 3; axis++ {
		n, stride := dims[axis], strides[axis]
		line, buf = line[:n], buf[:n]
		// Visit every line along this axis: its start is any index whose axis coordinate is 0.
		for start := 0; start < NVoxels; start++ {
			if (start/stride)%n != 0 {
				continue
			}
			for t := 0; t < n; t++ {
				line[t] = vol[start+t*stride]
			}
			for o := 0; o < n; o++ {
				var s float64
				for k := -kn.Radius; k <= kn.Radius; k++ {
					s += kn.Weights[k+kn.Radius] * line[reflect(o+k, n)]
				}
				buf[o] = s
			}
			for t := 0; t < n; t++ {
				vol[start+t*stride] = buf[t]
			}
		}
	}
}
