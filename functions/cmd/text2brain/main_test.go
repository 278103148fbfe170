package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"cloud.google.com/go/storage"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/release/deploy"
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

// With --json every outcome is one JSON object on stdout, and a failure is also an error (the
// exit status 1): a script never meets an empty stdout.
func TestPredictJSONErrors(t *testing.T) {
	testCases := []struct {
		name  string
		args  []string
		code  string
		query string
		terms []string
	}{
		{"no known terms", predictArgs(t, "--json", "oh", "i", "believe", "in", "yesterday"), "no_known_terms", "oh i believe in yesterday", []string{}},
		{"no mapped terms", predictArgs(t, "--json", "Abscess"), "no_mapped_terms", "abscess", []string{"abscess"}},
		{"no mapped terms, two", predictArgs(t, "--json", "abscess;", "abuse", "alcohol"), "no_mapped_terms", "abscess; abuse alcohol", []string{"abscess", "abuse alcohol"}},
		{"no query", predictArgs(t, "--json"), "missing_query", "", []string{}},
		{"too long", predictArgs(t, "--json", strings.Repeat("a", 2001)), "too_long", strings.Repeat("a", 2001), []string{}},
		// JSON cannot hold the invalid byte: it is shown as U+FFFD.
		{"invalid UTF-8", predictArgs(t, "--json", "fa\xffce"), "invalid_query", "fa\ufffdce", []string{}},
		{"missing bundle", []string{"predict", "--json", "--model", "/nonexistent", "faces"}, "model_unavailable", "faces", []string{}},
		{"unwritable map", predictArgs(t, "--json", "--out", "/nonexistent/map.nii.gz", "faces"), "write_failed", "faces", []string{"face"}},
		{"bad flag", predictArgs(t, "--json", "--threshold", "3", "faces"), "usage", "", []string{}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, tc.args...)
			if err == nil {
				t.Error("no error: the exit status would be 0")
			}
			dec := json.NewDecoder(strings.NewReader(out))
			var got struct {
				Query           *string   `json:"query"`
				RecognizedTerms *[]string `json:"recognized_terms"`
				Error           *struct{ Code, Message string }
			}
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out)
			}
			if _, err := dec.Token(); err != io.EOF {
				t.Errorf("stdout has more than one JSON value: %s", out)
			}
			if got.Query == nil || got.RecognizedTerms == nil || got.Error == nil {
				t.Fatalf("fields missing: %s", out)
			}
			if got.Error.Code != tc.code || !strings.HasSuffix(got.Error.Message, ".") && tc.code != "usage" && tc.code != "model_unavailable" && tc.code != "write_failed" {
				t.Errorf("error %+v, want code %s and a sentence", *got.Error, tc.code)
			}
			if tc.code != "usage" && *got.Query != tc.query {
				t.Errorf("query %q, want %q", *got.Query, tc.query)
			}
			if strings.Join(*got.RecognizedTerms, "|") != strings.Join(tc.terms, "|") {
				t.Errorf("recognized_terms %q, want %q", *got.RecognizedTerms, tc.terms)
			}
		})
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
		{"no mapped terms", predictArgs(t, "abscess"), `knows "abscess" but has no brain map`},
		{"missing bundle", []string{"predict", "--model", "/nonexistent", "faces"}, "make model"},
		{"build without inputs", []string{"model", "build"}, "missing [--neuroquery --corpus --template --surface --out]"},
		{"publish without bucket", []string{"model", "publish"}, "--bucket is required"},
		{"publish to a bad bucket name", []string{"model", "publish", "--bucket", "My Bucket"}, `--bucket: "My Bucket" is not a bucket name`},
		{"publish to a URI", []string{"model", "publish", "--bucket", "gs://models/x"}, `give the bucket's name alone ("models")`},
		{"source-zip without out", []string{"source-zip"}, "--out is required"},
		{"source-zip outside the root", []string{"source-zip", "--out", filepath.Join(t.TempDir(), "x.zip"), "--root", t.TempDir()}, "not the repository root"},
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

func TestSourceZip(t *testing.T) {
	root := testenv.Root()
	path := filepath.Join(t.TempDir(), "build", "function-source.zip") // build/ does not exist yet
	out, err := run(t, "source-zip", "--out", path, "--root", root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := deploy.WriteZip(&want, root); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the archive (%d bytes) is not deploy.WriteZip's (%d bytes)", len(got), want.Len())
	}
	sum := sha256.Sum256(got)
	if line := fmt.Sprintf("%s: %d bytes, sha256 %s\n", path, len(got), hex.EncodeToString(sum[:])); out != line {
		t.Errorf("output %q, want %q", out, line)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("the archive's directory holds %d entries, want the archive alone (no temporary file)", len(entries))
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("archive mode %v, %v; want 0644", info.Mode(), err)
	}
}

