// Package store keeps the map documents in Firestore: one document per (model version, normalised
// query) that is both the job's state and the cached result. Firestore types stay in this package.
package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Status of a map document.
type Status string

// The states of a document: pending until Predict writes the result (done) or gives up on the job
// for a reason that a retry cannot fix (failed).
const (
	Pending Status = "pending"
	Done    Status = "done"
	Failed  Status = "failed"
)

// Errors callers act on.
var (
	ErrNotFound = errors.New("no such map")
	// ErrUnavailable wraps failures of Firestore itself (down, overloaded, timed out): callers
	// answer 503 or let Pub/Sub redeliver.
	ErrUnavailable = errors.New("the result store is unavailable")
)

// Term is a related term.
type Term struct {
	Term   string  `firestore:"term" json:"term"`
	Weight float64 `firestore:"weight" json:"weight"`
}

// Article is a related article.
type Article struct {
	PMID        int64   `firestore:"pmid" json:"pmid"`
	Title       string  `firestore:"title" json:"title"`
	Authors     string  `firestore:"authors" json:"authors,omitempty"`
	Year        int     `firestore:"year" json:"year,omitempty"`
	Journal     string  `firestore:"journal" json:"journal,omitempty"`
	DOI         string  `firestore:"doi" json:"doi,omitempty"`
	URL         string  `firestore:"url" json:"url"`
	Correlation float64 `firestore:"correlation" json:"correlation"`
}

// Peak is a local maximum of the map.
type Peak struct {
	MNI []float64 `firestore:"mni" json:"mni"`
	Z   float64   `firestore:"z" json:"z"`
}

// Result is what Predict computes for a document.
type Result struct {
	RecognizedTerms []string  `firestore:"recognized_terms"`
	RelatedTerms    []Term    `firestore:"related_terms"`
	RelatedArticles []Article `firestore:"related_articles"`
	Peaks           []Peak    `firestore:"peaks"`
	MapObject       string    `firestore:"map_object"`
	PreviewObject   string    `firestore:"preview_object"`
	ComputeMS       float64   `firestore:"compute_ms"`
}

// Doc is a map document.
type Doc struct {
	ID              string `firestore:"id"`
	Query           string `firestore:"query"`
	NormalizedQuery string `firestore:"normalized_query"`
	ModelVersion    string `firestore:"model_version"`
	Status          Status `firestore:"status"`
	Error           string `firestore:"error,omitempty"`
	// Retryable marks a failure that a new query may retry (a job that never completed), as
	// opposed to one the text itself caused.
	Retryable bool      `firestore:"retryable,omitempty"`
	Result    *Result   `firestore:"result,omitempty"`
	CreatedAt time.Time `firestore:"created_at"`
	// PublishedAt is when the job was last published; zero while it could not be published yet.
	PublishedAt time.Time `firestore:"published_at"`
	Republished bool      `firestore:"republished"`
	CompletedAt time.Time `firestore:"completed_at,omitempty"`
	// Deliveries counts the jobs Predict received for this document and Predictions the times it
	// ran the model: the evidence that duplicates and redeliveries cost no second result.
	Deliveries  int64 `firestore:"deliveries"`
	Predictions int64 `firestore:"predictions"`
}

// Store is the Firestore collection of map documents.
type Store struct {
	client *firestore.Client
	col    *firestore.CollectionRef
}

// New opens the collection. The client honours FIRESTORE_EMULATOR_HOST.
func New(ctx context.Context, projectID, collection string) (*Store, error) {
	client, err := firestore.NewClient(ctx, projectID)
	if err != nil {
		return nil, fmt.Errorf("firestore.NewClient: %w", err)
	}
	return &Store{client: client, col: client.Collection(collection)}, nil
}

// Close releases the client.
func (s *Store) Close() error { return s.client.Close() }

// classify turns Firestore errors into the errors callers act on.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	switch status.Code(err) {
	case codes.NotFound:
		return ErrNotFound
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.Unknown, codes.Canceled:
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
	}
	return fmt.Errorf("firestore %s: %w", op, err)
}

