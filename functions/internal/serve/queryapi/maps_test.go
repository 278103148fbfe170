package queryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/cloud/store"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs/jobstest"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

var (
	_ Store      = (*store.Store)(nil)
	_ BlobReader = (*blobs.Store)(nil)
)

var (
	headerOnce sync.Once
	header     *bundle.Header
	headerErr  error
)

// testHeader is the model's header, read once: the bundle is large.
func testHeader(t testing.TB) *bundle.Header {
	t.Helper()
	dir := testenv.BundleDir(t)
	headerOnce.Do(func() {
		var b *bundle.Bundle
		if b, headerErr = bundle.Load(dir); headerErr == nil {
			header = &bundle.Header{Manifest: b.Manifest, Vocabulary: b.Vocabulary}
		}
	})
	if headerErr != nil {
		t.Fatal(headerErr)
	}
	return header
}

// memBlobs is a results bucket in memory.
type memBlobs struct {
	mu      sync.Mutex
	objects map[string]blobs.Object
	err     error
}

func (m *memBlobs) Open(ctx context.Context, bucket, name string) (*blobs.Reader, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	o, ok := m.objects[bucket+"/"+name]
	if !ok {
		return nil, blobs.ErrNotFound
	}
	return &blobs.Reader{ReadCloser: io.NopCloser(bytes.NewReader(o.Data)), ContentType: o.ContentType, Size: int64(len(o.Data))}, nil
}

// backends is a server on in-memory backends.
type backends struct {
	h     http.Handler
	s     *Server
	st    *jobstest.Store
	q     *jobstest.Queue
	blobs *memBlobs
	// predict stands in for the Predict function: the lifecycle on the same store.
	predict *jobs.Lifecycle
}

// newBackends makes a server on in-memory backends; configure changes its configuration first.
func newBackends(t testing.TB, configure ...func(*config.Config)) *backends {
	t.Helper()
	cfg := &config.Config{MaxWait: 10 * time.Second, StaleAfter: 2 * time.Minute, BackendTimeout: time.Second,
		Rate: 1000, RateBurst: 1000, WarmEvery: time.Minute, ResultsBucket: "results",
		FeedbackEvery: 20 * time.Second, FeedbackBurst: 5, CacheEntries: 100, HitFlush: time.Hour}
	for _, c := range configure {
		c(cfg)
	}
	b := &backends{st: jobstest.NewStore(), q: &jobstest.Queue{}, blobs: &memBlobs{objects: map[string]blobs.Object{}}}
	s, err := New(cfg, b.st, b.q, b.blobs, testHeader(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	b.s, b.h = s, s.Handler()
	b.predict = jobs.New(b.st, nil, jobs.Options{})
	t.Cleanup(func() { s.Close(context.Background()) })
	return b
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (b *backends) get(t testing.TB, target string) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
			t.Fatalf("GET %s: not JSON: %s", target, rec.Body)
		}
	}
	return a
}

