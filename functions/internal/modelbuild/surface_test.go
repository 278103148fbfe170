package modelbuild

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/modelbuild/gifti"
)

func TestSurfaceSampling(t *testing.T) {
	dir := testenv.Data(t, "templates", "fsaverage5")
	s, err := SurfaceSampling(dir)
	if err != nil {
		t.Fatal(err)
	}
	white, err := gifti.ReadFile(filepath.Join(dir, "white_left.gii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	pial, err := gifti.ReadFile(filepath.Join(dir, "pial_left.gii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range s.Hemispheres {
		if h.Vertices() != 10242 || h.Samples != ribbonSamples {
			t.Fatalf("hemisphere %d (%s): %d vertices × %d samples", i, h.Name, h.Vertices(), h.Samples)
		}
	}
	left := s.Hemispheres[0]
	for _, v := range []int{0, 5000, 10241} {
		if left.Points[v*ribbonSamples] != pial.Points[v] || left.Points[v*ribbonSamples+ribbonSamples-1] != white.Points[v] {
			t.Errorf("vertex %d: samples %v, want from pial %v to white %v", v, left.Points[v*ribbonSamples:(v+1)*ribbonSamples], pial.Points[v], white.Points[v])
		}
	}
	// Left is left: every right hemisphere sample has x > -10 mm, most of the left's x < 0.
	var neg int
	for v := range left.Vertices() {
		if left.Points[v*ribbonSamples+1][0] < 0 {
			neg++
		}
	}
	if neg < left.Vertices()*95/100 {
		t.Errorf("%d of the left hemisphere's midpoints have x < 0", neg)
	}
}

// The estimate that stands in for the missing right white surface, measured on the left, where
// the real one exists: how far the estimated white vertex is from the real one.
func TestEstimateWhiteAgainstTheRealOne(t *testing.T) {
	dir := testenv.Data(t, "templates", "fsaverage5")
	pial, err := gifti.ReadFile(filepath.Join(dir, "pial_left.gii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	white, err := gifti.ReadFile(filepath.Join(dir, "white_left.gii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var thick []float64
	for v := range pial.Points {
		thick = append(thick, dist(pial.Points[v], white.Points[v]))
	}
	est := EstimateWhite(pial, median(thick))
	var errs []float64
	inward := 0
	for v := range pial.Points {
		errs = append(errs, dist(est.Points[v], white.Points[v]))
		// The estimate lies nearer to the real white vertex than the pial vertex does.
		if dist(est.Points[v], white.Points[v]) < thick[v] {
			inward++
		}
	}
	med := median(errs)
	t.Logf("median thickness %.2f mm; estimated white vertices are %.2f mm (median) from the real ones; %d%% closer than the pial vertex",
		median(thick), med, 100*inward/len(errs))
	if med > 1.5 || inward < len(errs)*75/100 || math.IsNaN(med) {
		t.Errorf("the estimate is poor: median error %.2f mm, %d of %d closer than the pial surface", med, inward, len(errs))
	}
}
