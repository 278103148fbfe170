package model

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/neuroquery"
)

var (
	openOnce  sync.Once
	sharedM   *Model
	sharedErr error
)

func open(t testing.TB) *Model {
	t.Helper()
	dir, lib := testenv.BundleDir(t), testenv.ORTLibrary(t)
	openOnce.Do(func() { sharedM, sharedErr = Open(dir, Options{ORTLibrary: lib}) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedM
}

func predict(t *testing.T, text string) *Result {
	t.Helper()
	r, err := open(t).Predict(context.Background(), text)
	if err != nil {
		t.Fatalf("Predict(%q): %v", text, err)
	}
	return r
}

// The ONNX graph in float32 must agree with the float64 gonum reference read straight from the
// NeuroQuery files: max |onnx − ref| ≤ 1e-4 · max |ref| over the whole map.
func TestONNXMatchesReference(t *testing.T) {
	m := open(t)
	ref, err := neuroquery.Load(testenv.Data(t, "neuroquery_model"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"faces", "working memory", "self-generated thought", "reading a book",
		"listening to music", "pain", "the amygdala responds to fearful faces and threat"} {
		t.Run(q, func(t *testing.T) {
			fs := m.Featurizer().Featurize(q)
			z, smoothed, err := m.Infer(fs.Vector)
			if err != nil {
				t.Fatal(err)
			}
			want := ref.ZMap(fs.Vector)
			if d := maxRelDiff(z, want); d > 1e-4 {
				t.Errorf("z-map: max relative difference %.2g > 1e-4", d)
			}
			if d := maxRelDiff(smoothed, ref.Smooth(fs.Vector)); d > 1e-4 {
				t.Errorf("smoothed features: max relative difference %.2g > 1e-4", d)
			}
		})
	}
}

func maxRelDiff(got []float32, want []float64) float64 {
	var maxDiff, maxRef float64
	for i := range want {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-want[i]))
		maxRef = math.Max(maxRef, math.Abs(want[i]))
	}
	return maxDiff / maxRef
}

func TestAnatomy(t *testing.T) {
	res, err := open(t).CheckAnatomy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Pass {
			t.Errorf("%q: strongest peak at %v, want it in %s", r.Query, r.Peak.MNI, r.Region)
		}
	}
	// The NeuroQuery model's own peak values, which the float64 reference gives too.
	for q, z := range map[string]float64{"faces": 28.08, "working memory": 17.03} {
		if p := predict(t, q).Peaks[0]; math.Abs(p.Z-z) > 0.01 {
			t.Errorf("%q: peak z = %.3f, want ≈ %.2f", q, p.Z, z)
		}
	}
}

// The checks tell regions apart: each refuses the other checks' NeuroQuery peaks.
func TestAnatomyChecksDiscriminate(t *testing.T) {
	res, err := open(t).CheckAnatomy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range AnatomyChecks {
		for j, r := range res {
			if i != j && c.In(r.Peak.MNI) {
				t.Errorf("the %q check accepts the %q peak at %v", c.Query, r.Query, r.Peak.MNI)
			}
		}
	}
}

func TestNoKnownTerms(t *testing.T) {
	m := open(t)
	for _, q := range []string{"oh i believe in yesterday", "", "   ", "!!!", "of the and"} {
		if r, err := m.Predict(context.Background(), q); !errors.Is(err, ErrNoKnownTerms) {
			t.Errorf("Predict(%q) = %v, %v; want ErrNoKnownTerms", q, r, err)
		}
	}
}

// A text whose every term has no map is refused before inference, as Query refuses it; the
// bundle's record of those features agrees with the graph's output for a sample of both kinds;
// and without the record (a bundle built before it) the graph's output still refuses the text.
func TestNoMappedTerms(t *testing.T) {
	m := open(t)
	for _, q := range []string{"abscess", "abuse alcohol", "abscess; abuse alcohol"} {
		r, err := m.Predict(context.Background(), q)
		if !errors.Is(err, ErrNoMappedTerms) || !errors.Is(err, ErrNoKnownTerms) {
			t.Errorf("Predict(%q) = %v, %v; want ErrNoMappedTerms, which is also ErrNoKnownTerms", q, r, err)
		}
	}
	if r := predict(t, "abscess faces"); len(r.Peaks) == 0 || r.Peaks[0].Z < 10 {
		t.Errorf("a text with one mapped term: peaks %v", r.Peaks)
	}

	voc := m.Bundle().Vocabulary
	if len(voc.Unmapped) != 1394 {
		t.Fatalf("the bundle records %d features without a map, want 1,394: rebuild it with make model", len(voc.Unmapped))
	}
	unmapped := voc.UnmappedTerms()
	checked := map[bool]int{}
	for j := 0; j < m.Featurizer().NumFeatures() && (checked[true] < 40 || checked[false] < 40); j += 7 {
		want := unmapped[m.Featurizer().Feature(j)]
		if checked[want] >= 40 {
			continue
		}
		checked[want]++
		x := make([]float64, m.Featurizer().NumFeatures())
		x[j] = 1 // the L2-normalised vector of the term alone
		_, smoothed, err := m.Infer(x)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.unmappedVector(smoothed); got != want {
			t.Errorf("feature %d %q: the graph's selected vector is zero: %v, the bundle says unmapped: %v", j, m.Featurizer().Feature(j), got, want)
		}
	}

	old := *m
	old.unmapped = map[string]bool{}
	if _, err := old.Predict(context.Background(), "abscess"); !errors.Is(err, ErrNoMappedTerms) {
		t.Errorf("without the bundle's record: %v, want ErrNoMappedTerms from the graph's output", err)
	}
}

