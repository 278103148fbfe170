package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/google/go-cmp/cmp"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
)

func TestMain(m *testing.M) {
	p, err := emulators.StartPubSub(context.Background(), emulators.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "queue tests need the Pub/Sub emulator:", err)
		os.Exit(1)
	}
	os.Setenv("PUBSUB_EMULATOR_HOST", p.Host())
	code := m.Run()
	p.Stop()
	os.Exit(code)
}

func TestPublishReachesSubscribers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const project = "queue-test"
	admin, err := pubsub.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topic := "projects/" + project + "/topics/jobs"
	if _, err := admin.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	sub := "projects/" + project + "/subscriptions/jobs-test"
	if _, err := admin.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic}); err != nil {
		t.Fatal(err)
	}

	q, err := New(ctx, project, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	sent := []Message{{Warmup: true}, {ID: "0123456789abcdef0123456789abcdef", Text: "faces", ModelVersion: "nq-1"}}
	for _, m := range sent {
		if err := q.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// Receive calls back from several goroutines at once.
	var (
		mu  sync.Mutex
		got []Message
	)
	rctx, rcancel := context.WithCancel(ctx)
	err = admin.Subscriber(sub).Receive(rctx, func(_ context.Context, msg *pubsub.Message) {
		msg.Ack()
		m, err := Decode(msg.Data)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		if len(got) == len(sent) {
			rcancel()
		}
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if len(got) == 2 && got[0].Warmup == false {
		got[0], got[1] = got[1], got[0]
	}
	if diff := cmp.Diff(sent, got); diff != "" {
		t.Errorf("received (-sent +got):\n%s", diff)
	}
}

func TestPublishToMissingTopicFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	q, err := New(ctx, "queue-test", "no-such-topic")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Publish(ctx, Message{Warmup: true}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Publish to a missing topic: %v, want ErrUnavailable", err)
	}
}

func TestDecode(t *testing.T) {
	for _, bad := range []string{"", "not json", `{}`, `{"id": "x"}`, `{"id": "x", "text": "faces"}`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
	if m, err := Decode([]byte(`{"warmup": true}`)); err != nil || !m.Warmup {
		t.Errorf("warm-up: %+v, %v", m, err)
	}
}
