// Package predict registers the Predict Cloud Function (CloudEvent from Pub/Sub, private): it keeps
// a lazily loaded global model and turns prediction jobs into stored results.
package predict

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/text2brain/text2brain/functions/internal/blobs"
	"github.com/text2brain/text2brain/functions/internal/bundle"
	"github.com/text2brain/text2brain/functions/internal/config"
	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/store"
	"github.com/text2brain/text2brain/functions/internal/worker"
)

// w is the instance's worker, with its global model, made on the first event.
var w = worker.NewLazy(newWorker)

func init() {
	functions.CloudEvent("Predict", func(ctx context.Context, e event.Event) error {
		wk, err := w.Get(ctx)
		if err != nil {
			// Misconfiguration or a backend down: let Pub/Sub redeliver once it is fixed.
			return fmt.Errorf("predict is not ready: %w", err)
		}
		return wk.HandleEvent(ctx, e)
	})
}

func newWorker(ctx context.Context) (*worker.Worker, error) {
	cfg, err := config.FromEnv(ctx)
	if err != nil {
		return nil, err
	}
	if err := cfg.ValidatePredict(); err != nil {
		return nil, err
	}
	b, err := blobs.New(context.Background())
	if err != nil {
		return nil, err
	}
	st, err := store.New(context.Background(), cfg.Project, cfg.Collection)
	if err != nil {
		return nil, err
	}
	load := func(ctx context.Context) (*model.Model, error) { return loadModel(ctx, cfg, b) }
	return worker.New(st, b, cfg.ResultsBucket, load), nil
}

// loadModel reads the bundle (from its bucket or directory) and opens the ONNX Runtime session.
func loadModel(ctx context.Context, cfg *config.Config, b *blobs.Store) (*model.Model, error) {
	start := time.Now()
	lib := cfg.ORTLibrary
	if bucket, name, ok := blobs.ParseURI(lib); ok {
		// The library ships next to the model in the cloud; /tmp is the writable place there.
		data, err := b.ReadAll(ctx, bucket, name)
		if err != nil {
			return nil, fmt.Errorf("fetching ONNX Runtime from %s: %w", lib, err)
		}
		lib = filepath.Join(os.TempDir(), "libonnxruntime.so")
		if err := os.WriteFile(lib, data, 0o755); err != nil {
			return nil, err
		}
	}
	bu, err := bundle.LoadFS(b.URIFS(ctx, cfg.ModelURI))
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", cfg.ModelURI, err)
	}
	m, err := model.New(bu, model.Options{ORTLibrary: lib})
	if err != nil {
		return nil, err
	}
	slog.InfoContext(ctx, "model loaded", "model_version", m.Version(), "ms", time.Since(start).Milliseconds())
	return m, nil
}
