package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// The crash scenarios: each breaks a part of the running stack while clients use it, then checks
// that every accepted query finished (lost) and that no map was computed to the end twice
// (duplicated), from Predict's own log.

// pending is a set of queries being driven to completion by clients that poll them.
type pending struct {
	qs    []string
	wg    sync.WaitGroup
	done  atomic.Int64
	start time.Time
	mu    sync.Mutex
	last  time.Duration
}

// drive starts a client per query that polls it until it is done (for at most limit).
func (r *run) drive(ctx context.Context, qs []string, limit time.Duration) *pending {
	p := &pending{qs: qs, start: time.Now()}
	for _, q := range qs {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if r.finish(ctx, q, limit) {
				p.done.Add(1)
				p.mu.Lock()
				p.last = max(p.last, time.Since(p.start))
				p.mu.Unlock()
			}
		}()
	}
	return p
}

// wait waits for every client and describes what they saw.
func (p *pending) wait() string {
	p.wg.Wait()
	return fmt.Sprintf("%d of %d finished, the last %.1f s after the start", p.done.Load(), len(p.qs), p.last.Seconds())
}

func (r *run) newQueries(n int) []string {
	qs := make([]string, n)
	for i := range qs {
		qs[i] = r.newQuery()
	}
	return qs
}

// completions counts, per map id, the predictions Predict ran to the end ("prediction" records
// in its log, over every restart of it).
func completions(logDir string) map[string]int {
	n := map[string]int{}
	f, err := os.Open(filepath.Join(logDir, "predict.log"))
	if err != nil {
		return n
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := completionLine.FindStringSubmatch(sc.Text()); m != nil {
			n[m[1]]++
		}
	}
	return n
}

// completionLine is Predict's record of a finished prediction, in the text or the JSON form.
var completionLine = regexp.MustCompile(`(?:msg=prediction |"(?:msg|message)":"prediction").*?\bid(?:=|":")([0-9a-f]{32})`)

// audit says how many of qs are not done (lost) and how many were computed to the end more than
// once (duplicated), from the documents and Predict's log in logDir.
func (r *run) audit(ctx context.Context, qs []string, logDir string) (lost, dup int) {
	runs := completions(logDir)
	for _, q := range qs {
		n, _ := querytext.Normalize(q)
		id := querytext.Key(r.version, n)
		d, err := r.store.Get(ctx, id)
		if err != nil || d.Status != "done" {
			lost++
		}
		if runs[id] > 1 {
			dup++
		}
	}
	return lost, dup
}

func (r *run) crashRow(ctx context.Context, scenario, how string, qs []string, p *pending, extra string) {
	seen := p.wait()
	if extra != "" {
		seen += "; " + extra
	}
	lost, dup := r.audit(ctx, qs, r.st.LogDir)
	r.row(scenario, how, seen, fmt.Sprint(lost), fmt.Sprint(dup))
	if lost > 0 || dup > 0 {
		r.failed = true
	}
}

// killPredict: kill -9 of Predict while a burst is being computed.
func (r *run) killPredict(ctx context.Context, n int) {
	qs := r.newQueries(n)
	failedBefore, exitsBefore := r.st.PushFailures(), r.logCount("Predict exited")
	p := r.drive(ctx, qs, 2*time.Minute)
	time.Sleep(1500 * time.Millisecond)
	pid := r.st.PredictPID()
	if pid == 0 || syscall.Kill(pid, syscall.SIGKILL) != nil {
		r.failed = true
	}
	p.wg.Wait()
	exits := r.logCount("Predict exited") - exitsBefore
	if exits != 1 {
		r.failed = true
	}
	r.crashRow(ctx, "`kill -9` of Predict mid-burst", fmt.Sprintf("%d new queries, Predict killed after 1.5 s", n), qs, p,
		fmt.Sprintf("Predict restarted %d time(s); %d pushes failed and were pushed again", exits, r.st.PushFailures()-failedBefore))
}

// logCount counts the lines of the stack's own log that contain s.
func (r *run) logCount(s string) int {
	b, _ := os.ReadFile(filepath.Join(r.st.LogDir, "localstack.log"))
	return strings.Count(string(b), s)
}

