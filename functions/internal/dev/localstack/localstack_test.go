package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
		"Query": s.query.pid(), "Predict": s.predict.pid(),
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
	// The stack's progress is in its log file, not on the console.
	if strings.Contains(log.String(), "ready in") || !strings.Contains(readLog(t, s, "localstack"), "[localstack] ready in") {
		t.Errorf("the ready line should be in localstack.log only; console:\n%s", log)
	}

	// The front server: the page at /, the API proxied to Query on the same origin.
	code, hdr, body := get(t, s.URL)
	if code != 200 || !strings.Contains(body, "<title>text2brain") || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Errorf("GET / = %d %s\n%.300s", code, hdr.Get("Content-Type"), body)
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
	env := childEnv(t, s.query.pid())
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
	if env := childEnv(t, s.predict.pid()); env["FUNCTION_TARGET"] != "Predict" {
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
	for _, f := range []string{"model.onnx", "vocabulary.json", "mask.nii.gz", "articles.bin", "template.nii.gz", "surface.bin", "decoder.bin", "manifest.json"} {
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
	// A pull subscription: the push stand-in receives from it and posts to Predict.
	wantEndpoint := s.PredictURL + "/projects/text2brain-local/topics/text2brain-jobs"
	if sub.Topic != s.TopicName || sub.GetPushConfig().GetPushEndpoint() != "" || sub.AckDeadlineSeconds != 60 || s.PushEndpoint != wantEndpoint {
		t.Errorf("subscription: topic %s, push endpoint %q (want none), ack deadline %d; the stand-in pushes to %s (want %s)",
			sub.Topic, sub.GetPushConfig().GetPushEndpoint(), sub.AckDeadlineSeconds, s.PushEndpoint, wantEndpoint)
	}

	// A published message is pushed to Predict, which acknowledges it: the subscription has no
	// message left outstanding, and no push failed.
	if err := s.Publish(ctx, WarmupMessage); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the warm-up message taken by Predict", 30*time.Second, func() bool {
		return strings.Contains(readLog(t, s, "localstack"), "[push] the warm-up message taken")
	})

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
	if n := s.PushFailures(); n != 0 {
		t.Errorf("%d pushes to Predict failed", n)
	}

	// The console: one line for the job, no access log, no debug lines; those are in the files.
	// The client can have its map before Predict's answer reaches the push stand-in (Query's
	// listener sees the document done first), so the job's lines may come a moment later.
	jobLine := regexp.MustCompile(`(?m)^\[job\] [0-9a-f]{32} "faces" \d+ ms$`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if jobLine.MatchString(consoleText(log)) && strings.Contains(readLog(t, s, "predict"), "msg=prediction") {
			break
		}
	}
	if !jobLine.MatchString(consoleText(log)) {
		t.Errorf("no job line on the console:\n%s", log)
	}
	for _, noise := range []string{"GET /", "level=INFO", "Detected HTTP/2", "[scheduler]"} {
		if strings.Contains(log.String(), noise) {
			t.Errorf("the console shows %q:\n%s", noise, log)
		}
	}
	for name, want := range map[string]string{"storage": "GET /", "query": "Query ready", "predict": "msg=prediction",
		"firestore": "API endpoint", "pubsub": "Server started"} {
		if got := readLog(t, s, name); !strings.Contains(got, want) {
			t.Errorf("%s.log does not have %q:\n%.2000s", name, want, got)
		}
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

// readLog is one of the stack's log files, DataDir/logs/NAME.log.
func readLog(t *testing.T, s *Stack, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.LogDir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond until it holds, or fails the test after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLine waits for a console line matching re that was not there before (n: how many there were).
func waitLine(t *testing.T, log *emulators.Tail, re string, n int) {
	t.Helper()
	rx := regexp.MustCompile(re)
	waitFor(t, "the console line "+re, 90*time.Second, func() bool {
		return len(rx.FindAllString(consoleText(log), -1)) > n
	})
}

// consoleText is what the console got (Tail indents its lines).
func consoleText(log *emulators.Tail) string {
	return regexp.MustCompile(`(?m)^  `).ReplaceAllString(log.String(), "")
}

// idOf is a map's id from an API answer.
func idOf(t *testing.T, body string) string {
	t.Helper()
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.ID == "" {
		t.Fatalf("no id in %s", body)
	}
	return v.ID
}

// Every child killed with SIGKILL comes back on its own, and the stack goes on serving: a job in
// flight at Predict completes once Predict is back; the front server answers 503 (JSON, with
// Retry-After), never a reset, while Query is down; the Firestore emulator comes back with its
// documents, the Pub/Sub emulator with the topic and subscription.
func TestCrashedChildrenAreRestarted(t *testing.T) {
	log := emulators.NewTail(100000)
	opt := testOptions(t, log)
	// No warm-up: Predict's first job loads the model, long enough to kill it in flight. No
	// stale-job republish in the test's time: only the push stand-in can finish that job.
	opt.SchedulerEvery = -1
	opt.FirestoreSaveEvery = 200 * time.Millisecond
	opt.ExtraEnv = []string{"T2B_STALE_AFTER=1h", "T2B_RATE=1000", "T2B_RATE_BURST=1000", "T2B_PREDICT_BURST=100"}
	s := startStack(t, opt, log)

	// Predict, with a job in flight.
	code, _, body := get(t, s.URL+"api/v1/maps?q=listening+to+music")
	if code != http.StatusAccepted {
		t.Fatalf("a new query: %d %s", code, body)
	}
	id := idOf(t, body)
	waitFor(t, "the job pushed to Predict", 30*time.Second, func() bool { return s.push.inFlight.Load() > 0 })
	if err := syscall.Kill(s.predict.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitLine(t, log, `(?m)^\[localstack\] Predict exited \(signal: killed\); restarting in 0\.5 s$`, 0)
	waitLine(t, log, `(?m)^\[localstack\] Predict is back$`, 0)
	back := time.Now()
	waitFor(t, "the job in flight done", 60*time.Second, func() bool {
		code, _, _ := get(t, s.URL+"api/v1/maps/"+id)
		return code == http.StatusOK
	})
	t.Logf("the job in flight was done %.1f s after Predict was back (%d failed pushes)", time.Since(back).Seconds(), s.PushFailures())
	if s.PushFailures() == 0 {
		t.Error("no push failed: the job was not in flight when Predict was killed")
	}
	waitLine(t, log, `(?m)^\[job\] `+id+` "listening to music" \d+ ms \(push \d+\)$`, 0)

	// Query, with a request in flight (held: Predict is frozen, so the job cannot finish) and a
	// client polling all along.
	type answer struct {
		code             int
		retryAfter, body string
		err              error
	}
	answers := make(chan answer, 10000)
	stop := make(chan struct{})
	var polling sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	ask := func(url string) answer {
		resp, err := client.Get(url)
		if err != nil {
			return answer{err: err}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(b)}
	}
	polling.Add(1)
	go func() {
		defer polling.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			answers <- ask(s.URL + "healthz")
		}
	}()
	predictPid := s.predict.pid()
	if err := syscall.Kill(predictPid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	held := make(chan answer, 1)
	go func() { held <- ask(s.URL + "api/v1/maps?q=reading+words&wait=10") }()
	time.Sleep(time.Second) // the request reaches Query and waits there
	if err := syscall.Kill(s.query.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	heldAnswer := <-held
	syscall.Kill(predictPid, syscall.SIGCONT)
	waitLine(t, log, `(?m)^\[localstack\] Query exited \(signal: killed\); restarting in 0\.5 s$`, 0)
	waitLine(t, log, `(?m)^\[localstack\] Query is back$`, 0)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	polling.Wait()
	close(answers)
	is503 := func(a answer) bool {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		return a.err == nil && a.code == http.StatusServiceUnavailable && a.retryAfter != "" &&
			json.Unmarshal([]byte(a.body), &e) == nil && e.Error.Code == "unavailable" && e.Error.Message != ""
	}
	if heldAnswer.code == http.StatusOK {
		t.Log("the held request was answered before Query was killed")
	} else if !is503(heldAnswer) {
		t.Errorf("the request in flight when Query was killed got %+v, want a JSON 503 with Retry-After", heldAnswer)
	}
	var ok, unavailable int
	for a := range answers {
		switch {
		case a.err == nil && a.code == http.StatusOK:
			ok++
		case is503(a):
			unavailable++
		default:
			t.Errorf("while Query restarted a client got %+v, want 200 or a JSON 503 with Retry-After", a)
		}
	}
	t.Logf("while Query restarted: %d answers 200, %d answers 503", ok, unavailable)
	if unavailable == 0 {
		t.Error("no 503 while Query was down")
	}

	// The Firestore emulator, with the done map in its export.
	dir := filepath.Join(opt.DataDir, "firestore")
	waitFor(t, "the map's document exported", 30*time.Second, func() bool { return exportHolds(dir, id) })
	if err := syscall.Kill(s.Firestore.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitLine(t, log, `(?m)^\[localstack\] Firestore emulator exited \(signal: killed\); restarting in 0\.5 s$`, 0)
	waitLine(t, log, `(?m)^\[localstack\] Firestore emulator is back$`, 0)
	waitFor(t, "the map served after the Firestore emulator's restart", 60*time.Second, func() bool {
		code, _, _ := get(t, s.URL+"api/v1/maps/"+id)
		return code == http.StatusOK
	})

	// The Pub/Sub emulator, holding jobs that the push stand-in has not taken yet (it takes
	// pushParallel at a time, and Predict, frozen, finishes none): the emulator keeps messages in
	// memory only, so the stack publishes the jobs of the unfinished maps again once it is back.
	// With no stale-job republish in the test's time, only that can finish them.
	frozen := s.predict.pid()
	if err := syscall.Kill(frozen, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, q := range []string{"pain", "auditory", "visual", "motor", "language", "memory", "reward", "fear", "emotion",
		"attention", "speech", "navigation", "taste", "touch", "semantic", "syntax", "inhibition", "faces", "saccades", "grasping"} {
		code, _, body := get(t, s.URL+"api/v1/maps?q="+url.QueryEscape(q))
		if code != http.StatusAccepted {
			syscall.Kill(frozen, syscall.SIGCONT)
			t.Fatalf("new query %q: %d %s", q, code, body)
		}
		ids = append(ids, idOf(t, body))
	}
	waitFor(t, "the push stand-in holding all the jobs it takes at once", 30*time.Second, func() bool { return s.push.active.Load() == pushParallel })
	if err := syscall.Kill(s.PubSub.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitLine(t, log, `(?m)^\[localstack\] Pub/Sub emulator exited \(signal: killed\); restarting in 0\.5 s$`, 0)
	syscall.Kill(frozen, syscall.SIGCONT)
	waitLine(t, log, `(?m)^\[localstack\] Pub/Sub emulator is back$`, 0)
	back = time.Now()
	waitFor(t, "every job held when the Pub/Sub emulator crashed done", 90*time.Second, func() bool {
		for _, id := range ids {
			if code, _, _ := get(t, s.URL+"api/v1/maps/"+id); code != http.StatusOK {
				return false
			}
		}
		return true
	})
	// Which jobs the emulator still held when it died depends on timing (the client library
	// buffers some, and Predict may finish the pushed ones before the emulator is back): with no
	// stale-job republish in the test's time, every job done is the proof; the line says how
	// many needed publishing again.
	republished := regexp.MustCompile(`(?m)^\[localstack\] published the jobs of (\d+) unfinished maps again`).FindStringSubmatch(log.String())
	t.Logf("the %d jobs were done %.1f s after the Pub/Sub emulator was back (published again: %v)", len(ids), time.Since(back).Seconds(), republished)
	// And a new query goes through the restarted emulator.
	waitFor(t, "a new query done after the Pub/Sub emulator's restart", 60*time.Second, func() bool {
		code, _, _ := get(t, s.URL+"api/v1/maps?q=smell&wait=10")
		return code == http.StatusOK
	})

	select {
	case <-s.Done():
		t.Fatalf("the stack stopped: %v", s.Err())
	default:
	}
	pids := s.pids()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, pids)
	if testing.Verbose() {
		t.Logf("the console:\n%s", log)
	}
}

// exportHolds reports whether the latest Firestore export in dir has a file containing s.
func exportHolds(dir, s string) bool {
	meta := emulators.LatestExport(dir)
	if meta == "" {
		return false
	}
	found := false
	filepath.WalkDir(filepath.Dir(filepath.Dir(meta)), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), s) {
				found = true
			}
		}
		return nil
	})
	return found
}

// One stack at a time on a data directory: another Start stops at once and says which process
// holds it. What a killed run left running there is ended by the next Start; a port in use is
// named with the process that holds it.
func TestDataDirLockAndLeftovers(t *testing.T) {
	opt := testOptions(t, io.Discard)
	console := emulators.NewTail(1000)
	opt.Log = console

	// A leftover of a killed run: a process group with the run's mark in its environment.
	leftover := exec.Command("sleep", "600")
	leftover.Env = append(os.Environ(), runEnv+"=0123456789abcdef")
	leftover.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := leftover.Start(); err != nil {
		t.Fatal(err)
	}
	defer leftover.Process.Kill()
	exited := make(chan struct{})
	go func() { leftover.Wait(); close(exited) }()
	// A process that merely looks alike (another run's mark) is left alone.
	bystander := exec.Command("sleep", "600")
	bystander.Env = append(os.Environ(), runEnv+"=fedcba9876543210")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { bystander.Process.Kill(); bystander.Wait() }()
	rec, _ := json.Marshal(runRecord{PID: 1 << 30, RunID: "0123456789abcdef", BootID: bootID(), Started: time.Now(),
		Groups: map[string]int{"Firestore emulator": leftover.Process.Pid}})
	if err := os.WriteFile(filepath.Join(opt.DataDir, runName), rec, 0o644); err != nil {
		t.Fatal(err)
	}
	// The front port in use: Start stops right after the cleanup, naming who holds the port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	opt.Port = ln.Addr().(*net.TCPAddr).Port
	_, err = Start(context.Background(), opt)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) || !strings.Contains(err.Error(), "T2B_PORT") {
		t.Errorf("Start with the front port in use: %v, want the process that holds it and T2B_PORT", err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Error("the leftover of the killed run is still running")
	}
	if !strings.Contains(console.String(), fmt.Sprintf("ended the Firestore emulator (process group %d: sleep 600)", leftover.Process.Pid)) {
		t.Errorf("the console does not say what was ended:\n%s\n(%v)", console, err)
	}
	if err := syscall.Kill(bystander.Process.Pid, 0); err != nil {
		t.Errorf("a process without the run's mark was killed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(opt.DataDir, runName)); !os.IsNotExist(err) {
		t.Errorf("the pid file is left after a failed start: %v", err)
	}

	// While a stack holds the data directory, another Start stops at once.
	held, _, err := claimDataDir(opt.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer held.release()
	ln.Close()
	_, err = Start(context.Background(), opt)
	if err == nil || !strings.Contains(err.Error(), "another local stack is running on the data directory") ||
		!strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
		t.Errorf("a second Start on a held data directory: %v", err)
	}
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

// A port in use stops Start at once, naming the process that holds it and the variable to change.
func TestPortsInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	holder := fmt.Sprintf("process %d", os.Getpid())
	opt := testOptions(t, io.Discard)
	opt.Port = port
	if _, err := Start(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "T2B_PORT") || !strings.Contains(err.Error(), holder) {
		t.Errorf("Start on a front port in use: %v", err)
	}
	opt.Port, opt.FirestorePort = 0, port
	if _, err := Start(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "T2B_FIRESTORE_PORT") || !strings.Contains(err.Error(), holder) {
		t.Errorf("Start on a Firestore port in use: %v", err)
	}
}

// A result computed in one run is served from the cache in the next: Firestore's documents are
// exported on stop and imported on start, and the files stay in DataDir/gcs. The hits Query
// counted in memory are written when the stack stops it (SIGTERM), long before its next flush.
func TestResultsSurviveARestart(t *testing.T) {
	log := emulators.NewTail(100000)
	opt := testOptions(t, log)
	opt.SchedulerEvery = -1
	opt.ExtraEnv = []string{"T2B_HIT_FLUSH=1h"}
	s := startStack(t, opt, log)
	code, _, body := get(t, s.URL+"api/v1/maps?q=reading+words&wait=10")
	if code != 200 {
		t.Fatalf("first run: %d %s", code, body)
	}
	for i := 1; i <= 2; i++ {
		if code, _, body := get(t, s.URL+"api/v1/maps?q=reading+words"); code != 200 || !strings.Contains(body, fmt.Sprintf(`"hits":%d`, i)) {
			t.Fatalf("first run, hit %d: %d %s", i, code, body)
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	s = startStack(t, opt, log)
	code, _, body = get(t, s.URL+"api/v1/maps?q=reading+words")
	if code != 200 || !strings.Contains(body, `"hits":3`) {
		t.Fatalf("second run: %d %s, want the cached result (200, third hit: two written when the first run stopped) without a new job", code, body)
	}
	var id struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(body), &id)
	if code, _, _ := get(t, s.URL+"api/v1/maps/"+id.ID+"/map.nii.gz"); code != 200 {
		t.Errorf("the map file after a restart: %d", code)
	}
}

// A function's output: all of it to its log file; its warnings, errors and panics to the
// console, a repeated message once per 10 s.
func TestFunctionOutputOnTheConsole(t *testing.T) {
	console := emulators.NewTail(100)
	s := &Stack{out: newLineWriter(console)}
	file, err := os.Create(filepath.Join(t.TempDir(), "query.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	out := newChildOutput(s, "[query] ", file, emulators.NewTail(10))
	lines := []string{
		`time=2026-12-02T00:00:00.000Z level=INFO msg="Query ready" model_version=nq-1`,
		`time=2026-12-02T00:00:01.000Z level=ERROR msg="backend unavailable" err="rpc error: code = Unavailable"`,
		`time=2026-12-02T00:00:01.100Z level=ERROR msg="backend unavailable" err="rpc error: code = Unavailable"`,
		`time=2026-12-02T00:00:02.000Z level=WARN msg="counting a hit" id=abc`,
		`{"severity":"ERROR","message":"boom"}`,
		`{"severity":"INFO","message":"fine"}`,
		`panic: runtime error: index out of range [3] with length 3`,
		`goroutine 1 [running]:`,
	}
	io.WriteString(out, strings.Join(lines, "\n")+"\n")
	want := `[query] level=ERROR msg="backend unavailable" err="rpc error: code = Unavailable"
[query] level=WARN msg="counting a hit" id=abc
[query] {"severity":"ERROR","message":"boom"}
[query] panic: runtime error: index out of range [3] with length 3`
	if got := consoleText(console); got != want {
		t.Errorf("the console:\n%s\nwant:\n%s", got, want)
	}
	if b, _ := os.ReadFile(file.Name()); string(b) != strings.Join(lines, "\n")+"\n" {
		t.Errorf("the log file:\n%s", b)
	}
}
