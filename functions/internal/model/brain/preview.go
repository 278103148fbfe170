package brain

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// PreviewOptions tunes RenderPreview.
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
func RenderPreview(w io.Writer, template *Volume, m *Mask, values []float32, at [3]float64, opt PreviewOptions) error {
	switch {
	case template == nil:
		return errors.New("brain: RenderPreview: nil template")
	case len(template.Data) != template.Dims[0]*template.Dims[1]*template.Dims[2] || len(template.Data) == 0:
		return fmt.Errorf("brain: RenderPreview: template has %d values for %v voxels", len(template.Data), template.Dims)
	case m == nil:
		return errors.New("brain: RenderPreview: nil mask")
	case len(values) != m.Len():
		return fmt.Errorf("brain: RenderPreview: %d values for a mask of %d voxels", len(values), m.Len())
	case math.IsNaN(opt.Threshold):
		return errors.New("brain: RenderPreview: threshold is NaN")
	}
	for _, c := range at {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return fmt.Errorf("brain: RenderPreview: position %v is not finite", at)
		}
	}
	tpl, ok := newSampler(template)
	if !ok {
		return fmt.Errorf("brain: RenderPreview: template affine %v cannot be inverted", template.Affine)
	}

	var vmax float64
	vol := make([]float64, NVoxels)
	for p, idx := range m.Voxels {
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
	grey := 255 / templateWhite(template)

	l := newPreviewLayout()
	img := image.NewRGBA(image.Rect(0, 0, l.width, l.height))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.Black), image.Point{}, draw.Src)

	for _, p := range l.panels {
		for py := 0; py < p.ht; py++ {
			for px := 0; px < p.w; px++ {
				pos := p.mni(px, py, at)
				var c color.RGBA
				if x := mapS.sample(pos, Trilinear); x != 0 && math.Abs(x) >= opt.Threshold {
					c = diverging(x / vmax)
				} else {
					g := uint8(math.Round(min(max(tpl.sample(pos, Trilinear)*grey, 0), 255)))
					c = color.RGBA{g, g, g, 255}
				}
				img.SetRGBA(p.x0+px, p.y0+py, c)
			}
		}
	}
	drawColorBar(img, l, vmax, barThreshold)

	text := func(x, y int, s string) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(color.White), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	textWidth := func(s string) int { return font.MeasureString(basicfont.Face7x13, s).Round() }
	if opt.Title != "" {
		text(previewMargin, 16, opt.Title)
	}
	bottom := l.rowY + l.rowH - 3
	for _, p := range l.panels {
		text(p.x0+2, bottom, "xyz"[p.fixed:p.fixed+1]+"="+formatMM(at[p.fixed]))
		if p.h == 0 {
			text(p.x0+2, l.rowY+11, "L")
			text(p.x0+p.w-2-textWidth("R"), l.rowY+11, "R")
		}
	}
	if err := (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(w, img); err != nil {
		return fmt.Errorf("brain: RenderPreview: %w", err)
	}
	return nil
}

// templateWhite is the template intensity drawn as white: the 99.5th percentile of its positive
// voxels, so that a few very bright voxels do not darken the whole picture. Every 7th voxel is
// plenty for a percentile and saves most of the time of a pass over millions of voxels.
func templateWhite(v *Volume) float64 {
	const stride = 7
	var top float64
	for n := 0; n < len(v.Data); n += stride {
		if x := v.Data[n]; x > top && !math.IsInf(x, 1) {
			top = x
		}
	}
	if top == 0 {
		return 1
	}
	const bins = 1024
	var hist [bins]int
	var count int
	for n := 0; n < len(v.Data); n += stride {
		if x := v.Data[n]; x > 0 && x <= top {
			hist[min(int(x/top*bins), bins-1)]++
			count++
		}
	}
	limit := int(0.995 * float64(count))
	var seen int
	for b, c := range hist {
		if seen += c; seen >= limit {
			return float64(b+1) / bins * top
		}
	}
	return top
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
func drawColorBar(img *image.RGBA, l previewLayout, vmax, threshold float64) {
	valueAt := func(y int) float64 { return vmax - (float64(y)+0.5)/float64(l.barH)*2*vmax }
	for y := 0; y < l.barH; y++ {
		x := valueAt(y)
		c := diverging(x / vmax)
		if math.Abs(x) < threshold {
			c = color.RGBA{128, 128, 128, 255}
		}
		for dx := 0; dx < l.barW; dx++ {
			img.SetRGBA(l.barX+dx, l.barY+y, c)
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
			img.SetRGBA(l.barX+l.barW+dx, y, white)
		}
		d := font.Drawer{Dst: img, Src: image.NewUniform(white), Face: basicfont.Face7x13,
			Dot: fixed.P(l.barX+l.barW+7, y+4)}
		d.DrawString(formatTick(t))
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
