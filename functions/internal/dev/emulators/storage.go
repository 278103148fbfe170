package emulators

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
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
	s := &Storage{
		fake: fake,
		srv:  &http.Server{Handler: fake.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second},
		host: host,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(o.logw(), "fake Cloud Storage stopped: %v\n", err)
		}
	}()
	return s, nil
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
