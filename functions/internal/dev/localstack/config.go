package localstack

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/release/publish"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
)

// Defaults of the configuration.
const (
	DefaultPort           = 8080
	DefaultProject        = "text2brain-local"
	DefaultModelsBucket   = "text2brain-models"
	DefaultResultsBucket  = "text2brain-results"
	DefaultTopic          = config.DefaultTopic
	DefaultSubscription   = "text2brain-predict"
	DefaultSchedulerEvery = 5 * time.Minute
	DefaultStartTimeout   = 60 * time.Second
	// AckDeadline is the push subscription's acknowledgement deadline.
	AckDeadline = 60 * time.Second
)

// Options configures the stack. Start fills what is empty with the defaults (relative paths are
// taken from the working directory); OptionsFromEnv reads them from the environment.
type Options struct {
	// Port of the front server on 127.0.0.1 (T2B_PORT, default 8080); 0 picks a free one.
	Port int
	// DataDir holds what outlives a run: the fake Cloud Storage's buckets (DataDir/gcs), the
	// Firestore emulator's latest export (DataDir/firestore), and the logs (DataDir/logs,
	// replaced by each run); and its lock file, and while the stack runs its pid file
	// (T2B_DATA_DIR, default data). One stack at a time uses a data directory.
	DataDir string
	// BundleDir is the model bundle made by `make model` (TEXT2BRAIN_MODEL, default build/model).
	BundleDir string
	// MoreBundleDirs are other bundles served beside it, such as the network's of `make
	// model-neural` (TEXT2BRAIN_MORE_MODELS, comma-separated; default none).
	MoreBundleDirs []string
	// ORTLibrary is libonnxruntime.so from `make ort` (ONNXRUNTIME_LIB, default
	// .cache/onnxruntime/libonnxruntime.so).
	ORTLibrary string
	// FunctionBinary is the executable started as `FunctionBinary function Query|Predict`: a build
	// of functions/cmd/localstack. Empty means this process's own executable.
	FunctionBinary string
	// SDKRoot is the Google Cloud CLI with the emulators (CLOUDSDK_ROOT, default
	// /usr/lib/google-cloud-sdk).
	SDKRoot string

	ProjectID     string // GOOGLE_CLOUD_PROJECT, default text2brain-local
	ModelsBucket  string // T2B_MODELS_BUCKET, default text2brain-models
	ResultsBucket string // T2B_RESULTS_BUCKET, default text2brain-results
	Topic         string // T2B_TOPIC, default text2brain-jobs
	Subscription  string // T2B_SUBSCRIPTION, default text2brain-predict

	// SchedulerEvery is the period of the warm-up messages that stand in for Cloud Scheduler
	// (T2B_SCHEDULER_EVERY, default 5m; one is also sent at start). Negative turns them off.
	SchedulerEvery time.Duration

	// Ports of the emulators and the functions (T2B_FIRESTORE_PORT, T2B_PUBSUB_PORT,
	// T2B_STORAGE_PORT, T2B_QUERY_PORT, T2B_PREDICT_PORT); 0 picks free ones.
	FirestorePort, PubSubPort, StoragePort, QueryPort, PredictPort int

	// ExtraEnv is added to the functions' environment after everything else (e.g. T2B_MAX_WAIT=2s).
	ExtraEnv []string
	// Log is the console: it receives what a person running the stack needs, errors (the
	// functions' warnings and errors among them, prefixed with [query] and [predict]), restarts,
	// and one line per job ([job] id, the start of its query, milliseconds); nil means
	// os.Stderr. Everything else (the stack's progress, the functions' whole output, the
	// emulators' output, the fake Cloud Storage's access log) is in DataDir/logs.
	Log io.Writer
	// FirestoreSaveEvery is how often the Firestore emulator's documents are exported to
	// DataDir/firestore while it runs (when they changed); 0 means every 5 s.
	FirestoreSaveEvery time.Duration
	// StartTimeout bounds each wait at start (an emulator, a function); 0 means 60 s.
	StartTimeout time.Duration
}

