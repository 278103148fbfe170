package predictjob

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// push is a Pub/Sub push request body carrying data.
func push(data []byte) string {
	return fmt.Sprintf(`{"message":{"data":%q,"messageId":"m1"},"subscription":"projects/p/subscriptions/s"}`,
		base64.StdEncoding.EncodeToString(data))
}

func post(h http.Handler, method, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/", strings.NewReader(body)))
	return rec
}

// Messages that can never succeed are acked (2xx) without touching the store: redelivering them
// would only loop. A warm-up whose model load fails is acked too: the next job retries the load.
// What is not a Pub/Sub push at all gets a short JSON error, never an echo of the body.
func TestPushRequests(t *testing.T) {
	loads := 0
	w := New(nil, nil, "results", func(context.Context) (*model.Model, error) {
		loads++
		return nil, errors.New("bucket did not answer")
	})
	var stats Stats
	h := PushHandler(func(context.Context) (*Worker, error) { return w, nil }, &stats)
	for name, data := range map[string]string{
		"not JSON":        "hello",
		"neither":         `{}`,
		"job lacks text":  `{"id":"0123456789abcdef0123456789abcdef","model_version":"nq-1"}`,
		"invalid id":      `{"id":"../../etc","text":"faces","model_version":"nq-1"}`,
		"id not the hash": `{"id":"0123456789abcdef0123456789abcdef","text":"faces","model_version":"nq-1"}`,
		"warm-up":         `{"warmup":true}`,
	} {
		if rec := post(h, "POST", push([]byte(data))); rec.Code != http.StatusNoContent {
			t.Errorf("%s: %d %s, want the message acked", name, rec.Code, rec.Body)
		}
	}
	if loads != 1 {
		t.Errorf("%d model loads, want 1 (the warm-up)", loads)
	}
	if n := stats.Rejected.Load(); n != 5 {
		t.Errorf("%d rejected jobs counted, want 5", n)
	}

	huge := `{"message":{"data":"` + strings.Repeat("A", 50<<20) + `"}}`
	for _, tc := range []struct {
		name, method, body string
		status             int
		code               string
	}{
		{"not an envelope", "POST", "not an envelope", 400, "invalid_push"},
		{"trailing data", "POST", push([]byte(`{"warmup":true}`)) + "{}", 400, "invalid_push"},
		{"50 MB", "POST", huge, 413, "too_large"},
		{"GET", "GET", "", 405, "method_not_allowed"},
	} {
		rec := post(h, tc.method, tc.body)
		var body struct {
			Error struct{ Code, Message string }
		}
		if rec.Code != tc.status || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != tc.code || rec.Body.Len() > 300 {
			t.Errorf("%s: %d %.300s, want %d %s and a short body", tc.name, rec.Code, rec.Body, tc.status, tc.code)
		}
	}
	if n := stats.BadRequests.Load(); n != 3 {
		t.Errorf("%d bad requests counted, want 3", n)
	}
	if e := excerpt([]byte(strings.Repeat("é", 300))); len(e) > 2*excerptBytes || !strings.Contains(e, "(600 bytes)") {
		t.Errorf("excerpt %q", e)
	}

	// A worker that cannot be made (misconfiguration, backend down): redelivered.
	down := PushHandler(func(context.Context) (*Worker, error) { return nil, errors.New("no bucket") }, &stats)
	if rec := post(down, "POST", push([]byte(`{"warmup":true}`))); rec.Code != 503 {
		t.Errorf("worker down: %d", rec.Code)
	}
}

// A real job through the handler: 204 when done, 500 (redelivery) on a transient failure.
func TestPushJob(t *testing.T) {
	m := realModel(t)
	w := newWorker(t, m)
	var stats Stats
	h := PushHandler(func(context.Context) (*Worker, error) { return w.Worker, nil }, &stats)
	job := w.queued(t, m.Version(), "viewing faces")
	raw, _ := json.Marshal(job)
	if rec := post(h, "POST", push(raw)); rec.Code != http.StatusNoContent {
		t.Fatalf("job: %d %s", rec.Code, rec.Body)
	}
	if d := w.st.Doc(job.ID); d.Status != jobs.Done {
		t.Errorf("document %+v", d)
	}
	other := w.queued(t, "nq-other", "viewing faces") // a deployment in progress
	raw, _ = json.Marshal(other)
	if rec := post(h, "POST", push(raw)); rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "job_failed") {
		t.Errorf("a job for another model version: %d %s, want a redelivery", rec.Code, rec.Body)
	}
}

