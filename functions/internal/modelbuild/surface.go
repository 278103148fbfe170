package modelbuild

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"sort"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/gifti"
)

// ribbonSamples is how many positions through the cortical ribbon a vertex's value averages:
// the pial surface, halfway, and the white-matter surface.
const ribbonSamples = 3

// SurfaceSampling reads the fsaverage5 meshes in dir (pial_{left,right}.gii.gz and
// white_{left,right}.gii.gz) and returns where a map is sampled for each vertex. A hemisphere
// without its white surface (the shared data has no white_right) gets one estimated from its pial
// surface: moved inward along the vertex normals by the median cortical thickness of the
// hemispheres that have both, which EstimateWhite's test measures against the real left white
// surface.
func SurfaceSampling(dir string) (*brain.Surface, error) {
	s := &brain.Surface{Mesh: "fsaverage5"}
	var pial [2]*gifti.Mesh
	var white [2]*gifti.Mesh
	for i, hemi := range []string{"left", "right"} {
		var err error
		if pial[i], err = gifti.ReadFile(filepath.Join(dir, "pial_"+hemi+".gii.gz")); err != nil {
			return nil, fmt.Errorf("model build: surface: %w", err)
		}
		w, err := gifti.ReadFile(filepath.Join(dir, "white_"+hemi+".gii.gz"))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("model build: surface: %w", err)
		case len(w.Points) != len(pial[i].Points):
			return nil, fmt.Errorf("model build: surface: %s white surface has %d vertices, pial %d", hemi, len(w.Points), len(pial[i].Points))
		default:
			white[i] = w
		}
	}
	var thickness []float64
	for i := range pial {
		if white[i] != nil {
			for v, p := range pial[i].Points {
				thickness = append(thickness, dist(p, white[i].Points[v]))
			}
		}
	}
	if len(thickness) == 0 {
		return nil, fmt.Errorf("model build: surface: no white surface in %s", dir)
	}
	t := median(thickness)
	for i, hemi := range []string{"left", "right"} {
		w := white[i]
		if w == nil {
			w = EstimateWhite(pial[i], t)
		}
		h := brain.Hemisphere{Name: hemi, Samples: ribbonSamples}
		for v, p := range pial[i].Points {
			q := w.Points[v]
			for k := range ribbonSamples {
				f := float32(k) / float32(ribbonSamples-1)
				h.Points = append(h.Points, [3]float32{p[0] + f*(q[0]-p[0]), p[1] + f*(q[1]-p[1]), p[2] + f*(q[2]-p[2])})
			}
		}
		s.Hemispheres[i] = h
	}
	return s, nil
}

// surfaceFile is SurfaceSampling's result as the bundle stores it.
func surfaceFile(dir string) ([]byte, error) {
	s, err := SurfaceSampling(dir)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// EstimateWhite moves each vertex of a pial mesh inward, along its normal (the area-weighted mean
// of its triangles' normals, oriented away from the mesh's centre), by thickness mm.
func EstimateWhite(pial *gifti.Mesh, thickness float64) *gifti.Mesh {
	n := make([][3]float64, len(pial.Points))
	for _, t := range pial.Triangles {
		a, b, c := pial.Points[t[0]], pial.Points[t[1]], pial.Points[t[2]]
		u := [3]float64{float64(b[0] - a[0]), float64(b[1] - a[1]), float64(b[2] - a[2])}
		w := [3]float64{float64(c[0] - a[0]), float64(c[1] - a[1]), float64(c[2] - a[2])}
		// The cross product's length is twice the triangle's area: the weighting.
		cr := [3]float64{u[1]*w[2] - u[2]*w[1], u[2]*w[0] - u[0]*w[2], u[0]*w[1] - u[1]*w[0]}
		for _, v := range t {
			for k := range 3 {
				n[v][k] += cr[k]
			}
		}
	}
	var centre [3]float64
	for _, p := range pial.Points {
		for k := range 3 {
			centre[k] += float64(p[k]) / float64(len(pial.Points))
		}
	}
	// Triangle winding decides the normals' sign: orient them so that most point outward.
	var outward float64
	for v, p := range pial.Points {
		for k := range 3 {
			outward += (float64(p[k]) - centre[k]) * n[v][k]
		}
	}
	sign := 1.0
	if outward < 0 {
		sign = -1
	}
	out := &gifti.Mesh{Points: make([][3]float32, len(pial.Points)), Triangles: pial.Triangles}
	for v, p := range pial.Points {
		l := math.Sqrt(n[v][0]*n[v][0] + n[v][1]*n[v][1] + n[v][2]*n[v][2])
		if l == 0 {
			out.Points[v] = p
			continue
		}
		for k := range 3 {
			out.Points[v][k] = p[k] - float32(sign*thickness*n[v][k]/l)
		}
	}
	return out
}

func dist(a, b [3]float32) float64 {
	dx, dy, dz := float64(a[0]-b[0]), float64(a[1]-b[1]), float64(a[2]-b[2])
	return math.Sqrt(dx*dx + dy*dy + dz*dz)
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
