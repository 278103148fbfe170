package localstack

import (
	"context"
	"errors"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// pulled is a message received by receive: what a push carries, and its acknowledgement.
type pulled struct {
	ID, ackID       string
	Data            []byte
	Attributes      map[string]string
	PublishTime     time.Time
	DeliveryAttempt int
	ack             func(ackID string, ok bool)
}

// Ack acknowledges the message; Nack makes it available again at once.
func (m *pulled) Ack()  { m.ack(m.ackID, true) }
func (m *pulled) Nack() { m.ack(m.ackID, false) }

// pullers is how many Pull requests wait on the subscription at once: one returns as soon as a
// message is published, and the other is already waiting while the first one's messages are
// handed out.
const pullers = 2

// receive pulls messages and runs deliver on each, at most pushParallel at once, until ctx ends
// (nil) or a Pull fails (its error). It uses unary Pull rather than the client's streaming pull:
// the Pub/Sub emulator hands a published message to a waiting Pull in a few milliseconds, and to
// a streaming pull only at its next 50 ms tick (measured here), which was most of a new map's
// time on the local stack. The acknowledgement deadline of a message being delivered is extended
// until it is acked, as the client's own leasing does.
//
// Deliveries run under deliveries (the stack's life), not ctx: a Pull that fails because the
// emulator went away does not interrupt the messages being pushed (their ack ids died with it,
// but Predict may finish them, and the stack knows not to publish them again while they are held).
func (p *pusher) receive(ctx, deliveries context.Context, deliver func(context.Context, *pulled)) error {
	sub := p.s.SubscriptionName
	admin := p.client.SubscriptionAdminClient
	slots := p.slots
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	ack := func(ackID string, ok bool) {
		actx, acancel := context.WithTimeout(context.WithoutCancel(deliveries), 10*time.Second)
		defer acancel()
		var err error
		if ok {
			err = admin.Acknowledge(actx, &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: []string{ackID}})
		} else {
			err = admin.ModifyAckDeadline(actx, &pubsubpb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: []string{ackID}})
		}
		if err != nil {
			p.s.note("[push] acknowledging a message: %v", err)
		}
	}
	for range pullers {
		wg.Go(func() {
			for ctx.Err() == nil {
				// Room for at least one more message, then ask for as many as there is room for.
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				room := 1
			fill:
				for room < pushParallel/pullers {
					select {
					case slots <- struct{}{}:
						room++
					default:
						break fill
					}
				}
				resp, err := admin.Pull(ctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: int32(room)})
				var got []*pubsubpb.ReceivedMessage
				if err == nil {
					got = resp.GetReceivedMessages()
				}
				for range room - len(got) {
					<-slots
				}
				if err != nil {
					if ctx.Err() == nil {
						cancel(err)
					}
					return
				}
				for _, rm := range got {
					m := rm.GetMessage()
					msg := &pulled{ID: m.GetMessageId(), ackID: rm.GetAckId(), Data: m.GetData(), Attributes: m.GetAttributes(),
						PublishTime: m.GetPublishTime().AsTime(), DeliveryAttempt: int(rm.GetDeliveryAttempt()), ack: ack}
					go func() {
						defer func() { <-slots }()
						stop := p.extend(deliveries, msg.ackID)
						defer stop()
						deliver(deliveries, msg)
					}()
				}
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// extend keeps a message's acknowledgement deadline ahead of now while it is delivered, until
// stop is called.
func (p *pusher) extend(ctx context.Context, ackID string) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(AckDeadline / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				_ = p.client.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{
					Subscription: p.s.SubscriptionName, AckIds: []string{ackID}, AckDeadlineSeconds: int32(AckDeadline / time.Second)})
			}
		}
	}()
	return func() { close(done) }
}
