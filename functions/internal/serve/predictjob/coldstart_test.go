package predictjob

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs/jobstest"
)

// The child process of BenchmarkColdStart is told what to load by these.
const (
	coldStartChildEnv = "TEXT2BRAIN_COLD_START_MODEL"
	coldStartBucket   = "models"
	coldStartPrefix   = "models/cold"
)

var coldStartOnce sync.Once

// BenchmarkColdStart is the cold start of a Predict instance as the local stack has it: the bundle
// in a fake Cloud Storage bucket served by another process (this one), and a new process that has
// loaded nothing handles its first job, from the message to the finished document (model loaded,
// map predicted, its three files written). ns/op is the child's whole run, load-ms LoadModel in it
// and first-map-ms the first Handle, LoadModel included.
func BenchmarkColdStart(b *testing.B) {
	dir, lib := testenv.BundleDir(b), testenv.ORTLibrary(b)
	if uri := os.Getenv(coldStartChildEnv); uri != "" {
		coldStartOnce.Do(func() { coldStartChild(b, uri, dir, lib) })
		return
	}
	gcs, err := emulators.StartStorage(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer gcs.Stop()
	b.Setenv("STORAGE_EMULATOR_HOST", gcs.Host())
	uploadBundle(b, dir)

	var load, first time.Duration
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkColdStart$", "-test.benchtime=1x")
		cmd.Env = append(os.Environ(), coldStartChildEnv+"=gs://"+coldStartBucket+"/"+coldStartPrefix)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child failed: %v\n%s", err, out)
		}
		l, f, ok := parseColdStart(string(out))
		if !ok {
			b.Fatalf("the child printed no timings:\n%s", out)
		}
		load += l
		first += f
	}
	b.ReportMetric(float64(load.Microseconds())/1000/float64(b.N), "load-ms")
	b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "first-map-ms")
}

// uploadBundle creates the models bucket and copies the bundle in dir into it.
func uploadBundle(b *testing.B, dir string) {
	ctx := context.Background()
	client, err := storage.NewClient(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	if err := client.Bucket(coldStartBucket).Create(ctx, "test", nil); err != nil {
		b.Fatal(err)
	}
	st, err := blobs.New(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Put(ctx, coldStartBucket, coldStartPrefix+"/"+e.Name(), blobs.Object{Data: data}); err != nil {
			b.Fatal(err)
		}
	}
}

// coldStartChild handles one job on a worker whose model is the bundle at uri, and prints how long
// the load and the whole job took.
func coldStartChild(b *testing.B, uri, dir, lib string) {
	ctx := context.Background()
	h, err := bundle.LoadHeader(os.DirFS(dir))
	if err != nil {
		b.Fatal(err)
	}
	st, err := blobs.New(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var load time.Duration
	w := worker{st: jobstest.NewStore(), bucket: &memBucket{objects: map[string]blobs.Object{}}, loads: &atomic.Int32{}}
	w.Worker = New(w.st, w.bucket, "results", func(ctx context.Context) (*model.Model, error) {
		start := time.Now()
		m, err := LoadModel(ctx, st, uri, lib)
		load = time.Since(start)
		return m, err
	})
	job := w.queued(b, h.Manifest.ModelVersion, "faces")
	start := time.Now()
	if err := w.Handle(ctx, job); err != nil {
		b.Fatal(err)
	}
	first := time.Since(start)
	if d := w.st.Doc(job.ID); d.Status != jobs.Done {
		b.Fatalf("the job is %s, not done", d.Status)
	}
	fmt.Printf("COLDSTART %d %d\n", load.Microseconds(), first.Microseconds())
}

func parseColdStart(out string) (load, first time.Duration, ok bool) {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "COLDSTART" {
			l, err1 := strconv.ParseInt(f[1], 10, 64)
			c, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 == nil && err2 == nil {
				return time.Duration(l) * time.Microsecond, time.Duration(c) * time.Microsecond, true
			}
		}
	}
	return 0, 0, false
}
