// Package localstack runs the whole serverless system on one machine (`make run`), with the same
// code and the same Google client libraries as in the cloud, pointed at local stand-ins:
//
//   - Firestore and Pub/Sub: Google's emulators (package emulators), as child processes; the
//     Firestore emulator's documents are exported to DataDir/firestore every few seconds while it
//     runs and when it stops, and imported when it starts;
//   - Cloud Storage: fake-gcs-server in process, its buckets under DataDir/gcs; the models bucket
//     gets the model bundle under models/<model_version>/ (package publish, as in a deployment),
//     the results bucket the maps;
//   - the two Cloud Functions: child processes of the localstack binary (`localstack function
//     Query` and `localstack function Predict`), each serving one function with the functions
//     framework, as the Go buildpack's generated main does;
//   - the push subscription to Predict: a push stand-in that receives the jobs from a (pull)
//     subscription of the Pub/Sub emulator and posts each to Predict's path /projects/P/topics/T
//     in Pub/Sub's push envelope, pushing again with backoff until Predict takes it;
//   - Cloud Scheduler: a ticker that publishes the warm-up message {"warmup":true};
//   - the public origin: a front server that proxies everything to Query, which serves the page and
//     the API (one origin, as the function's URL is in the cloud).
//
// Start brings it all up and returns once Query answers /healthz; Stop ends every child process.
// A child that dies on its own (a function or an emulator) is started again on the same port,
// after 0.5 s doubling to 10 s while it keeps dying, and the stack goes on serving: the front
// server answers 503 while Query is down, jobs wait for Predict, and the Firestore emulator comes
// back with its latest export. Every child dies with the stack, SIGKILL included, and a start
// ends what a killed run left behind in its data directory.
//
// The console (Options.Log) shows errors, restarts and one line per job; everything else is in
// DataDir/logs.
//
// This package and the tests that drive it use Google's admin clients (buckets, topics,
// subscriptions) directly: they stand in for the infrastructure that Terraform makes in the cloud,
// not for the application, whose Google types stay in its adapter packages.
package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	vkit "cloud.google.com/go/pubsub/v2/apiv1"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
	"google.golang.org/api/option/internaloption"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/cloud/store"
	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/release/publish"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
	"github.com/text2brain/text2brain/functions/internal/serve/queryapi"
)

// WarmupMessage is what the scheduler publishes.
var WarmupMessage, _ = json.Marshal(queue.Message{Warmup: true})

// Stack is the running system. Its fields describe it and must not be changed.
type Stack struct {
	// URL is the front server, "http://127.0.0.1:8080/": the page and the API.
	URL string
	// QueryURL and PredictURL are the function children, "http://127.0.0.1:port".
	QueryURL, PredictURL string
	// The emulators' hosts, "127.0.0.1:port": the values of FIRESTORE_EMULATOR_HOST,
	// PUBSUB_EMULATOR_HOST and STORAGE_EMULATOR_HOST.
	FirestoreHost, PubSubHost, StorageHost string

	ProjectID, Topic, Subscription, ModelsBucket, ResultsBucket string
	// TopicName and SubscriptionName are the full names, projects/P/topics/T and
	// projects/P/subscriptions/S.
	TopicName, SubscriptionName string
	// PushEndpoint is where the push stand-in posts the jobs: PredictURL/projects/P/topics/T.
	PushEndpoint string
	// ModelVersion is the bundle's version and ModelURI gs://ModelsBucket/models/ModelVersion.
	ModelVersion, ModelURI string
	// MoreModelVersions and MoreModelURIs are those of the other bundles (Options.MoreBundleDirs).
	MoreModelVersions, MoreModelURIs []string
	// LogDir is DataDir/logs, where everything the console does not show is.
	LogDir string

	// Firestore and PubSub are the emulators. The stack restarts one that crashes (and makes the
	// topic and subscription again in a restarted Pub/Sub emulator); a test may also Stop and
	// Restart them itself: then nothing restarts them, and after a Restart of the Pub/Sub emulator
	// the test calls SetUpPubSub. A restarted Firestore emulator imports its latest export.
	// Storage is the fake Cloud Storage.
	Firestore, PubSub *emulators.Process
	Storage           *emulators.Storage

	opt      Options
	out      *lineWriter // the console
	file     *lineWriter // localstack.log
	run      *runFile
	runID    string
	frontLn  net.Listener
	front    *http.Server
	query    *child
	predict  *child
	push     *pusher
	topics   *vkit.TopicAdminClient
	subs     *vkit.SubscriptionAdminClient
	docs     *store.Store // the map documents, for republishUnfinished
	logFiles []*os.File
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	frontErr chan error

	mu       sync.Mutex
	stopping bool
	err      error // why the stack ended on its own
	stopErr  error // what went wrong while stopping
	done     chan struct{}
}

