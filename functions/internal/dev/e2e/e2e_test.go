package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/iterator"

	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/cloud/store"
	"github.com/text2brain/text2brain/functions/internal/dev/localstack"
	"github.com/text2brain/text2brain/functions/internal/dev/stacktest"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

var stack *localstack.Stack

// TestMain starts one stack for all tests: emulators take seconds to start.
func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	// Short limits so that the failure tests finish quickly.
	// Every test is one client: the limits of new maps, warm-ups and feedback are tested apart.
	// A short read timeout, so that the slow body's test ends soon.
	s, stop, err := stacktest.Start("T2B_BACKEND_TIMEOUT=3s", "T2B_STALE_AFTER=1h", "T2B_RATE=1000", "T2B_RATE_BURST=1000",
		"T2B_PREDICT_EVERY=0s", "T2B_WARMUP_CLIENT_EVERY=0s", "T2B_FEEDBACK_EVERY=0s", "T2B_MAX_PENDING=0", "T2B_READ_TIMEOUT=2s")
	if err != nil {
		return 0, err
	}
	defer stop()
	stack = s
	return m.Run(), nil
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("status %d, body not JSON: %v\n%s", r.status, err, r.body)
	}
	return v
}

func do(t *testing.T, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, strings.TrimRight(stack.URL, "/")+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, raw}
}

func get(t *testing.T, path string) response { return do(t, http.MethodGet, path, nil) }

func query(q string, wait int) string {
	return fmt.Sprintf("/api/v1/maps?q=%s&wait=%d", url.QueryEscape(q), wait)
}

// pollDone polls a map until it is done.
func pollDone(t *testing.T, id string) response {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r := get(t, "/api/v1/maps/"+id)
		switch r.status {
		case http.StatusOK:
			return r
		case http.StatusAccepted:
			time.Sleep(200 * time.Millisecond)
		default:
			t.Fatalf("polling %s: %d %s", id, r.status, r.body)
		}
	}
	t.Fatalf("map %s not done after 60 s", id)
	return response{}
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	t.Setenv("FIRESTORE_EMULATOR_HOST", stack.FirestoreHost)
	s, err := store.New(context.Background(), stack.ProjectID, "maps")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func idOf(q string) string {
	n, _ := querytext.Normalize(q)
	return querytext.Key(stack.ModelVersion, n)
}