// env is what OptionsFromEnv reads, with config.Parse, the module's one environment reader.
type env struct {
	Port           int             `env:"T2B_PORT, default=8080"`
	FirestorePort  int             `env:"T2B_FIRESTORE_PORT"`
	PubSubPort     int             `env:"T2B_PUBSUB_PORT"`
	StoragePort    int             `env:"T2B_STORAGE_PORT"`
	QueryPort      int             `env:"T2B_QUERY_PORT"`
	PredictPort    int             `env:"T2B_PREDICT_PORT"`
	SchedulerEvery schedulerPeriod `env:"T2B_SCHEDULER_EVERY"`
	DataDir        string          `env:"T2B_DATA_DIR"`
	BundleDir      string          `env:"TEXT2BRAIN_MODEL"`
	MoreBundleDirs []string        `env:"TEXT2BRAIN_MORE_MODELS"`
	ORTLibrary     string          `env:"ONNXRUNTIME_LIB"`
	SDKRoot        string          `env:"CLOUDSDK_ROOT"`
	ProjectID      string          `env:"GOOGLE_CLOUD_PROJECT"`
	ModelsBucket   string          `env:"T2B_MODELS_BUCKET"`
	ResultsBucket  string          `env:"T2B_RESULTS_BUCKET"`
	Topic          string          `env:"T2B_TOPIC"`
	Subscription   string          `env:"T2B_SUBSCRIPTION"`
}

// schedulerPeriod is T2B_SCHEDULER_EVERY: a duration of a second or more, or "off" (or 0).
type schedulerPeriod time.Duration

func (p *schedulerPeriod) UnmarshalText(b []byte) error {
	v := string(b)
	if v == "off" || v == "0" {
		*p = -1
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return errors.New("not a duration of a second or more such as 5m (or off)")
	}
	*p = schedulerPeriod(d)
	return nil
}

// OptionsFromEnv reads the options from the environment (see Options for the variables) and checks
// them; the error names every problem at once.
func OptionsFromEnv() (Options, error) {
	var e env
	// Each value that does not parse is one problem among the others below.
	problems := config.ParseProblems(&e)
	o := Options{Port: e.Port, FirestorePort: e.FirestorePort, PubSubPort: e.PubSubPort, StoragePort: e.StoragePort,
		QueryPort: e.QueryPort, PredictPort: e.PredictPort, SchedulerEvery: time.Duration(e.SchedulerEvery),
		DataDir: e.DataDir, BundleDir: e.BundleDir, MoreBundleDirs: e.MoreBundleDirs, ORTLibrary: e.ORTLibrary, SDKRoot: e.SDKRoot,
		ProjectID: e.ProjectID, ModelsBucket: e.ModelsBucket, ResultsBucket: e.ResultsBucket,
		Topic: e.Topic, Subscription: e.Subscription}
	o = o.withDefaults()
	problems = append(problems, o.problems()...)
	return o, problemError(dedupe(problems))
}