// Start brings the system up and returns when it is ready. On error everything already started is
// stopped again.
func Start(ctx context.Context, opt Options) (_ *Stack, err error) {
	opt = opt.withDefaults()
	if err := problemError(opt.problems()); err != nil {
		return nil, err
	}
	version, err := readBundle(opt.BundleDir)
	if err != nil { // checked by problems; the bundle changed since
		return nil, fmt.Errorf("the model bundle at %s: %w: run `make model`", opt.BundleDir, err)
	}
	s := &Stack{
		opt: opt, out: newLineWriter(opt.Log),
		ProjectID: opt.ProjectID, Topic: opt.Topic, Subscription: opt.Subscription,
		ModelsBucket: opt.ModelsBucket, ResultsBucket: opt.ResultsBucket,
		TopicName:        "projects/" + opt.ProjectID + "/topics/" + opt.Topic,
		SubscriptionName: "projects/" + opt.ProjectID + "/subscriptions/" + opt.Subscription,
		ModelVersion:     version,
		ModelURI:         "gs://" + opt.ModelsBucket + "/models/" + version,
		LogDir:           filepath.Join(opt.DataDir, "logs"),
		frontErr:         make(chan error, 1),
		done:             make(chan struct{}),
	}
	for _, d := range opt.MoreBundleDirs {
		v, err := readBundle(d)
		if err != nil {
			return nil, fmt.Errorf("the model bundle at %s: %w", d, err)
		}
		s.MoreModelVersions = append(s.MoreModelVersions, v)
		s.MoreModelURIs = append(s.MoreModelURIs, "gs://"+opt.ModelsBucket+"/models/"+v)
	}
	defer func() {
		if err != nil {
			s.shutdown()
		}
	}()
	t0 := time.Now()

	// The data directory is this stack's alone; what a killed run left running there goes first.
	run, ended, err := claimDataDir(opt.DataDir)
	if err != nil {
		return nil, err
	}
	s.run, s.runID = run, run.rec.RunID
	if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
		return nil, err
	}
	logs := map[string]*os.File{}
	for _, name := range []string{"localstack", "firestore", "pubsub", "storage", "query", "predict"} {
		f, err := os.Create(filepath.Join(s.LogDir, name+".log"))
		if err != nil {
			return nil, err
		}
		s.logFiles = append(s.logFiles, f)
		logs[name] = f
	}
	s.file = &lineWriter{w: logs["localstack"], stamp: true}
	for _, line := range ended {
		s.say("[localstack] %s", line)
	}

	// The front port first: a port in use is the most likely failure, and costs nothing to find;
	// so are the other ports set in the environment.
	s.frontLn, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(opt.Port)))
	if err != nil {
		return nil, errPortInUse("the front server", opt.Port, err, "set T2B_PORT to another port")
	}
	s.URL = "http://" + s.frontLn.Addr().String() + "/"
	for _, p := range []struct {
		what, env string
		port      int
	}{{"the Firestore emulator", "T2B_FIRESTORE_PORT", opt.FirestorePort}, {"the Pub/Sub emulator", "T2B_PUBSUB_PORT", opt.PubSubPort},
		{"the fake Cloud Storage", "T2B_STORAGE_PORT", opt.StoragePort}, {"the Query function", "T2B_QUERY_PORT", opt.QueryPort},
		{"the Predict function", "T2B_PREDICT_PORT", opt.PredictPort}} {
		if p.port == 0 {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)))
		if err != nil {
			return nil, errPortInUse(p.what, p.port, err, "set "+p.env+" to another port (or 0 for a free one)")
		}
		ln.Close()
	}

	// The functions' ports, fixed for the run: a restarted function takes the same one.
	queryPort, predictPort := opt.QueryPort, opt.PredictPort
	for _, p := range []*int{&queryPort, &predictPort} {
		if *p == 0 {
			if *p, err = emulators.FreePort(); err != nil {
				return nil, err
			}
		}
	}
	s.QueryURL = fmt.Sprintf("http://127.0.0.1:%d", queryPort)
	s.PredictURL = fmt.Sprintf("http://127.0.0.1:%d", predictPort)
	s.PushEndpoint = s.PredictURL + "/" + s.TopicName

	// Emulators, in parallel, supervised; Cloud Storage in process.
	eo := emulators.Options{SDKRoot: opt.SDKRoot, ProjectID: opt.ProjectID, StartTimeout: opt.StartTimeout,
		Env: []string{runEnv + "=" + s.runID}, Restart: true}
	var wg sync.WaitGroup
	var fsErr, psErr error
	var fsTook, psTook time.Duration
	wg.Add(2)
	go func() {
		defer wg.Done()
		o := eo
		o.Port, o.Log, o.Events = opt.FirestorePort, logs["firestore"], s.emulatorEvents("Firestore emulator", nil)
		// The emulator keeps its documents in memory: they are exported here while it runs and
		// imported at every start, so that results (like their files in DataDir/gcs) outlive it.
		o.Persist, o.PersistEvery = filepath.Join(opt.DataDir, "firestore"), opt.FirestoreSaveEvery
		start := time.Now()
		s.Firestore, fsErr = emulators.StartFirestore(ctx, o)
		fsTook = time.Since(start)
	}()
	go func() {
		defer wg.Done()
		o := eo
		o.Port, o.Log = opt.PubSubPort, logs["pubsub"]
		// A restarted Pub/Sub emulator is empty: make the topic and the subscription again.
		o.Events = s.emulatorEvents("Pub/Sub emulator", s.pubsubBack)
		start := time.Now()
		s.PubSub, psErr = emulators.StartPubSub(ctx, o)
		psTook = time.Since(start)
	}()
	s.Storage, err = emulators.StartStorageWith(emulators.StorageOptions{Root: filepath.Join(opt.DataDir, "gcs"), Port: opt.StoragePort, Log: logs["storage"]})
	wg.Wait()
	if err := errors.Join(fsErr, psErr, err); err != nil {
		return nil, err
	}
	s.run.setChild("Firestore emulator", s.Firestore.Pid())
	s.run.setChild("Pub/Sub emulator", s.PubSub.Pid())
	s.FirestoreHost, s.PubSubHost, s.StorageHost = s.Firestore.Host(), s.PubSub.Host(), s.Storage.Host()
	s.logf("Firestore emulator on %s (%.1f s), Pub/Sub emulator on %s (%.1f s), Cloud Storage on %s",
		s.FirestoreHost, fsTook.Seconds(), s.PubSubHost, psTook.Seconds(), s.StorageHost)

	// Buckets and the bundle.
	if err := s.setUpStorage(ctx); err != nil {
		return nil, err
	}
	// Topic and subscription, and the push stand-in that receives from it (it runs once Predict
	// does).
	if err := s.SetUpPubSub(ctx); err != nil {
		return nil, err
	}
	if s.push, err = s.newPusher(ctx); err != nil {
		return nil, err
	}

	// The functions.
	s.query = s.newChild("Query", queryPort, logs["query"])
	s.query.ready = httpReady(queryPort, "/healthz")
	s.predict = s.newChild("Predict", predictPort, logs["predict"])
	s.predict.ready = tcpReady(predictPort)
	errs := make(chan error, 2)
	go func() { errs <- s.query.start(ctx) }()
	go func() { errs <- s.predict.start(ctx) }()
	if err := errors.Join(<-errs, <-errs); err != nil {
		return nil, err
	}

	// The front server, the push stand-in, the watchdog and the scheduler.
	// The front server bounds slow clients as Google's front end does, more loosely than Query
	// (whose own limits, T2B_*_TIMEOUT, are the ones a client meets), and answers its own errors
	// (431, a header timeout) in the API's JSON.
	s.front = queryapi.NewHTTPServer(frontTimeouts, s.frontHandler())
	go func() {
		if err := s.front.Serve(queryapi.JSONErrors(s.frontLn)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.frontErr <- err
		}
	}()
	bgCtx, cancel := context.WithCancel(context.Background())
	s.bgCancel = cancel
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.push.run(bgCtx)
	}()
	go s.watch()
	if opt.SchedulerEvery > 0 {
		s.bg.Add(1)
		go s.schedule(bgCtx)
	}
	s.logf("ready in %.1f s: Query on %s, Predict on %s, model %s", time.Since(t0).Seconds(), s.QueryURL, s.PredictURL, strings.Join(append([]string{s.ModelURI}, s.MoreModelURIs...), " and "))
	return s, nil
}