func (a answer) errorCode() string {
	e, _ := a.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// complete does what Predict does with the job of id.
func (b *backends) complete(t *testing.T, id string) {
	t.Helper()
	if _, run, err := b.predict.Start(context.Background(), id); err != nil || !run {
		t.Fatalf("Start = %v, %v", run, err)
	}
	b.blobs.mu.Lock()
	b.blobs.objects["results/maps/v/"+id+".nii.gz"] = blobs.Object{Data: []byte("nifti"), ContentType: "application/gzip"}
	b.blobs.mu.Unlock()
	r := &jobs.Result{RecognizedTerms: []string{"face"}, Peaks: []jobs.Peak{{MNI: []float64{38, -50, -20}, Z: 28.08}},
		MapObject: "maps/v/" + id + ".nii.gz", PreviewObject: "maps/v/" + id + ".png", ComputeMS: 7}
	if wrote, err := b.predict.Complete(context.Background(), id, r); err != nil || !wrote {
		t.Fatalf("Complete = %v, %v", wrote, err)
	}
}

func (b *backends) id(t testing.TB, text string) string {
	t.Helper()
	n, err := querytext.Normalize(text)
	if err != nil {
		t.Fatal(err)
	}
	return querytext.Key(b.s.ModelVersion(), n)
}

// A first query answers 202 and publishes one job; polls answer 202 until Predict is done, then
// 200 with the result, and the query itself answers 200 from the cache and counts the hit.
func TestQueryThenResult(t *testing.T) {
	b := newBackends(t)
	id := b.id(t, "Faces")
	first := b.get(t, "/api/v1/maps?q=Faces")
	if first.status != http.StatusAccepted || first.body["id"] != id || first.body["status"] != "pending" ||
		first.body["poll"] != "/api/v1/maps/"+id || first.header.Get("Retry-After") == "" {
		t.Fatalf("first query: %d %v %v", first.status, first.header, first.body)
	}
	job := queue.Message{ID: id, Text: "faces", ModelVersion: b.s.ModelVersion()}
	if msgs := b.q.Messages(); len(msgs) != 1 || msgs[0] != job {
		t.Fatalf("published %v, want %v", msgs, job)
	}
	if again := b.get(t, "/api/v1/maps?q=faces"); again.status != http.StatusAccepted || len(b.q.Messages()) != 1 {
		t.Errorf("second query: %d, %d jobs; want 202 and still one job", again.status, len(b.q.Messages()))
	}
	if poll := b.get(t, "/api/v1/maps/"+id); poll.status != http.StatusAccepted {
		t.Errorf("poll while pending: %d", poll.status)
	}

	b.complete(t, id)
	poll := b.get(t, "/api/v1/maps/"+id)
	if poll.status != http.StatusOK || poll.body["status"] != "done" || poll.body["query"] != "Faces" ||
		poll.header.Get("Cache-Control") != cacheByID || poll.body["hits"] != 0.0 {
		t.Errorf("poll once done: %d %v %v", poll.status, poll.header, poll.body)
	}
	hit := b.get(t, "/api/v1/maps?q=faces")
	if hit.status != http.StatusOK || hit.body["query"] != "faces" || hit.body["hits"] != 1.0 ||
		hit.header.Get("Cache-Control") != cacheByQuery || hit.body["map_url"] != "/api/v1/maps/"+id+"/map.nii.gz" {
		t.Errorf("query once done: %d %v %v", hit.status, hit.header, hit.body)
	}
	file := b.get(t, "/api/v1/maps/"+id+"/map.nii.gz")
	if file.status != http.StatusOK || string(file.raw) != "nifti" || file.header.Get("Cache-Control") != blobs.CacheImmutable ||
		!strings.Contains(file.header.Get("Content-Disposition"), "text2brain-faces.nii.gz") {
		t.Errorf("map file: %d %v %q", file.status, file.header, file.raw)
	}
	if missing := b.get(t, "/api/v1/maps/"+id+"/preview.png"); missing.status != http.StatusNotFound {
		t.Errorf("a missing stored file: %d, want 404", missing.status)
	}
	if len(b.q.Messages()) != 1 {
		t.Errorf("%d jobs published in all, want 1", len(b.q.Messages()))
	}
}

// A query with wait holds the request until the result is written.
func TestWaitAnswersWhenDone(t *testing.T) {
	b := newBackends(t)
	id := b.id(t, "faces")
	go func() {
		for len(b.q.Messages()) == 0 {
			time.Sleep(time.Millisecond)
		}
		b.complete(t, id)
	}()
	if a := b.get(t, "/api/v1/maps?q=faces&wait=5"); a.status != http.StatusOK || a.body["status"] != "done" {
		t.Errorf("query with wait: %d %v", a.status, a.body)
	}
}

// A backend that fails answers 503 naming it, with Retry-After, and nothing is half done: a job
// that could not be published is published by the next request once the queue is back.
func TestBackendErrors(t *testing.T) {
	down := func(what error) error { return fmt.Errorf("%w: injected", what) }
	testCases := []struct {
		name   string
		target string
		// seed prepares the backends; fault breaks one.
		seed, fault, repair func(t *testing.T, b *backends)
		what                string
		// after is the answer once the fault is repaired.
		after int
	}{
		{name: "store down for a query", target: "/api/v1/maps?q=faces",
			fault:  func(t *testing.T, b *backends) { b.st.Inject(jobstest.OpGet, down(store.ErrUnavailable)) },
			repair: func(t *testing.T, b *backends) { b.st.Inject(jobstest.OpGet, nil) },
			what:   "result store", after: http.StatusAccepted},
		{name: "store down for a create", target: "/api/v1/maps?q=faces",
			fault:  func(t *testing.T, b *backends) { b.st.Inject(jobstest.OpCreate, down(store.ErrUnavailable)) },
			repair: func(t *testing.T, b *backends) { b.st.Inject(jobstest.OpCreate, nil) },
			what:   "result store", after: http.StatusAccepted},
		{name: "queue down for a query", target: "/api/v1/maps?q=faces",
			fault:  func(t *testing.T, b *backends) { b.q.Inject(down(queue.ErrUnavailable)) },
			repair: func(t *testing.T, b *backends) { b.q.Inject(nil) },
			what:   "job queue", after: http.StatusAccepted},
		{name: "store down for a poll", target: "/api/v1/maps/{id}",
			seed:   func(t *testing.T, b *backends) { b.get(t, "/api/v1/maps?q=faces") },
			fault:  func(t *testing.T, b *backends) { b.st.Inject(jobstest.OpGet, down(store.ErrUnavailable)) },
			repair: func(t *testing.T, b *backends) { b.st.Inject(jobstest.OpGet, nil) },
			what:   "result store", after: http.StatusAccepted},
		{name: "bucket down for a file", target: "/api/v1/maps/{id}/map.nii.gz",
			seed: func(t *testing.T, b *backends) {
				b.get(t, "/api/v1/maps?q=faces")
				b.complete(t, b.id(t, "faces"))
			},
			fault:  func(t *testing.T, b *backends) { b.blobs.err = errors.New("storage: injected") },
			repair: func(t *testing.T, b *backends) { b.blobs.err = nil },
			what:   "storage", after: http.StatusOK},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackends(t)
			target := strings.ReplaceAll(tc.target, "{id}", b.id(t, "faces"))
			if tc.seed != nil {
				tc.seed(t, b)
			}
			published := len(b.q.Messages())
			tc.fault(t, b)
			a := b.get(t, target)
			if a.status != http.StatusServiceUnavailable || a.errorCode() != "unavailable" || a.header.Get("Retry-After") == "" {
				t.Fatalf("with a backend down: %d %v %v", a.status, a.header, a.body)
			}
			if msg := a.body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "The "+tc.what+" is unavailable") {
				t.Errorf("message %q does not name the %s", msg, tc.what)
			}
			if n := len(b.q.Messages()); n != published {
				t.Errorf("%d jobs published with a backend down", n-published)
			}
			tc.repair(t, b)
			if a := b.get(t, target); a.status != tc.after {
				t.Errorf("once repaired: %d %v, want %d", a.status, a.body, tc.after)
			}
			if n := len(b.q.Messages()); n != 1 {
				t.Errorf("%d jobs published in all, want 1", n)
			}
		})
	}
}

