// Package store keeps the map documents (jobs.Doc) in Firestore: one document per (model version,
// normalised query) that is both the job's state and the cached result. It applies the job
// lifecycle's decisions in transactions; Firestore types stay in this package.
package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
)

// The documents are the jobs package's; named here too for callers that use the store alone (the
// end-to-end tests).
type Doc = jobs.Doc

// Pending is the status of a document whose job is not finished, for the same callers.
const Pending = jobs.Pending

// Errors callers act on.
var (
	// ErrNotFound is the jobs package's, so that the lifecycle recognises it.
	ErrNotFound = jobs.ErrNotFound
	// ErrUnavailable wraps failures of Firestore itself (down, overloaded, timed out): callers
	// answer 503 or let Pub/Sub redeliver.
	ErrUnavailable = errors.New("the result store is unavailable")
)

// Store is the Firestore collection of map documents.
type Store struct {
	client *firestore.Client
	col    *firestore.CollectionRef
}

var _ jobs.Store = (*Store)(nil)

// reconnect is how soon a client tries again to reach Firestore after losing it: gRPC's default
// backoff grows to two minutes, so an instance whose connection broke while Firestore was
// unreachable could sit out the recovery for that long; a few seconds at most costs nothing. With
// FIRESTORE_EMULATOR_HOST the client makes its own connection and takes no dial options (a
// connection made here instead lost jobs after a kill -9 of the emulator in make reliability), so
// there the default backoff holds.
var reconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
	MinConnectTimeout: 5 * time.Second,
})

// New opens the collection. The client honours FIRESTORE_EMULATOR_HOST.
func New(ctx context.Context, projectID, collection string) (*Store, error) {
	client, err := firestore.NewClient(ctx, projectID, option.WithGRPCDialOption(reconnect))
	if err != nil {
		return nil, fmt.Errorf("firestore.NewClient: %w", err)
	}
	return &Store{client: client, col: client.Collection(collection)}, nil
}

// NewEmulator opens the collection on the Firestore emulator at host ("127.0.0.1:port"), as New does
// with FIRESTORE_EMULATOR_HOST=host, for a process that talks to more than one emulator (the
// local stack, which its tests start many times). It signs in as the emulator's admin.
func NewEmulator(ctx context.Context, host, projectID, collection string) (*Store, error) {
	conn, err := grpc.NewClient(host, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(emulatorAdmin{}), reconnect,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)))
	if err != nil {
		return nil, fmt.Errorf("firestore emulator at %s: %w", host, err)
	}
	client, err := firestore.NewClient(ctx, projectID, option.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("firestore.NewClient: %w", err)
	}
	return &Store{client: client, col: client.Collection(collection)}, nil
}

// emulatorAdmin is the Firestore emulator's admin credential ("Bearer owner"), which the client
// sends itself when FIRESTORE_EMULATOR_HOST is set.
type emulatorAdmin struct{}

func (emulatorAdmin) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (emulatorAdmin) RequireTransportSecurity() bool { return false }

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

// MaxHitIDs is the most ids one AddHits takes: Firestore's historical bound on the writes of one
// commit, which keeps a commit's request small (about 150 bytes a write) and its latency short.
const MaxHitIDs = 500

