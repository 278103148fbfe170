// Package queue publishes prediction jobs and warm-up messages to Pub/Sub. Pub/Sub types stay in
// this package.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
)

// Message is the body of every message on the jobs topic: a warm-up ping, a query's job (the
// map of a text) or a decoding's job (the terms and studies of an uploaded map).
type Message struct {
	Warmup bool   `json:"warmup,omitempty"`
	ID     string `json:"id,omitempty"`
	// Kind is empty for a query's job and KindDecoding for a decoding's.
	Kind         string `json:"kind,omitempty"`
	Text         string `json:"text,omitempty"`
	ModelVersion string `json:"model_version,omitempty"`
	// Upload is a decoding's uploaded file: the SHA-256 of its bytes, in hex, which names it in the
	// results bucket.
	Upload string `json:"upload,omitempty"`
}

// KindDecoding marks a decoding's job.
const KindDecoding = "decoding"

// Decode parses a message body.
func Decode(data []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("message is not JSON: %w", err)
	}
	switch {
	case m.Warmup:
	case m.Kind == KindDecoding:
		if m.ID == "" || m.Upload == "" || m.ModelVersion == "" {
			return m, errors.New("a decoding's job needs id, upload and model_version")
		}
	case m.Kind != "":
		return m, fmt.Errorf("a job of unknown kind %q", m.Kind)
	case m.ID == "" || m.Text == "" || m.ModelVersion == "":
		return m, errors.New("message is neither a warm-up nor a job with id, text and model_version")
	}
	return m, nil
}

// ErrUnavailable wraps failures to publish.
var ErrUnavailable = errors.New("the job queue is unavailable")

// Queue publishes to one topic.
type Queue struct {
	client *pubsub.Client
	pub    *pubsub.Publisher
}

// New opens the topic. The client honours PUBSUB_EMULATOR_HOST; opts point it elsewhere (tests use
// an in-process pstest server).
func New(ctx context.Context, projectID, topic string, opts ...option.ClientOption) (*Queue, error) {
	client, err := pubsub.NewClient(ctx, projectID, opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub.NewClient: %w", err)
	}
	pub := client.Publisher(topic)
	// A job is one message that a person is waiting for: send it at once, and give up in bounded
	// time rather than hold the request.
	pub.PublishSettings.CountThreshold = 1
	pub.PublishSettings.DelayThreshold = time.Millisecond
	pub.PublishSettings.Timeout = 10 * time.Second
	return &Queue{client: client, pub: pub}, nil
}

// Publish sends a message and waits until Pub/Sub has it.
func (q *Queue) Publish(ctx context.Context, m Message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := q.pub.Publish(ctx, &pubsub.Message{Data: data}).Get(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Close flushes and releases the client.
func (q *Queue) Close() error {
	q.pub.Stop()
	return q.client.Close()
}
