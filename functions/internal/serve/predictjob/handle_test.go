package predictjob

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs/jobstest"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

var _ BlobCreator = (*blobs.Store)(nil)

// memBucket is a results bucket in memory that, like Cloud Storage with DoesNotExist, never
// replaces an object.
type memBucket struct {
	mu      sync.Mutex
	objects map[string]blobs.Object
}

func (m *memBucket) Create(ctx context.Context, bucket, name string, o blobs.Object) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[bucket+"/"+name]; ok {
		return blobs.ErrExists
	}
	m.objects[bucket+"/"+name] = o
	return nil
}

func (m *memBucket) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for n := range m.objects {
		out = append(out, n)
	}
	return out
}

var (
	modelOnce   sync.Once
	sharedModel *model.Model
	modelErr    error
)

// realModel is the bundle's model, loaded once for all tests: the worker's output is the model's.
func realModel(t testing.TB) *model.Model {
	t.Helper()
	dir, lib := testenv.BundleDir(t), testenv.ORTLibrary(t)
	modelOnce.Do(func() { sharedModel, modelErr = LoadModel(context.Background(), &blobs.Store{}, dir, lib) })
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return sharedModel
}

type worker struct {
	*Worker
	st     *jobstest.Store
	bucket *memBucket
	loads  *atomic.Int32
}

// newWorker is a worker on in-memory backends; with m nil its model never loads.
func newWorker(t testing.TB, m *model.Model) worker {
	t.Helper()
	w := worker{st: jobstest.NewStore(), bucket: &memBucket{objects: map[string]blobs.Object{}}, loads: &atomic.Int32{}}
	w.Worker = New(w.st, w.bucket, "results", func(context.Context) (*model.Model, error) {
		w.loads.Add(1)
		if m == nil {
			return nil, errors.New("no model in this test")
		}
		return m, nil
	})
	return w
}

