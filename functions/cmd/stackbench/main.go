// Command stackbench starts the local stack and measures it from a client's side: the first query
// on a cold Predict instance (model load included), new queries end to end with wait, and cached
// queries. It is a benchmark to report figures from (`make bench-stack`), not a test: nothing here
// passes or fails on time.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/text2brain/text2brain/functions/internal/cloud/store"
	"github.com/text2brain/text2brain/functions/internal/dev/localstack"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := realMain(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "stackbench:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context) error {
	bin := flag.String("functions", "build/bin/localstack", "build of functions/cmd/localstack that serves the functions")
	nCached := flag.Int("cached", 1000, "cached queries to time")
	nNew := flag.Int("new", 30, "new queries to time")
	nDecode := flag.Int("decode", 10, "decodings of distinct uploaded maps to time")
	nBurst := flag.Int("burst", 200, "distinct new queries sent at once")
	workers := flag.Int("concurrency", 50, "clients at once in the throughput measurements")
	attackFor := flag.Duration("for", 5*time.Second, "length of each throughput measurement")
	nFill := flag.Int("fill", 5000, "finished maps to put in Query's in-memory cache (its default size, T2B_CACHE_ENTRIES) before its memory is read")
	flag.Parse()

	opt, err := localstack.OptionsFromEnv()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "stackbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	opt.DataDir, opt.Port, opt.FunctionBinary = filepath.Join(tmp, "data"), 0, *bin
	// No warm-up at start: the first query must meet a cold Predict instance.
	opt.SchedulerEvery = -1
	// The bench makes many new maps from one address: no per-client or pending-job limits.
	opt.ExtraEnv = append(opt.ExtraEnv, "T2B_RATE=100000", "T2B_RATE_BURST=100000", "T2B_PREDICT_EVERY=0s", "T2B_MAX_PENDING=0")
	opt.Log = io.Discard
	start := time.Now()
	st, err := localstack.Start(ctx, opt)
	if err != nil {
		return err
	}
	defer st.Stop()
	fmt.Printf("stack started in %s (%s)\n", time.Since(start).Round(time.Millisecond), st.URL)

	b, err := bundle.LoadHeader(os.DirFS(opt.BundleDir))
	if err != nil {
		return err
	}
	// Distinct new queries, each known and with a map (a feature without one is refused at once,
	// with no job): the features the regression uses, then pairs of them.
	unmapped := b.Vocabulary.UnmappedTerms()
	var feats []string
	for _, j := range b.Vocabulary.Selected {
		if f := b.Vocabulary.Features[j]; !unmapped[f] {
			feats = append(feats, f)
		}
	}
	queries := slices.Clone(feats)
	for i := 0; i < len(feats) && len(queries) < 1+*nNew+*nBurst; i++ {
		for j := i + 1; j < len(feats) && len(queries) < 1+*nNew+*nBurst; j++ {
			queries = append(queries, feats[i]+" "+feats[j])
		}
	}
	if len(queries) < 1+*nNew+*nBurst {
		return fmt.Errorf("only %d distinct queries for %d", len(queries), 1+*nNew+*nBurst)
	}
	queries = queries[:1+*nNew+*nBurst]
	seen := map[string]bool{}
	for _, q := range queries {
		if k := key(b.Manifest.ModelVersion, q); seen[k] {
			return fmt.Errorf("query %q twice", q)
		} else {
			seen[k] = true
		}
	}

	docs, err := store.NewEmulator(ctx, st.FirestoreHost, opt.ProjectID, config.DefaultCollection)
	if err != nil {
		return err
	}
	defer docs.Close()
	base := strings.TrimRight(st.URL, "/")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *nBurst}}
	timed := func(q string) (time.Duration, int, error) {
		t := time.Now()
		resp, err := client.Get(base + "/api/v1/maps?wait=10&q=" + url.QueryEscape(q))
		if err != nil {
			return 0, 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(t), resp.StatusCode, err
	}
	// untilDone asks as a client does: the query with wait=10, then its map's URL with wait=10
	// while the answer is 202 (still computing), and returns the time until the map was there.
	untilDone := func(q string) (time.Duration, error) {
		t := time.Now()
		u := base + "/api/v1/maps?wait=10&q=" + url.QueryEscape(q)
		for {
			resp, err := client.Get(u)
			if err != nil {
				return 0, err
			}
			var p struct{ Poll string }
			err = json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			switch {
			case err != nil:
				return 0, err
			case resp.StatusCode == http.StatusOK:
				return time.Since(t), nil
			case resp.StatusCode != http.StatusAccepted || p.Poll == "":
				return 0, fmt.Errorf("status %d", resp.StatusCode)
			}
			poll, err := url.Parse(p.Poll)
			if err != nil {
				return 0, err
			}
			u = resp.Request.URL.ResolveReference(poll).String() + "?wait=10"
		}
	}
	fig := map[string]any{}

	// Cold start: the first query meets a Predict instance that has loaded nothing; its document
	// says when Query published the job and when Predict finished the map.
	cold, code, err := timed(queries[0])
	if err != nil || code != 200 {
		return fmt.Errorf("cold query: %d %v", code, err)
	}
	coldDoc, err := docs.Get(ctx, key(st.ModelVersion, queries[0]))
	if err != nil {
		return err
	}
	coldPredict := coldDoc.CompletedAt.Sub(coldDoc.PublishedAt)
	fmt.Printf("cold Predict: job published → map done %s (model load from the bucket included); client's wait %s\n",
		coldPredict.Round(time.Millisecond), cold.Round(time.Millisecond))
	fig["cold_publish_to_done_ms"], fig["cold_client_ms"] = ms(coldPredict), ms(cold)

	var news []time.Duration
	for _, q := range queries[1 : *nNew+1] {
		d, code, err := timed(q)
		if err != nil || code != 200 {
			return fmt.Errorf("new query %q: %d %v", q, code, err)
		}
		news = append(news, d)
	}
	report("new query end to end (wait=10), one at a time", news)
	fig["new_median_ms"], fig["new_p99_ms"] = ms(pct(news, 50)), ms(pct(news, 99))

	// A burst of distinct new queries at once, each with wait=10: when each client has its map,
	// and Predict's CPU time and peak memory over it. Every document must be done with exactly one
	// prediction.
	burst := queries[*nNew+1:]
	cpu0, err := procCPU(st.PredictPID())
	if err != nil {
		return err
	}
	burstTimes := make([]time.Duration, len(burst))
	burstErrs := make([]error, len(burst))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, q := range burst {
		wg.Go(func() {
			burstTimes[i], burstErrs[i] = untilDone(q)
		})
	}
	wg.Wait()
	burstWall := time.Since(t0)
	cpu1, err := procCPU(st.PredictPID())
	if err != nil {
		return err
	}
	if err := errors.Join(burstErrs...); err != nil {
		return fmt.Errorf("burst: %w", err)
	}
	var once, twice int
	for _, q := range burst {
		d, err := docs.Get(ctx, key(st.ModelVersion, q))
		if err != nil {
			return fmt.Errorf("burst %q: %w", q, err)
		}
		switch {
		case d.Status != jobs.Done:
			return fmt.Errorf("burst %q: %s after its answer", q, d.Status)
		case d.Predictions == 1:
			once++
		default:
			twice++
		}
	}
	predictRSS, err := procMemory(st.PredictPID())
	if err != nil {
		return err
	}
	cpuPerMap := (cpu1 - cpu0) / time.Duration(len(burst))
	fmt.Printf("burst of %d distinct new queries at once: all answered in %s; per client median %s, p90 %s, max %s; %d predicted once, %d more than once\n",
		len(burst), burstWall.Round(time.Millisecond), pct(burstTimes, 50).Round(time.Millisecond), pct(burstTimes, 90).Round(time.Millisecond),
		pct(burstTimes, 100).Round(time.Millisecond), once, twice)
	fmt.Printf("  Predict: %.1f maps/s on this machine, %s of its CPU per map (all %d cores shared with the emulators and Query); peak RSS %s\n",
		float64(len(burst))/burstWall.Seconds(), cpuPerMap.Round(10*time.Microsecond), runtime.NumCPU(), mib(predictRSS.peak))
	fig["burst_n"], fig["burst_all_ms"], fig["burst_p50_ms"], fig["burst_p90_ms"] = len(burst), ms(burstWall), ms(pct(burstTimes, 50)), ms(pct(burstTimes, 90))
	fig["burst_duplicated"], fig["predict_cpu_ms_per_map"], fig["predict_peak_rss_mib"] = twice, ms(cpuPerMap), predictRSS.peak>>20
	if twice > 0 {
		return fmt.Errorf("burst: %d maps were predicted more than once", twice)
	}
	cost(cpuPerMap)

	var cached []time.Duration
	for range *nCached {
		d, code, err := timed(queries[1])
		if err != nil || code != 200 {
			return fmt.Errorf("cached query: %d %v", code, err)
		}
		cached = append(cached, d)
	}
	report("cached query, one at a time", cached)
	fig["cached_median_ms"], fig["cached_p99_ms"] = ms(pct(cached, 50)), ms(pct(cached, 99))

	// Throughput at concurrency 50, the cached answer against /api/v1/version (the same front
	// server and Query mux, no backend) in the same run: the ratio is what caching leaves of the
	// HTTP stack's speed.
	version, err := attack(base+"/api/v1/version", *workers, *attackFor)
	if err != nil {
		return err
	}
	hit, err := attack(base+"/api/v1/maps?q="+url.QueryEscape(queries[1]), *workers, *attackFor)
	if err != nil {
		return err
	}
	for _, a := range []struct {
		what string
		m    *vegeta.Metrics
	}{{"GET /api/v1/version", version}, {"cached GET /api/v1/maps?q=", hit}} {
		fmt.Printf("%s at concurrency %d for %s: %.0f requests/s, p50 %s, p99 %s, %d errors of %d\n", a.what, *workers, *attackFor,
			a.m.Throughput, a.m.Latencies.P50.Round(10*time.Microsecond), a.m.Latencies.P99.Round(10*time.Microsecond), a.m.Requests-uint64(a.m.StatusCodes["200"]), a.m.Requests)
	}
	ratio := hit.Throughput / version.Throughput
	fmt.Printf("  cached throughput is %.0f%% of /api/v1/version's\n", 100*ratio)
	fig["version_rps"], fig["cached_rps"], fig["cached_ratio"], fig["cached_c50_p99_ms"] = math.Round(version.Throughput), math.Round(hit.Throughput), math.Round(ratio*1000)/1000, ms(hit.Latencies.P99)
	fig["cached_errors"] = hit.Requests - uint64(hit.StatusCodes["200"])
	// Query's memory with its cache full: as many more finished maps as the cache holds (copies of
	// a real answer under new ids), each asked for once.
	queryBefore, err := procMemory(st.QueryPID())
	if err != nil {
		return err
	}
	done, err := docs.Get(ctx, key(st.ModelVersion, queries[1]))
	if err != nil {
		return err
	}
	took, err := fillCache(ctx, st, opt.ProjectID, done, *nFill, 10, func(id string) error {
		resp, err := client.Get(base + "/api/v1/maps/" + id)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET /api/v1/maps/%s: status %d", id, resp.StatusCode)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("filling Query's cache: %w", err)
	}
	queryRSS, err := procMemory(st.QueryPID())
	if err != nil {
		return err
	}
	fmt.Printf("Query: RSS %s with %d finished maps asked for; %s (peak %s) after %d more, read by id in %s (%.0f/s from Firestore)\n",
		mib(queryBefore.now), 1+*nNew+len(burst), mib(queryRSS.now), mib(queryRSS.peak), *nFill, took.Round(time.Millisecond), float64(*nFill)/took.Seconds())
	fig["query_rss_mib"], fig["query_full_cache_rss_mib"], fig["query_peak_rss_mib"] = queryBefore.now>>20, queryRSS.now>>20, queryRSS.peak>>20

	// Decodings: distinct 4 mm maps (a blob at another place each time), uploaded as the page does,
	// from the request to the finished result.
	mask, err := brain.ReadMaskFile(filepath.Join(opt.BundleDir, bundle.MaskFile))
	if err != nil {
		return err
	}
	var decodes []time.Duration
	for i := range *nDecode {
		file, err := blobMap(mask, float64(-60+120*i/max(1, *nDecode-1)), -40, 20)
		if err != nil {
			return err
		}
		t := time.Now()
		resp, err := client.Post(strings.TrimRight(st.URL, "/")+"/api/v1/decodings?wait=10", "application/gzip", bytes.NewReader(file))
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("decoding %d: %d %v", i, resp.StatusCode, err)
		}
		decodes = append(decodes, time.Since(t))
	}
	report("decoding end to end, upload to result (wait=10)", decodes)

	fig["decode_median_ms"] = ms(pct(decodes, 50))

	// The same figures as a machine-readable line.
	out, _ := json.Marshal(fig)
	fmt.Println(string(out))
	return nil
}

// blobMap is a .nii.gz on the model's grid, as the service's downloads are: a Gaussian blob
// (σ 8 mm) at (x, y, z) mm.
func blobMap(m *brain.Mask, x, y, z float64) ([]byte, error) {
	values := make([]float32, m.Len())
	for p, idx := range m.Voxels {
		i, j, k := brain.Coords(int(idx))
		dx, dy, dz := float64(4*i-90)-x, float64(4*j-126)-y, float64(4*k-72)-z
		values[p] = float32(6 * math.Exp(-(dx*dx+dy*dy+dz*dz)/128))
	}
	var buf bytes.Buffer
	err := brain.WriteMap(&buf, m, values, "stackbench")
	return buf.Bytes(), err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func report(what string, ds []time.Duration) {
	fmt.Printf("%s: n=%d median %s, p99 %s, max %s\n", what, len(ds),
		pct(ds, 50).Round(10*time.Microsecond), pct(ds, 99).Round(10*time.Microsecond), pct(ds, 100).Round(10*time.Microsecond))
}