// Get reads a document.
func (s *Store) Get(ctx context.Context, id string) (*Doc, error) {
	snap, err := s.col.Doc(id).Get(ctx)
	if err != nil {
		return nil, classify("get", err)
	}
	return decode(snap)
}

func decode(snap *firestore.DocumentSnapshot) (*Doc, error) {
	var d Doc
	if err := snap.DataTo(&d); err != nil {
		return nil, fmt.Errorf("firestore: document %s: %w", snap.Ref.ID, err)
	}
	return &d, nil
}

// CreatePending creates a pending document unless one exists: of any number of simultaneous first
// requests for the same id exactly one gets created = true and must publish the job.
func (s *Store) CreatePending(ctx context.Context, d *Doc) (created bool, err error) {
	d.Status = Pending
	_, err = s.col.Doc(d.ID).Create(ctx, d)
	if status.Code(err) == codes.AlreadyExists {
		return false, nil
	}
	if err != nil {
		return false, classify("create", err)
	}
	return true, nil
}

// hitShards spreads the hit counter of a document over this many shard documents: Firestore
// sustains about one write a second on one document, and a popular query gets more hits than that.
const hitShards = 10

// AddHit counts one more answer served from the cache, on a random shard with Firestore's
// server-side increment (concurrent hits are never lost), and returns the total.
func (s *Store) AddHit(ctx context.Context, id string) (int64, error) {
	shard := s.col.Doc(id).Collection("hits").Doc(strconv.Itoa(rand.IntN(hitShards)))
	if _, err := shard.Set(ctx, map[string]any{"n": firestore.Increment(1)}, firestore.MergeAll); err != nil {
		return 0, classify("add hit", err)
	}
	return s.Hits(ctx, id)
}

// Hits is the number of answers served from the cache for a document.
func (s *Store) Hits(ctx context.Context, id string) (int64, error) {
	res, err := s.col.Doc(id).Collection("hits").NewAggregationQuery().WithSum("n", "total").Get(ctx)
	if err != nil {
		return 0, classify("count hits", err)
	}
	switch v := res["total"].(type) {
	case *firestorepb.Value:
		return v.GetIntegerValue() + int64(v.GetDoubleValue()), nil
	case int64:
		return v, nil
	}
	return 0, fmt.Errorf("firestore: unexpected sum %T", res["total"])
}

// Publication says what a caller must do about a pending document's job.
type Publication int

// The outcomes of ClaimPublication.
const (
	// NothingToDo: the job is out there (or the document is finished).
	NothingToDo Publication = iota
	// Publish: the job was never published (its first publish failed); publish it now.
	Publish
	// Republish: the job is older than the limit and was published once only; publish it again.
	Republish
	// Stalled: the republished job is older than the limit too; the document is now failed, and
	// retryable, so that the next query starts afresh.
	Stalled
)

// ClaimPublication decides, in a transaction, whether the caller must publish a pending
// document's job: of concurrent callers at most one is told to. A job published more than
// staleAfter before now counts as lost.
func (s *Store) ClaimPublication(ctx context.Context, id string, now time.Time, staleAfter time.Duration) (Publication, error) {
	var out Publication
	now = now.UTC()
	staleBefore := now.Add(-staleAfter)
	err := s.transact(ctx, id, "claim publication", func(d *Doc) []firestore.Update {
		switch {
		case d.Status != Pending:
			out = NothingToDo
			return nil
		case d.PublishedAt.IsZero():
			out = Publish
			return []firestore.Update{{Path: "published_at", Value: now}}
		case !d.PublishedAt.Before(staleBefore):
			out = NothingToDo
			return nil
		case !d.Republished:
			out = Republish
			return []firestore.Update{{Path: "republished", Value: true}, {Path: "published_at", Value: now}}
		default:
			out = Stalled
			return []firestore.Update{{Path: "status", Value: Failed}, {Path: "retryable", Value: true},
				{Path: "error", Value: "the prediction did not complete in time; query again to retry"}, {Path: "completed_at", Value: now}}
		}
	})
	return out, err
}