// emulatorEvents reports what happens to a supervised emulator on the console; back, if set, runs
// when it is back after a crash.
func (s *Stack) emulatorEvents(name string, back func()) func(emulators.Event) {
	log := filepath.Join(s.LogDir, "firestore.log")
	if name == "Pub/Sub emulator" {
		log = filepath.Join(s.LogDir, "pubsub.log")
	}
	return func(e emulators.Event) {
		switch e.Kind {
		case emulators.Exited:
			how := e.Err.Error()
			if !strings.HasPrefix(how, "signal: ") {
				how += "; its output is in " + log
			}
			s.say("[localstack] %s exited (%s); restarting in %s", name, how, seconds(e.Delay))
		case emulators.Restarted:
			p := s.Firestore
			if name == "Pub/Sub emulator" {
				p = s.PubSub
			}
			if p != nil {
				s.run.setChild(name, p.Pid())
			}
			if back != nil {
				back()
			}
			s.say("[localstack] %s is back", name)
			s.backAgain()
		case emulators.RestartFailed:
			s.say("[localstack] %s did not start again (%s); trying again in %s", name, firstLine(e.Err.Error()), seconds(e.Delay))
		case emulators.PersistFailed:
			s.say("[localstack] could not save the Firestore emulator's documents to %s (%s); the last saved ones stay", filepath.Join(s.opt.DataDir, "firestore"), firstLine(e.Err.Error()))
		}
	}
}