func TestQueryLifecycle(t *testing.T) {
	const q = "listening to music"
	r := get(t, query(q, 0))
	if r.status != http.StatusAccepted {
		t.Fatalf("first query: %d %s, want 202", r.status, r.body)
	}
	pending := r.json(t)
	id, _ := pending["id"].(string)
	if id != idOf(q) || pending["status"] != "pending" || pending["poll"] != "/api/v1/maps/"+id || r.header.Get("Retry-After") == "" {
		t.Fatalf("pending answer %v, headers %v", pending, r.header)
	}

	done := pollDone(t, id).json(t)
	for _, k := range []string{"recognized_terms", "related_terms", "related_articles", "peaks", "map_url", "preview_url", "compute_ms", "created_at"} {
		if _, ok := done[k]; !ok {
			t.Errorf("result lacks %s: %v", k, done)
		}
	}
	if arts := done["related_articles"].([]any); len(arts) != 10 {
		t.Errorf("%d related articles", len(arts))
	}

	// A repeated query is a cache hit: same result, one more hit, long cache lifetime.
	hit1 := get(t, query("  Listening TO music ", 0))
	hit2 := get(t, query(q, 0))
	if hit1.status != 200 || hit2.status != 200 {
		t.Fatalf("cache hits: %d, %d", hit1.status, hit2.status)
	}
	a, b := hit1.json(t), hit2.json(t)
	if a["hits"].(float64) != 1 || b["hits"].(float64) != 2 {
		t.Errorf("hits %v then %v, want 1 then 2", a["hits"], b["hits"])
	}
	delete(a, "hits")
	delete(b, "hits")
	// The spans point into each request's own text, "  Listening TO music " and q.
	if sa, sb := a["recognized_spans"].([]any), b["recognized_spans"].([]any); len(sa) != 2 || len(sb) != 2 ||
		sa[0].(map[string]any)["start"] != 2.0 || sb[0].(map[string]any)["start"] != 0.0 {
		t.Errorf("spans %v and %v", sa, sb)
	}
	for _, k := range []string{"query", "recognized_spans"} {
		delete(a, k)
		delete(b, k)
		delete(done, k)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two cache hits differ (-first +second):\n%s", diff)
	}
	delete(done, "hits")
	if diff := cmp.Diff(done, a); diff != "" {
		t.Errorf("cache hit differs from the polled result (-polled +hit):\n%s", diff)
	}
	if cc := hit1.header.Get("Cache-Control"); !strings.Contains(cc, "max-age") {
		t.Errorf("cache hit Cache-Control %q", cc)
	}

	// The stored files are served, and the NIfTI is the map.
	nii := get(t, "/api/v1/maps/"+id+"/map.nii.gz")
	if nii.status != 200 || nii.header.Get("Content-Type") != "application/gzip" || !strings.Contains(nii.header.Get("Cache-Control"), "immutable") {
		t.Fatalf("map.nii.gz: %d %v", nii.status, nii.header)
	}
	vol, err := brain.ReadNIfTI(bytes.NewReader(nii.body))
	if err != nil {
		t.Fatal(err)
	}
	peak := done["peaks"].([]any)[0].(map[string]any)
	mni := peak["mni"].([]any)
	i, j, k, _ := brain.MNIToVoxel(mni[0].(float64), mni[1].(float64), mni[2].(float64))
	if got := vol.At(i, j, k); float32(got) != float32(peak["z"].(float64)) {
		t.Errorf("NIfTI value at the strongest peak %v = %v, result says %v", mni, got, peak["z"])
	}
	png := get(t, "/api/v1/maps/"+id+"/preview.png")
	if png.status != 200 || png.header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(png.body, []byte("\x89PNG")) {
		t.Errorf("preview.png: %d %v", png.status, png.header)
	}

	// POST gives the same document.
	p := do(t, http.MethodPost, "/api/v1/maps", map[string]any{"query": q, "wait": 2})
	if p.status != 200 || p.json(t)["id"] != id {
		t.Errorf("POST: %d %s", p.status, p.body)
	}
}

func TestWaitAnswersInOneRoundTrip(t *testing.T) {
	r := get(t, query("reading a book", 10))
	if r.status != 200 {
		t.Fatalf("query with wait=10: %d %s, want 200", r.status, r.body)
	}
	if r.json(t)["status"] != "done" {
		t.Errorf("status %v", r.json(t)["status"])
	}
}

func TestConcurrentFirstQueriesMakeOnePrediction(t *testing.T) {
	const q = "imagine all the people sharing all the world"
	var wg sync.WaitGroup
	statuses := make([]int, 20)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = get(t, query(q, 10)).status
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 200 && s != 202 {
			t.Errorf("request %d: %d", i, s)
		}
	}
	pollDone(t, idOf(q))
	d, err := openStore(t).Get(context.Background(), idOf(q))
	if err != nil {
		t.Fatal(err)
	}
	if d.Deliveries != 1 || d.Predictions != 1 {
		t.Errorf("20 simultaneous first queries: %d job deliveries and %d predictions, want exactly 1 and 1", d.Deliveries, d.Predictions)
	}
}

func TestDuplicateDeliveryMakesOneResult(t *testing.T) {
	const q = "thinking out loud"
	first := get(t, query(q, 10))
	if first.status != 200 {
		t.Fatalf("%d %s", first.status, first.body)
	}
	st := openStore(t)
	before, err := st.Get(context.Background(), idOf(q))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := querytext.Normalize(q)
	job, _ := json.Marshal(queue.Message{ID: idOf(q), Text: n, ModelVersion: stack.ModelVersion})
	for range 2 {
		if err := stack.Publish(context.Background(), job); err != nil {
			t.Fatal(err)
		}
	}
	var after *store.Doc
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if after, err = st.Get(context.Background(), idOf(q)); err == nil && after.Deliveries >= 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after.Deliveries != 3 {
		t.Fatalf("%d deliveries, want 3", after.Deliveries)
	}
	if after.Predictions != 1 || !after.CompletedAt.Equal(before.CompletedAt) || after.Result.ComputeMS != before.Result.ComputeMS {
		t.Errorf("redelivered job changed the result: predictions %d, completed %v → %v", after.Predictions, before.CompletedAt, after.CompletedAt)
	}
}

