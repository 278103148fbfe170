// Package emulators runs the local stand-ins of the Google Cloud services the functions use:
// Google's Firestore and Pub/Sub emulators (Java programs of the Google Cloud CLI) as child
// processes, and fake-gcs-server for Cloud Storage in process. The functions reach them with the
// same client libraries as in the cloud, through FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST and
// STORAGE_EMULATOR_HOST (each set to Host()).
//
// Each emulator runs in its own process group, so that Stop also ends every process it started, and
// dies with this process (SysProcAttr.Pdeathsig, see StartCmd): the Firestore emulator's Java
// virtual machine is started directly rather than through its launcher script, which would fork it
// and leave it running. A supervised emulator (Options.Restart) is started again on the same port
// when it crashes; the Firestore emulator's documents can be kept in a directory while it runs and
// across restarts (Options.Persist). A missing emulator or a missing Java runtime is reported at
// once with how to install it; an emulator that does not answer within the start timeout is an
// error that ends with its last lines of output.
package emulators

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultSDKRoot is where the Google Cloud CLI lives on this machine image (Debian's
// google-cloud-cli package); CLOUDSDK_ROOT overrides it.
const DefaultSDKRoot = "/usr/lib/google-cloud-sdk"

// DefaultStartTimeout bounds the wait for an emulator to answer.
const DefaultStartTimeout = 60 * time.Second

// stopGrace is how long Stop waits after SIGTERM before it kills the process group.
const stopGrace = 10 * time.Second

// Options configures an emulator.
type Options struct {
	// Port to listen on (127.0.0.1); 0 picks a free one.
	Port int
	// SDKRoot is the Google Cloud CLI root; empty means $CLOUDSDK_ROOT or DefaultSDKRoot.
	SDKRoot string
	// Log receives the emulator's output (stdout and stderr); nil discards it. The last lines are
	// kept either way for error messages (Process.Tail).
	Log io.Writer
	// ProjectID is passed to the Firestore emulator as --project_id when set (the emulator serves
	// every project either way). Ignored by Pub/Sub.
	ProjectID string
	// ImportData is a Firestore export (its .overall_export_metadata file) the Firestore emulator
	// starts from; see ExportFirestore. Ignored by Pub/Sub.
	ImportData string
	// StartTimeout bounds the wait until the emulator answers; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// Env is added to the emulator's environment.
	Env []string

	// Restart supervises the emulator: when it exits without Stop or Restart ending it (a crash,
	// a kill), it is started again on the same port after a delay that starts at 0.5 s and
	// doubles up to 10 s (back to 0.5 s once it has run for a minute), until it answers again or
	// Stop is called. Events says what happens.
	Restart bool
	// Events receives what happens to the emulator while it runs: crashes, restarts, failed
	// exports (see EventKind). It is called from the emulator's own goroutines, one call at a
	// time, with no lock held; nil ignores them.
	Events func(Event)
	// Persist (Firestore only; needs ProjectID) is a directory that keeps the emulator's
	// documents while it runs and across runs: every start and restart imports the latest export
	// found there (ImportData is then ignored), and while the emulator runs its documents are
	// exported there every PersistEvery and when Stop ends it, each export replacing the previous
	// one only once it is complete. An emulator that crashes loses the writes of at most
	// PersistEvery.
	Persist string
	// PersistEvery is the period of the exports to Persist; 0 means DefaultPersistEvery.
	PersistEvery time.Duration
}

// DefaultPersistEvery is how often a persisted Firestore emulator exports its documents.
const DefaultPersistEvery = 5 * time.Second

// EventKind is what happened to a running emulator.
type EventKind int

const (
	// Exited: the emulator exited on its own; Err is how (as exec reports it, "signal: killed"),
	// and with Options.Restart Delay is when it is started again.
	Exited EventKind = iota
	// Restarted: a supervised emulator answers again after a crash.
	Restarted
	// RestartFailed: a supervised emulator did not start again (Err); Delay is when the next
	// attempt is.
	RestartFailed
	// PersistFailed: an export to Options.Persist failed (Err); reported once until one works
	// again. The previous export stays.
	PersistFailed
)

// Event is what Options.Events receives.
type Event struct {
	Kind  EventKind
	Err   error
	Delay time.Duration
}

func (o Options) sdkRoot() string {
	if o.SDKRoot != "" {
		return o.SDKRoot
	}
	if r := os.Getenv("CLOUDSDK_ROOT"); r != "" {
		return r
	}
	return DefaultSDKRoot
}

func (o Options) startTimeout() time.Duration {
	if o.StartTimeout > 0 {
		return o.StartTimeout
	}
	return DefaultStartTimeout
}

// spec describes one kind of emulator.
type spec struct {
	name      string // "Firestore emulator"
	component string // gcloud component
	debian    string // Debian package in Google's apt repository
	rel       string // launcher, relative to the SDK root
	// javaFromHome: the launcher takes Java from JAVA_HOME when set (the Gradle-style Pub/Sub
	// script); otherwise from $JAVA or PATH (the Firestore script).
	javaFromHome bool
	args         func(port int, o Options) []string
	ready        func(ctx context.Context, client *http.Client, host string) bool
	// direct, when set, is how to start the emulator's Java virtual machine itself instead of its
	// launcher script (ok false: run the launcher). A launcher that forks java rather than
	// exec'ing it leaves the JVM running when the launcher is killed.
	direct func(launcher string) (path string, args []string, ok bool)
}

var firestoreSpec = spec{
	name:      "Firestore emulator",
	component: "cloud-firestore-emulator",
	debian:    "google-cloud-cli-firestore-emulator",
	rel:       "platform/cloud-firestore-emulator/cloud_firestore_emulator",
	args: func(port int, o Options) []string {
		a := []string{"start", "--host=127.0.0.1", "--port=" + strconv.Itoa(port)}
		if o.ProjectID != "" {
			a = append(a, "--project_id="+o.ProjectID)
		}
		if o.ImportData != "" {
			a = append(a, "--import-data="+o.ImportData)
		}
		return a
	},
	// The Firestore emulator answers GET / with "Ok".
	ready: func(ctx context.Context, client *http.Client, host string) bool {
		body, code, err := HTTPGet(ctx, client, "http://"+host+"/")
		return err == nil && code == http.StatusOK && strings.TrimSpace(body) == "Ok"
	},
	direct: firestoreJava,
}

// firestoreMain finds the main class in the Firestore launcher script, which runs
// `${JAVA:="java"} ${JVM_FLAGS} -cp "${FIRESTORE_JAR}" com.google.cloud...CloudFirestore $*`
// and waits for it: the JVM is its child, not the process this package starts.
var firestoreMain = regexp.MustCompile(`-cp\s+"\$\{FIRESTORE_JAR\}"\s+(com\.google\.[A-Za-z0-9_.]+)`)

// firestoreJava is the launcher's command, run directly: java from $JAVA or PATH with the jar
// next to the launcher. Anything else (another layout, a stand-in script in tests) runs the
// launcher.
func firestoreJava(launcher string) (string, []string, bool) {
	script, err := os.ReadFile(launcher)
	if err != nil {
		return "", nil, false
	}
	m := firestoreMain.FindSubmatch(script)
	jar := filepath.Join(filepath.Dir(launcher), "cloud-firestore-emulator.jar")
	if m == nil || !bytes.Contains(script, []byte("cloud-firestore-emulator.jar")) {
		return "", nil, false
	}
	if _, err := os.Stat(jar); err != nil {
		return "", nil, false
	}
	java := os.Getenv("JAVA")
	if java == "" {
		java = "java"
	}
	path, err := exec.LookPath(java)
	if err != nil {
		return "", nil, false
	}
	// The launcher's JVM_FLAGS: the emulator only supports English messages.
	return path, []string{"-Duser.language=en", "-cp", jar, string(m[1])}, true
}

var pubsubSpec = spec{
	name:         "Pub/Sub emulator",
	component:    "pubsub-emulator",
	debian:       "google-cloud-cli-pubsub-emulator",
	rel:          "platform/pubsub-emulator/bin/cloud-pubsub-emulator",
	javaFromHome: true,
	args: func(port int, _ Options) []string {
		return []string{"--host=127.0.0.1", "--port=" + strconv.Itoa(port)}
	},
	// The Pub/Sub emulator serves the REST API next to gRPC on the same port; listing the topics
	// of any project answers 200 once it is up.
	ready: func(ctx context.Context, client *http.Client, host string) bool {
		_, code, err := HTTPGet(ctx, client, "http://"+host+"/v1/projects/emulator-check/topics")
		return err == nil && code == http.StatusOK
	},
}

// HTTPGet fetches the start of a page: enough to tell whether a local server is up.
func HTTPGet(ctx context.Context, client *http.Client, url string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return string(body), resp.StatusCode, err
}

// check reports, without starting anything, whether the emulator and Java are there.
func (s spec) check(o Options) (launcher string, err error) {
	launcher = filepath.Join(o.sdkRoot(), s.rel)
	if info, statErr := os.Stat(launcher); statErr != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("the %s is not installed (no executable %s): install the Google Cloud CLI and run "+
			"`gcloud components install %s` (or the Debian package %s from Google's apt repository), "+
			"or set CLOUDSDK_ROOT to the Google Cloud CLI that has it", s.name, launcher, s.component, s.debian)
	}
	if err := s.checkJava(); err != nil {
		return "", err
	}
	return launcher, nil
}