// queued makes the document of text as Query does and returns its job.
func (w worker) queued(t testing.TB, version, text string) queue.Message {
	t.Helper()
	n, err := querytext.Normalize(text)
	if err != nil {
		t.Fatal(err)
	}
	q := &jobstest.Queue{}
	spec := jobs.Spec{ID: querytext.Key(version, n), Query: text, NormalizedQuery: n, ModelVersion: version}
	if _, err := jobs.New(w.st, q, jobs.Options{}).Ensure(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	return q.Messages()[0]
}

// A job is predicted once: its files are written and its document done; a redelivery is acked
// and changes nothing.
func TestJobCompletes(t *testing.T) {
	m := realModel(t)
	w := newWorker(t, m)
	ctx := context.Background()
	job := w.queued(t, m.Version(), "Viewing faces")
	if err := w.Handle(ctx, job); err != nil {
		t.Fatal(err)
	}
	d := w.st.Doc(job.ID)
	base := "maps/" + m.Version() + "/" + job.ID
	if d.Status != jobs.Done || d.Deliveries != 1 || d.Predictions != 1 || d.Result == nil ||
		d.Result.MapObject != base+".nii.gz" || d.Result.PreviewObject != base+".png" || d.Result.SurfaceObject != base+".surface.json.gz" {
		t.Fatalf("document %+v, result %+v", d, d.Result)
	}
	if !strings.Contains(strings.Join(d.Result.RecognizedTerms, " "), "face") {
		t.Errorf("recognized terms %v", d.Result.RecognizedTerms)
	}
	if len(d.Result.Peaks) == 0 || len(d.Result.RelatedArticles) == 0 || d.Result.ComputeMS <= 0 {
		t.Errorf("result %+v", d.Result)
	}
	nii, png := w.bucket.objects["results/"+base+".nii.gz"], w.bucket.objects["results/"+base+".png"]
	if nii.ContentType != "application/gzip" || len(nii.Data) == 0 || png.ContentType != "image/png" || nii.CacheControl != blobs.CacheImmutable {
		t.Errorf("stored files: %d bytes %q, %d bytes %q", len(nii.Data), nii.ContentType, len(png.Data), png.ContentType)
	}

	// The surface values: one per vertex of each fsaverage5 hemisphere, strongest where the map is
	// (the fusiform face area is on the ventral surface, and both hemispheres have values > 3).
	zr, err := gzip.NewReader(bytes.NewReader(w.bucket.objects["results/"+base+".surface.json.gz"].Data))
	if err != nil {
		t.Fatal(err)
	}
	var surf brain.SurfaceJSON
	if err := json.NewDecoder(zr).Decode(&surf); err != nil {
		t.Fatal(err)
	}
	maxOf := func(v []float32) float32 {
		m := float32(0)
		for _, x := range v {
			m = max(m, x)
		}
		return m
	}
	if surf.Mesh != "fsaverage5" || len(surf.Left) != 10242 || len(surf.Right) != 10242 || maxOf(surf.Left) < 3 || maxOf(surf.Right) < 3 {
		t.Errorf("surface %s: %d + %d values, max %v and %v", surf.Mesh, len(surf.Left), len(surf.Right), maxOf(surf.Left), maxOf(surf.Right))
	}

	if err := w.Handle(ctx, job); err != nil {
		t.Fatal(err)
	}
	again := w.st.Doc(job.ID)
	if again.Deliveries != 2 || again.Predictions != 1 || again.Result != d.Result || !again.CompletedAt.Equal(d.CompletedAt) {
		t.Errorf("a redelivery changed the document: %+v", again)
	}
	if n := len(w.bucket.names()); n != 3 {
		t.Errorf("%d objects after a redelivery, want 3", n)
	}
}

// A duplicate attempt whose files' names are taken (another machine ran it, or a crash came
// between the files and the document) writes its own, and the document points at them.
func TestTakenNamesAreNotReplaced(t *testing.T) {
	m := realModel(t)
	w := newWorker(t, m)
	job := w.queued(t, m.Version(), "faces")
	base := "maps/" + m.Version() + "/" + job.ID
	taken := blobs.Object{Data: []byte("another attempt's map")}
	w.bucket.objects["results/"+base+".nii.gz"] = taken
	if err := w.Handle(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	d := w.st.Doc(job.ID)
	if d.Status != jobs.Done || !strings.HasPrefix(d.Result.MapObject, base+"-") || strings.TrimSuffix(d.Result.MapObject, ".nii.gz") != strings.TrimSuffix(d.Result.PreviewObject, ".png") {
		t.Errorf("result objects %q, %q; want one suffixed name", d.Result.MapObject, d.Result.PreviewObject)
	}
	if got := w.bucket.objects["results/"+base+".nii.gz"]; string(got.Data) != string(taken.Data) {
		t.Error("the taken object was replaced")
	}
}

// A job whose document is finished is acked without loading the model or touching the result.
func TestFinishedDocumentIsAcked(t *testing.T) {
	for _, status := range []jobs.Status{jobs.Done, jobs.Failed} {
		t.Run(string(status), func(t *testing.T) {
			w := newWorker(t, nil)
			job := w.queued(t, "nq-1", "faces")
			d := w.st.Doc(job.ID)
			d.Status, d.Result, d.CompletedAt = status, &jobs.Result{MapObject: "first"}, time.Now()
			w.st.Put(d)
			if err := w.Handle(context.Background(), job); err != nil {
				t.Fatalf("Handle: %v, want the job acked", err)
			}
			after := w.st.Doc(job.ID)
			if w.loads.Load() != 0 || after.Deliveries != 1 || after.Predictions != 0 || after.Result != d.Result || after.Status != status {
				t.Errorf("%d model loads, document %+v", w.loads.Load(), after)
			}
		})
	}
}

// The job's outcome for Pub/Sub: nil acks it, an error has it redelivered.
func TestJobOutcomes(t *testing.T) {
	m := realModel(t)
	testCases := []struct {
		name string
		// prepare returns the job to handle.
		prepare   func(t *testing.T, w worker) queue.Message
		redeliver bool
		status    jobs.Status
		// untouched: the document must not change at all (a forged job).
		untouched bool
	}{
		{name: "forged: text not the id's", prepare: func(t *testing.T, w worker) queue.Message {
			job := w.queued(t, m.Version(), "faces")
			job.Text = "something else"
			return job
		}, status: jobs.Pending, untouched: true},
		{name: "forged: text not normalised", prepare: func(t *testing.T, w worker) queue.Message {
			job := w.queued(t, m.Version(), "faces")
			job.Text = "Faces"
			return job
		}, status: jobs.Pending, untouched: true},
		{name: "forged: another model named, same id", prepare: func(t *testing.T, w worker) queue.Message {
			job := w.queued(t, m.Version(), "faces")
			job.ModelVersion = "nq-other"
			return job
		}, status: jobs.Pending, untouched: true},
		{name: "forged: another model, its own id, no document", prepare: func(t *testing.T, w worker) queue.Message {
			w.queued(t, m.Version(), "faces")
			return queue.Message{ID: querytext.Key("nq-other", "faces"), Text: "faces", ModelVersion: "nq-other"}
		}},
		{name: "no known term", prepare: func(t *testing.T, w worker) queue.Message {
			return w.queued(t, m.Version(), "oh i believe in yesterday")
		}, status: jobs.Failed},
		{name: "document gone", prepare: func(t *testing.T, w worker) queue.Message {
			return queue.Message{ID: querytext.Key(m.Version(), "faces"), Text: "faces", ModelVersion: m.Version()}
		}},
		{name: "another model version", prepare: func(t *testing.T, w worker) queue.Message {
			return w.queued(t, "nq-other", "faces")
		}, redeliver: true, status: jobs.Pending},
		{name: "store down", prepare: func(t *testing.T, w worker) queue.Message {
			job := w.queued(t, m.Version(), "faces")
			w.st.Inject(jobstest.OpTransact, errors.New("the result store is down"))
			return job
		}, redeliver: true, status: jobs.Pending},
		{name: "prediction not counted", prepare: func(t *testing.T, w worker) queue.Message {
			job := w.queued(t, m.Version(), "faces")
			w.st.Inject(jobstest.OpCountPrediction, errors.New("the result store is down"))
			return job
		}, redeliver: true, status: jobs.Pending},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorker(t, m)
			job := tc.prepare(t, w)
			err := w.Handle(context.Background(), job)
			if (err != nil) != tc.redeliver {
				t.Fatalf("Handle: %v, want redelivery %v", err, tc.redeliver)
			}
			d := w.st.Doc(job.ID)
			if tc.status == "" {
				if d != nil {
					t.Errorf("document %+v appeared", d)
				}
				return
			}
			if tc.untouched {
				if w.st.Calls(jobstest.OpTransact) != 0 || d.Deliveries != 0 {
					t.Errorf("a forged job changed the document: %+v (%d transactions)", d, w.st.Calls(jobstest.OpTransact))
				}
			}
			if d.Status != tc.status || (tc.status == jobs.Failed && (d.Error == "" || d.Retryable)) {
				t.Errorf("document %+v, want %s", d, tc.status)
			}
			if n := len(w.bucket.names()); n != 0 {
				t.Errorf("%d files written", n)
			}
		})
	}
}

