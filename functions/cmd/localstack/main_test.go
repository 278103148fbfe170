package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
)

// What `make run` does, from the outside: the command prints the URL, the URL serves the page, and
// Ctrl-C (SIGINT) stops everything and exits 0.
func TestRunPrintsTheURLAndStopsOnCtrlC(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "localstack")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "T2B_PORT=0", "T2B_DATA_DIR="+t.TempDir(), "T2B_SCHEDULER_EVERY=off",
		"TEXT2BRAIN_MODEL="+testenv.BundleDir(t), "ONNXRUNTIME_LIB="+testenv.ORTLibrary(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := emulators.NewTail(100000)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)

	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var url string
	select {
	case line := <-lines:
		m := regexp.MustCompile(`^text2brain is running at (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("first line %q, want the URL\n%s", line, stderr.String())
		}
		url = m[1]
	case <-time.After(90 * time.Second):
		t.Fatalf("no URL after 90 s\n%s", stderr.String())
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<html") {
		t.Errorf("GET %s: %d", url, resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after Ctrl-C: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60 s after Ctrl-C\n%s", stderr.String())
	}
	// Nothing is left: no function child, and the emulators' ports are closed.
	if out, _ := exec.Command("pgrep", "-af", bin).Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("function processes left after Ctrl-C:\n%s", out)
	}
	hosts := regexp.MustCompile(`(?:Firestore|Pub/Sub) emulator on (127\.0\.0\.1:\d+)`).FindAllStringSubmatch(stderr.String(), -1)
	if len(hosts) != 2 {
		t.Fatalf("the log does not name both emulators:\n%s", stderr.String())
	}
	for _, h := range hosts {
		if c, err := net.DialTimeout("tcp", h[1], time.Second); err == nil {
			c.Close()
			t.Errorf("an emulator still listens on %s after Ctrl-C", h[1])
		}
	}
}
