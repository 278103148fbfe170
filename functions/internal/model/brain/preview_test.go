package brain

import (
	"bytes"
	"fmt"
	"hash/adler32"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
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

// BenchmarkPreviewerRender is the steady state of a model's previews: one Previewer, whose
// template slices through the peak are already cached.
func BenchmarkPreviewerRender(b *testing.B) {
	pv, err := NewPreviewer(mustTemplate(b), mustMask(b))
	if err != nil {
		b.Fatal(err)
	}
	at := [3]float64{38, -50, -20}
	vals := bumpMap(mustMask(b), at, 28, 6)
	opt := PreviewOptions{Threshold: 3, Title: "faces"}
	if err := pv.Render(io.Discard, vals, at, opt); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := pv.Render(io.Discard, vals, at, opt); err != nil {
			b.Fatal(err)
		}
	}
}

// referencePanel is a panel drawn the straightforward way, pixel by pixel through sampler.sample:
// what a Previewer's per-row and per-column tables must reproduce. x holds the map's values.
func referencePanel(tpl *Volume, m *Mask, values []float32, at [3]float64, thr float64, p panel) (c []color.RGBA, x []float64, vmax float64) {
	tplS, _ := newSampler(tpl)
	vol := make([]float64, NVoxels)
	for i, idx := range m.Voxels {
		if v := float64(values[i]); !math.IsNaN(v) && !math.IsInf(v, 0) {
			vol[idx] = v
			vmax = max(vmax, math.Abs(v))
		}
	}
	if vmax == 0 {
		vmax = 1
	}
	mapS, _ := newSampler(&Volume{Dims: Dims, Data: vol, Affine: Affine})
	grey := 255 / templateWhite(tpl)
	c, x = make([]color.RGBA, p.w*p.ht), make([]float64, p.w*p.ht)
	for py := range p.ht {
		for px := range p.w {
			pos := p.mni(px, py, at)
			n := py*p.w + px
			x[n] = mapS.sample(pos, Trilinear)
			if x[n] != 0 && math.Abs(x[n]) >= thr {
				c[n] = diverging(x[n] / vmax)
			} else {
				g := uint8(math.Round(min(max(tplS.sample(pos, Trilinear)*grey, 0), 255)))
				c[n] = color.RGBA{g, g, g, 255}
			}
		}
	}
	return c, x, vmax
}

// syntheticTemplate is a smooth head-like volume on a 2 mm grid with the given affine.
func syntheticTemplate(dims [3]int, affine [4][4]float64) *Volume {
	v := &Volume{Dims: dims, Affine: affine, Data: make([]float64, dims[0]*dims[1]*dims[2])}
	for i := range dims[0] {
		for j := range dims[1] {
			for k := range dims[2] {
				var w [3]float64
				for r := range 3 {
					w[r] = affine[r][0]*float64(i) + affine[r][1]*float64(j) + affine[r][2]*float64(k) + affine[r][3]
				}
				if w[0]*w[0]/70/70+(w[1]+18)*(w[1]+18)/95/95+(w[2]-5)*(w[2]-5)/80/80 < 1 {
					v.Data[(i*dims[1]+j)*dims[2]+k] = 120 + 60*math.Sin(w[0]/7)*math.Cos(w[1]/11) + w[2]/2
				}
			}
		}
	}
	return v
}