// A job that fails on every delivery is given up after MaxAttempts: its document fails retryably
// with the last error, the job is acked, and a new query of the text starts afresh.
func TestPoisonJobIsGivenUp(t *testing.T) {
	m := realModel(t)
	w := newWorker(t, m)
	job := w.queued(t, m.Version(), "faces")
	w.st.Inject(jobstest.OpCountPrediction, errors.New("the disk is on fire"))
	for i := 1; i < MaxAttempts; i++ {
		if err := w.Handle(context.Background(), job); err == nil {
			t.Fatalf("delivery %d: acked, want a redelivery", i)
		}
		if d := w.st.Doc(job.ID); d.Status != jobs.Pending || d.Deliveries != int64(i) {
			t.Fatalf("after delivery %d: %+v", i, d)
		}
	}
	if err := w.Handle(context.Background(), job); err != nil {
		t.Fatalf("delivery %d: %v, want the poison job acked", MaxAttempts, err)
	}
	d := w.st.Doc(job.ID)
	if d.Status != jobs.Failed || !d.Retryable || !strings.Contains(d.Error, "failed 5 times") || !strings.Contains(d.Error, "the disk is on fire") {
		t.Fatalf("given up: %+v", d)
	}
	// Pub/Sub's own count (with a dead-letter policy) counts too.
	w2 := newWorker(t, m)
	job2 := w2.queued(t, m.Version(), "faces")
	w2.st.Inject(jobstest.OpCountPrediction, errors.New("the disk is on fire"))
	if err := w2.handleDelivery(context.Background(), job2, MaxAttempts); err != nil {
		t.Fatalf("the last allowed delivery by Pub/Sub's count: %v", err)
	}
	if d := w2.st.Doc(job2.ID); d.Status != jobs.Failed || !d.Retryable {
		t.Errorf("%+v", d)
	}
	// A new query restarts a given-up map.
	w.st.Inject(jobstest.OpCountPrediction, nil)
	q := &jobstest.Queue{}
	spec := jobs.Spec{ID: job.ID, Query: "faces", NormalizedQuery: "faces", ModelVersion: m.Version()}
	if d, err := jobs.New(w.st, q, jobs.Options{}).Ensure(context.Background(), spec); err != nil || d.Status != jobs.Pending || len(q.Messages()) != 1 {
		t.Errorf("a new query after giving up: %+v, %v, %d jobs", d, err, len(q.Messages()))
	}
}
