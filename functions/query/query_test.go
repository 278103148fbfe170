package query

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A deployment without its configuration answers 500 "misconfigured" (retrying will not help),
// with the API's JSON error body, not a crash and not a 503 that invites retries.
func TestMisconfiguredAnswers500(t *testing.T) {
	for _, k := range []string{"GOOGLE_CLOUD_PROJECT", "T2B_MODEL_URI", "T2B_RESULTS_BUCKET"} {
		t.Setenv(k, "")
	}
	rec := httptest.NewRecorder()
	handle(rec, httptest.NewRequest("GET", "/api/v1/maps?q=faces", nil))
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("not JSON: %s", rec.Body)
	}
	if rec.Code != 500 || body.Error.Code != "misconfigured" || rec.Header().Get("Retry-After") != "" {
		t.Errorf("%d %+v, Retry-After %q; want 500 misconfigured without Retry-After", rec.Code, body.Error, rec.Header().Get("Retry-After"))
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("no security headers: %v", rec.Header())
	}
}

// closerFile is a server whose Close writes a file, for the child process of
// TestSIGTERMFlushesThenDies.
type closerFile string

func (f closerFile) Close(ctx context.Context) error {
	return os.WriteFile(string(f), []byte("flushed"), 0o644)
}

// SIGTERM closes the server (its hits written) and then ends the process as SIGTERM does by
// default: the local stack stops its Query child so, and Cloud Run its instances.
func TestSIGTERMFlushesThenDies(t *testing.T) {
	if f := os.Getenv("QUERY_TEST_CLOSER"); f != "" {
		flushOnStop(closerFile(f), syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Minute)
		os.Exit(3) // not stopped: the parent sees exit status 3
	}
	flushed := filepath.Join(t.TempDir(), "flushed")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSIGTERMFlushesThenDies$")
	cmd.Env = append(os.Environ(), "QUERY_TEST_CLOSER="+flushed)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("child ended with %v, want death by SIGTERM", err)
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("child ended with %v, want death by SIGTERM", err)
	}
	if b, err := os.ReadFile(flushed); err != nil || string(b) != "flushed" {
		t.Errorf("the server was not closed before the process died: %q, %v", b, err)
	}
}
