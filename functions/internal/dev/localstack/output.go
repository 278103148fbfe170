package localstack

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/serve/queryapi"
)

// What goes where. The console (Options.Log) gets what a person running the stack needs: errors,
// restarts, a line per job, and (from the command) the URL. DataDir/logs holds everything:
// localstack.log has the console's lines and the stack's progress, each with its time;
// query.log and predict.log the functions' whole output; firestore.log, pubsub.log and
// storage.log the emulators' output and the fake Cloud Storage's access log.

// lineWriter writes whole lines to one writer from many sources, so that the lines of the two
// functions and of the stack do not interleave mid-line.
type lineWriter struct {
	mu    sync.Mutex
	w     io.Writer
	stamp bool // prefix each line with the time
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: w} }

// Line writes one line (a newline is added).
func (l *lineWriter) Line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stamp {
		s = time.Now().Format("2006-01-02 15:04:05.000 ") + s
	}
	io.WriteString(l.w, strings.TrimRight(s, "\n")+"\n")
}

// say writes a line to the console and to localstack.log.
func (s *Stack) say(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	s.out.Line(line)
	s.note("%s", line)
}

// note writes a line to localstack.log only.
func (s *Stack) note(format string, args ...any) {
	if s.file != nil {
		s.file.Line(fmt.Sprintf(format, args...))
	}
}

// logf is a progress line of the stack, for localstack.log.
func (s *Stack) logf(format string, args ...any) { s.note("[localstack] "+format, args...) }

// childOutput takes a function's output: all of it to its log file, its warnings and errors (and
// a Go panic's first line) to the console too, prefixed with the function's name; it keeps the
// last lines for error messages.
type childOutput struct {
	path  string
	file  io.Writer
	tail  *emulators.Tail
	lines *emulators.Lines
}

func newChildOutput(s *Stack, prefix string, file *os.File, tail *emulators.Tail) *childOutput {
	c := &childOutput{file: file, tail: tail}
	if file != nil {
		c.path = file.Name()
	} else {
		c.file = io.Discard
	}
	shown := map[string]time.Time{} // a message's last time on the console
	quiet := map[string]int{}       // how many of it were not shown since
	c.lines = emulators.NewLines(0, func(line string) {
		if !important(line) {
			return
		}
		// A failing backend makes a function log the same error for every request: one a
		// message every 10 s on the console.
		msg := logMessage(line)
		now := time.Now()
		if now.Sub(shown[msg]) < 10*time.Second {
			quiet[msg]++
			return
		}
		more := ""
		if n := quiet[msg]; n > 0 {
			more = fmt.Sprintf(" (and %d more like it since the last)", n)
		}
		shown[msg], quiet[msg] = now, 0
		s.say("%s%s%s", prefix, consoleForm(line), more)
	})
	return c
}

var messageField = regexp.MustCompile(`(?:\bmsg=|"message":)("(?:[^"\\]|\\.)*"|\S+)`)

// logMessage is a log line's message (slog's msg, Cloud Logging's message), or the line.
func logMessage(line string) string {
	if m := messageField.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	return line
}

func (c *childOutput) Write(p []byte) (int, error) {
	c.file.Write(p)
	c.tail.Write(p)
	return c.lines.Write(p)
}

func (c *childOutput) flush() { c.lines.Flush() }

// important is a line of a function's output that the console shows: a warning or an error of
// its structured log (slog's text, or Cloud Logging's JSON with T2B_LOG_FORMAT=json), or the
// first line of a Go panic.
func important(line string) bool {
	for _, m := range []string{" level=WARN ", " level=ERROR ", `"severity":"WARNING"`, `"severity":"ERROR"`, `"severity":"CRITICAL"`} {
		if strings.Contains(line, m) {
			return true
		}
	}
	return strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ")
}

// consoleForm drops the time of a text log line (the console is read as it comes).
func consoleForm(line string) string {
	if strings.HasPrefix(line, "time=") {
		if _, rest, ok := strings.Cut(line, " "); ok {
			return rest
		}
	}
	return line
}

// newProxy is a reverse proxy to Query that keeps the browser's Host (Query builds nothing from
// it, but a function behind its URL sees its own host) and adds X-Forwarded-For, as Google's front
// end does; Query rate-limits by that address. When Query does not answer (it crashed, with the
// request in flight) the client gets a 503 in the API's JSON, never a reset connection.
func newProxy(target *url.URL, logf func(error), retryAfter func() int) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
			r.Out.Host = r.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logf(err)
			unavailable(w, retryAfter(), "The Query function did not answer (it may have crashed; the local stack restarts it). Try again in a few seconds.")
		},
	}
}

// unavailable answers 503 with the API's error body and Retry-After.
func unavailable(w http.ResponseWriter, retryAfter int, message string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	queryapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", message)
}
