// Command reliability starts the local stack on 127.0.0.1 and tries it as clients and attackers
// would: cached reads at several concurrencies, a burst of distinct new queries, a mix, hostile
// inputs, and crashes of its parts. It prints the Markdown table of RELIABILITY.md: what was tried,
// how much, what clients saw, what was lost and what was duplicated. Every phase is bounded in
// count and time; nothing here passes or fails on time, but lost or duplicated work, or a hostile
// input answered otherwise than expected, makes it exit non-zero.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/text2brain/text2brain/functions/internal/cloud/store"
	"github.com/text2brain/text2brain/functions/internal/dev/localstack"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	failed, err := realMain(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
	if failed {
		os.Exit(1)
	}
}

// unlimited lifts the per-client limits and the cap on pending jobs, which would make one load
// client a rate-limit test (the limits have their own tests).
var unlimited = []string{"T2B_RATE=1000000", "T2B_RATE_BURST=1000000", "T2B_PREDICT_EVERY=1ms", "T2B_PREDICT_BURST=1000000",
	"T2B_MAX_PENDING=100000"}

type run struct {
	st      *localstack.Stack
	base    string
	client  *http.Client
	store   *store.Store
	version string
	queries []string // distinct, known and mapped
	next    atomic.Int64
	rows    [][]string
	// hostileRows: each hostile input, the answer it must get, and what it got.
	hostileRows [][]string
	failed      bool
	cachedQ     string   // a query whose map is done
	done        []string // queries of the burst, done
}

func realMain(ctx context.Context) (bool, error) {
	bin := flag.String("functions", "build/bin/localstack", "build of functions/cmd/localstack that serves the functions")
	cachedN := flag.Int("cached", 3000, "cached requests per concurrency level")
	burstN := flag.Int("burst", 200, "distinct new queries in the burst")
	crashes := flag.Bool("crashes", true, "also crash and freeze the stack's parts")
	flag.Parse()

	opt, err := localstack.OptionsFromEnv()
	if err != nil {
		return false, err
	}
	tmp, err := os.MkdirTemp("", "reliability-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	opt.DataDir, opt.Port, opt.FunctionBinary, opt.SchedulerEvery, opt.Log = filepath.Join(tmp, "data"), 0, *bin, -1, io.Discard
	opt.ExtraEnv = append(opt.ExtraEnv, unlimited...)
	st, err := localstack.Start(ctx, opt)
	if err != nil {
		return false, err
	}
	defer st.Stop()

	h, err := bundle.LoadHeader(os.DirFS(opt.BundleDir))
	if err != nil {
		return false, err
	}
	os.Setenv("FIRESTORE_EMULATOR_HOST", st.FirestoreHost)
	s, err := store.New(ctx, st.ProjectID, "maps")
	if err != nil {
		return false, err
	}
	defer s.Close()
	r := &run{st: st, base: strings.TrimRight(st.URL, "/"), store: s, version: h.Manifest.ModelVersion,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}}
	// Features the regression uses: each has a map, so each query makes a real one.
	for _, j := range h.Vocabulary.Selected {
		r.queries = append(r.queries, h.Vocabulary.Features[j])
	}
	fmt.Fprintf(os.Stderr, "stack at %s, model %s, %d mapped terms\n", st.URL, r.version, len(r.queries))

	r.cached(ctx, *cachedN)
	r.burst(ctx, *burstN)
	r.mix(ctx, 20*time.Second)
	if *crashes {
		r.killPredict(ctx, 60)
		r.killPubSub(ctx, 60)
		r.killFirestore(ctx, r.done)
		r.freezeFirestore(ctx, r.cachedQ)
		r.failedWrites(ctx)
		r.poison(ctx)
	}
	r.hostile(ctx)
	if *crashes {
		r.killGroup(ctx, *bin, tmp, 40)
	}

	fmt.Println("| scenario | how much | what clients saw | lost | duplicated |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	for _, row := range r.rows {
		fmt.Println("| " + strings.Join(row, " | ") + " |")
	}
	fmt.Println()
	fmt.Println("| hostile input | expected answer | answer |")
	fmt.Println("| --- | --- | --- |")
	for _, row := range r.hostileRows {
		fmt.Println("| " + strings.Join(row, " | ") + " |")
	}
	return r.failed, nil
}

func (r *run) row(cols ...string) {
	r.rows = append(r.rows, cols)
	fmt.Fprintln(os.Stderr, strings.Join(cols, " | "))
}

// newQuery is a query no one asked yet in this run.
func (r *run) newQuery() string {
	i := int(r.next.Add(1)) - 1
	a, b := r.queries[i%len(r.queries)], r.queries[(i/len(r.queries)+i*7+1)%len(r.queries)]
	if i < len(r.queries) {
		return a
	}
	return a + " " + b
}

