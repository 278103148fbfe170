package queryapi

import (
	"context"
	"sync"
	"time"

	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
)

// pendingJobs caps the jobs in flight, as one instance sees them: the jobs it published and has not
// seen finish. It is a counter in memory, so checking it costs nothing on the path of every new
// query. The trade-offs: the cap is per instance (with N instances up to N × max jobs may be
// pending; Cloud Run adds instances under load, so the deployment's query_max_instances bounds the
// total); a job another instance published is not counted; and a job whose end this instance never
// sees (its client stops polling, or polls another instance) counts until it is as old as
// T2B_STALE_AFTER, when the lifecycle itself deems it lost. A Firestore count of pending documents
// (an aggregation query, cached for a few seconds) would be exact across instances, but costs a
// query per cache period and an index, and fails with Firestore; this one cannot fail.
type pendingJobs struct {
	mu  sync.Mutex
	max int
	// ttl is how long a job counts without being seen to finish.
	ttl  time.Duration
	jobs map[string]time.Time // id → when this instance last published it
}

func newPendingJobs(max int, ttl time.Duration) *pendingJobs {
	return &pendingJobs{max: max, ttl: ttl, jobs: map[string]time.Time{}}
}

// published counts a job this instance sent (again).
func (p *pendingJobs) published(id string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jobs[id] = now
}

// finished stops counting a job that this instance saw done or failed.
func (p *pendingJobs) finished(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.jobs, id)
}

// full reports whether a new job would exceed the cap (never, with no cap).
func (p *pendingJobs) full(now time.Time) bool {
	if p.max <= 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.jobs) < p.max {
		return false
	}
	for id, at := range p.jobs {
		if now.Sub(at) > p.ttl {
			delete(p.jobs, id)
		}
	}
	return len(p.jobs) >= p.max
}

// count is how many jobs are counted now.
func (p *pendingJobs) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.jobs)
}

// trackingPublisher counts every job the lifecycle publishes through it.
type trackingPublisher struct {
	jobs.Publisher
	pending *pendingJobs
	now     func() time.Time
}

func (t trackingPublisher) Publish(ctx context.Context, m queue.Message) error {
	err := t.Publisher.Publish(ctx, m)
	if err == nil && !m.Warmup {
		t.pending.published(m.ID, t.now())
	}
	return err
}
