package emulators

import (
	"os/exec"
	"runtime"
	"sync"
	"time"
)

// spawner starts child processes from one goroutine locked to its OS thread for the life of the
// process. Linux delivers SysProcAttr.Pdeathsig when the thread that forked the child exits, not
// when its process does, and the Go runtime ends a thread when a goroutine locked to it returns:
// a child started from such a goroutine would be killed with it, and one started from an ordinary
// goroutine depends on which thread happened to run it. A thread that never exits makes Pdeathsig
// mean "when this process dies", SIGKILL included.
var spawner struct {
	once sync.Once
	reqs chan func()
}

// StartCmd is cmd.Start run on the spawner's thread. Every child of the local stack (emulators and
// functions) is started this way, with SysProcAttr.Pdeathsig set, so that none outlives it.
func StartCmd(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for f := range spawner.reqs {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- func() { errc <- cmd.Start() }
	return <-errc
}

// Backoff is the delay between restarts of something that keeps failing: Min at first, doubling
// up to Max, and back to Min once it has run for ResetAfter.
type Backoff struct {
	Min, Max, ResetAfter time.Duration
	next                 time.Duration
}

// DefaultBackoff restarts after 0.5 s, doubling up to 10 s, reset after a minute of health.
func DefaultBackoff() Backoff {
	return Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second, ResetAfter: time.Minute}
}

// Next is the delay before the next attempt, after a run that lasted ran (0 for an attempt that
// failed to start).
func (b *Backoff) Next(ran time.Duration) time.Duration {
	if b.next == 0 || (b.ResetAfter > 0 && ran >= b.ResetAfter) {
		b.next = b.Min
	}
	d := b.next
	b.next = min(2*b.next, b.Max)
	return d
}
