// Package querytext holds the one normalisation of query text and the one cache key derived from
// it, so that the Query function, the Predict function and the tests can never disagree on either.
package querytext

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxChars is the longest normalised query accepted, in characters.
const MaxChars = 2000

// Problem is why a text cannot be a query. Error is for logs and errors.Is; Message is the
// sentence for the person who typed it, which the API and the CLI show.
type Problem struct{ err, message string }

func (p *Problem) Error() string { return p.err }

// Message is the problem worded for the person who typed the query.
func (p *Problem) Message() string { return p.message }

// Message is err's sentence for a person: a Problem's message, else err's text.
func Message(err error) string {
	var p *Problem
	if errors.As(err, &p) {
		return p.message
	}
	return err.Error()
}

// Problems of Normalize; the API maps them to 400 and 413.
var (
	ErrEmpty   = &Problem{"querytext: empty query", "The query is empty: type a few words, such as \"working memory\"."}
	ErrInvalid = &Problem{"querytext: query not valid UTF-8", "The query is not valid UTF-8 text."}
	ErrTooLong = &Problem{fmt.Sprintf("querytext: query over %d characters", MaxChars), fmt.Sprintf("The query is too long: at most %d characters.", MaxChars)}
)

// MaxRawBytes bounds the text a request may send before normalisation, so that a huge query
// string is refused before any work is done on it.
const MaxRawBytes = 16 << 10

// Normalize folds text to its canonical form: control and format characters removed (see
// Ignored), Unicode NFKC, lower case, runs of white space collapsed to one space, trimmed. It is
// idempotent (Normalize(Normalize(x)) == Normalize(x)), so normalised text (a job's, say) keeps
// its key.
func Normalize(text string) (string, error) {
	if len(text) > MaxRawBytes {
		return "", ErrTooLong
	}
	if !utf8.ValidString(text) {
		return "", ErrInvalid
	}
	// Ignored characters go first: removed after NFKC, they could leave a base character and a
	// combining mark side by side uncomposed, and a second pass would compose them.
	text = Fold(strip(text))
	text = strings.Join(strings.FieldsFunc(text, unicode.IsSpace), " ")
	switch {
	case text == "":
		return "", ErrEmpty
	case utf8.RuneCountInString(text) > MaxChars:
		return "", ErrTooLong
	}
	return text, nil
}

// Fold is the folding of Normalize without its white-space handling: Ignored characters dropped,
// lower case and NFKC. Applied to a word of a text as typed, it gives the word as the normalised
// text has it, so that positions found in the typed text (the page highlights recognised terms
// there) match the normalised text.
func Fold(text string) string {
	// Lower-casing can undo NFKC (and NFKC can change case), so both are applied until stable.
	for range 3 {
		next := strip(norm.NFKC.String(strings.ToLower(text)))
		if next == text {
			break
		}
		text = next
	}
	return text
}

// Ignored reports whether Normalize drops r: control characters other than white space, and
// format characters (Unicode category Cf: the soft hyphen, zero-width spaces and joiners, the
// byte order mark, bidirectional controls, invisible operators and tags). They are invisible, so
// two texts that differ only in them look the same to the person who typed them and must be one
// query with one id; and they split words (a soft hyphen inside "face" would leave "fa" and "ce").
// Callers that hold the text as typed (the API's term spans) skip the same characters.
func Ignored(r rune) bool {
	return unicode.IsControl(r) && !unicode.IsSpace(r) || unicode.Is(unicode.Cf, r)
}

// strip removes the Ignored characters.
func strip(text string) string {
	return strings.Map(func(r rune) rune {
		if Ignored(r) {
			return -1
		}
		return r
	}, text)
}

// Key is the id of a (model version, normalised query) pair: the Firestore document id and the
// name of the stored map. A new model version is a new key space.
func Key(modelVersion, normalized string) string {
	h := sha256.Sum256([]byte(modelVersion + "\x00" + normalized))
	return hex.EncodeToString(h[:16])
}

// DecodingKey is the id of the decoding of an uploaded file by a model version: a hash of the
// version and the file's SHA-256 (hex). It cannot be a Key: a normalised text has no control
// character, and the decoding's has one.
func DecodingKey(modelVersion, fileSHA256 string) string {
	h := sha256.Sum256([]byte(modelVersion + "\x00decoding\x01" + fileSHA256))
	return hex.EncodeToString(h[:16])
}

// ValidSHA256 reports whether s is a SHA-256 in lower-case hex, as uploads are named.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidKey reports whether s has the form of a Key, so that ids from URLs and messages can be
// checked before they reach the database or a bucket path.
func ValidKey(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
