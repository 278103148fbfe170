package emulators

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
)

// These tests start the real emulators of the Google Cloud CLI on this machine image; they do not
// skip when the emulators are missing: TestMissing checks that message instead.

func startFirestore(t *testing.T, o Options) *Process {
	t.Helper()
	start := time.Now()
	p, err := StartFirestore(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Firestore emulator answered on %s after %.2f s", p.Host(), time.Since(start).Seconds())
	t.Cleanup(func() { p.Stop() })
	return p
}

func firestoreRoundTrip(t *testing.T, host, value string) {
	t.Helper()
	// The client reads FIRESTORE_EMULATOR_HOST in NewClient.
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := firestore.NewClient(ctx, "emulator-test")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	doc := client.Collection("things").Doc("one")
	if _, err := doc.Set(ctx, map[string]any{"value": value}); err != nil {
		t.Fatalf("firestore set: %v", err)
	}
	snap, err := doc.Get(ctx)
	if err != nil {
		t.Fatalf("firestore get: %v", err)
	}
	if got, _ := snap.DataAt("value"); got != value {
		t.Fatalf("firestore read %v, want %q", got, value)
	}
}

func TestFirestore(t *testing.T) {
	log := NewTail(100000)
	p := startFirestore(t, Options{ProjectID: "emulator-test", Log: log})
	if !strings.HasPrefix(p.Host(), "127.0.0.1:") || p.Port() == 0 {
		t.Fatalf("Host() = %q", p.Host())
	}
	firestoreRoundTrip(t, p.Host(), "before restart")
	port, pid := p.Port(), p.Pid()

	// Stop ends the launcher script and its java child (the whole process group).
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if GroupAlive(pid) {
		t.Fatalf("a process of group %d is alive after Stop", pid)
	}
	if err := p.Stop(); err != nil { // twice is fine
		t.Fatal(err)
	}
	select {
	case <-p.Crashed():
		t.Fatal("Crashed closed after an intentional Stop")
	default:
	}

	// Restart on the same port; clients connect again with the same host.
	start := time.Now()
	if err := p.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("Firestore emulator restarted on the same port after %.2f s", time.Since(start).Seconds())
	if p.Port() != port {
		t.Fatalf("restarted on port %d, want %d", p.Port(), port)
	}
	firestoreRoundTrip(t, p.Host(), "after restart")

	// A Restart of a running emulator works too.
	if err := p.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	firestoreRoundTrip(t, p.Host(), "after a second restart")
	if !strings.Contains(log.String(), "API endpoint: http://"+p.Host()) {
		t.Errorf("Options.Log did not get the emulator's output:\n%s", log.String())
	}
}

func TestFirestoreCrashIsReported(t *testing.T) {
	p := startFirestore(t, Options{})
	if err := syscall.Kill(-p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Crashed():
	case <-time.After(20 * time.Second):
		t.Fatal("Crashed not closed after the emulator was killed")
	}
}

func TestPubSub(t *testing.T) {
	start := time.Now()
	p, err := StartPubSub(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Pub/Sub emulator answered on %s after %.2f s", p.Host(), time.Since(start).Seconds())
	defer p.Stop()

	t.Setenv("PUBSUB_EMULATOR_HOST", p.Host())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := pubsub.NewClient(ctx, "emulator-test")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	topic := "projects/emulator-test/topics/things"
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	sub := "projects/emulator-test/subscriptions/things-pull"
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic, AckDeadlineSeconds: 10}); err != nil {
		t.Fatalf("create subscription: %v", err)
	}
	pub := client.Publisher(topic)
	defer pub.Stop()
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: []byte("hello")}).Get(ctx); err != nil {
		t.Fatalf("publish: %v", err)
	}
	got := make(chan string, 1)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go client.Subscriber(sub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		select {
		case got <- string(m.Data):
		default:
		}
	})
	select {
	case data := <-got:
		if data != "hello" {
			t.Fatalf("received %q", data)
		}
	case <-ctx.Done():
		t.Fatal("no message received")
	}
	rcancel()

	pid := p.Pid()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if GroupAlive(pid) {
		t.Fatalf("a process of group %d is alive after Stop", pid)
	}
}

