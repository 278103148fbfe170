package main

import (
	"bufio"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
)

var (
	buildOnce sync.Once
	bin       string
	buildErr  error
)

// build builds the command once for the tests.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "localstack-cmd-test-")
		if err != nil {
			buildErr = err
			return
		}
		bin = filepath.Join(dir, "localstack")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			buildErr = err
			t.Logf("go build: %s", out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin != "" {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// stackRun is `make run` started by a test: the command in its own process group.
type stackRun struct {
	cmd    *exec.Cmd
	url    string
	stdout chan string
	stderr *emulators.Tail
	done   chan error
}

// startRun starts the command on dataDir and waits for its URL.
func startRun(t *testing.T, dataDir string) *stackRun {
	t.Helper()
	cmd := exec.Command(build(t))
	cmd.Env = append(os.Environ(), "T2B_PORT=0", "T2B_DATA_DIR="+dataDir, "T2B_SCHEDULER_EVERY=off",
		"TEXT2BRAIN_MODEL="+testenv.BundleDir(t), "ONNXRUNTIME_LIB="+testenv.ORTLibrary(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &stackRun{cmd: cmd, stdout: make(chan string, 100), stderr: emulators.NewTail(100000), done: make(chan error, 1)}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.stdout <- sc.Text()
		}
		close(r.stdout)
		r.done <- cmd.Wait()
	}()
	select {
	case line := <-r.stdout:
		m := regexp.MustCompile(`^text2brain is running at (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("first line %q, want the URL\n%s", line, r.stderr.String())
		}
		r.url = m[1]
	case <-time.After(120 * time.Second):
		t.Fatalf("no URL after 120 s\n%s", r.stderr.String())
	}
	return r
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// emulatorHosts are the emulators' hosts, from the run's localstack.log.
func emulatorHosts(t *testing.T, dataDir string) []string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(dataDir, "logs", "localstack.log"))
	var hosts []string
	for _, m := range regexp.MustCompile(`(?:Firestore|Pub/Sub) emulator on (127\.0\.0\.1:\d+)`).FindAllStringSubmatch(string(b), -1) {
		hosts = append(hosts, m[1])
	}
	if len(hosts) != 2 {
		t.Fatalf("localstack.log does not name both emulators:\n%s", b)
	}
	return hosts
}

func assertClosed(t *testing.T, hosts []string) {
	t.Helper()
	for _, h := range hosts {
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", h, time.Second)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Errorf("an emulator still listens on %s", h)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// What `make run` does, from the outside: the command prints the URL and where the logs are, the
// URL serves the page, the console stays quiet (the fake Cloud Storage's access log and the
// functions' info lines are in data/logs), and Ctrl-C (SIGINT) stops everything and exits 0.
func TestRunPrintsTheURLAndStopsOnCtrlC(t *testing.T) {
	dataDir := t.TempDir()
	r := startRun(t, dataDir)
	if line := <-r.stdout; line != "logs: "+filepath.Join(dataDir, "logs")+"/" {
		t.Errorf("second line %q, want where the logs are", line)
	}
	code, page := get(t, r.url)
	if code != 200 || !strings.Contains(page, "<html") {
		t.Errorf("GET %s: %d", r.url, code)
	}
	if code, body := get(t, r.url+"api/v1/maps?q=faces&wait=10"); code != 200 {
		t.Errorf("a query: %d %s", code, body)
	}
	hosts := emulatorHosts(t, dataDir)

	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("exit after Ctrl-C: %v\n%s", err, r.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60 s after Ctrl-C\n%s", r.stderr.String())
	}
	// Nothing is left: no function child, and the emulators' ports are closed.
	if out, _ := exec.Command("pgrep", "-af", bin+" function").Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("function processes left after Ctrl-C:\n%s", out)
	}
	assertClosed(t, hosts)
	// The console: the job's line and the stop, none of the rest.
	console := r.stderr.String()
	if !regexp.MustCompile(`\[job\] [0-9a-f]{32} "faces" \d+ ms`).MatchString(console) {
		t.Errorf("no job line on the console:\n%s", console)
	}
	for _, noise := range []string{"GET /", "level=INFO", "emulator on"} {
		if strings.Contains(console, noise) {
			t.Errorf("the console shows %q:\n%s", noise, console)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dataDir, "logs", "storage.log")); !strings.Contains(string(b), "GET /") {
		t.Errorf("storage.log has no access log:\n%.1000s", b)
	}
}

// exportHolds reports whether the latest Firestore export in dir has a file containing s.
func exportHolds(dir, s string) bool {
	meta := emulators.LatestExport(dir)
	if meta == "" {
		return false
	}
	found := false
	filepath.WalkDir(filepath.Dir(filepath.Dir(meta)), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), s) {
				found = true
			}
		}
		return nil
	})
	return found
}

// `kill -9` of the whole `make run` process group leaves nothing running (the Firestore JVM
// included) and loses no result exported while it ran: the next run starts on the same data
// directory and serves the result from the cache.
func TestKilledRunLeavesNothingAndKeepsItsResults(t *testing.T) {
	dataDir := t.TempDir()
	r := startRun(t, dataDir)
	code, body := get(t, r.url+"api/v1/maps?q=viewing+faces&wait=10")
	if code != 200 {
		t.Fatalf("a query: %d %s", code, body)
	}
	var res struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(body), &res)
	// The documents are exported every 5 s while the stack runs.
	deadline := time.Now().Add(60 * time.Second)
	for !exportHolds(filepath.Join(dataDir, "firestore"), res.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the result's document was not exported within 60 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	var rec struct {
		Groups map[string]int `json:"process_groups"`
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "localstack.pid"))
	if err != nil || json.Unmarshal(b, &rec) != nil || len(rec.Groups) != 4 {
		t.Fatalf("localstack.pid: %s (%v), want the four children's process groups", b, err)
	}
	hosts := emulatorHosts(t, dataDir)

	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-r.done
	for name, pg := range rec.Groups {
		if !emulators.WaitGroupGone(pg, 20*time.Second) {
			out, _ := exec.Command("ps", "-eo", "pid,pgid,args").Output()
			t.Errorf("the %s (process group %d) outlived the killed stack:\n%s", name, pg, out)
		}
	}
	assertClosed(t, hosts)

	// The next run is not in the way of anything the last one left, and has its result.
	r = startRun(t, dataDir)
	code, body = get(t, r.url+"api/v1/maps?q=viewing+faces")
	if code != 200 || !strings.Contains(body, `"hits":1`) {
		t.Errorf("after the killed run: %d %.300s, want the cached result (200, its first hit)", code, body)
	}
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("exit after Ctrl-C: %v\n%s", err, r.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60 s after Ctrl-C\n%s", r.stderr.String())
	}
}
