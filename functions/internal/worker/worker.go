// Package worker is the Predict function's logic: it turns a job into a stored result, exactly once
// per document however often Pub/Sub delivers the job.
package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/text2brain/text2brain/functions/internal/blobs"
	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/querytext"
	"github.com/text2brain/text2brain/functions/internal/queue"
	"github.com/text2brain/text2brain/functions/internal/store"
)

// Worker handles the messages of the jobs topic.
type Worker struct {
	store         *store.Store
	blobs         *blobs.Store
	resultsBucket string
	model         *Lazy[*model.Model]
}

// New builds a worker; the model is loaded by load on first use.
func New(st *store.Store, b *blobs.Store, resultsBucket string, load func(context.Context) (*model.Model, error)) *Worker {
	return &Worker{store: st, blobs: b, resultsBucket: resultsBucket, model: NewLazy(load)}
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
	d, err := w.store.StartJob(ctx, msg.ID)
	if errors.Is(err, store.ErrNotFound) {
		slog.WarnContext(ctx, "dropping a job whose document is gone", "id", msg.ID)
		return nil
	}
	if err != nil {
		return err
	}
	if d.Status != store.Pending {
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
	if norm, err := querytext.Normalize(msg.Text); err != nil || norm != d.NormalizedQuery {
		return w.fail(ctx, msg.ID, "the job's text does not match its query")
	}

	start := time.Now()
	if err := w.store.CountPrediction(ctx, msg.ID); err != nil {
		return err
	}
	res, err := m.Predict(ctx, msg.Text)
	if errors.Is(err, model.ErrNoKnownTerms) {
		return w.fail(ctx, msg.ID, "the text contains no term the model knows")
	}
	if err != nil {
		return err
	}
	var nii, png bytes.Buffer
	if err := m.WriteNIfTI(&nii, res); err != nil {
		return err
	}
	if err := m.WritePreview(&png, res); err != nil {
		return err
	}
	// Objects first, document last: a document marked done always has its files. The bytes are a
	// function of the job, so a redelivery rewrites the same objects.
	base := "maps/" + m.Version() + "/" + msg.ID
	const immutable = "public, max-age=31536000, immutable"
	if err := w.blobs.Put(ctx, w.resultsBucket, base+".nii.gz", blobs.Object{Data: nii.Bytes(), ContentType: "application/gzip", CacheControl: immutable}); err != nil {
		return err
	}
	if err := w.blobs.Put(ctx, w.resultsBucket, base+".png", blobs.Object{Data: png.Bytes(), ContentType: "image/png", CacheControl: immutable}); err != nil {
		return err
	}
	r := toStore(res)
	r.MapObject, r.PreviewObject = base+".nii.gz", base+".png"
	r.ComputeMS = float64(time.Since(start).Microseconds()) / 1000
	wrote, err := w.store.Complete(ctx, msg.ID, r)
	if err != nil {
		return err
	}
	slog.InfoContext(ctx, "prediction", "id", msg.ID, "ms", r.ComputeMS, "first", wrote)
	return nil
}

func (w *Worker) fail(ctx context.Context, id, reason string) error {
	slog.WarnContext(ctx, "job failed", "id", id, "reason", reason)
	_, err := w.store.Fail(ctx, id, reason)
	return err
}

func toStore(res *model.Result) *store.Result {
	r := &store.Result{RecognizedTerms: res.Terms}
	for _, t := range res.RelatedTerms {
		r.RelatedTerms = append(r.RelatedTerms, store.Term{Term: t.Term, Weight: t.Weight})
	}
	for _, a := range res.RelatedArticles {
		r.RelatedArticles = append(r.RelatedArticles, store.Article{PMID: a.PMID, Title: a.Title, Authors: a.Authors,
			Year: a.Year, Journal: a.Journal, DOI: a.DOI, URL: a.URL(), Correlation: a.Correlation})
	}
	for _, p := range res.Peaks {
		r.Peaks = append(r.Peaks, store.Peak{MNI: p.MNI[:], Z: p.Z})
	}
	return r
}
