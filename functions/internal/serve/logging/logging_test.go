package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestJSONIsCloudLogging(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, true)
	ctx := With(context.Background(), slog.String("id", "abc"))
	log.WarnContext(ctx, "publishing a job again", "attempt", 2)
	log.ErrorContext(context.Background(), "boom")
	log.Info("ready")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"severity": "WARNING", "message": "publishing a job again", "id": "abc", "attempt": 2.0} {
		if first[k] != want {
			t.Errorf("%s = %v, want %v (%s)", k, first[k], want, lines[0])
		}
	}
	if _, ok := first["level"]; ok {
		t.Errorf("level kept beside severity: %s", lines[0])
	}
	for i, want := range []string{`"severity":"ERROR"`, `"severity":"INFO"`} {
		if !strings.Contains(lines[i+1], want) {
			t.Errorf("line %d %s lacks %s", i+1, lines[i+1], want)
		}
	}
	if strings.Contains(lines[1], `"id"`) {
		t.Errorf("a context without attributes got some: %s", lines[1])
	}
}

func TestTextLocally(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, false).InfoContext(With(context.Background(), slog.String("id", "abc")), "job done")
	if got := buf.String(); !strings.Contains(got, "level=INFO") || !strings.Contains(got, `msg="job done"`) || !strings.Contains(got, "id=abc") {
		t.Errorf("text line %q", got)
	}
}

func TestTraceAttrs(t *testing.T) {
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	testCases := []struct {
		name    string
		headers map[string]string
		want    map[string]any
	}{
		{"traceparent", map[string]string{"traceparent": "00-" + trace + "-00f067aa0ba902b7-01"},
			map[string]any{TraceKey: "projects/p/traces/" + trace, SpanKey: "00f067aa0ba902b7", SampledKey: true}},
		{"cloud trace context", map[string]string{"X-Cloud-Trace-Context": strings.ToUpper(trace) + "/12345;o=1"},
			map[string]any{TraceKey: "projects/p/traces/" + trace, SpanKey: "0000000000003039", SampledKey: true}},
		{"traceparent with other flags", map[string]string{"traceparent": "00-" + trace + "-00f067aa0ba902b7-03"},
			map[string]any{TraceKey: "projects/p/traces/" + trace, SpanKey: "00f067aa0ba902b7", SampledKey: true}},
		{"cloud trace context without span", map[string]string{"X-Cloud-Trace-Context": trace},
			map[string]any{TraceKey: "projects/p/traces/" + trace, SampledKey: false}},
		{"traceparent wins", map[string]string{"traceparent": "00-" + trace + "-00f067aa0ba902b7-00", "X-Cloud-Trace-Context": strings.Repeat("1", 32)},
			map[string]any{TraceKey: "projects/p/traces/" + trace, SpanKey: "00f067aa0ba902b7", SampledKey: false}},
		{"malformed", map[string]string{"traceparent": "00-xyz-01", "X-Cloud-Trace-Context": "not a trace"}, nil},
		{"all-zero trace id", map[string]string{"traceparent": "00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01"}, nil},
		{"none", nil, nil},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			var got map[string]any
			for _, a := range TraceAttrs("p", h) {
				if got == nil {
					got = map[string]any{}
				}
				got[a.Key] = a.Value.Any()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
		})
	}
}

// A request's lines carry its trace.
func TestMiddleware(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, true)
	h := Middleware("p", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "answered")
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Cloud-Trace-Context", "4bf92f3577b34da6a3ce929d0e0e4736/1;o=1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !strings.Contains(buf.String(), `"logging.googleapis.com/trace":"projects/p/traces/4bf92f3577b34da6a3ce929d0e0e4736"`) {
		t.Errorf("line %s has no trace", buf.String())
	}
}
