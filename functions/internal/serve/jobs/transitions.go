// Package jobs is the life of a prediction job, from the first query of a text to its result, for
// both functions: Query creates and publishes jobs (and republishes lost ones), Predict starts and
// finishes them. Every change of a document is one row of one table of transitions:
//
//	from       event           guard               to         action   also
//	absent     create                              published  publish  created_at = published_at = now
//	pending    claim                               published  publish  published_at = now
//	published  claim           fresh               published  -
//	published  claim           stale, first time   published  publish  republished, published_at = now
//	published  claim           stale, republished  failed     -        retryable, the reason, completed_at = now
//	published  publish-failed                      pending    -        published_at = zero
//	failed     restart         retryable           published  publish  error, retryable, republished cleared, published_at = now
//	pending    deliver                             pending    run      deliveries + 1
//	published  deliver                             published  run      deliveries + 1
//	done       deliver                             done       -        deliveries + 1 (the job is acked)
//	failed     deliver                             failed     -        deliveries + 1 (the job is acked)
//	pending    complete                            done       -        the result, completed_at = now
//	published  complete                            done       -        the result, completed_at = now
//	pending    fail                                failed     -        the reason, completed_at = now
//	published  fail                                failed     -        the reason, completed_at = now
//	pending    give-up                             failed     -        retryable, the reason, completed_at = now
//	published  give-up                             failed     -        retryable, the reason, completed_at = now
//
// An event with no row is refused and writes nothing: a second result never replaces the first,
// a failure never replaces a result, a final failure is never restarted. "pending" and
// "published" are both stored as status pending; published is a pending document whose
// published_at is set.
//
// Next is the table as a pure function; a Store applies it in its conditional writes, and Lifecycle
// runs the steps that follow a transition (publish the job, run the model).
package jobs

import (
	"errors"
	"fmt"
	"time"
)

// State is where a document is in its life: its stored status, told apart further where the
// lifecycle needs it.
type State string

// The states of the table.
const (
	// StateAbsent: no document yet.
	StateAbsent State = "absent"
	// StatePending: the document waits for a job that has not gone out (its publish failed).
	StatePending State = "pending"
	// StatePublished: the job went out at published_at.
	StatePublished State = "published"
	StateDone      State = "done"
	StateFailed    State = "failed"
	// stateUnknown is a stored status this code does not know: no row starts from it.
	stateUnknown State = "unknown"
)

// StateOf is the state of a document (nil: absent).
func StateOf(d *Doc) State {
	switch {
	case d == nil:
		return StateAbsent
	case d.Status == Pending && d.PublishedAt.IsZero():
		return StatePending
	case d.Status == Pending:
		return StatePublished
	case d.Status == Done:
		return StateDone
	case d.Status == Failed:
		return StateFailed
	}
	return stateUnknown
}

// status is what a document in state s stores.
func (s State) status() Status {
	switch s {
	case StateDone:
		return Done
	case StateFailed:
		return Failed
	}
	return Pending
}

// Event is something that happens to a job.
type Event string

// The events of the table.
const (
	// Create: a first query of a text finds no document.
	Create Event = "create"
	// Claim: a query or a poll finds the document pending, and claims the publication of its job
	// if one is due.
	Claim Event = "claim"
	// PublishFailed: the job of a claimed publication could not be sent.
	PublishFailed Event = "publish-failed"
	// Restart: a query finds the document failed.
	Restart Event = "restart"
	// Deliver: Predict receives the job.
	Deliver Event = "deliver"
	// Complete: Predict has the result.
	Complete Event = "complete"
	// Fail: Predict refuses the job for a reason that a retry cannot fix.
	Fail Event = "fail"
	// GiveUp: the job failed on every one of its allowed deliveries (a poison job); a later query
	// may try again.
	GiveUp Event = "give-up"
)

// Action is what the caller must do once a transition is written.
type Action string

// The actions of the table.
const (
	NoAction Action = "-"
	// Publish: send the document's job to the queue.
	Publish Action = "publish"
	// Run: run the model for the job.
	Run Action = "run"
)

// Spec is the document a query asks for, created when it is absent.
type Spec struct {
	ID, Query, NormalizedQuery, ModelVersion string
	// Kind, Upload and UploadName are a decoding's (Doc's fields of the same names).
	Kind, Upload, UploadName string
	UploadBytes              int64
}

// Input is what an event brings: the time it happens at and what its rows use.
type Input struct {
	Now time.Time
	// StaleAfter is how long a published job may take before it counts as lost (Claim).
	StaleAfter time.Duration
	Spec       Spec    // Create
	Result     *Result // Complete
	Reason     string  // Fail, GiveUp
}

// Guard is a condition on a document and an event's input; the zero Guard always holds.
type Guard struct {
	Name  string
	holds func(*Doc, Input) bool
}

func (g Guard) allows(d *Doc, in Input) bool { return g.holds == nil || g.holds(d, in) }

func stale(d *Doc, in Input) bool { return in.Now.Sub(d.PublishedAt) > in.StaleAfter }