// lostJob makes a pending document as if its job had been published at publishedAt and lost.
func lostJob(t *testing.T, q string, publishedAt time.Time, republished bool) string {
	t.Helper()
	n, _ := querytext.Normalize(q)
	created, err := openStore(t).CreatePending(context.Background(), &store.Doc{ID: idOf(q), Query: q,
		NormalizedQuery: n, ModelVersion: stack.ModelVersion, CreatedAt: publishedAt, PublishedAt: publishedAt.UTC(), Republished: republished})
	if err != nil || !created {
		t.Fatalf("CreatePending = %v, %v", created, err)
	}
	return idOf(q)
}

// A pending document whose job was lost is republished once when it is older than the limit, for
// a new query of the same text and for a client polling it.
func TestLostJobIsRepublished(t *testing.T) {
	id := lostJob(t, "oh reading music faces", time.Now().Add(-2*time.Hour), false)
	if r := get(t, query("oh reading music faces", 10)); r.status != 200 {
		t.Fatalf("stale pending query: %d %s, want 200 after a republish", r.status, r.body)
	}
	if d, err := openStore(t).Get(context.Background(), id); err != nil || !d.Republished || d.Deliveries != 1 {
		t.Errorf("document after republish: %+v, %v", d, err)
	}

	id = lostJob(t, "music faces reading", time.Now().Add(-2*time.Hour), false)
	pollDone(t, id)
}

// A job lost twice fails its document retryably, and the next query starts afresh.
func TestStalledJobIsRetriedByTheNextQuery(t *testing.T) {
	const q = "faces music"
	lostJob(t, q, time.Now().Add(-2*time.Hour), true)
	if r := get(t, query(q, 10)); r.status != 200 {
		t.Fatalf("query of a stalled map: %d %s, want a fresh job and 200", r.status, r.body)
	}
}

