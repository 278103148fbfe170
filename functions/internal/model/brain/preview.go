package brain

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"image"
	"image/color"
	"io"
	"math"
	"strconv"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// PreviewOptions tunes a preview.
type PreviewOptions struct {
	// Threshold hides map values whose magnitude is below it; ≤ 0 shows every non-zero value.
	Threshold float64
	// Title, if not empty, is written at the top of the picture.
	Title string
}

// The preview shows the same field of view in mm whatever the template, so that previews of
// different maps line up. It is the brain's extent in MNI space plus a few millimetres.
var previewFOV = [3][2]float64{{-76, 76}, {-112, 78}, {-76, 86}}

const (
	previewScale  = 1.5 // pixels per mm
	previewMargin = 8
	previewTop    = 24 // room for the title
	previewGap    = 16
	colorBarGap   = 16
	colorBarWidth = 14
	tickRoom      = 60 // tick mark and labels right of the colour bar
)

// panel is one slice of the preview: the plane fixed[axis] = at[axis], with MNI axis h running
// left to right and v running bottom to top.
type panel struct {
	fixed, h, v int
	x0, y0      int // top-left pixel of the slice in the picture
	w, ht       int
}

// previewLayout places the three slices: sagittal (y across, anterior right), coronal and axial
// (x across, left on the left: the neurological convention), each with superior or anterior up.
// Slices shorter than the tallest are centred vertically.
type previewLayout struct {
	panels        [3]panel
	rowY, rowH    int
	barX, barY    int
	barW, barH    int
	width, height int
}

func newPreviewLayout() previewLayout {
	size := func(axis int) int {
		return int(math.Round((previewFOV[axis][1] - previewFOV[axis][0]) * previewScale))
	}
	specs := [3][3]int{{0, 1, 2}, {1, 0, 2}, {2, 0, 1}} // fixed, h, v
	var l previewLayout
	for _, s := range specs {
		l.rowH = max(l.rowH, size(s[2]))
	}
	l.rowY = previewTop
	x := previewMargin
	for p, s := range specs {
		w, h := size(s[1]), size(s[2])
		l.panels[p] = panel{fixed: s[0], h: s[1], v: s[2], x0: x, y0: l.rowY + (l.rowH-h)/2, w: w, ht: h}
		x += w + previewGap
	}
	x += colorBarGap - previewGap
	l.barX, l.barW = x, colorBarWidth
	l.barY, l.barH = l.rowY+20, l.rowH-40
	l.width = x + colorBarWidth + tickRoom
	l.height = l.rowY + l.rowH + previewMargin
	return l
}

// mni is the MNI position at the centre of a pixel of the slice.
func (p panel) mni(px, py int, at [3]float64) [3]float64 {
	pos := at
	pos[p.h] = previewFOV[p.h][0] + (float64(px)+0.5)/previewScale
	pos[p.v] = previewFOV[p.v][1] - (float64(py)+0.5)/previewScale
	return pos
}

// project is the picture pixel showing an MNI position in this slice (it ignores pos[p.fixed]).
func (p panel) project(pos [3]float64) image.Point {
	return image.Point{
		X: p.x0 + int(math.Floor((pos[p.h]-previewFOV[p.h][0])*previewScale)),
		Y: p.y0 + int(math.Floor((previewFOV[p.v][1]-pos[p.v])*previewScale)),
	}
}

// RenderPreview draws a map over the T1 template as a PNG: sagittal, coronal and axial slices
// through at (MNI mm), in the neurological convention (left hemisphere on the left), with a
// colour bar. The 4 mm map is interpolated trilinearly onto the template's 1 mm slices and shown
// where its magnitude reaches opt.Threshold, in a diverging colour map symmetric around 0
// (blue → cyan for negative, red → yellow for positive) whose limits are ±max|value|. The output
// depends only on the arguments, byte for byte.
//
// It is NewPreviewer and Render: what depends only on the template is worked out on every call,
// so a caller drawing many maps over one template keeps a Previewer instead.
func RenderPreview(w io.Writer, template *Volume, m *Mask, values []float32, at [3]float64, opt PreviewOptions) error {
	p, err := NewPreviewer(template, m)
	if err != nil {
		return err
	}
	return p.Render(w, values, at, opt)
}

