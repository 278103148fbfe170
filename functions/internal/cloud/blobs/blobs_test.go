package blobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"cloud.google.com/go/storage"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
)

func TestAgainstFakeGCS(t *testing.T) {
	gcs, err := emulators.StartStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer gcs.Stop()
	t.Setenv("STORAGE_EMULATOR_HOST", gcs.Host())
	ctx := context.Background()
	s, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.client.Bucket("results").Create(ctx, "test", nil); err != nil {
		t.Fatal(err)
	}

	o := Object{Data: []byte("map bytes"), ContentType: "application/gzip", CacheControl: "public, max-age=60"}
	if err := s.Put(ctx, "results", "maps/v/id.nii.gz", o); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, "results", "maps/v/id.nii.gz")
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if r.ContentType != o.ContentType || r.Size != int64(len(o.Data)) {
		t.Errorf("attributes %+v", r)
	}
	data, err := fs.ReadFile(s.URIFS(ctx, "gs://results/maps/v"), "id.nii.gz")
	if err != nil || string(data) != "map bytes" {
		t.Errorf("URIFS read %q, %v", data, err)
	}
	// A file of the URIFS streams its object and states its size; files are read concurrently,
	// and ReadAll reads an object larger than its buffers whole.
	big := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB
	for i := range 4 {
		if err := s.Put(ctx, "results", fmt.Sprintf("bundle/part%d", i), Object{Data: big[i:]}); err != nil {
			t.Fatal(err)
		}
	}
	fsys := s.URIFS(ctx, "gs://results/bundle")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			name := fmt.Sprintf("part%d", i)
			f, err := fsys.Open(name)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			if info, err := f.Stat(); err != nil || info.Size() != int64(len(big)-i) || info.Name() != name {
				t.Errorf("Stat of %s: %v, %v", name, info, err)
			}
			if data, err := io.ReadAll(f); err != nil || !bytes.Equal(data, big[i:]) {
				t.Errorf("reading %s through URIFS: %d bytes, %v", name, len(data), err)
			}
		})
	}
	wg.Wait()
	if data, err := s.ReadAll(ctx, "results", "bundle/part0"); err != nil || !bytes.Equal(data, big) {
		t.Errorf("ReadAll: %d bytes, %v", len(data), err)
	}
	if _, err := fs.ReadFile(s.FS(ctx, "results", "maps"), "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing object through FS: %v", err)
	}
	if _, err := s.Open(ctx, "results", "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing object: %v", err)
	}
	if _, err := s.Open(ctx, "no-such-bucket", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing bucket: %v", err)
	}
	if err := s.Create(ctx, "results", "maps/v/id.nii.gz", Object{Data: []byte("other bytes")}); !errors.Is(err, ErrExists) {
		t.Errorf("Create over an existing object: %v, want ErrExists", err)
	}
	if data, _ := s.ReadAll(ctx, "results", "maps/v/id.nii.gz"); string(data) != "map bytes" {
		t.Errorf("Create replaced an existing object: %q", data)
	}
	if err := s.Create(ctx, "results", "maps/v/new.png", o); err != nil {
		t.Errorf("Create of a new object: %v", err)
	}
	if err := s.Put(ctx, "no-such-bucket", "x", o); err == nil || errors.Is(err, storage.ErrObjectNotExist) {
		t.Errorf("Put to a missing bucket: %v", err)
	}
}

func TestURIFSLocalDirectory(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte("{}"), 0o644)
	var s Store
	if data, err := fs.ReadFile(s.URIFS(context.Background(), dir), "manifest.json"); err != nil || string(data) != "{}" {
		t.Errorf("local directory: %q, %v", data, err)
	}
}

func TestParseURI(t *testing.T) {
	for uri, want := range map[string][3]string{
		"gs://b/p/q/": {"b", "p/q", "true"}, "gs://b": {"b", "", "true"}, "gs://": {"", "", "false"}, "/local/dir": {"", "", "false"},
	} {
		b, p, ok := ParseURI(uri)
		if b != want[0] || p != want[1] || (ok && want[2] != "true") || (!ok && want[2] == "true") {
			t.Errorf("ParseURI(%q) = %q, %q, %v", uri, b, p, ok)
		}
	}
}
