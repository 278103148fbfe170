package queryapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// Span is where a recognised phrase is in the query as sent: code points [Start, End), the
// indices of Python's str and of JavaScript's Array.from(text).
type Span struct {
	Start int    `json:"start"`
	End   int    `json:"end"`
	Term  string `json:"term"`
}

// spans finds the recognised phrases in text as the client sent it. The phrases are those of the
// normalised text (the words are folded as Normalize folds them), and their terms are the model's
// features (synonyms folded), as in recognized_terms. The characters Normalize drops (a soft
// hyphen, a zero-width space) are skipped as it skips them, so "fa\u00adce" is one word whose
// span covers the soft hyphen.
func (s *Server) spans(text string) []Span {
	out := []Span{}
	if !utf8.ValidString(text) {
		return out
	}
	// clean is text without the ignored characters; at[b] is the code point of text where the rune
	// at byte b of clean is, and after[b] one past the code point of the rune that ends at byte b.
	var clean strings.Builder
	at := make([]int, 0, len(text)+1)
	after := make([]int, 1, len(text)+1)
	n := 0
	for _, r := range text {
		if !querytext.Ignored(r) {
			clean.WriteRune(r)
			for i := utf8.RuneLen(r); i > 0; i-- {
				at = append(at, n)
				after = append(after, n+1)
			}
		}
		n++
	}
	at = append(at, n)
	for _, f := range s.feat.Spans(clean.String(), querytext.Fold) {
		out = append(out, Span{Start: at[f.Start], End: after[f.End], Term: s.feat.Canonical(f.Phrase)})
	}
	return out
}

// Terms is the answer of /api/v1/terms: what the model recognises in a text, and where.
type Terms struct {
	Query           string   `json:"query"`
	NormalizedQuery string   `json:"normalized_query"`
	RecognizedTerms []string `json:"recognized_terms"`
	// UnmappedTerms are the recognised terms that have no brain map: a text of only these gets
	// 422 no_mapped_terms from /api/v1/maps.
	UnmappedTerms []string `json:"unmapped_terms"`
	Spans         []Span   `json:"spans"`
}

// terms answers which terms of a text the model knows, without computing a map: the page asks it
// as the visitor types. Unknown words are not an error here (the answer is empty lists).
func (s *Server) terms(w http.ResponseWriter, r *http.Request) {
	q, ok := queryValues(w, r)
	if !ok {
		return
	}
	if !q.Has("q") {
		WriteError(w, http.StatusBadRequest, "missing_query", "Add the text as ?q=…, for example /api/v1/terms?q=working+memory.")
		return
	}
	m, ok := s.modelNamed(w, q.Get("model"))
	if !ok {
		return
	}
	text := q.Get("q")
	normalized, err := querytext.Normalize(text)
	switch {
	case errors.Is(err, querytext.ErrEmpty):
		normalized = ""
	case errors.Is(err, querytext.ErrTooLong):
		WriteError(w, http.StatusRequestEntityTooLarge, "too_long", querytext.Message(err))
		return
	case err != nil:
		WriteError(w, http.StatusBadRequest, "invalid_query", querytext.Message(err))
		return
	}
	t := Terms{Query: text, NormalizedQuery: normalized, RecognizedTerms: []string{}, UnmappedTerms: []string{}, Spans: s.spans(text)}
	for _, term := range s.feat.Terms(normalized) {
		t.RecognizedTerms = append(t.RecognizedTerms, term)
		if m.unmapped[term] {
			t.UnmappedTerms = append(t.UnmappedTerms, term)
		}
	}
	// The answer depends on the text and the model version only.
	w.Header().Set("Cache-Control", cacheByQuery)
	writeJSON(w, http.StatusOK, t)
}

// MaxFeedbackChars bounds a feedback text (and T2B_FEEDBACK_EVERY and _BURST how many a client
// may send).
const MaxFeedbackChars = 1000

// feedback stores what a visitor says about a map.
func (s *Server) feedback(w http.ResponseWriter, r *http.Request) {
	var mapID, text *string
	if !decodeBody(w, r, bodyForm{example: `{"map_id": "…", "text": "…"}`,
		fields: []field{
			{name: "map_id", into: &mapID, want: "a string: the id of the map", code: "invalid_feedback"},
			{name: "text", into: &text, want: "a string: your feedback", code: "invalid_feedback"},
		},
		textCode: "invalid_feedback", textMessage: "The feedback text is not valid UTF-8 text."}) {
		return
	}
	switch {
	case mapID == nil || text == nil:
		WriteError(w, http.StatusBadRequest, "invalid_feedback", `The body needs "map_id" (the id of the map) and "text" (your feedback).`)
		return
	case strings.TrimSpace(*text) == "":
		WriteError(w, http.StatusBadRequest, "invalid_feedback", "The feedback text is empty.")
		return
	case utf8.RuneCountInString(*text) > MaxFeedbackChars:
		WriteError(w, http.StatusRequestEntityTooLarge, "too_long", fmt.Sprintf("The feedback is too long: at most %d characters.", MaxFeedbackChars))
		return
	}
	if !validID(w, *mapID) {
		return
	}
	if !s.feedbackLimit.allow(clientKey(r, s.cfg.TrustedProxies), s.now()) {
		w.Header().Set("Retry-After", s.feedbackLimit.retryAfter())
		WriteError(w, http.StatusTooManyRequests, "rate_limited", "Thank you, but that is a lot of feedback from your address; please wait a minute before sending more.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
	defer cancel()
	if _, err := s.store.Get(ctx, *mapID); err != nil {
		docError(w, r, *mapID, err)
		return
	}
	f := jobs.Feedback{MapID: *mapID, Text: strings.TrimSpace(*text), CreatedAt: s.now().UTC()}
	if err := s.store.AddFeedback(ctx, f); err != nil {
		backendError(w, r, err)
		return
	}
	slog.InfoContext(r.Context(), "feedback", "id", f.MapID, "chars", utf8.RuneCountInString(f.Text))
	writeJSON(w, http.StatusCreated, map[string]string{"status": "stored", "map_id": f.MapID})
}
