package queryapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/text2brain/text2brain/functions/internal/serve/config"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
)

// getFrom answers GET target for the client at addr (behind the one trusted proxy).
func (b *backends) getFrom(t *testing.T, addr, target string) answer {
	t.Helper()
	return b.do(t, addr, "GET", target, "")
}

func (b *backends) do(t *testing.T, addr, method, target, body string) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("X-Forwarded-For", addr)
	b.h.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, target, rec.Body)
	}
	return a
}

// New predictions are limited per client; cached answers, polls and queries of maps already
// pending are not.
func TestPredictionLimitSparesCachedReads(t *testing.T) {
	b := newBackends(t, func(c *config.Config) {
		c.PredictEvery, c.PredictBurst, c.TrustedProxies = time.Hour, 2, 1
	})
	const me, other = "203.0.113.7", "198.51.100.2"
	for _, q := range []string{"faces", "memory"} {
		if a := b.getFrom(t, me, "/api/v1/maps?q="+q); a.status != http.StatusAccepted {
			t.Fatalf("new query %s within the burst: %d %s", q, a.status, a.raw)
		}
	}
	a := b.getFrom(t, me, "/api/v1/maps?q=reading")
	if a.status != http.StatusTooManyRequests || a.errorCode() != "rate_limited" || a.header.Get("Retry-After") != "3600" {
		t.Fatalf("a third new query: %d %v %s", a.status, a.header, a.raw)
	}
	if len(b.q.Messages()) != 2 {
		t.Errorf("%d jobs published, want 2", len(b.q.Messages()))
	}
	// What is already there costs no prediction: pending, cached, polled.
	if a := b.getFrom(t, me, "/api/v1/maps?q=memory"); a.status != http.StatusAccepted {
		t.Errorf("a pending query again: %d %s", a.status, a.raw)
	}
	b.complete(t, b.id(t, "faces"))
	for range 20 {
		if a := b.getFrom(t, me, "/api/v1/maps?q=faces"); a.status != http.StatusOK {
			t.Fatalf("a cached query: %d %s", a.status, a.raw)
		}
		if a := b.getFrom(t, me, "/api/v1/maps/"+b.id(t, "faces")); a.status != http.StatusOK {
			t.Fatalf("a poll: %d %s", a.status, a.raw)
		}
	}
	if a := b.getFrom(t, other, "/api/v1/maps?q=reading"); a.status != http.StatusAccepted {
		t.Errorf("another client's new query: %d %s", a.status, a.raw)
	}
	// Queries refused before any backend is asked are not predictions either.
	if a := b.getFrom(t, me, "/api/v1/maps?q=oh+i+believe+in+yesterday"); a.status != http.StatusUnprocessableEntity {
		t.Errorf("no known terms: %d", a.status)
	}
}

// A retryable failure restarted by a query is a new job, and counts as one.
func TestRestartCountsAsANewPrediction(t *testing.T) {
	b := newBackends(t, func(c *config.Config) { c.PredictEvery, c.PredictBurst, c.TrustedProxies = time.Hour, 1, 1 })
	const me = "203.0.113.7"
	id := b.id(t, "faces")
	b.getFrom(t, me, "/api/v1/maps?q=faces")
	if _, err := b.predict.GiveUp(context.Background(), id, "poison"); err != nil {
		t.Fatal(err)
	}
	if a := b.getFrom(t, me, "/api/v1/maps?q=faces"); a.status != http.StatusTooManyRequests {
		t.Errorf("restarting a failed map past the limit: %d %s", a.status, a.raw)
	}
	if d := b.st.Doc(id); d.Status != jobs.Failed || len(b.q.Messages()) != 1 {
		t.Errorf("a refused restart changed the map: %+v, %d jobs", d, len(b.q.Messages()))
	}
}

// Above T2B_MAX_PENDING jobs in flight, a new query is answered 503 busy at once and publishes
// nothing; a job seen to finish, or old enough to be deemed lost, stops counting.
func TestPendingCap(t *testing.T) {
	b := newBackends(t, func(c *config.Config) { c.MaxPending = 2 })
	now := time.Unix(1e9, 0)
	b.s.now = func() time.Time { return now }
	for _, q := range []string{"faces", "memory"} {
		if a := b.get(t, "/api/v1/maps?q="+q); a.status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", q, a.status, a.raw)
		}
	}
	a := b.get(t, "/api/v1/maps?q=reading")
	if a.status != http.StatusServiceUnavailable || a.errorCode() != "busy" || a.header.Get("Retry-After") == "" {
		t.Fatalf("past the cap: %d %v %s", a.status, a.header, a.raw)
	}
	if len(b.q.Messages()) != 2 {
		t.Errorf("%d jobs published past the cap, want 2", len(b.q.Messages()))
	}
	// Cached and pending maps are still answered.
	if a := b.get(t, "/api/v1/maps?q=faces"); a.status != http.StatusAccepted {
		t.Errorf("a pending map past the cap: %d", a.status)
	}
	// Faces finishes and this instance sees it: room for one more.
	b.complete(t, b.id(t, "faces"))
	if a := b.get(t, "/api/v1/maps/"+b.id(t, "faces")); a.status != http.StatusOK {
		t.Fatalf("poll: %d", a.status)
	}
	if a := b.get(t, "/api/v1/maps?q=reading"); a.status != http.StatusAccepted {
		t.Errorf("after a job finished: %d %s", a.status, a.raw)
	}
	if a := b.get(t, "/api/v1/maps?q=language"); a.status != http.StatusServiceUnavailable {
		t.Errorf("full again: %d", a.status)
	}
	// Jobs whose end this instance never sees stop counting once stale.
	now = now.Add(b.s.staleAfter + time.Second)
	if n := b.s.pending.count(); n != 2 {
		t.Errorf("%d jobs counted, want 2", n)
	}
	if a := b.get(t, "/api/v1/maps?q=language"); a.status != http.StatusAccepted {
		t.Errorf("after the jobs went stale: %d %s", a.status, a.raw)
	}
}

// Warm-ups have a per-client limit of their own, besides the instance's one message a minute.
func TestWarmupLimitPerClient(t *testing.T) {
	b := newBackends(t, func(c *config.Config) { c.WarmupEvery, c.WarmupBurst, c.TrustedProxies = time.Hour, 2, 1 })
	for i := range 2 {
		if a := b.do(t, "203.0.113.7", "POST", "/api/v1/warm", ""); a.status != http.StatusAccepted {
			t.Fatalf("warm-up %d: %d %s", i, a.status, a.raw)
		}
	}
	if a := b.do(t, "203.0.113.7", "POST", "/api/v1/warm", ""); a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Errorf("a third warm-up: %d %v", a.status, a.header)
	}
	if a := b.do(t, "198.51.100.2", "POST", "/api/v1/warm", ""); a.status != http.StatusAccepted {
		t.Errorf("another client's warm-up: %d", a.status)
	}
	if n := len(b.q.Messages()); n != 1 {
		t.Errorf("%d warm-up messages, want the instance's one", n)
	}
}