// A job the worker must refuse (its text is not its query's) fails its document for good, and the
// API says why.
func TestForgedJobsChangeNothing(t *testing.T) {
	const q = "reading faces music"
	id := lostJob(t, q, time.Now(), false)
	n, _ := querytext.Normalize(q)
	forged := []queue.Message{
		{ID: id, Text: "something else", ModelVersion: stack.ModelVersion},    // text not the id's
		{ID: id, Text: n, ModelVersion: "nq-other"},                           // another model, same id
		{ID: querytext.Key("nq-other", n), Text: n, ModelVersion: "nq-other"}, // its own id, no document
	}
	for _, m := range forged {
		raw, _ := json.Marshal(m)
		if err := stack.Publish(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
	}
	// Then the real job: once it is done, Predict has seen the forged ones too (or will ack them
	// without a change); the document counts one delivery and one prediction.
	raw, _ := json.Marshal(queue.Message{ID: id, Text: n, ModelVersion: stack.ModelVersion})
	if err := stack.Publish(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	pollDone(t, id)
	time.Sleep(2 * time.Second) // let Predict take whatever is still on its way
	d, err := openStore(t).Get(context.Background(), id)
	if err != nil || d.Status != "done" || d.Deliveries != 1 || d.Predictions != 1 || d.Error != "" {
		t.Errorf("document after forged jobs: %+v, %v", d, err)
	}
	if _, err := openStore(t).Get(context.Background(), querytext.Key("nq-other", n)); err == nil {
		t.Error("a forged job made a document")
	}
	if r := get(t, query(q, 0)); r.status != http.StatusOK {
		t.Errorf("query of the map: %d, want 200", r.status)
	}
}

func TestUnknownIDAndPage(t *testing.T) {
	if r := get(t, "/api/v1/maps/0123456789abcdef0123456789abcdef"); r.status != 404 || r.json(t)["error"] == nil {
		t.Errorf("unknown id: %d %s", r.status, r.body)
	}
	if r := get(t, "/"); r.status != 200 || !bytes.Contains(r.body, []byte("<html")) {
		t.Errorf("the page at /: %d", r.status)
	}
}

func TestWarmUpIsRateLimited(t *testing.T) {
	first := do(t, http.MethodPost, "/api/v1/warm", nil)
	second := do(t, http.MethodPost, "/api/v1/warm", nil)
	if first.status != 202 || first.json(t)["warmup"] != "sent" {
		t.Errorf("first warm-up: %d %s", first.status, first.body)
	}
	if second.status != 202 || second.json(t)["warmup"] != "recent" {
		t.Errorf("second warm-up within a minute: %d %s, want it not sent", second.status, second.body)
	}
	v := get(t, "/api/v1/version").json(t)
	if v["model_version"] != stack.ModelVersion {
		t.Errorf("version %v, stack serves %s", v, stack.ModelVersion)
	}
}

// Predict fails on the first delivery (its results bucket is gone), and completes on Pub/Sub's
// redelivery once the bucket is back.
func TestPredictCompletesOnRedelivery(t *testing.T) {
	ctx := context.Background()
	t.Setenv("STORAGE_EMULATOR_HOST", stack.StorageHost)
	gcs, err := storage.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gcs.Close()
	bucket := gcs.Bucket(stack.ResultsBucket)
	it := bucket.Objects(ctx, nil)
	for {
		o, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := bucket.Object(o.Name).Delete(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := bucket.Delete(ctx); err != nil {
		t.Fatal(err)
	}

	const q = "feeling happy"
	if r := get(t, query(q, 0)); r.status != 202 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	st := openStore(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := st.Get(ctx, idOf(q))
		if err == nil && d.Deliveries >= 1 && d.Status == store.Pending && d.Predictions >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first delivery did not happen: %+v, %v", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if err := bucket.Create(ctx, stack.ProjectID, nil); err != nil {
		t.Fatal(err)
	}
	done := pollDone(t, idOf(q)).json(t)
	if done["status"] != "done" {
		t.Fatalf("%v", done)
	}
	d, _ := st.Get(ctx, idOf(q))
	if d.Deliveries < 2 {
		t.Errorf("done after %d deliveries, want a redelivery", d.Deliveries)
	}
	if r := get(t, "/api/v1/maps/"+idOf(q)+"/map.nii.gz"); r.status != 200 {
		t.Errorf("map after redelivery: %d", r.status)
	}
}

// With Pub/Sub down a new query gets 503 and no job; once it is back, the same query publishes the
// job its document still waits for.
func TestPubSubDownThenBack(t *testing.T) {
	const q = "pain and reward"
	if err := stack.PubSub.Stop(); err != nil {
		t.Fatal(err)
	}
	r := get(t, query(q, 0))
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "job queue") {
		t.Fatalf("with Pub/Sub down: %d %s, want 503 naming the job queue", r.status, r.body)
	}
	d, err := openStore(t).Get(context.Background(), idOf(q))
	if err != nil || d.Status != store.Pending || !d.PublishedAt.IsZero() {
		t.Fatalf("document after a failed publish: %+v, %v; want pending and unpublished", d, err)
	}
	if err := stack.PubSub.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := stack.SetUpPubSub(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The clients (Query's publisher, the push stand-in's pull) reconnect with backoff: give them
	// a while. Until then a query is 503 (not published) or 202 (published, not yet delivered).
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := get(t, query(q, 10))
		if r.status == 200 {
			break
		}
		if r.status != http.StatusServiceUnavailable && r.status != http.StatusAccepted || time.Now().After(deadline) {
			t.Fatalf("after Pub/Sub came back: %d %s, want the job published and 200", r.status, r.body)
		}
		time.Sleep(time.Second)
	}
}

// With Firestore down the API answers 503 with a message in bounded time, and recovers.
// Runs last (Go runs tests in source order): it stops and restarts Firestore, which comes back
// with its last export.
func TestFirestoreDownThenBack(t *testing.T) {
	if err := stack.Firestore.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := get(t, query("self-generated thought", 0))
	took := time.Since(start)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("with Firestore down: %d %s, want 503", r.status, r.body)
	}
	msg := r.json(t)["error"].(map[string]any)["message"].(string)
	if !strings.Contains(msg, "unavailable") || r.header.Get("Retry-After") == "" {
		t.Errorf("503 message %q, Retry-After %q", msg, r.header.Get("Retry-After"))
	}
	if took > 15*time.Second {
		t.Errorf("503 took %s", took)
	}

	if err := stack.Firestore.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A client whose connection broke retries with gRPC's backoff, which grows to two minutes:
	// recovery is certain within that, and usually takes seconds.
	deadline := time.Now().Add(150 * time.Second)
	for {
		r := get(t, query("self-generated thought", 10))
		if r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after Firestore came back: %d %s", r.status, r.body)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// rawRequest sends request as it is (no client cleans its path or checks its headers) to the
// server at base and reads the answer.
func rawRequest(t *testing.T, base, request string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimRight(base, "/"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go io.WriteString(c, request)
	c.SetReadDeadline(time.Now().Add(60 * time.Second)) // a bound for a broken stack only
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to %.60q: %v", request, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// The answers of the hardened edges on the real stack: every /api error JSON with the security
// headers, an unmapped text answered at once without a document, strict bodies, a slow body cut
// off. What Query's own server answers (oversized headers, a stalled body) is asked of the Query
// process directly: the local stack's front server has its own limits (a 1 MB header limit, no
// read timeout, so a stalled body holds it).
func TestHardenedEdges(t *testing.T) {
	errorCode := func(t *testing.T, status int, header http.Header, body []byte) string {
		t.Helper()
		var e struct {
			Error struct{ Code, Message string }
		}
		if !strings.HasPrefix(header.Get("Content-Type"), "application/json") || json.Unmarshal(body, &e) != nil {
			t.Errorf("%d is not the API's JSON error: %v %s", status, header, body)
		}
		if header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%d without nosniff: %v", status, header)
		}
		return e.Error.Code
	}

	version := get(t, "/api/v1/version").json(t)["model_version"].(string)
	r := get(t, query("abscess", 5))
	if code := errorCode(t, r.status, r.header, r.body); r.status != 422 || code != "no_mapped_terms" || !bytes.Contains(r.body, []byte(`\"abscess\"`)) {
		t.Errorf("an unmapped term: %d %s", r.status, r.body)
	}
	if _, err := openStore(t).Get(context.Background(), querytext.Key(version, "abscess")); err == nil {
		t.Error("an unmapped term made a document")
	}
	if h := r.header; !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("Referrer-Policy") == "" {
		t.Errorf("security headers: %v", h)
	}

	post := func(body string) string {
		return fmt.Sprintf("POST /api/v1/maps HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	for _, tc := range []struct {
		name, base, request string
		status              int
		code                string
	}{
		// Over net/http's slack of 4 kB past the limit (8 kB on a kept-alive connection).
		// Well over the limit: net/http reads up to 4 kB past it (8 kB on a kept-alive connection).
		{"headers over 64 kB", stack.QueryURL, "GET /api/v1/version HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("x", 80<<10) + "\r\n\r\n", 431, "headers_too_large"},
		// The body stops after 10 of its 100 bytes: Query's read deadline ends the wait.
		{"a stalled body", stack.QueryURL, "POST /api/v1/maps HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"query\": ", 408, "request_timeout"},
		{"dot dot under /api", stack.URL, "GET /api/v1/maps/../x HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"},
		{"trailing data", stack.URL, post(`{"query":"face"}xyz`), 400, "invalid_json"},
		{"wait as a string", stack.URL, post(`{"query":"face","wait":"5"}`), 400, "invalid_wait"},
		{"a lone surrogate", stack.URL, post(`{"query":"face\ud800"}`), 400, "invalid_query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawRequest(t, tc.base, tc.request)
			if code := errorCode(t, resp.StatusCode, resp.Header, body); resp.StatusCode != tc.status || code != tc.code {
				t.Errorf("%d %v %s, want %d %s", resp.StatusCode, resp.Header, body, tc.status, tc.code)
			}
		})
	}

	// A page path with nothing is a small HTML page, without CORS headers.
	r = get(t, "/no/such/page")
	if r.status != 404 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a missing page: %d %v %s", r.status, r.header, r.body)
	}
}
