package jobstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
)

// The fake is only as good as its likeness to Firestore: these are the semantics the lifecycle's
// tests rely on.
func TestStore(t *testing.T) {
	ctx := context.Background()
	s := NewStore()
	if created, err := s.CreatePending(ctx, &jobs.Doc{ID: "a", Status: jobs.Done}); !created || err != nil {
		t.Fatalf("CreatePending = %v, %v", created, err)
	}
	if created, _ := s.CreatePending(ctx, &jobs.Doc{ID: "a"}); created {
		t.Error("a second CreatePending of one id won")
	}
	if d, _ := s.Get(ctx, "a"); d.Status != jobs.Pending {
		t.Errorf("created %+v, want pending whatever it was given", d)
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Get of nothing: %v", err)
	}
	if err := s.Transact(ctx, "b", func(*jobs.Doc) *jobs.Doc { t.Error("decided on nothing"); return nil }); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Transact on nothing: %v", err)
	}

	t.Run("a transaction decides again when its document changed", func(t *testing.T) {
		var seen []int64
		err := s.Transact(ctx, "a", func(d *jobs.Doc) *jobs.Doc {
			seen = append(seen, d.Deliveries)
			if len(seen) == 1 {
				s.CountPrediction(ctx, "a") // another writer, between the read and the commit
			}
			next := *d
			next.Deliveries++
			return &next
		})
		if err != nil || len(seen) != 2 || s.Retries() != 1 {
			t.Fatalf("Transact: %v after decisions on %v, %d retries; want two decisions", err, seen, s.Retries())
		}
		if d := s.Doc("a"); d.Deliveries != 1 || d.Predictions != 1 {
			t.Errorf("document %+v, want both writes", d)
		}
	})

	t.Run("nil writes nothing", func(t *testing.T) {
		before := s.Doc("a")
		if err := s.Transact(ctx, "a", func(d *jobs.Doc) *jobs.Doc { d.Error = "scribbled"; return nil }); err != nil {
			t.Fatal(err)
		}
		if after := s.Doc("a"); *after != *before {
			t.Errorf("document changed to %+v", after)
		}
	})

	t.Run("Wait wakes on the result and returns the last state at its deadline", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if d, err := s.Wait(wctx, "a"); err != nil || d.Status != jobs.Pending {
			t.Fatalf("Wait past its time = %+v, %v", d, err)
		}
		go func() {
			time.Sleep(20 * time.Millisecond)
			d := s.Doc("a")
			d.Status = jobs.Done
			s.Put(d)
		}()
		wctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if d, err := s.Wait(wctx, "a"); err != nil || d.Status != jobs.Done {
			t.Errorf("Wait = %+v, %v", d, err)
		}
	})

	t.Run("injected errors", func(t *testing.T) {
		boom := errors.New("boom")
		s.Inject(OpGet, boom)
		if _, err := s.Get(ctx, "a"); !errors.Is(err, boom) {
			t.Errorf("Get: %v", err)
		}
		s.Inject(OpGet, nil)
		if _, err := s.Get(ctx, "a"); err != nil {
			t.Errorf("Get after the fault cleared: %v", err)
		}
		if n := s.Calls(OpGet); n < 2 {
			t.Errorf("%d calls of Get counted", n)
		}
	})
}