func (s spec) checkJava() error {
	install := fmt.Sprintf("the %s needs a Java runtime (11 or newer): install one, e.g. `apt-get install openjdk-17-jre-headless`", s.name)
	if s.javaFromHome {
		if home := os.Getenv("JAVA_HOME"); home != "" {
			java := filepath.Join(home, "bin", "java")
			if info, err := os.Stat(java); err != nil || info.Mode()&0o111 == 0 {
				return fmt.Errorf("JAVA_HOME is %s but it has no bin/java: %s, or set JAVA_HOME to the Java installation", home, install)
			}
			return nil
		}
	} else if j := os.Getenv("JAVA"); j != "" {
		if _, err := exec.LookPath(j); err != nil {
			return fmt.Errorf("JAVA is %s but that is not an executable: %s, or unset JAVA", j, install)
		}
		return nil
	}
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("java is not installed (not on PATH): %s", install)
	}
	return nil
}

// CheckFirestore reports whether the Firestore emulator and Java are installed, with how to
// install what is missing.
func CheckFirestore(o Options) error { _, err := firestoreSpec.check(o); return err }

// CheckPubSub reports whether the Pub/Sub emulator and Java are installed, with how to install
// what is missing.
func CheckPubSub(o Options) error { _, err := pubsubSpec.check(o); return err }

