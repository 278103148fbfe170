package browser

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/text2brain/text2brain/frontend"
	"github.com/text2brain/text2brain/functions/internal/cloud/store"
	"github.com/text2brain/text2brain/functions/internal/dev/localstack"
	"github.com/text2brain/text2brain/functions/internal/dev/stacktest"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
)

var stack *localstack.Stack

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "browser:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if !frontend.Built() {
		return 0, fmt.Errorf("the page is not built: run `make frontend` (make test does) before these tests")
	}
	// Every test is one client: no limits of new maps, warm-ups (one per page load) or feedback.
	s, stop, err := stacktest.Start("T2B_RATE=1000", "T2B_RATE_BURST=1000", "T2B_PREDICT_EVERY=0s", "T2B_WARMUP_CLIENT_EVERY=0s",
		"T2B_FEEDBACK_EVERY=0s", "T2B_MAX_PENDING=0")
	if err != nil {
		return 0, err
	}
	defer stop()
	stack = s
	return m.Run(), nil
}

// Artifacts is where the browser tests leave their screenshots and downloads (kept after the run).
func artifacts(t *testing.T) string {
	dir := os.Getenv("T2B_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(testenv.Root(), "build", "artifacts", "browser")
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "downloads"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPage drives the page in Debian's Chromium (playwright-core, frontend/e2e/*.test.mjs, run by
// node's test runner) against the real stack, then checks here what the browser produced: the
// downloads with independent readers (nibabel for the NIfTI) and the feedback in Firestore.
func TestPage(t *testing.T) {
	root := testenv.Root()
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("Debian's chromium is needed (/usr/bin/chromium; make test installs it)")
	}
	if _, err := os.Stat(filepath.Join(root, "frontend", "node_modules", "playwright-core")); err != nil {
		t.Fatal("playwright-core is not installed in frontend/node_modules: run `make frontend` (make test does)")
	}
	dir := artifacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-concurrency=1", "--test-reporter=spec", "e2e/")
	cmd.Dir = filepath.Join(root, "frontend")
	cmd.Env = append(os.Environ(), "T2B_URL="+stack.URL, "T2B_ARTIFACTS="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("browser tests (%.0f s):\n%s", time.Since(start).Seconds(), out.String())
	if err != nil {
		t.Fatalf("the browser tests failed: %v", err)
	}

	checkDownloads(t, filepath.Join(dir, "downloads"))
	checkFeedback(t, dir)
	for _, shot := range []string{"desktop.png", "phone.png", "decoding.png", "decoding-phone.png", "compare.png", "compare-phone.png"} {
		if fi, err := os.Stat(filepath.Join(dir, shot)); err != nil || fi.Size() < 10_000 {
			t.Errorf("screenshot %s: %v", shot, err)
		}
	}
}

// checkDownloads reads what the page downloaded: the map exactly as the API serves it (and as
// nibabel reads it), a PNG, CSVs with a header and rows, BibTeX entries.
func checkDownloads(t *testing.T, dir string) {
	t.Helper()
	var manifest struct {
		MapID string `json:"map_id"`
		NIfTI string `json:"nifti"`
		PNG   string `json:"png"`
		Peaks string `json:"peaks"`
		CSV   string `json:"csv"`
		Bib   string `json:"bibtex"`
		// ViewWidth and ViewHeight are the viewer canvas's size on screen, in CSS pixels.
		ViewWidth, ViewHeight int
	}
	raw, err := os.ReadFile(filepath.Join(dir, "downloads.json"))
	if err != nil {
		t.Fatalf("the browser tests left no downloads.json: %v", err)
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}

	nii, err := os.ReadFile(filepath.Join(dir, manifest.NIfTI))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(strings.TrimRight(stack.URL, "/") + "/api/v1/maps/" + manifest.MapID + "/map.nii.gz")
	if err != nil {
		t.Fatal(err)
	}
	var served bytes.Buffer
	served.ReadFrom(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(nii, served.Bytes()) {
		t.Errorf("the downloaded map (%d bytes) is not the stored one (%d bytes)", len(nii), served.Len())
	}
	script := `
import sys, nibabel as nib, numpy as np
img = nib.load(sys.argv[1]); d = img.get_fdata()
print(img.shape, int(img.header["sform_code"]), float(np.abs(d).max()) > 3, int((d != 0).sum()))`
	py, err := exec.Command("/usr/bin/python3", "-c", script, filepath.Join(dir, manifest.NIfTI)).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(py), "(46, 55, 46) 4 True ") {
		t.Errorf("nibabel on the downloaded map: %v %s", err, py)
	}

	f, err := os.Open(filepath.Join(dir, manifest.PNG))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("the PNG download: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 2*manifest.ViewWidth-2 || b.Dy() < 2*manifest.ViewHeight-2 {
		t.Errorf("PNG %v, want 2× the %d×%d view", b, manifest.ViewWidth, manifest.ViewHeight)
	}

	for name, header := range map[string]string{manifest.Peaks: "peak", manifest.CSV: "pmid"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil || len(rows) < 2 || !strings.Contains(strings.ToLower(strings.Join(rows[0], ",")), header) {
			t.Errorf("%s: %d rows, header %v, %v", name, len(rows), rows, err)
		}
	}
	bib, err := os.ReadFile(filepath.Join(dir, manifest.Bib))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(bib), "@article{"); n < 5 || strings.Count(string(bib), "{") != strings.Count(string(bib), "}") {
		t.Errorf("BibTeX: %d entries, unbalanced braces or too few:\n%.500s", n, bib)
	}
}

// checkFeedback finds in Firestore the feedback that the page sent.
func checkFeedback(t *testing.T, dir string) {
	t.Helper()
	var sent struct {
		MapID string `json:"map_id"`
		Text  string `json:"text"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "feedback.json"))
	if err != nil {
		t.Fatalf("the browser tests left no feedback.json: %v", err)
	}
	if err := json.Unmarshal(raw, &sent); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FIRESTORE_EMULATOR_HOST", stack.FirestoreHost)
	st, err := store.New(context.Background(), stack.ProjectID, "maps")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.Feedback(context.Background(), sent.MapID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Text != sent.Text || got[0].MapID != sent.MapID || time.Since(got[0].CreatedAt) > 15*time.Minute {
		t.Errorf("Firestore has %+v for map %s, want the text %q", got, sent.MapID, sent.Text)
	}
}
