// Package jobstest has in-memory stand-ins for the result store and the job queue, so that the job
// lifecycle and the functions built on it are tested in process, with errors injected at will. The
// store keeps Firestore's transaction semantics: a transaction whose document changed under it
// decides again, so of concurrent callers exactly one wins a transition.
package jobstest

import (
	"context"
	"sync"

	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
)

// Op names a Store method, for injecting errors and counting calls.
type Op string

// The Store's operations.
const (
	OpGet             Op = "get"
	OpCreate          Op = "create"
	OpTransact        Op = "transact"
	OpCountPrediction Op = "count prediction"
	OpWait            Op = "wait"
	OpAddHits         Op = "add hits"
	OpHits            Op = "hits"
	OpAddFeedback     Op = "add feedback"
)

// Store is an in-memory result store.
type Store struct {
	mu       sync.Mutex
	docs     map[string]jobs.Doc
	versions map[string]int
	hits     map[string]int64
	feedback []jobs.Feedback
	errs     map[Op]error
	calls    map[Op]int
	// changed is closed, and replaced, at every write: Wait's notification.
	changed chan struct{}
	// retries counts transactions that decided again because another write came first.
	retries int
}

var _ jobs.Store = (*Store)(nil)

// NewStore makes an empty store.
func NewStore() *Store {
	return &Store{docs: map[string]jobs.Doc{}, versions: map[string]int{}, hits: map[string]int64{},
		errs: map[Op]error{}, calls: map[Op]int{}, changed: make(chan struct{})}
}

// Inject makes every later call of op fail with err, until Inject(op, nil).
func (s *Store) Inject(op Op, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs[op] = err
}

// Calls is how many times op was called.
func (s *Store) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Retries is how many times a transaction decided again because its document changed under it.
func (s *Store) Retries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retries
}

// Put writes a document as it is, in any state, as a test's starting point.
func (s *Store) Put(d *jobs.Doc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(*d)
}

// Doc is a copy of a stored document, nil when there is none.
func (s *Store) Doc(id string) *jobs.Doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[id]
	if !ok {
		return nil
	}
	return &d
}

// begin counts a call and returns its injected error; the caller holds s.mu.
func (s *Store) begin(op Op) error {
	s.calls[op]++
	return s.errs[op]
}

// write stores d and wakes the waiters; the caller holds s.mu.
func (s *Store) write(d jobs.Doc) {
	s.docs[d.ID] = d
	s.versions[d.ID]++
	close(s.changed)
	s.changed = make(chan struct{})
}

// Get reads a document.
func (s *Store) Get(ctx context.Context, id string) (*jobs.Doc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(OpGet); err != nil {
		return nil, err
	}
	d, ok := s.docs[id]
	if !ok {
		return nil, jobs.ErrNotFound
	}
	return &d, nil
}

// CreatePending writes d as pending unless its id exists.
func (s *Store) CreatePending(ctx context.Context, d *jobs.Doc) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(OpCreate); err != nil {
		return false, err
	}
	if _, ok := s.docs[d.ID]; ok {
		return false, nil
	}
	d.Status = jobs.Pending
	s.write(*d)
	return true, nil
}

// Transact reads the document, lets decide choose without holding the store, and writes its
// choice only if nobody wrote the document meanwhile; otherwise decide runs again, as Firestore
// runs a contended transaction again.
func (s *Store) Transact(ctx context.Context, id string, decide func(*jobs.Doc) *jobs.Doc) error {
	s.mu.Lock()
	err := s.begin(OpTransact)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		d, ok := s.docs[id]
		version := s.versions[id]
		s.mu.Unlock()
		if !ok {
			return jobs.ErrNotFound
		}
		next := decide(&d)

		s.mu.Lock()
		if s.versions[id] != version {
			s.retries++
			s.mu.Unlock()
			continue
		}
		if next != nil {
			s.write(*next)
		}
		s.mu.Unlock()
		return nil
	}
}

// CountPrediction adds one to a document's Predictions.
func (s *Store) CountPrediction(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(OpCountPrediction); err != nil {
		return err
	}
	d, ok := s.docs[id]
	if !ok {
		return jobs.ErrNotFound
	}
	d.Predictions++
	s.write(d)
	return nil
}

// Wait returns the document once it is no longer pending, or the last state seen when ctx ends
// (then with a nil error), as the Firestore store's Wait does.
func (s *Store) Wait(ctx context.Context, id string) (*jobs.Doc, error) {
	s.mu.Lock()
	err := s.begin(OpWait)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	for {
		s.mu.Lock()
		d, ok := s.docs[id]
		changed := s.changed
		s.mu.Unlock()
		if !ok {
			return nil, jobs.ErrNotFound
		}
		if d.Status != jobs.Pending {
			return &d, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return &d, nil
		}
	}
}

// AddHits adds each id's count, all or nothing as the Firestore store's one commit: with an
// injected error nothing is added.
func (s *Store) AddHits(ctx context.Context, counts map[string]int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(OpAddHits); err != nil {
		return err
	}
	for id, n := range counts {
		if n > 0 {
			s.hits[id] += n
		}
	}
	return nil
}

// SetHits sets the stored hit total of id, as other instances' hits would, as a test's starting
// point.
func (s *Store) SetHits(id string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits[id] = n
}

// Hits is the number of answers served from the cache for a document.
func (s *Store) Hits(ctx context.Context, id string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(OpHits); err != nil {
		return 0, err
	}
	return s.hits[id], nil
}

// AddFeedback keeps a visitor's feedback.
func (s *Store) AddFeedback(ctx context.Context, f jobs.Feedback) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(OpAddFeedback); err != nil {
		return err
	}
	s.feedback = append(s.feedback, f)
	return nil
}

// Feedback is what AddFeedback kept, in order.
func (s *Store) Feedback() []jobs.Feedback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]jobs.Feedback(nil), s.feedback...)
}

// Queue is an in-memory job queue that keeps what it is sent.
type Queue struct {
	mu   sync.Mutex
	msgs []queue.Message
	err  error
}

var _ jobs.Publisher = (*Queue)(nil)

// Inject makes every later Publish fail with err, until Inject(nil).
func (q *Queue) Inject(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.err = err
}

// Publish keeps m, or returns the injected error.
func (q *Queue) Publish(ctx context.Context, m queue.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.msgs = append(q.msgs, m)
	return nil
}

// Messages is what was published, in order.
func (q *Queue) Messages() []queue.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]queue.Message(nil), q.msgs...)
}
