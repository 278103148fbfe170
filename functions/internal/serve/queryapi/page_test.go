package queryapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs/jobstest"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

func (b *backends) post(t *testing.T, target, body string) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, httptest.NewRequest("POST", target, strings.NewReader(body)))
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
		t.Fatalf("POST %s: not JSON: %s", target, rec.Body)
	}
	return a
}

// Spans point into the text as sent, in code points, and name the model's terms: what the page
// needs to highlight the recognised phrases as they are typed.
func TestTermSpans(t *testing.T) {
	b := newBackends(t)
	for _, tc := range []struct {
		text string
		want []Span
	}{
		{"working memory", []Span{{0, 14, "working memory"}}},
		{"  Viewing FACES ", []Span{{2, 9, "viewing"}, {10, 15, "face"}}},
		{"🧠 faces and the working   memory", []Span{{2, 7, "face"}, {16, 32, "working memory"}}},
		{"Ｆａｃｅｓ", []Span{{0, 5, "face"}}}, // full-width letters fold (NFKC) to "faces", a synonym of "face"
		{"blah blah", []Span{}},
		// Characters Normalize drops are inside the span of the word they split, or outside any.
		{"fa\u00adce", []Span{{0, 5, "face"}}},
		{"FA\u00adCES and mem\u200bory", []Span{{0, 6, "face"}, {11, 18, "memory"}}},
		{"\ufeffworking\u2060 memory\u200b", []Span{{1, 16, "working memory"}}},
		{"face\u200b", []Span{{0, 4, "face"}}},
	} {
		a := b.get(t, "/api/v1/terms?q="+url.QueryEscape(tc.text))
		if a.status != 200 {
			t.Fatalf("%q: %d %s", tc.text, a.status, a.raw)
		}
		var got Terms
		if err := json.Unmarshal(a.raw, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got.Spans); diff != "" {
			t.Errorf("%q: spans (-want +got):\n%s", tc.text, diff)
		}
		// The spans' terms are the recognised terms of the normalised text.
		var fromSpans []string
		for _, s := range got.Spans {
			fromSpans = append(fromSpans, s.Term)
			if runes := []rune(tc.text); s.End > len(runes) || s.Start >= s.End {
				t.Errorf("%q: span %+v outside the text", tc.text, s)
			}
		}
		n, _ := querytext.Normalize(tc.text)
		if want := b.s.feat.Featurize(n).Terms; len(want) != len(got.RecognizedTerms) || len(fromSpans) < len(want) {
			t.Errorf("%q: recognised %v, spans %v, featurizer %v", tc.text, got.RecognizedTerms, fromSpans, want)
		}
	}
	if a := b.get(t, "/api/v1/terms?q="); a.status != 200 || len(a.body["spans"].([]any)) != 0 {
		t.Errorf("empty text: %d %s", a.status, a.raw)
	}
	if a := b.get(t, "/api/v1/terms"); a.status != 400 || a.errorCode() != "missing_query" {
		t.Errorf("no q: %d %s", a.status, a.raw)
	}
	if a := b.get(t, "/api/v1/terms?q="+strings.Repeat("a", 2001)); a.status != 413 || a.errorCode() != "too_long" {
		t.Errorf("too long: %d %s", a.status, a.raw)
	}
	if a := b.get(t, "/api/v1/terms?q=%ff"); a.status != 400 || a.errorCode() != "invalid_query" {
		t.Errorf("invalid UTF-8: %d %s", a.status, a.raw)
	}
	if len(b.q.Messages()) != 0 {
		t.Error("looking up terms published a job")
	}
}

