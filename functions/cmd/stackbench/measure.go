package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/sync/errgroup"

	"github.com/text2brain/text2brain/functions/internal/dev/localstack"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// key is the document id of a query, as Query makes it.
func key(version, q string) string {
	n, err := querytext.Normalize(q)
	if err != nil {
		panic(fmt.Sprintf("stackbench: query %q: %v", q, err))
	}
	return querytext.Key(version, n)
}

// attack sends GET url as fast as workers clients can for d (vegeta, rate 0: each worker sends its
// next request when the last is answered) and returns the metrics.
func attack(url string, workers int, d time.Duration) (*vegeta.Metrics, error) {
	a := vegeta.NewAttacker(vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(workers)),
		vegeta.KeepAlive(true), vegeta.Connections(workers), vegeta.Timeout(10*time.Second))
	target := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: url})
	var m vegeta.Metrics
	for res := range a.Attack(target, vegeta.Rate{}, d, url) {
		m.Add(res)
	}
	m.Close()
	if m.Requests == 0 {
		return nil, fmt.Errorf("no requests were sent to %s", url)
	}
	return &m, nil
}

// procCPU is a process's CPU time so far (user and system), from /proc.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command (in parentheses, which may hold spaces): utime and stime are
	// the 14th and 15th fields of the line, in clock ticks.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	const clockTicks = 100 // USER_HZ, 100 on every Linux this runs on
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

type memory struct{ peak, now uint64 }

// procMemory is a process's peak and current resident set size, from /proc.
func procMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), ":")
		var into *uint64
		switch name {
		case "VmHWM":
			into = &m.peak
		case "VmRSS":
			into = &m.now
		default:
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		*into = kb << 10
	}
	return m, sc.Err()
}

func mib(b uint64) string { return fmt.Sprintf("%d MiB", b>>20) }

// Cloud Run's list prices for request-based billing in its tier 1 regions (in USD), which Cloud Run
// functions are billed at; and the Terraform defaults of a Predict instance (predict_cpu,
// predict_memory, predict_concurrency).
const (
	pricePerVCPUSecond = 0.000024
	pricePerGiBSecond  = 0.0000025
	pricePerRequest    = 0.40 / 1e6
	predictVCPU        = 2
	predictGiB         = 8
	billingGranularity = 100 * time.Millisecond
)

// cost prints what 1,000 new maps cost in Predict's compute at those prices, in two cases: an
// instance kept busy (billed for the CPU time the maps take on its two vCPUs, as measured in the
// burst) and maps one at a time (each billed for its own time in Predict, rounded up to 100 ms).
func cost(cpuPerMap time.Duration) {
	perSecond := predictVCPU*pricePerVCPUSecond + predictGiB*pricePerGiBSecond
	busy := cpuPerMap.Seconds() / predictVCPU
	fmt.Printf("  one %d vCPU Predict instance kept busy: %.0f maps/s from the CPU time per map; 1,000 new maps cost $%.4f (compute) + $%.4f (requests)\n",
		predictVCPU, 1/busy, 1000*busy*perSecond, 1000*pricePerRequest)
	fmt.Printf("  maps one at a time, each billed at least %s: 1,000 new maps cost at most $%.4f (compute) + $%.4f (requests)\n",
		billingGranularity, 1000*billingGranularity.Seconds()*perSecond, 1000*pricePerRequest)
}

// fillCache stores n finished maps, copies of done under new ids, straight into the Firestore
// emulator (a BulkWriter), then asks Query for each by id with `workers` clients, so that Query's
// in-memory cache holds as many real-sized answers as it can; it returns how long the reads took.
func fillCache(ctx context.Context, st *localstack.Stack, project string, done *jobs.Doc, n, workers int, get func(string) error) (time.Duration, error) {
	// The client's emulator mode (the emulator's owner credentials, no TLS): this process talks
	// to this stack's emulator only.
	os.Setenv("FIRESTORE_EMULATOR_HOST", st.FirestoreHost)
	client, err := firestore.NewClient(ctx, project)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	bw := client.BulkWriter(ctx)
	col := client.Collection(config.DefaultCollection)
	ids := make([]string, n)
	var jobs []*firestore.BulkWriterJob
	for i := range ids {
		sum := sha256.Sum256(fmt.Appendf(nil, "stackbench cache %d", i))
		ids[i] = hex.EncodeToString(sum[:16])
		d := *done
		d.ID = ids[i]
		j, err := bw.Create(col.Doc(ids[i]), &d)
		if err != nil {
			return 0, err
		}
		jobs = append(jobs, j)
	}
	bw.End()
	for _, j := range jobs {
		if _, err := j.Results(); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	next := make(chan string)
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for id := range next {
				if err := get(id); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(next)
		for _, id := range ids {
			select {
			case next <- id:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	err = g.Wait()
	return time.Since(start), err
}
