package localstack

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
)

// child is a supervised function process, `FunctionBinary function NAME` on a fixed port: when it
// exits on its own it is started again on the same port after a backoff (0.5 s doubling to 10 s,
// back to 0.5 s after a minute of health), until Stop.
type child struct {
	s     *Stack
	name  string // "Query" or "Predict"
	port  int
	ready func(ctx context.Context) (ok bool, last string) // does it answer?
	tail  *emulators.Tail
	out   *childOutput
	up    *gate // open while it answers

	mu       sync.Mutex
	cur      *childRun
	stopping bool
	stopCh   chan struct{} // closed by stop
	loopDone chan struct{} // closed when supervise returns; nil before it started
	backoff  emulators.Backoff
}

// childRun is one process of a child.
type childRun struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}
	err     error // cmd.Wait's result, valid after done
}

func (s *Stack) newChild(name string, port int, logFile *os.File) *child {
	c := &child{s: s, name: name, port: port, tail: emulators.NewTail(30), up: newGate(),
		stopCh: make(chan struct{}), backoff: emulators.DefaultBackoff()}
	c.out = newChildOutput(s, "["+strings.ToLower(name)+"] ", logFile, c.tail)
	return c
}

// launch starts a process of the function with the stack's environment.
func (c *child) launch() (*childRun, error) {
	s := c.s
	cmd := exec.Command(s.opt.FunctionBinary, "function", c.name)
	env := append(os.Environ(), s.Env()...)
	env = append(env, "FUNCTION_TARGET="+c.name, "PORT="+strconv.Itoa(c.port), runEnv+"="+s.runID)
	env = append(env, s.opt.ExtraEnv...)
	cmd.Env = env
	cmd.Stdout = c.out
	cmd.Stderr = c.out
	// Its own process group, which stop ends as a whole; and it dies with this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return nil, errors.New("stopping")
	}
	if err := emulators.StartCmd(cmd); err != nil {
		return nil, fmt.Errorf("starting the %s function (%s): %w", c.name, s.opt.FunctionBinary, err)
	}
	r := &childRun{cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		c.out.flush()
		close(r.done)
	}()
	c.cur = r
	s.run.setChild(c.name+" function", cmd.Process.Pid)
	return r, nil
}

// start starts the function and waits until it answers; the stack's Start calls it.
func (c *child) start(ctx context.Context) error {
	r, err := c.launch()
	if err != nil {
		return err
	}
	if err := c.wait(ctx, r); err != nil {
		return err
	}
	c.up.open()
	c.loopDone = make(chan struct{})
	go c.supervise()
	return nil
}

// wait waits until the function answers, fails if it exits or does not answer within
// StartTimeout.
func (c *child) wait(ctx context.Context, r *childRun) error {
	timeout := c.s.opt.StartTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		ok, l := c.ready(ctx)
		if ok {
			return nil
		}
		last = l
		select {
		case <-r.done:
			return c.exitError(r)
		case <-ctx.Done():
			return fmt.Errorf("the %s function did not get ready on 127.0.0.1:%d within %s (%s); its last output:\n%s",
				c.name, c.port, timeout, last, c.tail.String())
		case <-tick.C:
		}
	}
}

func (c *child) exitError(r *childRun) error {
	return fmt.Errorf("the %s function (process %d) exited: %v; its last output:\n%s", c.name, r.cmd.Process.Pid, r.err, c.tail.String())
}

// supervise restarts the function whenever it exits on its own, until stop.
func (c *child) supervise() {
	defer close(c.loopDone)
	// The supervisor's waits end when stop is called.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		c.mu.Lock()
		r := c.cur
		c.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			return
		}
		delay := c.backoff.Next(time.Since(r.started))
		c.up.close(time.Now().Add(delay))
		c.s.say("[localstack] %s exited (%s); restarting in %s", c.name, c.describeExit(r), seconds(delay))
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			r, err := c.launch()
			if err == nil {
				err = c.wait(ctx, r)
			}
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				c.up.open()
				c.s.say("[localstack] %s is back", c.name)
				c.s.backAgain()
				break
			}
			if r != nil {
				c.stopRun(r)
			}
			delay = c.backoff.Next(0)
			c.up.close(time.Now().Add(delay))
			c.s.say("[localstack] %s did not start again (%s); trying again in %s", c.name, firstLine(err.Error()), seconds(delay))
		}
	}
}

// describeExit is how a process ended: "signal: killed", or its exit status and, for a Go panic,
// the panic's line, and where its whole output is.
func (c *child) describeExit(r *childRun) string {
	how := "exit status 0"
	if r.err != nil {
		how = r.err.Error()
	}
	var exitErr *exec.ExitError
	if errors.As(r.err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return how
		}
	}
	for _, line := range strings.Split(c.tail.String(), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
			how += ": " + line
			break
		}
	}
	return how + "; its output is in " + c.out.path
}

func (c *child) stopRun(r *childRun) error {
	select {
	case <-r.done:
		if !emulators.GroupAlive(r.cmd.Process.Pid) {
			return nil
		}
	default:
	}
	if err := emulators.StopGroup(r.cmd.Process.Pid, r.done, 5*time.Second); err != nil {
		return fmt.Errorf("the %s function: %w", c.name, err)
	}
	return nil
}

// stop ends the function (SIGTERM to its process group, SIGKILL after 5 s) and its supervisor.
func (c *child) stop() error {
	c.mu.Lock()
	if !c.stopping {
		c.stopping = true
		close(c.stopCh)
	}
	r := c.cur
	c.mu.Unlock()
	c.up.close(time.Time{})
	var err error
	if r != nil {
		err = c.stopRun(r)
	}
	if c.loopDone != nil {
		<-c.loopDone
	}
	return err
}

// pid is the process id (and process group) of the running function, 0 if none runs.
func (c *child) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return 0
	}
	select {
	case <-c.cur.done:
		return 0
	default:
		return c.cur.cmd.Process.Pid
	}
}

// httpReady is a readiness check: GET path answers 200.
func httpReady(port int, path string) func(context.Context) (bool, string) {
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	client := &http.Client{Timeout: 10 * time.Second}
	return func(ctx context.Context) (bool, string) {
		body, code, err := emulators.HTTPGet(ctx, client, url)
		switch {
		case err != nil:
			return false, "GET " + path + ": " + err.Error()
		case code == http.StatusOK:
			return true, ""
		default:
			return false, fmt.Sprintf("GET %s: %d %s", path, code, strings.TrimSpace(body))
		}
	}
}

// tcpReady is a readiness check: the port accepts connections.
func tcpReady(port int) func(context.Context) (bool, string) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return func(ctx context.Context) (bool, string) {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	}
}

// gate is open while a child answers; while it is closed, until is when the next start is.
type gate struct {
	mu    sync.Mutex
	isUp  bool
	ch    chan struct{} // closed when the gate opens
	until time.Time
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.isUp {
		g.isUp = true
		close(g.ch)
	}
}

func (g *gate) close(until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.isUp {
		g.isUp = false
		g.ch = make(chan struct{})
	}
	g.until = until
}

// state is whether the gate is open, and if not, a channel closed when it opens and when the
// next start is.
func (g *gate) state() (up bool, opened <-chan struct{}, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.isUp, g.ch, g.until
}

// retryAfter is the Retry-After for a client while the gate is closed: the seconds until the next
// start, plus one for the start itself.
func (g *gate) retryAfter() int {
	_, _, until := g.state()
	secs := int(math.Ceil(time.Until(until).Seconds())) + 1
	return max(secs, 1)
}

// seconds formats a delay as "0.5 s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}
