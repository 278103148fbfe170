package brain

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strings"
	"testing"
)

func renderPNG(t testing.TB, tpl *Volume, m *Mask, vals []float32, at [3]float64, opt PreviewOptions) (image.Image, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := RenderPreview(&buf, tpl, m, vals, at, opt); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return img, buf.Bytes()
}

func rgb(c color.Color) (r, g, b int) {
	r32, g32, b32, _ := c.RGBA()
	return int(r32 >> 8), int(g32 >> 8), int(b32 >> 8)
}

func isWarm(c color.Color) bool {
	r, g, b := rgb(c)
	return r > 150 && r > b+100 && r >= g
}

func isBlueish(c color.Color) bool {
	r, g, b := rgb(c)
	return b > 150 && b > r+100 && b >= g
}

func isGrey(c color.Color) bool {
	r, g, b := rgb(c)
	return r == g && g == b
}

func TestRenderPreview(t *testing.T) {
	t.Parallel()
	tpl, m := mustTemplate(t), mustMask(t)
	at := [3]float64{38, -50, -20}
	mirror := [3]float64{-38, -50, -20}
	if v := tpl.SampleMNI(mirror, Trilinear); v < 60 {
		t.Fatalf("template at %v is %v: the test needs brain tissue there", mirror, v)
	}
	l := newPreviewLayout()
	neg := bumpMap(m, at, -12, 6)
	testCases := []struct {
		name   string
		values []float32
		opt    PreviewOptions
		atBump func(color.Color) bool
		what   string
		// farGrey is whether the far side shows the template: not with threshold 0, which
		// shows the Gaussian's far tail.
		farGrey bool
		// barColoured is whether the colour bar shows colours at its ends: not when the
		// threshold hides every value of a non-empty map.
		barColoured bool
	}{
		{"positive bump", bumpMap(m, at, 28, 6), PreviewOptions{Threshold: 3}, isWarm, "warm", true, true},
		{"negative bump", neg, PreviewOptions{Threshold: 3, Title: "negative"}, isBlueish, "blueish", true, true},
		{"threshold 0", bumpMap(m, at, 28, 6), PreviewOptions{}, isWarm, "warm", false, true},
		{"above the maximum", bumpMap(m, at, 28, 6), PreviewOptions{Threshold: 30}, isGrey, "grey", true, false},
		{"all zero", make([]float32, m.Len()), PreviewOptions{Threshold: 3}, isGrey, "grey", true, true},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, _ := renderPNG(t, tpl, m, tc.values, at, tc.opt)
			if got, want := img.Bounds(), image.Rect(0, 0, l.width, l.height); got != want {
				t.Errorf("size %v, want %v", got, want)
			}
			for n, name := range []string{"sagittal", "coronal", "axial"} {
				p := l.panels[n]
				if c := img.At(p.project(at).X, p.project(at).Y); !tc.atBump(c) {
					t.Errorf("%s pixel at %v is %v, want %s", name, at, c, tc.what)
				}
			}
			axial := l.panels[2]
			c := img.At(axial.project(mirror).X, axial.project(mirror).Y)
			if r, _, _ := rgb(c); (isGrey(c) && r >= 60) != tc.farGrey {
				t.Errorf("axial pixel at %v, far from the bump, is %v; template grey: %v, want %v", mirror, c, !tc.farGrey, tc.farGrey)
			}
			// +max (yellow) on top, −max (cyan) below.
			top, bottom := img.At(l.barX+l.barW/2, l.barY+1), img.At(l.barX+l.barW/2, l.barY+l.barH-2)
			if got := isWarm(top) && isBlueish(bottom); got != tc.barColoured {
				t.Errorf("colour bar runs from %v to %v; warm to blueish: %v, want %v", top, bottom, got, tc.barColoured)
			}
			if !tc.barColoured && (!isGrey(top) || !isGrey(bottom)) {
				t.Errorf("colour bar runs from %v to %v, want grey: the threshold hides every value", top, bottom)
			}
		})
	}
}