// TestPreviewerMatchesSampling compares every slice pixel of previews with the straightforward
// drawing: the same to float rounding (on amd64, exactly), through the real template and through
// synthetic ones whose voxel axes are flipped or permuted (the tables) or oblique (per pixel).
func TestPreviewerMatchesSampling(t *testing.T) {
	t.Parallel()
	m := mustMask(t)
	c, s := 2*math.Cos(0.2), 2*math.Sin(0.2)
	templates := []struct {
		name string
		tpl  *Volume
		fast bool // whether the panels sample through tables
	}{
		{"MNI template", mustTemplate(t), true},
		{"x flipped", syntheticTemplate([3]int{91, 109, 91}, [4][4]float64{{-2, 0, 0, 90}, {0, 2, 0, -126}, {0, 0, 2, -72}, {0, 0, 0, 1}}), true},
		{"axes permuted", syntheticTemplate([3]int{91, 91, 109}, [4][4]float64{{0, 2, 0, -90}, {0, 0, 2, -126}, {2, 0, 0, -72}, {0, 0, 0, 1}}), true},
		{"oblique", syntheticTemplate([3]int{91, 109, 91}, [4][4]float64{{c, -s, 0, -70}, {s, c, 0, -140}, {0, 0, 2, -72}, {0, 0, 0, 1}}), false},
	}
	nan := randomMap(m, 5)
	for i := 0; i < len(nan); i += 97 {
		nan[i] = float32(math.NaN())
	}
	maps := []struct {
		name   string
		values []float32
		at     [3]float64
		thr    float64
	}{
		{"bump at a voxel", bumpMap(m, [3]float64{38, -50, -20}, 28, 6), [3]float64{38, -50, -20}, 3},
		{"random between voxels", randomMap(m, 3), [3]float64{1.3, -7.7, 33.1}, 2},
		{"threshold 0", randomMap(m, 4), [3]float64{-42, 18, 46}, 0},
		{"negative threshold, NaN", nan, [3]float64{0, 0, 0}, -1},
		{"all hidden", randomMap(m, 6), [3]float64{10, 10, 10}, 1e9},
	}
	for _, tc := range templates {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pv, err := NewPreviewer(tc.tpl, m)
			if err != nil {
				t.Fatal(err)
			}
			for n, p := range pv.layout.panels {
				if got := newPlaneSampler(pv.tpl, p, [3]float64{}, make([]axisStep, p.w), make([]axisStep, p.ht), false).fast; got != tc.fast {
					t.Errorf("panel %d samples through tables: %v, want %v", n, got, tc.fast)
				}
			}
			for _, mc := range maps {
				var buf bytes.Buffer
				if err := pv.Render(&buf, mc.values, mc.at, PreviewOptions{Threshold: mc.thr}); err != nil {
					t.Fatal(err)
				}
				img, err := png.Decode(&buf)
				if err != nil {
					t.Fatal(err)
				}
				var inexact int
				l := pv.layout
				for n, p := range l.panels {
					want, x, vmax := referencePanel(tc.tpl, m, mc.values, mc.at, mc.thr, p)
					for py := range p.ht {
						// Leave out the labels written over the slices, at their tops and bottoms.
						if y := p.y0 + py; y < l.rowY+14 || y >= l.rowY+l.rowH-16 {
							continue
						}
						for px := range p.w {
							i := py*p.w + px
							got := img.At(p.x0+px, p.y0+py).(color.RGBA)
							if got == want[i] {
								continue
							}
							inexact++
							d := max(absDiff(got.R, want[i].R), absDiff(got.G, want[i].G), absDiff(got.B, want[i].B))
							atThreshold := math.Abs(math.Abs(x[i])-mc.thr) <= 1e-9*vmax
							if (d > 1 || isGrey(got) != isGrey(want[i])) && !atThreshold {
								t.Fatalf("%s, panel %d, pixel (%d, %d): %v, want %v (map %v)", mc.name, n, px, py, got, want[i], x[i])
							}
						}
					}
				}
				if inexact > 0 {
					t.Logf("%s: %d pixels differ by float rounding", mc.name, inexact)
				}
			}
		})
	}
}

func absDiff(a, b uint8) int { return int(max(a, b) - min(a, b)) }

