// Package localstack runs the whole serverless system on one machine (`make run`), with the same
// code and the same Google client libraries as in the cloud, pointed at local stand-ins:
//
//   - Firestore and Pub/Sub: Google's emulators (package emulators), as child processes;
//   - Cloud Storage: fake-gcs-server in process, its buckets under DataDir/gcs; the models bucket
//     gets the model bundle under models/<model_version>/ (package publish, as in a deployment),
//     the results bucket the maps;
//   - the two Cloud Functions: child processes of the localstack binary (`localstack function
//     Query` and `localstack function Predict`), each serving one function with the functions
//     framework, as the Go buildpack's generated main does;
//   - Eventarc: a push subscription of the Pub/Sub emulator to Predict, whose path
//     /projects/P/topics/T lets the framework turn the push envelope into a CloudEvent;
//   - Cloud Scheduler: a ticker that publishes the warm-up message {"warmup":true};
//   - the public origin: a front server that proxies everything to Query, which serves the page and
//     the API (one origin, as the function's URL is in the cloud).
//
// Start brings it all up and returns once Query answers /healthz; Stop ends every child process.
// A function or an emulator that dies on its own stops the stack with an error that names it.
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
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/release/publish"
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
	// PushEndpoint is where the subscription pushes: PredictURL/projects/P/topics/T.
	PushEndpoint string
	// ModelVersion is the bundle's version and ModelURI gs://ModelsBucket/models/ModelVersion.
	ModelVersion, ModelURI string

	// Firestore and PubSub are the emulators (a test may Stop and Restart them; a restarted
	// emulator is empty, and the stack does not recreate the topic and subscription by itself,
	// see SetUpPubSub). Storage is the fake Cloud Storage.
	Firestore, PubSub *emulators.Process
	Storage           *emulators.Storage

	opt        Options
	out        *lineWriter
	frontLn    net.Listener
	front      *http.Server
	query      *child
	predict    *child
	topics     *vkit.TopicAdminClient
	subs       *vkit.SubscriptionAdminClient
	logFiles   []*os.File
	bgCancel   context.CancelFunc
	bg         sync.WaitGroup
	frontErr   chan error
	pushFailed atomic.Int64

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
		frontErr:         make(chan error, 1),
		done:             make(chan struct{}),
	}
	defer func() {
		if err != nil {
			s.shutdown()
		}
	}()
	t0 := time.Now()

	// The front port first: a port in use is the most likely failure, and costs nothing to find.
	s.frontLn, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(opt.Port)))
	if err != nil {
		return nil, fmt.Errorf("the front server cannot listen on 127.0.0.1:%d (%v): stop what uses it or set T2B_PORT to another port", opt.Port, err)
	}
	s.URL = "http://" + s.frontLn.Addr().String() + "/"

	// The functions' ports are needed before the Pub/Sub emulator starts (its log is watched for
	// failed pushes to Predict).
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

	// Emulators, in parallel; Cloud Storage in process.
	logDir := filepath.Join(opt.DataDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	fsLog, err := s.logFile(filepath.Join(logDir, "firestore.log"))
	if err != nil {
		return nil, err
	}
	psLog, err := s.logFile(filepath.Join(logDir, "pubsub.log"))
	if err != nil {
		return nil, err
	}
	eo := emulators.Options{SDKRoot: opt.SDKRoot, ProjectID: opt.ProjectID, StartTimeout: opt.StartTimeout}
	var wg sync.WaitGroup
	var fsErr, psErr error
	var fsTook, psTook time.Duration
	wg.Add(2)
	go func() {
		defer wg.Done()
		o := eo
		o.Port, o.Log = opt.FirestorePort, fsLog
		// The Firestore emulator keeps data in memory: start from what the last run exported.
		if found, _ := filepath.Glob(filepath.Join(opt.DataDir, "firestore", "current", "*", "*.overall_export_metadata")); len(found) == 1 {
			o.ImportData = found[0]
		}
		start := time.Now()
		s.Firestore, fsErr = emulators.StartFirestore(ctx, o)
		fsTook = time.Since(start)
	}()
	go func() {
		defer wg.Done()
		o := eo
		o.Port, o.Log = opt.PubSubPort, newPushWatcher(psLog, s)
		start := time.Now()
		s.PubSub, psErr = emulators.StartPubSub(ctx, o)
		psTook = time.Since(start)
	}()
	s.Storage, err = emulators.StartStorageWith(emulators.StorageOptions{Root: filepath.Join(opt.DataDir, "gcs"), Port: opt.StoragePort, Log: opt.Log})
	wg.Wait()
	if err := errors.Join(fsErr, psErr, err); err != nil {
		return nil, err
	}
	s.FirestoreHost, s.PubSubHost, s.StorageHost = s.Firestore.Host(), s.PubSub.Host(), s.Storage.Host()
	s.logf("Firestore emulator on %s (%.1f s), Pub/Sub emulator on %s (%.1f s), Cloud Storage on %s; their logs are in %s",
		s.FirestoreHost, fsTook.Seconds(), s.PubSubHost, psTook.Seconds(), s.StorageHost, logDir)

	// Buckets and the bundle.
	if err := s.setUpStorage(ctx); err != nil {
		return nil, err
	}
	// Topic and push subscription.
	if err := s.SetUpPubSub(ctx); err != nil {
		return nil, err
	}

	// The functions.
	s.query, err = s.startChild("Query", queryPort)
	if err != nil {
		return nil, err
	}
	s.predict, err = s.startChild("Predict", predictPort)
	if err != nil {
		return nil, err
	}
	errs := make(chan error, 2)
	go func() { errs <- s.waitHTTP(ctx, s.query, "/healthz") }()
	go func() { errs <- s.waitTCP(ctx, s.predict) }()
	if err := errors.Join(<-errs, <-errs); err != nil {
		return nil, err
	}

	// The front server, the watchdog and the scheduler.
	s.front = &http.Server{Handler: s.frontHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.front.Serve(s.frontLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.frontErr <- err
		}
	}()
	bgCtx, cancel := context.WithCancel(context.Background())
	s.bgCancel = cancel
	go s.watch()
	if opt.SchedulerEvery > 0 {
		s.bg.Add(1)
		go s.schedule(bgCtx)
	}
	s.logf("ready in %.1f s: Query on %s, Predict on %s, model %s", time.Since(t0).Seconds(), s.QueryURL, s.PredictURL, s.ModelURI)
	return s, nil
}

