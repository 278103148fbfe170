package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vkit "cloud.google.com/go/pubsub/v2/apiv1"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
)

// The function binary: a build of ./functions/cmd/localstack (the test binary cannot serve as one).
var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

func functionBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "localstack-test-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "localstack")
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", binary, "./functions/cmd/localstack")
		cmd.Dir = testenv.Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./functions/cmd/localstack: %v\n%s", err, out)
		}
		t.Logf("built %s in %.1f s", binary, time.Since(start).Seconds())
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

func testOptions(t *testing.T, log io.Writer) Options {
	return Options{
		DataDir:        t.TempDir(),
		BundleDir:      testenv.BundleDir(t),
		ORTLibrary:     testenv.ORTLibrary(t),
		FunctionBinary: functionBinary(t),
		Log:            log,
	}
}

func startStack(t *testing.T, opt Options, log *emulators.Tail) *Stack {
	t.Helper()
	start := time.Now()
	s, err := Start(context.Background(), opt)
	if err != nil {
		t.Fatalf("Start: %v\nlog:\n%s", err, log)
	}
	t.Logf("the stack started in %.1f s at %s", time.Since(start).Seconds(), s.URL)
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("stack log:\n%s", log)
		}
	})
	return s
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// pids are the process groups of the stack's children.
func (s *Stack) pids() map[string]int {
	return map[string]int{
		"Query": s.query.cmd.Process.Pid, "Predict": s.predict.cmd.Process.Pid,
		"Firestore": s.Firestore.Pid(), "Pub/Sub": s.PubSub.Pid(),
	}
}

func assertGone(t *testing.T, pids map[string]int) {
	t.Helper()
	for name, pid := range pids {
		if pid == 0 {
			continue
		}
		if !emulators.WaitGroupGone(pid, 5*time.Second) {
			t.Errorf("%s (process group %d) is still alive", name, pid)
		}
	}
}

