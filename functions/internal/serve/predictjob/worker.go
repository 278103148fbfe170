// Package predictjob is the Predict function's logic: it turns a job into a stored result, exactly once
// per document however often Pub/Sub delivers the job.
package predictjob

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/model/bundle/manifest"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/lazy"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// BlobCreator writes the result files, never replacing an object (blobs.ErrExists).
type BlobCreator interface {
	Create(ctx context.Context, bucket, name string, o blobs.Object) error
}

// Worker handles the messages of the jobs topic.
type Worker struct {
	jobs          *jobs.Lifecycle
	blobs         BlobCreator
	resultsBucket string
	// models are the models this instance serves, the default first; each is loaded on the first
	// job for it, once.
	models []*source
}

// Source is one model a worker serves: its version, known before the model is loaded (from the
// bundle's manifest), and how to load it. Version may be nil: then the model is loaded to learn
// its version.
type Source struct {
	Version func(context.Context) (string, error)
	Load    func(context.Context) (*model.Model, error)
}

type source struct {
	version *lazy.Value[string] // nil: ask the model
	model   *lazy.Value[*model.Model]
}

// versionOf is the source's model version.
func (s *source) versionOf(ctx context.Context) (string, error) {
	if s.version != nil {
		return s.version.Get(ctx)
	}
	m, err := s.model.Get(ctx)
	if err != nil {
		return "", err
	}
	return m.Version(), nil
}

// modelLoadTimeout bounds one attempt at loading the model (bundle download and session).
const modelLoadTimeout = 5 * time.Minute

// New builds a worker on the result store and the results bucket; the model is loaded by load on
// first use, once per instance.
func New(st jobs.Store, b BlobCreator, resultsBucket string, load func(context.Context) (*model.Model, error)) *Worker {
	return NewMulti(st, b, resultsBucket, []Source{{Load: load}})
}

// NewMulti builds a worker that serves several models, the first the default (the one a warm-up
// loads). Each is loaded on the first job for its version, once per instance.
func NewMulti(st jobs.Store, b BlobCreator, resultsBucket string, models []Source) *Worker {
	w := &Worker{jobs: jobs.New(st, nil, jobs.Options{}), blobs: b, resultsBucket: resultsBucket}
	for _, m := range models {
		src := &source{model: lazy.New(m.Load, modelLoadTimeout)}
		if m.Version != nil {
			src.version = lazy.New(m.Version, modelLoadTimeout)
		}
		w.models = append(w.models, src)
	}
	return w
}

// modelFor is the loaded model of a version. A version no source has is an error the job is
// retried for: during a deployment Query and Predict can serve different versions for a while,
// and an instance with the job's version takes it on a redelivery.
func (w *Worker) modelFor(ctx context.Context, version string) (*model.Model, error) {
	var served []string
	var firstErr error
	for _, src := range w.models {
		v, err := src.versionOf(ctx)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		if v == version {
			m, err := src.model.Get(ctx)
			if err != nil {
				return nil, fmt.Errorf("loading the model: %w", err)
			}
			return m, nil
		}
		served = append(served, v)
	}
	if firstErr != nil { // the job's model may be the one that did not answer
		return nil, fmt.Errorf("loading the model: %w", firstErr)
	}
	return nil, fmt.Errorf("the job is for model %s and this instance serves model %s", version, strings.Join(served, ", "))
}

// SourceAt is the Source of the bundle at uri (LoadModel's arguments): its version is read from the
// bundle's manifest alone.
func SourceAt(b *blobs.Store, modelURI, ortLibrary string) Source {
	return Source{
		Version: func(ctx context.Context) (string, error) {
			man, err := manifest.ReadManifest(b.URIFS(ctx, modelURI))
			if err != nil {
				return "", fmt.Errorf("%w (bundle %s)", err, modelURI)
			}
			return man.ModelVersion, nil
		},
		Load: func(ctx context.Context) (*model.Model, error) { return LoadModel(ctx, b, modelURI, ortLibrary) },
	}
}

