package queryapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// Request bodies are read strictly, and every refusal is a sentence in the documentation's
// terms: never a Go type, never the decoder's own wording alone.
func TestStrictJSONBodies(t *testing.T) {
	b := newBackends(t)
	invalidGET := b.get(t, "/api/v1/maps?q=fa%ffce")
	if invalidGET.status != 400 || invalidGET.errorCode() != "invalid_query" {
		t.Fatalf("GET with invalid UTF-8: %d %s", invalidGET.status, invalidGET.raw)
	}
	invalidMessage := invalidGET.body["error"].(map[string]any)["message"]
	testCases := []struct {
		name, body string
		status     int
		code       string
		// says is a part of the message
		says string
	}{
		{"trailing data", `{"query":"face"}xyz`, 400, "invalid_json", "more after its JSON object"},
		{"two objects", `{"query":"face"} {"query":"memory"}`, 400, "invalid_json", "exactly one object"},
		{"wait as a string", `{"query":"face","wait":"5"}`, 400, "invalid_wait", `"wait" must be a number of seconds, 0 to 10, not a string`},
		{"wait as true", `{"query":"face","wait":true}`, 400, "invalid_wait", "not true or false"},
		{"wait too large for a number", `{"query":"face","wait":1e400}`, 400, "invalid_wait", "1e400"},
		{"negative wait", `{"query":"face","wait":-1}`, 400, "invalid_wait", "0 to 10"},
		{"an array", `[{}]`, 400, "invalid_json", "is an array, not a JSON object"},
		{"a string", `"face"`, 400, "invalid_json", "is a string, not a JSON object"},
		{"null", `null`, 400, "invalid_json", "is null, not a JSON object"},
		{"empty", ``, 400, "invalid_json", "empty"},
		{"white space", " \n", 400, "invalid_json", "empty"},
		{"syntax error", `{"query": face}`, 400, "invalid_json", "not valid JSON (at byte"},
		{"cut short", `{"query": "face"`, 400, "invalid_json", "not valid JSON"},
		{"unknown field", `{"query":"face","q":"x"}`, 400, "invalid_json", `unknown field "q"; the fields are "query", "wait" and "model"`},
		{"long unknown field", `{"` + strings.Repeat("x", 300) + `":1}`, 400, "invalid_json", "unknown field"},
		{"duplicate field", `{"query":"face","query":"memory"}`, 400, "invalid_json", `"query" twice`},
		{"query as a number", `{"query":5}`, 400, "invalid_query", `"query" must be a string`},
		{"query as an object", `{"query":{"text":"face"}}`, 400, "invalid_query", "not an object"},
		{"null query", `{"query":null}`, 400, "missing_query", `"query"`},
		{"invalid UTF-8", "{\"query\":\"fa\xffce\"}", 400, "invalid_query", ""},
		{"invalid UTF-8 in a key", "{\"qu\xffery\":\"face\"}", 400, "invalid_query", ""},
		{"lone high surrogate", `{"query":"\ud800face"}`, 400, "invalid_query", ""},
		{"high surrogate at the end", `{"query":"face\uD800"}`, 400, "invalid_query", ""},
		{"lone low surrogate", `{"query":"\udc00 face"}`, 400, "invalid_query", ""},
		{"two high surrogates", `{"query":"\ud800\ud800 face"}`, 400, "invalid_query", ""},
		{"surrogate pair", `{"query":"\ud83e\udde0 face"}`, 202, "", ""},
		{"escaped backslash before u", `{"query":"\\ud800 face"}`, 202, "", ""},
		{"escapes", `{"query":"face\t\"x\"\/\u00e9","wait":0}`, 202, "", ""},
		{"white space around", " \n{\"query\": \"face\"}\n ", 202, "", ""},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			a := b.post(t, "/api/v1/maps", tc.body)
			if a.status != tc.status || a.errorCode() != tc.code {
				t.Fatalf("%d %s, want %d %s", a.status, a.raw, tc.status, tc.code)
			}
			if tc.code == "" {
				return
			}
			msg, _ := a.body["error"].(map[string]any)["message"].(string)
			if !strings.Contains(msg, tc.says) {
				t.Errorf("message %q does not say %q", msg, tc.says)
			}
			if tc.says == "" && msg != invalidMessage {
				t.Errorf("message %q, want the GET's %q", msg, invalidMessage)
			}
			for _, goish := range []string{"Go ", "struct", "float64", "*string", "json:", "RawMessage", "queryapi", "unmarshal"} {
				if strings.Contains(msg, goish) {
					t.Errorf("message %q shows Go's internals (%q)", msg, goish)
				}
			}
			if !strings.HasSuffix(msg, ".") || utf8.RuneCountInString(msg) > 300 {
				t.Errorf("message %q is not one short sentence", msg)
			}
		})
	}

	// The feedback form reads its body the same way.
	for body, code := range map[string]string{
		`{"map_id":"x","text":"hi"}tail`:         "invalid_json",
		`{"map_id":"x","text":"hi","rating":5}`:  "invalid_json",
		`{"map_id":1,"text":"hi"}`:               "invalid_feedback",
		"{\"map_id\":\"x\",\"text\":\"h\xffi\"}": "invalid_feedback",
		`{"map_id":"x","text":"\udfff"}`:         "invalid_feedback",
		`[{"map_id":"x","text":"hi"}]`:           "invalid_json",
	} {
		if a := b.post(t, "/api/v1/feedback", body); a.status != 400 || a.errorCode() != code {
			t.Errorf("feedback %q: %d %s, want 400 %s", body, a.status, a.raw, code)
		}
	}
}