// killPubSub: kill -9 of the Pub/Sub emulator while a burst is being computed: the messages it
// held are gone, and the stack publishes the unfinished maps' jobs again.
func (r *run) killPubSub(ctx context.Context, n int) {
	qs := r.newQueries(n)
	p := r.drive(ctx, qs, 2*time.Minute)
	time.Sleep(1500 * time.Millisecond)
	if syscall.Kill(r.st.PubSub.Pid(), syscall.SIGKILL) != nil {
		r.failed = true
	}
	r.crashRow(ctx, "`kill -9` of the Pub/Sub emulator mid-burst", fmt.Sprintf("%d new queries, the emulator killed after 1.5 s", n), qs, p, "")
}

// hammer reads path from c clients for length and counts the answers by kind; it returns the
// counts and the slowest answer.
func (r *run) hammer(ctx context.Context, length time.Duration, c int, path string) (map[string]int, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, length)
	defer cancel()
	var mu sync.Mutex
	kinds := map[string]int{}
	var slowest time.Duration
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t := time.Now()
				kind := r.answerKind(ctx, path)
				d := time.Since(t)
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				kinds[kind]++
				slowest = max(slowest, d)
				mu.Unlock()
				if kind != "200" {
					time.Sleep(100 * time.Millisecond) // a client told to come back does not spin
				}
			}
		}()
	}
	wg.Wait()
	return kinds, slowest
}

// answerKind is "200", "503 JSON" (the API's error body with Retry-After), or what else came.
func (r *run) answerKind(ctx context.Context, path string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	resp, err := r.client.Do(req)
	if err != nil {
		return "no answer"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusServiceUnavailable {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" && resp.Header.Get("Retry-After") != "" {
			return "503 JSON"
		}
	}
	return fmt.Sprint(resp.StatusCode)
}

// describeKinds lists the kinds of answers seen, and whether any is not one of ok (200 and a JSON
// 503 when none are given).
func describeKinds(kinds map[string]int, ok ...string) (string, bool) {
	if len(ok) == 0 {
		ok = []string{"200", "503 JSON"}
	}
	var keys []string
	for k := range kinds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	bad := false
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d × %s", kinds[k], k))
		bad = bad || !slices.Contains(ok, k)
	}
	return strings.Join(parts, ", "), bad
}

// killFirestore: kill -9 of the Firestore emulator under cached reads and new queries. The maps
// done before are in its export and come back with it, not computed again.
func (r *run) killFirestore(ctx context.Context, before []string) {
	cachedQ := before[0]
	time.Sleep(6 * time.Second) // the emulator's documents are exported every 5 s
	qs := r.newQueries(20)
	var kinds map[string]int
	var slowest time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		kinds, slowest = r.hammer(ctx, 20*time.Second, 10, mapsPath(cachedQ, 0))
	}()
	time.Sleep(2 * time.Second)
	if syscall.Kill(r.st.Firestore.Pid(), syscall.SIGKILL) != nil {
		r.failed = true
	}
	p := r.drive(ctx, qs, 2*time.Minute)
	wg.Wait()
	seen, bad := describeKinds(kinds)
	// The maps done before the crash: still done, and computed once.
	lostBefore, dupBefore := r.audit(ctx, before, r.st.LogDir)
	extra := fmt.Sprintf("cached reads under it: %s, the slowest %s; the %d maps done before the crash: %d not done after it, %d computed again",
		seen, msStr(slowest), len(before), lostBefore, dupBefore)
	if bad || lostBefore > 0 || dupBefore > 0 {
		r.failed = true
	}
	r.crashRow(ctx, "`kill -9` of the Firestore emulator", "20 s of cached reads by 10 clients, 20 new queries, the emulator killed after 2 s", qs, p, extra)
}