func TestModelPublish(t *testing.T) {
	srv, err := emulators.StartStorage("")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	t.Setenv("STORAGE_EMULATOR_HOST", srv.Host())
	ctx := context.Background()
	client, err := storage.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const bucket = "text2brain-cli-models"
	if err := client.Bucket(bucket).Create(ctx, "text2brain-test", nil); err != nil {
		t.Fatal(err)
	}
	dir, ort := testenv.BundleDir(t), testenv.ORTLibrary(t)
	h, err := bundle.LoadHeader(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	lib, err := os.ReadFile(ort)
	if err != nil {
		t.Fatal(err)
	}
	libSum := sha256.Sum256(lib)
	version := h.Manifest.ModelVersion
	modelURI := "gs://" + bucket + "/models/" + version
	ortURI := "gs://" + bucket + "/onnxruntime/" + hex.EncodeToString(libSum[:]) + "/libonnxruntime.so"
	// The bundle's files, its manifest and the library.
	objects := len(h.Manifest.Files) + 2

	out, err := run(t, "model", "publish", "--bucket", bucket, "--model", dir, "--ort", ort, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	ortObject := strings.TrimPrefix(ortURI, "gs://"+bucket+"/")
	want := map[string]any{"model_version": version, "model_uri": modelURI, "onnxruntime_uri": ortURI, "onnxruntime_object": ortObject, "uploaded": float64(objects), "skipped": 0.0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("publish printed\n%s\nwant %v", out, want)
	}
	// What the URIs name is there.
	if _, err := client.Bucket(bucket).Object("models/" + version + "/manifest.json").Attrs(ctx); err != nil {
		t.Errorf("manifest: %v", err)
	}
	if attrs, err := client.Bucket(bucket).Object(strings.TrimPrefix(ortURI, "gs://"+bucket+"/")).Attrs(ctx); err != nil || attrs.Size != int64(len(lib)) {
		t.Errorf("library: %v", err)
	}

	// Again, as text: nothing to upload.
	out, err = run(t, "model", "publish", "--bucket", bucket, "--model", dir, "--ort", ort)
	if err != nil {
		t.Fatal(err)
	}
	wantText := "model " + version + ": 0 objects uploaded, " + strconv.Itoa(objects) + " there already\n" +
		"T2B_MODEL_URI=" + modelURI + "\n" + "ONNXRUNTIME_LIB=" + ortURI + "\n"
	if out != wantText {
		t.Errorf("second publish printed\n%s\nwant\n%s", out, wantText)
	}

	// A bucket Terraform has not made.
	_, err = run(t, "model", "publish", "--bucket", "no-such-bucket", "--model", dir, "--ort", ort, "--json")
	if err == nil || !strings.Contains(err.Error(), "gs://no-such-bucket") || !strings.Contains(err.Error(), "terraform apply") {
		t.Errorf("error %v, want one that names the bucket and says to run terraform apply", err)
	}

	// A dry run needs no bucket and sends nothing; its variables file is what Terraform reads.
	t.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:1") // nothing listens: any request would fail
	tfvars := filepath.Join(t.TempDir(), "model.tfvars.json")
	out, err = run(t, "model", "publish", "--dry-run", "--model", dir, "--ort", ort, "--tfvars", tfvars)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "nothing was sent") {
		t.Errorf("dry run printed %s", out)
	}
	raw, err := os.ReadFile(tfvars)
	if err != nil {
		t.Fatal(err)
	}
	var vars map[string]string
	if err := json.Unmarshal(raw, &vars); err != nil || len(vars) != 2 || vars["model_version"] != version || vars["onnxruntime_object"] != ortObject {
		t.Errorf("tfvars %s (%v), want model_version %s and onnxruntime_object %s", raw, err, version, ortObject)
	}
}

// model build-neural bundles the tiny network's export again, byte for byte the bundle make
// built, loads it, and model check runs the anatomical checks on each model: NeuroQuery passes
// them; the tiny network, trained on a few hundred articles, fails, and says so with exit status 1.
func TestBuildNeuralAndCheck(t *testing.T) {
	nn := testenv.NeuralBundleDir(t)
	export := filepath.Join(testenv.Root(), "build", "neural-tiny")
	out := filepath.Join(t.TempDir(), "bundle")
	msg, err := run(t, "model", "build-neural", "--onnx", filepath.Join(export, "model.onnx"), "--meta", filepath.Join(export, "neural.json"),
		"--base", testenv.BundleDir(t), "--out", out, "--ort", testenv.ORTLibrary(t))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(nn, bundle.ManifestFile))
	got, _ := os.ReadFile(filepath.Join(out, bundle.ManifestFile))
	if !bytes.Equal(got, want) || !strings.Contains(msg, "built and loaded") {
		t.Errorf("the rebuilt bundle's manifest differs from make's (%s)", msg)
	}
	if _, err := run(t, "model", "build-neural", "--onnx", filepath.Join(export, "model.onnx"), "--meta", filepath.Join(export, "model.onnx"),
		"--base", testenv.BundleDir(t), "--out", out); err == nil {
		t.Error("a graph for its description was accepted")
	}

	msg, err = run(t, "model", "check", "--model", testenv.BundleDir(t), "--ort", testenv.ORTLibrary(t))
	if err != nil || strings.Count(msg, "  pass  ") != 3 {
		t.Errorf("NeuroQuery's checks: %v\n%s", err, msg)
	}
	msg, err = run(t, "model", "check", "--model", nn, "--ort", testenv.ORTLibrary(t))
	if err == nil || !strings.Contains(msg, "FAIL") || !strings.Contains(err.Error(), "anatomical checks failed") {
		t.Errorf("the tiny network's checks: %v\n%s", err, msg)
	}
}
