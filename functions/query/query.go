// Package query registers the Query Cloud Function (HTTP, public): the web page and the JSON API,
// answered from the Firestore cache or by publishing a prediction job.
package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"golang.org/x/sync/errgroup"

	"github.com/text2brain/text2brain/frontend"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/bundle/manifest"
	"github.com/text2brain/text2brain/functions/internal/serve/backends"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
	"github.com/text2brain/text2brain/functions/internal/serve/lazy"
	"github.com/text2brain/text2brain/functions/internal/serve/logging"
	"github.com/text2brain/text2brain/functions/internal/serve/queryapi"
)

// server is made on the first request, not in init(), so that the instance starts (and says what
// is wrong) even when configuration or a backend is missing; a failed attempt is retried by a
// later request, and requests arriving meanwhile share its outcome.
var server = lazy.New(newServer, 20*time.Second)

// Handler is the Query function as it is registered with the functions framework, for a server
// that runs it without the framework (the local stack's, which sets the timeouts the framework's
// server does not take). Each request's log lines carry its trace; the project is the
// deployment's.
var Handler http.Handler = logging.Middleware(os.Getenv("GOOGLE_CLOUD_PROJECT"), http.HandlerFunc(handle))

func init() {
	logging.Setup()
	functions.HTTP("Query", Handler.ServeHTTP)
}

// handle serves a request once the server is made; until then it says why not.
func handle(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 25*time.Second)
	defer cancel()
	h, err := server.Get(ctx)
	if err != nil {
		slog.ErrorContext(r.Context(), "Query is not ready", "err", err)
		// The configuration may be what is wrong, so the API's default CORS is all there is.
		queryapi.SecurityHeaders(w.Header())
		w.Header().Set("Access-Control-Allow-Origin", "*")
		var cfgErr configError
		if errors.As(err, &cfgErr) {
			// Retrying will not help; the details are for the operators, in the log.
			queryapi.WriteError(w, http.StatusInternalServerError, "misconfigured",
				"The service is misconfigured; its operators can see what is wrong in the Query function's log.")
			return
		}
		w.Header().Set("Retry-After", "10")
		queryapi.WriteError(w, http.StatusServiceUnavailable, "unavailable",
			"The service is starting or cannot reach its backends; please retry in a few seconds.")
		return
	}
	h.ServeHTTP(w, r)
}

// configError is a problem of the deployment's configuration, not of a backend.
type configError struct{ error }

func newServer(ctx context.Context) (_ http.Handler, err error) {
	cfg, err := config.FromEnv()
	if err == nil {
		err = cfg.ValidateQuery()
	}
	if err != nil {
		return nil, configError{err}
	}
	set, err := backends.Open(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			set.Close()
		}
	}()
	// The manifest, the vocabulary and the mask (12 kB): enough to answer, and to check an
	// uploaded map on the model's grid before a decoding's job goes out.
	// The other models' manifests and vocabularies are read meanwhile.
	more := make([]*manifest.Header, len(cfg.MoreModelURIs))
	var g errgroup.Group
	for i, uri := range cfg.MoreModelURIs {
		g.Go(func() error {
			var err error
			if more[i], err = manifest.LoadHeader(set.Blobs.URIFS(ctx, uri)); err != nil {
				return fmt.Errorf("model %s: %w", uri, err)
			}
			return nil
		})
	}
	h, files, err := manifest.ReadHeader(set.Blobs.URIFS(ctx, cfg.ModelURI), []string{manifest.VocabularyFile, manifest.MaskFile})
	if gerr := g.Wait(); err == nil && gerr != nil {
		err = gerr
	} else if err != nil {
		err = fmt.Errorf("model %s: %w", cfg.ModelURI, err)
	}
	if err != nil {
		return nil, err
	}
	mask, err := brain.ReadMask(bytes.NewReader(files[manifest.MaskFile]))
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", cfg.ModelURI, err)
	}
	s, err := queryapi.New(cfg, set.Store, set.Queue, set.Blobs, h, frontend.Site())
	if err != nil {
		return nil, err
	}
	for _, mh := range more {
		if err := s.AddModel(mh); err != nil {
			return nil, err
		}
	}
	s.EnableDecoding(mask)
	flushOnStop(s, syscall.SIGTERM)
	slog.Info("Query ready", "model_version", s.ModelVersion(), "models", 1+len(more))
	return s.Handler(), nil
}

// stopGrace bounds the flush on SIGTERM: Cloud Run kills an instance 10 s after it sends
// SIGTERM, and the local stack 5 s after (its flush takes milliseconds).
const stopGrace = 8 * time.Second

// flushOnStop makes sig (SIGTERM) write the hits the server counted and not written yet
// (queryapi.Server.Close) before the process dies of it, as it would have without the handler:
// neither the functions framework nor net/http does anything on SIGTERM, so the hits of the last
// flush interval would go with the instance. Installed once the server is made, in the process
// that serves Query only (the deployed binary registers Predict too).
func flushOnStop(s interface{ Close(context.Context) error }, sig os.Signal) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	go func() {
		<-ch
		ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
		if err := s.Close(ctx); err != nil {
			slog.Error("stopping: the last hits were not written", "err", err)
		} else {
			slog.Info("stopping: hits written")
		}
		cancel()
		// Without a handler left, the signal does what it does by default: the process dies of it.
		signal.Stop(ch)
		if err := syscall.Kill(os.Getpid(), sig.(syscall.Signal)); err != nil {
			os.Exit(1)
		}
	}()
}
