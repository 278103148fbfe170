package predictjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
)

// Limits of a push request. A job is a few kilobytes (a query is at most 2,000 characters); the
// body is read within a deadline, so a client sending a byte a second cannot hold an instance.
const (
	MaxPushBytes    = 64 << 10
	pushReadTimeout = 30 * time.Second
	// excerptBytes bounds what a log line quotes of a refused body.
	excerptBytes = 200
)

// PushEnvelope is the body of a Pub/Sub push request.
type PushEnvelope struct {
	Message struct {
		Data       []byte            `json:"data"`
		MessageID  string            `json:"messageId"`
		Attributes map[string]string `json:"attributes,omitempty"`
	} `json:"message"`
	Subscription string `json:"subscription"`
	// DeliveryAttempt is set by Pub/Sub when the subscription has a dead-letter policy.
	DeliveryAttempt int `json:"deliveryAttempt,omitempty"`
}

// Stats counts what the handler refused since the instance started: forged or malformed jobs
// (acked without touching any document) and requests that were not Pub/Sub pushes at all.
type Stats struct {
	Rejected    atomic.Int64
	BadRequests atomic.Int64
}

// PushHandler is Predict's HTTP entry point: Pub/Sub's push subscription posts each job here. A
// 2xx answer acks the message, any other makes Pub/Sub deliver it again (with backoff, and to the
// dead-letter topic after the subscription's maximum). worker returns the instance's worker.
func PushHandler(worker func(context.Context) (*Worker, error), stats *Stats) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			writeError(rw, http.StatusMethodNotAllowed, "method_not_allowed", "Predict takes Pub/Sub push requests (POST) only.")
			return
		}
		// Not every ResponseWriter supports deadlines (httptest's does not): best effort.
		_ = http.NewResponseController(rw).SetReadDeadline(time.Now().Add(pushReadTimeout))
		body := http.MaxBytesReader(rw, r.Body, MaxPushBytes)
		var env PushEnvelope
		dec := json.NewDecoder(body)
		err := dec.Decode(&env)
		if err == nil && dec.More() {
			err = errors.New("trailing data after the message")
		}
		if err != nil {
			stats.BadRequests.Add(1)
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				slog.WarnContext(r.Context(), "refusing a push request: body too large", "limit_bytes", MaxPushBytes)
				writeError(rw, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("The body is larger than %d kB; a job is a few kB.", MaxPushBytes>>10))
				return
			}
			slog.WarnContext(r.Context(), "refusing a push request that is not a Pub/Sub message", "err", err.Error(), "bad_requests", stats.BadRequests.Load())
			writeError(rw, http.StatusBadRequest, "invalid_push", "The body is not a Pub/Sub push message.")
			return
		}
		ctx := r.Context()
		msg, err := queue.Decode(env.Message.Data)
		if err != nil {
			// Pub/Sub would deliver it for ever: ack it, and say so.
			n := stats.Rejected.Add(1)
			slog.ErrorContext(ctx, "dropping a malformed job", "message", env.Message.MessageID, "data", excerpt(env.Message.Data), "err", err.Error(), "rejected", n)
			rw.WriteHeader(http.StatusNoContent)
			return
		}
		wk, err := worker(ctx)
		if err != nil {
			// Misconfiguration or a backend down: let Pub/Sub redeliver once it is fixed.
			slog.ErrorContext(ctx, "predict is not ready", "err", err)
			writeError(rw, http.StatusServiceUnavailable, "unavailable", "Predict is not ready; the job will be delivered again.")
			return
		}
		err = wk.handleDelivery(ctx, msg, env.DeliveryAttempt)
		var rej *rejection
		switch {
		case errors.As(err, &rej):
			n := stats.Rejected.Add(1)
			slog.ErrorContext(ctx, "dropping a job that is not a valid job of this service", "message", env.Message.MessageID,
				"id", excerpt([]byte(msg.ID)), "reason", rej.reason, "rejected", n)
			rw.WriteHeader(http.StatusNoContent)
		case err != nil:
			slog.ErrorContext(ctx, "job failed; Pub/Sub will deliver it again", "id", msg.ID, "message", env.Message.MessageID, "err", err)
			writeError(rw, http.StatusInternalServerError, "job_failed", "The job failed; it will be delivered again.")
		default:
			rw.WriteHeader(http.StatusNoContent)
		}
	})
}

// excerpt quotes the beginning of untrusted bytes for a log line.
func excerpt(b []byte) string {
	if n := len(b); n > excerptBytes {
		b = b[:excerptBytes]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
		return fmt.Sprintf("%q… (%d bytes)", b, n)
	}
	return fmt.Sprintf("%q", b)
}

func writeError(rw http.ResponseWriter, status int, code, message string) {
	rw.Header().Set("Content-Type", "application/json; charset=utf-8")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(map[string]map[string]string{"error": {"code": code, "message": message}})
}
