// Package predict registers the Predict Cloud Function (HTTP, private, invoked by Pub/Sub's push
// subscription): it keeps a lazily loaded global model and turns prediction jobs into stored
// results. It takes the push requests itself (predictjob.PushHandler) rather than through the
// functions framework's CloudEvent conversion, so that it bounds what it reads, answers bad
// requests with a short JSON error and acks forged jobs without touching any document.
package predict

import (
	"context"
	"os"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/text2brain/text2brain/functions/internal/serve/backends"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
	"github.com/text2brain/text2brain/functions/internal/serve/lazy"
	"github.com/text2brain/text2brain/functions/internal/serve/logging"
	"github.com/text2brain/text2brain/functions/internal/serve/predictjob"
)

// w is the instance's worker, made on the first event; it loads its model on first use.
var w = lazy.New(newWorker, 30*time.Second)

// stats counts the requests and jobs the instance refused (in its log lines too).
var stats predictjob.Stats

func init() {
	logging.Setup()
	h := predictjob.PushHandler(w.Get, &stats)
	functions.HTTP("Predict", logging.Middleware(os.Getenv("GOOGLE_CLOUD_PROJECT"), h).ServeHTTP)
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
	// Each model's version is read from its bundle's manifest, so that a job for one model loads
	// that one alone (the default, first, is the one a warm-up loads).
	sources := make([]predictjob.Source, 0, 1+len(cfg.MoreModelURIs))
	for _, uri := range append([]string{cfg.ModelURI}, cfg.MoreModelURIs...) {
		sources = append(sources, predictjob.SourceAt(set.Blobs, uri, cfg.ORTLibrary))
	}
	return predictjob.NewMulti(set.Store, set.Blobs, cfg.ResultsBucket, sources), nil
}