// freezeFirestore: SIGSTOP of the Firestore emulator for 15 s: cached reads (of a map in Query's
// memory) go on answering 200, reads that need Firestore (a map no instance has in memory) get a
// 503 within the backend timeout, never a hang, and both are 200 or 404 again once it thaws.
func (r *run) freezeFirestore(ctx context.Context, cachedQ string) {
	var kinds, uncachedKinds map[string]int
	var slowest, uncachedSlowest time.Duration
	// An id of no map: every read of it asks Firestore.
	uncached := "/api/v1/maps/" + querytext.Key(r.version, "reliability: a map nobody asked for")
	var wg sync.WaitGroup
	wg.Go(func() { kinds, slowest = r.hammer(ctx, 25*time.Second, 10, mapsPath(cachedQ, 0)) })
	wg.Go(func() { uncachedKinds, uncachedSlowest = r.hammer(ctx, 25*time.Second, 2, uncached) })
	time.Sleep(2 * time.Second)
	pid := r.st.Firestore.Pid()
	syscall.Kill(pid, syscall.SIGSTOP)
	time.Sleep(15 * time.Second)
	syscall.Kill(pid, syscall.SIGCONT)
	wg.Wait()
	after, afterUncached := r.answerKind(ctx, mapsPath(cachedQ, 0)), r.answerKind(ctx, uncached)
	seen, bad := describeKinds(kinds)
	seenUncached, badUncached := describeKinds(uncachedKinds, "404", "503 JSON")
	r.row("Firestore emulator frozen (SIGSTOP) for 15 s", "25 s of reads by 10 clients of a map in Query's memory, and by 2 clients of one it must read",
		fmt.Sprintf("in memory: %s, the slowest %s; read from Firestore: %s, the slowest %s (the backend timeout is 5 s); after the thaw: %s and %s",
			seen, msStr(slowest), seenUncached, msStr(uncachedSlowest), after, afterUncached), "0", "0")
	if bad || badUncached || kinds["503 JSON"] > 0 || uncachedKinds["503 JSON"] == 0 || after != "200" || afterUncached != "404" {
		r.failed = true
	}
}

// failedWrites: Cloud Storage writes fail while new queries are computed, transiently (503, which
// the client retries) and for good for a moment (403, which fails the delivery; Pub/Sub delivers
// it again).
func (r *run) failedWrites(ctx context.Context) {
	before := r.st.Storage.FailedWrites()
	r.st.Storage.FailWrites("maps/", 6, http.StatusServiceUnavailable)
	r.st.Storage.FailWrites("maps/", 6, http.StatusForbidden)
	qs := r.newQueries(20)
	p := r.drive(ctx, qs, 2*time.Minute)
	p.wg.Wait()
	r.st.Storage.ClearFaults()
	r.crashRow(ctx, "failed Cloud Storage writes", "20 new queries while the next 6 writes of maps answer 503 and the 6 after that 403", qs, p,
		fmt.Sprintf("%d writes failed", r.st.Storage.FailedWrites()-before))
}

