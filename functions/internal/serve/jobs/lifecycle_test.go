package jobs_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs/jobstest"
)

const staleAfter = 2 * time.Minute

var (
	t0   = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	spec = jobs.Spec{ID: "0123456789abcdef0123456789abcdef", Query: "Faces", NormalizedQuery: "faces", ModelVersion: "nq-1"}
	job  = queue.Message{ID: spec.ID, Text: "faces", ModelVersion: "nq-1"}

	errStore = errors.New("the result store is down")
	errQueue = errors.New("the job queue is down")
)

type fixture struct {
	st  *jobstest.Store
	q   *jobstest.Queue
	lc  *jobs.Lifecycle
	now time.Time
}

// newFixture is a lifecycle on fakes at t0; set f.now to move its clock (not while calls run).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{st: jobstest.NewStore(), q: &jobstest.Queue{}, now: t0}
	f.lc = jobs.New(f.st, f.q, jobs.Options{StaleAfter: staleAfter, Now: func() time.Time { return f.now }})
	return f
}

// put stores a document of spec in a state, changed by mod.
func (f *fixture) put(s jobs.State, mod func(*jobs.Doc)) {
	d := &jobs.Doc{ID: spec.ID, Query: spec.Query, NormalizedQuery: spec.NormalizedQuery, ModelVersion: spec.ModelVersion,
		Status: jobs.Pending, CreatedAt: t0, PublishedAt: t0}
	switch s {
	case jobs.StatePending:
		d.PublishedAt = time.Time{}
	case jobs.StateDone:
		d.Status, d.Result, d.CompletedAt = jobs.Done, &jobs.Result{MapObject: "first"}, t0
	case jobs.StateFailed:
		d.Status, d.Error, d.CompletedAt = jobs.Failed, "no known terms", t0
	}
	if mod != nil {
		mod(d)
	}
	f.st.Put(d)
}

func (f *fixture) doc(t *testing.T) *jobs.Doc {
	t.Helper()
	d := f.st.Doc(spec.ID)
	if d == nil {
		t.Fatal("no document")
	}
	return d
}