// TestPreviewerCache renders through a Previewer that keeps only a few slices: what it draws is
// what a fresh render draws, byte for byte, whichever slices it has kept.
func TestPreviewerCache(t *testing.T) {
	t.Parallel()
	tpl, m := mustTemplate(t), mustMask(t)
	pv, err := NewPreviewer(tpl, m)
	if err != nil {
		t.Fatal(err)
	}
	pv.maxSlices = 4
	vals := randomMap(m, 9)
	ats := [][3]float64{{38, -50, -20}, {38, -50, -16}, {-2, -50, -20}, {38, -50, -20}, {0, 2, 0}, {math.Copysign(0, -1), 2, 0}, {38, -50, -20}}
	for i, at := range ats {
		var got, want bytes.Buffer
		if err := pv.Render(&got, vals, at, PreviewOptions{Threshold: 2}); err != nil {
			t.Fatal(err)
		}
		if err := RenderPreview(&want, tpl, m, vals, at, PreviewOptions{Threshold: 2}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("render %d through %v differs from a fresh one", i, at)
		}
		if n := len(pv.slices); n > pv.maxSlices {
			t.Fatalf("%d slices cached, want at most %d", n, pv.maxSlices)
		}
	}
	// −0 and 0 are one slice.
	pv.maxSlices = 100
	clear(pv.slices)
	for _, at := range ats[4:6] {
		if err := pv.Render(io.Discard, vals, at, PreviewOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(pv.slices); n != 3 {
		t.Errorf("%d slices cached through (0, 2, 0) and (−0, 2, 0), want 3", n)
	}
}

// TestPreviewerConcurrent renders maps through several slices at once on one Previewer whose
// cache is too small for them all (run it with -race).
func TestPreviewerConcurrent(t *testing.T) {
	t.Parallel()
	tpl, m := mustTemplate(t), mustMask(t)
	pv, err := NewPreviewer(tpl, m)
	if err != nil {
		t.Fatal(err)
	}
	pv.maxSlices = 5
	ref, err := NewPreviewer(tpl, m)
	if err != nil {
		t.Fatal(err)
	}
	type job struct {
		vals []float32
		at   [3]float64
		want []byte
	}
	var jobs []job
	for i := range 8 {
		at := [3]float64{float64(-40 + 12*(i%3)), -50, float64(-20 + 8*(i%2))}
		j := job{vals: randomMap(m, uint64(20+i)), at: at}
		var buf bytes.Buffer
		if err := ref.Render(&buf, j.vals, j.at, PreviewOptions{Threshold: 2, Title: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		j.want = buf.Bytes()
		jobs = append(jobs, j)
	}
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			for range 3 {
				var buf bytes.Buffer
				if err := pv.Render(&buf, j.vals, j.at, PreviewOptions{Threshold: 2, Title: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(buf.Bytes(), j.want) {
					t.Errorf("render %d through %v differs when rendered concurrently", i, j.at)
					return
				}
			}
		})
	}
	wg.Wait()
}

// templateWhiteTwoPass is templateWhite as it was first written, reading the template twice.
func templateWhiteTwoPass(v *Volume) float64 {
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

func TestTemplateWhite(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	odd := make([]float64, 5000)
	for i := range odd {
		odd[i] = rng.NormFloat64() * 50
	}
	odd[7], odd[14], odd[21] = math.Inf(1), math.NaN(), math.Inf(-1)
	testCases := []struct {
		name string
		data []float64
	}{
		{"MNI template", mustTemplate(t).Data},
		{"signed, with NaN and infinities", odd},
		{"zeros", make([]float64, 100)},
		{"one positive sample", []float64{3}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			v := &Volume{Data: tc.data}
			if got, want := templateWhite(v), templateWhiteTwoPass(v); got != want {
				t.Errorf("white %v, want %v", got, want)
			}
		})
	}
}

func TestPNGPieces(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 7, 8, 9, 2613} {
		cur, prev, out := make([]byte, n), make([]byte, n), make([]byte, n)
		for i := range cur {
			cur[i], prev[i] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		upFilter(out, cur, prev)
		for i := range out {
			if out[i] != cur[i]-prev[i] {
				t.Fatalf("Up filter of %d bytes, byte %d: %d − %d gave %d", n, i, cur[i], prev[i], out[i])
			}
		}
	}
	for _, n := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {5, 65521}, {65521, 65522}, {200000, 300001}} {
		a, b := make([]byte, n[0]), make([]byte, n[1])
		for i := range a {
			a[i] = 255 - byte(rng.IntN(3))
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if got, want := adler32Combine(adler32.Checksum(a), adler32.Checksum(b), len(b)), adler32.Checksum(append(a, b...)); got != want {
			t.Errorf("adler-32 of %d + %d bytes: %08x, want %08x", n[0], n[1], got, want)
		}
	}
}

// BenchmarkPreviewerNewSlice is a model's preview through a peak it has not drawn before: the
// template's white level is known, its three slices are not.
func BenchmarkPreviewerNewSlice(b *testing.B) {
	pv, err := NewPreviewer(mustTemplate(b), mustMask(b))
	if err != nil {
		b.Fatal(err)
	}
	at := [3]float64{38, -50, -20}
	vals := bumpMap(mustMask(b), at, 28, 6)
	opt := PreviewOptions{Threshold: 3, Title: "faces"}
	b.ReportAllocs()
	for b.Loop() {
		pv.mu.Lock()
		clear(pv.slices)
		pv.mu.Unlock()
		if err := pv.Render(io.Discard, vals, at, opt); err != nil {
			b.Fatal(err)
		}
	}
}