// previewSlices bounds a Previewer's cache of template slices: enough for every slice through a
// voxel of the prediction grid (NX sagittal, NY coronal and NZ axial ones, where peaks are),
// about 10 MB, with room for a few others.
const previewSlices = NX + NY + NZ + 16

// Previewer draws previews (see RenderPreview) of maps on a mask over one template. It computes
// what depends only on the template once: the intensity drawn as white, and the grey pixels of
// each slice it has drawn, up to a bound. It is safe for concurrent use; the template and mask
// must not change while it is in use.
type Previewer struct {
	mask   *Mask
	tpl    sampler
	grey   float64 // 255 / the template's white level
	layout previewLayout

	mu        sync.Mutex
	slices    map[sliceKey]*greySlice
	clock     uint64 // counts cache uses, for least recently used eviction
	maxSlices int
}

// sliceKey names a panel's template slice: which panel, and its fixed coordinate's float64
// bits (what p.mni reads of at).
type sliceKey struct {
	panel int
	at    uint64
}

type greySlice struct {
	pix  []uint8 // p.w × p.ht template greys, row after row; never written once cached
	used uint64
}

// NewPreviewer prepares previews of maps on m over template.
func NewPreviewer(template *Volume, m *Mask) (*Previewer, error) {
	switch {
	case template == nil:
		return nil, errors.New("brain: preview: nil template")
	case len(template.Data) != template.Dims[0]*template.Dims[1]*template.Dims[2] || len(template.Data) == 0:
		return nil, fmt.Errorf("brain: preview: template has %d values for %v voxels", len(template.Data), template.Dims)
	case m == nil:
		return nil, errors.New("brain: preview: nil mask")
	}
	tpl, ok := newSampler(template)
	if !ok {
		return nil, fmt.Errorf("brain: preview: template affine %v cannot be inverted", template.Affine)
	}
	return &Previewer{mask: m, tpl: tpl, grey: 255 / templateWhite(template), layout: newPreviewLayout(),
		slices: make(map[sliceKey]*greySlice), maxSlices: previewSlices}, nil
}

// Render writes the preview of a map (in mask order) through at as a PNG; see RenderPreview.
func (pv *Previewer) Render(w io.Writer, values []float32, at [3]float64, opt PreviewOptions) error {
	switch {
	case len(values) != pv.mask.Len():
		return fmt.Errorf("brain: preview: %d values for a mask of %d voxels", len(values), pv.mask.Len())
	case math.IsNaN(opt.Threshold):
		return errors.New("brain: preview: threshold is NaN")
	}
	for _, c := range at {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return fmt.Errorf("brain: preview: position %v is not finite", at)
		}
	}
	sc := previewScratch.Get().(*scratch)
	defer previewScratch.Put(sc)

	var vmax float64
	vol := sc.vol
	clear(vol)
	for p, idx := range pv.mask.Voxels {
		x := float64(values[p])
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		vol[idx] = x
		vmax = max(vmax, math.Abs(x))
	}
	barThreshold := opt.Threshold
	if vmax == 0 {
		// An empty map still gets a readable colour bar, with nothing to hide on it.
		vmax, barThreshold = 1, 0
	}
	mapS, _ := newSampler(&Volume{Dims: Dims, Data: vol, Affine: Affine})

	l := pv.layout
	img := &sc.img
	clear(img.pix) // black
	// The slices not drawn yet are drawn at once.
	var greys [3][]uint8
	var wg sync.WaitGroup
	for n, p := range l.panels {
		if greys[n] = pv.cached(pv.sliceKey(n, at)); greys[n] == nil {
			wg.Go(func() { greys[n] = pv.greySlice(n, p, at) })
		}
	}
	wg.Wait()
	for n, p := range l.panels {
		ms := newPlaneSampler(mapS, p, at, sc.cols[:p.w], sc.rows[:p.ht], true)
		vals := sc.vals[:p.w]
		for py := range p.ht {
			ms.row(py, vals, opt.Threshold) // what it hides is not drawn
			g := greys[n][py*p.w:][:p.w]
			dst := img.pix[(p.y0+py)*img.stride+3*p.x0:][:3*p.w]
			for px, x := range vals {
				d := dst[3*px:][:3]
				if x != 0 && math.Abs(x) >= opt.Threshold {
					c := diverging(x / vmax)
					d[0], d[1], d[2] = c.R, c.G, c.B
				} else {
					d[0], d[1], d[2] = g[px], g[px], g[px]
				}
			}
		}
	}
	drawColorBar(img, l, vmax, barThreshold)

	if opt.Title != "" {
		drawText(img, previewMargin, 16, opt.Title)
	}
	bottom := l.rowY + l.rowH - 3
	for _, p := range l.panels {
		drawText(img, p.x0+2, bottom, "xyz"[p.fixed:p.fixed+1]+"="+formatMM(at[p.fixed]))
		if p.h == 0 {
			drawText(img, p.x0+2, l.rowY+11, "L")
			drawText(img, p.x0+p.w-2-font.MeasureString(basicfont.Face7x13, "R").Round(), l.rowY+11, "R")
		}
	}
	if err := img.encodePNG(w, &sc.png); err != nil {
		return fmt.Errorf("brain: preview: %w", err)
	}
	return nil
}