// Process is a running emulator.
type Process struct {
	spec     spec
	opt      Options
	launcher string
	tail     *Tail
	log      io.Writer // tail + Options.Log; one value so that exec writes from one goroutine

	mu   sync.Mutex // guards port, cur, and serialises Stop/Restart and the supervisor's restarts
	port int
	cur  *run // the current launch: running, or crashed and not yet started again

	crashOnce sync.Once
	crashed   chan struct{}

	supMu     sync.Mutex // guards supCancel and backoff
	supCancel context.CancelFunc
	backoff   Backoff
	eventMu   sync.Mutex // one Events call at a time

	persistMu sync.Mutex // serialises exports, and the import of a launch
	saved     string     // digest of the export in Persist/current
	persistOK bool       // the last export worked (a failure is reported once)
}

// run is one launch of the emulator.
type run struct {
	cmd         *exec.Cmd
	started     time.Time
	done        chan struct{} // closed when the process has exited and its output is drained
	err         error         // cmd.Wait's result, valid after done
	intentional atomic.Bool   // Stop ended it
}

func (r *run) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// StartFirestore starts Google's Firestore emulator and waits until it answers.
func StartFirestore(ctx context.Context, o Options) (*Process, error) {
	return start(ctx, firestoreSpec, o)
}

// StartPubSub starts Google's Pub/Sub emulator and waits until it answers.
func StartPubSub(ctx context.Context, o Options) (*Process, error) {
	o.Persist = ""
	return start(ctx, pubsubSpec, o)
}

