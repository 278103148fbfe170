package jobs_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
)

var _ jobs.Publisher = (*queue.Queue)(nil)

const project, topic = "jobs-test", "jobs"

// newPubSub starts an in-process Pub/Sub server with the jobs topic, and the real queue adapter on
// it.
func newPubSub(t *testing.T, opts ...pstest.ServerReactorOption) (*pstest.Server, *queue.Queue) {
	t.Helper()
	ctx := context.Background()
	srv := pstest.NewServer(opts...)
	t.Cleanup(func() { srv.Close() })
	conn := []option.ClientOption{option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
	admin, err := pubsub.NewClient(ctx, project, conn...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/" + topic}); err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(ctx, project, topic, conn...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return srv, q
}

// published decodes what the server received.
func published(t *testing.T, srv *pstest.Server) []queue.Message {
	t.Helper()
	var out []queue.Message
	for _, m := range srv.Messages() {
		msg, err := queue.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msg)
	}
	return out
}

// switchable fails every publish with code while it is on.
type switchable struct {
	code codes.Code
	on   atomic.Bool
}

func newSwitchable(code codes.Code) (*switchable, pstest.ServerReactorOption) {
	s := &switchable{code: code}
	s.on.Store(true)
	return s, pstest.ServerReactorOption{FuncName: "Publish", Reactor: s}
}

func (s *switchable) React(any) (bool, any, error) {
	if s.on.Load() {
		return true, nil, status.Error(s.code, "injected")
	}
	return false, nil, nil
}

// Simultaneous first queries send one job through Pub/Sub, in the message format Predict decodes.
func TestJobsReachPubSub(t *testing.T) {
	srv, q := newPubSub(t)
	f := newFixture(t)
	f.lc = jobs.New(f.st, q, jobs.Options{StaleAfter: staleAfter, Now: func() time.Time { return f.now }})
	if n := concurrently(10, func() bool { _, err := f.lc.Ensure(context.Background(), spec); return err == nil }); n != 10 {
		t.Fatalf("%d of 10 queries succeeded", n)
	}
	if diff := cmp.Diff([]queue.Message{job}, published(t, srv)); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
}

// Pub/Sub's errors reach the query as the queue's, in bounded time, and leave the document
// pending; once Pub/Sub takes messages again the next caller publishes the job.
func TestPubSubErrors(t *testing.T) {
	// The client keeps retrying Unavailable after the query gave up, until the queue's own
	// timeout; the fault is switched off at the end so that the test need not wait for that.
	unavailable, unavailableOpt := newSwitchable(codes.Unavailable)
	testCases := []struct {
		name string
		opt  pstest.ServerReactorOption
		// timeout bounds the query: the client retries some errors until then.
		timeout time.Duration
		after   func()
	}{
		{name: "permission denied", opt: pstest.WithErrorInjection("Publish", codes.PermissionDenied, "injected"), timeout: 5 * time.Second},
		{name: "topic gone", opt: pstest.WithErrorInjection("Publish", codes.NotFound, "injected"), timeout: 5 * time.Second},
		{name: "unavailable until the deadline", opt: unavailableOpt, timeout: 500 * time.Millisecond,
			after: func() { unavailable.on.Store(false) }},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.after != nil {
				defer tc.after()
			}
			srv, q := newPubSub(t, tc.opt)
			f := newFixture(t)
			f.lc = jobs.New(f.st, q, jobs.Options{StaleAfter: staleAfter, Now: func() time.Time { return f.now }})
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			start := time.Now()
			_, err := f.lc.Ensure(ctx, spec)
			if !errors.Is(err, queue.ErrUnavailable) {
				t.Fatalf("Ensure: %v, want queue.ErrUnavailable", err)
			}
			if took := time.Since(start); took > tc.timeout+time.Second {
				t.Errorf("the failure took %s", took)
			}
			if d := f.doc(t); jobs.StateOf(d) != jobs.StatePending {
				t.Errorf("document %s after the failed publish, want pending", jobs.StateOf(d))
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages on the server", n)
			}
		})
	}

	t.Run("then back", func(t *testing.T) {
		fault, opt := newSwitchable(codes.PermissionDenied)
		srv, q := newPubSub(t, opt)
		f := newFixture(t)
		f.lc = jobs.New(f.st, q, jobs.Options{StaleAfter: staleAfter, Now: func() time.Time { return f.now }})
		ctx := context.Background()
		if _, err := f.lc.Ensure(ctx, spec); !errors.Is(err, queue.ErrUnavailable) {
			t.Fatalf("Ensure with publishing refused: %v", err)
		}
		fault.on.Store(false)
		if n := concurrently(5, func() bool { _, err := f.lc.Poll(ctx, spec.ID); return err == nil }); n != 5 {
			t.Fatalf("%d of 5 polls succeeded", n)
		}
		if diff := cmp.Diff([]queue.Message{job}, published(t, srv)); diff != "" {
			t.Errorf("published once Pub/Sub is back (-want +got):\n%s", diff)
		}
		if d := f.doc(t); jobs.StateOf(d) != jobs.StatePublished || d.Republished {
			t.Errorf("document %+v, want published once", d)
		}
	})
}
