package emulators

import (
	"bytes"
	"strings"
	"sync"
)

// Tail is an io.Writer that keeps the last lines written to it, for error messages. It is safe
// for concurrent use.
type Tail struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial []byte
}

// maxLine bounds one kept line (Java stack traces and binary noise stay readable).
const maxLine = 1000

// NewTail keeps the last n lines.
func NewTail(n int) *Tail { return &Tail{max: n} }

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := p
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			t.partial = append(t.partial, data...)
			if len(t.partial) > maxLine {
				t.partial = t.partial[len(t.partial)-maxLine:]
			}
			break
		}
		t.partial = append(t.partial, data[:i]...)
		t.push(string(t.partial))
		t.partial = t.partial[:0]
		data = data[i+1:]
	}
	return len(p), nil
}

func (t *Tail) push(line string) {
	line = strings.TrimRight(line, "\r")
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
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append([]string(nil), t.lines...)
	if len(t.partial) > 0 {
		lines = append(lines, string(t.partial))
	}
	if len(lines) > t.max {
		lines = lines[len(lines)-t.max:]
	}
	if len(lines) == 0 {
		return "  (no output)"
	}
	return "  " + strings.Join(lines, "\n  ")
}