// pubsubBack makes the topic and the subscription in a Pub/Sub emulator restarted after a crash.
func (s *Stack) pubsubBack() {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.SetUpPubSub(ctx)
		cancel()
		if err == nil {
			return
		}
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping || attempt == 5 {
			s.say("[localstack] the restarted Pub/Sub emulator has no topic and subscription: %v", err)
			return
		}
		time.Sleep(time.Second)
	}
}

// backAgain tells the push stand-in that a child is back: the jobs it holds go at once.
func (s *Stack) backAgain() {
	if s.push != nil {
		s.push.wake.Notify()
	}
}

// Env is what the functions get on top of the parent's environment: the emulator hosts, the
// project, the model, the bucket and the topic. Tests can use it to point clients at the stack.
func (s *Stack) Env() []string {
	ort, _ := filepath.Abs(s.opt.ORTLibrary)
	return []string{
		"GOOGLE_CLOUD_PROJECT=" + s.ProjectID,
		"FIRESTORE_EMULATOR_HOST=" + s.FirestoreHost,
		"PUBSUB_EMULATOR_HOST=" + s.PubSubHost,
		"STORAGE_EMULATOR_HOST=" + s.StorageHost,
		"T2B_MODEL_URI=" + s.ModelURI,
		"T2B_MORE_MODEL_URIS=" + strings.Join(s.MoreModelURIs, ","),
		"T2B_RESULTS_BUCKET=" + s.ResultsBucket,
		"T2B_TOPIC=" + s.Topic,
		model.ORTLibraryEnv + "=" + ort,
	}
}