// A pending map says whether Predict has the job yet; a result has its spans and surface.
func TestPendingStageAndResultFields(t *testing.T) {
	b := newBackends(t)
	id := b.id(t, "faces")
	if a := b.get(t, "/api/v1/maps?q=faces"); a.status != 202 || a.body["stage"] != StageQueued {
		t.Fatalf("new query: %d %v", a.status, a.body)
	}
	if _, run, err := b.predict.Start(context.Background(), id); err != nil || !run {
		t.Fatal(run, err)
	}
	if a := b.get(t, "/api/v1/maps/"+id); a.status != 202 || a.body["stage"] != StageComputing {
		t.Fatalf("delivered job: %d %v", a.status, a.body)
	}
	surface := `{"mesh":"fsaverage5","left":[1.5],"right":[-2]}`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(surface))
	zw.Close()
	b.blobs.objects["results/maps/v/"+id+".surface.json.gz"] = blobs.Object{Data: gz.Bytes(), ContentType: "application/gzip"}
	r := &jobs.Result{RecognizedTerms: []string{"faces"}, MapObject: "maps/v/" + id + ".nii.gz",
		PreviewObject: "maps/v/" + id + ".png", SurfaceObject: "maps/v/" + id + ".surface.json.gz"}
	if _, err := b.predict.Complete(context.Background(), id, r); err != nil {
		t.Fatal(err)
	}
	a := b.get(t, "/api/v1/maps?q=Faces")
	if a.status != 200 || a.body["surface_url"] != "/api/v1/maps/"+id+"/surface.json" {
		t.Fatalf("result: %d %v", a.status, a.body)
	}
	if spans, _ := a.body["recognized_spans"].([]any); len(spans) != 1 {
		t.Errorf("spans %v", a.body["recognized_spans"])
	}

	// Stored gzip-compressed; inflated for a client that does not take gzip.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/maps/"+id+"/surface.json", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	b.h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "gzip" || !bytes.Equal(rec.Body.Bytes(), gz.Bytes()) {
		t.Errorf("surface with gzip: %d %v", rec.Code, rec.Header())
	}
	if plain := b.get(t, "/api/v1/maps/"+id+"/surface.json"); plain.status != 200 || string(plain.raw) != surface || plain.header.Get("Content-Encoding") != "" {
		t.Errorf("surface without gzip: %d %v %q", plain.status, plain.header, plain.raw)
	}
}

// A poll with wait answers as soon as the result is written.
func TestPollWaits(t *testing.T) {
	b := newBackends(t)
	id := b.id(t, "faces")
	b.get(t, "/api/v1/maps?q=faces")
	go func() {
		time.Sleep(100 * time.Millisecond)
		b.complete(t, id)
	}()
	if a := b.get(t, "/api/v1/maps/"+id+"?wait=5"); a.status != 200 {
		t.Errorf("poll with wait: %d %v", a.status, a.body)
	}
	if a := b.get(t, "/api/v1/maps/"+id+"?wait=soon"); a.status != 400 || a.errorCode() != "invalid_wait" {
		t.Errorf("bad wait: %d %v", a.status, a.body)
	}
}

func TestFeedback(t *testing.T) {
	b := newBackends(t)
	id := b.id(t, "faces")
	b.get(t, "/api/v1/maps?q=faces")
	b.complete(t, id)
	body := func(mapID, text string) string {
		raw, _ := json.Marshal(map[string]string{"map_id": mapID, "text": text})
		return string(raw)
	}

	before := time.Now().UTC()
	if a := b.post(t, "/api/v1/feedback", body(id, "  The map looks right.  ")); a.status != http.StatusCreated || a.body["status"] != "stored" {
		t.Fatalf("feedback: %d %v", a.status, a.body)
	}
	got := b.st.Feedback()
	if len(got) != 1 || got[0].MapID != id || got[0].Text != "The map looks right." || got[0].CreatedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("stored %+v", got)
	}

	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"not JSON", "thanks", 400, "invalid_json"},
		{"no text", `{"map_id":"` + id + `"}`, 400, "invalid_feedback"},
		{"blank text", body(id, "   "), 400, "invalid_feedback"},
		{"too long", body(id, strings.Repeat("é", MaxFeedbackChars+1)), 413, "too_long"},
		{"bad id", body("nope", "hi"), 404, "not_found"},
		{"unknown map", body(strings.Repeat("a", 32), "hi"), 404, "not_found"},
	} {
		if a := b.post(t, "/api/v1/feedback", tc.body); a.status != tc.status || a.errorCode() != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, a.status, a.body, tc.status, tc.code)
		}
	}
	if n := len(b.st.Feedback()); n != 1 {
		t.Errorf("%d feedback stored after the refused ones, want 1", n)
	}

	// A client gets a few in a row, then a 429; the store's failure is a 503.
	var limited bool
	for range b.s.cfg.FeedbackBurst + 1 {
		if a := b.post(t, "/api/v1/feedback", body(id, "again")); a.status == 429 {
			limited = a.errorCode() == "rate_limited" && a.header.Get("Retry-After") != ""
			break
		}
	}
	if !limited {
		t.Error("feedback is not rate limited")
	}
	b2 := newBackends(t)
	b2.get(t, "/api/v1/maps?q=faces")
	b2.complete(t, id)
	b2.st.Inject(jobstest.OpAddFeedback, context.DeadlineExceeded)
	if a := b2.post(t, "/api/v1/feedback", body(id, "hi")); a.status != 503 || a.errorCode() != "unavailable" {
		t.Errorf("store down: %d %v", a.status, a.body)
	}
}