// LoadModel reads the bundle at modelURI (a gs:// prefix or a directory) and opens an ONNX Runtime
// session with the library at ortLibrary (a path, or a gs:// object fetched into the temporary
// directory, which is the writable place on Cloud Functions). The bundle's files are read and
// parsed while the library is fetched and while the session opens (model.Load).
func LoadModel(ctx context.Context, b *blobs.Store, modelURI, ortLibrary string) (*model.Model, error) {
	start := time.Now()
	// Every read of the bundle is over when model.Load returns; on a failed fetch, this stops them.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loading := bundle.StartFS(b.URIFS(ctx, modelURI), modelURI)
	lib := ortLibrary
	if bucket, name, ok := blobs.ParseURI(ortLibrary); ok {
		lib = filepath.Join(os.TempDir(), "libonnxruntime.so")
		// Once loaded, the library is mapped: rewriting it would crash the instance.
		if loaded, ok := model.ORTLoaded(); !ok || loaded != lib {
			if err := fetch(ctx, b, bucket, name, lib); err != nil {
				cancel()
				loading.Wait()
				return nil, fmt.Errorf("fetching ONNX Runtime from %s: %w", ortLibrary, err)
			}
		}
	}
	m, err := model.Load(loading, model.Options{ORTLibrary: lib})
	if err != nil {
		return nil, err
	}
	slog.InfoContext(ctx, "model loaded", "model_version", m.Version(), "ms", time.Since(start).Milliseconds())
	return m, nil
}

// fetch copies an object to a file atomically.
func fetch(ctx context.Context, b *blobs.Store, bucket, name, path string) error {
	data, err := b.ReadAll(ctx, bucket, name)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// MaxAttempts is how many deliveries a job gets: after that many failures it is a poison job, and
// its document is marked failed (retryably: a later query starts afresh) with the last error,
// which the API shows. The push subscription's dead-letter policy (10 deliveries) takes the jobs
// that cannot even reach the document.
const MaxAttempts = 5

// rejection is a job this service never publishes: forged, or for a document that does not exist.
// It is acked without changing any document.
type rejection struct{ reason string }

func (r *rejection) Error() string { return "rejected job: " + r.reason }

// Handle processes one message: nil when it is done with (acked), an error when Pub/Sub should
// deliver it again.
func (w *Worker) Handle(ctx context.Context, msg queue.Message) error {
	err := w.handleDelivery(ctx, msg, 0)
	var rej *rejection
	if errors.As(err, &rej) {
		slog.ErrorContext(ctx, "dropping a job that is not a valid job of this service", "reason", rej.reason)
		return nil
	}
	return err
}

// handleDelivery processes one delivery of a message; attempt is Pub/Sub's delivery count when it
// sends one (0 otherwise). Forged jobs come back as a *rejection.
func (w *Worker) handleDelivery(ctx context.Context, msg queue.Message, attempt int) error {
	if msg.Warmup {
		start := time.Now()
		if _, err := w.models[0].model.Get(ctx); err != nil {
			// A warm-up is best effort: the next job retries the load.
			slog.ErrorContext(ctx, "warm-up: loading the model failed", "err", err)
			return nil
		}
		slog.InfoContext(ctx, "warm-up", "ms", time.Since(start).Milliseconds())
		return nil
	}
	// Only Query publishes jobs, and its id is the hash of the model version and the normalised
	// text (of a decoding: the uploaded file's SHA-256): a job that does not hash to its id was not
	// made by Query, whatever it says.
	if rej := forged(msg); rej != nil {
		return rej
	}
	// A job that hashes to its id names its document's model version: an absent document is
	// one no Query made.
	d, run, err := w.jobs.Start(ctx, msg.ID)
	if errors.Is(err, jobs.ErrNotFound) {
		return &rejection{"no map document has this id"}
	}
	if err != nil {
		return err
	}
	if !run {
		slog.InfoContext(ctx, "job already finished", "id", msg.ID, "status", d.Status)
		return nil
	}
	m, err := w.modelFor(ctx, msg.ModelVersion)
	if err != nil {
		return err
	}
	if d.Kind != msg.Kind || d.NormalizedQuery != msg.Text || d.Upload != msg.Upload || d.ModelVersion != msg.ModelVersion {
		// The id matches but the document says otherwise: not this job's document.
		return &rejection{"the map document holds another query"}
	}
	if msg.Kind == queue.KindDecoding {
		err = w.decode(ctx, m, msg, d.UploadName)
	} else {
		err = w.predict(ctx, m, msg)
	}
	if err == nil {
		return nil
	}
	if n := max(int64(attempt), d.Deliveries); n >= MaxAttempts {
		reason := fmt.Sprintf("the prediction failed %d times (%v); query again to retry", n, err)
		if _, ferr := w.jobs.GiveUp(ctx, msg.ID, reason); ferr != nil {
			return errors.Join(err, ferr)
		}
		slog.ErrorContext(ctx, "giving up on a poison job", "id", msg.ID, "deliveries", n, "err", err)
		return nil
	}
	return err
}

// forged says why a job cannot be one Query published (nil when it can be).
func forged(msg queue.Message) *rejection {
	if !querytext.ValidKey(msg.ID) {
		return &rejection{"the id is not a map id"}
	}
	if msg.Kind == queue.KindDecoding {
		switch {
		case msg.Text != "":
			return &rejection{"a decoding's job has no text"}
		case !querytext.ValidSHA256(msg.Upload):
			return &rejection{"the upload is not named by a SHA-256"}
		case querytext.DecodingKey(msg.ModelVersion, msg.Upload) != msg.ID:
			return &rejection{"the id is not the hash of the job's model version and upload"}
		}
		return nil
	}
	switch normalized, err := querytext.Normalize(msg.Text); {
	case msg.Kind != "" || msg.Upload != "":
		return &rejection{"a job of an unknown kind"}
	case err != nil || normalized != msg.Text:
		return &rejection{"the text is not a normalised query"}
	case querytext.Key(msg.ModelVersion, msg.Text) != msg.ID:
		return &rejection{"the id is not the hash of the job's model version and text"}
	}
	return nil
}

// BlobReader reads an uploaded file back; the worker's blobs must be one to decode.
type BlobReader interface {
	ReadAll(ctx context.Context, bucket, name string) ([]byte, error)
}

// decode decodes the uploaded map of a started decoding's job and stores its result. A file that
// cannot be decoded fails the document for good (Query checked it before storing it, so this
// means it changed); a missing one too.
func (w *Worker) decode(ctx context.Context, m *model.Model, msg queue.Message, name string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			slog.ErrorContext(ctx, "decoding panicked", "id", msg.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("the decoding panicked: %v", p)
		}
	}()
	start := time.Now()
	rd, ok := w.blobs.(BlobReader)
	if !ok {
		return errors.New("this worker's storage cannot read uploads")
	}
	data, err := rd.ReadAll(ctx, w.resultsBucket, jobs.UploadObject(msg.Upload))
	if errors.Is(err, blobs.ErrNotFound) {
		return w.fail(ctx, msg.ID, "the uploaded file is no longer stored; upload it again")
	}
	if err != nil {
		return err
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != msg.Upload {
		return w.fail(ctx, msg.ID, "the stored upload does not match its SHA-256; upload it again")
	}
	counted := w.countPrediction(ctx, msg.ID)
	vol, err := brain.ReadNIfTIWith(bytes.NewReader(data), brain.ReadOptions{MaxVoxels: jobs.MaxUploadVoxels})
	if err != nil {
		if cerr := counted(); cerr != nil {
			return cerr
		}
		return w.fail(ctx, msg.ID, err.Error())
	}
	res, err := m.Decode(ctx, vol, name)
	if errors.Is(err, model.ErrUndecodable) {
		if cerr := counted(); cerr != nil {
			return cerr
		}
		return w.fail(ctx, msg.ID, err.Error())
	}
	if err != nil {
		return errors.Join(err, counted())
	}
	return w.complete(ctx, m, msg, res, "decodings/"+m.Version()+"/"+msg.ID, start, counted)
}

// predict runs the model for a started job and stores its result. A panic is an error of this
// job (so that it counts towards MaxAttempts), not the end of the instance.
func (w *Worker) predict(ctx context.Context, m *model.Model, msg queue.Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			slog.ErrorContext(ctx, "prediction panicked", "id", msg.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("the prediction panicked: %v", p)
		}
	}()
	start := time.Now()
	// The count is written while the model runs: it must be stored before the result is (so that
	// a second run is seen), not before the model starts.
	counted := w.countPrediction(ctx, msg.ID)
	res, err := m.Predict(ctx, msg.Text)
	if errors.Is(err, model.ErrNoKnownTerms) {
		if cerr := counted(); cerr != nil {
			return cerr
		}
		return w.fail(ctx, msg.ID, err.Error())
	}
	if err != nil {
		return errors.Join(err, counted())
	}
	return w.complete(ctx, m, msg, res, "maps/"+m.Version()+"/"+msg.ID, start, counted)
}

