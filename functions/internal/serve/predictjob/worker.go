// Package predictjob is the Predict function's logic: it turns a job into a stored result, exactly once
// per document however often Pub/Sub delivers the job.
package predictjob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/lazy"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// BlobCreator writes the result files, never replacing an object (blobs.ErrExists).
type BlobCreator interface {
	Create(ctx context.Context, bucket, name string, o blobs.Object) error
}

// Worker handles the messages of the jobs topic.
type Worker struct {
	jobs          *jobs.Lifecycle
	blobs         BlobCreator
	resultsBucket string
	model         *lazy.Value[*model.Model]
}

// modelLoadTimeout bounds one attempt at loading the model (bundle download and session).
const modelLoadTimeout = 5 * time.Minute

// New builds a worker on the result store and the results bucket; the model is loaded by load on
// first use, once per instance.
func New(st jobs.Store, b BlobCreator, resultsBucket string, load func(context.Context) (*model.Model, error)) *Worker {
	return &Worker{jobs: jobs.New(st, nil, jobs.Options{}), blobs: b, resultsBucket: resultsBucket, model: lazy.New(load, modelLoadTimeout)}
}

// LoadModel reads the bundle at modelURI (a gs:// prefix or a directory) and opens an ONNX Runtime
// session with the library at ortLibrary (a path, or a gs:// object fetched into the temporary
// directory, which is the writable place on Cloud Functions).
func LoadModel(ctx context.Context, b *blobs.Store, modelURI, ortLibrary string) (*model.Model, error) {
	start := time.Now()
	lib := ortLibrary
	if bucket, name, ok := blobs.ParseURI(ortLibrary); ok {
		lib = filepath.Join(os.TempDir(), "libonnxruntime.so")
		// Once loaded, the library is mapped: rewriting it would crash the instance.
		if loaded, ok := model.ORTLoaded(); !ok || loaded != lib {
			if err := fetch(ctx, b, bucket, name, lib); err != nil {
				return nil, fmt.Errorf("fetching ONNX Runtime from %s: %w", ortLibrary, err)
			}
		}
	}
	bu, err := bundle.LoadFS(b.URIFS(ctx, modelURI))
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", modelURI, err)
	}
	m, err := model.New(bu, model.Options{ORTLibrary: lib})
	if err != nil {
		return nil, err
	}
	slog.InfoContext(ctx, "model loaded", "model_version", m.Version(), "ms", time.Since(start).Milliseconds())
	return m, nil
}

