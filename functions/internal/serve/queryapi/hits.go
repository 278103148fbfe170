package queryapi

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/text2brain/text2brain/functions/internal/cloud/store"
)

// Hits are counted in memory, per id, and written to Firestore in batches (Store.AddHits) every
// T2B_HIT_FLUSH and when the instance stops (Server.Close): one commit per flush instead of a
// write and an aggregation query per answer. The count an answer shows is the total last read
// from Firestore for its id (when its entry entered the cache, and again after each flush that
// wrote its hits) plus this instance's hits not written yet: it lags the other instances' hits by
// up to the flush interval, and may be off by one flush's hits for the moment a flush takes.
//
// A flush that fails keeps its counts for the next one. What is kept is bounded (maxHitIDs ids):
// past it, the hits of ids not counted yet are dropped, and each flush logs how many were.
//
// Where CPU is allocated only while requests are answered (Cloud Run's default), a flush that
// falls due between requests runs at the next request; Cloud Run gives CPU to the SIGTERM that
// precedes an instance's end, when Close writes the rest.

// maxHitIDs bounds the ids whose hits wait for a flush: about 100 bytes each, 2 MB in all. An
// instance sees that many distinct maps in one flush interval only while Firestore is down.
const maxHitIDs = 20_000

// Default flush interval, for a configuration that sets none (tests).
const defaultHitFlush = 10 * time.Second

// hitCounter holds the hits not written yet.
type hitCounter struct {
	mu sync.Mutex
	// pending are the hits counted since the last flush took them; inflight those a flush is
	// writing, which go back to pending if it fails.
	pending, inflight map[string]int64
	max               int
	// dropped counts the hits refused since the last warning, because max ids were waiting.
	dropped int64
}

func newHitCounter(max int) *hitCounter {
	return &hitCounter{pending: map[string]int64{}, inflight: map[string]int64{}, max: max}
}

// add counts a hit of id, unless max ids wait already and id is not one of them: then the hit
// is dropped, said at once in a warning and counted for the next flush's.
func (c *hitCounter) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pending[id]; !ok {
		if _, ok := c.inflight[id]; !ok && len(c.pending)+len(c.inflight) >= c.max {
			if c.dropped == 0 {
				slog.Warn("hit counter full: hits of maps not counted yet are dropped until a flush succeeds", "ids", c.max)
			}
			c.dropped++
			return
		}
	}
	c.pending[id]++
}

// take moves the pending hits to inflight for a flush, and returns them.
func (c *hitCounter) take() (batch map[string]int64, dropped int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	batch = c.pending
	for id, n := range batch {
		c.inflight[id] += n
	}
	c.pending = map[string]int64{}
	dropped, c.dropped = c.dropped, 0
	return batch, dropped
}

// giveBack returns the hits of a flush that failed to pending.
func (c *hitCounter) giveBack(batch map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, n := range batch {
		c.pending[id] += n
		c.forget(id, n)
	}
}

// written forgets the hits a flush wrote, and adds them to the totals of the cached entries at
// once, so that no answer shows them twice or not at all while the totals are read again.
func (c *hitCounter) written(batch map[string]int64, cache *resultCache) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, n := range batch {
		c.forget(id, n)
		if e := cache.peek(id); e != nil {
			if b := e.base.Load(); b != noBase {
				e.base.Store(b + n)
			}
		}
	}
}

// forget takes n of id's hits off inflight; the caller holds c.mu.
func (c *hitCounter) forget(id string, n int64) {
	if c.inflight[id] -= n; c.inflight[id] <= 0 {
		delete(c.inflight, id)
	}
}

// count is the hits of id not written yet, plus base when base is known: the count to show.
func (c *hitCounter) count(id string, e *cachedDoc) (local, base int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	base = noBase
	if e != nil {
		base = e.base.Load()
	}
	return c.pending[id] + c.inflight[id], base
}

// waiting is how many ids and hits wait for a flush.
func (c *hitCounter) waiting() (ids int, hits int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range []map[string]int64{c.pending, c.inflight} {
		for id, n := range m {
			seen[id] = true
			hits += n
		}
	}
	return len(seen), hits
}

// hitsFor counts a hit of id when add is set, and returns the count its answer shows: the stored
// total (e's, read once per entry; read each time without an entry) plus this instance's hits not
// written yet. Nil when the total could not be read: a ready result is never refused for its
// counter.
func (s *Server) hitsFor(ctx context.Context, id string, e *cachedDoc, add bool) *int64 {
	if add {
		s.hits.add(id)
	}
	local, base := s.hits.count(id, e)
	if base == noBase {
		var ok bool
		if base, ok = s.readBase(ctx, id, e); !ok {
			return nil
		}
		local, _ = s.hits.count(id, nil)
	}
	n := base + local
	return &n
}