// sliceKey is the key of panel n's slice through at.
func (pv *Previewer) sliceKey(n int, at [3]float64) sliceKey {
	c := at[pv.layout.panels[n].fixed]
	if c == 0 {
		c = 0 // −0 draws what 0 does
	}
	return sliceKey{panel: n, at: math.Float64bits(c)}
}

// greySlice draws the template greys of panel n through at and caches them. It draws outside the
// lock, so that renders of other slices do not wait: two renders of a new slice at once both
// draw it, the same.
func (pv *Previewer) greySlice(n int, p panel, at [3]float64) []uint8 {
	key := pv.sliceKey(n, at)
	at[p.fixed] = math.Float64frombits(key.at)
	pix := make([]uint8, p.w*p.ht)
	ts := newPlaneSampler(pv.tpl, p, at, make([]axisStep, p.w), make([]axisStep, p.ht), false)
	grey := func(x float64) uint8 { return uint8(math.Round(min(max(x*pv.grey, 0), 255))) }
	// The template does not fit in the caches, and a slice across its fastest axis reads a
	// cache line a sample; along that axis, eight.
	if ts.byColumns() {
		vals := make([]float64, p.ht)
		for px := range p.w {
			ts.column(px, vals, 0)
			for py, x := range vals {
				pix[py*p.w+px] = grey(x)
			}
		}
	} else {
		vals := make([]float64, p.w)
		for py := range p.ht {
			ts.row(py, vals, 0)
			for px, x := range vals {
				pix[py*p.w+px] = grey(x)
			}
		}
	}

	pv.mu.Lock()
	defer pv.mu.Unlock()
	pv.clock++
	if e, ok := pv.slices[key]; ok {
		e.used = pv.clock
		return e.pix
	}
	if len(pv.slices) >= pv.maxSlices {
		var oldest sliceKey
		var used uint64 = math.MaxUint64
		for k, e := range pv.slices {
			if e.used < used {
				oldest, used = k, e.used
			}
		}
		delete(pv.slices, oldest)
	}
	pv.slices[key] = &greySlice{pix: pix, used: pv.clock}
	return pix
}

// cached returns the cached greys of a slice, or nil.
func (pv *Previewer) cached(key sliceKey) []uint8 {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	e, ok := pv.slices[key]
	if !ok {
		return nil
	}
	pv.clock++
	e.used = pv.clock
	return e.pix
}

