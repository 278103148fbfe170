package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs/jobstest"
)

var firestoreEmu *emulators.Process

// TestMain runs every test against Google's Firestore emulator, the real thing the client talks to.
func TestMain(m *testing.M) {
	ctx := context.Background()
	p, err := emulators.StartFirestore(ctx, emulators.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "store tests need the Firestore emulator:", err)
		os.Exit(1)
	}
	firestoreEmu = p
	os.Setenv("FIRESTORE_EMULATOR_HOST", p.Host())
	code := m.Run()
	p.Stop()
	os.Exit(code)
}

func open(t *testing.T) *Store {
	t.Helper()
	s, err := New(context.Background(), "store-test", "maps-"+fmt.Sprint(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pending(id string) *Doc {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &Doc{ID: id, Query: "Faces", NormalizedQuery: "faces", ModelVersion: "nq-test", CreatedAt: now, PublishedAt: now}
}

func TestCreatePendingHasOneWinner(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	var winners atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created, err := s.CreatePending(ctx, pending("a"))
			if err != nil {
				t.Error(err)
			}
			if created {
				winners.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := winners.Load(); n != 1 {
		t.Errorf("%d of 20 simultaneous creates won, want exactly 1", n)
	}
	d, err := s.Get(ctx, "a")
	if err != nil || d.Status != Pending || d.NormalizedQuery != "faces" {
		t.Errorf("Get = %+v, %v", d, err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a missing document: %v, want ErrNotFound", err)
	}
}

func TestHitsAreNeverLost(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.CreatePending(ctx, pending("h")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.AddHits(ctx, map[string]int64{"h": 1}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, err := s.Hits(ctx, "h"); n != 50 || err != nil {
		t.Errorf("hits = %d, %v after 50 concurrent increments", n, err)
	}
}

// AddHits writes many ids' counts in one commit, on the hit shards: concurrent batches and
// single hits add up, counts of zero write nothing, and a batch as large as MaxHitIDs goes
// through (the emulator takes a commit of that many writes).
func TestAddHitsBatches(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if err := s.AddHits(ctx, nil); err != nil {
		t.Errorf("AddHits of nothing: %v", err)
	}
	if err := s.AddHits(ctx, map[string]int64{"a": 1}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.AddHits(ctx, map[string]int64{"a": 3, "b": 5, "c": 0}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for id, want := range map[string]int64{"a": 31, "b": 50, "c": 0} {
		if n, err := s.Hits(ctx, id); n != want || err != nil {
			t.Errorf("hits of %s = %d, %v; want %d", id, n, err, want)
		}
	}
	if err := s.AddHits(ctx, map[string]int64{"b": 1}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Hits(ctx, "b"); n != 51 || err != nil {
		t.Errorf("hits of b after one more = %d, %v; want 51", n, err)
	}

	many := map[string]int64{}
	for i := range MaxHitIDs {
		many[fmt.Sprintf("m%03d", i)] = int64(i%7 + 1)
	}
	if err := s.AddHits(ctx, many); err != nil {
		t.Fatalf("AddHits of %d ids: %v", len(many), err)
	}
	for _, id := range []string{"m000", "m006", "m499"} {
		if n, err := s.Hits(ctx, id); n != many[id] || err != nil {
			t.Errorf("hits of %s = %d, %v; want %d", id, n, err, many[id])
		}
	}
	many["one-too-many"] = 1
	if err := s.AddHits(ctx, many); err == nil {
		t.Errorf("AddHits of %d ids succeeded, want an error", len(many))
	}
	if n, _ := s.Hits(ctx, "m000"); n != 1 {
		t.Errorf("a refused batch wrote hits: m000 has %d", n)
	}
}

// A batch that fails writes nothing and says the store is unavailable: the caller keeps every
// count for its next batch.
func TestAddHitsFailsWhole(t *testing.T) {
	s := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.AddHits(ctx, map[string]int64{"x": 2, "y": 3})
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("AddHits with a cancelled context: %v, want ErrUnavailable", err)
	}
	for _, id := range []string{"x", "y"} {
		if n, err := s.Hits(context.Background(), id); n != 0 || err != nil {
			t.Errorf("hits of %s after a failed batch = %d, %v; want 0", id, n, err)
		}
	}
}

// lifecycle runs the jobs package on this store, with a queue that keeps what it is sent.
func lifecycle(s *Store, now func() time.Time) (*jobs.Lifecycle, *jobstest.Queue) {
	q := &jobstest.Queue{}
	return jobs.New(s, q, jobs.Options{StaleAfter: time.Minute, Now: now}), q
}

func TestFirstResultWins(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.CreatePending(ctx, pending("r")); err != nil {
		t.Fatal(err)
	}
	lc, _ := lifecycle(s, time.Now)
	first := &jobs.Result{RecognizedTerms: []string{"face"}, Peaks: []jobs.Peak{{MNI: []float64{38, -50, -20}, Z: 28.08}}, MapObject: "m1", ComputeMS: 5}
	if wrote, err := lc.Complete(ctx, "r", first); err != nil || !wrote {
		t.Fatalf("Complete = %v, %v", wrote, err)
	}
	if wrote, err := lc.Complete(ctx, "r", &jobs.Result{MapObject: "m2"}); err != nil || wrote {
		t.Errorf("second Complete = %v, %v; want no write", wrote, err)
	}
	if wrote, err := lc.Fail(ctx, "r", "late failure"); err != nil || wrote {
		t.Errorf("Fail after Complete = %v, %v; want no write", wrote, err)
	}
	d, err := s.Get(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != jobs.Done || d.Result.MapObject != "m1" || d.Result.Peaks[0].Z != 28.08 || d.Error != "" {
		t.Errorf("document %+v, result %+v", d, d.Result)
	}
}

// The lifecycle's one-winner transitions hold on Firestore's transactions: of concurrent callers
// exactly one publishes each job.
func TestPublicationLifecycle(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	var now atomic.Pointer[time.Time]
	setNow := func(t time.Time) { now.Store(&t) }
	setNow(time.Now())
	lc, q := lifecycle(s, func() time.Time { return *now.Load() })
	spec := jobs.Spec{ID: "p", Query: "Faces", NormalizedQuery: "faces", ModelVersion: "nq-test"}
	// each runs call 5 times at once and returns how many jobs they published between them.
	each := func(call func() error) int {
		before := len(q.Messages())
		var wg sync.WaitGroup
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := call(); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		return len(q.Messages()) - before
	}
	poll := func() error { _, err := lc.Poll(ctx, "p"); return err }
	query := func() error { _, err := lc.Ensure(ctx, spec); return err }

	if n := each(query); n != 1 {
		t.Errorf("first queries: %d jobs published, want 1", n)
	}
	if n := each(poll); n != 0 {
		t.Errorf("a job younger than the limit: %d published, want none", n)
	}
	setNow(time.Now().Add(2 * time.Minute))
	if n := each(poll); n != 1 {
		t.Errorf("a stale job: %d published, want exactly one republish", n)
	}
	if d, _ := s.Get(ctx, "p"); !d.Republished {
		t.Errorf("republished document %+v", d)
	}

	setNow(now.Load().Add(2 * time.Minute))
	if n := each(poll); n != 0 {
		t.Errorf("polls of a republished job stale again: %d published, want none", n)
	}
	if d, _ := s.Get(ctx, "p"); d.Status != jobs.Failed || !d.Retryable || d.Error == "" {
		t.Errorf("a republished job stale again: %+v, want failed and retryable", d)
	}
	q.Inject(errors.New("the queue is down"))
	if _, err := lc.Ensure(ctx, spec); err == nil {
		t.Error("a restart with the queue down succeeded")
	}
	if d, _ := s.Get(ctx, "p"); d.Status != Pending || !d.PublishedAt.IsZero() {
		t.Errorf("a restart whose job could not be published: %+v, want pending and unpublished", d)
	}
	q.Inject(nil)
	if n := each(query); n != 1 {
		t.Errorf("queries of a job never published: %d published, want exactly one", n)
	}
	if d, _ := s.Get(ctx, "p"); d.Status != Pending || d.PublishedAt.IsZero() || d.Republished || d.Retryable || d.Error != "" {
		t.Errorf("restarted document %+v", d)
	}
	// A failure the text caused is final.
	if _, err := lc.Fail(ctx, "p", "no known terms"); err != nil {
		t.Fatal(err)
	}
	if n := each(query); n != 0 {
		t.Errorf("queries of a final failure: %d published", n)
	}
}

// Simultaneous deliveries of one job (Pub/Sub delivers at least once) are each counted, in
// transactions that Firestore retries when they collide, and the transitions keep the counter
// written beside them.
func TestConcurrentDeliveriesAreCounted(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.CreatePending(ctx, pending("c")); err != nil {
		t.Fatal(err)
	}
	lc, _ := lifecycle(s, time.Now)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, run, err := lc.Start(ctx, "c"); err != nil || !run {
				t.Error(run, err)
			}
		}()
	}
	wg.Wait()
	if err := s.CountPrediction(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if wrote, err := lc.Complete(ctx, "c", &jobs.Result{MapObject: "m"}); err != nil || !wrote {
		t.Fatalf("Complete = %v, %v", wrote, err)
	}
	if d, run, err := lc.Start(ctx, "c"); err != nil || run || d.Status != jobs.Done {
		t.Errorf("a delivery after the result: %+v, run %v, %v; want it acked", d, run, err)
	}
	if d, err := s.Get(ctx, "c"); err != nil || d.Deliveries != 11 || d.Predictions != 1 || d.Result.MapObject != "m" {
		t.Errorf("document %+v, %v; want 11 deliveries, 1 prediction and the result", d, err)
	}
	if _, _, err := lc.Start(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Start of a missing document: %v, want ErrNotFound", err)
	}
}

// Documents written before the lifecycle moved to the jobs package read the same: the stored
// field names did not change.
func TestDecodesStoredDocuments(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	stored := map[string]any{
		"id": "old", "query": "Faces", "normalized_query": "faces", "model_version": "nq-1", "status": "done",
		"retryable": true, "error": "", "created_at": at, "published_at": at, "republished": true, "completed_at": at.Add(time.Second),
		"deliveries": 3, "predictions": 1,
		"result": map[string]any{
			"recognized_terms": []string{"face"},
			"related_terms":    []map[string]any{{"term": "face", "weight": 1.5}},
			"related_articles": []map[string]any{{"pmid": 42, "title": "T", "authors": "A", "year": 2001, "journal": "J", "doi": "d", "url": "u", "correlation": 0.5}},
			"peaks":            []map[string]any{{"mni": []float64{38, -50, -20}, "z": 28.08}},
			"map_object":       "maps/nq-1/old.nii.gz", "preview_object": "maps/nq-1/old.png", "compute_ms": 12.5,
		},
	}
	if _, err := s.col.Doc("old").Set(ctx, stored); err != nil {
		t.Fatal(err)
	}
	want := &Doc{ID: "old", Query: "Faces", NormalizedQuery: "faces", ModelVersion: "nq-1", Status: jobs.Done, Retryable: true,
		CreatedAt: at, PublishedAt: at, Republished: true, CompletedAt: at.Add(time.Second), Deliveries: 3, Predictions: 1,
		Result: &jobs.Result{RecognizedTerms: []string{"face"}, RelatedTerms: []jobs.Term{{Term: "face", Weight: 1.5}},
			RelatedArticles: []jobs.Article{{PMID: 42, Title: "T", Authors: "A", Year: 2001, Journal: "J", DOI: "d", URL: "u", Correlation: 0.5}},
			Peaks:           []jobs.Peak{{MNI: []float64{38, -50, -20}, Z: 28.08}},
			MapObject:       "maps/nq-1/old.nii.gz", PreviewObject: "maps/nq-1/old.png", ComputeMS: 12.5}}
	got, err := s.Get(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}

func TestChanges(t *testing.T) {
	before := pending("x")
	if u := changes(before, before); len(u) != 0 {
		t.Errorf("no change: %v", u)
	}
	after := *before
	after.Status, after.Error, after.PublishedAt = jobs.Failed, "reason", time.Time{}
	var paths []string
	for _, u := range changes(before, &after) {
		paths = append(paths, u.Path)
	}
	if diff := cmp.Diff([]string{"status", "error", "published_at"}, paths); diff != "" {
		t.Errorf("changed paths (-want +got):\n%s", diff)
	}
	// Every field has its stored name: a change is never written under a Go name.
	typ := reflect.TypeOf(Doc{})
	for i := range typ.NumField() {
		if name, _, _ := strings.Cut(typ.Field(i).Tag.Get("firestore"), ","); name == "" || name == "-" {
			t.Errorf("field %s has no firestore name", typ.Field(i).Name)
		}
	}
}

func TestWaitSeesCompletion(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.CreatePending(ctx, pending("w")); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		lc, _ := lifecycle(s, time.Now)
		lc.Complete(ctx, "w", &jobs.Result{MapObject: "m"})
	}()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d, err := s.Wait(wctx, "w")
	if err != nil || d.Status != jobs.Done {
		t.Fatalf("Wait = %+v, %v", d, err)
	}
	// Waiting out the time on a pending document is not an error.
	if _, err := s.CreatePending(ctx, pending("w2")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if d, err := s.Wait(wctx, "w2"); err != nil || d == nil || d.Status != Pending {
		t.Errorf("Wait past its time = %+v, %v; want the pending document", d, err)
	}
}

// Runs last: stops the emulator and checks that calls fail as ErrUnavailable in bounded time, then
// that the store recovers when the emulator is back.
func TestUnavailableAndRecovery(t *testing.T) {
	s := open(t)
	if err := firestoreEmu.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := s.Get(ctx, "x")
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Get with Firestore down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Get with Firestore down took %s", d)
	}
	if err := firestoreEmu.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePending(context.Background(), pending("back")); err != nil {
		t.Errorf("after restart: %v", err)
	}
}

// Unfinished lists the pending documents and no others, through a client made with NewEmulator
// (no environment variable), which sees what New's client wrote.
func TestUnfinishedThroughNewEmulator(t *testing.T) {
	ctx := context.Background()
	collection := "unfinished-" + fmt.Sprint(time.Now().UnixNano())
	s, err := New(ctx, "store-test", collection)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range []string{"p1", "p2", "d1"} {
		if _, err := s.CreatePending(ctx, pending(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Transact(ctx, "d1", func(d *Doc) *Doc {
		d.Status = jobs.Done
		return d
	}); err != nil {
		t.Fatal(err)
	}
	e, err := NewEmulator(ctx, firestoreEmu.Host(), "store-test", collection)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	docs, err := e.Unfinished(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"p1", "p2"}) {
		t.Errorf("Unfinished = %v, want [p1 p2]", ids)
	}
	if docs, err := e.Unfinished(ctx, 1); err != nil || len(docs) != 1 {
		t.Errorf("Unfinished with limit 1: %d documents, %v", len(docs), err)
	}
}
