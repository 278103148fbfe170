package jobs

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
)

// Store is the result store as the lifecycle uses it.
type Store interface {
	// Get reads a document; ErrNotFound when there is none.
	Get(ctx context.Context, id string) (*Doc, error)
	// CreatePending writes d as pending unless a document with its id exists: of any number of
	// simultaneous callers for one id exactly one gets created = true.
	CreatePending(ctx context.Context, d *Doc) (created bool, err error)
	// Transact reads a document (ErrNotFound when there is none) and writes what decide returns,
	// nothing for nil, atomically: of concurrent callers each decides on what the others wrote.
	// decide may run more than once, on the document as it is at each attempt.
	Transact(ctx context.Context, id string, decide func(*Doc) *Doc) error
	// CountPrediction adds one to a document's Predictions, outside the lifecycle: a counter.
	CountPrediction(ctx context.Context, id string) error
}

// Publisher sends messages to the jobs topic.
type Publisher interface {
	Publish(ctx context.Context, m queue.Message) error
}

// Options tune a Lifecycle; zero values take the defaults.
type Options struct {
	// StaleAfter is how long a published job may take before a query publishes it once more
	// (2 minutes, T2B_STALE_AFTER's default).
	StaleAfter time.Duration
	// WriteTimeout bounds the write that marks a job unpublished, done after the request's own
	// context may have run out (5 s).
	WriteTimeout time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Lifecycle runs the table on a Store and publishes what it says to publish.
type Lifecycle struct {
	store Store
	pub   Publisher
	opts  Options
}

// New makes a lifecycle. pub may be nil where nothing is published (Predict).
func New(st Store, pub Publisher, opts Options) *Lifecycle {
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 2 * time.Minute
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Lifecycle{store: st, pub: pub, opts: opts}
}

func (l *Lifecycle) input() Input { return Input{Now: l.opts.Now(), StaleAfter: l.opts.StaleAfter} }

// apply runs an event on the stored document in one conditional write (store.Transact) and returns the step taken on the
// document as it was at the attempt that committed.
func (l *Lifecycle) apply(ctx context.Context, id string, e Event, in Input) (Step, error) {
	var step Step
	var refused error
	err := l.store.Transact(ctx, id, func(d *Doc) *Doc {
		step, refused = Next(d, e, in)
		if refused != nil || !step.Writes() {
			return nil
		}
		return step.Doc
	})
	if err != nil {
		return Step{}, err
	}
	return step, refused
}

// Ensure answers a query: it returns the document of s.ID, and sees to it that exactly one job is
// out there for a document that needs one. An absent document is created and its job published;
// a pending one is claimed (published if it never went out or is stale); a retryable failure is
// restarted. A job that cannot be published returns the queue's error and leaves its document
// pending, for the next caller to publish.
func (l *Lifecycle) Ensure(ctx context.Context, s Spec) (*Doc, error) {
	d, err := l.store.Get(ctx, s.ID)
	if errors.Is(err, ErrNotFound) {
		d, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	return l.EnsureFrom(ctx, s, d)
}

// EnsureFrom is Ensure for a caller that has just read the document (d; nil when it was absent),
// which saves reading it again: every step writes on a condition, so a document that changed
// since is decided on again as it is.
func (l *Lifecycle) EnsureFrom(ctx context.Context, s Spec, d *Doc) (*Doc, error) {
	var err error
	if d == nil {
		d, err = l.create(ctx, s)
	}
	if err == nil && d.Status == Pending {
		d, err = l.advance(ctx, d, Claim)
	}
	// A job that never completed (now, or before) gets a new one: this is a new query.
	if err == nil && d.Status == Failed {
		d, err = l.advance(ctx, d, Restart)
	}
	return d, err
}

// Poll returns the document of id for a client polling it, publishing its job again when the
// table says so, as for a query.
func (l *Lifecycle) Poll(ctx context.Context, id string) (*Doc, error) {
	d, err := l.store.Get(ctx, id)
	if err != nil || d.Status != Pending {
		return d, err
	}
	return l.advance(ctx, d, Claim)
}

func (l *Lifecycle) create(ctx context.Context, s Spec) (*Doc, error) {
	in := l.input()
	in.Spec = s
	step, err := Next(nil, Create, in)
	if err != nil {
		return nil, err
	}
	created, err := l.store.CreatePending(ctx, step.Doc)
	if err != nil {
		return nil, err
	}
	if !created {
		return l.store.Get(ctx, s.ID)
	}
	return step.Doc, l.publish(ctx, step.Doc)
}

// advance runs a query's event (Claim or Restart) on a document it read, and publishes the job
// if the transition says so.
func (l *Lifecycle) advance(ctx context.Context, d *Doc, e Event) (*Doc, error) {
	in := l.input()
	// Decided first on the document read, so that the usual cases, a fresh job or a final failure,
	// cost no write; the write decides again on the document as it is then.
	if step, err := Next(d, e, in); err != nil || !step.Writes() {
		return d, nil
	}
	step, err := l.apply(ctx, d.ID, e, in)
	if errors.Is(err, ErrRefused) {
		// Another request took the transition first.
		return step.Doc, nil
	}
	if err != nil {
		return nil, err
	}
	if step.Action != Publish {
		return step.Doc, nil
	}
	slog.InfoContext(ctx, "publishing a job", "id", d.ID, "transition", step.String(), "published_at", d.PublishedAt)
	return step.Doc, l.publish(ctx, step.Doc)
}

// publish sends a document's job; when it cannot, the document goes back to pending so that the
// next caller publishes it.
func (l *Lifecycle) publish(ctx context.Context, d *Doc) error {
	if l.pub == nil {
		return errors.New("jobs: this lifecycle has no publisher")
	}
	err := l.pub.Publish(ctx, d.Message())
	if err == nil {
		return nil
	}
	// A fresh context: the request's may be what ran out.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.WriteTimeout)
	defer cancel()
	if _, uerr := l.apply(uctx, d.ID, PublishFailed, l.input()); uerr != nil && !errors.Is(uerr, ErrRefused) {
		slog.ErrorContext(ctx, "marking a job unpublished; it will be republished when stale", "id", d.ID, "err", uerr)
	}
	return err
}

// Start counts a delivery of a document's job and says whether to run it: only a pending document
// is run; a finished one keeps what it has and the job is acked. ErrNotFound when the document is
// gone.
func (l *Lifecycle) Start(ctx context.Context, id string) (d *Doc, run bool, err error) {
	step, err := l.apply(ctx, id, Deliver, l.input())
	if errors.Is(err, ErrRefused) {
		// A status this code does not know: running the job could only overwrite it.
		slog.WarnContext(ctx, "not running a job", "id", id, "err", err)
		return step.Doc, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return step.Doc, step.Action == Run, nil
}

// CountPrediction records that the model ran for a document.
func (l *Lifecycle) CountPrediction(ctx context.Context, id string) error {
	return l.store.CountPrediction(ctx, id)
}

// Complete marks a pending document done with its result. The first result wins: a document
// already finished keeps what it has, and wrote is false.
func (l *Lifecycle) Complete(ctx context.Context, id string, r *Result) (wrote bool, err error) {
	in := l.input()
	in.Result = r
	return l.finish(ctx, id, Complete, in)
}

// Fail marks a pending document failed, for good, with a reason a person can read; a document
// already finished keeps what it has, and wrote is false.
func (l *Lifecycle) Fail(ctx context.Context, id, reason string) (wrote bool, err error) {
	in := l.input()
	in.Reason = reason
	return l.finish(ctx, id, Fail, in)
}

// GiveUp marks a pending document failed after its job failed on every allowed delivery, with a
// reason a person can read; the failure is retryable, so a later query of the text starts afresh.
func (l *Lifecycle) GiveUp(ctx context.Context, id, reason string) (wrote bool, err error) {
	in := l.input()
	in.Reason = reason
	return l.finish(ctx, id, GiveUp, in)
}

func (l *Lifecycle) finish(ctx context.Context, id string, e Event, in Input) (bool, error) {
	_, err := l.apply(ctx, id, e, in)
	if errors.Is(err, ErrRefused) {
		return false, nil
	}
	return err == nil, err
}