// A map that failed for good says why; one whose job was lost twice says so to a poll, and the
// next query starts it afresh.
func TestFailedMaps(t *testing.T) {
	b := newBackends(t)
	id := b.id(t, "faces")
	b.get(t, "/api/v1/maps?q=faces")
	if wrote, err := b.predict.Fail(context.Background(), id, "the job's text does not match its query"); err != nil || !wrote {
		t.Fatal(wrote, err)
	}
	for _, target := range []string{"/api/v1/maps?q=faces", "/api/v1/maps/" + id, "/api/v1/maps/" + id + "/map.nii.gz"} {
		if a := b.get(t, target); a.status != http.StatusUnprocessableEntity || a.errorCode() != "prediction_failed" ||
			!strings.Contains(a.body["error"].(map[string]any)["message"].(string), "does not match") {
			t.Errorf("%s of a failed map: %d %v", target, a.status, a.body)
		}
	}

	b = newBackends(t)
	b.get(t, "/api/v1/maps?q=faces")
	d := b.st.Doc(id)
	d.PublishedAt, d.Republished = d.PublishedAt.Add(-time.Hour), true
	b.st.Put(d)
	if a := b.get(t, "/api/v1/maps/"+id); a.status != http.StatusUnprocessableEntity || !strings.Contains(string(a.raw), "did not complete in time") {
		t.Errorf("poll of a job lost twice: %d %v", a.status, a.body)
	}
	if a := b.get(t, "/api/v1/maps?q=faces"); a.status != http.StatusAccepted || len(b.q.Messages()) != 2 {
		t.Errorf("the next query: %d, %d jobs; want 202 and a fresh job", a.status, len(b.q.Messages()))
	}
}