// countPrediction records in the background that the model runs for id; the function it returns
// waits for the write and gives its error.
func (w *Worker) countPrediction(ctx context.Context, id string) func() error {
	done := make(chan error, 1)
	go func() { done <- w.jobs.CountPrediction(ctx, id) }()
	return sync.OnceValue(func() error { return <-done })
}

// complete stores a result's files under base and marks its document done (the first result
// wins), for a query's job and a decoding's alike; counted waits for the prediction's count.
func (w *Worker) complete(ctx context.Context, m *model.Model, msg queue.Message, res *model.Result, base string, start time.Time, counted func() error) error {
	computed := time.Now()
	names, err := w.writeObjects(ctx, m, res, base, counted)
	if err != nil {
		return err
	}
	stored := time.Now()
	r := toResult(res)
	r.MapObject, r.PreviewObject, r.SurfaceObject = names.nifti, names.preview, names.surface
	r.ComputeMS = msSince(start, stored)
	wrote, err := w.jobs.Complete(ctx, msg.ID, r)
	if err != nil {
		return err
	}
	slog.InfoContext(ctx, "prediction", "id", msg.ID, "kind", msg.Kind, "ms", r.ComputeMS, "first", wrote,
		"model_ms", msSince(start, computed), "files_ms", msSince(computed, stored), "complete_ms", msSince(stored, time.Now()))
	return nil
}

