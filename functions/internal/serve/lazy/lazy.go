// Package lazy holds values made on first use and kept for the life of a function instance: the
// Query function's server and the Predict function's model.
package lazy

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Value is made on first use. Unlike sync.Once, a failed attempt is not remembered: a later caller
// tries again, so one bad start (a bucket that did not answer) does not poison the instance.
// Callers that arrive while an attempt is in progress share its outcome, success or error, rather
// than queueing for attempts of their own; each waits only as long as its context allows.
type Value[T any] struct {
	make    func(context.Context) (T, error)
	timeout time.Duration
	group   singleflight.Group

	mu   sync.Mutex
	done bool
	v    T
}

// New wraps a constructor. Each attempt runs detached from the caller's context (a cancelled
// request must not abort a load other callers wait for) and is bounded by timeout.
func New[T any](make func(context.Context) (T, error), timeout time.Duration) *Value[T] {
	return &Value[T]{make: make, timeout: timeout}
}

// Get returns the value, making it if no attempt has succeeded yet.
func (l *Value[T]) Get(ctx context.Context) (T, error) {
	if v, ok := l.loaded(); ok {
		return v, nil
	}
	ch := l.group.DoChan("", func() (any, error) {
		if v, ok := l.loaded(); ok {
			return v, nil
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.timeout)
		defer cancel()
		v, err := l.make(actx)
		if err != nil {
			return v, err
		}
		l.mu.Lock()
		l.v, l.done = v, true
		l.mu.Unlock()
		return v, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			var zero T
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (l *Value[T]) loaded() (T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.v, l.done
}
