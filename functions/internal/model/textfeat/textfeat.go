// Package textfeat turns query text into the TF-IDF feature vector of a NeuroQuery-style model:
// tokens, stop words, longest-match vocabulary phrases, synonyms, IDF weights and L2 norm, exactly
// as ../shared/docs/model.md describes, so that the same text gives the same vector as NeuroQuery.
package textfeat

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
)

// tokenPattern is NeuroQuery's token pattern, in RE2 syntax: words of two or more letters or
// digits, or a single digit or roman-numeral letter (so "V1" and "3" survive).
var tokenPattern = regexp.MustCompile(`(?:[\p{L}\p{N}]{2,}|[IVXivx0-9])`)

// Tokenize returns the tokens of text in order, before lower-casing and stop words.
func Tokenize(text string) []string { return tokenPattern.FindAllString(text, -1) }

// Vocabulary is what the featurizer needs from a trained model.
type Vocabulary struct {
	// Features are the model's feature terms, sorted in byte order; their index is the feature index.
	Features []string `json:"features"`
	// IDF holds the inverse document frequency of each feature.
	IDF []float64 `json:"idf"`
	// Synonyms folds a vocabulary phrase onto its canonical feature.
	Synonyms map[string]string `json:"synonyms"`
	// StopWords are dropped from the text before phrases are matched.
	StopWords []string `json:"stop_words"`
}

// Featurizer maps text to feature vectors. It is read-only after New and safe for concurrent use.
type Featurizer struct {
	voc       Vocabulary
	index     map[string]int
	stopWords map[string]bool
	trie      *trieNode
}

type trieNode struct {
	children map[string]*trieNode
	// phrase is the vocabulary phrase that ends here, or "" when none does.
	phrase string
}

// New checks a vocabulary and builds the phrase trie.
func New(voc Vocabulary) (*Featurizer, error) {
	if len(voc.Features) == 0 {
		return nil, fmt.Errorf("textfeat: vocabulary has no features")
	}
	if len(voc.IDF) != len(voc.Features) {
		return nil, fmt.Errorf("textfeat: %d IDF values for %d features", len(voc.IDF), len(voc.Features))
	}
	if !sort.StringsAreSorted(voc.Features) {
		return nil, fmt.Errorf("textfeat: features are not sorted")
	}
	f := &Featurizer{voc: voc, index: make(map[string]int, len(voc.Features)),
		stopWords: make(map[string]bool, len(voc.StopWords)), trie: &trieNode{}}
	for i, term := range voc.Features {
		if _, dup := f.index[term]; dup {
			return nil, fmt.Errorf("textfeat: feature %q appears twice", term)
		}
		f.index[term] = i
		f.insert(term)
	}
	for from, to := range voc.Synonyms {
		if _, ok := f.index[to]; !ok {
			return nil, fmt.Errorf("textfeat: synonym %q → %q: target is not a feature", from, to)
		}
		f.insert(from)
	}
	for _, w := range voc.StopWords {
		f.stopWords[w] = true
	}
	return f, nil
}

func (f *Featurizer) insert(phrase string) {
	n := f.trie
	for _, w := range strings.Split(phrase, " ") {
		child := n.children[w]
		if child == nil {
			if n.children == nil {
				n.children = map[string]*trieNode{}
			}
			child = &trieNode{}
			n.children[w] = child
		}
		n = child
	}
	n.phrase = phrase
}

// NumFeatures is the length of the feature vector.
func (f *Featurizer) NumFeatures() int { return len(f.voc.Features) }

// Feature returns the term of feature j.
func (f *Featurizer) Feature(j int) string { return f.voc.Features[j] }

// Phrases returns the vocabulary phrases found in text, in order, as they appear (before synonyms
// are folded): the longest phrase at each position wins and matching resumes after it.
func (f *Featurizer) Phrases(text string) []string {
	var out []string
	for _, s := range f.Spans(text, strings.ToLower) {
		out = append(out, s.Phrase)
	}
	return out
}

// Span is where a recognised phrase is in a text: bytes [Start, End) of the text as given.
type Span struct {
	Start, End int
	// Phrase is the vocabulary phrase as written (before synonyms are folded).
	Phrase string
}

