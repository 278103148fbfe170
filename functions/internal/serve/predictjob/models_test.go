package predictjob

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs/jobstest"
)

var (
	neuralOnce  sync.Once
	neuralModel *model.Model
	neuralErr   error
)

// A worker with two models runs each job on its own version's model, and loads each model on the
// first job for it, once; the default model's version is learnt by loading it, the other's from
// its manifest alone (a job for the default does not load the network).
func TestTwoModels(t *testing.T) {
	nq := realModel(t)
	store := &blobs.Store{}
	dir, lib := testenv.NeuralBundleDir(t), testenv.ORTLibrary(t)
	src := SourceAt(store, dir, lib)
	var nqLoads, nnLoads atomic.Int32
	w := worker{st: jobstest.NewStore(), bucket: &memBucket{objects: map[string]blobs.Object{}}}
	w.Worker = NewMulti(w.st, w.bucket, "results", []Source{
		{Load: func(context.Context) (*model.Model, error) { nqLoads.Add(1); return nq, nil }},
		{Version: src.Version, Load: func(ctx context.Context) (*model.Model, error) {
			nnLoads.Add(1)
			neuralOnce.Do(func() { neuralModel, neuralErr = src.Load(ctx) })
			return neuralModel, neuralErr
		}},
	})
	ctx := context.Background()
	nnVersion, err := src.Version(ctx)
	if err != nil || !strings.HasPrefix(nnVersion, "nn-") {
		t.Fatalf("the network's version from its manifest: %q, %v", nnVersion, err)
	}

	if err := w.Handle(ctx, w.queued(t, nq.Version(), "viewing faces")); err != nil {
		t.Fatal(err)
	}
	if nqLoads.Load() != 1 || nnLoads.Load() != 0 {
		t.Errorf("after a NeuroQuery job: %d, %d loads; want 1, 0", nqLoads.Load(), nnLoads.Load())
	}
	for _, text := range []string{"viewing faces", "working memory"} {
		job := w.queued(t, nnVersion, text)
		if err := w.Handle(ctx, job); err != nil {
			t.Fatal(err)
		}
		d := w.st.Doc(job.ID)
		if d.Status != jobs.Done || d.Result == nil || !strings.HasPrefix(d.Result.MapObject, "maps/"+nnVersion+"/") || len(d.Result.Peaks) == 0 {
			t.Fatalf("the network's job %q: %+v", text, d)
		}
	}
	if nqLoads.Load() != 1 || nnLoads.Load() != 1 {
		t.Errorf("after two network jobs: %d, %d loads; want 1, 1", nqLoads.Load(), nnLoads.Load())
	}

	// A job for a model this instance does not serve is retried (another instance may serve it),
	// and says which models this one serves.
	err = w.Handle(ctx, w.queued(t, "nn-0123456789abcdef", "faces"))
	if err == nil || !strings.Contains(err.Error(), nq.Version()) || !strings.Contains(err.Error(), nnVersion) {
		t.Errorf("a job for another model: %v", err)
	}
}
