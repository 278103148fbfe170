package queryapi

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/text2brain/text2brain/frontend"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
)

// newTimedServer is the validation server's handler with cfg's timeouts.
func newTimedHandler(t *testing.T, timeouts config.Timeouts) http.Handler {
	t.Helper()
	cfg := &config.Config{MaxWait: 10 * time.Second, BackendTimeout: time.Second, Rate: 1000, RateBurst: 1000,
		WarmEvery: time.Minute, Timeouts: timeouts}
	s, err := New(cfg, nil, nil, nil, testHeader(t), frontend.Site())
	if err != nil {
		t.Fatal(err)
	}
	return s.Handler()
}

// startServer serves h as the local stack's function process does: NewHTTPServer on a
// JSONErrors listener.
func startServer(t *testing.T, timeouts config.Timeouts, h http.Handler) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	srv := NewHTTPServer(timeouts, h)
	ts.Config = srv
	ts.Listener = JSONErrors(ts.Listener)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// rawAnswer sends raw bytes on a new connection and reads the one answer.
func rawAnswer(t *testing.T, addr, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Written on its own goroutine: the server may answer (and stop reading) before the end.
	go io.WriteString(c, request)
	// A bound for a broken test only: no test here depends on how long an answer takes.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no HTTP answer to %.60q: %v", request, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func errorCode(t *testing.T, resp *http.Response, body string) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%d answered as %q: %s", resp.StatusCode, ct, body)
	}
	var e struct {
		Error ErrorBody `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" || !strings.HasSuffix(e.Error.Message, ".") {
		t.Errorf("%d: not the API's error body: %s", resp.StatusCode, body)
	}
	return e.Error.Code
}

// What net/http answers itself, before any handler (431, the header timeout, a malformed
// request), is JSON on the servers this repository starts; so are the answers to paths that
// http.ServeMux would redirect.
func TestServerAnswersEveryErrorAsJSON(t *testing.T) {
	timeouts := config.Timeouts{ReadHeader: 200 * time.Millisecond, Read: 5 * time.Second, Write: 20 * time.Second, Idle: time.Minute}
	addr := startServer(t, timeouts, newTimedHandler(t, timeouts))
	huge := strings.Repeat("x", MaxHeaderBytes+8<<10)
	testCases := []struct {
		name, request string
		status        int
		code          string
	}{
		{"headers too large", "GET /api/v1/version HTTP/1.1\r\nHost: x\r\nX-Big: " + huge + "\r\n\r\n", 431, "headers_too_large"},
		{"URL too large", "GET /api/v1/maps?q=" + huge + " HTTP/1.1\r\nHost: x\r\n\r\n", 431, "headers_too_large"},
		// The headers stop halfway: the read-header timeout ends the wait.
		{"headers too slow", "GET /api/v1/version HTTP/1.1\r\nHost: x\r\nX-Slow: ", 408, "request_timeout"},
		{"request line too slow", "GET /api/v1/vers", 408, "request_timeout"},
		{"malformed request line", "NONSENSE\r\n\r\n", 400, "bad_request"},
		{"no Host", "GET /api/v1/version HTTP/1.1\r\n\r\n", 400, "bad_request"},
		{"unknown transfer encoding", "POST /api/v1/maps HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: zip\r\n\r\n", 501, "not_implemented"},
		{"dot dot under /api", "GET /api/v1/maps/../x HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"},
		{"dot dot out of /api", "GET /api/../healthz/ HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"},
		{"double slash", "GET /api/v1//version HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"},
		{"leading double slash", "GET //api/v1/version HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"},
		{"dot", "POST /api/./v1/maps HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 404, "not_found"},
		{"/api without slash", "GET /api HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"},
		{"asterisk", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawAnswer(t, addr, tc.request)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if code := errorCode(t, resp, body); code != tc.code {
				t.Errorf("code %q, want %q", code, tc.code)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != APIContentSecurityPolicy {
				t.Errorf("no security headers: %v", resp.Header)
			}
		})
	}

	// Ordinary answers pass through the listener untouched.
	resp, body := rawAnswer(t, addr, "GET /api/v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 || !strings.Contains(body, `"model_version"`) || resp.Header.Get("Date") == "" {
		t.Errorf("version: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	// A page path that is not clean is redirected, as a browser expects.
	resp, _ = rawAnswer(t, addr, "GET /x/../ HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/" {
		t.Errorf("page path with ..: %d %v", resp.StatusCode, resp.Header)
	}
}

// A body sent a byte at a time is cut off at the read timeout and answered 408, under a server
// with no timeouts of its own (the functions framework's, in Cloud Run): Handler sets the
// deadline on the request itself.
func TestSlowBodyIsCutOff(t *testing.T) {
	h := newTimedHandler(t, config.Timeouts{Read: 300 * time.Millisecond, Write: 20 * time.Second})
	ts := httptest.NewServer(h) // no server timeouts at all
	defer ts.Close()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The headers and the first bytes of a 100-byte body, then nothing more.
	if _, err := io.WriteString(c, "POST /api/v1/maps HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"query\": \"fa"); err != nil {
		t.Fatal(err)
	}
	// A bound for a broken test only.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || errorCode(t, resp, string(body)) != "request_timeout" {
		t.Errorf("stalled body: %d %s", resp.StatusCode, body)
	}

	// A request without a body may wait: no read deadline ends it (the long poll's case), and a
	// body read in full lifts the deadline.
	resp, err = http.Post(ts.URL+"/api/v1/maps", "application/json", strings.NewReader(`{"query": "oh i believe in yesterday"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a whole body: %d", resp.StatusCode)
	}
}

// Every answer has the security headers; API answers may not be framed and load nothing; the
// page keeps its own policy, and gets no CORS header (it is for its own origin).
func TestSecurityHeadersAndCORSScope(t *testing.T) {
	h := newTimedHandler(t, config.Timeouts{})
	for _, tc := range []struct {
		target, csp string
		cors        bool
	}{
		{"/api/v1/version", APIContentSecurityPolicy, true},
		{"/api/v1/maps", APIContentSecurityPolicy, true}, // 400
		{"/api/nope", APIContentSecurityPolicy, true},    // 404
		{"/healthz", APIContentSecurityPolicy, true},
		{"/openapi.yaml", APIContentSecurityPolicy, true},
		{"/", ContentSecurityPolicy, false},
		{"/nope", ContentSecurityPolicy, false},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", tc.target, nil)
		req.Header.Set("Origin", "https://elsewhere.example.org")
		h.ServeHTTP(rec, req)
		hd := rec.Header()
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") == "" || hd.Get("X-Frame-Options") != "DENY" ||
			hd.Get("Content-Security-Policy") != tc.csp || !strings.Contains(tc.csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s (%d): headers %v", tc.target, rec.Code, hd)
		}
		if got := hd.Get("Access-Control-Allow-Origin") != ""; got != tc.cors {
			t.Errorf("GET %s: CORS header %q, want one: %v", tc.target, hd.Get("Access-Control-Allow-Origin"), tc.cors)
		}
	}
}