// Invisible characters make no new query: a soft hyphen or a zero-width space gives the id, the
// job and the recognised terms of the word without it.
func TestInvisibleCharactersAreOneQuery(t *testing.T) {
	b := newBackends(t)
	id := b.id(t, "face")
	for _, q := range []string{"face", "fa\u00adce", "face\u200b", "\ufeffFace"} {
		a := b.get(t, "/api/v1/maps?q="+url.QueryEscape(q))
		if a.status != http.StatusAccepted || a.body["id"] != id || a.body["normalized_query"] != "face" {
			t.Errorf("%q: %d %v, want 202 with the id of face", q, a.status, a.body)
		}
		terms := b.get(t, "/api/v1/terms?q="+url.QueryEscape(q))
		if got, _ := terms.body["recognized_terms"].([]any); len(got) != 1 || got[0] != "face" {
			t.Errorf("%q: recognised %v, want [face]", q, terms.body["recognized_terms"])
		}
	}
	if n := len(b.q.Messages()); n != 1 {
		t.Errorf("%d jobs for one query written four ways, want 1", n)
	}
}

// A text whose every recognised term has no brain map is answered at once, as one with no known
// term, naming the terms; a text with one mapped term among them is mapped as before.
func TestNoMappedTerms(t *testing.T) {
	b := newBackends(t)
	for q, named := range map[string][]string{
		"abscess":                   {`"abscess"`},
		"abuse alcohol":             {`"abuse alcohol"`},
		"an abscess, abuse alcohol": {`"abscess" and "abuse alcohol"`, "any of them"},
	} {
		a := b.get(t, "/api/v1/maps?q="+url.QueryEscape(q))
		msg, _ := a.body["error"].(map[string]any)["message"].(string)
		if a.status != http.StatusUnprocessableEntity || a.errorCode() != "no_mapped_terms" {
			t.Errorf("%q: %d %s", q, a.status, a.raw)
		}
		for _, n := range named {
			if !strings.Contains(msg, n) {
				t.Errorf("%q: message %q does not say %s", q, msg, n)
			}
		}
		terms := b.get(t, "/api/v1/terms?q="+url.QueryEscape(q))
		if got, _ := terms.body["unmapped_terms"].([]any); len(got) == 0 || len(got) != len(terms.body["recognized_terms"].([]any)) {
			t.Errorf("%q: terms answer %s", q, terms.raw)
		}
	}
	if n := len(b.q.Messages()) + b.st.Calls(jobstest.OpGet); n != 0 {
		t.Errorf("unmapped texts reached the backends (%d calls)", n)
	}
	if a := b.get(t, "/api/v1/maps?q=abscess+faces"); a.status != http.StatusAccepted || len(b.q.Messages()) != 1 {
		t.Errorf("a text with a mapped term: %d %s", a.status, a.raw)
	}
	terms := b.get(t, "/api/v1/terms?q=abscess+faces")
	if got, _ := terms.body["unmapped_terms"].([]any); len(got) != 1 || got[0] != "abscess" {
		t.Errorf("unmapped terms of abscess faces: %s", terms.raw)
	}
}