// get answers the status, or 0 for a transport error (a reset connection, a timeout).
func (r *run) get(ctx context.Context, path string) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	resp, err := r.client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func mapsPath(q string, wait int) string {
	return fmt.Sprintf("/api/v1/maps?wait=%d&q=%s", wait, url.QueryEscape(q))
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func msStr(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// load sends n requests of path() from c concurrent clients and returns the latencies and the
// count of answers other than want.
func (r *run) load(ctx context.Context, n, c int, path func() string, ok func(int) bool) ([]time.Duration, int, time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	var bad atomic.Int64
	var sent atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= int64(n) && ctx.Err() == nil {
				t := time.Now()
				code := r.get(ctx, path())
				d := time.Since(t)
				if ctx.Err() != nil {
					return // the phase ended under this request
				}
				if !ok(code) {
					bad.Add(1)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat, int(bad.Load()), time.Since(start)
}

func (r *run) cached(ctx context.Context, n int) {
	q := r.newQuery()
	if code := r.get(ctx, mapsPath(q, 10)); code != 200 {
		r.failed = true
		r.row("cached reads", "-", fmt.Sprintf("the first query answered %d", code), "-", "-")
		return
	}
	r.cachedQ = q
	id := querytext.Key(r.version, q)
	before := r.hits(ctx, id)
	total := 0
	for _, c := range []int{1, 10, 50} {
		lat, bad, took := r.load(ctx, n, c, func() string { return mapsPath(q, 0) }, func(code int) bool { return code == 200 })
		total += len(lat)
		r.row(fmt.Sprintf("cached reads, concurrency %d", c), fmt.Sprintf("%d requests", len(lat)),
			fmt.Sprintf("%.0f requests/s, p50 %s, p99 %s, %d errors", float64(len(lat))/took.Seconds(), msStr(pct(lat, 50)), msStr(pct(lat, 99)), bad),
			"-", "-")
		if bad > 0 {
			r.failed = true
		}
	}
	// Every answer counted one hit: none lost, none counted twice. Query writes the hits it
	// counted in batches, every T2B_HIT_FLUSH (10 s): the stored counter catches up within that.
	after := r.hits(ctx, id)
	for deadline := time.Now().Add(15 * time.Second); int(after-before) < total && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(250 * time.Millisecond)
		after = r.hits(ctx, id)
	}
	lost := total - int(after-before)
	r.row("hit counts of those reads", fmt.Sprintf("%d hits", total), fmt.Sprintf("counter went from %d to %d", before, after),
		fmt.Sprint(max(0, lost)), fmt.Sprint(max(0, -lost)))
	if lost != 0 {
		r.failed = true
	}
}

func (r *run) hits(ctx context.Context, id string) int64 {
	n, err := r.store.Hits(ctx, id)
	if err != nil {
		return -1
	}
	return n
}

// finish polls a query until it is done, for at most limit; false if it never finished.
func (r *run) finish(ctx context.Context, q string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r.get(ctx, mapsPath(q, 10)) == 200 {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// checkOnce reads each query's document: predicted exactly once, done.
func (r *run) checkOnce(ctx context.Context, qs []string) (notDone, dup int) {
	for _, q := range qs {
		n, _ := querytext.Normalize(q)
		d, err := r.store.Get(ctx, querytext.Key(r.version, n))
		if err != nil || d.Status != "done" {
			notDone++
			continue
		}
		if d.Predictions != 1 {
			dup++
		}
	}
	return notDone, dup
}

func (r *run) burst(ctx context.Context, n int) {
	qs := make([]string, n)
	for i := range qs {
		qs[i] = r.newQuery()
	}
	start := time.Now()
	var done atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for _, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			if r.finish(ctx, q, 2*time.Minute) {
				done.Add(1)
				mu.Lock()
				lat = append(lat, time.Since(t))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	notDone, dup := r.checkOnce(ctx, qs)
	r.done = qs
	r.row(fmt.Sprintf("burst of %d distinct new queries", n), fmt.Sprintf("%d queries at once", n),
		fmt.Sprintf("%d finished; the last after %.1f s; p50 %s, p90 %s", done.Load(), took.Seconds(), msStr(pct(lat, 50)), msStr(pct(lat, 90))),
		fmt.Sprint(notDone), fmt.Sprint(dup))
	if notDone > 0 || dup > 0 {
		r.failed = true
	}
}

func (r *run) mix(ctx context.Context, length time.Duration) {
	cachedQ := r.newQuery()
	r.finish(ctx, cachedQ, time.Minute)
	var mu sync.Mutex
	var news []string
	ctx2, cancel := context.WithTimeout(ctx, length)
	defer cancel()
	var i atomic.Int64
	lat, bad, took := r.load(ctx2, 1<<30, 20, func() string {
		if i.Add(1)%10 == 0 {
			q := r.newQuery()
			mu.Lock()
			news = append(news, q)
			mu.Unlock()
			return mapsPath(q, 10)
		}
		return mapsPath(cachedQ, 0)
	}, func(code int) bool { return code == 200 || code == 202 })
	for _, q := range news {
		r.finish(ctx, q, time.Minute)
	}
	notDone, dup := r.checkOnce(ctx, news)
	r.row("mix: 9 cached reads to 1 new query, 20 clients", fmt.Sprintf("%.0f s, %d requests (%d new)", took.Seconds(), len(lat), len(news)),
		fmt.Sprintf("%.0f requests/s, p50 %s, p99 %s, %d errors", float64(len(lat))/took.Seconds(), msStr(pct(lat, 50)), msStr(pct(lat, 99)), bad),
		fmt.Sprint(notDone), fmt.Sprint(dup))
	if bad > 0 || notDone > 0 || dup > 0 {
		r.failed = true
	}
}
