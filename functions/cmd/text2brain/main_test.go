package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/brain"
	"github.com/text2brain/text2brain/functions/internal/testenv"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := realMain(context.Background(), args, &out, io.Discard)
	return out.String(), err
}

func predictArgs(t *testing.T, extra ...string) []string {
	return append([]string{"predict", "--model", testenv.BundleDir(t), "--ort", testenv.ORTLibrary(t)}, extra...)
}

func TestPredictText(t *testing.T) {
	dir := t.TempDir()
	nii, png := filepath.Join(dir, "map.nii.gz"), filepath.Join(dir, "preview.png")
	out, err := run(t, predictArgs(t, "--out", nii, "--png", png, "viewing", "faces")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"query:            viewing faces", "recognized terms: viewing, face",
		"related terms", "related articles (Pearson r)", "https://pubmed.ncbi.nlm.nih.gov/", "timings: load", "peak memory"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`\n\s+38\s+-50\s+-20\s+28\.\d\d`).MatchString(out) {
		t.Errorf("strongest peak for faces not at (38, -50, -20):\n%s", out)
	}
	vol, err := brain.ReadNIfTIFile(nii)
	if err != nil {
		t.Fatal(err)
	}
	if vol.Dims != brain.Dims {
		t.Errorf("NIfTI dims %v", vol.Dims)
	}
	raw, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(raw, []byte("\x89PNG")) {
		t.Errorf("preview PNG not written: %v", err)
	}
}

func TestPredictJSON(t *testing.T) {
	out, err := run(t, predictArgs(t, "--json", "working memory")...)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Query           string       `json:"query"`
		ModelVersion    string       `json:"model_version"`
		RecognizedTerms []string     `json:"recognized_terms"`
		Peaks           []brain.Peak `json:"peaks"`
		RelatedArticles []struct {
			PMID        int64   `json:"pmid"`
			Title       string  `json:"title"`
			Correlation float64 `json:"correlation"`
		} `json:"related_articles"`
		RelatedTerms []struct {
			Term   string  `json:"term"`
			Weight float64 `json:"weight"`
		} `json:"related_terms"`
		Timings struct {
			TotalMS   float64 `json:"total_ms"`
			LoadMS    float64 `json:"load_ms"`
			PeakRSSMB float64 `json:"peak_rss_mb"`
		} `json:"timings"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got.Query != "working memory" || len(got.RecognizedTerms) != 1 || got.RecognizedTerms[0] != "working memory" {
		t.Errorf("query %q, terms %v", got.Query, got.RecognizedTerms)
	}
	if !strings.HasPrefix(got.ModelVersion, "nq-") || len(got.Peaks) == 0 || len(got.RelatedArticles) != 10 ||
		len(got.RelatedTerms) == 0 || got.Timings.TotalMS <= 0 || got.Timings.PeakRSSMB <= 0 {
		t.Errorf("incomplete result: %+v", got)
	}
}

func TestErrors(t *testing.T) {
	testCases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "unknown command"},
		{"unknown command", []string{"serve"}, `unknown command "serve"`},
		{"no query", predictArgs(t), "give the query text"},
		{"no known terms", predictArgs(t, "oh", "i", "believe", "in", "yesterday"), "no term the model knows"},
		{"missing bundle", []string{"predict", "--model", "/nonexistent", "faces"}, "make model"},
		{"build without inputs", []string{"model", "build"}, "missing [--neuroquery --corpus --template --out]"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one that says %q", err, tc.want)
			}
		})
	}
}
