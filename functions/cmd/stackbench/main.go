// Command stackbench starts the local stack and measures it from a client's side: the first query
// on a cold Predict instance (model load included), new queries end to end with wait, and cached
// queries. It is a benchmark to report figures from (`make bench-stack`), not a test: nothing here
// passes or fails on time.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/localstack"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
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
	// Distinct queries: every n-th feature the regression uses, so each is known, has a map and
	// is new (a feature without a map is refused at once, with no job).
	var feats []string
	for _, j := range b.Vocabulary.Selected {
		feats = append(feats, b.Vocabulary.Features[j])
	}
	var queries []string
	for i := 0; len(queries) < *nNew+1; i += len(feats) / (*nNew + 2) {
		queries = append(queries, feats[i])
	}

	client := &http.Client{Timeout: 30 * time.Second}
	timed := func(q string) (time.Duration, int, error) {
		t := time.Now()
		resp, err := client.Get(strings.TrimRight(st.URL, "/") + "/api/v1/maps?wait=10&q=" + url.QueryEscape(q))
		if err != nil {
			return 0, 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(t), resp.StatusCode, err
	}

	cold, code, err := timed(queries[0])
	if err != nil || code != 200 {
		return fmt.Errorf("cold query: %d %v", code, err)
	}
	fmt.Printf("cold Predict: first new query, model load included: %s\n", cold.Round(time.Millisecond))

	var news []time.Duration
	for _, q := range queries[1:] {
		d, code, err := timed(q)
		if err != nil || code != 200 {
			return fmt.Errorf("new query %q: %d %v", q, code, err)
		}
		news = append(news, d)
	}
	report("new query end to end (wait=10)", news)

	var cached []time.Duration
	for range *nCached {
		d, code, err := timed(queries[1])
		if err != nil || code != 200 {
			return fmt.Errorf("cached query: %d %v", code, err)
		}
		cached = append(cached, d)
	}
	report("cached query", cached)

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

	// The same figures as a machine-readable line.
	out, _ := json.Marshal(map[string]any{"cold_ms": ms(cold), "new_median_ms": ms(pct(news, 50)), "new_p99_ms": ms(pct(news, 99)),
		"cached_median_ms": ms(pct(cached, 50)), "cached_p99_ms": ms(pct(cached, 99)), "decode_median_ms": ms(pct(decodes, 50))})
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
