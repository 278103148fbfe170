package textfeat

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTokenize(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name, text string
		want       []string
	}{
		{"model.md example", "Parkinson's disease, V1 & x-ray; a 3 b", []string{"Parkinson", "disease", "V1", "x", "ray", "3"}},
		{"empty", "", nil},
		{"punctuation only", " ,;--!? ", nil},
		{"unicode letters", "Größe Ångström naïve 脳 脳機能", []string{"Größe", "Ångström", "naïve", "脳機能"}},
		{"single roman letters and digits kept", "i v x I V X 7 a b", []string{"i", "v", "x", "I", "V", "X", "7"}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, Tokenize(tc.text)); diff != "" {
				t.Errorf("Tokenize(%q) (-want +got):\n%s", tc.text, diff)
			}
		})
	}
}

func testFeaturizer(t testing.TB) *Featurizer {
	t.Helper()
	f, err := New(Vocabulary{
		Features:  []string{"face", "memory", "theory mind", "working memory", "working memory load", "über"},
		IDF:       []float64{2, 1, 3, 4, 5, 6},
		Synonyms:  map[string]string{"faces": "face", "wm": "working memory"},
		StopWords: []string{"of", "the", "a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPhrases(t *testing.T) {
	t.Parallel()
	f := testFeaturizer(t)
	testCases := []struct {
		name, text string
		want       []string
	}{
		{"longest match wins", "working memory load of faces", []string{"working memory load", "faces"}},
		{"falls back to shorter phrase", "working memory task", []string{"working memory"}},
		{"prefix that is not a phrase is skipped", "working hard memory", []string{"memory"}},
		{"stop words removed before matching", "theory of the mind", []string{"theory mind"}},
		{"case folded", "WORKING Memory", []string{"working memory"}},
		{"unicode case folded", "ÜBER", []string{"über"}},
		{"out of vocabulary ignored", "oh i believe in yesterday", nil},
		{"empty", "", nil},
		{"synonym kept as written", "WM faces", []string{"wm", "faces"}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, f.Phrases(tc.text)); diff != "" {
				t.Errorf("Phrases(%q) (-want +got):\n%s", tc.text, diff)
			}
		})
	}
}

func TestFeaturize(t *testing.T) {
	t.Parallel()
	f := testFeaturizer(t)

	fs := f.Featurize("faces, face and WM")
	if diff := cmp.Diff([]string{"face", "working memory"}, fs.Terms); diff != "" {
		t.Errorf("terms (-want +got):\n%s", diff)
	}
	// face twice (IDF 2) and working memory once (IDF 4): (4, 4) before normalisation.
	want := []float64{math.Sqrt(0.5), 0, 0, math.Sqrt(0.5), 0, 0}
	if diff := cmp.Diff(want, fs.Vector, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-12 })); diff != "" {
		t.Errorf("vector (-want +got):\n%s", diff)
	}

	for _, text := range []string{"", "oh i believe in yesterday", "of the a"} {
		fs := f.Featurize(text)
		if fs.Known() {
			t.Errorf("Featurize(%q).Known() = true, want false", text)
		}
		for _, v := range fs.Vector {
			if v != 0 {
				t.Fatalf("Featurize(%q) has a non-zero value", text)
			}
		}
	}
}

func TestFeaturizeLongInput(t *testing.T) {
	t.Parallel()
	f := testFeaturizer(t)
	text := strings.Repeat("working memory x ", 10000/17+1)[:10000]
	fs := f.Featurize(text)
	if got := len(fs.Phrases); got < 580 {
		t.Fatalf("%d phrases in a 10,000-character text, want about 588", got)
	}
	if math.Abs(fs.Vector[3]-1) > 1e-12 {
		t.Errorf("only working memory is present, its weight is %v, want 1", fs.Vector[3])
	}
}

func TestNewRejectsBadVocabulary(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name string
		voc  Vocabulary
	}{
		{"empty", Vocabulary{}},
		{"IDF length", Vocabulary{Features: []string{"a", "b"}, IDF: []float64{1}}},
		{"unsorted", Vocabulary{Features: []string{"b", "a"}, IDF: []float64{1, 1}}},
		{"duplicate", Vocabulary{Features: []string{"a", "a"}, IDF: []float64{1, 1}}},
		{"synonym to nothing", Vocabulary{Features: []string{"a"}, IDF: []float64{1}, Synonyms: map[string]string{"b": "c"}}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tc.voc); err == nil {
				t.Error("New accepted a bad vocabulary")
			}
		})
	}
}

