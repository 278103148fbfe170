package queryapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/text2brain/text2brain/functions/internal/serve/config"
)

// MaxHeaderBytes bounds a request's line and headers on the servers this repository starts: room
// for the longest query the API takes (querytext.MaxRawBytes, 16 kB, percent-encoded: up to
// 48 kB) and ordinary headers. Larger requests are answered 431 (JSON, through JSONErrors); net/http
// reads up to 4 kB past the limit before it refuses (8 kB on a kept-alive connection).
const MaxHeaderBytes = 64 << 10

// NewHTTPServer is the server that runs Query's handler where this repository starts the server
// itself (the local stack's function process; tests): every timeout of cfg.Timeouts on every
// connection, and MaxHeaderBytes. Serve it on JSONErrors(listener), so that the answers net/http
// gives before any handler runs are JSON too.
//
// In Cloud Run the functions framework starts its own server, whose settings no code here can
// reach: there Google's front end reads every request before Query sees it (and answers malformed
// or oversized ones itself), and Handler applies the read and write deadlines to each request.
func NewHTTPServer(t config.Timeouts, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
		// A client that hangs up or times out is no server error: it goes to the debug log.
		ErrorLog:  log.New(slogWriter{}, "", 0),
		ConnState: trackRequests,
	}
}

// trackRequests tells each JSONErrors connection whether a request is being read or answered on
// it (http.StateActive, from its first byte) or not (idle, between requests).
func trackRequests(c net.Conn, state http.ConnState) {
	jc, ok := c.(*jsonErrorConn)
	if !ok {
		return
	}
	jc.mu.Lock()
	defer jc.mu.Unlock()
	switch state {
	case http.StateActive:
		jc.active, jc.answered = true, false
	case http.StateIdle:
		jc.active = false
	}
}

type slogWriter struct{}

func (slogWriter) Write(p []byte) (int, error) {
	slog.Debug("http server", "msg", string(bytes.TrimSpace(p)))
	return len(p), nil
}

// deadlines applies the read and write timeouts to each request through its connection, so that
// they hold under any server (the functions framework's has none): a body must arrive within
// t.Read of the handler's start, and the answer be written within t.Write. The read deadline is
// set only on a request with a body: on one without, net/http is already reading the connection
// in the background to notice a client that leaves, and a deadline would end that read and cancel
// a request that waits for its result. Once a body is read to its end, net/http lifts the deadline
// for the same reason.
func deadlines(t config.Timeouts, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		// Recorders in tests and some wrappers cannot set deadlines: then the server's own hold.
		if t.Write > 0 {
			_ = rc.SetWriteDeadline(now.Add(t.Write))
		}
		if t.Read > 0 && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			_ = rc.SetReadDeadline(now.Add(t.Read))
		}
		next.ServeHTTP(w, r)
	})
}

// JSONErrors wraps a listener so that the answers net/http writes itself, before any handler
// runs, are the API's JSON errors instead of text: 431 for headers larger than MaxHeaderBytes,
// 408 for headers that did not arrive within the read-header timeout, 400 for a malformed request
// and 501 for an unknown transfer encoding. net/http writes each of these in one Write of a fixed
// form, straight to the connection and never through a handler's buffered writer, so they can be
// told from any handler's answer (which always has a Date header) and rewritten whole.
//
// A request whose headers stop in the middle of a header line is not answered by net/http at all
// (it closes the connection): with NewHTTPServer's ConnState hook, the connection knows that a
// request was being read and nothing answered, and writes the 408 itself before it closes.
// Without the hook, only the rewrites apply.
func JSONErrors(ln net.Listener) net.Listener { return jsonErrorListener{ln} }

type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c}, nil
}

// jsonErrorConn rewrites net/http's own error answers on one connection.
type jsonErrorConn struct {
	net.Conn
	mu sync.Mutex
	// timedOut is set when the last read failed on its deadline: the 400 that follows is a
	// timeout.
	timedOut bool
	// active is set while a request is read or answered, answered once anything was written
	// for it (trackRequests).
	active, answered bool
}

func (c *jsonErrorConn) Close() error {
	c.mu.Lock()
	unanswered := c.active && !c.answered && c.timedOut
	c.answered = true
	c.mu.Unlock()
	if unanswered {
		// A bound on the goodbye: the client is slow by definition.
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Conn.Write(jsonAnswer(http.StatusRequestTimeout, "request_timeout", headersTooSlow))
	}
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close the connection after an early answer, as it does on a TCP
// connection, so that the client reads the answer before the connection goes.
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

const headersTooSlow = "The request's headers arrived too slowly; send the request at once and try again."

func (c *jsonErrorConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	if timedOut || n > 0 {
		c.mu.Lock()
		c.timedOut = timedOut
		c.mu.Unlock()
	}
	return n, err
}

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	timedOut := c.timedOut
	c.answered = true
	c.mu.Unlock()
	if answer, ok := rewriteEarlyAnswer(p, timedOut); ok {
		if _, err := c.Conn.Write(answer); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// earlyHeaders are the headers of every answer net/http gives before a handler runs.
const earlyHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// rewriteEarlyAnswer turns one of net/http's own answers ("HTTP/1.1 431 Request Header Fields Too
// Large" + earlyHeaders + a line of text) into the same answer as JSON; ok is false for any other
// write.
func rewriteEarlyAnswer(p []byte, timedOut bool) (answer []byte, ok bool) {
	status, rest, found := bytes.Cut(p, []byte(earlyHeaders))
	if !found || !bytes.HasPrefix(status, []byte("HTTP/1.1 ")) || len(status) < 12 || bytes.ContainsAny(rest, "\r\n") {
		return nil, false
	}
	code, err := strconv.Atoi(string(status[9:12]))
	if err != nil {
		return nil, false
	}
	var errCode, message string
	switch {
	case code == http.StatusRequestHeaderFieldsTooLarge:
		errCode, message = "headers_too_large", fmt.Sprintf("The request's line and headers are larger than %d kB; send a shorter query (at most 2,000 characters) or fewer headers.", MaxHeaderBytes>>10)
	case code == http.StatusBadRequest && timedOut:
		code, errCode, message = http.StatusRequestTimeout, "request_timeout", headersTooSlow
	case code == http.StatusBadRequest:
		// net/http's reason, when it gives one after the status: "missing required Host header".
		detail := ""
		if _, d, ok := bytes.Cut(status, []byte(": ")); ok {
			detail = " (" + string(d) + ")"
		}
		errCode, message = "bad_request", "The request is not valid HTTP"+detail+"."
	case code == http.StatusNotImplemented:
		errCode, message = "not_implemented", "The request's transfer encoding is not supported."
	default:
		errCode, message = "bad_request", "The request could not be read: "+string(bytes.TrimSpace(rest))+"."
	}
	return jsonAnswer(code, errCode, message), true
}

// jsonAnswer is a whole HTTP/1.1 answer with the API's error body, closing the connection.
func jsonAnswer(code int, errCode, message string) []byte {
	body, _ := json.Marshal(struct {
		Error ErrorBody `json:"error"`
	}{ErrorBody{errCode, message}})
	body = append(body, '\n')
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	b.WriteString("Content-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n")
	// The headers of every answer (SecurityHeaders).
	fmt.Fprintf(&b, "X-Content-Type-Options: nosniff\r\nReferrer-Policy: strict-origin-when-cross-origin\r\nContent-Security-Policy: %s\r\nX-Frame-Options: DENY\r\n", APIContentSecurityPolicy)
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}
