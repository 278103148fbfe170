package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/pubsub/v2"

	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
)

// pusher stands in for the cloud's push subscription to Predict: it receives the jobs from the
// stack's (pull) subscription and posts each to Predict as Pub/Sub's push does (the push envelope,
// to PushEndpoint), acknowledging it on a 2xx answer. A message Predict does not take (an error
// status, a reset connection, no answer) is kept and posted again after 0.5 s, doubling up to
// 10 s, and at once when a restarted child is back: a job in flight when Predict crashed is
// done within seconds of its restart, not when Pub/Sub's ack deadline or the stale-job republish
// comes. (The Pub/Sub emulator's own push backs off up to the subscription's maximum, and a
// message pushed while the endpoint is down waits that long.)
type pusher struct {
	s      *Stack
	client *pubsub.Client
	http   *http.Client
	// wake: a child is back, push what waits now; resubscribe: the Pub/Sub emulator is back.
	wake, resubscribe *broadcast

	// slots bounds the messages being delivered at once (pushParallel), across Receives.
	slots chan struct{}

	failed   atomic.Int64 // pushes Predict did not take
	inFlight atomic.Int64 // posts waiting for Predict's answer
	active   atomic.Int64 // messages being delivered

	mu        sync.Mutex
	held      map[string]int // ids of the jobs being delivered, with their count
	lastNote  time.Time      // of the last push failure on the console
	quiet     int            // failures since, not shown
	receiveOK bool           // the last Receive worked (its failures are shown once)
	failingAt time.Time      // when Receive started failing
}

// pushParallel bounds the jobs being pushed at once.
const pushParallel = 16

func (s *Stack) newPusher(ctx context.Context) (*pusher, error) {
	client, err := pubsub.NewClient(ctx, s.ProjectID, pubsubOptions(s.PubSubHost)...)
	if err != nil {
		return nil, fmt.Errorf("pub/sub client: %w", err)
	}
	// Pub/Sub's push waits for the answer up to the ack deadline.
	return &pusher{s: s, client: client, http: &http.Client{Timeout: AckDeadline}, slots: make(chan struct{}, pushParallel), wake: newBroadcast(),
		resubscribe: newBroadcast(), receiveOK: true}, nil
}

// run receives until ctx ends; a Receive that fails (the emulator restarting, its subscription
// not made again yet) is tried again with backoff, or at once on a wake-up.
func (p *pusher) run(ctx context.Context) {
	backoff := emulators.DefaultBackoff()
	for ctx.Err() == nil {
		start := time.Now()
		woken := p.wake.C()
		// A Pub/Sub emulator back after a crash: a new Receive finds it at once, where the
		// client's own reconnection backs off for up to 30 s. Messages being pushed are not
		// interrupted for it (their ack ids died with the emulator, but Predict may finish them).
		rctx, cancel := context.WithCancel(ctx)
		renew := p.resubscribe.C()
		go func() {
			select {
			case <-renew:
				if p.active.Load() == 0 {
					cancel()
				}
			case <-rctx.Done():
			}
		}()
		err := p.receive(rctx, ctx, p.deliver)
		renewed := rctx.Err() != nil && ctx.Err() == nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		if renewed {
			continue
		}
		if err == nil {
			err = errors.New("receiving ended")
		}
		p.receiveFailed(err)
		select {
		case <-ctx.Done():
			return
		case <-woken:
		case <-time.After(backoff.Next(time.Since(start))):
		}
	}
}

// receiveFailed notes why jobs cannot be received; the console hears of it once it has lasted
// 15 s (a restarting Pub/Sub emulator is reported as such).
func (p *pusher) receiveFailed(err error) {
	p.s.note("[push] receiving jobs from %s: %v", p.s.SubscriptionName, err)
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.failingAt.IsZero() {
		p.failingAt = now
	}
	if p.receiveOK && now.Sub(p.failingAt) > 15*time.Second {
		p.receiveOK = false
		p.s.say("[push] cannot receive jobs from the Pub/Sub emulator for %s now: %s", now.Sub(p.failingAt).Round(time.Second), firstLine(err.Error()))
	}
}

func (p *pusher) receiving() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.receiveOK {
		p.s.say("[push] receiving jobs again")
	}
	p.receiveOK, p.failingAt = true, time.Time{}
}