func (o Options) withDefaults() Options {
	abs := func(p, def string) string {
		if p == "" {
			p = def
		}
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	o.DataDir = abs(o.DataDir, "data")
	o.BundleDir = abs(o.BundleDir, filepath.FromSlash(bundle.DefaultDir))
	more := make([]string, 0, len(o.MoreBundleDirs))
	for _, d := range o.MoreBundleDirs {
		if d != "" {
			more = append(more, abs(d, d))
		}
	}
	o.MoreBundleDirs = more
	o.ORTLibrary = abs(o.ORTLibrary, filepath.FromSlash(model.DefaultORTLibrary))
	if o.FunctionBinary == "" {
		if exe, err := os.Executable(); err == nil {
			o.FunctionBinary = exe
		}
	}
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&o.ProjectID, DefaultProject)
	def(&o.ModelsBucket, DefaultModelsBucket)
	def(&o.ResultsBucket, DefaultResultsBucket)
	def(&o.Topic, DefaultTopic)
	def(&o.Subscription, DefaultSubscription)
	if o.SchedulerEvery == 0 {
		o.SchedulerEvery = DefaultSchedulerEvery
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	return o
}

// problems lists what is wrong with (defaulted) options, each with what to do about it.
func (o Options) problems() []string {
	var p []string
	for _, port := range []struct {
		name string
		v    int
	}{{"T2B_PORT", o.Port}, {"T2B_FIRESTORE_PORT", o.FirestorePort}, {"T2B_PUBSUB_PORT", o.PubSubPort},
		{"T2B_STORAGE_PORT", o.StoragePort}, {"T2B_QUERY_PORT", o.QueryPort}, {"T2B_PREDICT_PORT", o.PredictPort}} {
		if port.v < 0 || port.v > 65535 {
			p = append(p, fmt.Sprintf("%s=%d is not a port number (0 to 65535; 0 picks a free port)", port.name, port.v))
		}
	}
	for _, n := range []struct{ name, v string }{{"GOOGLE_CLOUD_PROJECT", o.ProjectID},
		{"T2B_TOPIC", o.Topic}, {"T2B_SUBSCRIPTION", o.Subscription}} {
		if len(n.v) < 3 || strings.ContainsAny(n.v, "/ ") {
			p = append(p, fmt.Sprintf("%s=%q is not a valid name (3 characters or more, no slash or space)", n.name, n.v))
		}
	}
	for _, b := range []struct{ name, v string }{{"T2B_MODELS_BUCKET", o.ModelsBucket}, {"T2B_RESULTS_BUCKET", o.ResultsBucket}} {
		if err := publish.CheckBucketName(b.v); err != nil {
			p = append(p, fmt.Sprintf("%s: %v", b.name, err))
		}
	}
	if o.ModelsBucket == o.ResultsBucket {
		p = append(p, "T2B_MODELS_BUCKET and T2B_RESULTS_BUCKET must differ")
	}
	if err := writableDir(o.DataDir); err != nil {
		p = append(p, fmt.Sprintf("the data directory %s is not writable (%v): set T2B_DATA_DIR to a writable directory", o.DataDir, err))
	}
	if _, err := readBundle(o.BundleDir); err != nil {
		p = append(p, fmt.Sprintf("the model bundle is missing or incomplete at %s (%v): run `make model` (or set TEXT2BRAIN_MODEL)", o.BundleDir, err))
	}
	for _, d := range o.MoreBundleDirs {
		if _, err := readBundle(d); err != nil {
			p = append(p, fmt.Sprintf("the model bundle is missing or incomplete at %s (%v): build it (make model-neural) or leave it out of TEXT2BRAIN_MORE_MODELS", d, err))
		}
	}
	if info, err := os.Stat(o.ORTLibrary); err != nil || !info.Mode().IsRegular() {
		p = append(p, fmt.Sprintf("the ONNX Runtime library is missing at %s: run `make ort` (or set ONNXRUNTIME_LIB)", o.ORTLibrary))
	}
	if o.FunctionBinary == "" {
		p = append(p, "the function binary is not known: set Options.FunctionBinary to a build of ./functions/cmd/localstack")
	} else if info, err := os.Stat(o.FunctionBinary); err != nil || info.Mode()&0o111 == 0 || info.IsDir() {
		p = append(p, fmt.Sprintf("the function binary %s is not an executable: build it with `go build -o %s ./functions/cmd/localstack`", o.FunctionBinary, o.FunctionBinary))
	}
	eo := emulators.Options{SDKRoot: o.SDKRoot}
	if err := emulators.CheckFirestore(eo); err != nil {
		p = append(p, err.Error())
	}
	if err := emulators.CheckPubSub(eo); err != nil {
		p = append(p, err.Error())
	}
	return dedupe(p)
}

func problemError(p []string) error { return config.Problems("the local stack cannot start", p) }

func dedupe(p []string) []string {
	seen := map[string]bool{}
	out := p[:0]
	for _, s := range p {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// readBundle reads the bundle's manifest and returns its model version, after checking that every
// file it lists is there with the manifest's size: a quick check before the stack starts (the
// checksums are verified when the bundle is published to the models bucket).
func readBundle(dir string) (version string, err error) {
	h, err := bundle.LoadHeader(os.DirFS(dir))
	if err != nil {
		return "", err
	}
	man := h.Manifest
	names := make([]string, 0, len(man.Files))
	for name := range man.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.ContainsAny(name, `/\`) {
			return "", fmt.Errorf("manifest.json lists a file outside the bundle: %q", name)
		}
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("no %s", name)
		}
		if want := man.Files[name].Bytes; info.Size() != want {
			return "", fmt.Errorf("%s has %d bytes, the manifest says %d", name, info.Size(), want)
		}
	}
	return man.ModelVersion, nil
}
