package deploy

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository root, four levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(mod), "module github.com/text2brain/text2brain\n") {
		t.Fatalf("%s is not the text2brain repository root", root)
	}
	return root
}

// A synthetic repository with what must and must not be uploaded.
var (
	treeIncluded = []string{
		"frontend/dist/README.md", // the built page, whole
		"frontend/dist/site/.well-known/security.txt",
		"frontend/dist/site/assets/_chunk-1.js",
		"frontend/dist/site/assets/index-abc.js",
		"frontend/dist/site/assets/index-abc.js.gz",
		"frontend/dist/site/index.html",
		"frontend/frontend.go",
		"frontend/placeholder.html",
		"functions.go",
		"functions/cmd.go",                  // only the functions/cmd/ directory is left out
		"functions/internal/build/build.go", // build/ and data/ are left out at the root only
		"functions/internal/data/data.go",
		"functions/internal/onnxpb/onnx.pb.go",
		"functions/internal/serve/queryapi/openapi.yaml", // embedded by the API
		"functions/predict/predict.go",
		"functions/query/cmd/cmd.go",
		"functions/query/query.go",
		"go.mod",
		"go.sum",
		"register.go",
	}
	treeExcluded = []string{
		".gitignore",
		".cache/onnxruntime/libonnxruntime.so",
		".cache/x.go",
		"Makefile",
		"README.md",
		"build/bin/text2brain",
		"build/x.go",
		"data/x.go",
		"frontend/node_modules/x/index.js",
		"frontend/tests/page.test.js",
		"frontend/test/clusters.test.ts",
		"frontend/src/main.ts",
		"frontend/index.html", // Vite's source of dist/site/index.html
		"frontend/vite.config.ts",
		"frontend/package.json",
		"frontend/package-lock.json",
		"functions/internal/serve/queryapi/other.yaml",
		"frontend/x_test.go",
		"functions/cmd/text2brain/main.go",
		"functions/cmd/text2brain/main_test.go",
		"functions/internal/.hidden/h.go",
		"functions/internal/_old/old.go",
		"functions/internal/onnxpb/onnx.proto",
		"functions/internal/onnxpb/.x.go",
		"functions/internal/onnxpb/_x.go",
		"functions/node_modules/x/x.go",
		"functions/query/README.md",
		"functions/query/query_test.go",
		"functions/query/testdata/golden.json",
		"functions/query/testdata/x.go",
		"functions_test.go",
		"node_modules/x/index.js",
		"other/x.go",
		"terraform/main.tf",
		"terraform/x.go",
	}
)

func makeTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range slices.Concat(treeIncluded, treeExcluded) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("// "+name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSourceFiles(t *testing.T) {
	got, err := SourceFiles(makeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, treeIncluded) {
		t.Errorf("SourceFiles:\n got %q\nwant %q", got, treeIncluded)
	}

	if _, err := SourceFiles(t.TempDir()); err == nil {
		t.Error("SourceFiles of an empty directory: no error")
	}
}

// TestGcloudignore checks that the .gcloudignore at the repository root makes gcloud upload the
// same files as SourceFiles chooses, in the synthetic repository and in this one.
func TestGcloudignore(t *testing.T) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		// Deployment needs the Google Cloud SDK; the tests of the packaging itself do not.
		t.Fatal("gcloud is not installed: it checks .gcloudignore against SourceFiles (this machine image has the Google Cloud CLI)")
	}
	root := repoRoot(t)
	ignore, err := os.ReadFile(filepath.Join(root, ".gcloudignore"))
	if err != nil {
		t.Fatal(err)
	}
	tree := makeTree(t)
	if err := os.WriteFile(filepath.Join(tree, ".gcloudignore"), ignore, 0o644); err != nil {
		t.Fatal(err)
	}
	config := t.TempDir()
	for _, dir := range []string{tree, root} {
		cmd := exec.CommandContext(t.Context(), gcloud, "meta", "list-files-for-upload", dir)
		cmd.Env = append(os.Environ(), "CLOUDSDK_CONFIG="+config, "CLOUDSDK_CORE_DISABLE_PROMPTS=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gcloud meta list-files-for-upload %s: %v\n%s", dir, err, stderr(err))
		}
		var uploaded []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" {
				uploaded = append(uploaded, filepath.ToSlash(line))
			}
		}
		sort.Strings(uploaded)
		want, err := SourceFiles(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(uploaded, want) {
			t.Errorf("in %s, gcloud uploads\n%q\nSourceFiles chooses\n%q", dir, uploaded, want)
		}
	}
}