func TestResultContents(t *testing.T) {
	r := predict(t, "Viewing FACES; faces!")
	if diff := cmp.Diff([]string{"viewing", "face"}, r.Terms); diff != "" {
		t.Errorf("terms (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"viewing", "faces", "faces"}, r.Phrases); diff != "" {
		t.Errorf("phrases (-want +got):\n%s", diff)
	}
	if len(r.Map) != 28542 {
		t.Fatalf("map has %d values", len(r.Map))
	}
	if len(r.RelatedTerms) != NumTerms || r.RelatedTerms[0].Term != "face" {
		t.Errorf("related terms %v: want %d, led by face", r.RelatedTerms, NumTerms)
	}
	for i := 1; i < len(r.RelatedTerms); i++ {
		if r.RelatedTerms[i].Weight > r.RelatedTerms[i-1].Weight {
			t.Errorf("related terms not sorted: %v", r.RelatedTerms)
		}
	}
	if len(r.RelatedArticles) != NumArticles {
		t.Fatalf("%d related articles, want %d", len(r.RelatedArticles), NumArticles)
	}
	for i, a := range r.RelatedArticles {
		if a.Correlation <= 0 || a.Correlation > 1 || (i > 0 && a.Correlation > r.RelatedArticles[i-1].Correlation) {
			t.Errorf("article %d: correlation %v out of order or range", i, a.Correlation)
		}
		if a.PMID == 0 || a.Title == "" {
			t.Errorf("article %d has no pmid or title: %+v", i, a)
		}
	}
	// Face articles should lead a face query.
	var faceTitles int
	for _, a := range r.RelatedArticles {
		if strings.Contains(strings.ToLower(a.Title), "face") || strings.Contains(strings.ToLower(a.Title), "facial") {
			faceTitles++
		}
	}
	if faceTitles < 3 {
		t.Errorf("only %d of the top articles for faces mention faces: %v", faceTitles, r.RelatedArticles)
	}
	if len(r.Peaks) == 0 || len(r.Peaks) > NumPeaks {
		t.Errorf("%d peaks", len(r.Peaks))
	}
}

func TestLongQuery(t *testing.T) {
	text := strings.Repeat("reading words and listening to music, ", 300)[:10000]
	r := predict(t, text)
	if len(r.Terms) == 0 || len(r.Peaks) == 0 {
		t.Errorf("10,000-character query: terms %v, %d peaks", r.Terms, len(r.Peaks))
	}
}

func TestConcurrentPredictionsAgree(t *testing.T) {
	m := open(t)
	want := predict(t, "reading a book")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := m.Predict(context.Background(), "reading a book")
			if err == nil && !cmp.Equal(r.Map, want.Map) {
				err = errors.New("a concurrent prediction gave another map")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestOutputs(t *testing.T) {
	m := open(t)
	r := predict(t, "working memory")
	var nii bytes.Buffer
	if err := m.WriteNIfTI(&nii, r); err != nil {
		t.Fatal(err)
	}
	vol, err := brain.ReadNIfTI(&nii)
	if err != nil {
		t.Fatal(err)
	}
	if vol.Affine != brain.Affine {
		t.Errorf("affine %v", vol.Affine)
	}
	for p, idx := range m.Bundle().Mask.Voxels {
		i, j, k := brain.Coords(int(idx))
		if got := vol.At(i, j, k); got != float64(r.Map[p]) {
			t.Fatalf("voxel %d,%d,%d: %v in the file, %v in the result", i, j, k, got, r.Map[p])
		}
	}
	var png bytes.Buffer
	if err := m.WritePreview(&png, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png.Bytes(), []byte("\x89PNG")) {
		t.Error("preview is not a PNG")
	}
}

// A missing library must say what to do. ONNX Runtime is loaded once per process, so this runs in a
// child process of the test binary.
func TestMissingORTLibrary(t *testing.T) {
	if os.Getenv("TEXT2BRAIN_CHILD") == "missing-ort" {
		_, err := Open(testenv.BundleDir(t), Options{ORTLibrary: "/nonexistent/libonnxruntime.so"})
		if err == nil {
			t.Fatal("Open succeeded without a library")
		}
		os.Stdout.WriteString("ERR: " + err.Error() + "\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMissingORTLibrary$", "-test.v")
	cmd.Env = append(os.Environ(), "TEXT2BRAIN_CHILD=missing-ort")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ERR: model: ONNX Runtime library /nonexistent/libonnxruntime.so not found: run `make ort`") {
		t.Errorf("error does not say what is missing and how to get it:\n%s", out)
	}
}

func BenchmarkOpen(b *testing.B) {
	dir, lib := testenv.BundleDir(b), testenv.ORTLibrary(b)
	for b.Loop() {
		m, err := Open(dir, Options{ORTLibrary: lib})
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

// BenchmarkPredict is one full prediction: features → ONNX map → related articles and peaks → terms.
func BenchmarkPredict(b *testing.B) {
	m := open(b)
	queries := []string{"faces", "working memory", "self-generated thought", "reading a book", "listening to music"}
	i := 0
	for b.Loop() {
		if _, err := m.Predict(context.Background(), queries[i%len(queries)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