// scratch is the memory of one render, reused through previewScratch.
type scratch struct {
	vol        []float64 // the map on the whole grid
	img        rgbImage
	vals       []float64 // one row of map values
	cols, rows []axisStep
	png        pngEncoder
}

var previewScratch = sync.Pool{New: func() any {
	l := newPreviewLayout()
	var maxW, maxH int
	for _, p := range l.panels {
		maxW, maxH = max(maxW, p.w), max(maxH, p.ht)
	}
	return &scratch{
		vol:  make([]float64, NVoxels),
		img:  rgbImage{pix: make([]byte, 3*l.width*l.height), stride: 3 * l.width, w: l.width, h: l.height},
		vals: make([]float64, maxW),
		cols: make([]axisStep, maxW),
		rows: make([]axisStep, maxH),
	}
}}

// axisStep is where a trilinear sample falls along one voxel axis: the offsets in Data of the
// voxel planes below and above it, the weight of the upper one and of the lower one (1 − w), and
// whether it is inside the volume along this axis.
type axisStep struct {
	lo, hi int
	i0, i1 int // the planes' indices along the axis
	w, w1  float64
	in     bool
}

// planeSampler samples a volume trilinearly at the centre of every pixel of a panel, the value
// sampler.sample gives at p.mni(px, py, at). When each voxel axis of the volume follows one of
// the panel's axes (its affine has no oblique terms in the panel's plane: the grid's and the
// template's), the voxel coordinates are worked out once per column, row and slice instead of
// per pixel; they are the same numbers, since the terms left out are exact zeros.
type planeSampler struct {
	s    sampler
	p    panel
	at   [3]float64
	fast bool
	// The voxel axes that follow the slice, the columns and the rows.
	fixedAxis, colAxis, rowAxis int
	fixed                       axisStep
	cols, rows                  []axisStep
	stride                      [3]int // of each voxel axis in Data
	// line[i] is, for the row or column being sampled, the largest magnitude of the four voxels
	// at index i along the other panel axis that its samples blend: a bound on every sample
	// between i and i+1. It is nil when nothing is skipped.
	line []float64
}

func newPlaneSampler(s sampler, p panel, at [3]float64, cols, rows []axisStep, skip bool) planeSampler {
	ps := planeSampler{s: s, p: p, at: at, colAxis: -1, rowAxis: -1}
	ps.fast = true
	for r := range 3 {
		if s.inv[r][p.h] != 0 {
			ps.fast = ps.fast && ps.colAxis < 0
			ps.colAxis = r
		}
		if s.inv[r][p.v] != 0 {
			ps.fast = ps.fast && ps.rowAxis < 0
			ps.rowAxis = r
		}
	}
	ps.fast = ps.fast && ps.colAxis >= 0 && ps.rowAxis >= 0 && ps.colAxis != ps.rowAxis
	if !ps.fast {
		return ps
	}
	ps.fixedAxis = 3 - ps.colAxis - ps.rowAxis
	d := s.v.Dims
	ps.stride = [3]int{d[1] * d[2], d[2], 1}
	step := func(a int, c float64) axisStep {
		// As in sampler.at.
		if !(c >= -0.5 && c <= float64(d[a])-0.5) {
			return axisStep{}
		}
		f := math.Floor(c)
		w := c - f
		i0, i1 := max(int(f), 0), min(int(f)+1, d[a]-1)
		return axisStep{lo: i0 * ps.stride[a], hi: i1 * ps.stride[a], i0: i0, i1: i1, w: w, w1: 1 - w, in: true}
	}
	for px := range cols {
		cols[px] = step(ps.colAxis, s.voxel(p.mni(px, 0, at))[ps.colAxis])
	}
	for py := range rows {
		rows[py] = step(ps.rowAxis, s.voxel(p.mni(0, py, at))[ps.rowAxis])
	}
	ps.fixed = step(ps.fixedAxis, s.voxel(p.mni(0, 0, at))[ps.fixedAxis])
	ps.cols, ps.rows = cols, rows
	if skip {
		ps.line = make([]float64, max(d[ps.colAxis], d[ps.rowAxis]))
	}
	return ps
}