func start(ctx context.Context, s spec, o Options) (*Process, error) {
	launcher, err := s.check(o)
	if err != nil {
		return nil, err
	}
	if o.Port < 0 || o.Port > 65535 {
		return nil, fmt.Errorf("%s: port %d is out of range", s.name, o.Port)
	}
	if o.Persist != "" {
		if o.ProjectID == "" {
			return nil, fmt.Errorf("%s: keeping the documents in %s needs the project id (Options.ProjectID)", s.name, o.Persist)
		}
		if err := os.MkdirAll(o.Persist, 0o755); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	p := &Process{spec: s, opt: o, launcher: launcher, tail: NewTail(40), crashed: make(chan struct{}), backoff: DefaultBackoff()}
	p.log = p.tail
	if o.Log != nil {
		p.log = &teeWriter{a: p.tail, b: o.Log}
	}
	// A free port chosen here can be taken by someone else before the emulator binds it; then
	// the emulator exits early and another port is tried.
	const attempts = 3
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 1; ; i++ {
		port := o.Port
		if port == 0 {
			if port, err = FreePort(); err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
		}
		err = p.launch(ctx, port)
		if err == nil {
			return p, nil
		}
		var early *exitedEarly
		if o.Port != 0 || i == attempts || !errors.As(err, &early) {
			return nil, err
		}
	}
}

type exitedEarly struct{ msg string }

func (e *exitedEarly) Error() string { return e.msg }

// command is how to run the emulator on port: its Java virtual machine directly where the spec
// knows how, else its launcher.
func (p *Process) command(port int, o Options) *exec.Cmd {
	path, args := p.launcher, p.spec.args(port, o)
	if p.spec.direct != nil {
		if java, pre, ok := p.spec.direct(p.launcher); ok {
			path, args = java, append(pre, args...)
		}
	}
	cmd := exec.Command(path, args...)
	if len(o.Env) > 0 {
		cmd.Env = append(os.Environ(), o.Env...)
	}
	return cmd
}

// launch starts the emulator on port and waits until it answers; on success it is p.cur. p.mu is
// held by the caller (or p is not shared yet).
func (p *Process) launch(ctx context.Context, port int) error {
	s := p.spec
	host := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// An emulator that cannot bind its port exits, but until then something else could answer
	// our readiness check; refuse a port that is visibly taken.
	if ln, err := net.Listen("tcp", host); err != nil {
		return &exitedEarly{fmt.Sprintf("the %s cannot listen on %s: %v", s.name, host, err)}
	} else {
		ln.Close()
	}

	o := p.opt
	if o.Persist != "" {
		// No export runs while the emulator starts from the latest one.
		p.persistMu.Lock()
		defer p.persistMu.Unlock()
		o.ImportData, p.saved = "", ""
		if meta := latestExport(o.Persist); meta != "" {
			o.ImportData = meta
			p.saved, _ = exportDigest(filepath.Dir(filepath.Dir(meta)))
		}
	}
	cmd := p.command(port, o)
	cmd.Dir = os.TempDir()
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true, // its own group: Stop signals the emulator and anything it started together
		// If this process dies without stopping it, the emulator goes too (see StartCmd).
		Pdeathsig: syscall.SIGKILL,
	}
	// After the emulator exits, wait this long for the output to drain (a child may hold the pipe).
	cmd.WaitDelay = 3 * stopGrace
	fmt.Fprintf(p.log, "$ %s %s\n", cmd.Path, strings.Join(cmd.Args[1:], " "))
	if err := StartCmd(cmd); err != nil {
		return fmt.Errorf("starting the %s (%s): %w", s.name, cmd.Path, err)
	}
	r := &run{cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()

	timeout := p.opt.startTimeout()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.ready(wctx, client, host) {
			if !r.exited() { // else something else answered, and ours is gone
				p.port, p.cur = port, r
				go p.watch(r)
				if o.Persist != "" {
					p.persistOK = true
					go p.persistLoop(r, host)
				}
				return nil
			}
		}
		select {
		case <-r.done:
			return &exitedEarly{fmt.Sprintf("the %s exited before it answered on %s (%v); its last output:\n%s",
				s.name, host, r.err, p.tail.String())}
		case <-wctx.Done():
			r.intentional.Store(true)
			stopRun(r)
			if ctx.Err() != nil {
				return fmt.Errorf("starting the %s: %w", s.name, ctx.Err())
			}
			return fmt.Errorf("the %s did not answer on %s within %s; its last output:\n%s",
				s.name, host, timeout, p.tail.String())
		case <-tick.C:
		}
	}
}

