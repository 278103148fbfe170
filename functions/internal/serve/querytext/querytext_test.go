package querytext

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name, in, want string
		err            error
	}{
		{"lower case and trim", "  Working Memory  ", "working memory", nil},
		{"white space collapsed", "viewing\t\n  faces", "viewing faces", nil},
		{"NFKC folds compatibility forms", "ｆａｃｅｓ ﬁre", "faces fire", nil},
		{"control characters removed", "fa\x00ces\x07", "faces", nil},
		{"unicode lower case", "ÜBER GRÖSSE", "über grösse", nil},
		{"empty", "", "", ErrEmpty},
		{"only space and controls", " \t\x01 ", "", ErrEmpty},
		{"invalid UTF-8", "fa\xffces", "", ErrInvalid},
		{"at the limit", strings.Repeat("a", MaxChars), strings.Repeat("a", MaxChars), nil},
		{"over the limit", strings.Repeat("a", MaxChars+1), "", ErrTooLong},
		{"raw text over the byte limit", strings.Repeat(" ", MaxRawBytes) + "a", "", ErrTooLong},
		{"spaces do not count past the limit", strings.Repeat("a ", 999) + "      a", strings.Repeat("a ", 999) + "a", nil},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Normalize(tc.in)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	a := Key("nq-1", "faces")
	if !ValidKey(a) {
		t.Errorf("Key %q is not a valid key", a)
	}
	if a != Key("nq-1", "faces") {
		t.Error("Key is not deterministic")
	}
	if a == Key("nq-2", "faces") || a == Key("nq-1", "face") {
		t.Error("Key does not depend on both model version and text")
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("A", 32), strings.Repeat("0", 31), "../" + strings.Repeat("0", 29)} {
		if ValidKey(bad) {
			t.Errorf("ValidKey(%q) = true", bad)
		}
	}
}

func FuzzNormalizeIsIdempotent(f *testing.F) {
	for _, seed := range []string{"a\x01\u0301b", "ＡＢＣ ﬁ", "İstanbul", "ß ẞ", "\u00a0x\u2003y", "Σίσυφος", "ǅ", "ﾊﾟ", "a\u0301\u0327", "\x00\x01"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once, err := Normalize(s)
		if err != nil {
			return
		}
		twice, err := Normalize(once)
		if err != nil || twice != once {
			t.Errorf("Normalize(%q) = %q, but Normalize of that = %q, %v", s, once, twice, err)
		}
	})
}

// Each problem has a sentence for a person and a plain error for logs.
func TestProblemMessages(t *testing.T) {
	for _, p := range []*Problem{ErrEmpty, ErrInvalid, ErrTooLong} {
		msg := Message(p)
		if msg == p.Error() || !strings.HasPrefix(msg, "The query") || !strings.HasSuffix(msg, ".") {
			t.Errorf("%v: message %q", p, msg)
		}
		if !strings.HasPrefix(p.Error(), "querytext: ") {
			t.Errorf("error %q", p.Error())
		}
	}
	if Message(errors.New("other")) != "other" {
		t.Error("a plain error's message is its text")
	}
}