// storageClient is a Cloud Storage client of the fake server (no environment needed).
func (s *Stack) storageClient(ctx context.Context) (*storage.Client, error) {
	return storage.NewClient(ctx, option.WithEndpoint(s.Storage.URL()+"/storage/v1/"), option.WithoutAuthentication())
}

// setUpStorage creates the buckets if absent (in the cloud, Terraform does) and publishes the
// bundle to the models bucket as a deployment does; files already there are not uploaded again.
func (s *Stack) setUpStorage(ctx context.Context) error {
	start := time.Now()
	client, err := s.storageClient(ctx)
	if err != nil {
		return fmt.Errorf("cloud storage client: %w", err)
	}
	defer client.Close()
	for _, b := range []string{s.ModelsBucket, s.ResultsBucket} {
		_, err := client.Bucket(b).Attrs(ctx)
		if errors.Is(err, storage.ErrBucketNotExist) {
			err = client.Bucket(b).Create(ctx, s.ProjectID, nil)
		}
		if err != nil {
			return fmt.Errorf("bucket %s: %w", b, err)
		}
	}
	// The functions load the library from its local path, so only the bundles are published.
	dirs, uris := append([]string{s.opt.BundleDir}, s.opt.MoreBundleDirs...), append([]string{s.ModelURI}, s.MoreModelURIs...)
	for i, dir := range dirs {
		res, err := publish.Upload(ctx, client, publish.Options{Bucket: s.ModelsBucket, BundleDir: dir})
		if err != nil {
			return err
		}
		if res.ModelURI != uris[i] {
			return fmt.Errorf("the model bundle at %s changed while the stack started (it is %s now, not %s): start again", dir, res.ModelVersion, uris[i])
		}
		if res.Uploaded > 0 {
			s.logf("uploaded %d bundle files to %s (%.1f s)", res.Uploaded, uris[i], time.Since(start).Seconds())
		} else {
			s.logf("the bundle is in %s already", uris[i])
		}
	}
	return nil
}

func pubsubOptions(host string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(host),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithoutAuthentication(),
		option.WithTelemetryDisabled(),
		internaloption.SkipDialSettingsValidation(),
	}
}

// SetUpPubSub creates the topic and the stack's subscription if absent; the push stand-in
// receives from the subscription and posts to Predict. Start calls it, and so does the stack when
// the Pub/Sub emulator is back after a crash; a test that restarted the emulator itself calls it
// again.
func (s *Stack) SetUpPubSub(ctx context.Context) error {
	if s.topics == nil {
		var err error
		if s.topics, err = vkit.NewTopicAdminClient(ctx, pubsubOptions(s.PubSubHost)...); err != nil {
			return fmt.Errorf("pub/sub topic admin client: %w", err)
		}
		if s.subs, err = vkit.NewSubscriptionAdminClient(ctx, pubsubOptions(s.PubSubHost)...); err != nil {
			return fmt.Errorf("pub/sub subscription admin client: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.topics.CreateTopic(ctx, &pubsubpb.Topic{Name: s.TopicName}); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("creating topic %s: %w", s.TopicName, err)
	}
	_, err := s.subs.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:               s.SubscriptionName,
		Topic:              s.TopicName,
		AckDeadlineSeconds: int32(AckDeadline / time.Second),
		// As Eventarc's subscription: retry soon after a failure, not at once in a loop.
		RetryPolicy: &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(time.Second), MaximumBackoff: durationpb.New(60 * time.Second)},
	})
	if status.Code(err) == codes.AlreadyExists {
		// The push stand-in pulls: a push configuration would race it for the messages.
		err = s.subs.ModifyPushConfig(ctx, &pubsubpb.ModifyPushConfigRequest{Subscription: s.SubscriptionName, PushConfig: &pubsubpb.PushConfig{}})
	}
	if err != nil {
		return fmt.Errorf("creating subscription %s: %w", s.SubscriptionName, err)
	}
	if err := s.republishUnfinished(ctx); err != nil {
		return err
	}
	if s.push != nil {
		s.push.resubscribe.Notify()
	}
	s.backAgain()
	return nil
}

