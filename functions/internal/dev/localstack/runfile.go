package localstack

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
)

// A running stack holds DataDir/localstack.lock (flock, released by the kernel however the
// process ends) and describes itself in DataDir/localstack.pid: its process, and the process
// groups of its children. Every child carries T2B_LOCALSTACK_RUN=<the run's id> in its
// environment. Children die with the stack (Pdeathsig); should one survive anyway, the next Start
// on the same data directory finds it by that mark and ends it, and a start while another stack
// runs there stops at once and says which process it is.
const (
	lockName = "localstack.lock"
	runName  = "localstack.pid"
	runEnv   = "T2B_LOCALSTACK_RUN"
)

// runRecord is DataDir/localstack.pid.
type runRecord struct {
	PID     int            `json:"pid"`
	RunID   string         `json:"run_id"`
	BootID  string         `json:"boot_id"`
	Started time.Time      `json:"started"`
	Groups  map[string]int `json:"process_groups"` // child name → process group id
}

// runFile is the stack's hold on its data directory.
type runFile struct {
	dir  string
	lock *os.File
	mu   sync.Mutex
	rec  runRecord
}

// claimDataDir takes the data directory's lock, or says which stack holds it; then it ends what an
// earlier run that was killed left running there, and returns what it ended for the console.
func claimDataDir(dir string) (*runFile, []string, error) {
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, err
	}
	// A file system without locks (ENOLCK, EINVAL) goes without: the pid file still works.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
		lock.Close()
		who := "another process"
		if rec, err := readRun(dir); err == nil && rec.PID > 0 {
			who = fmt.Sprintf("process %d (started %s)", rec.PID, rec.Started.Local().Format("2006-01-02 15:04:05"))
			if cmd := cmdline(rec.PID); cmd != "" {
				who += ": " + cmd
			}
		}
		return nil, nil, fmt.Errorf("another local stack is running on the data directory %s, %s: stop it first (Ctrl-C where it runs), or set T2B_DATA_DIR to another directory", dir, who)
	}
	id := make([]byte, 8)
	rand.Read(id)
	r := &runFile{dir: dir, lock: lock, rec: runRecord{PID: os.Getpid(), RunID: hex.EncodeToString(id),
		BootID: bootID(), Started: time.Now(), Groups: map[string]int{}}}
	var ended []string
	if old, err := readRun(dir); err == nil {
		ended = endLeftovers(old)
	}
	if err := r.write(); err != nil {
		r.release()
		return nil, nil, err
	}
	return r, ended, nil
}

func readRun(dir string) (runRecord, error) {
	var rec runRecord
	b, err := os.ReadFile(filepath.Join(dir, runName))
	if err != nil {
		return rec, err
	}
	return rec, json.Unmarshal(b, &rec)
}

// write replaces the pid file in one step.
func (r *runFile) write() error {
	b, _ := json.MarshalIndent(r.rec, "", "  ")
	tmp := filepath.Join(r.dir, runName+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(r.dir, runName))
}

// setChild records a child's process group.
func (r *runFile) setChild(name string, pgid int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Groups[name] = pgid
	r.write()
}

// release removes the pid file and the lock once every child is gone.
func (r *runFile) release() {
	if r == nil {
		return
	}
	os.Remove(filepath.Join(r.dir, runName))
	r.lock.Close()
}

// endLeftovers kills what a dead run left: every process of this boot whose environment carries
// the run's mark, each with its process group. It returns a line for each group it ended.
func endLeftovers(old runRecord) []string {
	if old.RunID == "" || old.BootID != bootID() {
		return nil
	}
	mark := []byte(runEnv + "=" + old.RunID)
	names := map[int]string{}
	for name, pg := range old.Groups {
		names[pg] = name
	}
	marked := func(pid int) bool {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		return err == nil && hasEnv(env, mark)
	}
	// A group is ended as a whole when each of its processes is marked (the children had groups
	// of their own); a marked process in a group with others is ended alone.
	groups := map[int]bool{}
	for _, pid := range allPids() {
		if pid == os.Getpid() || !marked(pid) {
			continue
		}
		pg, err := syscall.Getpgid(pid)
		whole := err == nil && pg > 1 && pg != syscall.Getpgrp()
		for _, m := range emulators.GroupMembers(pg) {
			whole = whole && marked(m)
		}
		if whole {
			groups[pg] = true
		} else {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var ended []string
	pgs := make([]int, 0, len(groups))
	for pg := range groups {
		pgs = append(pgs, pg)
	}
	sort.Ints(pgs)
	for _, pg := range pgs {
		what := "a process"
		if names[pg] != "" {
			what = "the " + names[pg]
		}
		members := emulators.GroupMembers(pg)
		cmd := ""
		if len(members) > 0 {
			cmd = cmdline(members[0])
		}
		syscall.Kill(-pg, syscall.SIGKILL)
		if !emulators.WaitGroupGone(pg, 5*time.Second) {
			ended = append(ended, fmt.Sprintf("%s (process group %d, %s) left by an earlier run (process %d) does not die", what, pg, cmd, old.PID))
			continue
		}
		ended = append(ended, fmt.Sprintf("ended %s (process group %d: %s) that an earlier run (process %d) left running", what, pg, cmd, old.PID))
	}
	return ended
}

func hasEnv(environ, kv []byte) bool {
	for _, e := range bytes.Split(environ, []byte{0}) {
		if bytes.Equal(e, kv) {
			return true
		}
	}
	return false
}

func allPids() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// bootID tells this boot from others: process ids of another boot mean nothing.
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// cmdline is a process's command line, shortened for a message ("" if unknown).
func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return ""
	}
	s := strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	if r := []rune(s); len(r) > 120 {
		s = string(r[:120]) + "…"
	}
	return s
}

// portOwner names the process listening on 127.0.0.1:port (or any address), from /proc: "process
// 1234 (python3 -m http.server)", or "" when it cannot be told (another user's process).
func portOwner(port int) string {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		file, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
				inodes["socket:["+fields[9]+"]"] = true
			}
		}
		file.Close()
	}
	if len(inodes) == 0 {
		return ""
	}
	for _, pid := range allPids() {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[link] {
				if cmd := cmdline(pid); cmd != "" {
					return fmt.Sprintf("process %d (%s)", pid, cmd)
				}
				return fmt.Sprintf("process %d", pid)
			}
		}
	}
	return ""
}

// errPortInUse is a port the stack needs that something else holds.
func errPortInUse(what string, port int, err error, fix string) error {
	owner := portOwner(port)
	if owner == "" {
		return fmt.Errorf("%s cannot listen on 127.0.0.1:%d (%v): stop what uses it or %s", what, port, err, fix)
	}
	return fmt.Errorf("%s cannot listen on 127.0.0.1:%d: %s uses it; stop it or %s", what, port, owner, fix)
}