func TestValidText(t *testing.T) {
	for raw, want := range map[string]bool{
		`"a"`: true, `"\u00e9"`: true, `"\ud83e\udde0"`: true, `"\\ud800"`: true, `"\\\ud800"`: false,
		`"\ud800"`: false, `"\udc00"`: false, `"\ud800\u0041"`: false, `"\ud800\\udc00"`: false,
		"\"\xff\"": false, `"\uDBFF\uDFFF"`: true, `["\ud800x"]`: false,
	} {
		if !json.Valid([]byte(raw)) {
			t.Fatalf("%s is not valid JSON", raw)
		}
		if got := validText([]byte(raw)); got != want {
			t.Errorf("validText(%s) = %v, want %v", raw, got, want)
		}
	}
}

// FuzzDecodeObject: whatever the body, decoding answers without panicking, refuses with one of
// the documented answers, and accepts only one valid JSON object of valid UTF-8 text whose members
// are the form's fields. Its seed corpus is in testdata/fuzz/FuzzDecodeObject.
func FuzzDecodeObject(f *testing.F) {
	for _, seed := range []string{`{"query":"face","wait":5}`, `{"query":"face"}x`, `[{}]`, `{"wait":"5"}`, `{"query":"\ud800"}`, ``, `null`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var query *string
		var wait *float64
		form := bodyForm{example: `{"query": "q"}`, textCode: "invalid_query", textMessage: "invalid text.",
			fields: []field{{"query", &query, "a string", "invalid_query"}, {"wait", &wait, "a number", "invalid_wait"}}}
		rerr := decodeObject([]byte(body), form)
		if rerr != nil {
			if rerr.status != http.StatusBadRequest || (rerr.code != "invalid_json" && rerr.code != "invalid_query" && rerr.code != "invalid_wait") ||
				!strings.HasSuffix(rerr.message, ".") {
				t.Errorf("%q: refused with %+v", body, rerr)
			}
			return
		}
		if !json.Valid([]byte(body)) || !utf8.ValidString(body) {
			t.Fatalf("%q accepted but not valid JSON text", body)
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &members); err != nil || members == nil {
			t.Fatalf("%q accepted but not an object: %v", body, err)
		}
		for name := range members {
			if name != "query" && name != "wait" {
				t.Errorf("%q accepted with the member %q", body, name)
			}
		}
		if query != nil && !utf8.ValidString(*query) || query != nil && strings.ContainsRune(*query, utf8.RuneError) && !strings.Contains(body, "\ufffd") && !strings.Contains(strings.ToLower(body), `\ufffd`) {
			t.Errorf("%q accepted as the query %q: a replacement character the client did not send", body, *query)
		}
	})
}
