package worker

import (
	"context"
	"sync"
)

// Lazy holds a value made on first use and kept for the life of the instance. Unlike sync.Once, a
// failed attempt is not remembered: the next caller tries again, so one bad start (a bucket that
// did not answer) does not poison the instance. Concurrent callers wait for the one attempt in
// progress, or give up when their context ends.
type Lazy[T any] struct {
	make func(context.Context) (T, error)
	sem  chan struct{}
	mu   sync.Mutex
	done bool
	v    T
}

// NewLazy wraps a constructor.
func NewLazy[T any](make func(context.Context) (T, error)) *Lazy[T] {
	return &Lazy[T]{make: make, sem: make1()}
}

func make1() chan struct{} { return make(chan struct{}, 1) }

// Get returns the value, making it if no attempt has succeeded yet.
func (l *Lazy[T]) Get(ctx context.Context) (T, error) {
	if v, ok := l.loaded(); ok {
		return v, nil
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	defer func() { <-l.sem }()
	if v, ok := l.loaded(); ok {
		return v, nil
	}
	v, err := l.make(ctx)
	if err != nil {
		return v, err
	}
	l.mu.Lock()
	l.v, l.done = v, true
	l.mu.Unlock()
	return v, nil
}

func (l *Lazy[T]) loaded() (T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.v, l.done
}