// Whatever a push body holds, Predict answers in bounded, short JSON (or 204 for an acked
// message), never echoes it, never panics, and changes no document it did not make: the only
// document in the store, pending, stays pending unless the body is exactly its job (which a model
// that never loads then fails transiently, a redelivery).
func FuzzPushEnvelope(f *testing.F) {
	w := newWorker(f, nil)
	job := w.queued(f, "nq-fuzz", "viewing faces")
	raw, _ := json.Marshal(job)
	for _, seed := range []string{
		push(raw), push([]byte(`{"warmup":true}`)), push([]byte("hello")), "not an envelope", "{}", `{"message":{}}`,
		`{"message":{"data":"!!"}}`, push(raw) + "{}", `{"message":{"data":"e30="},"deliveryAttempt":"5"}`,
		`[{"message":{}}]`, push([]byte(`{"id":"` + job.ID + `","text":"viewing face","model_version":"nq-fuzz"}`)),
	} {
		f.Add([]byte(seed))
	}
	var stats Stats
	h := PushHandler(func(context.Context) (*Worker, error) { return w.Worker, nil }, &stats)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(string(body))))
		switch rec.Code {
		case http.StatusNoContent:
			if rec.Body.Len() != 0 {
				t.Fatalf("204 with a body: %q", rec.Body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusInternalServerError:
			var e struct {
				Error struct{ Code, Message string }
			}
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error.Code == "" || rec.Body.Len() > 300 {
				t.Fatalf("%d %q: not a short JSON error", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if d := w.st.Doc(job.ID); d == nil || d.Status != jobs.Pending {
			t.Fatalf("the pending document changed: %+v", d)
		}
	})
}

// A decoding's job that Query cannot have made is acked and changes nothing: its id must be the
// hash of its model version and upload, the upload a SHA-256, and it has no text; nor may a
// query's job claim a decoding's fields.
func TestForgedDecodingJobs(t *testing.T) {
	w := newWorker(t, nil)
	var stats Stats
	h := PushHandler(func(context.Context) (*Worker, error) { return w.Worker, nil }, &stats)
	sha := strings.Repeat("ab", 32)
	id := querytext.DecodingKey("nq-1", sha)
	for name, data := range map[string]string{
		"id not the hash":   `{"kind":"decoding","id":"0123456789abcdef0123456789abcdef","upload":"` + sha + `","model_version":"nq-1"}`,
		"upload not a hash": `{"kind":"decoding","id":"` + id + `","upload":"../../etc/passwd","model_version":"nq-1"}`,
		"with a text":       `{"kind":"decoding","id":"` + id + `","upload":"` + sha + `","text":"faces","model_version":"nq-1"}`,
		"no such document":  `{"kind":"decoding","id":"` + id + `","upload":"` + sha + `","model_version":"nq-1"}`,
		"a query's, upload": `{"id":"` + querytext.Key("nq-1", "faces") + `","text":"faces","upload":"` + sha + `","model_version":"nq-1"}`,
		"an unknown kind":   `{"kind":"other","id":"` + id + `","upload":"` + sha + `","model_version":"nq-1"}`,
	} {
		if rec := post(h, "POST", push([]byte(data))); rec.Code != http.StatusNoContent {
			t.Errorf("%s: %d %s, want the message acked", name, rec.Code, rec.Body)
		}
	}
	if n := stats.Rejected.Load(); n != 6 {
		t.Errorf("%d rejected, want 6", n)
	}
	if w.loads.Load() != 0 {
		t.Error("a forged job loaded the model")
	}
}