// byColumns reports whether sampling column by column reads the volume in a better order than
// row by row: when the rows' voxel axis is the one with neighbours closer in memory.
func (ps *planeSampler) byColumns() bool {
	return ps.fast && ps.stride[ps.rowAxis] < ps.stride[ps.colAxis]
}

// row samples pixel row py, len(out) = p.w pixels. Samples whose magnitude is certainly below
// hide may come out 0 instead, and so may samples of voxels that are all 0, which are exactly 0:
// both cost next to nothing, if the sampler skips. hide ≤ 0 leaves every value exact.
func (ps *planeSampler) row(py int, out []float64, hide float64) {
	if !ps.fast {
		for px := range out {
			out[px] = ps.s.sample(ps.p.mni(px, py, ps.at), Trilinear)
		}
		return
	}
	ps.line1(&ps.rows[py], ps.rowAxis, ps.cols[:len(out)], ps.colAxis, out, hide)
}

// column samples pixel column px, len(out) = p.ht pixels, like row.
func (ps *planeSampler) column(px int, out []float64, hide float64) {
	if !ps.fast {
		for py := range out {
			out[py] = ps.s.sample(ps.p.mni(px, py, ps.at), Trilinear)
		}
		return
	}
	ps.line1(&ps.cols[px], ps.colAxis, ps.rows[:len(out)], ps.rowAxis, out, hide)
}

// line1 samples along one panel axis, whose steps are along voxel axis stepAxis, with the other
// held at the step held along voxel axis heldAxis.
func (ps *planeSampler) line1(held *axisStep, heldAxis int, steps []axisStep, stepAxis int, out []float64, hide float64) {
	if !ps.fixed.in || !held.in {
		clear(out)
		return
	}
	data := ps.s.v.Data
	var e [3]*axisStep
	e[ps.fixedAxis], e[heldAxis] = &ps.fixed, held
	var line []float64
	if ps.line != nil {
		// A trilinear sample is a weighted mean of its voxels: with rounding, its magnitude can
		// exceed theirs by a few parts in 10¹⁶, far less than this margin.
		hide *= 1 - 1e-9
		line = ps.line[:ps.s.v.Dims[stepAxis]]
		f0, f1, h0, h1, st := ps.fixed.lo, ps.fixed.hi, held.lo, held.hi, ps.stride[stepAxis]
		var lineMax float64
		for i := range line {
			o := i * st
			// The builtin max keeps a NaN, which then hides nothing.
			m := max(math.Abs(data[f0+h0+o]), math.Abs(data[f0+h1+o]), math.Abs(data[f1+h0+o]), math.Abs(data[f1+h1+o]))
			line[i] = m
			lineMax = max(lineMax, m)
		}
		if lineMax == 0 || lineMax < hide {
			clear(out)
			return
		}
	}
	for n := range out {
		es := &steps[n]
		if !es.in {
			out[n] = 0
			continue
		}
		if line != nil {
			if m := max(line[es.i0], line[es.i1]); m == 0 || m < hide {
				out[n] = 0
				continue
			}
		}
		e[stepAxis] = es
		// sampler.at's arithmetic, operation for operation.
		e0, e1, e2 := e[0], e[1], e[2]
		r00, r01 := e0.lo+e1.lo, e0.lo+e1.hi
		r10, r11 := e0.hi+e1.lo, e0.hi+e1.hi
		k0, k1, wk, wk1 := e2.lo, e2.hi, e2.w, e2.w1
		c00 := data[r00+k0]*wk1 + data[r00+k1]*wk
		c01 := data[r01+k0]*wk1 + data[r01+k1]*wk
		c10 := data[r10+k0]*wk1 + data[r10+k1]*wk
		c11 := data[r11+k0]*wk1 + data[r11+k1]*wk
		c0 := c00*e1.w1 + c01*e1.w
		c1 := c10*e1.w1 + c11*e1.w
		out[n] = c0*e0.w1 + c1*e0.w
	}
}