func TestKnownAgreesWithFeaturize(t *testing.T) {
	t.Parallel()
	f := testFeaturizer(t)
	for _, text := range []string{"", "of the", "faces", "oh i believe", "theory of the mind", "WM"} {
		if got, want := f.Known(text), f.Featurize(text).Known(); got != want {
			t.Errorf("Known(%q) = %v, Featurize says %v", text, got, want)
		}
	}
}

func TestTermsAndNoMappedTermsMessage(t *testing.T) {
	t.Parallel()
	f := testFeaturizer(t)
	if diff := cmp.Diff([]string{"face", "working memory"}, f.Terms("faces and wm, face")); diff != "" {
		t.Errorf("Terms (-want +got):\n%s", diff)
	}
	if f.Terms("nothing here") != nil {
		t.Error("Terms of a text with no known term is not empty")
	}
	for _, tc := range []struct {
		terms []string
		want  string
	}{
		{[]string{"abscess"}, `The model knows "abscess" but has no brain map for it,`},
		{[]string{"a", "b"}, `The model knows "a" and "b" but has no brain map for any of them,`},
		{[]string{"a", "b", "c", "d", "e", "f", "g"}, `"a", "b", "c", "d", "e" and 2 more but`},
	} {
		if msg := NoMappedTermsMessage(tc.terms); !strings.Contains(msg, tc.want) || !strings.HasSuffix(msg, ".") {
			t.Errorf("NoMappedTermsMessage(%q) = %q, want it to say %q", tc.terms, msg, tc.want)
		}
	}
}

// FuzzFeaturize checks what holds for any text: spans in order, inside the text, on token
// boundaries, of vocabulary phrases; the phrases are the spans'; the terms are distinct features;
// the vector is unit-length exactly when a term is known, and zero otherwise. Its seed corpus is
// in testdata/fuzz/FuzzFeaturize.
func FuzzFeaturize(f *testing.F) {
	for _, seed := range []string{"working memory load of faces", "WM, wm; Wm", "theory of the mind", "ÜBER über", "x-ray V1 3", "faces\u00adfaces", ""} {
		f.Add(seed)
	}
	feat := testFeaturizer(f)
	f.Fuzz(func(t *testing.T, text string) {
		spans := feat.Spans(text, strings.ToLower)
		end := 0
		var phrases []string
		for _, s := range spans {
			if s.Start < end || s.End <= s.Start || s.End > len(text) {
				t.Fatalf("%q: span %+v out of order or outside the text", text, s)
			}
			if !tokenPattern.MatchString(text[s.Start:s.End]) || tokenPattern.FindStringIndex(text[s.Start:])[0] != 0 {
				t.Errorf("%q: span %+v does not start at a token", text, s)
			}
			if _, ok := feat.index[feat.Canonical(s.Phrase)]; !ok {
				t.Errorf("%q: span %+v is no vocabulary phrase", text, s)
			}
			end = s.End
			phrases = append(phrases, s.Phrase)
		}
		fs := feat.Featurize(text)
		if strings.Join(fs.Phrases, "|") != strings.Join(phrases, "|") {
			t.Errorf("%q: phrases %q, spans' %q", text, fs.Phrases, phrases)
		}
		if strings.Join(feat.Terms(text), "|") != strings.Join(fs.Terms, "|") || fs.Known() != (len(fs.Terms) > 0) || feat.Known(text) != fs.Known() {
			t.Errorf("%q: terms %q, Terms %q, known %v", text, fs.Terms, feat.Terms(text), fs.Known())
		}
		seen := map[string]bool{}
		for _, term := range fs.Terms {
			if _, ok := feat.index[term]; !ok || seen[term] {
				t.Errorf("%q: term %q repeated or not a feature", text, term)
			}
			seen[term] = true
		}
		var norm float64
		for _, v := range fs.Vector {
			if v < 0 || math.IsNaN(v) {
				t.Fatalf("%q: vector value %v", text, v)
			}
			norm += v * v
		}
		if len(fs.Vector) != feat.NumFeatures() || fs.Known() && math.Abs(norm-1) > 1e-9 || !fs.Known() && norm != 0 {
			t.Errorf("%q: vector of length %d and norm² %v with terms %q", text, len(fs.Vector), norm, fs.Terms)
		}
	})
}