// readBase reads id's stored total, and keeps it in e. With e, a failed read is not tried again
// before a flush interval has passed.
func (s *Server) readBase(ctx context.Context, id string, e *cachedDoc) (int64, bool) {
	if e != nil {
		if tried := e.baseTried.Load(); tried != 0 && s.now().Sub(time.Unix(0, tried)) < s.hitFlush {
			return 0, false
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.BackendTimeout)
	defer cancel()
	n, err := s.store.Hits(ctx, id)
	if err != nil {
		slog.WarnContext(ctx, "reading a hit count", "id", id, "err", err)
		if e != nil {
			e.baseTried.Store(s.now().UnixNano())
		}
		return 0, false
	}
	if e == nil {
		return n, true
	}
	// A flush may have stored a fresher total meanwhile: that one stands.
	e.base.CompareAndSwap(noBase, n)
	return e.base.Load(), true
}

// flushHits writes the hits counted so far, in commits of at most store.MaxHitIDs ids; the ids of
// a commit that fails, and of those after it, are kept for the next flush. With refresh, the
// totals of the cached entries written are read again afterwards. It returns the first error.
func (s *Server) flushHits(ctx context.Context, refresh bool) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	batch, dropped := s.hits.take()
	if dropped > 0 {
		slog.WarnContext(ctx, "hits dropped: too many maps waited for a flush", "hits", dropped, "ids", maxHitIDs)
	}
	if len(batch) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(batch))
	var written []string
	var failure error
	for chunk := range slices.Chunk(ids, store.MaxHitIDs) {
		part := make(map[string]int64, len(chunk))
		for _, id := range chunk {
			part[id] = batch[id]
		}
		if failure == nil {
			cctx, cancel := context.WithTimeout(ctx, s.cfg.BackendTimeout)
			failure = s.store.AddHits(cctx, part)
			cancel()
			if failure == nil {
				s.hits.written(part, s.cache)
				written = append(written, chunk...)
				continue
			}
		}
		s.hits.giveBack(part)
	}
	if failure != nil {
		n, hits := s.hits.waiting()
		slog.WarnContext(ctx, "writing hits failed; they are kept for the next flush", "ids", n, "hits", hits, "err", failure)
	}
	if refresh {
		s.refreshBases(written)
	}
	return failure
}

// refreshBases reads again the stored totals of the cached entries of ids, a few at a time;
// Close cuts it short.
func (s *Server) refreshBases(ids []string) {
	ctx := s.stopped
	var g errgroup.Group
	g.SetLimit(4)
	for _, id := range ids {
		e := s.cache.peek(id)
		if e == nil {
			continue
		}
		g.Go(func() error {
			rctx, cancel := context.WithTimeout(ctx, s.cfg.BackendTimeout)
			defer cancel()
			if n, err := s.store.Hits(rctx, id); err == nil {
				e.base.Store(n)
			}
			return nil
		})
	}
	_ = g.Wait()
}

// flushLoop flushes every hitFlush until Close.
func (s *Server) flushLoop() {
	defer close(s.loopDone)
	t := time.NewTicker(s.hitFlush)
	defer t.Stop()
	for {
		select {
		case <-s.stopped.Done():
			return
		case <-t.C:
			// Not cut short by Close: a commit cut short may still be written, and then sent
			// again by Close's own flush.
			_ = s.flushHits(context.Background(), true)
		}
	}
}

// Close writes the hits not written yet, within ctx, and stops the periodic flushes; the
// instance calls it when it is told to stop (SIGTERM). Hits counted after it (by requests still
// being answered) are written by the next Close. A flush in progress finishes first (its commit
// is bounded by T2B_BACKEND_TIMEOUT; the totals it would read again afterwards are not). It
// returns the flush's error, saying how many hits are not written: they stay counted, for a next
// Close, but go with the instance if it stops.
func (s *Server) Close(ctx context.Context) error {
	s.stop()
	err := s.flushHits(ctx, false)
	select {
	case <-s.loopDone:
	case <-ctx.Done():
	}
	if err != nil {
		ids, hits := s.hits.waiting()
		return fmt.Errorf("queryapi: %d hits of %d maps not written: %w", hits, ids, err)
	}
	return nil
}