func TestWriteZipDeterministic(t *testing.T) {
	tree := makeTree(t)
	var a, b bytes.Buffer
	if err := WriteZip(&a, tree); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	for _, name := range treeIncluded {
		if err := os.Chtimes(filepath.Join(tree, name), later, later); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteZip(&b, tree); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the archive changed with the files' modification times")
	}
	zr, err := zip.NewReader(bytes.NewReader(a.Bytes()), int64(a.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		data := readEntry(t, f)
		if want := "// " + f.Name + "\n"; string(data) != want {
			t.Errorf("%s holds %q, want %q", f.Name, data, want)
		}
	}
	if !slices.Equal(names, treeIncluded) {
		t.Errorf("archive:\n got %q\nwant %q", names, treeIncluded)
	}
}

// TestBuildpackBuild builds the source archive the way Cloud Functions' Go buildpack does: unpack it
// into serverless_function_source_code/, generate a main module next to it that imports the root
// package and starts the functions framework, build that, and start it once per function.
func TestBuildpackBuild(t *testing.T) {
	root := repoRoot(t)
	var archive bytes.Buffer
	if err := WriteZip(&archive, root); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(archive.Bytes()), int64(archive.Len()))
	if err != nil {
		t.Fatal(err)
	}
	checkArchive(t, root, zr)
	t.Logf("source archive: %d files, %d bytes", len(zr.File), archive.Len())

	dir := t.TempDir()
	src := filepath.Join(dir, "serverless_function_source_code")
	unzip(t, zr, src)

	goVersion := goDirective(t, filepath.Join(src, "go.mod"))
	writeFile(t, filepath.Join(dir, "go.mod"), "module functions.local/app\n\ngo "+goVersion+"\n\n"+
		"require github.com/text2brain/text2brain v0.0.0\n\n"+
		"replace github.com/text2brain/text2brain => ./serverless_function_source_code\n")
	writeFile(t, filepath.Join(dir, "main.go"), generatedMain)

	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=1")
	// The source module's dependencies become the main module's; the module cache already holds them
	// (`make test` runs `go mod download`), so try without the network first.
	if out, err := runGo(t, goBin, dir, append(env, "GOPROXY=off"), "mod", "tidy"); err != nil {
		t.Logf("go mod tidy with GOPROXY=off: %v\n%s\nretrying with the environment's GOPROXY", err, out)
		if out, err := runGo(t, goBin, dir, env, "mod", "tidy"); err != nil {
			t.Fatalf("go mod tidy: %v\n%s", err, out)
		}
	}
	if out, err := runGo(t, goBin, dir, env, "build", "-o", "app", "."); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	for _, target := range []string{"Query", "Predict"} {
		t.Run(target, func(t *testing.T) {
			serve(t, filepath.Join(dir, "app"), dir, target)
		})
	}
}

// generatedMain is the main package the buildpack writes next to the source.
const generatedMain = `package main

import (
	"log"
	"os"

	_ "github.com/text2brain/text2brain"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("funcframework.Start: %v\n", err)
	}
}
`

// checkArchive checks what the source archive holds: the module files, the root package, the two
// entry packages, and no tests, command-line tools or large files, in sorted order with fixed times.
func checkArchive(t *testing.T, root string, zr *zip.Reader) {
	t.Helper()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		switch {
		case strings.HasSuffix(f.Name, "_test.go"):
			t.Errorf("archive holds the test file %s", f.Name)
		case strings.HasPrefix(f.Name, "functions/cmd/"):
			t.Errorf("archive holds the command-line tool file %s", f.Name)
		case strings.Contains("/"+f.Name, "/testdata/"):
			t.Errorf("archive holds the test data %s", f.Name)
		}
		if f.UncompressedSize64 > 1<<20 {
			t.Errorf("archive holds %s of %d bytes (over 1 MB)", f.Name, f.UncompressedSize64)
		}
		if !f.Modified.Equal(modTime) {
			t.Errorf("%s modified %v, want %v", f.Name, f.Modified, modTime)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("archive entries are not sorted: %q", names)
	}
	want := []string{"go.mod", "go.sum", "functions.go"}
	for _, pkg := range []string{"functions/query", "functions/predict"} {
		files, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(pkg), "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range files {
			if !strings.HasSuffix(f, "_test.go") {
				want = append(want, pkg+"/"+filepath.Base(f))
				n++
			}
		}
		if n == 0 {
			t.Errorf("no Go source files in %s", pkg)
		}
	}
	for _, name := range want {
		if !slices.Contains(names, name) {
			t.Errorf("archive lacks %s", name)
		}
	}
}

func readEntry(t *testing.T, f *zip.File) []byte {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	return data
}

func unzip(t *testing.T, zr *zip.Reader, dir string) {
	t.Helper()
	for _, f := range zr.File {
		if !filepath.IsLocal(f.Name) {
			t.Fatalf("archive entry %q is not a local path", f.Name)
		}
		data := readEntry(t, f)
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, f.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// goDirective is the version in a go.mod's go directive.
func goDirective(t *testing.T, gomod string) string {
	t.Helper()
	f, err := os.Open(gomod)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no go directive", gomod)
	return ""
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runGo(t *testing.T, goBin, dir string, env []string, args ...string) ([]byte, error) {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), goBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	t.Logf("go %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return out, err
}

// serve starts the built function server for one target on a free port and waits (20 s at most) for
// it to answer an HTTP request, with any status: the functions answer even without configuration.
func serve(t *testing.T, bin, dir, target string) {
	port := freePort(t)
	logName := filepath.Join(dir, target+".log")
	logFile, err := os.Create(logName)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FUNCTION_TARGET="+target, "PORT="+port)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	output := func() string {
		b, _ := os.ReadFile(logName)
		return string(b)
	}

	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://127.0.0.1:" + port + "/healthz"
	for {
		select {
		case <-done:
			t.Fatalf("FUNCTION_TARGET=%s: the server exited before answering: %v\n%s", target, waitErr, output())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
			resp.Body.Close()
			t.Logf("FUNCTION_TARGET=%s: GET /healthz answered %s %q after %v", target, resp.Status,
				strings.TrimSpace(string(body)), time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("FUNCTION_TARGET=%s: no answer within 20 s: %v\n%s", target, err, output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func stderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
