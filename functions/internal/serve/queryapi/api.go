// Package queryapi is the Query function's HTTP API: JSON everywhere, answered from the Firestore cache
// (finished maps kept in the instance's memory too: cache.go, hits.go) or by publishing a
// prediction job. openapi.yaml at the repository root documents it.
package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/cloud/store"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/bundle/manifest"
	"github.com/text2brain/text2brain/functions/internal/model/textfeat"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
)

// Store is the result store as the API uses it: the job lifecycle's calls, waiting for a result,
// and the hit counter.
type Store interface {
	jobs.Store
	// Wait returns the document once it is no longer pending, or the last state seen when ctx
	// ends (with a nil error).
	Wait(ctx context.Context, id string) (*jobs.Doc, error)
	// AddHits adds each id's count to its hit total, all or nothing (store.MaxHitIDs ids at most).
	AddHits(ctx context.Context, counts map[string]int64) error
	Hits(ctx context.Context, id string) (int64, error)
	AddFeedback(ctx context.Context, f jobs.Feedback) error
}

// BlobReader opens the stored maps and previews.
type BlobReader interface {
	Open(ctx context.Context, bucket, name string) (*blobs.Reader, error)
}

// BlobWriter stores uploads (decodings' files) in the results bucket.
type BlobWriter interface {
	Create(ctx context.Context, bucket, name string, o blobs.Object) error
}

// Server answers the API and serves the web page.
type Server struct {
	static fs.FS
	cfg    *config.Config
	store  Store
	jobs   *jobs.Lifecycle
	queue  jobs.Publisher
	blobs  BlobReader
	// uploads is blobs when it can write (the real bucket can); mask is the model's, set by
	// EnableDecoding. Without both, decodings are refused.
	uploads BlobWriter
	mask    *brain.Mask
	feat    *textfeat.Featurizer
	// models are the models served, the default first (models.go); they share feat.
	models []*servedModel
	// clients limits every API request of each client; predictLimit, warmupLimit and
	// feedbackLimit the costly ones on top (nil: no limit).
	clients       *clientLimiter
	predictLimit  *clientLimiter
	warmupLimit   *clientLimiter
	feedbackLimit *clientLimiter
	// warm limits the warm-up messages of the instance, whoever asks.
	warm *rate.Limiter
	// pending counts the jobs this instance published and has not seen finish.
	pending *pendingJobs
	// staleAfter is the lifecycle's, to foresee which queries make a job.
	staleAfter time.Duration
	now        func() time.Time
	// anyOrigin, or else origins, are the pages that may call the API from a browser.
	anyOrigin bool
	origins   map[string]bool

	// cache keeps finished documents (nil: none); hits counts the hits not written yet, which
	// flushLoop writes every hitFlush until Close (see hits.go).
	cache    *resultCache
	hits     *hitCounter
	hitFlush time.Duration
	flushMu  sync.Mutex
	// stopped ends with Close (stop), and with it the periodic flushes and their reads.
	stopped  context.Context
	stop     context.CancelFunc
	loopDone chan struct{}
}

// New builds the server on its backends (the result store, the jobs queue and the results bucket)
// and the model's header (version and vocabulary); static holds the web page served at / (nil for
// none), as frontend.Site builds it: files by path, with gzip copies named name + ".gz". It starts
// the periodic flush of the hit counts: Close writes the last ones.
func New(cfg *config.Config, st Store, q jobs.Publisher, b BlobReader, h *manifest.Header, static fs.FS) (*Server, error) {
	feat, err := textfeat.New(h.Vocabulary.Vocabulary)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s := &Server{static: static, cfg: cfg, store: st, queue: q, blobs: b, feat: feat,
		models:        []*servedModel{newServedModel(h)},
		clients:       newClientLimiter(rate.Limit(cfg.Rate), cfg.RateBurst),
		predictLimit:  newEveryLimiter(cfg.PredictEvery, cfg.PredictBurst),
		warmupLimit:   newEveryLimiter(cfg.WarmupEvery, cfg.WarmupBurst),
		feedbackLimit: newEveryLimiter(cfg.FeedbackEvery, cfg.FeedbackBurst),
		warm:          rate.NewLimiter(rate.Every(cfg.WarmEvery), 1),
		staleAfter:    cfg.StaleAfter,
		now:           time.Now,
		anyOrigin:     len(cfg.CORSOrigins) == 0,
		origins:       map[string]bool{},
		cache:         newResultCache(cfg.CacheEntries),
		hits:          newHitCounter(maxHitIDs),
		hitFlush:      cfg.HitFlush,
		loopDone:      make(chan struct{}),
	}
	s.stopped, s.stop = context.WithCancel(context.Background())
	if s.hitFlush <= 0 {
		s.hitFlush = defaultHitFlush
	}
	if bw, ok := b.(BlobWriter); ok {
		s.uploads = bw
	}
	if s.staleAfter <= 0 {
		s.staleAfter = 2 * time.Minute // the lifecycle's default
	}
	s.pending = newPendingJobs(cfg.MaxPending, s.staleAfter)
	now := func() time.Time { return s.now() }
	var pub jobs.Publisher
	if q != nil {
		pub = trackingPublisher{Publisher: q, pending: s.pending, now: now}
	}
	s.jobs = jobs.New(st, pub, jobs.Options{StaleAfter: s.staleAfter, WriteTimeout: cfg.BackendTimeout, Now: now})
	for _, o := range cfg.CORSOrigins {
		s.anyOrigin = s.anyOrigin || o == "*"
		s.origins[o] = true
	}
	go s.flushLoop()
	return s, nil
}

