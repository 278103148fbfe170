package predictjob

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkHandle is Predict's own work for one new map, on in-memory backends: the job's checks,
// the prediction, the three files encoded and the document's transitions. On the stack each job
// also makes its round trips to Firestore and the bucket. Run in parallel, as an instance runs its
// concurrent jobs.
func BenchmarkHandle(b *testing.B) {
	m := realModel(b)
	w := newWorker(b, m)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			// A distinct text each time: a finished document would be acked without running.
			job := w.queued(b, m.Version(), fmt.Sprintf("faces %d", n.Add(1)))
			if err := w.Handle(context.Background(), job); err != nil {
				b.Error(err)
			}
		}
	})
}