// rgbImage is an opaque 8-bit RGB picture, 3 bytes a pixel: what the preview is drawn in, and
// the rows its PNG holds.
type rgbImage struct {
	pix    []byte
	stride int
	w, h   int
}

func (m *rgbImage) ColorModel() color.Model { return color.RGBAModel }

func (m *rgbImage) Bounds() image.Rectangle { return image.Rect(0, 0, m.w, m.h) }

func (m *rgbImage) At(x, y int) color.Color { return m.rgbaAt(x, y) }

func (m *rgbImage) RGBA64At(x, y int) color.RGBA64 {
	c := m.rgbaAt(x, y)
	return color.RGBA64{uint16(c.R) * 0x101, uint16(c.G) * 0x101, uint16(c.B) * 0x101, uint16(c.A) * 0x101}
}

func (m *rgbImage) rgbaAt(x, y int) color.RGBA {
	if x < 0 || y < 0 || x >= m.w || y >= m.h {
		return color.RGBA{}
	}
	p := m.pix[y*m.stride+3*x:][:3]
	return color.RGBA{p[0], p[1], p[2], 255}
}

// Set draws c as if over black: the picture is opaque. So does SetRGBA64.
func (m *rgbImage) Set(x, y int, c color.Color) {
	r, g, b, _ := c.RGBA()
	m.set(x, y, color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255})
}

func (m *rgbImage) SetRGBA64(x, y int, c color.RGBA64) {
	m.set(x, y, color.RGBA{uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8), 255})
}

func (m *rgbImage) set(x, y int, c color.RGBA) {
	if x < 0 || y < 0 || x >= m.w || y >= m.h {
		return
	}
	p := m.pix[y*m.stride+3*x:][:3]
	p[0], p[1], p[2] = c.R, c.G, c.B
}

// pngEncoder is the reusable memory of encodePNG: a compressor, its output and a row for each
// half of the picture.
type pngEncoder struct {
	half [2]deflateHalf
}

type deflateHalf struct {
	fw    *flate.Writer
	out   bytes.Buffer
	row   []byte
	adler uint32
}