func (s *Stack) logFile(path string) (io.Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	s.logFiles = append(s.logFiles, f)
	return f, nil
}

func (s *Stack) logf(format string, args ...any) {
	s.out.Line("[localstack] " + fmt.Sprintf(format, args...))
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
	// The functions load the library from its local path, so only the bundle is published.
	res, err := publish.Upload(ctx, client, publish.Options{Bucket: s.ModelsBucket, BundleDir: s.opt.BundleDir})
	if err != nil {
		return err
	}
	if res.ModelURI != s.ModelURI {
		return fmt.Errorf("the model bundle at %s changed while the stack started (it is %s now, not %s): start again", s.opt.BundleDir, res.ModelVersion, s.ModelVersion)
	}
	if res.Uploaded > 0 {
		s.logf("uploaded %d bundle files to %s (%.1f s)", res.Uploaded, s.ModelURI, time.Since(start).Seconds())
	} else {
		s.logf("the bundle is in %s already", s.ModelURI)
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

// SetUpPubSub creates the topic and the push subscription to Predict if absent (and points an
// existing subscription at Predict). Start calls it; a test that restarted the Pub/Sub emulator
// calls it again.
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
	push := &pubsubpb.PushConfig{PushEndpoint: s.PushEndpoint}
	_, err := s.subs.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:               s.SubscriptionName,
		Topic:              s.TopicName,
		PushConfig:         push,
		AckDeadlineSeconds: int32(AckDeadline / time.Second),
		// As Eventarc's subscription: retry soon after a failure, not at once in a loop.
		RetryPolicy: &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(time.Second), MaximumBackoff: durationpb.New(60 * time.Second)},
	})
	if status.Code(err) == codes.AlreadyExists {
		err = s.subs.ModifyPushConfig(ctx, &pubsubpb.ModifyPushConfigRequest{Subscription: s.SubscriptionName, PushConfig: push})
	}
	if err != nil {
		return fmt.Errorf("creating subscription %s: %w", s.SubscriptionName, err)
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

// PushFailures is how many pushes to Predict the Pub/Sub emulator reported as not acknowledged
// (an error status, or Predict not answering); each is redelivered.
func (s *Stack) PushFailures() int64 { return s.pushFailed.Load() }

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
			s.out.Line(fmt.Sprintf("[scheduler] warm-up message not published: %v", err))
		case n == 0:
			s.out.Line(fmt.Sprintf("[scheduler] published %s; again every %s", WarmupMessage, s.opt.SchedulerEvery))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// watch stops the stack when a function or an emulator exits on its own.
func (s *Stack) watch() {
	var err error
	select {
	case <-s.done:
		return
	case <-s.query.done:
		err = s.query.exitError()
	case <-s.predict.done:
		err = s.predict.exitError()
	case <-s.Firestore.Crashed():
		err = fmt.Errorf("the Firestore emulator exited; its last output:\n%s", s.Firestore.Tail())
	case <-s.PubSub.Crashed():
		err = fmt.Errorf("the Pub/Sub emulator exited; its last output:\n%s", s.PubSub.Tail())
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
	s.out.Line("[localstack] stopping: " + firstLine(err.Error()))
	s.shutdown()
}

// Done is closed when the stack has stopped, on its own or by Stop.
func (s *Stack) Done() <-chan struct{} { return s.done }

// Err is why the stack stopped on its own (a child that died); nil while it runs and after Stop.
func (s *Stack) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stop ends the front server, the functions and the emulators, and waits until every child
// process has exited. It returns what went wrong while stopping; calling it again does nothing.
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
	if s.bgCancel != nil {
		s.bgCancel()
	}
	s.bg.Wait()
	if s.front != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := s.front.Shutdown(ctx); err != nil {
			s.front.Close()
		}
		cancel()
	} else if s.frontLn != nil {
		s.frontLn.Close()
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
	if s.Firestore != nil {
		if err := s.saveFirestore(); err != nil {
			s.logf("could not save Firestore's documents for the next run: %v", err)
		}
		stop(s.Firestore.Stop)
	}
	if s.PubSub != nil {
		stop(s.PubSub.Stop)
	}
	if s.Storage != nil {
		stop(s.Storage.Stop)
	}
	wg.Wait()
	for _, f := range s.logFiles {
		f.Close()
	}
	s.mu.Lock()
	s.stopErr = errors.Join(errs...)
	s.mu.Unlock()
	close(s.done)
	return s.stopErr
}

// frontHandler is the public origin: everything goes to Query, which serves the page and the API,
// as Cloud Functions' URL does in the cloud. The front server stands where Google's front end does,
// and appends the client's address to X-Forwarded-For as it does.
func (s *Stack) frontHandler() http.Handler {
	target, _ := url.Parse(s.QueryURL)
	return newProxy(target, func(err error) { s.out.Line("[front] proxy to Query: " + err.Error()) })
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// saveFirestore exports the emulator's documents to DataDir/firestore/current, where the next
// Start imports them from, so that results (like their files in DataDir/gcs) survive a restart.
func (s *Stack) saveFirestore() error {
	dir := filepath.Join(s.opt.DataDir, "firestore")
	next, current := filepath.Join(dir, "next"), filepath.Join(dir, "current")
	if err := os.RemoveAll(next); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := emulators.ExportFirestore(ctx, s.FirestoreHost, s.ProjectID, next); err != nil {
		return err
	}
	if err := os.RemoveAll(current); err != nil {
		return err
	}
	return os.Rename(next, current)
}