// AddHits adds counts[id] to the hit counter of each id, all in one atomic commit: every
// increment is written, or none is (then the error says why, and the caller may send them all
// again). Each id's increment goes to a random shard (hitShards), as a server-side increment, so
// that concurrent writers (other instances' AddHits) never lose a hit. Counts of 0 or less are
// skipped; an empty map writes nothing. It is a transaction with writes only, which holds no lock
// on any document.
func (s *Store) AddHits(ctx context.Context, counts map[string]int64) error {
	if len(counts) > MaxHitIDs {
		return fmt.Errorf("firestore add hits: %d ids, more than the %d of one commit", len(counts), MaxHitIDs)
	}
	n := 0
	for _, c := range counts {
		if c > 0 {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		for id, c := range counts {
			if c <= 0 {
				continue
			}
			shard := s.col.Doc(id).Collection("hits").Doc(strconv.Itoa(rand.IntN(hitShards)))
			if err := tx.Set(shard, map[string]any{"n": firestore.Increment(c)}, firestore.MergeAll); err != nil {
				return err
			}
		}
		return nil
	})
	return classify("add hits", err)
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

// AddFeedback stores a visitor's feedback on a map, in the map document's feedback collection.
func (s *Store) AddFeedback(ctx context.Context, f jobs.Feedback) error {
	if _, err := s.col.Doc(f.MapID).Collection("feedback").NewDoc().Create(ctx, f); err != nil {
		return classify("add feedback", err)
	}
	return nil
}

// Feedback lists the feedback stored on a map, oldest first.
func (s *Store) Feedback(ctx context.Context, mapID string) ([]jobs.Feedback, error) {
	snaps, err := s.col.Doc(mapID).Collection("feedback").OrderBy("created_at", firestore.Asc).Documents(ctx).GetAll()
	if err != nil {
		return nil, classify("list feedback", err)
	}
	out := make([]jobs.Feedback, 0, len(snaps))
	for _, snap := range snaps {
		var f jobs.Feedback
		if err := snap.DataTo(&f); err != nil {
			return nil, fmt.Errorf("firestore: feedback %s: %w", snap.Ref.ID, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// Transact reads a document and writes the fields that decide changed, if the document did not
// change in between; decide returns nil to write nothing, and runs again on a fresh read when
// another writer came first. Only changed fields are written, so that a transition never undoes a
// concurrent write of a field it did not touch (the prediction counter, say).
//
// It is optimistic (a write with the read's update time as its precondition) rather than a
// Firestore transaction: a transaction's read takes a lock on the document, and a process killed
// between the read and the commit (Predict, kill -9 or an instance stopped mid-job) leaves the
// lock until it expires, so every delivery of that job waits and fails on it for a minute or more
// (measured on the local stack: 75 s). A precondition holds nothing for anyone.
func (s *Store) Transact(ctx context.Context, id string, decide func(*Doc) *Doc) error {
	ref := s.col.Doc(id)
	for attempt := 1; ; attempt++ {
		snap, err := ref.Get(ctx)
		if err != nil {
			return classify("transaction", err)
		}
		d, err := decode(snap)
		if err != nil {
			return err
		}
		before := *d
		next := decide(d)
		if next == nil {
			return nil
		}
		updates := changes(&before, next)
		if len(updates) == 0 {
			return nil
		}
		_, err = ref.Update(ctx, updates, firestore.LastUpdateTime(snap.UpdateTime))
		if status.Code(err) != codes.FailedPrecondition || attempt == maxAttempts {
			return classify("transaction", err)
		}
		// Another writer came first: decide again on what it wrote, after a short random pause
		// so that many contenders spread out.
		select {
		case <-ctx.Done():
			return classify("transaction", ctx.Err())
		case <-time.After(time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond)))):
		}
	}
}

// maxAttempts bounds Transact's reads under contention (Firestore's own transactions try 5 times;
// a burst of duplicate deliveries of one job contends more).
const maxAttempts = 30

// changes lists the fields of after that differ from before, by their stored names.
func changes(before, after *Doc) []firestore.Update {
	var updates []firestore.Update
	b, a := reflect.ValueOf(before).Elem(), reflect.ValueOf(after).Elem()
	for i := range a.NumField() {
		if reflect.DeepEqual(b.Field(i).Interface(), a.Field(i).Interface()) {
			continue
		}
		name, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("firestore"), ",")
		updates = append(updates, firestore.Update{Path: name, Value: a.Field(i).Interface()})
	}
	return updates
}

// CountPrediction records that the model ran for the document.
func (s *Store) CountPrediction(ctx context.Context, id string) error {
	_, err := s.col.Doc(id).Update(ctx, []firestore.Update{{Path: "predictions", Value: firestore.Increment(1)}})
	return classify("count prediction", err)
}

// Wait returns the document once it is no longer pending, or the last state seen when ctx ends
// (then with a nil error: waiting out the time is not a failure).
//
// A listen stream can end early without ctx ending: the Firestore emulator resets streams
// (RST_STREAM CANCEL) now and then, and Firestore closes long-lived ones. Wait then listens again
// after a short pause; a new listener's first snapshot is the document's current state, so a
// change made between the two streams is not missed.
func (s *Store) Wait(ctx context.Context, id string) (*Doc, error) {
	var last *Doc
	pause := 20 * time.Millisecond
	for {
		d, err := s.listen(ctx, id, &last)
		switch {
		case err == nil:
			return d, nil
		case errors.Is(err, ErrNotFound):
			return nil, err
		case ctx.Err() != nil:
			if last != nil {
				return last, nil
			}
			return nil, classify("wait", err)
		case !errors.Is(err, ErrUnavailable):
			return last, err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return last, nil
			}
			return nil, classify("wait", ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// listen follows the document on one stream until it is done (returned with a nil error) or the
// stream ends; *last keeps the latest state seen.
func (s *Store) listen(ctx context.Context, id string, last **Doc) (*Doc, error) {
	it := s.col.Doc(id).Snapshots(ctx)
	defer it.Stop()
	for {
		snap, err := it.Next()
		if err != nil {
			return nil, classify("wait", err)
		}
		if !snap.Exists() {
			return nil, ErrNotFound
		}
		d, err := decode(snap)
		if err != nil {
			return nil, err
		}
		*last = d
		if d.Status != Pending {
			return d, nil
		}
	}
}

// Unfinished is every pending document (its job not done yet), at most limit of them. The local
// stack uses it to publish their jobs again after the Pub/Sub emulator, which keeps its messages
// in memory only, lost them in a crash; Pub/Sub itself does not lose messages.
func (s *Store) Unfinished(ctx context.Context, limit int) ([]*Doc, error) {
	snaps, err := s.col.Where("status", "==", string(Pending)).Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, classify("list unfinished", err)
	}
	docs := make([]*Doc, 0, len(snaps))
	for _, snap := range snaps {
		d, err := decode(snap)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	return docs, nil
}
