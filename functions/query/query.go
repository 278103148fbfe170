// Package query registers the Query Cloud Function (HTTP, public): the JSON API, answered from the
// Firestore cache or by publishing a prediction job.
package query

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/text2brain/text2brain/functions/internal/api"
	"github.com/text2brain/text2brain/functions/internal/blobs"
	"github.com/text2brain/text2brain/functions/internal/bundle"
	"github.com/text2brain/text2brain/functions/internal/config"
	"github.com/text2brain/text2brain/functions/internal/queue"
	"github.com/text2brain/text2brain/functions/internal/store"
	"github.com/text2brain/text2brain/functions/internal/worker"
)

// server is made on the first request, not in init(), so that the instance starts (and says what
// is wrong) even when configuration or a backend is missing; a failed attempt is retried.
var server = worker.NewLazy(newServer)

func init() {
	functions.HTTP("Query", func(w http.ResponseWriter, r *http.Request) {
		h, err := server.Get(r.Context())
		if err != nil {
			slog.ErrorContext(r.Context(), "Query is not ready", "err", err)
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Retry-After", "10")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "{\"error\":{\"code\":\"unavailable\",\"message\":%q}}\n", "The service is starting or misconfigured: "+err.Error())
			return
		}
		h.ServeHTTP(w, r)
	})
}

func newServer(ctx context.Context) (http.Handler, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cfg, err := config.FromEnv(ctx)
	if err != nil {
		return nil, err
	}
	if err := cfg.ValidateQuery(); err != nil {
		return nil, err
	}
	b, err := blobs.New(ctx)
	if err != nil {
		return nil, err
	}
	h, err := bundle.LoadHeader(b.URIFS(ctx, cfg.ModelURI))
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", cfg.ModelURI, err)
	}
	st, err := store.New(context.Background(), cfg.Project, cfg.Collection)
	if err != nil {
		return nil, err
	}
	q, err := queue.New(context.Background(), cfg.Project, cfg.Topic)
	if err != nil {
		return nil, err
	}
	s, err := api.New(cfg, st, q, b, h)
	if err != nil {
		return nil, err
	}
	slog.Info("Query ready", "model_version", s.ModelVersion())
	return s.Handler(), nil
}
