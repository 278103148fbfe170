package brain

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Surface holds where a map is sampled for each vertex of a template's cortical meshes (fsaverage5,
// left and right hemisphere): a few positions (MNI mm) through the cortical ribbon, from the pial
// surface to the white-matter surface. A vertex's value is the mean of the map at its positions,
// so that the pial and the inflated mesh (one vertex order) show the same values.
type Surface struct {
	// Mesh names the template, e.g. "fsaverage5".
	Mesh        string
	Hemispheres [2]Hemisphere
}

// Hemisphere is one hemisphere's sampling positions: Samples positions per vertex, vertex-major.
type Hemisphere struct {
	Name    string
	Samples int
	Points  [][3]float32
}

// Vertices is the number of vertices of the hemisphere.
func (h *Hemisphere) Vertices() int {
	if h.Samples == 0 {
		return 0
	}
	return len(h.Points) / h.Samples
}

const surfaceMagic = "T2BSURF1"

// WriteTo writes the surface in the bundle's binary form: the magic, the mesh name, then for each
// hemisphere its name, vertex and sample counts and the positions, little-endian float32.
func (s *Surface) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	cw := &countingWriter{w: bw}
	put := func(v any) {
		if cw.err == nil {
			cw.err = binary.Write(cw, binary.LittleEndian, v)
		}
	}
	str := func(v string) {
		put(uint32(len(v)))
		put([]byte(v))
	}
	put([]byte(surfaceMagic))
	str(s.Mesh)
	for _, h := range s.Hemispheres {
		str(h.Name)
		put(uint32(h.Vertices()))
		put(uint32(h.Samples))
		put(h.Points)
	}
	if cw.err == nil {
		cw.err = bw.Flush()
	}
	return cw.n, cw.err
}

type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// maxSurfaceVertices bounds what ReadSurface allocates (fsaverage, the largest template, has 163,842).
const maxSurfaceVertices = 200_000

// ReadSurface reads what WriteTo wrote.
func ReadSurface(r io.Reader) (*Surface, error) {
	br := bufio.NewReader(r)
	get := func(v any) error { return binary.Read(br, binary.LittleEndian, v) }
	str := func() (string, error) {
		var n uint32
		if err := get(&n); err != nil {
			return "", err
		}
		if n > 256 {
			return "", fmt.Errorf("a name of %d bytes", n)
		}
		b := make([]byte, n)
		err := get(b)
		return string(b), err
	}
	fail := func(err error) (*Surface, error) {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("brain: surface: %w", err)
	}
	magic := make([]byte, len(surfaceMagic))
	if err := get(magic); err != nil || string(magic) != surfaceMagic {
		return nil, fmt.Errorf("brain: not a surface file")
	}
	s := &Surface{}
	var err error
	if s.Mesh, err = str(); err != nil {
		return fail(err)
	}
	for i := range s.Hemispheres {
		h := &s.Hemispheres[i]
		if h.Name, err = str(); err != nil {
			return fail(err)
		}
		var nv, ns uint32
		if err := get(&nv); err != nil {
			return fail(err)
		}
		if err := get(&ns); err != nil {
			return fail(err)
		}
		if nv == 0 || nv > maxSurfaceVertices || ns == 0 || ns > 16 {
			return fail(fmt.Errorf("hemisphere %q: %d vertices × %d samples", h.Name, nv, ns))
		}
		h.Samples = int(ns)
		h.Points = make([][3]float32, int(nv)*int(ns))
		if err := get(h.Points); err != nil {
			return fail(err)
		}
		for _, p := range h.Points {
			for _, c := range p {
				if math.IsNaN(float64(c)) || math.IsInf(float64(c), 0) {
					return fail(fmt.Errorf("hemisphere %q: a position is not finite", h.Name))
				}
			}
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fail(errors.New("trailing data"))
	}
	return s, nil
}

// Sample returns each hemisphere's per-vertex values of a mask-order map: the mean of the map,
// trilinearly interpolated on the 4 mm grid (zero outside the mask), at the vertex's positions.
func (s *Surface) Sample(m *Mask, values []float32) [2][]float32 {
	smp, _ := newSampler(&Volume{Dims: Dims, Affine: Affine, Data: m.ToVolume(values)})
	var out [2][]float32
	for hi, h := range s.Hemispheres {
		vals := make([]float32, h.Vertices())
		for v := range vals {
			var sum float64
			for _, p := range h.Points[v*h.Samples : (v+1)*h.Samples] {
				sum += smp.sample([3]float64{float64(p[0]), float64(p[1]), float64(p[2])}, Trilinear)
			}
			vals[v] = float32(sum / float64(h.Samples))
		}
		out[hi] = vals
	}
	return out
}

// SurfaceJSON is the JSON form of a map on a surface: one value per vertex of each hemisphere, in
// the meshes' vertex order.
type SurfaceJSON struct {
	Mesh  string    `json:"mesh"`
	Left  []float32 `json:"left"`
	Right []float32 `json:"right"`
}

// WriteSurfaceJSON writes per-vertex values (Sample's) as gzip-compressed SurfaceJSON, each value
// rounded to 3 decimals (a z-map needs no more, and the file stays small).
func WriteSurfaceJSON(w io.Writer, s *Surface, vals [2][]float32) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, `{"mesh":`...)
	buf = strconv.AppendQuote(buf, s.Mesh)
	for i, name := range []string{"left", "right"} {
		buf = append(buf, `,"`...)
		buf = append(buf, name...)
		buf = append(buf, `":[`...)
		for v, x := range vals[i] {
			if v > 0 {
				buf = append(buf, ',')
			}
			r := math.Round(float64(x)*1000) / 1000
			if r == 0 || math.IsNaN(r) || math.IsInf(r, 0) {
				r = 0 // no "-0", and JSON has no NaN
			}
			buf = strconv.AppendFloat(buf, r, 'f', -1, 64)
		}
		buf = append(buf, ']')
	}
	buf = append(buf, "}\n"...)
	if _, err := zw.Write(buf); err != nil {
		return err
	}
	return zw.Close()
}