// concurrently runs call n times at once and returns how many returned true.
func concurrently(n int, call func() bool) int {
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if call() {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(wins.Load())
}

func TestEnsure(t *testing.T) {
	stale := func(d *jobs.Doc) { d.PublishedAt = t0.Add(-time.Hour) }
	testCases := []struct {
		name string
		// from is the stored state (absent: none), changed by mod.
		from jobs.State
		mod  func(*jobs.Doc)
		// callers query at once.
		callers int
		want    jobs.State
		// published is how many jobs the callers publish between them.
		published int
		check     func(t *testing.T, d *jobs.Doc)
	}{
		{name: "first queries: one creates and publishes", from: jobs.StateAbsent, callers: 20, want: jobs.StatePublished, published: 1,
			check: func(t *testing.T, d *jobs.Doc) {
				if !d.CreatedAt.Equal(t0) || !d.PublishedAt.Equal(t0) || d.Query != "Faces" || d.NormalizedQuery != "faces" {
					t.Errorf("created %+v", d)
				}
			}},
		{name: "a fresh job is left alone", from: jobs.StatePublished, callers: 5, want: jobs.StatePublished, published: 0},
		{name: "a job that never went out is published once", from: jobs.StatePending, callers: 10, want: jobs.StatePublished, published: 1,
			check: func(t *testing.T, d *jobs.Doc) {
				if !d.PublishedAt.Equal(t0) || d.Republished {
					t.Errorf("published %+v", d)
				}
			}},
		{name: "a stale job is republished once", from: jobs.StatePublished, mod: stale, callers: 10, want: jobs.StatePublished, published: 1,
			check: func(t *testing.T, d *jobs.Doc) {
				if !d.Republished || !d.PublishedAt.Equal(t0) {
					t.Errorf("republished %+v", d)
				}
			}},
		{name: "a republished job stale again fails and the query restarts it", from: jobs.StatePublished,
			mod: func(d *jobs.Doc) { stale(d); d.Republished = true }, callers: 10, want: jobs.StatePublished, published: 1,
			check: func(t *testing.T, d *jobs.Doc) {
				if d.Republished || d.Retryable || d.Error != "" || !d.PublishedAt.Equal(t0) {
					t.Errorf("restarted %+v", d)
				}
			}},
		{name: "a retryable failure is restarted once", from: jobs.StateFailed,
			mod: func(d *jobs.Doc) { d.Retryable, d.Republished, d.Error = true, true, jobs.StalledReason }, callers: 10,
			want: jobs.StatePublished, published: 1},
		{name: "a final failure stays", from: jobs.StateFailed, callers: 3, want: jobs.StateFailed, published: 0},
		{name: "a result is answered", from: jobs.StateDone, callers: 3, want: jobs.StateDone, published: 0},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.from != jobs.StateAbsent {
				f.put(tc.from, tc.mod)
			}
			ok := concurrently(tc.callers, func() bool {
				d, err := f.lc.Ensure(context.Background(), spec)
				if err != nil {
					t.Error(err)
					return false
				}
				// Each caller sees the document as some transition left it.
				return d.ID == spec.ID
			})
			if ok != tc.callers {
				t.Fatalf("%d of %d callers got their document", ok, tc.callers)
			}
			d := f.doc(t)
			if got := jobs.StateOf(d); got != tc.want {
				t.Errorf("document %s, want %s: %+v", got, tc.want, d)
			}
			msgs := f.q.Messages()
			if len(msgs) != tc.published {
				t.Errorf("%d jobs published, want %d", len(msgs), tc.published)
			}
			for _, m := range msgs {
				if diff := cmp.Diff(job, m); diff != "" {
					t.Errorf("job (-want +got):\n%s", diff)
				}
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

// The usual answers, a fresh job and a finished document, cost one read and no transaction.
func TestEnsureReadsOnceWhenNothingIsDue(t *testing.T) {
	for _, s := range []jobs.State{jobs.StatePublished, jobs.StateDone, jobs.StateFailed} {
		f := newFixture(t)
		f.put(s, nil)
		if _, err := f.lc.Ensure(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
		if n := f.st.Calls(jobstest.OpTransact); n != 0 {
			t.Errorf("%s: %d transactions, want none", s, n)
		}
	}
}

// A job that cannot be published answers the queue's error and leaves its document pending; the
// next caller, a query or a poll, publishes it.
func TestPublishFailure(t *testing.T) {
	for _, next := range []string{"query", "poll"} {
		t.Run(next, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			f.q.Inject(errQueue)
			if _, err := f.lc.Ensure(ctx, spec); !errors.Is(err, errQueue) {
				t.Fatalf("Ensure with the queue down: %v, want its error", err)
			}
			if d := f.doc(t); jobs.StateOf(d) != jobs.StatePending || !d.PublishedAt.IsZero() {
				t.Fatalf("document after a failed publish %+v, want pending and unpublished", d)
			}
			// Still down: the claim is undone again.
			if _, err := f.lc.Poll(ctx, spec.ID); !errors.Is(err, errQueue) {
				t.Fatalf("Poll with the queue down: %v", err)
			}
			if s := jobs.StateOf(f.doc(t)); s != jobs.StatePending {
				t.Fatalf("document %s after a second failed publish", s)
			}

			f.q.Inject(nil)
			var d *jobs.Doc
			var err error
			if next == "query" {
				d, err = f.lc.Ensure(ctx, spec)
			} else {
				d, err = f.lc.Poll(ctx, spec.ID)
			}
			if err != nil || jobs.StateOf(d) != jobs.StatePublished {
				t.Fatalf("%s once the queue is back: %+v, %v", next, d, err)
			}
			if msgs := f.q.Messages(); len(msgs) != 1 {
				t.Errorf("%d jobs published, want 1", len(msgs))
			}
			if d := f.doc(t); d.Republished || !d.PublishedAt.Equal(t0) {
				t.Errorf("document %+v, want published once, now", d)
			}
		})
	}
}

// A client polling a map republishes its lost job as a query would, but a poll never restarts a
// failed map: it says that it failed, and the next query retries.
func TestPoll(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.lc.Poll(ctx, spec.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Poll of nothing: %v", err)
	}
	f.put(jobs.StatePublished, nil)
	f.now = t0.Add(staleAfter + time.Second)
	if n := concurrently(5, func() bool { _, err := f.lc.Poll(ctx, spec.ID); return err == nil }); n != 5 {
		t.Fatalf("%d of 5 polls succeeded", n)
	}
	if d := f.doc(t); !d.Republished || len(f.q.Messages()) != 1 {
		t.Errorf("after polls of a stale job: %+v, %d published; want one republish", d, len(f.q.Messages()))
	}
	f.now = f.now.Add(staleAfter + time.Second)
	d, err := f.lc.Poll(ctx, spec.ID)
	if err != nil || d.Status != jobs.Failed || !d.Retryable || d.Error != jobs.StalledReason {
		t.Fatalf("poll of a job lost twice: %+v, %v; want failed, retryable", d, err)
	}
	if d, err := f.lc.Poll(ctx, spec.ID); err != nil || d.Status != jobs.Failed || len(f.q.Messages()) != 1 {
		t.Errorf("a second poll: %+v, %v, %d published; want it still failed", d, err, len(f.q.Messages()))
	}
	if d, err := f.lc.Ensure(ctx, spec); err != nil || jobs.StateOf(d) != jobs.StatePublished || len(f.q.Messages()) != 2 {
		t.Errorf("the next query: %+v, %v, %d published; want a fresh job", d, err, len(f.q.Messages()))
	}
}

func TestStart(t *testing.T) {
	testCases := []struct {
		from jobs.State
		run  bool
	}{
		{jobs.StatePublished, true},
		{jobs.StatePending, true},
		{jobs.StateDone, false},
		{jobs.StateFailed, false},
	}
	for _, tc := range testCases {
		t.Run(string(tc.from), func(t *testing.T) {
			f := newFixture(t)
			f.put(tc.from, nil)
			before := f.doc(t)
			for i := 1; i <= 2; i++ {
				d, run, err := f.lc.Start(context.Background(), spec.ID)
				if err != nil || run != tc.run {
					t.Fatalf("Start = %v, %v; want run %v", run, err, tc.run)
				}
				if d.Deliveries != int64(i) || f.doc(t).Deliveries != int64(i) {
					t.Errorf("delivery %d counted as %d", i, d.Deliveries)
				}
			}
			after := f.doc(t)
			after.Deliveries = 0
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("Start changed more than the delivery count (-before +after):\n%s", diff)
			}
		})
	}
	f := newFixture(t)
	if _, _, err := f.lc.Start(context.Background(), spec.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Start of a job whose document is gone: %v, want ErrNotFound", err)
	}
}

// Of any number of results for one document the first is kept, and a failure never replaces it.
func TestFirstResultWins(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.put(jobs.StatePublished, nil)
	var mu sync.Mutex
	var kept *jobs.Result
	wins := concurrently(10, func() bool {
		r := &jobs.Result{MapObject: "attempt"}
		wrote, err := f.lc.Complete(ctx, spec.ID, r)
		if err != nil {
			t.Error(err)
		}
		if wrote {
			mu.Lock()
			kept = r
			mu.Unlock()
		}
		return wrote
	})
	if wins != 1 {
		t.Fatalf("%d of 10 concurrent results written, want 1", wins)
	}
	f.now = t0.Add(time.Minute)
	if wrote, err := f.lc.Complete(ctx, spec.ID, &jobs.Result{MapObject: "late"}); wrote || err != nil {
		t.Errorf("a later result: %v, %v; want no write", wrote, err)
	}
	if wrote, err := f.lc.Fail(ctx, spec.ID, "late failure"); wrote || err != nil {
		t.Errorf("a failure after the result: %v, %v; want no write", wrote, err)
	}
	d := f.doc(t)
	if d.Status != jobs.Done || d.Result != kept || !d.CompletedAt.Equal(t0) || d.Error != "" {
		t.Errorf("document %+v, want the first result, completed at %s", d, t0)
	}
}

// A transaction whose document changes under it decides again, and the lifecycle acts on the
// decision that was written: a stale job completed meanwhile is not republished.
func TestDecisionsFollowTheCommittedAttempt(t *testing.T) {
	f := newFixture(t)
	f.put(jobs.StatePublished, func(d *jobs.Doc) { d.PublishedAt = t0.Add(-time.Hour) })
	racing := &completeDuringFirstTransact{Store: f.st}
	lc := jobs.New(racing, f.q, jobs.Options{StaleAfter: staleAfter, Now: func() time.Time { return f.now }})
	d, err := lc.Ensure(context.Background(), spec)
	if err != nil || d.Status != jobs.Done || d.Result.MapObject != "meanwhile" {
		t.Fatalf("Ensure = %+v, %v; want the result written meanwhile", d, err)
	}
	if n := len(f.q.Messages()); n != 0 {
		t.Errorf("%d jobs published for a document completed meanwhile", n)
	}
	if d := f.doc(t); d.Republished || f.st.Retries() != 1 {
		t.Errorf("document %+v after %d retries; want the claim decided again, once, and not written", d, f.st.Retries())
	}
}

// completeDuringFirstTransact completes the document while the first transaction decides, as
// Predict would on another machine.
type completeDuringFirstTransact struct {
	*jobstest.Store
	done bool
}

func (s *completeDuringFirstTransact) Transact(ctx context.Context, id string, decide func(*jobs.Doc) *jobs.Doc) error {
	return s.Store.Transact(ctx, id, func(d *jobs.Doc) *jobs.Doc {
		next := decide(d)
		if !s.done {
			s.done = true
			done := *d
			done.Status, done.Result = jobs.Done, &jobs.Result{MapObject: "meanwhile"}
			s.Store.Put(&done)
		}
		return next
	})
}

func TestFail(t *testing.T) {
	testCases := []struct {
		from  jobs.State
		wrote bool
	}{
		{jobs.StatePublished, true},
		{jobs.StatePending, true},
		{jobs.StateDone, false},
		{jobs.StateFailed, false},
	}
	for _, tc := range testCases {
		t.Run(string(tc.from), func(t *testing.T) {
			f := newFixture(t)
			f.put(tc.from, nil)
			before := f.doc(t)
			wrote, err := f.lc.Fail(context.Background(), spec.ID, "the job's text does not match its query")
			if err != nil || wrote != tc.wrote {
				t.Fatalf("Fail = %v, %v; want %v", wrote, err, tc.wrote)
			}
			d := f.doc(t)
			switch {
			case tc.wrote && (d.Status != jobs.Failed || d.Retryable || d.Error != "the job's text does not match its query"):
				t.Errorf("failed document %+v", d)
			case !tc.wrote && !cmp.Equal(before, d):
				t.Errorf("a refused Fail changed the document: %s", cmp.Diff(before, d))
			}
		})
	}
	f := newFixture(t)
	if _, err := f.lc.Fail(context.Background(), spec.ID, "x"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Fail of nothing: %v", err)
	}
}

// The store's errors reach the caller unchanged, and nothing is published on the strength of a
// write that did not happen.
func TestStoreErrors(t *testing.T) {
	stale := func(d *jobs.Doc) { d.PublishedAt = t0.Add(-time.Hour) }
	testCases := []struct {
		name string
		from jobs.State
		mod  func(*jobs.Doc)
		op   jobstest.Op
		call func(*jobs.Lifecycle) error
	}{
		{"read of a query", jobs.StatePublished, nil, jobstest.OpGet,
			func(l *jobs.Lifecycle) error { _, err := l.Ensure(context.Background(), spec); return err }},
		{"create", jobs.StateAbsent, nil, jobstest.OpCreate,
			func(l *jobs.Lifecycle) error { _, err := l.Ensure(context.Background(), spec); return err }},
		{"claim of a stale job", jobs.StatePublished, stale, jobstest.OpTransact,
			func(l *jobs.Lifecycle) error { _, err := l.Ensure(context.Background(), spec); return err }},
		{"restart", jobs.StateFailed, func(d *jobs.Doc) { d.Retryable = true }, jobstest.OpTransact,
			func(l *jobs.Lifecycle) error { _, err := l.Ensure(context.Background(), spec); return err }},
		{"read of a poll", jobs.StatePublished, nil, jobstest.OpGet,
			func(l *jobs.Lifecycle) error { _, err := l.Poll(context.Background(), spec.ID); return err }},
		{"start", jobs.StatePublished, nil, jobstest.OpTransact,
			func(l *jobs.Lifecycle) error { _, _, err := l.Start(context.Background(), spec.ID); return err }},
		{"count prediction", jobs.StatePublished, nil, jobstest.OpCountPrediction,
			func(l *jobs.Lifecycle) error { return l.CountPrediction(context.Background(), spec.ID) }},
		{"complete", jobs.StatePublished, nil, jobstest.OpTransact,
			func(l *jobs.Lifecycle) error {
				_, err := l.Complete(context.Background(), spec.ID, &jobs.Result{})
				return err
			}},
		{"fail", jobs.StatePublished, nil, jobstest.OpTransact,
			func(l *jobs.Lifecycle) error { _, err := l.Fail(context.Background(), spec.ID, "x"); return err }},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.from != jobs.StateAbsent {
				f.put(tc.from, tc.mod)
			}
			before := f.st.Doc(spec.ID)
			f.st.Inject(tc.op, errStore)
			if err := tc.call(f.lc); !errors.Is(err, errStore) {
				t.Fatalf("%v, want the store's error", err)
			}
			if n := len(f.q.Messages()); n != 0 {
				t.Errorf("%d jobs published", n)
			}
			if diff := cmp.Diff(before, f.st.Doc(spec.ID)); diff != "" {
				t.Errorf("document changed (-before +after):\n%s", diff)
			}
		})
	}
}

// When the queue fails and so does the write that records it, the queue's error is answered; the
// document keeps its published_at and is republished when stale.
func TestPublishFailureWithTheStoreDownToo(t *testing.T) {
	f := newFixture(t)
	f.put(jobs.StatePending, nil)
	f.q.Inject(errQueue)
	calls := 0
	// The claim's transaction succeeds; the one that would undo it does not.
	f.lc = jobs.New(&failSecondTransact{Store: f.st, calls: &calls}, f.q, jobs.Options{StaleAfter: staleAfter, Now: func() time.Time { return f.now }})
	if _, err := f.lc.Ensure(context.Background(), spec); !errors.Is(err, errQueue) {
		t.Fatalf("Ensure: %v, want the queue's error", err)
	}
	if d := f.doc(t); jobs.StateOf(d) != jobs.StatePublished || !d.PublishedAt.Equal(t0) {
		t.Errorf("document %+v, want published at %s (stale later)", d, t0)
	}
	f.q.Inject(nil)
	f.now = t0.Add(staleAfter + time.Second)
	if d, err := f.lc.Ensure(context.Background(), spec); err != nil || !d.Republished || len(f.q.Messages()) != 1 {
		t.Errorf("once stale: %+v, %v, %d published; want a republish", d, err, len(f.q.Messages()))
	}
}

type failSecondTransact struct {
	*jobstest.Store
	calls *int
}

func (s *failSecondTransact) Transact(ctx context.Context, id string, decide func(*jobs.Doc) *jobs.Doc) error {
	if *s.calls++; *s.calls == 2 {
		return errStore
	}
	return s.Store.Transact(ctx, id, decide)
}

// EnsureFrom decides on the document its caller read: an absent one is created and published
// without being read again, and one that appeared since is found by the create and not published
// twice.
func TestEnsureFromTheCallersRead(t *testing.T) {
	f := newFixture(t)
	d, err := f.lc.EnsureFrom(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != jobs.Pending || f.st.Calls(jobstest.OpGet) != 0 || len(f.q.Messages()) != 1 {
		t.Errorf("absent: %+v after %d reads and %d publications; want pending, no read, one job", d, f.st.Calls(jobstest.OpGet), len(f.q.Messages()))
	}
	// Another request created it meanwhile: this one read it absent before.
	if _, err := f.lc.EnsureFrom(context.Background(), spec, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(f.q.Messages()); n != 1 {
		t.Errorf("%d jobs published for one document", n)
	}
}