func TestStack(t *testing.T) {
	log := emulators.NewTail(100000)
	opt := testOptions(t, log)
	opt.ExtraEnv = []string{"T2B_BUILD=localstack-test"}
	s := startStack(t, opt, log)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") || !strings.HasSuffix(s.URL, "/") {
		t.Errorf("URL = %q", s.URL)
	}
	if !strings.Contains(log.String(), "[localstack] ready") {
		t.Errorf("no ready line in the log:\n%s", log)
	}

	// The front server: the page at /, the API proxied to Query on the same origin.
	code, hdr, body := get(t, s.URL)
	if code != 200 || !strings.Contains(body, "<title>text2brain</title>") || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Errorf("GET / = %d %s\n%.300s", code, hdr.Get("Content-Type"), body)
	}
	if code, _, body := get(t, s.URL+"app.js"); code != 200 || !strings.Contains(body, "/api/v1/maps") {
		t.Errorf("GET /app.js = %d", code)
	}
	code, _, body = get(t, s.URL+"healthz")
	var health struct {
		Status       string `json:"status"`
		ModelVersion string `json:"model_version"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &health) != nil || health.ModelVersion != s.ModelVersion {
		t.Errorf("GET /healthz through the proxy = %d %s (model %s)", code, body, s.ModelVersion)
	}
	if code, _, body := get(t, s.URL+"api/v1/version"); code != 200 || !strings.Contains(body, "localstack-test") {
		t.Errorf("GET /api/v1/version through the proxy = %d %s (T2B_BUILD from ExtraEnv expected)", code, body)
	}

	// The functions got the stack's environment.
	env := childEnv(t, s.query.cmd.Process.Pid)
	for k, want := range map[string]string{
		"FUNCTION_TARGET": "Query", "PORT": strconv.Itoa(s.query.port),
		"GOOGLE_CLOUD_PROJECT": DefaultProject, "FIRESTORE_EMULATOR_HOST": s.FirestoreHost,
		"PUBSUB_EMULATOR_HOST": s.PubSubHost, "STORAGE_EMULATOR_HOST": s.StorageHost,
		"T2B_MODEL_URI":      "gs://" + DefaultModelsBucket + "/models/" + s.ModelVersion,
		"T2B_RESULTS_BUCKET": DefaultResultsBucket, "T2B_TOPIC": DefaultTopic, "ONNXRUNTIME_LIB": opt.ORTLibrary,
	} {
		if env[k] != want {
			t.Errorf("Query's %s = %q, want %q", k, env[k], want)
		}
	}
	if env := childEnv(t, s.predict.cmd.Process.Pid); env["FUNCTION_TARGET"] != "Predict" {
		t.Errorf("Predict's FUNCTION_TARGET = %q", env["FUNCTION_TARGET"])
	}

	// The bundle is in the models bucket; the results bucket exists.
	client, err := s.storageClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var names []string
	it := client.Bucket(s.ModelsBucket).Objects(ctx, nil)
	for {
		o, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, o.Name)
		info, err := os.Stat(filepath.Join(opt.BundleDir, filepath.Base(o.Name)))
		if err != nil || info.Size() != o.Size {
			t.Errorf("%s has %d bytes, the bundle's file %v", o.Name, o.Size, err)
		}
	}
	sort.Strings(names)
	var want []string
	for _, f := range []string{"model.onnx", "vocabulary.json", "mask.nii.gz", "articles.bin", "template.nii.gz", "manifest.json"} {
		want = append(want, "models/"+s.ModelVersion+"/"+f)
	}
	sort.Strings(want)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("models bucket holds %v, want %v", names, want)
	}
	if _, err := client.Bucket(s.ResultsBucket).Attrs(ctx); err != nil {
		t.Errorf("results bucket: %v", err)
	}

	// The topic and the push subscription to Predict.
	topics, err := vkit.NewTopicAdminClient(ctx, pubsubOptions(s.PubSubHost)...)
	if err != nil {
		t.Fatal(err)
	}
	defer topics.Close()
	subs, err := vkit.NewSubscriptionAdminClient(ctx, pubsubOptions(s.PubSubHost)...)
	if err != nil {
		t.Fatal(err)
	}
	defer subs.Close()
	var topicNames []string
	tit := topics.ListTopics(ctx, &pubsubpb.ListTopicsRequest{Project: "projects/" + s.ProjectID})
	for {
		tp, err := tit.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		topicNames = append(topicNames, tp.Name)
	}
	if len(topicNames) != 1 || topicNames[0] != "projects/text2brain-local/topics/text2brain-jobs" {
		t.Errorf("topics: %v", topicNames)
	}
	sub, err := subs.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: "projects/text2brain-local/subscriptions/text2brain-predict"})
	if err != nil {
		t.Fatal(err)
	}
	wantEndpoint := s.PredictURL + "/projects/text2brain-local/topics/text2brain-jobs"
	if sub.Topic != s.TopicName || sub.GetPushConfig().GetPushEndpoint() != wantEndpoint || sub.AckDeadlineSeconds != 60 {
		t.Errorf("subscription: topic %s, push endpoint %s (want %s), ack deadline %d",
			sub.Topic, sub.GetPushConfig().GetPushEndpoint(), wantEndpoint, sub.AckDeadlineSeconds)
	}

	// A published message is pushed to Predict, which acknowledges it. A second push subscription
	// on the topic relays its pushes to Predict's push endpoint and records Predict's answers; the
	// stack's own subscription reports no failed push.
	answers := make(chan int, 10)
	tap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, wantEndpoint, r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answers <- 0
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		answers <- resp.StatusCode
		w.WriteHeader(http.StatusNoContent) // the tap itself always acknowledges
	}))
	defer tap.Close()
	if _, err := subs.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/text2brain-local/subscriptions/test-tap", Topic: s.TopicName,
		PushConfig: &pubsubpb.PushConfig{PushEndpoint: tap.URL + "/" + s.TopicName}, AckDeadlineSeconds: 10,
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, WarmupMessage); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-answers:
		if code < 200 || code > 299 {
			t.Errorf("Predict answered a pushed warm-up message with %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Error("no message was pushed within 20 s")
	}

	// The whole way: Query publishes a job, the emulator pushes it to Predict, Predict stores the
	// map, Query answers with it, and the map and its preview come through the front server.
	code, _, body = get(t, s.URL+"api/v1/maps?q=faces&wait=10")
	var res struct {
		Status     string   `json:"status"`
		Terms      []string `json:"recognized_terms"`
		MapURL     string   `json:"map_url"`
		PreviewURL string   `json:"preview_url"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &res) != nil || res.Status != "done" {
		t.Errorf("GET /api/v1/maps?q=faces&wait=10 = %d %.500s", code, body)
	} else {
		for _, u := range []string{res.MapURL, res.PreviewURL} {
			if code, _, body := get(t, strings.TrimSuffix(s.URL, "/")+u); code != 200 || len(body) < 1000 {
				t.Errorf("GET %s = %d, %d bytes", u, code, len(body))
			}
		}
	}
	time.Sleep(time.Second) // a failed push is logged at once; give it a moment
	if n := s.PushFailures(); n != 0 {
		t.Errorf("%d pushes to Predict failed", n)
	}

	// A test can restart the Firestore emulator on the same port; the stack keeps running.
	host := s.Firestore.Host()
	if err := s.Firestore.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Firestore.Host() != host {
		t.Errorf("restarted Firestore on %s, was %s", s.Firestore.Host(), host)
	}
	select {
	case <-s.Done():
		t.Fatalf("the stack stopped after a Firestore restart: %v", s.Err())
	case <-time.After(500 * time.Millisecond):
	}

	// Stop ends every child process, and the front server.
	pids := s.pids()
	stopStart := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the stack stopped in %.1f s", time.Since(stopStart).Seconds())
	assertGone(t, pids)
	select {
	case <-s.Done():
	default:
		t.Error("Done is open after Stop")
	}
	if s.Err() != nil {
		t.Errorf("Err after Stop = %v", s.Err())
	}
	if conn, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(s.URL, "http://"), "/"), time.Second); err == nil {
		conn.Close()
		t.Error("the front server still accepts connections after Stop")
	}
	if err := s.Stop(); err != nil {
		t.Errorf("a second Stop: %v", err)
	}
}

