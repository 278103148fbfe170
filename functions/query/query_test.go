package query

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// A deployment without its configuration answers 500 "misconfigured" (retrying will not help),
// with the API's JSON error body, not a crash and not a 503 that invites retries.
func TestMisconfiguredAnswers500(t *testing.T) {
	for _, k := range []string{"GOOGLE_CLOUD_PROJECT", "T2B_MODEL_URI", "T2B_RESULTS_BUCKET"} {
		t.Setenv(k, "")
	}
	rec := httptest.NewRecorder()
	handle(rec, httptest.NewRequest("GET", "/api/v1/maps?q=faces", nil))
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("not JSON: %s", rec.Body)
	}
	if rec.Code != 500 || body.Error.Code != "misconfigured" || rec.Header().Get("Retry-After") != "" {
		t.Errorf("%d %+v, Retry-After %q; want 500 misconfigured without Retry-After", rec.Code, body.Error, rec.Header().Get("Retry-After"))
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("no security headers: %v", rec.Header())
	}
}
