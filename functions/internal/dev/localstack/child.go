package localstack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
)

// child is a function process: `FunctionBinary function NAME`.
type child struct {
	name        string // "Query" or "Predict"
	port        int
	cmd         *exec.Cmd
	tail        *emulators.Tail
	done        chan struct{}
	err         error // cmd.Wait's result, valid after done
	intentional atomic.Bool
}

// startChild starts a function on port with the stack's environment.
func (s *Stack) startChild(name string, port int) (*child, error) {
	c := &child{name: name, port: port, tail: emulators.NewTail(30), done: make(chan struct{})}
	cmd := exec.Command(s.opt.FunctionBinary, "function", name)
	env := append(os.Environ(), s.Env()...)
	env = append(env, "FUNCTION_TARGET="+name, "PORT="+strconv.Itoa(port))
	env = append(env, s.opt.ExtraEnv...)
	cmd.Env = env
	out := newChildOutput("["+strings.ToLower(name)+"] ", s.out, c.tail)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the %s function (%s): %w", name, s.opt.FunctionBinary, err)
	}
	c.cmd = cmd
	go func() {
		c.err = cmd.Wait()
		out.flush()
		close(c.done)
	}()
	return c, nil
}

func (c *child) exitError() error {
	return fmt.Errorf("the %s function (process %d) exited: %v; its last output:\n%s", c.name, c.cmd.Process.Pid, c.err, c.tail.String())
}

// stop ends the function: SIGTERM to its process group, SIGKILL after 5 s.
func (c *child) stop() error {
	c.intentional.Store(true)
	if err := emulators.StopGroup(c.cmd.Process.Pid, c.done, 5*time.Second); err != nil {
		return fmt.Errorf("the %s function: %w", c.name, err)
	}
	return nil
}

// waitHTTP waits until the function answers GET path with 200.
func (s *Stack) waitHTTP(ctx context.Context, c *child, path string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d%s", c.port, path)
	client := &http.Client{Timeout: 10 * time.Second}
	last := "no answer"
	return s.wait(ctx, c, func(ctx context.Context) bool {
		body, code, err := emulators.HTTPGet(ctx, client, url)
		switch {
		case err != nil:
			last = err.Error()
		case code == http.StatusOK:
			return true
		default:
			last = fmt.Sprintf("%d %s", code, strings.TrimSpace(body))
		}
		return false
	}, func() string { return "GET " + path + ": " + last })
}

// waitTCP waits until the function accepts connections.
func (s *Stack) waitTCP(ctx context.Context, c *child) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port))
	last := "no answer"
	return s.wait(ctx, c, func(ctx context.Context) bool {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			last = err.Error()
			return false
		}
		conn.Close()
		return true
	}, func() string { return last })
}

func (s *Stack) wait(ctx context.Context, c *child, ready func(context.Context) bool, last func() string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opt.StartTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx) {
			return nil
		}
		select {
		case <-c.done:
			return c.exitError()
		case <-ctx.Done():
			return fmt.Errorf("the %s function did not get ready on 127.0.0.1:%d within %s (%s); its last output:\n%s",
				c.name, c.port, s.opt.StartTimeout, last(), c.tail.String())
		case <-tick.C:
		}
	}
}
