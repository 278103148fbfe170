package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLazyRetriesAfterFailure(t *testing.T) {
	var calls atomic.Int32
	l := NewLazy(func(context.Context) (int, error) {
		if calls.Add(1) == 1 {
			return 0, errors.New("bucket did not answer")
		}
		return 42, nil
	})
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

func TestLazySharesOneLoad(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	l := NewLazy(func(context.Context) (int, error) {
		calls.Add(1)
		<-release
		return 7, nil
	})
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := l.Get(context.Background()); err != nil || v != 7 {
				t.Errorf("Get = %v, %v", v, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d loads for 10 concurrent callers, want 1", n)
	}
}

func TestLazyWaiterGivesUp(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	l := NewLazy(func(context.Context) (int, error) { <-release; return 1, nil })
	go l.Get(context.Background())
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter with a deadline: %v", err)
	}
}
