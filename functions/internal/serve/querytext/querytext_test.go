package querytext

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
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
		{"soft hyphen inside a word", "fa\u00adce", "face", nil},
		{"zero-width space after a word", "face\u200b", "face", nil},
		{"zero-width joiners and BOM", "\ufeffwor\u200dking\u200c memory\u2060", "working memory", nil},
		{"bidirectional controls", "\u202eface\u202c \u2067memory\u2069 \u200fx", "face memory x", nil},
		{"a tag character", "face\U000E0041", "face", nil},
		{"only format characters", "\u00ad\u200b\ufeff", "", ErrEmpty},
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

// Texts that differ only in invisible characters are one query: one normalised text, one key.
func TestInvisibleCharactersMakeNoNewKey(t *testing.T) {
	t.Parallel()
	want, _ := Normalize("face")
	for _, in := range []string{"fa\u00adce", "face\u200b", "\ufeff" + "face", "f\u200dace", "face\u202c"} {
		got, err := Normalize(in)
		if err != nil || Key("v", got) != Key("v", want) {
			t.Errorf("Normalize(%q) = %q, %v; want the key of %q", in, got, err, want)
		}
	}
	if got := Fold("FA\u00adCE"); got != "face" {
		t.Errorf("Fold of a word with a soft hyphen = %q, want face", got)
	}
}

// FuzzNormalizeIsIdempotent checks what every normalised text is: stable under a second
// Normalize, valid UTF-8, free of the characters Normalize drops and of untidy white space, and no
// longer than MaxChars. Its seed corpus is in testdata/fuzz/FuzzNormalizeIsIdempotent.
func FuzzNormalizeIsIdempotent(f *testing.F) {
	for _, seed := range []string{"a\x01\u0301b", "ＡＢＣ ﬁ", "İstanbul", "ß ẞ", "\u00a0x\u2003y", "Σίσυφος", "ǅ", "ﾊﾟ", "a\u0301\u0327", "\x00\x01",
		"fa\u00adce", "e\u00ad\u0301", "\u200d\u0301a"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once, err := Normalize(s)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLong) {
				t.Errorf("Normalize(%q): unexpected error %v", s, err)
			}
			return
		}
		twice, err := Normalize(once)
		if err != nil || twice != once {
			t.Errorf("Normalize(%q) = %q, but Normalize of that = %q, %v", s, once, twice, err)
		}
		if !utf8.ValidString(once) || utf8.RuneCountInString(once) > MaxChars {
			t.Errorf("Normalize(%q) = %q: invalid or too long", s, once)
		}
		if strings.TrimSpace(once) != once || strings.Contains(once, "  ") {
			t.Errorf("Normalize(%q) = %q: white space not collapsed and trimmed", s, once)
		}
		for _, r := range once {
			if Ignored(r) || unicode.IsSpace(r) && r != ' ' {
				t.Errorf("Normalize(%q) = %q keeps %U", s, once, r)
			}
		}
		if Fold(once) != once {
			t.Errorf("Normalize(%q) = %q, which Fold changes to %q", s, once, Fold(once))
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

// A decoding's id is its own key space: not the id of any text, not another version's, and a
// function of the file's hash alone.
func TestDecodingKey(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	k := DecodingKey("nq-1", sha)
	if !ValidKey(k) || k == Key("nq-1", sha) || k == DecodingKey("nq-2", sha) || k != DecodingKey("nq-1", sha) {
		t.Errorf("DecodingKey = %q", k)
	}
	if !ValidSHA256(sha) || ValidSHA256(sha[:63]) || ValidSHA256(strings.ToUpper(sha)) || ValidSHA256("../"+sha[3:]) {
		t.Error("ValidSHA256")
	}
}