// poison: a job whose every attempt fails (every write of its map is refused) is given up after
// its allowed deliveries, and its map is marked failed with the reason the API shows; a later
// query retries it.
func (r *run) poison(ctx context.Context) {
	q := r.newQuery()
	n, _ := querytext.Normalize(q)
	id := querytext.Key(r.version, n)
	r.st.Storage.FailWrites(id, -1, http.StatusForbidden)
	defer r.st.Storage.ClearFaults()
	start := time.Now()
	code := r.get(ctx, mapsPath(q, 0))
	var status int
	var message string
	for time.Since(start) < 2*time.Minute && ctx.Err() == nil {
		status, message = r.errorOf(ctx, "/api/v1/maps/"+id)
		if status != http.StatusAccepted {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	d, _ := r.store.Get(ctx, id)
	deliveries := int64(0)
	if d != nil {
		deliveries = d.Deliveries
	}
	r.st.Storage.ClearFaults()
	retried := r.finish(ctx, q, time.Minute)
	seen := fmt.Sprintf("first answer %d; after %d deliveries (%.1f s) `GET /api/v1/maps/{id}` answered %d: %q; with the fault cleared the same query made its map: %v",
		code, deliveries, took.Seconds(), status, message, retried)
	lost := 0
	if !retried {
		lost = 1
	}
	r.row("a poison job (every write of its map refused, 403)", "1 query", seen, fmt.Sprint(lost), "0")
	if status != http.StatusUnprocessableEntity || !strings.Contains(message, "failed") || !retried {
		r.failed = true
	}
}

// errorOf is a request's status and its error message ("" for none).
func (r *run) errorOf(ctx context.Context, path string) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
	return resp.StatusCode, e.Error.Message
}

// killGroup: kill -9 of the whole process group of `make run` (the command built from
// functions/cmd/localstack, with its emulators and functions) mid-burst; then a new start on the
// same data directory. Nothing may outlive the kill, and every query finishes after the restart;
// maps done in the last seconds before the kill (after the last export of the Firestore
// emulator's documents) are computed again, and counted.
func (r *run) killGroup(ctx context.Context, bin string, tmp string, n int) {
	dataDir := filepath.Join(tmp, "killed-run")
	fail := func(why string) {
		r.failed = true
		r.row("`kill -9` of the whole process group", "-", why, "-", "-")
	}
	first, err := startRun(ctx, bin, dataDir)
	if err != nil {
		fail(err.Error())
		return
	}
	base := strings.TrimRight(first.url, "/")
	qs := r.newQueries(n)
	saved := r.base
	r.base = base
	clients, cancel := context.WithCancel(ctx)
	defer cancel()
	p := r.drive(clients, qs, time.Minute)
	for deadline := time.Now().Add(time.Minute); p.done.Load() < int64(n/2) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	doneAtKill := p.done.Load()
	groups := first.groups()
	syscall.Kill(-first.cmd.Process.Pid, syscall.SIGKILL)
	<-first.exited
	cancel() // its clients hang up
	p.wg.Wait()
	r.base = saved
	left := 0
	for _, pg := range groups {
		if !emulators.WaitGroupGone(pg, 20*time.Second) {
			left++
		}
	}
	runs1 := completions(filepath.Join(dataDir, "logs"))

	second, err := startRun(ctx, bin, dataDir)
	if err != nil {
		fail("the next start: " + err.Error())
		return
	}
	defer second.stop()
	r.base = strings.TrimRight(second.url, "/")
	defer func() { r.base = saved }()
	p2 := r.drive(ctx, qs, 2*time.Minute)
	seen := p2.wait()
	runs2 := completions(filepath.Join(dataDir, "logs"))
	lost, recomputed, dup := 0, 0, 0
	for _, q := range qs {
		nq, _ := querytext.Normalize(q)
		id := querytext.Key(r.version, nq)
		if code := r.get(ctx, "/api/v1/maps/"+id); code != http.StatusOK {
			lost++
		}
		switch {
		case runs1[id]+runs2[id] > 2 || runs1[id] > 1 || runs2[id] > 1:
			dup++
		case runs1[id] == 1 && runs2[id] == 1:
			recomputed++
		}
	}
	r.base = saved
	r.row("`kill -9` of the whole process group (`make run`), then `make run` again", fmt.Sprintf("%d new queries, the group killed when %d were done", n, doneAtKill),
		fmt.Sprintf("%d of the %d process groups outlived the kill; after the new start %s; %d maps done in the seconds after the last export of the documents were computed again",
			left, len(groups), seen, recomputed), fmt.Sprint(lost), fmt.Sprint(dup))
	if left > 0 || lost > 0 || dup > 0 {
		r.failed = true
	}
}

// stackRun is the `make run` command in its own process group.
type stackRun struct {
	cmd     *exec.Cmd
	url     string
	dataDir string
	exited  chan struct{}
}

var runURL = regexp.MustCompile(`^text2brain is running at (http://127\.0\.0\.1:\d+/)`)

func startRun(ctx context.Context, bin, dataDir string) (*stackRun, error) {
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "T2B_PORT=0", "T2B_DATA_DIR="+dataDir, "T2B_SCHEDULER_EVERY=off")
	cmd.Env = append(cmd.Env, unlimited...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &stackRun{cmd: cmd, dataDir: dataDir, exited: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := runURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.url = <-urls:
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("%s exited before it printed its URL (its logs are in %s)", bin, filepath.Join(dataDir, "logs"))
	case <-time.After(2 * time.Minute):
	case <-ctx.Done():
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return nil, fmt.Errorf("%s printed no URL within 2 minutes", bin)
}

// groups are the process groups the run recorded for its children, and its own.
func (s *stackRun) groups() []int {
	var rec struct {
		Groups map[string]int `json:"process_groups"`
	}
	b, _ := os.ReadFile(filepath.Join(s.dataDir, "localstack.pid"))
	json.Unmarshal(b, &rec)
	g := []int{s.cmd.Process.Pid}
	for _, pg := range rec.Groups {
		g = append(g, pg)
	}
	return g
}

// stop ends the run as Ctrl-C does.
func (s *stackRun) stop() {
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}