// childEnv reads a process's environment from /proc.
func childEnv(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(data), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v // the last one wins, as in the child
		}
	}
	return env
}

func TestChildDeathStopsTheStack(t *testing.T) {
	log := emulators.NewTail(100000)
	opt := testOptions(t, log)
	opt.SchedulerEvery = -1
	s := startStack(t, opt, log)
	pids := s.pids()
	if err := syscall.Kill(pids["Predict"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the stack did not stop after Predict died")
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "Predict function") {
		t.Errorf("Err = %v, want one naming the Predict function", err)
	}
	assertGone(t, pids)
}

func TestConfigProblemsAtOnce(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("T2B_PORT", "eighty")
	t.Setenv("T2B_SCHEDULER_EVERY", "often")
	t.Setenv("TEXT2BRAIN_MODEL", filepath.Join(empty, "no-model"))
	t.Setenv("ONNXRUNTIME_LIB", filepath.Join(empty, "libonnxruntime.so"))
	t.Setenv("CLOUDSDK_ROOT", empty)
	t.Setenv("T2B_DATA_DIR", t.TempDir())
	start := time.Now()
	opt, err := OptionsFromEnv()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"T2B_PORT=\"eighty\"", "T2B_SCHEDULER_EVERY", "run `make model`", "run `make ort`",
		"Firestore emulator is not installed", "Pub/Sub emulator is not installed", "gcloud components install"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "frontend") || strings.Contains(err.Error(), "data directory") {
		t.Errorf("the error names a problem that is not there:\n%v", err)
	}
	// Start refuses the same options at once, without starting anything.
	opt.FunctionBinary = "/bin/true"
	if _, err := Start(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "make model") {
		t.Errorf("Start: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the checks took %s", d)
	}
}

func TestFrontPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	opt := testOptions(t, io.Discard)
	opt.Port = ln.Addr().(*net.TCPAddr).Port
	if _, err := Start(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "T2B_PORT") {
		t.Fatalf("Start on a port in use: %v", err)
	}
}

// A result computed in one run is served from the cache in the next: Firestore's documents are
// exported on stop and imported on start, and the files stay in DataDir/gcs.
func TestResultsSurviveARestart(t *testing.T) {
	log := emulators.NewTail(100000)
	opt := testOptions(t, log)
	opt.SchedulerEvery = -1
	s := startStack(t, opt, log)
	code, _, body := get(t, s.URL+"api/v1/maps?q=reading+words&wait=10")
	if code != 200 {
		t.Fatalf("first run: %d %s", code, body)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	s = startStack(t, opt, log)
	code, _, body = get(t, s.URL+"api/v1/maps?q=reading+words")
	if code != 200 || !strings.Contains(body, `"hits":1`) {
		t.Fatalf("second run: %d %s, want the cached result (200, first hit) without a new job", code, body)
	}
	var id struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(body), &id)
	if code, _, _ := get(t, s.URL+"api/v1/maps/"+id.ID+"/map.nii.gz"); code != 200 {
		t.Errorf("the map file after a restart: %d", code)
	}
}
