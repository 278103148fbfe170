// Package blobs reads and writes Cloud Storage objects: the model bundle (read) and the result maps
// (written by Predict, served by Query). Storage types stay in this package.
package blobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
)

// Errors callers act on.
var (
	ErrNotFound = errors.New("no such object")
	// ErrExists is returned by Create for a name that is taken.
	ErrExists = errors.New("object exists already")
)

// CacheImmutable is the Cache-Control of content that never changes under its name.
const CacheImmutable = "public, max-age=31536000, immutable"

// Store is a Cloud Storage client.
type Store struct{ client *storage.Client }

// New opens a client. It honours STORAGE_EMULATOR_HOST.
func New(ctx context.Context) (*Store, error) {
	client, err := storage.NewClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage.NewClient: %w", err)
	}
	return &Store{client: client}, nil
}

// Close releases the client.
func (s *Store) Close() error { return s.client.Close() }

// ParseURI splits gs://bucket/prefix.
func ParseURI(uri string) (bucket, prefix string, ok bool) {
	rest, found := strings.CutPrefix(uri, "gs://")
	if !found {
		return "", "", false
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	return bucket, strings.Trim(prefix, "/"), bucket != ""
}

// Object is a stored object's content and how to serve it.
type Object struct {
	Data         []byte
	ContentType  string
	CacheControl string
}

// Put writes an object, replacing any of the same name.
func (s *Store) Put(ctx context.Context, bucket, name string, o Object) error {
	return s.write(ctx, s.client.Bucket(bucket).Object(name), o)
}

// Create writes an object only if no object has that name (ErrExists otherwise): an immutable
// object is never replaced by a different one.
func (s *Store) Create(ctx context.Context, bucket, name string, o Object) error {
	err := s.write(ctx, s.client.Bucket(bucket).Object(name).If(storage.Conditions{DoesNotExist: true}), o)
	var gerr *googleapi.Error
	if errors.As(err, &gerr) && gerr.Code == http.StatusPreconditionFailed {
		return ErrExists
	}
	return err
}

func (s *Store) write(ctx context.Context, obj *storage.ObjectHandle, o Object) error {
	w := obj.NewWriter(ctx)
	w.ContentType = o.ContentType
	w.CacheControl = o.CacheControl
	// One request for small objects: our maps are ~100 kB, far below the chunk size.
	w.ChunkSize = 0
	if _, err := w.Write(o.Data); err != nil {
		w.Close()
		return fmt.Errorf("storage: writing gs://%s/%s: %w", obj.BucketName(), obj.ObjectName(), err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("storage: writing gs://%s/%s: %w", obj.BucketName(), obj.ObjectName(), err)
	}
	return nil
}

// Reader is an open object.
type Reader struct {
	io.ReadCloser
	ContentType string
	Size        int64
}

// Open opens an object for reading.
func (s *Store) Open(ctx context.Context, bucket, name string) (*Reader, error) {
	r, err := s.client.Bucket(bucket).Object(name).NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) || errors.Is(err, storage.ErrBucketNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: reading gs://%s/%s: %w", bucket, name, err)
	}
	return &Reader{ReadCloser: r, ContentType: r.Attrs.ContentType, Size: r.Attrs.Size}, nil
}

// ReadAll reads a whole object.
func (s *Store) ReadAll(ctx context.Context, bucket, name string) ([]byte, error) {
	r, err := s.Open(ctx, bucket, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The object's size, allocated once (io.ReadAll would grow to it by copies): +512 so that the
	// read that meets the end has room and does not grow it either.
	buf := bytes.NewBuffer(make([]byte, 0, max(r.Size, 0)+512))
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("storage: reading gs://%s/%s: %w", bucket, name, err)
	}
	return buf.Bytes(), nil
}

// FS presents the objects under gs://bucket/prefix as a read-only file system, so that the bundle
// loader reads a bucket and a directory the same way. Open makes the request and the file streams
// the object's content (its Stat has the object's size, so fs.ReadFile allocates it once); files
// may be opened and read concurrently.
func (s *Store) FS(ctx context.Context, bucket, prefix string) fs.FS {
	return bucketFS{ctx: ctx, s: s, bucket: bucket, prefix: prefix}
}

type bucketFS struct {
	ctx            context.Context
	s              *Store
	bucket, prefix string
}

func (b bucketFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	object := path.Join(b.prefix, name)
	r, err := b.s.Open(b.ctx, b.bucket, object)
	if errors.Is(err, ErrNotFound) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &objectFile{r: r, uri: "gs://" + b.bucket + "/" + object, name: path.Base(name)}, nil
}

// objectFile is an object being read.
type objectFile struct {
	r    *Reader
	uri  string
	name string
}

func (f *objectFile) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("storage: reading %s: %w", f.uri, err)
	}
	return n, err
}

func (f *objectFile) Stat() (fs.FileInfo, error) { return f, nil }
func (f *objectFile) Close() error               { return f.r.Close() }
func (f *objectFile) Name() string               { return f.name }
func (f *objectFile) Size() int64                { return f.r.Size }
func (f *objectFile) Mode() fs.FileMode          { return 0o444 }
func (f *objectFile) ModTime() time.Time         { return time.Time{} }
func (f *objectFile) IsDir() bool                { return false }
func (f *objectFile) Sys() any                   { return nil }

// URIFS is the file system behind a model location: gs://bucket/prefix, or a local directory.
func (s *Store) URIFS(ctx context.Context, uri string) fs.FS {
	if bucket, prefix, ok := ParseURI(uri); ok {
		return s.FS(ctx, bucket, prefix)
	}
	return os.DirFS(uri)
}
