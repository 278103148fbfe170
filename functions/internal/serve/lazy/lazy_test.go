package lazy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetriesAfterFailure(t *testing.T) {
	var calls atomic.Int32
	l := New(func(context.Context) (int, error) {
		if calls.Add(1) == 1 {
			return 0, errors.New("bucket did not answer")
		}
		return 42, nil
	}, time.Minute)
	if _, err := l.Get(context.Background()); err == nil {
		t.Fatal("first Get: no error")
	}
	for range 3 {
		if v, err := l.Get(context.Background()); err != nil || v != 42 {
			t.Fatalf("Get after a failure = %v, %v; want 42", v, err)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("constructor called %d times, want 2 (one failure, one success)", n)
	}
}

func TestConcurrentCallersShareOneAttempt(t *testing.T) {
	for _, fail := range []bool{false, true} {
		var calls atomic.Int32
		release := make(chan struct{})
		l := New(func(context.Context) (int, error) {
			calls.Add(1)
			<-release
			if fail {
				return 0, errors.New("down")
			}
			return 7, nil
		}, time.Minute)
		var wg sync.WaitGroup
		var errs atomic.Int32
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := l.Get(context.Background()); err != nil {
					errs.Add(1)
				}
			}()
		}
		time.Sleep(50 * time.Millisecond)
		close(release)
		wg.Wait()
		if n := calls.Load(); n != 1 {
			t.Errorf("fail=%v: %d attempts for 10 concurrent callers, want 1", fail, n)
		}
		if want := map[bool]int32{false: 0, true: 10}[fail]; errs.Load() != want {
			t.Errorf("fail=%v: %d callers got an error, want %d", fail, errs.Load(), want)
		}
	}
}

func TestWaiterGivesUpButTheLoadGoesOn(t *testing.T) {
	release := make(chan struct{})
	var finished atomic.Bool
	l := New(func(ctx context.Context) (int, error) {
		<-release
		finished.Store(ctx.Err() == nil)
		return 1, nil
	}, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter with a deadline: %v", err)
	}
	close(release)
	if v, err := l.Get(context.Background()); err != nil || v != 1 || !finished.Load() {
		t.Errorf("after release: %v, %v; load ran with a live context: %v", v, err, finished.Load())
	}
}

func TestAttemptIsBounded(t *testing.T) {
	l := New(func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}, 50*time.Millisecond)
	start := time.Now()
	if _, err := l.Get(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("attempt past its timeout: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("attempt not bounded")
	}
}
