// Package predict registers the Predict Cloud Function (CloudEvent from Pub/Sub, private): it keeps
// a lazily loaded global model and turns prediction jobs into stored results.
package predict

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/serve/backends"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
	"github.com/text2brain/text2brain/functions/internal/serve/lazy"
	"github.com/text2brain/text2brain/functions/internal/serve/logging"
	"github.com/text2brain/text2brain/functions/internal/serve/predictjob"
)

// w is the instance's worker, made on the first event; it loads its model on first use.
var w = lazy.New(newWorker, 30*time.Second)

func init() {
	logging.Setup()
	functions.CloudEvent("Predict", func(ctx context.Context, e event.Event) error {
		// Every line about this delivery names it.
		ctx = logging.With(ctx, slog.String("event", e.ID()))
		wk, err := w.Get(ctx)
		if err != nil {
			// Misconfiguration or a backend down: let Pub/Sub redeliver once it is fixed.
			return fmt.Errorf("predict is not ready: %w", err)
		}
		return wk.HandleEvent(ctx, e)
	})
}

func newWorker(ctx context.Context) (*predictjob.Worker, error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, err
	}
	if err := cfg.ValidatePredict(); err != nil {
		return nil, err
	}
	set, err := backends.Open(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	load := func(ctx context.Context) (*model.Model, error) {
		return predictjob.LoadModel(ctx, set.Blobs, cfg.ModelURI, cfg.ORTLibrary)
	}
	return predictjob.New(set.Store, set.Blobs, cfg.ResultsBucket, load), nil
}
