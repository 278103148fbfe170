package localstack

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/serve/queryapi"
)

// lineWriter writes whole lines to one writer from many sources, so that the lines of the two
// functions and of the stack do not interleave mid-line.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: w} }

// Line writes one line (a newline is added).
func (l *lineWriter) Line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, strings.TrimRight(s, "\n")+"\n")
}

// childOutput prefixes each line of a function's output and keeps the last lines.
type childOutput struct {
	tail  *emulators.Tail
	lines *emulators.Lines
}

func newChildOutput(prefix string, out *lineWriter, tail *emulators.Tail) *childOutput {
	return &childOutput{tail: tail, lines: emulators.NewLines(0, func(line string) { out.Line(prefix + line) })}
}

func (c *childOutput) Write(p []byte) (int, error) {
	c.tail.Write(p)
	return c.lines.Write(p)
}

func (c *childOutput) flush() { c.lines.Flush() }

// pushWatcher passes the Pub/Sub emulator's output to its log file and reports the pushes to
// Predict that were not acknowledged: the emulator logs each as
// "INFO: Failed to push to endpoint '<endpoint>': <reason>" and redelivers the message.
type pushWatcher struct {
	w     io.Writer
	s     *Stack
	lines *emulators.Lines
	last  time.Time
	quiet int
}

// One report per pushWatcherEvery at most: a failing Predict is retried every few seconds.
const pushWatcherEvery = 10 * time.Second

func newPushWatcher(w io.Writer, s *Stack) *pushWatcher {
	p := &pushWatcher{w: w, s: s}
	p.lines = emulators.NewLines(0, p.line)
	return p
}

func (p *pushWatcher) Write(b []byte) (int, error) {
	p.w.Write(b)
	return p.lines.Write(b)
}

func (p *pushWatcher) line(line string) {
	const marker = "Failed to push to endpoint '"
	i := strings.Index(line, marker)
	if i < 0 || p.s.PushEndpoint == "" {
		return
	}
	rest := line[i+len(marker):]
	if !strings.HasPrefix(rest, p.s.PushEndpoint+"'") {
		return
	}
	p.s.pushFailed.Add(1)
	reason := strings.TrimPrefix(rest[len(p.s.PushEndpoint)+1:], ": ")
	if j := strings.LastIndex(reason, "not an acknowledgement: "); j >= 0 {
		reason = "status " + reason[j+len("not an acknowledgement: "):]
	}
	now := time.Now()
	if now.Sub(p.last) < pushWatcherEvery {
		p.quiet++
		return
	}
	more := ""
	if p.quiet > 0 {
		more = fmt.Sprintf(" (and %d more since the last report)", p.quiet)
	}
	p.last, p.quiet = now, 0
	p.s.out.Line(fmt.Sprintf("[pubsub] Predict did not acknowledge a pushed message: %s; the emulator redelivers it%s", reason, more))
}

// newProxy is a reverse proxy to Query that keeps the browser's Host (Query builds nothing from
// it, but a function behind its URL sees its own host) and adds X-Forwarded-For, as Google's front
// end does; Query rate-limits by that address.
func newProxy(target *url.URL, logf func(error)) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
			r.Out.Host = r.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logf(err)
			w.Header().Set("Retry-After", "5")
			queryapi.WriteError(w, http.StatusBadGateway, "bad_gateway",
				"The Query function is not answering; is the local stack still running?")
		},
	}
}