// maxRepublish bounds the jobs published again at once; more unfinished documents than that are
// republished by the queries that ask for them once they are stale (T2B_STALE_AFTER).
const maxRepublish = 10000

// republishUnfinished publishes the job of every pending document of this model again. The
// Pub/Sub emulator keeps its messages in memory only, unlike Pub/Sub: after it crashed, or after
// the whole stack was killed (the documents come back from the Firestore export, the messages do
// not), the jobs it held are gone. The jobs the push stand-in is delivering are not among them:
// it holds their messages and delivers them until Predict takes them. (A job published twice
// would still have one result, but could be computed twice if both copies arrive together.)
func (s *Stack) republishUnfinished(ctx context.Context) error {
	if s.docs == nil {
		var err error
		if s.docs, err = store.NewEmulator(ctx, s.FirestoreHost, s.ProjectID, config.DefaultCollection); err != nil {
			return err
		}
	}
	docs, err := s.docs.Unfinished(ctx, maxRepublish)
	if err != nil {
		return fmt.Errorf("listing the unfinished maps to publish their jobs again: %w", err)
	}
	n := 0
	for _, d := range docs {
		if d.ModelVersion != s.ModelVersion {
			continue // this stack's Predict cannot do it; a run with that model will
		}
		if s.push != nil && s.push.holds(d.ID) {
			continue // the push stand-in delivers it still: a second copy would be computed twice
		}
		data, _ := json.Marshal(d.Message())
		if err := s.Publish(ctx, data); err != nil {
			return err
		}
		n++
	}
	if n > 0 {
		s.say("[localstack] published the jobs of %d unfinished maps again (the Pub/Sub emulator does not keep messages)", n)
	}
	return nil
}

// Publish publishes one message to the topic, as Query does.
func (s *Stack) Publish(ctx context.Context, data []byte) error {
	if s.topics == nil {
		return errors.New("the stack has no Pub/Sub client")
	}
	_, err := s.topics.Publish(ctx, &pubsubpb.PublishRequest{Topic: s.TopicName, Messages: []*pubsubpb.PubsubMessage{{Data: data}}})
	if err != nil {
		return fmt.Errorf("publishing to %s: %w", s.TopicName, err)
	}
	return nil
}

// PredictPID and QueryPID are the process ids (each also its process group) of the running
// functions, 0 while one is down: for the reliability script and tests, which kill them.
func (s *Stack) PredictPID() int { return s.predict.pid() }

// QueryPID: see PredictPID.
func (s *Stack) QueryPID() int { return s.query.pid() }

// PushFailures is how many pushes to Predict were not acknowledged (an error status, or Predict
// not answering); the push stand-in pushes each message again.
func (s *Stack) PushFailures() int64 {
	if s.push == nil {
		return 0
	}
	return s.push.failed.Load()
}

