package queryapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/time/rate"

	"github.com/text2brain/text2brain/frontend"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
)

// newValidationServer is a server without backends: enough for every answer that is decided
// before Firestore or Pub/Sub is called. The answers that need them are tested on in-memory
// backends in maps_test.go, and against the real emulators in functions/internal/dev/e2e.
func newValidationServer(t *testing.T) http.Handler {
	t.Helper()
	b, err := bundle.Load(testenv.BundleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{MaxWait: 10 * time.Second, BackendTimeout: time.Second, Rate: 1000, RateBurst: 1000, WarmEvery: time.Minute}
	s, err := New(cfg, nil, nil, nil, &bundle.Header{Manifest: b.Manifest, Vocabulary: b.Vocabulary}, frontend.Site())
	if err != nil {
		t.Fatal(err)
	}
	return s.Handler()
}

func TestValidation(t *testing.T) {
	h := newValidationServer(t)
	testCases := []struct {
		name, method, target, body string
		status                     int
		code                       string
	}{
		{"no q", "GET", "/api/v1/maps", "", 400, "missing_query"},
		{"empty q", "GET", "/api/v1/maps?q=", "", 400, "invalid_query"},
		{"blank q", "GET", "/api/v1/maps?q=%20%09", "", 400, "invalid_query"},
		{"invalid UTF-8", "GET", "/api/v1/maps?q=%ff", "", 400, "invalid_query"},
		{"bad escape", "GET", "/api/v1/maps?q=50%+faces", "", 400, "invalid_query"},
		{"semicolon", "GET", "/api/v1/maps?q=faces;wait=5", "", 400, "invalid_query"},
		{"bad escape in terms", "GET", "/api/v1/terms?q=%zz", "", 400, "invalid_query"},
		{"bad escape in a poll", "GET", "/api/v1/maps/0123456789abcdef0123456789abcdef?wait=%", "", 400, "invalid_query"},
		{"too long", "GET", "/api/v1/maps?q=" + strings.Repeat("a", 2001), "", 413, "too_long"},
		{"bad wait", "GET", "/api/v1/maps?q=faces&wait=soon", "", 400, "invalid_wait"},
		{"negative wait", "GET", "/api/v1/maps?q=faces&wait=-1", "", 400, "invalid_wait"},
		{"no known terms", "GET", "/api/v1/maps?q=oh+i+believe+in+yesterday", "", 422, "no_known_terms"},
		{"no mapped terms", "GET", "/api/v1/maps?q=abscess", "", 422, "no_mapped_terms"},
		{"no mapped terms, POST", "POST", "/api/v1/maps", `{"query": "Abuse alcohol!"}`, 422, "no_mapped_terms"},
		{"POST not JSON", "POST", "/api/v1/maps", "query=faces", 400, "invalid_json"},
		{"POST without query", "POST", "/api/v1/maps", `{}`, 400, "missing_query"},
		{"POST unknown field", "POST", "/api/v1/maps", `{"text": "faces"}`, 400, "invalid_json"},
		{"POST empty query", "POST", "/api/v1/maps", `{"query": ""}`, 400, "invalid_query"},
		{"POST too large", "POST", "/api/v1/maps", `{"query": "` + strings.Repeat("a", 70000) + `"}`, 413, "too_large"},
		{"POST bad wait", "POST", "/api/v1/maps", `{"query": "faces", "wait": "x"}`, 400, "invalid_wait"},
		{"bad id", "GET", "/api/v1/maps/not-an-id", "", 404, "not_found"},
		{"short id", "GET", "/api/v1/maps/abc", "", 404, "not_found"},
		{"bad id map", "GET", "/api/v1/maps/ABC/map.nii.gz", "", 404, "not_found"},
		{"unknown path", "GET", "/api/v2/maps", "", 404, "not_found"},
		{"DELETE maps", "DELETE", "/api/v1/maps", "", 405, "method_not_allowed"},
		{"GET warm", "GET", "/api/v1/warm", "", 405, "method_not_allowed"},
		{"PUT map", "PUT", "/api/v1/maps/0123456789abcdef0123456789abcdef", "", 405, "method_not_allowed"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			var body struct {
				Error ErrorBody `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("not JSON: %s", rec.Body)
			}
			if body.Error.Code != tc.code || len(body.Error.Message) < 20 {
				t.Errorf("error %+v, want code %q and a sentence", body.Error, tc.code)
			}
			if tc.status == 405 && rec.Header().Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

func TestServesThePage(t *testing.T) {
	h := newValidationServer(t)
	for target, want := range map[string]string{"/": "<html", "/?q=faces": "<html"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d, body lacks %q", target, rec.Code, want)
		}
		if rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", target)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("HEAD", "/api/v1/maps?q=faces", nil))
	if rec.Code != 405 {
		t.Errorf("HEAD on the maps query: %d, want 405 (it must not create a job)", rec.Code)
	}
}

func TestHugeWaitIsCapped(t *testing.T) {
	s := &Server{cfg: &config.Config{MaxWait: 10 * time.Second}}
	for _, raw := range []string{"1e10", "1e300", "Inf", "11"} {
		if d, err := s.parseWait(raw); err != nil || d != 10*time.Second {
			t.Errorf("wait=%s → %v, %v; want the 10 s cap", raw, d, err)
		}
	}
}

func TestVersionHealthAndCORS(t *testing.T) {
	h := newValidationServer(t)
	for _, target := range []string{"/healthz", "/api/v1/version"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"model_version":"nq-`) {
			t.Errorf("%s: %d %s", target, rec.Code, rec.Body)
		}
		if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no CORS header", target)
		}
	}
	req := httptest.NewRequest("OPTIONS", "/api/v1/maps", nil)
	req.Header.Set("Origin", "https://example.org")
	req.Header.Set("Access-Control-Request-Method", "POST")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 204 || !strings.Contains(rec.Header().Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %d %v", rec.Code, rec.Header())
	}
}

// With T2B_CORS_ORIGINS, only the listed pages may read answers in a browser, and caches are told
// that the answer depends on the Origin.
func TestCORSOrigins(t *testing.T) {
	b, err := bundle.Load(testenv.BundleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{MaxWait: time.Second, BackendTimeout: time.Second, Rate: 1000, RateBurst: 1000, WarmEvery: time.Minute,
		CORSOrigins: []string{"https://a.example.org", "https://b.example.org"}}
	s, err := New(cfg, nil, nil, nil, &bundle.Header{Manifest: b.Manifest, Vocabulary: b.Vocabulary}, frontend.Site())
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for origin, want := range map[string]string{"https://b.example.org": "https://b.example.org", "https://evil.example.org": "", "": ""} {
		for _, method := range []string{"GET", "OPTIONS"} {
			req := httptest.NewRequest(method, "/api/v1/version", nil)
			if origin != "" {
				req.Header.Set("Origin", origin)
			}
			req.Header.Set("Access-Control-Request-Method", "GET")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != want {
				t.Errorf("%s from %q: Access-Control-Allow-Origin %q, want %q", method, origin, got, want)
			}
			if !strings.Contains(rec.Header().Get("Vary"), "Origin") {
				t.Errorf("%s from %q: no Vary: Origin", method, origin)
			}
		}
	}
}

func TestRateLimit(t *testing.T) {
	b, err := bundle.Load(testenv.BundleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{MaxWait: time.Second, BackendTimeout: time.Second, Rate: 1, RateBurst: 3, WarmEvery: time.Minute, TrustedProxies: 1}
	s, err := New(cfg, nil, nil, nil, &bundle.Header{Manifest: b.Manifest, Vocabulary: b.Vocabulary}, frontend.Site())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1e9, 0)
	s.now = func() time.Time { return now }
	h := s.Handler()
	get := func(addr string) int {
		req := httptest.NewRequest("GET", "/api/v1/version", nil)
		req.Header.Set("X-Forwarded-For", "10.0.0.1, "+addr)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == 429 && rec.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		return rec.Code
	}
	for i := 0; i < 3; i++ {
		if c := get("203.0.113.7"); c != 200 {
			t.Fatalf("request %d within the burst: %d", i, c)
		}
	}
	if c := get("203.0.113.7"); c != 429 {
		t.Errorf("request past the burst: %d, want 429", c)
	}
	if c := get("198.51.100.2"); c != 200 {
		t.Errorf("another client: %d, want 200", c)
	}
	now = now.Add(2 * time.Second)
	if c := get("203.0.113.7"); c != 200 {
		t.Errorf("after refill: %d, want 200", c)
	}
}

func TestClientKey(t *testing.T) {
	testCases := []struct {
		name, remote string
		fwd          []string
		trusted      int
		want         string
	}{
		{"no proxy", "198.51.100.7:5555", nil, 0, "198.51.100.7"},
		{"spoofed entries before the proxy's", "10.0.0.1:1", []string{"1.2.3.4, 203.0.113.9"}, 1, "203.0.113.9"},
		{"two trusted proxies", "10.0.0.1:1", []string{"1.2.3.4, 203.0.113.9, 10.1.1.1"}, 2, "203.0.113.9"},
		{"several headers", "10.0.0.1:1", []string{"1.2.3.4", "203.0.113.9"}, 1, "203.0.113.9"},
		{"fewer hops than proxies", "198.51.100.7:1", []string{"203.0.113.9"}, 2, "198.51.100.7"},
		{"IPv6 by /64", "[::1]:1", []string{"2001:db8:1:2:aaaa::1"}, 1, "2001:db8:1:2::/64"},
		{"IPv4-mapped IPv6", "[::ffff:198.51.100.7]:1", nil, 1, "198.51.100.7"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.fwd {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientKey(r, tc.trusted); got != tc.want {
				t.Errorf("clientKey = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLimiterEvictsOnlyIdleClients(t *testing.T) {
	c := newClientLimiter(1, 2)
	now := time.Unix(1e9, 0)
	c.allow("busy", now)
	c.allow("busy", now)
	for i := 0; len(c.buckets) < maxClients; i++ {
		c.buckets[fmt.Sprint("idle", i)] = rate.NewLimiter(1, 2)
	}
	if c.allow("new", now) != true {
		t.Fatal("a new client was limited")
	}
	if c.allow("busy", now) {
		t.Error("a flood of new clients reset a busy client's limit")
	}
	if len(c.buckets) > 3 {
		t.Errorf("%d buckets after eviction, want the busy and new clients only", len(c.buckets))
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{"working memory": "working-memory", "über alles!": "ber-alles", "": "map", "--": "map"} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every path and method of openapi.yaml is routed: none falls through to the catch-all 404 or to
// a 405, so the document and the handlers cannot drift apart silently.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Load(testenv.BundleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{MaxWait: time.Second, BackendTimeout: time.Second, Rate: 1000, RateBurst: 1000, WarmEvery: time.Hour}
	s, err := New(cfg, nil, nil, nil, &bundle.Header{Manifest: b.Manifest, Vocabulary: b.Vocabulary}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.warm.Allow() // so that the warm-up route answers without a queue
	h := s.Handler()
	if len(doc.Paths) < 6 {
		t.Fatalf("openapi.yaml has %d paths", len(doc.Paths))
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			target := strings.ReplaceAll(path, "{id}", "not-an-id")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(strings.ToUpper(method), target, strings.NewReader("{}")))
			if rec.Code == 405 || strings.Contains(rec.Body.String(), "There is nothing at") {
				t.Errorf("%s %s from openapi.yaml is not routed: %d %s", strings.ToUpper(method), path, rec.Code, rec.Body)
			}
		}
	}
}
