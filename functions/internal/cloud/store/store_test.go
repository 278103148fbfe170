package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
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
			if n, err := s.AddHit(ctx, "h"); err != nil || n < 1 {
				t.Error(n, err)
			}
		}()
	}
	wg.Wait()
	if n, err := s.Hits(ctx, "h"); n != 50 || err != nil {
		t.Errorf("hits = %d, %v after 50 concurrent increments", n, err)
	}
}

func TestFirstResultWins(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.CreatePending(ctx, pending("r")); err != nil {
		t.Fatal(err)
	}
	first := &Result{RecognizedTerms: []string{"face"}, Peaks: []Peak{{MNI: []float64{38, -50, -20}, Z: 28.08}}, MapObject: "m1", ComputeMS: 5}
	if wrote, err := s.Complete(ctx, "r", first); err != nil || !wrote {
		t.Fatalf("Complete = %v, %v", wrote, err)
	}
	if wrote, err := s.Complete(ctx, "r", &Result{MapObject: "m2"}); err != nil || wrote {
		t.Errorf("second Complete = %v, %v; want no write", wrote, err)
	}
	if wrote, err := s.Fail(ctx, "r", "late failure"); err != nil || wrote {
		t.Errorf("Fail after Complete = %v, %v; want no write", wrote, err)
	}
	d, err := s.Get(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != Done || d.Result.MapObject != "m1" || d.Result.Peaks[0].Z != 28.08 || d.Error != "" {
		t.Errorf("document %+v, result %+v", d, d.Result)
	}
}

func TestPublicationLifecycle(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	claimAll := func(staleBefore time.Time) map[Publication]int {
		out := map[Publication]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := s.ClaimPublication(ctx, "p", time.Now(), time.Since(staleBefore))
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				out[p]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		return out
	}
	d := pending("p")
	d.PublishedAt = time.Now().Add(-time.Hour)
	if _, err := s.CreatePending(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := claimAll(time.Now().Add(-2 * time.Hour)); got[NothingToDo] != 5 {
		t.Errorf("a job younger than the limit: %v, want nothing to do", got)
	}
	if got := claimAll(time.Now().Add(-time.Minute)); got[Republish] != 1 || got[NothingToDo] != 4 {
		t.Errorf("a stale job: %v, want exactly one republish", got)
	}
	if err := s.Unpublished(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if got := claimAll(time.Now().Add(-time.Hour)); got[Publish] != 1 || got[NothingToDo] != 4 {
		t.Errorf("a job whose publish failed: %v, want exactly one publish", got)
	}
	if got := claimAll(time.Now().Add(time.Minute)); got[Stalled] != 1 {
		t.Errorf("a republished job stale again: %v, want one stalled", got)
	}
	if d, _ := s.Get(ctx, "p"); d.Status != Failed || !d.Retryable || d.Error == "" {
		t.Errorf("stalled document %+v, want failed and retryable", d)
	}
	var restarts atomic.Int32
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := s.Restart(ctx, "p", time.Now()); err != nil {
				t.Error(err)
			} else if ok {
				restarts.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := restarts.Load(); n != 1 {
		t.Errorf("%d restarts, want 1", n)
	}
	if d, _ := s.Get(ctx, "p"); d.Status != Pending || d.Republished || d.Retryable || d.Error != "" {
		t.Errorf("restarted document %+v", d)
	}
	// A failure the text caused is final.
	if _, err := s.Fail(ctx, "p", "no known terms"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Restart(ctx, "p", time.Now()); ok || err != nil {
		t.Errorf("Restart of a final failure = %v, %v", ok, err)
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
		s.Complete(ctx, "w", &Result{MapObject: "m"})
	}()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d, err := s.Wait(wctx, "w")
	if err != nil || d.Status != Done {
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
