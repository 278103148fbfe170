package queryapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxBodyBytes bounds a JSON request body.
const maxBodyBytes = 64 << 10

// field is a member of a JSON request body: its name, the pointer its value is decoded into (a
// null leaves it as it is), what it must be in words for a person, and the error code of a value
// of another type.
type field struct {
	name string
	into any
	want string
	code string
}

// bodyForm is what a JSON request body must look like.
type bodyForm struct {
	// example shows the expected form in messages.
	example string
	fields  []field
	// textCode and textMessage answer a body whose text is not valid UTF-8, as the same text in a
	// query string is answered.
	textCode, textMessage string
}

// requestError is a refused request, as the API answers it.
type requestError struct {
	status        int
	code, message string
}

func (e *requestError) write(w http.ResponseWriter) { WriteError(w, e.status, e.code, e.message) }

// queryValues parses the query string, answering 400 itself for a malformed one: url.Query
// would drop the malformed pair silently, and a text cut at a stray % or ; would be mapped as
// another query, or be missing.
func queryValues(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid_query",
			"The query string is malformed: encode the text, writing % as %25, ; as %3B and & as %26.")
		return nil, false
	}
	return q, true
}

// decodeBody reads a JSON request body into form's fields, answering 400, 408 or 413 itself.
func decodeBody(w http.ResponseWriter, r *http.Request, form bodyForm) bool {
	raw, rerr := readBody(w, r)
	if rerr == nil {
		rerr = decodeObject(raw, form)
	}
	if rerr != nil {
		rerr.write(w)
		return false
	}
	return true
}

// readBody reads a whole request body of at most maxBodyBytes. The read ends at the read deadline
// that Handler sets on a request with a body, so a body sent a byte at a time is answered 408.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *requestError) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooBig *http.MaxBytesError
	var netErr net.Error
	switch {
	case err == nil:
		return raw, nil
	case errors.As(err, &tooBig):
		return nil, &requestError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("The request body is larger than %d kB.", maxBodyBytes>>10)}
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return nil, &requestError{http.StatusRequestTimeout, "request_timeout", "The request body arrived too slowly; send it at once and try again."}
	default:
		return nil, &requestError{http.StatusBadRequest, "invalid_json", "The request body could not be read; send it again."}
	}
}

// decodeObject decodes raw strictly: exactly one JSON object and nothing after it, only the form's
// fields, each at most once and of its documented type, and text that is valid UTF-8. (Go's
// decoder alone would take trailing data, unknown fields and a string for a number, and would
// replace invalid UTF-8 and lone surrogate escapes with U+FFFD: a different text, so a different
// cache key, than the one sent.) Messages name the problem in the terms of the documentation,
// never Go's types.
func decodeObject(raw []byte, form bodyForm) *requestError {
	invalid := func(format string, args ...any) *requestError {
		return &requestError{http.StatusBadRequest, "invalid_json", fmt.Sprintf(format, args...) + " Send a JSON object such as " + form.example + "."}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	switch {
	case errors.Is(err, io.EOF):
		return invalid("The request body is empty.")
	case err != nil:
		return invalid("The request body is not valid JSON (%s).", syntaxProblem(err))
	case tok != json.Delim('{'):
		return invalid("The request body is %s, not a JSON object.", tokenKind(tok))
	}
	type member struct {
		name  string
		value json.RawMessage
	}
	var members []member
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return invalid("The request body is not valid JSON (%s).", syntaxProblem(err))
		}
		m := member{name: key.(string)}
		if err := dec.Decode(&m.value); err != nil {
			return invalid("The request body is not valid JSON (%s).", syntaxProblem(err))
		}
		members = append(members, m)
	}
	if _, err := dec.Token(); err != nil {
		return invalid("The request body is not valid JSON (%s).", syntaxProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("The request body has more after its JSON object; send exactly one object.")
	}
	// The syntax is valid, so every backslash left is an escape inside a string.
	if !validText(raw) {
		return &requestError{http.StatusBadRequest, form.textCode, form.textMessage}
	}
	seen := map[string]bool{}
	for _, m := range members {
		f := form.field(m.name)
		switch {
		case f == nil:
			return invalid("The request body has an unknown field %s; the fields are %s.", quoteName(m.name), form.names())
		case seen[m.name]:
			return invalid("The request body has the field %q twice.", m.name)
		}
		seen[m.name] = true
		if err := json.Unmarshal(m.value, f.into); err != nil {
			return &requestError{http.StatusBadRequest, f.code, fmt.Sprintf("%q must be %s, not %s.", f.name, f.want, valueKind(m.value))}
		}
	}
	return nil
}

func (form bodyForm) field(name string) *field {
	for i := range form.fields {
		if form.fields[i].name == name {
			return &form.fields[i]
		}
	}
	return nil
}

// names lists the fields for a message: "query" and "wait".
func (form bodyForm) names() string {
	var q []string
	for _, f := range form.fields {
		q = append(q, fmt.Sprintf("%q", f.name))
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// quoteName quotes a field name a client sent, shortened: the message must stay a sentence.
func quoteName(name string) string {
	if r := []rune(name); len(r) > 40 {
		name = string(r[:39]) + "…"
	}
	return fmt.Sprintf("%q", name)
}

// syntaxProblem says where a JSON syntax error is, in words.
func syntaxProblem(err error) string {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "it ends too early"
	default:
		return "it cannot be read"
	}
}

// tokenKind names the kind of JSON value a first token starts.
func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "true or false"
	case nil:
		return "null"
	}
	return "not an object"
}

// valueKind names the kind of a raw JSON value.
func valueKind(v json.RawMessage) string {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	}
	// A number too large for a float64 is the only number that fails to decode.
	return "the number " + string(v)
}

// validText reports whether the text of a syntactically valid JSON document is valid UTF-8 with
// no lone surrogate escape (\ud800 alone, or \udc00 first): what a query string must be too.
func validText(raw []byte) bool {
	if !utf8.Valid(raw) {
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // a one-character escape such as \\ or \"
			continue
		}
		r := hex4(raw[i+2 : i+6])
		switch {
		case !utf16.IsSurrogate(r):
			i += 5
		case r >= 0xdc00:
			return false // a low surrogate with no high one before it
		case i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' && hex4(raw[i+8:i+12]) >= 0xdc00 && hex4(raw[i+8:i+12]) <= 0xdfff:
			i += 11 // a pair
		default:
			return false // a high surrogate with no low one after it
		}
	}
	return true
}

// hex4 is the value of four hexadecimal digits (valid JSON guarantees them after \u).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
