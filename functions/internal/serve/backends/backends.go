// Package backends opens the Google clients a function uses, one way for both functions: with a
// context that outlives the attempt that opens them (they serve the instance's requests), and
// closing what was opened when a later client fails.
package backends

import (
	"context"
	"errors"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/cloud/store"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
)

// Set is the clients of one instance. Queue is nil unless asked for.
type Set struct {
	Blobs *blobs.Store
	Store *store.Store
	Queue *queue.Queue
}

// Open makes the Cloud Storage and Firestore clients, and the Pub/Sub publisher with withQueue.
// The clients honour the emulators' environment variables.
func Open(ctx context.Context, cfg *config.Config, withQueue bool) (_ *Set, err error) {
	ctx = context.WithoutCancel(ctx)
	s := &Set{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Blobs, err = blobs.New(ctx); err != nil {
		return nil, err
	}
	if s.Store, err = store.New(ctx, cfg.Project, cfg.Collection); err != nil {
		return nil, err
	}
	if withQueue {
		if s.Queue, err = queue.New(ctx, cfg.Project, cfg.Topic); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close closes every client that was opened.
func (s *Set) Close() error {
	var errs []error
	if s.Queue != nil {
		errs = append(errs, s.Queue.Close())
	}
	if s.Store != nil {
		errs = append(errs, s.Store.Close())
	}
	if s.Blobs != nil {
		errs = append(errs, s.Blobs.Close())
	}
	return errors.Join(errs...)
}
