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

// Errors of Normalize; the API maps them to 400 and 413.
var (
	ErrEmpty   = errors.New("the query is empty: type a few words, such as \"working memory\"")
	ErrInvalid = errors.New("the query is not valid UTF-8 text")
	ErrTooLong = fmt.Errorf("the query is too long: at most %d characters", MaxChars)
)

// Normalize folds text to its canonical form: Unicode NFKC, control characters removed, lower
// case, runs of white space collapsed to one space, trimmed.
func Normalize(text string) (string, error) {
	if !utf8.ValidString(text) {
		return "", ErrInvalid
	}
	text = norm.NFKC.String(text)
	var b strings.Builder
	space := false
	n := 0
	for _, r := range text {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r) || r == utf8.RuneError:
			continue
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteString(strings.ToLower(string(r)))
		n++
		if n > MaxChars {
			return "", ErrTooLong
		}
	}
	if b.Len() == 0 {
		return "", ErrEmpty
	}
	return b.String(), nil
}

// Key is the id of a (model version, normalised query) pair: the Firestore document id and the
// name of the stored map. A new model version is a new key space.
func Key(modelVersion, normalized string) string {
	h := sha256.Sum256([]byte(modelVersion + "\x00" + normalized))
	return hex.EncodeToString(h[:16])
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