// Spans finds the phrases of Phrases in text and says where they are. fold maps each token to
// the form the vocabulary uses: strings.ToLower for normalised text; a caller that holds the text
// as a person typed it passes its normalisation, so that the spans point into the original text
// and the phrases are those of the normalised text.
func (f *Featurizer) Spans(text string, fold func(string) string) []Span {
	type word struct {
		w          string
		start, end int
	}
	var words []word
	for _, loc := range tokenPattern.FindAllStringIndex(text, -1) {
		t := fold(text[loc[0]:loc[1]])
		if !f.stopWords[t] {
			words = append(words, word{t, loc[0], loc[1]})
		}
	}
	var out []Span
	for i := 0; i < len(words); {
		n, longest, end := f.trie, "", i
		for j := i; j < len(words); j++ {
			n = n.children[words[j].w]
			if n == nil {
				break
			}
			if n.phrase != "" {
				longest, end = n.phrase, j+1
			}
		}
		if longest == "" {
			i++
			continue
		}
		out = append(out, Span{Start: words[i].start, End: words[end-1].end, Phrase: longest})
		i = end
	}
	return out
}

// Canonical folds a phrase onto its feature term.
func (f *Featurizer) Canonical(phrase string) string {
	if to, ok := f.voc.Synonyms[phrase]; ok {
		return to
	}
	return phrase
}

// Known reports whether text contains any vocabulary term: what Featurize(text).Known() says,
// without building the feature vector (the API asks it of every query).
func (f *Featurizer) Known(text string) bool { return len(f.Phrases(text)) > 0 }

// NoKnownTermsMessage tells a person why text gives no map and what to type instead. A long text
// is quoted by its beginning only: the person has it, and the message must stay a sentence.
func NoKnownTermsMessage(text string) string {
	if r := []rune(text); len(r) > 60 {
		text = strings.TrimSpace(string(r[:57])) + "…"
	}
	return fmt.Sprintf("%q contains no term the model knows, so there is no map to show. Try words from neuroimaging papers, such as \"working memory\", \"faces\" or \"reading\".", text)
}

// NoMappedTermsMessage tells a person why a text whose recognised terms (at least one) all have
// no brain map gives no map, naming those terms, and what to type instead.
func NoMappedTermsMessage(terms []string) string {
	const most = 5
	var quoted []string
	for i, t := range terms {
		if i == most {
			quoted = append(quoted, fmt.Sprintf("%d more", len(terms)-most))
			break
		}
		quoted = append(quoted, fmt.Sprintf("%q", t))
	}
	list, them := quoted[0], "it"
	if len(quoted) > 1 {
		list, them = strings.Join(quoted[:len(quoted)-1], ", ")+" and "+quoted[len(quoted)-1], "any of them"
	}
	return fmt.Sprintf("The model knows %s but has no brain map for %s, so there is no map to show. Add a term it can map, such as \"working memory\", \"faces\" or \"reading\".", list, them)
}

// Terms are the distinct features text maps to, in order of first appearance: Featurize(text).Terms
// without the feature vector.
func (f *Featurizer) Terms(text string) []string {
	var terms []string
	seen := map[string]bool{}
	for _, p := range f.Phrases(text) {
		if t := f.Canonical(p); !seen[t] {
			seen[t] = true
			terms = append(terms, t)
		}
	}
	return terms
}

// Features is the outcome of featurizing a text.
type Features struct {
	// Phrases are the recognised phrases in text order, as written (before synonyms).
	Phrases []string
	// Terms are the distinct features the text maps to, in order of first appearance.
	Terms []string
	// Vector is the L2-normalised TF-IDF vector (all zeros when no term is known).
	Vector []float64
}

// Known reports whether the text contained any vocabulary term.
func (fs Features) Known() bool { return len(fs.Terms) > 0 }

// Featurize computes the TF-IDF vector of text: counts of each feature times its IDF, L2-normalised.
func (f *Featurizer) Featurize(text string) Features {
	fs := Features{Phrases: f.Phrases(text), Vector: make([]float64, len(f.voc.Features))}
	seen := map[string]bool{}
	for _, p := range fs.Phrases {
		term := f.Canonical(p)
		fs.Vector[f.index[term]] += f.voc.IDF[f.index[term]]
		if !seen[term] {
			seen[term] = true
			fs.Terms = append(fs.Terms, term)
		}
	}
	var norm float64
	for _, v := range fs.Vector {
		norm += v * v
	}
	if norm > 0 {
		norm = math.Sqrt(norm)
		for j := range fs.Vector {
			fs.Vector[j] /= norm
		}
	}
	return fs
}
