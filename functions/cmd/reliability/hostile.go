package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// attempt is one hostile request and the answer it must get.
type attempt struct {
	name, method, target, body string
	header                     http.Header
	status                     int
	// codes are the acceptable error codes ("" for a non-JSON answer such as the page's 404).
	codes []string
	// check looks further at the answer; "" when it is right.
	check func(body []byte) string
}

func (r *run) hostile(ctx context.Context) {
	long := strings.Repeat("a", querytext.MaxChars+1)
	bigHeader := http.Header{"X-Junk": {strings.Repeat("x", 2<<20)}}
	noGoTypes := func(body []byte) string {
		if bytes.Contains(body, []byte("struct")) || bytes.Contains(body, []byte("Go value")) {
			return "the message shows a Go type"
		}
		return ""
	}
	attempts := []attempt{
		{name: "invalid UTF-8 in ?q=", method: "GET", target: "/api/v1/maps?q=%ff", status: 400, codes: []string{"invalid_query"}},
		{name: "invalid UTF-8 in a JSON body", method: "POST", target: "/api/v1/maps", body: "{\"query\":\"fa\xffce\"}", status: 400, codes: []string{"invalid_query", "invalid_json"}},
		{name: "a lone surrogate in JSON", method: "POST", target: "/api/v1/maps", body: `{"query":"face\ud800"}`, status: 400, codes: []string{"invalid_query", "invalid_json"}},
		{name: "trailing data after the JSON", method: "POST", target: "/api/v1/maps", body: `{"query":"face"}xyz`, status: 400, codes: []string{"invalid_json"}},
		{name: "wait as a string", method: "POST", target: "/api/v1/maps", body: `{"query":"face","wait":"5"}`, status: 400, codes: []string{"invalid_json", "invalid_wait"}},
		{name: "an array for an object", method: "POST", target: "/api/v1/maps", body: `[{}]`, status: 400, codes: []string{"invalid_json"}, check: noGoTypes},
		{name: "an unknown field", method: "POST", target: "/api/v1/maps", body: `{"query":"face","qeury":"x"}`, status: 400, codes: []string{"invalid_json"},
			check: func(b []byte) string {
				if !bytes.Contains(b, []byte("qeury")) {
					return "the message does not name the field"
				}
				return ""
			}},
		{name: "a 100 kB body", method: "POST", target: "/api/v1/maps", body: `{"query":"` + strings.Repeat("a", 100<<10) + `"}`, status: 413, codes: []string{"too_large"}},
		{name: "2,001 characters", method: "GET", target: "/api/v1/maps?q=" + long, status: 413, codes: []string{"too_long"}},
		{name: "no term the model knows", method: "GET", target: "/api/v1/maps?q=zzqx", status: 422, codes: []string{"no_known_terms"}},
		{name: "only terms without a map", method: "GET", target: "/api/v1/maps?q=abscess", status: 422, codes: []string{"no_mapped_terms"}},
		{name: "an id that is no id", method: "GET", target: "/api/v1/maps/..%2f..%2fetc", status: 404, codes: []string{"not_found"}},
		{name: "a dot-dot path under /api", method: "GET", target: "/api/v1/maps/../x", status: 404, codes: []string{"not_found"}},
		{name: "an unknown API path", method: "GET", target: "/api/v1/nope", status: 404, codes: []string{"not_found"}},
		{name: "DELETE on the maps", method: "DELETE", target: "/api/v1/maps?q=face", status: 405, codes: []string{"method_not_allowed"}},
		{name: "a page that does not exist", method: "GET", target: "/nope", status: 404, codes: []string{""}},
		{name: "2 MB of headers", method: "GET", target: "/api/v1/version", header: bigHeader, status: 431, codes: []string{"headers_too_large"}},
		{name: "feedback on no map", method: "POST", target: "/api/v1/feedback", body: `{"map_id":"` + strings.Repeat("0", 32) + `","text":"hi"}`, status: 404, codes: []string{"not_found"}},
		{name: "feedback too long", method: "POST", target: "/api/v1/feedback", body: `{"map_id":"` + strings.Repeat("0", 32) + `","text":"` + strings.Repeat("é", 1001) + `"}`, status: 413, codes: []string{"too_long"}},
	}
	var wrong []string
	for _, a := range attempts {
		msg := r.try(ctx, r.base, a)
		if msg != "" {
			wrong = append(wrong, a.name+": "+msg)
		}
		r.hostileRow(a.name, expected(a), msg)
	}
	// The one normalisation: invisible characters do not make another map.
	msg := ""
	if a, b := r.idOf(ctx, "face"), r.idOf(ctx, "fa\u00adce\u200b"); a == "" || a != b {
		msg = fmt.Sprintf("face and fa(soft hyphen)ce(zero-width space) have ids %q and %q", a, b)
		wrong = append(wrong, msg)
	}
	r.hostileRow("`fa\\u00adce\\u200b` (a soft hyphen and a zero-width space)", "the same map id as `face`", msg)
	// Predict, reached directly (in the cloud only the push subscription can): a 50 MB body gets
	// a short error, not an echo.
	if msg := r.try(ctx, r.st.PredictURL, attempt{name: "50 MB to Predict", method: "POST", target: "/",
		body: `{"message":{"data":"` + strings.Repeat("A", 50<<20) + `"}}`, status: 413, codes: []string{"too_large"},
		check: func(b []byte) string {
			if len(b) > 500 {
				return fmt.Sprintf("a %d-byte answer", len(b))
			}
			return ""
		}}); msg != "" {
		wrong = append(wrong, "50 MB to Predict: "+msg)
		r.hostileRow("50 MB posted to Predict", "413 `too_large`, an answer under 500 bytes", msg)
	} else {
		r.hostileRow("50 MB posted to Predict", "413 `too_large`, an answer under 500 bytes", "")
	}
	forged := r.forgedJob(ctx)
	if forged != "" {
		wrong = append(wrong, "a forged job: "+forged)
	}
	r.hostileRow("a forged job posted to Predict (an id of a real map, a text that does not hash to it)", "204 (acked, so never redelivered), the map's document unchanged", forged)
	slow := r.slowBody(ctx)
	if slow != "" {
		wrong = append(wrong, "a body sent a byte a second: "+slow)
	}
	r.hostileRow("a POST body sent a byte a second", "the connection ended within T2B_READ_TIMEOUT (15 s), not read for ever", slow)
	seen := fmt.Sprintf("%d of %d answered as expected", len(attempts)+4-len(wrong), len(attempts)+4)
	if len(wrong) > 0 {
		seen += "; wrong: " + strings.Join(wrong, "; ")
		r.failed = true
	}
	r.row("hostile inputs (invalid UTF-8, lenient JSON, oversize, unknown paths, invisible characters, unmapped terms, a slow body, 50 MB to Predict)",
		fmt.Sprintf("%d requests", len(attempts)+4), seen, "0", "0")
}