// ModelVersion is the default model's version: the key space of a query that names no model.
func (s *Server) ModelVersion() string { return s.models[0].header.Manifest.ModelVersion }

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, handlers map[string]http.HandlerFunc) {
		mux.Handle(pattern, methods(handlers))
	}
	route("/healthz", map[string]http.HandlerFunc{http.MethodGet: s.healthz})
	route("/api/v1/version", map[string]http.HandlerFunc{http.MethodGet: s.version})
	route("/api/v1/warm", map[string]http.HandlerFunc{http.MethodPost: s.warmUp})
	route("/api/v1/maps", map[string]http.HandlerFunc{http.MethodGet: s.getMaps, http.MethodPost: s.postMaps})
	route("/api/v1/models", map[string]http.HandlerFunc{http.MethodGet: s.listModels})
	route("/api/v1/terms", map[string]http.HandlerFunc{http.MethodGet: s.terms})
	route("/api/v1/feedback", map[string]http.HandlerFunc{http.MethodPost: s.feedback})
	route("/openapi.yaml", map[string]http.HandlerFunc{http.MethodGet: s.openAPI})
	route("/api/v1/maps/{id}", map[string]http.HandlerFunc{http.MethodGet: s.getMap})
	route("/api/v1/maps/{id}/map.nii.gz", map[string]http.HandlerFunc{http.MethodGet: s.object(mapObject)})
	route("/api/v1/maps/{id}/preview.png", map[string]http.HandlerFunc{http.MethodGet: s.object(previewObject)})
	route("/api/v1/maps/{id}/surface.json", map[string]http.HandlerFunc{http.MethodGet: s.object(surfaceObject)})
	route("/api/v1/decodings", map[string]http.HandlerFunc{http.MethodPost: s.postDecodings})
	route("/api/v1/decodings/{id}", map[string]http.HandlerFunc{http.MethodGet: s.getDecoding})
	route("/api/v1/decodings/{id}/map.nii.gz", map[string]http.HandlerFunc{http.MethodGet: s.object(mapObject | decodingObject)})
	route("/api/v1/decodings/{id}/preview.png", map[string]http.HandlerFunc{http.MethodGet: s.object(previewObject | decodingObject)})
	route("/api/v1/decodings/{id}/surface.json", map[string]http.HandlerFunc{http.MethodGet: s.object(surfaceObject | decodingObject)})
	notFound := func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("There is nothing at %s. The API lives under /api/v1 (see /api/v1/version and openapi.yaml).", r.URL.Path))
	}
	// "/api" too: else the mux would redirect it to "/api/" with a page of HTML.
	mux.HandleFunc("/api", notFound)
	mux.HandleFunc("/api/", notFound)
	if s.static == nil {
		mux.HandleFunc("/", pageNotFound)
	} else {
		route("/", map[string]http.HandlerFunc{http.MethodGet: siteHandler(s.static)})
	}
	return deadlines(s.cfg.Timeouts, secure(canonical(s.cors(s.limit(mux)))))
}

// isAPI reports whether a path is the API's, whose every answer is JSON (the page's are not).
func isAPI(p string) bool {
	return p == "/api" || strings.HasPrefix(p, "/api/") || p == "/healthz" || p == "/openapi.yaml"
}

// canonical answers itself what http.ServeMux would answer with a redirect page or an empty 400:
// a path that is not clean (//, . or ..) under /api is a JSON 404 (an API client that sends one
// has a bug, and a redirect would send its POST elsewhere), and a request for * or without a path
// a JSON 400. Page paths that are not clean are left to the mux, whose redirect suits a browser.
func canonical(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if r.RequestURI == "*" || !strings.HasPrefix(p, "/") {
			WriteError(w, http.StatusBadRequest, "bad_request", "The request has no path: ask for one, such as /api/v1/version.")
			return
		}
		if clean := cleanPath(p); clean != p && (isAPI(clean) || isAPI(p)) {
			WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("There is nothing at %s: paths are not resolved (no //, . or ..); the API lives under /api/v1 (see openapi.yaml).", p))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath is the path http.ServeMux redirects to: path.Clean, keeping a trailing slash.
func cleanPath(p string) string {
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// APIContentSecurityPolicy is the policy of every answer but the page's: nothing may load from
// it, and nothing may frame it.
const APIContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'"

// SecurityHeaders sets the headers every answer of Query has: no content sniffing, no full URL
// in the Referer of a request made from a page, no framing (the CSP's frame-ancestors, and
// X-Frame-Options for browsers without it). The page's files replace the CSP with their own,
// which forbids framing too.
func SecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	h.Set("Content-Security-Policy", APIContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
}

func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SecurityHeaders(w.Header())
		next.ServeHTTP(w, r)
	})
}