func (p *Process) emit(e Event) {
	if p.opt.Events == nil {
		return
	}
	p.eventMu.Lock()
	defer p.eventMu.Unlock()
	p.opt.Events(e)
}

// watch waits for a launch that answered to end, and reports (and with Options.Restart, repairs)
// an end that Stop or Restart did not ask for.
func (p *Process) watch(r *run) {
	<-r.done
	if r.intentional.Load() {
		return
	}
	p.crashOnce.Do(func() { close(p.crashed) })
	err := r.err
	if err == nil {
		err = errors.New("exit status 0")
	}
	fmt.Fprintf(p.log, "[emulators] the %s exited on its own: %v\n", p.spec.name, err)
	if !p.opt.Restart {
		p.emit(Event{Kind: Exited, Err: err})
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.supMu.Lock()
	if p.supCancel != nil {
		p.supCancel()
	}
	p.supCancel = cancel
	delay := p.backoff.Next(time.Since(r.started))
	p.supMu.Unlock()
	p.emit(Event{Kind: Exited, Err: err, Delay: delay})
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		p.mu.Lock()
		if p.cur != r || ctx.Err() != nil { // Stop or Restart took over
			p.mu.Unlock()
			return
		}
		err := p.relaunchLocked(ctx)
		p.mu.Unlock()
		if err == nil {
			fmt.Fprintf(p.log, "[emulators] the %s is back on port %d\n", p.spec.name, p.Port())
			p.emit(Event{Kind: Restarted})
			return
		}
		if ctx.Err() != nil {
			return
		}
		p.supMu.Lock()
		delay = p.backoff.Next(0)
		p.supMu.Unlock()
		fmt.Fprintf(p.log, "[emulators] the %s did not start again: %v\n", p.spec.name, err)
		p.emit(Event{Kind: RestartFailed, Err: err, Delay: delay})
	}
}

// cancelSupervisor ends a pending restart after a crash: Stop and Restart take over.
func (p *Process) cancelSupervisor() {
	p.supMu.Lock()
	defer p.supMu.Unlock()
	if p.supCancel != nil {
		p.supCancel()
		p.supCancel = nil
	}
}

// stopRun ends a launch: SIGTERM to its process group, SIGKILL after the grace period.
func stopRun(r *run) error {
	if r.exited() && !GroupAlive(r.cmd.Process.Pid) {
		return nil // nothing left to signal (and the group id may be someone else's by now)
	}
	return StopGroup(r.cmd.Process.Pid, r.done, stopGrace)
}

// StopGroup ends the process group pgid whose leader closes done when it has been waited for:
// SIGTERM, then SIGKILL after grace, then waits for every member to be gone. The emulators and the
// local stack's function processes stop this one way.
func StopGroup(pgid int, done <-chan struct{}, grace time.Duration) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
		WaitGroupGone(pgid, 3*time.Second)
		return nil
	case <-time.After(grace):
	}
	// The leader may be gone (and reaped) while a child (java) is still in the group; the group id
	// stays reserved while any member lives, so this reaches only our processes.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-done:
		WaitGroupGone(pgid, 3*time.Second)
		return nil
	case <-time.After(2 * grace):
		return fmt.Errorf("process group %d did not exit after SIGKILL", pgid)
	}
}

// Name is "Firestore emulator" or "Pub/Sub emulator".
func (p *Process) Name() string { return p.spec.name }

// Host is "127.0.0.1:port", the value for FIRESTORE_EMULATOR_HOST or PUBSUB_EMULATOR_HOST.
func (p *Process) Host() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hostLocked()
}

// Port is the emulator's port.
func (p *Process) Port() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.port
}

// Pid is the process id of the running emulator (also its process group id), 0 when it is not
// running.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.exited() {
		return 0
	}
	return p.cur.cmd.Process.Pid
}

// Tail is the emulator's last lines of output.
func (p *Process) Tail() string { return p.tail.String() }

// Crashed is closed the first time the emulator exits without Stop (or Restart) ending it.
func (p *Process) Crashed() <-chan struct{} { return p.crashed }