// expected describes the answer an attempt must get.
func expected(a attempt) string {
	var codes []string
	for _, c := range a.codes {
		if c == "" {
			codes = append(codes, "a page")
		} else {
			codes = append(codes, "`"+c+"`")
		}
	}
	return fmt.Sprintf("%d %s", a.status, strings.Join(codes, " or "))
}

func (r *run) hostileRow(name, want, wrong string) {
	got := "as expected"
	if wrong != "" {
		got = "WRONG: " + wrong
	}
	r.hostileRows = append(r.hostileRows, []string{name, want, got})
}

// try sends an attempt and says what is wrong with its answer ("" when nothing).
func (r *run) try(ctx context.Context, base string, a attempt) string {
	req, err := http.NewRequestWithContext(ctx, a.method, base+a.target, strings.NewReader(a.body))
	if err != nil {
		return "could not be sent: " + err.Error()
	}
	for k, v := range a.header {
		req.Header[k] = v
	}
	if a.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.Contains(a.target, "/../") {
		req.URL.Opaque = a.target // keep the dot-dot: the client would clean it
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return "no answer: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return judge(a, resp.StatusCode, resp.Header.Get("Content-Type"), body)
}

func judge(a attempt, status int, ctype string, body []byte) string {
	if status != a.status {
		return fmt.Sprintf("status %d, want %d (%.120s)", status, a.status, body)
	}
	code := ""
	if strings.HasPrefix(ctype, "application/json") {
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
			return fmt.Sprintf("a JSON answer that is not an error body: %.120s", body)
		}
		code = e.Error.Code
	}
	okCode := false
	for _, c := range a.codes {
		okCode = okCode || c == code
	}
	if !okCode {
		return fmt.Sprintf("code %q (%s), want one of %q", code, ctype, a.codes)
	}
	if a.check != nil {
		return a.check(body)
	}
	return ""
}

func (r *run) idOf(ctx context.Context, q string) string {
	resp, err := r.client.Get(r.base + "/api/v1/maps?wait=10&q=" + url.QueryEscape(q))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&v)
	return v.ID
}

// forgedJob posts Predict a push envelope whose job names a finished map's id with another text:
// it must be acked and change nothing.
func (r *run) forgedJob(ctx context.Context) string {
	id := querytext.Key(r.version, r.cachedQ)
	before, err := r.store.Get(ctx, id)
	if err != nil {
		return err.Error()
	}
	job, _ := json.Marshal(map[string]string{"id": id, "text": "something else", "model_version": r.version})
	env, _ := json.Marshal(map[string]any{"message": map[string]any{"data": job, "messageId": "forged"}, "subscription": r.st.SubscriptionName})
	resp, err := r.client.Post(r.st.PushEndpoint, "application/json", bytes.NewReader(env))
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	after, err := r.store.Get(ctx, id)
	switch {
	case err != nil:
		return err.Error()
	case resp.StatusCode != http.StatusNoContent:
		return fmt.Sprintf("status %d, want 204", resp.StatusCode)
	case after.Status != before.Status || after.Deliveries != before.Deliveries || after.Predictions != before.Predictions || !after.CompletedAt.Equal(before.CompletedAt):
		return fmt.Sprintf("the document changed: %+v → %+v", before, after)
	}
	return ""
}

// slowBody sends a POST body a byte a second: the server must give up on it within its read
// timeout (here: within 90 s), not read it for ever.
func (r *run) slowBody(ctx context.Context) string {
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	body := `{"query":"working memory"}` + strings.Repeat(" ", 200)
	fmt.Fprintf(conn, "POST /api/v1/maps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, conn)
		close(closed)
	}()
	for i := 0; i < len(body); i++ {
		select {
		case <-closed:
			return ""
		case <-time.After(time.Second):
		}
		if time.Since(start) > 90*time.Second {
			return "still reading after 90 s"
		}
		if _, err := conn.Write([]byte{body[i]}); err != nil {
			return "" // the server closed it
		}
	}
	return "the whole body was read, a byte a second"
}