// deliver posts one message to Predict until Predict takes it (or the stack stops).
func (p *pusher) deliver(ctx context.Context, m *pulled) {
	p.active.Add(1)
	defer p.active.Add(-1)
	p.receiving()
	label := describeMessage(m.Data)
	if label.job {
		p.hold(label.id, 1)
		defer p.hold(label.id, -1)
	}
	backoff := emulators.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second}
	for attempt := 1; ; attempt++ {
		// While Predict is known to be down (restarting), wait for it rather than knock.
		if up, opened, _ := p.s.predict.up.state(); !up {
			select {
			case <-ctx.Done():
				m.Nack()
				return
			case <-opened:
			case <-time.After(10 * time.Second):
			}
		}
		woken := p.wake.C()
		start := time.Now()
		reason, noAnswer := p.post(ctx, m)
		took := time.Since(start)
		if reason == "" {
			m.Ack()
			if label.job {
				more := ""
				if attempt > 1 {
					more = fmt.Sprintf(" (push %d)", attempt)
				}
				p.s.say("[job] %s %s %d ms%s", label.id, label.text, took.Milliseconds(), more)
			} else {
				p.s.note("[push] %s taken in %d ms", label.text, took.Milliseconds())
			}
			return
		}
		if ctx.Err() != nil {
			m.Nack()
			return
		}
		p.failed.Add(1)
		delay := backoff.Next(0)
		p.pushFailed(label, reason, noAnswer, delay)
		select {
		case <-ctx.Done():
			m.Nack()
			return
		case <-woken:
		case <-time.After(delay):
		}
	}
}

// hold counts a job in (n = 1) or out (n = -1) of delivery.
func (p *pusher) hold(id string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = map[string]int{}
	}
	if p.held[id] += n; p.held[id] <= 0 {
		delete(p.held, id)
	}
}

// holds says whether a job of this id is being delivered: its message outlived the emulator it
// came from, and Predict gets it without publishing it again.
func (p *pusher) holds(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held[id] > 0
}

// post makes one push; it returns why Predict did not take the message ("" when it did), and
// whether it did not answer at all.
func (p *pusher) post(ctx context.Context, m *pulled) (reason string, noAnswer bool) {
	var env struct {
		Message struct {
			Data        []byte            `json:"data"`
			MessageID   string            `json:"messageId"`
			Attributes  map[string]string `json:"attributes,omitempty"`
			PublishTime time.Time         `json:"publishTime"`
		} `json:"message"`
		Subscription string `json:"subscription"`
		// Pub/Sub sets it with a dead-letter policy only, as the Message does.
		DeliveryAttempt int `json:"deliveryAttempt,omitempty"`
	}
	env.Message.Data, env.Message.MessageID, env.Message.Attributes, env.Message.PublishTime = m.Data, m.ID, m.Attributes, m.PublishTime
	env.Subscription = p.s.SubscriptionName
	env.DeliveryAttempt = m.DeliveryAttempt
	body, _ := json.Marshal(env)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.s.PushEndpoint, bytes.NewReader(body))
	if err != nil {
		return err.Error(), false
	}
	req.Header.Set("Content-Type", "application/json")
	p.inFlight.Add(1)
	resp, err := p.http.Do(req)
	p.inFlight.Add(-1)
	if err != nil {
		return err.Error(), true
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	// What Pub/Sub takes as an acknowledgement.
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusProcessing {
		return "", false
	}
	reason = "status " + resp.Status
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(msg, &e) == nil && e.Error.Message != "" {
		reason += ": " + e.Error.Message
	} else if t := strings.TrimSpace(string(msg)); t != "" {
		reason += ": " + firstLine(t)
	}
	return reason, false
}

// pushFailed reports a failed push: to localstack.log always, to the console at most every 10 s,
// and not while Predict is known to be down (its restart is reported instead; a push that got no
// answer gives the supervisor a moment to notice a crash).
func (p *pusher) pushFailed(l messageLabel, reason string, noAnswer bool, delay time.Duration) {
	line := fmt.Sprintf("[push] Predict did not take %s: %s; pushing it again in %s", l, reason, seconds(delay))
	p.s.note("%s", line)
	if noAnswer {
		time.Sleep(min(delay, 300*time.Millisecond))
	}
	if up, _, _ := p.s.predict.up.state(); !up {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.lastNote) >= 10*time.Second {
		if p.quiet > 0 {
			line += fmt.Sprintf(" (and %d more failed pushes since the last report)", p.quiet)
		}
		p.lastNote, p.quiet = now, 0
		p.s.out.Line(line)
		return
	}
	p.quiet++
}

// messageLabel names a message in log lines: a job by its id and the start of its query.
type messageLabel struct {
	job      bool
	id, text string
}

func (l messageLabel) String() string {
	if l.job {
		return "job " + l.id + " " + l.text
	}
	return l.text
}

// excerptRunes bounds the query a job line quotes.
const excerptRunes = 40

func describeMessage(data []byte) messageLabel {
	msg, err := queue.Decode(data)
	switch {
	case err != nil:
		return messageLabel{text: fmt.Sprintf("a message that is not a job (%d bytes)", len(data))}
	case msg.Warmup:
		return messageLabel{text: "the warm-up message"}
	}
	text := msg.Text
	if utf8.RuneCountInString(text) > excerptRunes {
		text = string([]rune(text)[:excerptRunes]) + "…"
	}
	return messageLabel{job: true, id: msg.ID, text: fmt.Sprintf("%q", text)}
}

// broadcast wakes every waiter at once: C is closed by the next Notify.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

func (b *broadcast) C() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) Notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}