// encodePNG writes the picture as an 8-bit RGB PNG. Every row has the Up filter (the difference
// from the row above), which suits slices whose rows change little from one to the next about as
// well as choosing a filter per row, at a fraction of the time; the compression is deflate's
// fastest. The two halves of the rows are compressed at once, the first ending in a sync flush
// and the second compressed on its own after it (as pigz does), in one zlib stream whose checksum
// is the halves' combined. The output depends only on the picture.
//
// Written here rather than with image/png, whose encoder compresses on one core and tries every
// filter on every row: the preview is on the path of every new map, and image/png's encoding was
// about 40 % of its time (profiled at the default level). The output is checked against
// image/png's decoder in the tests.
func (m *rgbImage) encodePNG(w io.Writer, e *pngEncoder) error {
	mid := m.h / 2
	var wg sync.WaitGroup
	wg.Go(func() { m.deflateRows(&e.half[1], mid, m.h, true) })
	m.deflateRows(&e.half[0], 0, mid, false)
	wg.Wait()
	a, b := e.half[0].out.Bytes(), e.half[1].out.Bytes()
	check := adler32Combine(e.half[0].adler, e.half[1].adler, (m.h-mid)*(1+3*m.w))

	var head [8 + 25 + 8 + 2]byte
	copy(head[:], "\x89PNG\r\n\x1a\n")
	ihdr := head[8:33]
	binary.BigEndian.PutUint32(ihdr[0:], 13)
	copy(ihdr[4:], "IHDR")
	binary.BigEndian.PutUint32(ihdr[8:], uint32(m.w))
	binary.BigEndian.PutUint32(ihdr[12:], uint32(m.h))
	ihdr[16], ihdr[17] = 8, 2 // 8 bits a channel, RGB; compression, filter and interlace 0
	binary.BigEndian.PutUint32(ihdr[21:], crc32.ChecksumIEEE(ihdr[4:21]))
	binary.BigEndian.PutUint32(head[33:], uint32(2+len(a)+len(b)+4))
	copy(head[37:], "IDAT\x78\x01") // the zlib header of the fastest level
	var tail [8 + 12]byte
	binary.BigEndian.PutUint32(tail[0:], check)
	crc := crc32.Update(crc32.ChecksumIEEE(head[37:]), crc32.IEEETable, a)
	crc = crc32.Update(crc32.Update(crc, crc32.IEEETable, b), crc32.IEEETable, tail[:4])
	binary.BigEndian.PutUint32(tail[4:], crc)
	copy(tail[8:], "\x00\x00\x00\x00IEND\xae\x42\x60\x82")
	for _, p := range [][]byte{head[:], a, b, tail[:]} {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// deflateRows compresses the filtered rows [y0, y1) into d.out, and their adler-32 into d.adler;
// last ends the deflate stream, otherwise it is flushed to a byte boundary.
func (m *rgbImage) deflateRows(d *deflateHalf, y0, y1 int, last bool) {
	d.out.Reset()
	if d.fw == nil {
		d.fw, _ = flate.NewWriter(&d.out, flate.BestSpeed) // a valid level: no error
	} else {
		d.fw.Reset(&d.out)
	}
	n := 3 * m.w
	if cap(d.row) < 1+n {
		d.row = make([]byte, 1+n)
	}
	row := d.row[:1+n]
	row[0] = 2 // Up
	sum := adler32.New()
	for y := y0; y < y1; y++ {
		cur := m.pix[y*m.stride:][:n]
		if y == 0 {
			copy(row[1:], cur) // the row above the first is zeros
		} else {
			upFilter(row[1:], cur, m.pix[(y-1)*m.stride:][:n])
		}
		sum.Write(row)
		d.fw.Write(row) // into a bytes.Buffer: no error
	}
	if last {
		d.fw.Close()
	} else {
		d.fw.Flush()
	}
	d.adler = sum.Sum32()
}

// adler32Combine is the adler-32 of two byte strings one after the other, from theirs and the
// second's length (zlib's adler32_combine).
func adler32Combine(a1, a2 uint32, len2 int) uint32 {
	const base = 65521
	rem := uint32(len2 % base)
	s1 := a1 & 0xffff
	s2 := rem * s1 % base
	s1 += a2&0xffff + base - 1
	s2 += a1>>16 + a2>>16 + base - rem
	if s1 >= base {
		s1 -= base
	}
	if s1 >= base {
		s1 -= base
	}
	if s2 >= 2*base {
		s2 -= 2 * base
	}
	if s2 >= base {
		s2 -= base
	}
	return s1 | s2<<16
}

// upFilter sets out[i] = cur[i] − prev[i] (mod 256), eight bytes at a time: the low 7 bits of
// each byte are subtracted with the top bit of the minuend set, so that no borrow crosses into the
// next byte, and the top bit is then put right.
func upFilter(out, cur, prev []byte) {
	const high = 0x8080808080808080
	i := 0
	for ; i+8 <= len(out); i += 8 {
		a, b := binary.LittleEndian.Uint64(cur[i:]), binary.LittleEndian.Uint64(prev[i:])
		binary.LittleEndian.PutUint64(out[i:], ((a|high)-(b&^high))^((a^^b)&high))
	}
	for ; i < len(out); i++ {
		out[i] = cur[i] - prev[i]
	}
}

// drawText writes s in white with its baseline at y, starting at x.
func drawText(img *rgbImage, x, y int, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(color.White), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// templateWhite is the template intensity drawn as white: the 99.5th percentile of its positive
// voxels, so that a few very bright voxels do not darken the whole picture. Every 7th voxel is
// plenty for a percentile. Those samples still lie on every cache line of the template, so
// reading them is the cost: each half of the template is read once, at the same time, and its
// positive samples kept for the histogram, which needs their maximum first.
func templateWhite(v *Volume) float64 {
	const stride = 7
	split := len(v.Data) / 2 / stride * stride // the second half's samples are the same
	var second []float64
	var wg sync.WaitGroup
	wg.Go(func() { second = positiveSamples(v.Data[split:], stride) })
	positive := positiveSamples(v.Data[:split], stride)
	wg.Wait()
	var top float64
	for _, x := range positive {
		top = max(top, x)
	}
	for _, x := range second {
		top = max(top, x)
	}
	if top == 0 {
		return 1
	}
	const bins = 1024
	var hist [bins]int
	for _, x := range positive {
		hist[min(int(x/top*bins), bins-1)]++
	}
	for _, x := range second {
		hist[min(int(x/top*bins), bins-1)]++
	}
	limit := int(0.995 * float64(len(positive)+len(second)))
	var seen int
	for b, c := range hist {
		if seen += c; seen >= limit {
			return float64(b+1) / bins * top
		}
	}
	return top
}

// positiveSamples are data[0], data[stride], … that are positive and finite.
func positiveSamples(data []float64, stride int) []float64 {
	out := make([]float64, 0, len(data)/stride/4+1)
	for n := 0; n < len(data); n += stride {
		if x := data[n]; x > 0 && !math.IsInf(x, 1) {
			out = append(out, x)
		}
	}
	return out
}

// diverging maps t in [−1, 1] to a colour: dark red → red → yellow for positive values, dark
// blue → blue → cyan for negative ones. It starts dark but never black, so that weak values
// stay distinct from the black background and from dark template voxels.
func diverging(t float64) color.RGBA {
	a := min(math.Abs(t), 1)
	strong := 0.5 + 0.5*min(a/0.4, 1)
	light := max(0, (a-0.4)/0.6)
	s, l := uint8(math.Round(255*strong)), uint8(math.Round(255*light))
	if t < 0 {
		return color.RGBA{0, l, s, 255}
	}
	return color.RGBA{s, l, 0, 255}
}

// drawColorBar draws +vmax at the top and −vmax at the bottom, with the hidden band
// |value| < threshold in grey, like the picture shows it (as template, not colour).
func drawColorBar(img *rgbImage, l previewLayout, vmax, threshold float64) {
	valueAt := func(y int) float64 { return vmax - (float64(y)+0.5)/float64(l.barH)*2*vmax }
	for y := 0; y < l.barH; y++ {
		x := valueAt(y)
		c := diverging(x / vmax)
		if math.Abs(x) < threshold {
			c = color.RGBA{128, 128, 128, 255}
		}
		for dx := 0; dx < l.barW; dx++ {
			img.set(l.barX+dx, l.barY+y, c)
		}
	}
	rowOf := func(v float64) int {
		return l.barY + int(math.Round((vmax-v)/(2*vmax)*float64(l.barH-1)))
	}
	ticks := []float64{vmax, vmax / 2, 0, -vmax / 2, -vmax}
	if threshold > 0 && threshold < vmax {
		// Only if it does not crowd an existing label.
		clear := true
		for _, t := range ticks {
			if math.Abs(float64(rowOf(threshold)-rowOf(t))) < 13 {
				clear = false
			}
		}
		if clear {
			ticks = append(ticks, threshold, -threshold)
		}
	}
	white := color.RGBA{255, 255, 255, 255}
	for _, t := range ticks {
		y := rowOf(t)
		for dx := 0; dx < 4; dx++ {
			img.set(l.barX+l.barW+dx, y, white)
		}
		drawText(img, l.barX+l.barW+7, y+4, formatTick(t))
	}
}

// formatTick keeps colour bar labels short: three significant digits.
func formatTick(v float64) string {
	if v == 0 {
		return "0"
	}
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// formatMM writes a coordinate to 0.1 mm, without a trailing ".0" or a "-0".
func formatMM(v float64) string {
	r := math.Round(v*10) / 10
	if r == 0 {
		r = 0
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}
