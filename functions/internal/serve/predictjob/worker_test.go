package predictjob

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/text2brain/text2brain/functions/internal/model"
)

// pubsubEvent is a CloudEvent as the functions framework makes it from a Pub/Sub push.
func pubsubEvent(t *testing.T, data []byte) event.Event {
	t.Helper()
	e := event.New()
	e.SetID("1")
	e.SetSource("//pubsub.googleapis.com/projects/p/topics/t")
	e.SetType("google.cloud.pubsub.topic.v1.messagePublished")
	body := fmt.Sprintf(`{"message":{"data":%q,"messageId":"m1"},"subscription":"projects/p/subscriptions/s"}`,
		base64.StdEncoding.EncodeToString(data))
	if err := e.SetData(event.ApplicationJSON, []byte(body)); err != nil {
		t.Fatal(err)
	}
	return e
}

// Messages that can never succeed are acked (nil) without touching the store: redelivering them
// would only loop. A warm-up whose model load fails is acked too: the next job retries the load.
func TestMessagesThatAreDropped(t *testing.T) {
	loads := 0
	w := New(nil, nil, "results", func(context.Context) (*model.Model, error) {
		loads++
		return nil, errors.New("bucket did not answer")
	})
	for name, data := range map[string]string{
		"not JSON":       "hello",
		"neither":        `{}`,
		"job lacks text": `{"id":"0123456789abcdef0123456789abcdef","model_version":"nq-1"}`,
		"invalid id":     `{"id":"../../etc","text":"faces","model_version":"nq-1"}`,
		"warm-up":        `{"warmup":true}`,
	} {
		if err := w.HandleEvent(context.Background(), pubsubEvent(t, []byte(data))); err != nil {
			t.Errorf("%s: %v, want the message acked", name, err)
		}
	}
	if loads != 1 {
		t.Errorf("%d model loads, want 1 (the warm-up)", loads)
	}
	bad := event.New()
	bad.SetID("2")
	bad.SetSource("x")
	bad.SetType("y")
	bad.SetData(event.ApplicationJSON, []byte(`not an envelope`))
	if err := w.HandleEvent(context.Background(), bad); err != nil {
		t.Errorf("an event that is not a Pub/Sub message: %v, want it acked", err)
	}
}
