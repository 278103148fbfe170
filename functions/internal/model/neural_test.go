package model

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
)

// The tiny network's bundle (make model-neural-tiny: neural/train.py, exported by torch.onnx,
// bundled by text2brain model build-neural) runs through ONNX Runtime by its manifest alone: its
// tensors are named "features" → "brain", and its output is the whole 46×55×46 volume, which the
// runtime masks.
func TestNeuralBundleFollowsItsManifest(t *testing.T) {
	nq := open(t) // ONNX Runtime is loaded once per process, from the same library
	m, err := Open(testenv.NeuralBundleDir(t), Options{ORTLibrary: testenv.ORTLibrary(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	man := m.Bundle().Manifest
	c := m.Bundle().Contract()
	if man.Kind == bundle.KindNeuroQuery || !strings.HasPrefix(m.Version(), "nn-") || m.Version() == nq.Version() {
		t.Errorf("kind %q, version %q (NeuroQuery's %q)", man.Kind, m.Version(), nq.Version())
	}
	if c.Input.Name != "features" || c.Map.Name != "brain" || !c.Volume || c.Features != nil {
		t.Errorf("contract %+v: want features → brain, a volume, no feature output", c)
	}
	if man.Evaluation == nil || man.Evaluation.Articles == 0 || len(man.Evaluation.Compared) == 0 {
		t.Errorf("evaluation %+v: want the held-out figures", man.Evaluation)
	}

	r, err := m.Predict(context.Background(), "viewing faces")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Map) != m.Bundle().Mask.Len() || r.ModelVersion != m.Version() {
		t.Fatalf("a map of %d values for model %s; want %d, %s", len(r.Map), r.ModelVersion, m.Bundle().Mask.Len(), m.Version())
	}
	// The masked volume is the map: the graph's own output, read back at the mask's voxels.
	x := m.Featurizer().Featurize("viewing faces").Vector
	in := make([]float32, len(x))
	for i, v := range x {
		in[i] = float32(v)
	}
	vol, _, err := run(m.session, c, in)
	if err != nil {
		t.Fatal(err)
	}
	nonzero := 0
	for i, v := range m.Bundle().Mask.Voxels {
		if r.Map[i] != vol[v] {
			t.Fatalf("mask voxel %d: map %v, the graph's volume %v", i, r.Map[i], vol[v])
		}
		if v != 0 {
			nonzero++
		}
	}
	var outside float64
	for v, val := range vol {
		if !m.Bundle().Mask.Contains(v) {
			outside = math.Max(outside, math.Abs(float64(val)))
		}
	}
	if outside != 0 || nonzero == 0 {
		t.Errorf("the volume is %v outside the mask (want 0); %d non-zero voxels inside", outside, nonzero)
	}
	if len(r.Peaks) == 0 || len(r.RelatedArticles) == 0 {
		t.Errorf("%d peaks, %d related articles", len(r.Peaks), len(r.RelatedArticles))
	}
	// Without a feature output the related terms are the query's own, by their TF-IDF.
	var got []string
	for _, term := range r.RelatedTerms {
		got = append(got, term.Term)
		if term.Weight <= 0 || term.MapWeight <= 0 {
			t.Errorf("term %+v: want positive weights", term)
		}
	}
	if strings.Join(got, ",") != "viewing,face" {
		t.Errorf("related terms %v, want the query's own [viewing face]", got)
	}

	// A text whose terms the network never saw in training has no map in it (it has one in
	// NeuroQuery's).
	voc := m.Bundle().Vocabulary
	var unseen string
	for _, j := range voc.Unmapped {
		f := voc.Features[j]
		if fs := m.Featurizer().Featurize(f); len(fs.Terms) == 1 && fs.Terms[0] == f {
			if _, err := nq.Predict(context.Background(), f); err == nil {
				unseen = f
				break
			}
		}
	}
	if unseen == "" {
		t.Fatal("no single-word feature the tiny network did not see")
	}
	if _, err := m.Predict(context.Background(), unseen); !errors.Is(err, ErrNoMappedTerms) {
		t.Errorf("Predict(%q), a term unseen in training: %v, want ErrNoMappedTerms", unseen, err)
	}
}