// methods answers 405 with a JSON body and an Allow header, which http.ServeMux's own 405 lacks.
func methods(handlers map[string]http.HandlerFunc) http.Handler {
	allow := ""
	for m := range handlers {
		if allow != "" {
			allow += ", "
		}
		allow += m
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := handlers[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed",
				fmt.Sprintf("%s is not supported on %s; use %s.", r.Method, r.URL.Path, allow))
			return
		}
		h(w, r)
	})
}

// cors lets pages on other origins call the API: any origin by default (it is public and uses no
// credentials), or only those of T2B_CORS_ORIGINS. The page's own files are for the page's origin
// only: they carry no CORS header. Scripts outside browsers are not affected.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isAPI(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		if s.anyOrigin {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			// The answer depends on the Origin: caches (and Cloud CDN) must keep one per origin.
			h.Add("Vary", "Origin")
			if o := r.Header.Get("Origin"); s.origins[o] {
				h.Set("Access-Control-Allow-Origin", o)
			}
		}
		h.Set("Access-Control-Expose-Headers", "Retry-After, Location")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limit applies each client's token bucket to the API (not to the health check).
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && !s.clients.allow(clientKey(r, s.cfg.TrustedProxies), s.now()) {
			w.Header().Set("Retry-After", "1")
			WriteError(w, http.StatusTooManyRequests, "rate_limited",
				"Too many requests from your address; slow down and retry in a second.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ErrorBody is the JSON of every error.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		slog.Warn("writing response", "err", err)
	}
}

// WriteError answers with the JSON error body of the API.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Del("Cache-Control")
	writeJSON(w, status, struct {
		Error ErrorBody `json:"error"`
	}{ErrorBody{code, message}})
}

// backendError answers a failure of Firestore, Pub/Sub or Cloud Storage: 503 with a message and a
// Retry-After, never a hang (every call has a deadline) and never a crash.
func backendError(w http.ResponseWriter, r *http.Request, err error) {
	slog.ErrorContext(r.Context(), "backend unavailable", "err", err)
	what := "storage"
	switch {
	case errors.Is(err, store.ErrUnavailable):
		what = "result store"
	case errors.Is(err, queue.ErrUnavailable):
		what = "job queue"
	case errors.Is(err, jobs.ErrNotFound):
		// The document went away between two reads: only a concurrent cleanup does that.
		what = "result store"
	}
	w.Header().Set("Retry-After", "5")
	WriteError(w, http.StatusServiceUnavailable, "unavailable",
		fmt.Sprintf("The %s is unavailable right now; please retry in a few seconds.", what))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "model_version": s.ModelVersion()})
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	man := s.models[0].header.Manifest
	writeJSON(w, http.StatusOK, map[string]any{
		"model_version": man.ModelVersion, "model_kind": man.Kind, "build": s.cfg.Build,
		"features": man.Features, "articles": man.Articles,
	})
}

func (s *Server) warmUp(w http.ResponseWriter, r *http.Request) {
	if !s.warmupLimit.allow(clientKey(r, s.cfg.TrustedProxies), s.now()) {
		w.Header().Set("Retry-After", s.warmupLimit.retryAfter())
		WriteError(w, http.StatusTooManyRequests, "rate_limited", "Too many warm-ups from your address; the model is warming up already.")
		return
	}
	// Page loads must not flood the topic: one warm-up message per WarmEvery, whatever the traffic.
	if !s.warm.Allow() {
		writeJSON(w, http.StatusAccepted, map[string]string{"warmup": "recent"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
	defer cancel()
	if err := s.queue.Publish(ctx, queue.Message{Warmup: true}); err != nil {
		backendError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"warmup": "sent"})
}

// parseWait reads a wait in seconds from a query string; see waitFor.
func (s *Server) parseWait(raw string) (time.Duration, error) {
	if raw == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		return 0, errors.New("wait must be " + s.waitWords() + ".")
	}
	return s.waitFor(f)
}

// waitFor turns a wait in seconds into a duration; more than the maximum is capped, not refused.
func (s *Server) waitFor(f float64) (time.Duration, error) {
	if f < 0 || math.IsNaN(f) {
		return 0, errors.New("wait must be " + s.waitWords() + ".")
	}
	// Compared before converting: a huge wait would overflow time.Duration.
	if f >= s.cfg.MaxWait.Seconds() {
		return s.cfg.MaxWait, nil
	}
	return time.Duration(f * float64(time.Second)), nil
}

// waitWords says what a wait must be, for messages.
func (s *Server) waitWords() string {
	return "a number of seconds, 0 to " + strconv.FormatFloat(s.cfg.MaxWait.Seconds(), 'f', -1, 64)
}