// transact reads a document and writes the updates decide returns (none for nil) in one
// transaction: decide may run more than once when Firestore retries the transaction.
func (s *Store) transact(ctx context.Context, id, op string, decide func(*Doc) []firestore.Update) error {
	ref := s.col.Doc(id)
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		d, err := decode(snap)
		if err != nil {
			return err
		}
		if updates := decide(d); len(updates) > 0 {
			return tx.Update(ref, updates)
		}
		return nil
	})
	return classify(op, err)
}

// Unpublished records that a job could not be published, so that the next caller of
// ClaimPublication publishes it.
func (s *Store) Unpublished(ctx context.Context, id string) error {
	_, err := s.col.Doc(id).Update(ctx, []firestore.Update{{Path: "published_at", Value: time.Time{}}})
	return classify("unpublished", err)
}

// Restart turns a retryable failed document back into a pending one whose job the caller must
// publish; of concurrent callers exactly one gets true.
func (s *Store) Restart(ctx context.Context, id string, now time.Time) (bool, error) {
	restarted := false
	err := s.transact(ctx, id, "restart", func(d *Doc) []firestore.Update {
		restarted = d.Status == Failed && d.Retryable
		if !restarted {
			return nil
		}
		return []firestore.Update{{Path: "status", Value: Pending}, {Path: "retryable", Value: false},
			{Path: "error", Value: ""}, {Path: "republished", Value: false}, {Path: "published_at", Value: now.UTC()}}
	})
	return restarted, err
}

// StartJob counts a delivery of the document's job and returns the document.
func (s *Store) StartJob(ctx context.Context, id string) (*Doc, error) {
	if _, err := s.col.Doc(id).Update(ctx, []firestore.Update{{Path: "deliveries", Value: firestore.Increment(1)}}); err != nil {
		return nil, classify("start job", err)
	}
	return s.Get(ctx, id)
}

// CountPrediction records that the model ran for the document.
func (s *Store) CountPrediction(ctx context.Context, id string) error {
	_, err := s.col.Doc(id).Update(ctx, []firestore.Update{{Path: "predictions", Value: firestore.Increment(1)}})
	return classify("count prediction", err)
}

// Complete marks a pending document done with its result. A document already done keeps its
// first result, so a redelivered job never makes a second one; it reports whether it wrote.
func (s *Store) Complete(ctx context.Context, id string, r *Result) (bool, error) {
	return s.finish(ctx, id, []firestore.Update{
		{Path: "status", Value: Done}, {Path: "result", Value: r}, {Path: "completed_at", Value: time.Now()},
	})
}

// Fail marks a pending document failed with a reason a person can read.
func (s *Store) Fail(ctx context.Context, id, reason string) (bool, error) {
	return s.finish(ctx, id, []firestore.Update{
		{Path: "status", Value: Failed}, {Path: "error", Value: reason}, {Path: "completed_at", Value: time.Now()},
	})
}

func (s *Store) finish(ctx context.Context, id string, updates []firestore.Update) (bool, error) {
	wrote := false
	err := s.transact(ctx, id, "finish", func(d *Doc) []firestore.Update {
		wrote = d.Status == Pending
		if !wrote {
			return nil
		}
		return updates
	})
	return wrote, err
}

// Wait returns the document once it is no longer pending, or the last state seen when ctx ends
// (then with a nil error: waiting out the time is not a failure).
func (s *Store) Wait(ctx context.Context, id string) (*Doc, error) {
	it := s.col.Doc(id).Snapshots(ctx)
	defer it.Stop()
	var last *Doc
	for {
		snap, err := it.Next()
		if err != nil {
			if ctx.Err() != nil && last != nil {
				return last, nil
			}
			return last, classify("wait", err)
		}
		if !snap.Exists() {
			return nil, ErrNotFound
		}
		d, err := decode(snap)
		if err != nil {
			return nil, err
		}
		last = d
		if d.Status != Pending {
			return last, nil
		}
	}
}
