package model

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
)

// coldStartChild marks the child process of BenchmarkColdStart.
const coldStartChild = "cold-start"

var coldStartOnce sync.Once

// BenchmarkColdStart is a cold start as a new instance of the Predict function has it: from nothing
// loaded (a new process: no ONNX Runtime, no bundle) to the first finished prediction, the bundle
// opened from its directory. Each iteration is a child process of the test binary; ns/op is that
// process's whole run, load-ms the time Open takes in it and cold-ms Open and the first Predict.
func BenchmarkColdStart(b *testing.B) {
	dir, lib := testenv.BundleDir(b), testenv.ORTLibrary(b)
	if os.Getenv("TEXT2BRAIN_CHILD") == coldStartChild {
		coldStartOnce.Do(func() {
			start := time.Now()
			m, err := Open(dir, Options{ORTLibrary: lib})
			if err != nil {
				b.Fatal(err)
			}
			loaded := time.Since(start)
			if _, err := m.Predict(context.Background(), "faces"); err != nil {
				b.Fatal(err)
			}
			fmt.Printf("COLDSTART %d %d\n", loaded.Microseconds(), time.Since(start).Microseconds())
		})
		return
	}
	var load, cold time.Duration
	for b.Loop() {
		l, c := runColdStartChild(b, "^BenchmarkColdStart$")
		load += l
		cold += c
	}
	b.ReportMetric(float64(load.Microseconds())/1000/float64(b.N), "load-ms")
	b.ReportMetric(float64(cold.Microseconds())/1000/float64(b.N), "cold-ms")
}

// runColdStartChild runs benchmark bench once in a child process and returns the two durations it
// prints.
func runColdStartChild(b *testing.B, bench string) (load, cold time.Duration) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench="+bench, "-test.benchtime=1x")
	cmd.Env = append(os.Environ(), "TEXT2BRAIN_CHILD="+coldStartChild)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child failed: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "COLDSTART" {
			l, err1 := strconv.ParseInt(f[1], 10, 64)
			c, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 == nil && err2 == nil {
				return time.Duration(l) * time.Microsecond, time.Duration(c) * time.Microsecond
			}
		}
	}
	b.Fatalf("the child printed no timings:\n%s", out)
	return 0, 0
}