// schedule stands in for Cloud Scheduler: a warm-up message at start and every SchedulerEvery.
func (s *Stack) schedule(ctx context.Context) {
	defer s.bg.Done()
	tick := time.NewTicker(s.opt.SchedulerEvery)
	defer tick.Stop()
	for n := 0; ; n++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.Publish(pctx, WarmupMessage)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.say("[scheduler] warm-up message not published: %v", err)
		case n == 0:
			s.note("[scheduler] published %s; again every %s", WarmupMessage, s.opt.SchedulerEvery)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// watch stops the stack if its front server fails (the children are restarted instead).
func (s *Stack) watch() {
	var err error
	select {
	case <-s.done:
		return
	case e := <-s.frontErr:
		err = fmt.Errorf("the front server stopped: %w", e)
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return
	}
	s.err = err
	s.mu.Unlock()
	s.say("[localstack] stopping: %s", firstLine(err.Error()))
	s.shutdown()
}

// Done is closed when the stack has stopped, on its own or by Stop.
func (s *Stack) Done() <-chan struct{} { return s.done }

// Err is why the stack stopped on its own (its front server failed); nil while it runs and after
// Stop.
func (s *Stack) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stop ends the front server, the functions and the emulators, and waits until every child
// process has exited; the Firestore emulator exports its documents first. It returns what went
// wrong while stopping; calling it again does nothing.
func (s *Stack) Stop() error { return s.shutdown() }

func (s *Stack) shutdown() error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		<-s.done
		return s.stopErr
	}
	s.stopping = true
	s.mu.Unlock()

	var errs []error
	if s.front != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := s.front.Shutdown(ctx); err != nil {
			s.front.Close()
		}
		cancel()
	} else if s.frontLn != nil {
		s.frontLn.Close()
	}
	if s.push != nil {
		// A job Predict is computing gets a moment to be done and acknowledged.
		for deadline := time.Now().Add(5 * time.Second); s.push.inFlight.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if s.bgCancel != nil {
		s.bgCancel()
	}
	s.bg.Wait()
	if s.push != nil {
		s.push.client.Close()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	stop := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	for _, c := range []*child{s.query, s.predict} {
		if c != nil {
			stop(c.stop)
		}
	}
	wg.Wait() // the functions first: they use the emulators
	if s.topics != nil {
		s.topics.Close()
	}
	if s.subs != nil {
		s.subs.Close()
	}
	if s.docs != nil {
		s.docs.Close()
	}
	if s.Firestore != nil {
		stop(s.Firestore.Stop) // it exports its documents first
	}
	if s.PubSub != nil {
		stop(s.PubSub.Stop)
	}
	if s.Storage != nil {
		stop(s.Storage.Stop)
	}
	wg.Wait()
	s.mu.Lock()
	s.stopErr = errors.Join(errs...)
	s.mu.Unlock()
	if s.stopErr != nil {
		s.say("[localstack] %v", s.stopErr)
	}
	s.logf("stopped")
	for _, f := range s.logFiles {
		f.Close()
	}
	s.run.release()
	close(s.done)
	return s.stopErr
}

// frontTimeouts are the front server's: each longer than Query's default, so that Query, behind
// it, is the one that times a slow client out and says so.
var frontTimeouts = config.Timeouts{ReadHeader: 10 * time.Second, Read: time.Minute, Write: 2 * time.Minute, Idle: 2 * time.Minute}

// frontHandler is the public origin: everything goes to Query, which serves the page and the API,
// as Cloud Functions' URL does in the cloud. The front server stands where Google's front end does,
// and appends the client's address to X-Forwarded-For as it does. While Query is down (it crashed
// and is being restarted) it answers 503 in the API's JSON with Retry-After.
func (s *Stack) frontHandler() http.Handler {
	target, _ := url.Parse(s.QueryURL)
	proxy := newProxy(target, func(err error) { s.note("[front] proxy to Query: %v", err) }, s.query.up.retryAfter)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if up, _, _ := s.query.up.state(); !up {
			unavailable(w, s.query.up.retryAfter(), "The Query function is restarting after a crash. Try again in a few seconds.")
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