// TestRenderPreviewOrientation finds the bump by its colour, independently of the layout's own
// projection: in the neurological convention a right-hemisphere (x > 0) bump is right of the
// axial and coronal midlines, and a posterior, inferior one is low in the axial and coronal
// slices and left in the sagittal one (anterior right).
func TestRenderPreviewOrientation(t *testing.T) {
	t.Parallel()
	tpl, m := mustTemplate(t), mustMask(t)
	at := [3]float64{38, -50, -20}
	img, _ := renderPNG(t, tpl, m, bumpMap(m, at, 28, 6), at, PreviewOptions{Threshold: 3})
	l := newPreviewLayout()
	centroid := func(p panel) (fx, fy float64) {
		var sx, sy, n float64
		for y := p.y0; y < p.y0+p.ht; y++ {
			for x := p.x0; x < p.x0+p.w; x++ {
				if isWarm(img.At(x, y)) {
					sx, sy, n = sx+float64(x-p.x0), sy+float64(y-p.y0), n+1
				}
			}
		}
		if n == 0 {
			t.Fatalf("no warm pixel in the panel at %d", p.x0)
		}
		return sx / n / float64(p.w), sy / n / float64(p.ht)
	}
	// Expected fractions of the panel's width and height, from the field of view.
	frac := func(v float64, axis int) float64 {
		return (v - previewFOV[axis][0]) / (previewFOV[axis][1] - previewFOV[axis][0])
	}
	testCases := []struct {
		name   string
		panel  panel
		wx, wy float64
	}{
		{"sagittal", l.panels[0], frac(at[1], 1), 1 - frac(at[2], 2)},
		{"coronal", l.panels[1], frac(at[0], 0), 1 - frac(at[2], 2)},
		{"axial", l.panels[2], frac(at[0], 0), 1 - frac(at[1], 1)},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			fx, fy := centroid(tc.panel)
			if math.Abs(fx-tc.wx) > 0.02 || math.Abs(fy-tc.wy) > 0.02 {
				t.Errorf("bump drawn at (%.3f, %.3f) of the panel, want (%.3f, %.3f)", fx, fy, tc.wx, tc.wy)
			}
		})
	}
	if fx, _ := centroid(l.panels[2]); fx < 0.5 {
		t.Errorf("right-hemisphere bump is on the left of the axial slice (%.2f): radiological, want neurological", fx)
	}
}

func TestRenderPreviewTitleAndBytes(t *testing.T) {
	t.Parallel()
	tpl, m := mustTemplate(t), mustMask(t)
	vals := randomMap(m, 3)
	at := [3]float64{0, -20, 10}
	whiteInTitle := func(img image.Image) int {
		var n int
		for y := 0; y < previewTop-4; y++ {
			for x := 0; x < 200; x++ {
				if r, g, b := rgb(img.At(x, y)); r > 200 && g > 200 && b > 200 {
					n++
				}
			}
		}
		return n
	}
	plain, first := renderPNG(t, tpl, m, vals, at, PreviewOptions{Threshold: 2})
	titled, _ := renderPNG(t, tpl, m, vals, at, PreviewOptions{Threshold: 2, Title: "working memory"})
	if n := whiteInTitle(plain); n != 0 {
		t.Errorf("%d white pixels in the title area without a title", n)
	}
	if n := whiteInTitle(titled); n < 20 {
		t.Errorf("%d white pixels in the title area, want the title's text", n)
	}
	_, second := renderPNG(t, tpl, m, vals, at, PreviewOptions{Threshold: 2})
	if !bytes.Equal(first, second) {
		t.Error("two renders of the same map differ")
	}
}

func TestRenderPreviewErrors(t *testing.T) {
	t.Parallel()
	tpl, m := mustTemplate(t), mustMask(t)
	ok := make([]float32, m.Len())
	at := [3]float64{0, 0, 0}
	testCases := []struct {
		name   string
		tpl    *Volume
		mask   *Mask
		values []float32
		at     [3]float64
		opt    PreviewOptions
		want   string
	}{
		{"short values", tpl, m, ok[:10], at, PreviewOptions{}, "10 values for a mask of 28542 voxels"},
		{"volume instead of mask order", tpl, m, make([]float32, NVoxels), at, PreviewOptions{}, "116380 values"},
		{"nil template", nil, m, ok, at, PreviewOptions{}, "nil template"},
		{"template data and dims disagree", &Volume{Dims: [3]int{2, 2, 2}, Data: make([]float64, 7)}, m, ok, at, PreviewOptions{}, "template has 7 values"},
		{"singular template affine", &Volume{Dims: [3]int{1, 1, 1}, Data: []float64{1}}, m, ok, at, PreviewOptions{}, "cannot be inverted"},
		{"nil mask", tpl, nil, ok, at, PreviewOptions{}, "nil mask"},
		{"NaN position", tpl, m, ok, [3]float64{0, math.NaN(), 0}, PreviewOptions{}, "not finite"},
		{"NaN threshold", tpl, m, ok, at, PreviewOptions{Threshold: math.NaN()}, "threshold"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := RenderPreview(io.Discard, tc.tpl, tc.mask, tc.values, tc.at, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("RenderPreview error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestFormatLabels(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name string
		f    func(float64) string
		in   float64
		want string
	}{
		{"tick max", formatTick, 28.0812, "28.1"},
		{"tick half", formatTick, 14.0406, "14"},
		{"tick negative", formatTick, -3.5, "-3.5"},
		{"tick zero", formatTick, 0, "0"},
		{"tick large", formatTick, 1234.5, "1234"},
		{"mm integer", formatMM, -50, "-50"},
		{"mm decimal", formatMM, 37.96, "38"},
		{"mm tenth", formatMM, -20.44, "-20.4"},
		{"mm negative zero", formatMM, -0.01, "0"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.f(tc.in); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func BenchmarkRenderPreview(b *testing.B) {
	tpl, m := mustTemplate(b), mustMask(b)
	vals := bumpMap(m, [3]float64{38, -50, -20}, 28, 6)
	b.ReportAllocs()
	for b.Loop() {
		if err := RenderPreview(io.Discard, tpl, m, vals, [3]float64{38, -50, -20}, PreviewOptions{Threshold: 3, Title: "faces"}); err != nil {
			b.Fatal(err)
		}
	}
}