var (
	fresh       = Guard{"fresh", func(d *Doc, in Input) bool { return !stale(d, in) }}
	staleFirst  = Guard{"stale, first time", func(d *Doc, in Input) bool { return stale(d, in) && !d.Republished }}
	staleAgain  = Guard{"stale, republished", func(d *Doc, in Input) bool { return stale(d, in) && d.Republished }}
	isRetryable = Guard{"retryable", func(d *Doc, _ Input) bool { return d.Retryable }}
)

// StalledReason is the error of a document whose job was lost twice.
const StalledReason = "the prediction did not complete in time; query again to retry"

// Transition is one row of the table.
type Transition struct {
	From   State
	Event  Event
	Guard  Guard
	To     State
	Action Action
	// apply makes the row's changes besides the status, which is To's; nil for none.
	apply func(d *Doc, in Input)
}

// Writes reports whether the transition changes the document.
func (t Transition) Writes() bool { return t.apply != nil || t.From != t.To }

func (t Transition) String() string {
	return fmt.Sprintf("%s --%s[%s]--> %s (%s)", t.From, t.Event, t.Guard.Name, t.To, t.Action)
}

func create(d *Doc, in Input) {
	now := in.Now.UTC()
	*d = Doc{ID: in.Spec.ID, Query: in.Spec.Query, NormalizedQuery: in.Spec.NormalizedQuery,
		ModelVersion: in.Spec.ModelVersion, Kind: in.Spec.Kind, Upload: in.Spec.Upload,
		UploadName: in.Spec.UploadName, UploadBytes: in.Spec.UploadBytes, CreatedAt: now, PublishedAt: now}
}

func publish(d *Doc, in Input) { d.PublishedAt = in.Now.UTC() }

func republish(d *Doc, in Input) { d.Republished, d.PublishedAt = true, in.Now.UTC() }

func stall(d *Doc, in Input) {
	d.Retryable, d.Error, d.CompletedAt = true, StalledReason, in.Now.UTC()
}

func unpublish(d *Doc, _ Input) { d.PublishedAt = time.Time{} }

// restart leaves completed_at as the stall set it: the next result overwrites it.
func restart(d *Doc, in Input) {
	d.Retryable, d.Error, d.Republished, d.PublishedAt = false, "", false, in.Now.UTC()
}

func deliver(d *Doc, _ Input) { d.Deliveries++ }

func complete(d *Doc, in Input) { d.Result, d.CompletedAt = in.Result, in.Now.UTC() }

func fail(d *Doc, in Input) { d.Error, d.CompletedAt = in.Reason, in.Now.UTC() }

func giveUp(d *Doc, in Input) { d.Retryable, d.Error, d.CompletedAt = true, in.Reason, in.Now.UTC() }

// table is the lifecycle; the package comment shows it. Guards of rows with the same From and Event
// exclude each other, so at most one row applies.
var table = []Transition{
	{StateAbsent, Create, Guard{}, StatePublished, Publish, create},
	{StatePending, Claim, Guard{}, StatePublished, Publish, publish},
	{StatePublished, Claim, fresh, StatePublished, NoAction, nil},
	{StatePublished, Claim, staleFirst, StatePublished, Publish, republish},
	{StatePublished, Claim, staleAgain, StateFailed, NoAction, stall},
	{StatePublished, PublishFailed, Guard{}, StatePending, NoAction, unpublish},
	{StateFailed, Restart, isRetryable, StatePublished, Publish, restart},
	{StatePending, Deliver, Guard{}, StatePending, Run, deliver},
	{StatePublished, Deliver, Guard{}, StatePublished, Run, deliver},
	{StateDone, Deliver, Guard{}, StateDone, NoAction, deliver},
	{StateFailed, Deliver, Guard{}, StateFailed, NoAction, deliver},
	{StatePending, Complete, Guard{}, StateDone, NoAction, complete},
	{StatePublished, Complete, Guard{}, StateDone, NoAction, complete},
	{StatePending, Fail, Guard{}, StateFailed, NoAction, fail},
	{StatePublished, Fail, Guard{}, StateFailed, NoAction, fail},
	{StatePending, GiveUp, Guard{}, StateFailed, NoAction, giveUp},
	{StatePublished, GiveUp, Guard{}, StateFailed, NoAction, giveUp},
}

// ErrRefused is Next's error for an event that no row allows.
var ErrRefused = errors.New("refused")

// Step is a transition taken.
type Step struct {
	Transition
	// Doc is the document after the transition; the document as it was when the event was refused.
	Doc *Doc
}

// Next finds the row for event on d (nil: absent) and returns the document it makes; d is not
// changed. An event with no row returns ErrRefused.
func Next(d *Doc, e Event, in Input) (Step, error) {
	from := StateOf(d)
	for _, t := range table {
		if t.From != from || t.Event != e || !t.Guard.allows(d, in) {
			continue
		}
		var next Doc
		if d != nil {
			next = *d
		}
		if t.apply != nil {
			t.apply(&next, in)
		}
		next.Status = t.To.status()
		return Step{Transition: t, Doc: &next}, nil
	}
	return Step{Doc: d}, fmt.Errorf("%w: %s on a %s document", ErrRefused, e, from)
}
