package queryapi

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/model/bundle/manifest"
	"github.com/text2brain/text2brain/functions/internal/model/textfeat"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// Cache lifetimes. A result never changes for its model version, so it is cached for long: a day
// under its id, an hour under ?q= (a new model version changes what ?q= means). Only its hit count
// ages in a cache. The stored files never change under their names at all.
const (
	cacheByID    = "public, max-age=86400"
	cacheByQuery = "public, max-age=3600"
)

// Result is a finished map, as the API returns it.
type Result struct {
	ID              string `json:"id"`
	Query           string `json:"query"`
	NormalizedQuery string `json:"normalized_query"`
	ModelVersion    string `json:"model_version"`
	// Model is the model's id in /api/v1/models (absent for a model no longer served).
	Model           string      `json:"model,omitempty"`
	Status          jobs.Status `json:"status"`
	RecognizedTerms []string    `json:"recognized_terms"`
	// RecognizedSpans are where the recognised phrases are in Query.
	RecognizedSpans []Span         `json:"recognized_spans"`
	RelatedTerms    []jobs.Term    `json:"related_terms"`
	RelatedArticles []jobs.Article `json:"related_articles"`
	Peaks           []jobs.Peak    `json:"peaks"`
	MapURL          string         `json:"map_url"`
	PreviewURL      string         `json:"preview_url"`
	SurfaceURL      string         `json:"surface_url,omitempty"`
	// Hits counts the answers served from the cache; absent when it could not be read.
	Hits      *int64    `json:"hits,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ComputeMS float64   `json:"compute_ms"`
}

// Pending is a map being computed.
type Pending struct {
	ID              string      `json:"id"`
	Query           string      `json:"query"`
	NormalizedQuery string      `json:"normalized_query"`
	ModelVersion    string      `json:"model_version"`
	Model           string      `json:"model,omitempty"`
	Status          jobs.Status `json:"status"`
	// Stage is "queued" until Predict has received the job, then "computing".
	Stage     string    `json:"stage"`
	Poll      string    `json:"poll"`
	CreatedAt time.Time `json:"created_at"`
}

// Stages of a pending map.
const (
	StageQueued    = "queued"
	StageComputing = "computing"
)

func (s *Server) url(path string) string { return strings.TrimRight(s.cfg.BaseURL, "/") + path }

func mapPath(id string) string { return "/api/v1/maps/" + id }

func (s *Server) result(d *jobs.Doc, query string, hits *int64) Result {
	r := Result{ID: d.ID, Query: query, NormalizedQuery: d.NormalizedQuery, ModelVersion: d.ModelVersion,
		Model: s.modelIDOf(d.ModelVersion), Status: d.Status, Hits: hits, CreatedAt: d.CreatedAt,
		MapURL: s.url(mapPath(d.ID) + "/map.nii.gz"), PreviewURL: s.url(mapPath(d.ID) + "/preview.png"),
		RecognizedSpans: s.spans(query)}
	if res := d.Result; res != nil {
		r.RecognizedTerms, r.RelatedTerms, r.RelatedArticles, r.Peaks, r.ComputeMS =
			res.RecognizedTerms, res.RelatedTerms, res.RelatedArticles, res.Peaks, res.ComputeMS
		if res.SurfaceObject != "" {
			r.SurfaceURL = s.url(mapPath(d.ID) + "/surface.json")
		}
	}
	return r
}

// respond answers with a document in any state.
func (s *Server) respond(w http.ResponseWriter, d *jobs.Doc, query, cache string, hits *int64) {
	if d.Status != jobs.Pending {
		s.pending.finished(d.ID)
	}
	switch d.Status {
	case jobs.Done:
		w.Header().Set("Cache-Control", cache)
		writeJSON(w, http.StatusOK, s.result(d, query, hits))
	case jobs.Failed:
		WriteError(w, http.StatusUnprocessableEntity, "prediction_failed", "No map could be made for this query: "+d.Error)
	default:
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Location", s.url(mapPath(d.ID)))
		stage := StageQueued
		if d.Deliveries > 0 {
			stage = StageComputing
		}
		writeJSON(w, http.StatusAccepted, Pending{ID: d.ID, Query: query, NormalizedQuery: d.NormalizedQuery,
			ModelVersion: d.ModelVersion, Model: s.modelIDOf(d.ModelVersion), Status: d.Status, Stage: stage, Poll: s.url(mapPath(d.ID)), CreatedAt: d.CreatedAt})
	}
}

func (s *Server) getMaps(w http.ResponseWriter, r *http.Request) {
	q, ok := queryValues(w, r)
	if !ok {
		return
	}
	if !q.Has("q") {
		WriteError(w, http.StatusBadRequest, "missing_query", "Add the text to map as ?q=…, for example /api/v1/maps?q=working+memory.")
		return
	}
	wait, err := s.parseWait(q.Get("wait"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid_wait", err.Error())
		return
	}
	m, ok := s.modelNamed(w, q.Get("model"))
	if !ok {
		return
	}
	s.lookup(w, r, q.Get("q"), wait, m)
}

func (s *Server) postMaps(w http.ResponseWriter, r *http.Request) {
	var query, model *string
	var wait *float64
	if !decodeBody(w, r, bodyForm{example: `{"query": "working memory", "wait": 5}`,
		fields: []field{
			{name: "query", into: &query, want: "a string: the text to map", code: "invalid_query"},
			{name: "wait", into: &wait, want: s.waitWords(), code: "invalid_wait"},
			{name: "model", into: &model, want: "a string: a model's id from /api/v1/models", code: "unknown_model"},
		},
		textCode: "invalid_query", textMessage: querytext.Message(querytext.ErrInvalid)}) {
		return
	}
	if query == nil {
		WriteError(w, http.StatusBadRequest, "missing_query", `The body needs a "query" field with the text to map.`)
		return
	}
	var d time.Duration
	if wait != nil {
		var err error
		if d, err = s.waitFor(*wait); err != nil {
			WriteError(w, http.StatusBadRequest, "invalid_wait", err.Error())
			return
		}
	}
	name := ""
	if model != nil {
		name = *model
	}
	m, ok := s.modelNamed(w, name)
	if !ok {
		return
	}
	s.lookup(w, r, *query, d, m)
}

// modelIDOf is the id of the served model of a version ("" for one not served).
func (s *Server) modelIDOf(version string) string {
	if m := s.modelOfVersion(version); m != nil {
		return m.id
	}
	return ""
}

// lookup answers a query: from the cache when done, else by making sure exactly one job exists.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, text string, wait time.Duration, m *servedModel) {
	normalized, err := querytext.Normalize(text)
	switch {
	case errors.Is(err, querytext.ErrTooLong):
		WriteError(w, http.StatusRequestEntityTooLarge, "too_long", querytext.Message(err))
		return
	case err != nil:
		WriteError(w, http.StatusBadRequest, "invalid_query", querytext.Message(err))
		return
	}
	version := m.header.Manifest.ModelVersion
	id := querytext.Key(version, normalized)
	// A cached answer costs almost nothing and is never limited beyond T2B_RATE; a query that
	// makes a job costs a prediction, and is limited per client and by the jobs in flight. The
	// checks below depend on the normalised text only: an entry made them once, when it was made.
	if e := s.cache.get(id); e != nil && e.mappable && e.doc.NormalizedQuery == normalized {
		s.writeCached(w, e, text, cacheByQuery, s.hitsFor(r.Context(), id, e, true))
		return
	}
	// Both answered at once, with no job: the map would be zero everywhere.
	terms := s.feat.Terms(normalized)
	if len(terms) == 0 {
		WriteError(w, http.StatusUnprocessableEntity, "no_known_terms", textfeat.NoKnownTermsMessage(normalized))
		return
	}
	if manifest.NoneMapped(terms, m.unmapped) {
		WriteError(w, http.StatusUnprocessableEntity, "no_mapped_terms", textfeat.NoMappedTermsMessage(terms))
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
	defer cancel()
	start := time.Now()
	d, err := s.store.Get(ctx, id)
	if errors.Is(err, jobs.ErrNotFound) {
		d, err = nil, nil
	}
	if err != nil {
		backendError(w, r, err)
		return
	}
	if d != nil && d.Status == jobs.Done {
		s.respondDone(ctx, w, d, text, cacheByQuery, true)
		return
	}
	newJob := s.makesJob(d)
	if newJob && !s.admitJob(w, r) {
		return
	}
	read := time.Now()
	// On the document just read: a new query's create is its next round trip.
	d, err = s.jobs.EnsureFrom(ctx, jobs.Spec{ID: id, Query: text, NormalizedQuery: normalized, ModelVersion: version}, d)
	if err != nil {
		backendError(w, r, err)
		return
	}

	if d.Status == jobs.Done {
		s.respondDone(ctx, w, d, text, cacheByQuery, true)
		return
	}
	ensured := time.Now()
	d = s.waitDone(r, d, wait)
	if newJob {
		// Where a new map's time goes on Query's side: the read, the create and publication, and
		// the wait for Predict (the rest is Predict's "prediction" line).
		slog.InfoContext(r.Context(), "new map", "id", id, "status", d.Status, "read_ms", msBetween(start, read),
			"ensure_ms", msBetween(read, ensured), "wait_ms", msBetween(ensured, time.Now()))
	}
	s.respond(w, d, text, cacheByQuery, nil)
}

func msBetween(from, to time.Time) float64 { return float64(to.Sub(from).Microseconds()) / 1000 }

// respondDone answers with a finished map, counting a hit when addHit is set, and caches it.
func (s *Server) respondDone(ctx context.Context, w http.ResponseWriter, d *jobs.Doc, text, cache string, addHit bool) {
	e := s.remember(d)
	hits := s.hitsFor(ctx, d.ID, e, addHit)
	if e != nil {
		s.writeCached(w, e, text, cache, hits)
		return
	}
	s.respond(w, d, text, cache, hits)
}

// makesJob reports whether Ensure would make a new job for a query whose document is d (nil:
// absent): the lifecycle's create, or the restart of a retryable failure (one the query's own
// claim may have just made, of a job lost twice). Republishing a pending document's job is no
// new job.
func (s *Server) makesJob(d *jobs.Doc) bool {
	if d == nil {
		return true
	}
	in := jobs.Input{Now: s.now(), StaleAfter: s.staleAfter}
	if d.Status == jobs.Pending {
		step, err := jobs.Next(d, jobs.Claim, in)
		if err != nil || step.To != jobs.StateFailed {
			return false
		}
		d = step.Doc
	}
	step, err := jobs.Next(d, jobs.Restart, in)
	return err == nil && step.Action == jobs.Publish
}

// admitJob applies the limits of new predictions, answering 503 or 429 itself: the cap on the
// jobs in flight (T2B_MAX_PENDING), then the client's own limit (T2B_PREDICT_EVERY and _BURST),
// so that a request refused for the first costs the client nothing.
func (s *Server) admitJob(w http.ResponseWriter, r *http.Request) bool {
	if s.pending.full(s.now()) {
		w.Header().Set("Retry-After", "10")
		WriteError(w, http.StatusServiceUnavailable, "busy",
			"The service is computing many maps right now; please retry in a few seconds (maps already made are still served).")
		return false
	}
	if !s.predictLimit.allow(clientKey(r, s.cfg.TrustedProxies), s.now()) {
		w.Header().Set("Retry-After", s.predictLimit.retryAfter())
		WriteError(w, http.StatusTooManyRequests, "rate_limited", fmt.Sprintf(
			"You have asked for many new maps in a short time; please wait %s s before the next one (maps already made are not limited).", s.predictLimit.retryAfter()))
		return false
	}
	return true
}

// waitDone waits up to wait for a pending document to finish, and returns the last state seen.
func (s *Server) waitDone(r *http.Request, d *jobs.Doc, wait time.Duration) *jobs.Doc {
	if d.Status != jobs.Pending || wait <= 0 {
		return d
	}
	wctx, wcancel := context.WithTimeout(r.Context(), wait)
	defer wcancel()
	done, err := s.store.Wait(wctx, d.ID)
	switch {
	case err == nil && done != nil:
		return done
	case err != nil && r.Context().Err() == nil:
		slog.WarnContext(r.Context(), "waiting for a result", "id", d.ID, "err", err)
	}
	return d
}

func (s *Server) getMap(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	q, ok := queryValues(w, r)
	if !ok {
		return
	}
	wait, err := s.parseWait(q.Get("wait"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid_wait", err.Error())
		return
	}
	if e := s.cache.get(id); e != nil {
		if e.doc.Kind != "" {
			docError(w, r, id, jobs.ErrNotFound) // a decoding: under /api/v1/decodings
			return
		}
		s.writeCached(w, e, e.doc.Query, cacheByID, s.hitsFor(r.Context(), id, e, false))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
	defer cancel()
	// Clients poll here: a lost job is republished for them too.
	d, err := s.jobs.Poll(ctx, id)
	if err == nil && d.Kind != "" {
		err = jobs.ErrNotFound // a decoding: under /api/v1/decodings
	}
	if err != nil {
		docError(w, r, id, err)
		return
	}
	d = s.waitDone(r, d, wait)
	if d.Status == jobs.Done {
		s.respondDone(ctx, w, d, d.Query, cacheByID, false)
		return
	}
	s.respond(w, d, d.Query, cacheByID, nil)
}

// validID answers 404 for an id that no map can have.
func validID(w http.ResponseWriter, id string) bool {
	if !querytext.ValidKey(id) {
		WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("There is no map with id %q; ids are 32 hexadecimal characters, as returned by /api/v1/maps.", id))
		return false
	}
	return true
}

// docError answers a failure to read the document of an id from a URL: 404 or 503.
func docError(w http.ResponseWriter, r *http.Request, id string, err error) {
	if errors.Is(err, jobs.ErrNotFound) {
		WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("There is no map with id %s.", id))
		return
	}
	backendError(w, r, err)
}

// doc reads the document of an id from a URL, answering 404 or 503 itself. A cached document
// comes from memory, shared and without its result's lists (see cachedDoc): enough for its
// files' routes; never change it.
func (s *Server) doc(w http.ResponseWriter, r *http.Request, id string) (*jobs.Doc, bool) {
	if !validID(w, id) {
		return nil, false
	}
	if e := s.cache.get(id); e != nil {
		return e.doc, true
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
	defer cancel()
	d, err := s.store.Get(ctx, id)
	if err != nil {
		docError(w, r, id, err)
		return nil, false
	}
	s.remember(d)
	return d, true
}

type objectKind int

const (
	mapObject objectKind = iota
	previewObject
	surfaceObject
	// decodingObject, or'ed with one of the above, is that file of a decoding.
	decodingObject objectKind = 8
)

// object streams a stored map or preview.
func (s *Server) object(kind objectKind) http.HandlerFunc {
	decoding := kind&decodingObject != 0
	kind &^= decodingObject
	return func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.doc(w, r, r.PathValue("id"))
		if !ok {
			return
		}
		if (d.Kind == jobs.KindDecoding) != decoding {
			docError(w, r, d.ID, jobs.ErrNotFound)
			return
		}
		if d.Status != jobs.Done || d.Result == nil {
			if decoding {
				s.respondDecoding(w, d, "", nil)
			} else {
				s.respond(w, d, d.Query, "", nil)
			}
			return
		}
		base := slug(d.NormalizedQuery)
		if decoding {
			base = "decoded-" + slug(strings.TrimSuffix(strings.TrimSuffix(d.UploadName, ".gz"), ".nii"))
		}
		name, filename, disposition := d.Result.MapObject, "text2brain-"+base+".nii.gz", "attachment"
		switch kind {
		case previewObject:
			name, filename, disposition = d.Result.PreviewObject, "text2brain-"+base+".png", "inline"
		case surfaceObject:
			name, filename, disposition = d.Result.SurfaceObject, "text2brain-"+base+".surface.json", "inline"
			if name == "" {
				WriteError(w, http.StatusNotFound, "not_found", "This map was made without surface values.")
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
		defer cancel()
		obj, err := s.blobs.Open(ctx, s.cfg.ResultsBucket, name)
		if errors.Is(err, blobs.ErrNotFound) {
			WriteError(w, http.StatusNotFound, "not_found", "The stored file of this map is missing.")
			return
		}
		if err != nil {
			backendError(w, r, err)
			return
		}
		defer obj.Close()
		h := w.Header()
		h.Set("Cache-Control", blobs.CacheImmutable)
		h.Set("Content-Disposition", disposition+`; filename="`+filename+`"`)
		if kind == surfaceObject {
			// Stored gzip-compressed: sent as it is to clients that take gzip, inflated for others.
			h.Set("Content-Type", "application/json")
			h.Set("Vary", "Accept-Encoding")
			if !acceptsGzip(r) {
				if err := gunzipTo(w, obj); err != nil {
					slog.WarnContext(r.Context(), "streaming an object", "name", name, "err", err)
				}
				return
			}
			h.Set("Content-Encoding", "gzip")
		} else {
			h.Set("Content-Type", obj.ContentType)
		}
		h.Set("Content-Length", strconv.FormatInt(obj.Size, 10))
		if _, err := io.Copy(w, obj); err != nil {
			slog.WarnContext(r.Context(), "streaming an object", "name", name, "err", err)
		}
	}
}

// slug makes a file name from a query.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 60 {
			break
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return "map"
	}
	return out
}

// gunzipTo copies a gzip stream to w inflated.
func gunzipTo(w io.Writer, r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	defer zr.Close()
	_, err = io.Copy(w, zr)
	return err
}
