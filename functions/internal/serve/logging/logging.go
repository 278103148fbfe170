// Package logging sets up the functions' structured logs: JSON in the shape Cloud Logging reads
// (severity, message, and the request's trace, so that a request's lines are grouped with it in
// the console), readable text on a developer's machine, and one logger per request carried in the
// context.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// FormatEnv chooses the format: "json" or "text". Unset, it is JSON where Cloud Run runs the
// function (K_SERVICE is set) and text elsewhere.
const FormatEnv = "T2B_LOG_FORMAT"

// Cloud Logging's special fields (https://cloud.google.com/logging/docs/structured-logging).
const (
	TraceKey   = "logging.googleapis.com/trace"
	SpanKey    = "logging.googleapis.com/spanId"
	SampledKey = "logging.googleapis.com/trace_sampled"
)

var setup sync.Once

// Setup makes the process's default logger the one New makes for the environment, once; both
// functions call it from init, and they share a process in the deployed binary.
func Setup() {
	setup.Do(func() {
		format := strings.ToLower(os.Getenv(FormatEnv))
		if format == "" && os.Getenv("K_SERVICE") != "" {
			format = "json"
		}
		slog.SetDefault(New(os.Stderr, format == "json"))
		if format != "" && format != "json" && format != "text" {
			slog.Warn("unknown log format; writing text", FormatEnv, os.Getenv(FormatEnv))
		}
	})
}

// New is a logger writing to w: Cloud Logging's JSON when json is set, text otherwise. Either way,
// attributes that With adds to a context are added to every record logged with that context.
func New(w io.Writer, json bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	var h slog.Handler
	if json {
		opts.ReplaceAttr = cloudFields
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(contextHandler{h})
}

// cloudFields renames the record's level and message to Cloud Logging's severity and message.
func cloudFields(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		return slog.String("severity", severity(a.Value.Any().(slog.Level)))
	case slog.MessageKey:
		return slog.Attr{Key: "message", Value: a.Value}
	}
	return a
}

func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

type ctxKey struct{}

// With returns a context whose records carry attrs too: the request-scoped logger.
func With(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(ctxKey{}).([]slog.Attr)
	return context.WithValue(ctx, ctxKey{}, append(append([]slog.Attr(nil), prev...), attrs...))
}

// contextHandler adds the context's attributes to each record.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(ctxKey{}).([]slog.Attr); ok {
		r = r.Clone()
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// Middleware gives each request a context whose records carry its trace (from traceparent, else
// X-Cloud-Trace-Context, which Google's front end sets), as Cloud Logging names it for project.
func Middleware(project string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attrs := TraceAttrs(project, r.Header); len(attrs) > 0 {
			r = r.WithContext(With(r.Context(), attrs...))
		}
		next.ServeHTTP(w, r)
	})
}

var (
	traceparent  = regexp.MustCompile(`^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)
	cloudContext = regexp.MustCompile(`^([0-9a-fA-F]{32})(?:/([0-9]+))?(?:;o=([01]))?$`)
)

// TraceAttrs reads a request's trace from its headers: W3C traceparent, else Google's
// X-Cloud-Trace-Context. None for neither, or a malformed one.
func TraceAttrs(project string, h http.Header) []slog.Attr {
	trace, span, sampled := "", "", false
	if m := traceparent.FindStringSubmatch(strings.TrimSpace(h.Get("traceparent"))); m != nil && m[1] != strings.Repeat("0", 32) {
		flags, _ := strconv.ParseUint(m[3], 16, 8)
		trace, span, sampled = m[1], m[2], flags&1 == 1 // the sampled bit
	} else if m := cloudContext.FindStringSubmatch(strings.TrimSpace(h.Get("X-Cloud-Trace-Context"))); m != nil {
		trace, sampled = strings.ToLower(m[1]), m[3] == "1"
		// This header's span id is decimal; Cloud Logging wants 16 hexadecimal digits.
		if n, err := strconv.ParseUint(m[2], 10, 64); err == nil {
			span = fmt.Sprintf("%016x", n)
		}
	}
	if trace == "" {
		return nil
	}
	name := trace
	if project != "" {
		name = "projects/" + project + "/traces/" + trace
	}
	attrs := []slog.Attr{slog.String(TraceKey, name), slog.Bool(SampledKey, sampled)}
	if span != "" {
		attrs = append(attrs, slog.String(SpanKey, span))
	}
	return attrs
}