// fetch copies an object to a file atomically.
func fetch(ctx context.Context, b *blobs.Store, bucket, name, path string) error {
	data, err := b.ReadAll(ctx, bucket, name)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// pubsubEnvelope is the data of a google.cloud.pubsub.topic.v1.messagePublished CloudEvent.
type pubsubEnvelope struct {
	Message struct {
		Data      []byte `json:"data"`
		MessageID string `json:"messageId"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// HandleEvent is the CloudEvent entry point. A nil error acks the message; an error makes Pub/Sub
// redeliver it, so only transient failures return one.
func (w *Worker) HandleEvent(ctx context.Context, e event.Event) error {
	var env pubsubEnvelope
	if err := e.DataAs(&env); err != nil {
		slog.ErrorContext(ctx, "dropping an event that is not a Pub/Sub message", "event", e.ID(), "err", err)
		return nil
	}
	msg, err := queue.Decode(env.Message.Data)
	if err != nil {
		slog.ErrorContext(ctx, "dropping a malformed message", "message", env.Message.MessageID, "err", err)
		return nil
	}
	return w.Handle(ctx, msg)
}

// Handle processes one message.
func (w *Worker) Handle(ctx context.Context, msg queue.Message) error {
	if msg.Warmup {
		start := time.Now()
		if _, err := w.model.Get(ctx); err != nil {
			// A warm-up is best effort: the next job retries the load.
			slog.ErrorContext(ctx, "warm-up: loading the model failed", "err", err)
			return nil
		}
		slog.InfoContext(ctx, "warm-up", "ms", time.Since(start).Milliseconds())
		return nil
	}
	if !querytext.ValidKey(msg.ID) {
		slog.ErrorContext(ctx, "dropping a job with an invalid id", "id", msg.ID)
		return nil
	}
	d, run, err := w.jobs.Start(ctx, msg.ID)
	if errors.Is(err, jobs.ErrNotFound) {
		slog.WarnContext(ctx, "dropping a job whose document is gone", "id", msg.ID)
		return nil
	}
	if err != nil {
		return err
	}
	if !run {
		slog.InfoContext(ctx, "job already finished", "id", msg.ID, "status", d.Status)
		return nil
	}
	m, err := w.model.Get(ctx)
	if err != nil {
		return fmt.Errorf("loading the model: %w", err)
	}
	if msg.ModelVersion != m.Version() || d.ModelVersion != m.Version() {
		// During a deployment Query and Predict can serve different versions for a while: an
		// instance with the job's version will take it on a redelivery, so this is not final.
		return fmt.Errorf("the job is for model %s and this instance serves model %s", msg.ModelVersion, m.Version())
	}
	if msg.Text != d.NormalizedQuery {
		return w.fail(ctx, msg.ID, "the job's text does not match its query")
	}

	start := time.Now()
	if err := w.jobs.CountPrediction(ctx, msg.ID); err != nil {
		return err
	}
	res, err := m.Predict(ctx, msg.Text)
	if errors.Is(err, model.ErrNoKnownTerms) {
		return w.fail(ctx, msg.ID, err.Error())
	}
	if err != nil {
		return err
	}
	names, err := w.writeObjects(ctx, m, res, "maps/"+m.Version()+"/"+msg.ID)
	if err != nil {
		return err
	}
	r := toResult(res)
	r.MapObject, r.PreviewObject, r.SurfaceObject = names.nifti, names.preview, names.surface
	r.ComputeMS = float64(time.Since(start).Microseconds()) / 1000
	wrote, err := w.jobs.Complete(ctx, msg.ID, r)
	if err != nil {
		return err
	}
	slog.InfoContext(ctx, "prediction", "id", msg.ID, "ms", r.ComputeMS, "first", wrote)
	return nil
}

// objectNames are the names of a result's stored files.
type objectNames struct{ nifti, preview, surface string }

// writeObjects stores the map, its preview and its surface values before the document is marked
// done, so that a done document always has its files. Objects are never replaced: a redelivery
// after a crash, or a duplicate delivery running at the same time on another machine (whose
// float32 arithmetic may differ in the last bits), writes its own objects under a suffixed name,
// and the document points at the objects of the attempt that completes it. The usual name serves
// the usual case.
func (w *Worker) writeObjects(ctx context.Context, m *model.Model, res *model.Result, base string) (objectNames, error) {
	var nii, png, surf bytes.Buffer
	if err := m.WriteNIfTI(&nii, res); err != nil {
		return objectNames{}, err
	}
	if err := m.WritePreview(&png, res); err != nil {
		return objectNames{}, err
	}
	if err := m.WriteSurface(&surf, res); err != nil {
		return objectNames{}, err
	}
	files := []struct {
		suffix, contentType string
		data                []byte
	}{
		{".nii.gz", "application/gzip", nii.Bytes()},
		{".png", "image/png", png.Bytes()},
		{".surface.json.gz", "application/gzip", surf.Bytes()},
	}
	for attempt := 0; ; attempt++ {
		name := base
		if attempt > 0 {
			name = fmt.Sprintf("%s-%08x", base, rand.Uint32())
		}
		var err error
		for _, f := range files {
			if err = w.blobs.Create(ctx, w.resultsBucket, name+f.suffix, blobs.Object{Data: f.data, ContentType: f.contentType, CacheControl: blobs.CacheImmutable}); err != nil {
				break
			}
		}
		switch {
		case err == nil:
			return objectNames{name + ".nii.gz", name + ".png", name + ".surface.json.gz"}, nil
		case !errors.Is(err, blobs.ErrExists) || attempt == 3:
			return objectNames{}, err
		}
	}
}

func (w *Worker) fail(ctx context.Context, id, reason string) error {
	slog.WarnContext(ctx, "job failed", "id", id, "reason", reason)
	_, err := w.jobs.Fail(ctx, id, reason)
	return err
}

func toResult(res *model.Result) *jobs.Result {
	r := &jobs.Result{RecognizedTerms: res.Terms}
	for _, t := range res.RelatedTerms {
		r.RelatedTerms = append(r.RelatedTerms, jobs.Term{Term: t.Term, Weight: t.Weight})
	}
	for _, a := range res.RelatedArticles {
		r.RelatedArticles = append(r.RelatedArticles, jobs.Article{PMID: a.PMID, Title: a.Title, Authors: a.Authors,
			Year: a.Year, Journal: a.Journal, DOI: a.DOI, URL: a.URL(), Correlation: a.Correlation})
	}
	for _, p := range res.Peaks {
		r.Peaks = append(r.Peaks, jobs.Peak{MNI: p.MNI[:], Z: p.Z})
	}
	return r
}