// SurfaceSampler is Sample for one mask, worked out once: each vertex's value is a weighted sum
// of mask values (its sampling positions' trilinear weights, averaged), so sampling a map is one
// pass over those weights instead of a trilinear interpolation per position. Predict samples
// every new map; safe for concurrent use.
type SurfaceSampler struct {
	mesh string
	// rows[h][v]..rows[h][v+1] are vertex v's entries of pos and weight.
	rows   [2][]int32
	pos    []int32
	weight []float64
}

// NewSurfaceSampler works out s's sampling weights on m's grid.
func NewSurfaceSampler(s *Surface, m *Mask) *SurfaceSampler {
	smp, _ := newSampler(&Volume{Dims: Dims, Affine: Affine})
	ss := &SurfaceSampler{mesh: s.Mesh}
	d := Dims
	for hi, h := range s.Hemispheres {
		n := h.Vertices()
		rows := make([]int32, 0, n+1)
		rows = append(rows, int32(len(ss.pos)))
		for v := range n {
			share := 1 / float64(h.Samples)
			for _, p := range h.Points[v*h.Samples : (v+1)*h.Samples] {
				ss.addPoint(m, smp.voxel([3]float64{float64(p[0]), float64(p[1]), float64(p[2])}), d, share)
			}
			rows = append(rows, int32(len(ss.pos)))
		}
		ss.rows[hi] = rows
	}
	return ss
}

// addPoint adds the trilinear weights of voxel coordinates c, times share, as sampler.at reads
// them: nothing outside the volume, the edge voxel in its outer half voxel, and only the corners
// in the mask (the others are zero in every map).
func (ss *SurfaceSampler) addPoint(m *Mask, c [3]float64, d [3]int, share float64) {
	var lo, hi [3]int
	var w [3]float64
	for a := range 3 {
		if !(c[a] >= -0.5 && c[a] <= float64(d[a])-0.5) {
			return
		}
		f := math.Floor(c[a])
		w[a] = c[a] - f
		lo[a], hi[a] = max(int(f), 0), min(int(f)+1, d[a]-1)
	}
	for corner := range 8 {
		i, wi := lo[0], 1-w[0]
		if corner&4 != 0 {
			i, wi = hi[0], w[0]
		}
		j, wj := lo[1], 1-w[1]
		if corner&2 != 0 {
			j, wj = hi[1], w[1]
		}
		k, wk := lo[2], 1-w[2]
		if corner&1 != 0 {
			k, wk = hi[2], w[2]
		}
		weight := wi * wj * wk * share
		if weight == 0 {
			continue
		}
		if p := m.position[(i*d[1]+j)*d[2]+k]; p >= 0 {
			ss.pos = append(ss.pos, p)
			ss.weight = append(ss.weight, weight)
		}
	}
}

// Sample is Surface.Sample of the mask's values (equal to float rounding).
func (ss *SurfaceSampler) Sample(values []float32) [2][]float32 {
	var out [2][]float32
	for h, rows := range ss.rows {
		vals := make([]float32, max(len(rows)-1, 0))
		for v := range vals {
			var sum float64
			for e := rows[v]; e < rows[v+1]; e++ {
				sum += ss.weight[e] * float64(values[ss.pos[e]])
			}
			vals[v] = float32(sum)
		}
		out[h] = vals
	}
	return out
}
