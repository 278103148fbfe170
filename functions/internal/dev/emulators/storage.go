package emulators

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// StorageOptions configures the fake Cloud Storage server.
type StorageOptions struct {
	// Root is the directory that holds the buckets (one folder each) so that objects survive a
	// restart; empty keeps them in memory.
	Root string
	// Port to listen on (127.0.0.1); 0 picks a free one.
	Port int
	// Log receives the server's access log (a line per request) and a line if it stops on an
	// error; nil discards them.
	Log io.Writer
}

// Storage is fake-gcs-server serving the Cloud Storage JSON and XML APIs over plain HTTP on
// 127.0.0.1. The Go client (cloud.google.com/go/storage) reaches it with
// STORAGE_EMULATOR_HOST=Host() ("127.0.0.1:port"; the client adds http:// itself, and accepts the
// form with the scheme too) and then talks to it without credentials.
type Storage struct {
	fake *fakestorage.Server
	srv  *http.Server
	host string
	done chan struct{}

	mu     sync.Mutex
	faults []*fault
	failed atomic.Int64
}

// fault makes some writes fail: those of objects whose name contains match, n more times (or for
// ever while n < 0), with status.
type fault struct {
	match  string
	n      int
	status int
}

// StartStorage starts the fake Cloud Storage on a free port with its buckets under root.
func StartStorage(root string) (*Storage, error) {
	return StartStorageWith(StorageOptions{Root: root})
}

// StartStorageWith starts the fake Cloud Storage.
func StartStorageWith(o StorageOptions) (*Storage, error) {
	if o.Port < 0 || o.Port > 65535 {
		return nil, fmt.Errorf("fake Cloud Storage: port %d is out of range", o.Port)
	}
	// Listen first, so that the server knows its own address: the XML API (which the Go client
	// uses for reads) is routed by matching the Host header against PublicHost, and resumable
	// uploads answer with a Location on ExternalURL.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
	if err != nil {
		return nil, fmt.Errorf("fake Cloud Storage cannot listen on 127.0.0.1:%d: %w", o.Port, err)
	}
	host := ln.Addr().String()
	fake, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		StorageRoot: o.Root,
		Scheme:      "http",
		Host:        "127.0.0.1",
		Port:        uint16(ln.Addr().(*net.TCPAddr).Port),
		PublicHost:  host,
		ExternalURL: "http://" + host,
		NoListener:  true, // we serve its handler on our listener
		Writer:      o.Log,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("fake Cloud Storage (root %q): %w", o.Root, err)
	}
	s := &Storage{fake: fake, host: host, done: make(chan struct{})}
	// Bounds on slow clients like every server here runs (writes of a whole model bundle, and
	// reads of it, take seconds on 127.0.0.1).
	s.srv = &http.Server{Handler: s.withFaults(fake.HTTPHandler()), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 2 * time.Minute, WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(o.logw(), "fake Cloud Storage stopped: %v\n", err)
		}
	}()
	return s, nil
}

// FailWrites makes the next n writes (n < 0: every write, until ClearFaults) of objects whose name
// contains match fail with the HTTP status (503: a transient failure the client may retry; 403: a
// bucket it may not write). Reads are untouched. The reliability script and tests use it to see
// what a failed Cloud Storage write does to a job.
func (s *Storage) FailWrites(match string, n, status int) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{match: match, n: n, status: status})
}

// ClearFaults ends every FailWrites.
func (s *Storage) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// FailedWrites is how many writes a fault has failed so far.
func (s *Storage) FailedWrites() int64 { return s.failed.Load() }

// withFaults answers the writes a fault names with its status, in the JSON API's error form, and
// passes everything else to next.
func (s *Storage) withFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status := s.faultFor(r); status != 0 {
			s.failed.Add(1)
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"code":%d,"message":"a write failed on purpose (fake Cloud Storage fault)"}}`, status)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// faultFor is the status a request must fail with, 0 for none. Writes are the JSON API's uploads
// (POST /upload/storage/v1/b/B/o?name=N, which the Go client sends) and the XML API's PUT /B/N.
func (s *Storage) faultFor(r *http.Request) int {
	var name string
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/upload/storage/v1/b/"):
		name = r.URL.Query().Get("name")
	case r.Method == http.MethodPut && !strings.HasPrefix(r.URL.Path, "/upload/") && !strings.HasPrefix(r.URL.Path, "/storage/"):
		name = r.URL.Path
	default:
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if !strings.Contains(name, f.match) {
			continue
		}
		if f.n > 0 {
			f.n--
			if f.n == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f.status
	}
	return 0
}

// logw is Log or io.Discard.
func (o StorageOptions) logw() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// Host is "127.0.0.1:port", the value for STORAGE_EMULATOR_HOST.
func (s *Storage) Host() string { return s.host }

// URL is "http://127.0.0.1:port"; objects are readable at URL/bucket/object.
func (s *Storage) URL() string { return "http://" + s.host }

// Stop closes the server. Objects written under a root directory stay there.
func (s *Storage) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	s.fake.Stop()
	return err
}