// Stop ends the emulator and every process it started, and a pending restart after a crash. A
// persisted Firestore emulator exports its documents first. Stopping a stopped emulator does
// nothing.
func (p *Process) Stop() error {
	p.cancelSupervisor()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopLocked()
}

func (p *Process) stopLocked() error {
	r := p.cur
	if r == nil {
		return nil
	}
	if p.opt.Persist != "" && !r.exited() {
		if err := p.persist(r, p.hostLocked()); err != nil {
			fmt.Fprintf(p.log, "[emulators] exporting the documents before stopping: %v\n", err)
		}
	}
	p.cur = nil
	r.intentional.Store(true)
	if err := stopRun(r); err != nil {
		return fmt.Errorf("stopping the %s: %w", p.spec.name, err)
	}
	return nil
}

// Restart stops the emulator if it runs and starts it again on the same port. The emulators keep
// their data in memory: a restarted emulator is empty, unless it persists them (Options.Persist),
// then it starts from its latest export, taken when it stopped.
func (p *Process) Restart(ctx context.Context) error {
	p.cancelSupervisor()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.stopLocked(); err != nil {
		return err
	}
	return p.relaunchLocked(ctx)
}

// relaunchLocked starts the emulator on its port again, with p.mu held.
func (p *Process) relaunchLocked(ctx context.Context) error {
	// The old process has just released the port; give the kernel a moment if it is still busy.
	var err error
	for i := 0; i < 20; i++ {
		if err = p.launch(ctx, p.port); err == nil {
			return nil
		}
		var early *exitedEarly
		if !errors.As(err, &early) || !strings.Contains(err.Error(), "cannot listen") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
	return err
}

func (p *Process) hostLocked() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// WaitGroupGone waits (at most max) until no live process of the process group pgid is left. The
// output pipe closes as the last process exits, a moment before the system has reaped it (java,
// orphaned by its launcher, is reaped by init, which may take a while); a zombie counts as gone.
func WaitGroupGone(pgid int, max time.Duration) bool {
	deadline := time.Now().Add(max)
	for {
		if !GroupAlive(pgid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// GroupAlive reports whether a process of the process group pgid is alive (not a zombie), from
// /proc; where /proc cannot be read, whether the group exists at all.
func GroupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return true
	}
	return len(GroupMembers(pgid)) > 0
}

// GroupMembers are the live processes of the process group pgid, from /proc. A process whose
// main thread has exited while others still run (a JVM being killed shows so for a moment, its
// sockets still open) is alive; one whose threads have all exited is a zombie, and not.
func GroupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, pg, ok := procStat("/proc/" + e.Name() + "/stat")
		if !ok || pg != pgid {
			continue
		}
		if state == "Z" || state == "X" {
			if !anyThreadAlive(pid) {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// procStat reads the state and process group of a /proc/…/stat file.
func procStat(path string) (state string, pgrp int, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 3 {
		return "", 0, false
	}
	pg, err := strconv.Atoi(f[2])
	return f[0], pg, err == nil
}

func anyThreadAlive(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, t := range tasks {
		if state, _, ok := procStat(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name())); ok && state != "Z" && state != "X" {
			return true
		}
	}
	return false
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

type teeWriter struct{ a, b io.Writer }

// Write never fails: a failing log must not stall the emulator on a full pipe.
func (t *teeWriter) Write(p []byte) (int, error) {
	t.a.Write(p)
	t.b.Write(p)
	return len(p), nil
}

// ExportFirestore asks a running Firestore emulator to export a project's database into dir (which
// it creates), and returns the export's metadata file, the argument of Options.ImportData. The
// emulator keeps its data in memory only; this is how data outlives it.
func ExportFirestore(ctx context.Context, host, projectID, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	body := fmt.Sprintf(`{"database":"projects/%s/databases/(default)","export_directory":%q}`, projectID, abs)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+"/emulator/v1/projects/"+projectID+":export", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("firestore export: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("firestore export: %s: %s", resp.Status, msg)
	}
	found, _ := filepath.Glob(filepath.Join(abs, "*", "*.overall_export_metadata"))
	if len(found) != 1 {
		return "", fmt.Errorf("firestore export: %d metadata files in %s, want 1", len(found), abs)
	}
	return found[0], nil
}