func TestStorage(t *testing.T) {
	root := t.TempDir()
	s, err := StartStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Both forms of STORAGE_EMULATOR_HOST work with cloud.google.com/go/storage: Host() (the client
	// adds http://) and the URL.
	for i, host := range []string{s.Host(), s.URL()} {
		t.Setenv("STORAGE_EMULATOR_HOST", host)
		client, err := storage.NewClient(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bucket := client.Bucket("bucket-" + string(rune('a'+i)))
		if err := bucket.Create(ctx, "emulator-test", nil); err != nil {
			t.Fatalf("STORAGE_EMULATOR_HOST=%s: create bucket: %v", host, err)
		}
		want := bytes.Repeat([]byte("brain "), 1<<20) // 6 MB: more than one chunk of a resumable upload
		w := bucket.Object("dir/object.bin").NewWriter(ctx)
		w.ContentType = "application/octet-stream"
		if _, err := w.Write(want); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("STORAGE_EMULATOR_HOST=%s: write: %v", host, err)
		}
		r, err := bucket.Object("dir/object.bin").NewReader(ctx)
		if err != nil {
			t.Fatalf("STORAGE_EMULATOR_HOST=%s: read: %v", host, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("STORAGE_EMULATOR_HOST=%s: read %d bytes (%v), want %d", host, len(got), err, len(want))
		}
		if _, err := bucket.Object("missing").Attrs(ctx); !errors.Is(err, storage.ErrObjectNotExist) {
			t.Fatalf("attrs of a missing object: %v", err)
		}
		client.Close()
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	// The objects survive a restart on the same root.
	s2, err := StartStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Stop()
	t.Setenv("STORAGE_EMULATOR_HOST", s2.Host())
	client, err := storage.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	attrs, err := client.Bucket("bucket-a").Object("dir/object.bin").Attrs(ctx)
	if err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if attrs.Size != 6<<20 {
		t.Fatalf("after a restart the object has %d bytes", attrs.Size)
	}
}

// FailWrites fails the writes it names, as many times as it says, with its status, as the Go
// client sees a real failure; reads and other objects are untouched.
func TestStorageFaults(t *testing.T) {
	s, err := StartStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Setenv("STORAGE_EMULATOR_HOST", s.Host())
	client, err := storage.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	bucket := client.Bucket("faults")
	if err := bucket.Create(ctx, "emulator-test", nil); err != nil {
		t.Fatal(err)
	}
	write := func(name string) error {
		w := bucket.Object(name).NewWriter(ctx)
		w.ChunkSize = 0 // one request, as Predict writes its maps
		w.Write([]byte("map"))
		return w.Close()
	}
	s.FailWrites("maps/bad", -1, http.StatusForbidden)
	s.FailWrites("maps/flaky", 2, http.StatusServiceUnavailable)
	for i := range 3 {
		var gerr *googleapi.Error
		if err := write("maps/bad.nii.gz"); !errors.As(err, &gerr) || gerr.Code != http.StatusForbidden {
			t.Fatalf("write %d of a failing object: %v, want a 403", i, err)
		}
	}
	if err := write("maps/good.nii.gz"); err != nil {
		t.Fatalf("another object: %v", err)
	}
	// Two 503s, then the write goes through (the client does not retry a write without a
	// precondition: each try is one write).
	for i := range 2 {
		if err := write("maps/flaky.nii.gz"); err == nil {
			t.Fatalf("write %d of a flaky object succeeded", i)
		}
	}
	if err := write("maps/flaky.nii.gz"); err != nil {
		t.Fatalf("the third write of a flaky object: %v", err)
	}
	if n := s.FailedWrites(); n != 5 {
		t.Errorf("%d writes failed, want 5", n)
	}
	s.ClearFaults()
	if err := write("maps/bad.nii.gz"); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}
	if _, err := bucket.Object("maps/good.nii.gz").Attrs(ctx); err != nil {
		t.Fatalf("reading the written object's attributes: %v", err)
	}
}

func TestMissing(t *testing.T) {
	empty := t.TempDir()
	for name, start := range map[string]func(context.Context, Options) (*Process, error){
		"Firestore": StartFirestore, "Pub/Sub": StartPubSub,
	} {
		begin := time.Now()
		p, err := start(context.Background(), Options{SDKRoot: empty})
		if err == nil {
			p.Stop()
			t.Fatalf("%s started from an empty SDK root", name)
		}
		if d := time.Since(begin); d > time.Second {
			t.Errorf("%s: the error took %s", name, d)
		}
		msg := err.Error()
		for _, want := range []string{name + " emulator is not installed", "gcloud components install", "apt", "CLOUDSDK_ROOT"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not mention %q", name, msg, want)
			}
		}
	}
	if err := CheckFirestore(Options{SDKRoot: empty}); err == nil || !strings.Contains(err.Error(), "cloud-firestore-emulator") {
		t.Errorf("CheckFirestore: %v", err)
	}
	if err := CheckPubSub(Options{SDKRoot: empty}); err == nil || !strings.Contains(err.Error(), "pubsub-emulator") {
		t.Errorf("CheckPubSub: %v", err)
	}
	// CLOUDSDK_ROOT is the default SDK root.
	t.Setenv("CLOUDSDK_ROOT", empty)
	if err := CheckFirestore(Options{}); err == nil {
		t.Error("CheckFirestore ignores CLOUDSDK_ROOT")
	}
}

func TestMissingJava(t *testing.T) {
	// An SDK root with the launchers but a PATH without java.
	root := t.TempDir()
	for _, rel := range []string{firestoreSpec.rel, pubsubSpec.rel} {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", t.TempDir())
	t.Setenv("JAVA_HOME", "")
	t.Setenv("JAVA", "")
	for name, start := range map[string]func(context.Context, Options) (*Process, error){
		"Firestore": StartFirestore, "Pub/Sub": StartPubSub,
	} {
		begin := time.Now()
		_, err := start(context.Background(), Options{SDKRoot: root})
		if err == nil || !strings.Contains(err.Error(), "java is not installed") || !strings.Contains(err.Error(), "openjdk") {
			t.Errorf("%s without java: %v", name, err)
		}
		if d := time.Since(begin); d > time.Second {
			t.Errorf("%s: the error took %s", name, d)
		}
	}
}

func TestEarlyExitAndTimeout(t *testing.T) {
	// A launcher that fails at once: the error names the emulator and shows its output.
	root := t.TempDir()
	path := filepath.Join(root, firestoreSpec.rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho 'something is wrong' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := StartFirestore(context.Background(), Options{SDKRoot: root})
	if err == nil || !strings.Contains(err.Error(), "Firestore emulator exited") || !strings.Contains(err.Error(), "something is wrong") {
		t.Fatalf("early exit: %v", err)
	}

	// A launcher that never answers: the start timeout ends it, and its process group is gone.
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho 'starting slowly'\nsleep 600 &\nwait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	_, err = StartFirestore(context.Background(), Options{SDKRoot: root, Port: mustFreePort(t), StartTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "did not answer") || !strings.Contains(err.Error(), "starting slowly") {
		t.Fatalf("timeout: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("the timeout took %s", d)
	}
	if out, _ := exec.Command("pgrep", "-f", "sleep 600").Output(); len(out) > 0 {
		t.Errorf("the launcher's children are left: %s", out)
	}
}

func mustFreePort(t *testing.T) int {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestTail(t *testing.T) {
	tail := NewTail(3)
	io.WriteString(tail, "one\ntwo\nthr")
	io.WriteString(tail, "ee\nfour\nfive")
	if got, want := tail.String(), "  three\n  four\n  five"; got != want {
		t.Fatalf("tail = %q, want %q", got, want)
	}
}

// procComm is a process's command name (/proc/pid/comm).
func procComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// exportHolds reports whether the latest export in dir has a file containing s (the emulator's
// export files hold string values as they are).
func exportHolds(dir, s string) bool {
	meta := LatestExport(dir)
	if meta == "" {
		return false
	}
	found := false
	filepath.WalkDir(filepath.Dir(filepath.Dir(meta)), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(s)) {
				found = true
			}
		}
		return nil
	})
	return found
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// events collects a supervised emulator's events.
type events chan Event

func (e events) record(ev Event) { e <- ev }

func (e events) next(t *testing.T, want EventKind) Event {
	t.Helper()
	select {
	case ev := <-e:
		if ev.Kind != want {
			t.Fatalf("event %+v, want kind %d", ev, want)
		}
		return ev
	case <-time.After(90 * time.Second):
		t.Fatalf("no event of kind %d within 90 s", want)
	}
	return Event{}
}

// A supervised, persisted Firestore emulator killed with SIGKILL is started again on its port with
// the documents of its latest export, which it took while it ran.
func TestFirestoreCrashRestartsWithItsDocuments(t *testing.T) {
	dir := t.TempDir()
	ev := make(events, 10)
	p := startFirestore(t, Options{ProjectID: "emulator-test", Restart: true, Events: ev.record,
		Persist: dir, PersistEvery: 200 * time.Millisecond})
	// The JVM is the emulator's process, not a launcher script that forked it.
	if comm := procComm(p.Pid()); comm != "java" {
		t.Errorf("the emulator's process is %q, want java", comm)
	}
	value := fmt.Sprintf("kept-%d", time.Now().UnixNano())
	firestoreRoundTrip(t, p.Host(), value)
	start := time.Now()
	waitFor(t, "an export holding the document", 30*time.Second, func() bool { return exportHolds(dir, value) })
	t.Logf("exported within %.1f s of the write", time.Since(start).Seconds())

	port, pid := p.Port(), p.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	exited := ev.next(t, Exited)
	if exited.Err == nil || !strings.Contains(exited.Err.Error(), "signal: killed") || exited.Delay <= 0 {
		t.Errorf("exit event %+v, want signal: killed and a restart delay", exited)
	}
	start = time.Now()
	ev.next(t, Restarted)
	t.Logf("restarted %.1f s after the crash (delay %s)", time.Since(start).Seconds(), exited.Delay)
	if p.Port() != port || p.Pid() == pid || p.Pid() == 0 {
		t.Errorf("after the restart: port %d (was %d), pid %d (was %d)", p.Port(), port, p.Pid(), pid)
	}
	if GroupAlive(pid) {
		t.Errorf("the killed emulator's group %d is alive", pid)
	}
	// The document is back (read it; write nothing).
	t.Setenv("FIRESTORE_EMULATOR_HOST", p.Host())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := firestore.NewClient(ctx, "emulator-test")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	snap, err := client.Collection("things").Doc("one").Get(ctx)
	if err != nil {
		t.Fatalf("the document after the restart: %v", err)
	}
	if got, _ := snap.DataAt("value"); got != value {
		t.Fatalf("after the restart the document holds %v, want %q", got, value)
	}
	// Stop exports once more and ends it; nothing restarts it.
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-ev:
		t.Errorf("event after Stop: %+v", e)
	case <-time.After(time.Second):
	}
	if !exportHolds(dir, value) {
		t.Error("the export after Stop lost the document")
	}
}

// A supervised Pub/Sub emulator killed with SIGKILL is started again on its port.
func TestPubSubCrashRestarts(t *testing.T) {
	ev := make(events, 10)
	p, err := StartPubSub(context.Background(), Options{Restart: true, Events: ev.record})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	// The launcher exec's java: the JVM is the process started, so it dies with its parent.
	if comm := procComm(p.Pid()); comm != "java" {
		t.Errorf("the emulator's process is %q, want java", comm)
	}
	port := p.Port()
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev.next(t, Exited)
	ev.next(t, Restarted)
	if p.Port() != port {
		t.Errorf("restarted on port %d, was %d", p.Port(), port)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, code, err := HTTPGet(ctx, http.DefaultClient, "http://"+p.Host()+"/v1/projects/emulator-test/topics"); err != nil || code != 200 {
		t.Errorf("after the restart: %d %v", code, err)
	}
}

// The helper process of TestEmulatorsDieWithTheirParent: it starts both emulators from a
// goroutine locked to its thread that then ends (so that thread ends too), prints their process
// ids and ports, and waits to be killed.
func emulatorsHelper() {
	type started struct {
		p   *Process
		err error
	}
	out := make(chan []started)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		fs, err1 := StartFirestore(context.Background(), Options{})
		ps, err2 := StartPubSub(context.Background(), Options{})
		out <- []started{{fs, err1}, {ps, err2}}
	}()
	ps := <-out
	for _, s := range ps {
		if s.err != nil {
			fmt.Println("error", s.err)
			os.Exit(1)
		}
	}
	time.Sleep(time.Second) // the starting thread is gone by now
	fmt.Println("ready", ps[0].p.Pid(), ps[0].p.Host(), ps[1].p.Pid(), ps[1].p.Host())
	select {}
}

func TestMain(m *testing.M) {
	if os.Getenv("EMULATORS_TEST_HELPER") == "1" {
		emulatorsHelper()
	}
	os.Exit(m.Run())
}

// Killed with SIGKILL, a process that started the emulators takes them with it: the JVMs too, even
// though the thread that asked for them is long gone.
func TestEmulatorsDieWithTheirParent(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EMULATORS_TEST_HELPER=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line := make(chan string, 1)
	go func() {
		b := make([]byte, 4096)
		var got []byte
		for !bytes.Contains(got, []byte("\n")) {
			n, err := stdout.Read(b)
			got = append(got, b[:n]...)
			if err != nil {
				break
			}
		}
		line <- strings.TrimSpace(string(got))
	}()
	var f []string
	select {
	case l := <-line:
		f = strings.Fields(l)
	case <-time.After(120 * time.Second):
		t.Fatal("the helper did not start the emulators within 120 s")
	}
	if len(f) != 5 || f[0] != "ready" {
		t.Fatalf("helper: %q", f)
	}
	var pids []int
	for _, s := range []string{f[1], f[3]} {
		pid, _ := strconv.Atoi(s)
		pids = append(pids, pid)
		if !GroupAlive(pid) {
			t.Fatalf("emulator %d died with the thread that started it", pid)
		}
	}
	for _, host := range []string{f[2], f[4]} {
		if c, err := net.DialTimeout("tcp", host, time.Second); err != nil {
			t.Fatalf("an emulator does not answer on %s while its parent runs: %v", host, err)
		} else {
			c.Close()
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for i, pid := range pids {
		if !WaitGroupGone(pid, 20*time.Second) {
			var left []string
			for _, m := range GroupMembers(pid) {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", m))
				left = append(left, fmt.Sprintf("%d %s", m, bytes.ReplaceAll(cmdline, []byte{0}, []byte(" "))))
			}
			t.Errorf("the emulator's process group %d outlived its killed parent:\n%s", pid, strings.Join(left, "\n"))
		}
		host := f[2+2*i]
		waitFor(t, "the emulator's port "+host+" closed", 20*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", host, time.Second)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
	}
}