func msSince(from, to time.Time) float64 { return float64(to.Sub(from).Microseconds()) / 1000 }

// objectNames are the names of a result's stored files.
type objectNames struct{ nifti, preview, surface string }

// resultFile is one stored file of a result: its name after base, its type, and how it is made.
type resultFile struct {
	suffix, contentType string
	write               func(*model.Model, *bytes.Buffer, *model.Result) error
}

var resultFiles = [...]resultFile{
	{".nii.gz", "application/gzip", func(m *model.Model, b *bytes.Buffer, r *model.Result) error { return m.WriteNIfTI(b, r) }},
	{".png", "image/png", func(m *model.Model, b *bytes.Buffer, r *model.Result) error { return m.WritePreview(b, r) }},
	{".surface.json.gz", "application/gzip", func(m *model.Model, b *bytes.Buffer, r *model.Result) error { return m.WriteSurface(b, r) }},
}

// writeObjects stores the map, its preview and its surface values before the document is marked
// done, so that a done document always has its files. The three are made at once, and each is
// written as soon as it is made and the prediction's count (counted) is stored: each write is a
// round trip to the bucket, and the encoders use the instance's other cores meanwhile. (The count
// comes first so that a job whose count failed, and runs again, leaves no files behind for its
// next run to step around.)
//
// Objects are never replaced: a redelivery after a crash, or a duplicate delivery running at the
// same time on another machine (whose float32 arithmetic may differ in the last bits), writes its
// own objects under a suffixed name, and the document points at the objects of the attempt that
// completes it. The usual name serves the usual case.
func (w *Worker) writeObjects(ctx context.Context, m *model.Model, res *model.Result, base string, counted func() error) (objectNames, error) {
	var data [len(resultFiles)][]byte
	create := func(ctx context.Context, name string, i int) error {
		f := resultFiles[i]
		return w.blobs.Create(ctx, w.resultsBucket, name+f.suffix, blobs.Object{Data: data[i], ContentType: f.contentType, CacheControl: blobs.CacheImmutable})
	}
	names := func(name string) objectNames {
		return objectNames{name + resultFiles[0].suffix, name + resultFiles[1].suffix, name + resultFiles[2].suffix}
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, f := range resultFiles {
		g.Go(func() error {
			var buf bytes.Buffer
			if err := f.write(m, &buf, res); err != nil {
				return err
			}
			data[i] = buf.Bytes()
			if err := counted(); err != nil {
				return err
			}
			return create(gctx, base, i)
		})
	}
	err := g.Wait()
	if err == nil {
		return names(base), nil
	}
	for i := range data {
		if data[i] == nil || !errors.Is(err, blobs.ErrExists) {
			return objectNames{}, err
		}
	}
	// A name is taken: all three again, under a name of this attempt's own.
	for attempt := 1; ; attempt++ {
		name := fmt.Sprintf("%s-%08x", base, rand.Uint32())
		g, gctx := errgroup.WithContext(ctx)
		for i := range resultFiles {
			g.Go(func() error { return create(gctx, name, i) })
		}
		switch err := g.Wait(); {
		case err == nil:
			return names(name), nil
		case !errors.Is(err, blobs.ErrExists) || attempt == 3:
			return objectNames{}, err
		}
	}
}

func (w *Worker) fail(ctx context.Context, id, reason string) error {
	slog.WarnContext(ctx, "job failed", "id", id, "reason", reason)
	_, err := w.jobs.Fail(ctx, id, reason)
	return err
}

func toResult(res *model.Result) *jobs.Result {
	r := &jobs.Result{RecognizedTerms: res.Terms}
	for _, t := range res.RelatedTerms {
		r.RelatedTerms = append(r.RelatedTerms, jobs.Term{Term: t.Term, Weight: t.Weight})
	}
	for _, a := range res.RelatedArticles {
		r.RelatedArticles = append(r.RelatedArticles, jobs.Article{PMID: a.PMID, Title: a.Title, Authors: a.Authors,
			Year: a.Year, Journal: a.Journal, DOI: a.DOI, URL: a.URL(), Correlation: a.Correlation})
	}
	for _, p := range res.Peaks {
		r.Peaks = append(r.Peaks, jobs.Peak{MNI: p.MNI[:], Z: p.Z})
	}
	return r
}
