package emulators

import (
	"bytes"
	"strings"
	"sync"
)

// Lines is an io.Writer that calls fn with each complete line written to it (without its "\n"
// and a trailing "\r"). Of an unfinished line it keeps at most max bytes (the last ones), so that
// binary noise cannot grow it without bound. It is safe for concurrent use; fn is called with
// its lock held, one line at a time. The emulators' logs, the tails of error messages and the
// local stack's prefixed output all split lines with it.
type Lines struct {
	mu      sync.Mutex
	max     int
	fn      func(string)
	partial []byte
}

// NewLines makes a Lines calling fn; max ≤ 0 means 64 KiB.
func NewLines(max int, fn func(string)) *Lines {
	if max <= 0 {
		max = 64 << 10
	}
	return &Lines{max: max, fn: fn}
}

func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	data := p
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			l.partial = append(l.partial, data...)
			if len(l.partial) > l.max {
				l.partial = append(l.partial[:0], l.partial[len(l.partial)-l.max:]...)
			}
			break
		}
		l.partial = append(l.partial, data[:i]...)
		l.fn(strings.TrimRight(string(l.partial), "\r"))
		l.partial = l.partial[:0]
		data = data[i+1:]
	}
	return len(p), nil
}

// Flush passes on the unfinished line, if any, as a line.
func (l *Lines) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.fn(strings.TrimRight(string(l.partial), "\r"))
		l.partial = l.partial[:0]
	}
}

// Partial is the unfinished line.
func (l *Lines) Partial() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.partial)
}

// Tail is an io.Writer that keeps the last lines written to it, for error messages. It is safe
// for concurrent use.
type Tail struct {
	*Lines
	mu    sync.Mutex
	max   int
	lines []string
}

// maxLine bounds one kept line (Java stack traces and binary noise stay readable).
const maxLine = 1000

// NewTail keeps the last n lines.
func NewTail(n int) *Tail {
	t := &Tail{max: n}
	t.Lines = NewLines(maxLine, t.push)
	return t
}

func (t *Tail) push(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(line) > maxLine {
		line = line[:maxLine] + "…"
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.max:]...)
	}
}

// String is the kept lines, the unfinished last one included, each indented by two spaces.
func (t *Tail) String() string {
	partial := t.Partial()
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append([]string(nil), t.lines...)
	if partial != "" {
		lines = append(lines, partial)
	}
	if len(lines) > t.max {
		lines = lines[len(lines)-t.max:]
	}
	if len(lines) == 0 {
		return "  (no output)"
	}
	return "  " + strings.Join(lines, "\n  ")
}
