package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/text2brain/text2brain/functions/internal/dev/emulators"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
)

const testBucket = "text2brain-test-models"

// fakeStorage starts fake-gcs-server in memory with an empty testBucket and returns a client of it.
func fakeStorage(t *testing.T) *storage.Client {
	t.Helper()
	srv, err := emulators.StartStorage("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	ctx := context.Background()
	client, err := storage.NewClient(ctx, option.WithEndpoint(srv.URL()+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if err := client.Bucket(testBucket).Create(ctx, "text2brain-test", nil); err != nil {
		t.Fatal(err)
	}
	return client
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func objectNames(t *testing.T, client *storage.Client) []string {
	t.Helper()
	var names []string
	it := client.Bucket(testBucket).Objects(context.Background(), nil)
	for {
		o, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, o.Name)
	}
	sort.Strings(names)
	return names
}

func TestUpload(t *testing.T) {
	ctx := context.Background()
	client := fakeStorage(t)
	dir, ort := testenv.BundleDir(t), testenv.ORTLibrary(t)
	h, err := bundle.LoadHeader(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	version := h.Manifest.ModelVersion
	lib, err := os.ReadFile(ort)
	if err != nil {
		t.Fatal(err)
	}
	ortObject := "onnxruntime/" + sha256Hex(lib) + "/libonnxruntime.so"

	// The objects and the files they must equal.
	want := map[string]string{ortObject: ort, "models/" + version + "/manifest.json": filepath.Join(dir, "manifest.json")}
	for name := range h.Manifest.Files {
		want["models/"+version+"/"+name] = filepath.Join(dir, name)
	}
	if len(want) != 9 {
		t.Fatalf("want 9 objects (7 bundle files, the manifest, the library), have %v", want)
	}

	var log bytes.Buffer
	res, err := Upload(ctx, client, Options{Bucket: testBucket, BundleDir: dir, ORTLibrary: ort, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	wantRes := Result{
		ModelVersion:      version,
		ModelURI:          "gs://" + testBucket + "/models/" + version,
		ONNXRuntimeURI:    "gs://" + testBucket + "/" + ortObject,
		ONNXRuntimeObject: ortObject,
		Uploaded:          len(want),
	}
	if res != wantRes {
		t.Errorf("first upload:\n got %+v\nwant %+v", res, wantRes)
	}
	if n := strings.Count(log.String(), "uploaded gs://"); n != len(want) {
		t.Errorf("log has %d uploads:\n%s", n, log.String())
	}

	var names []string
	for name, path := range want {
		names = append(names, name)
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		obj := client.Bucket(testBucket).Object(name)
		attrs, err := obj.Attrs(ctx)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if attrs.Metadata["sha256"] != sha256Hex(file) || attrs.ContentType != ContentType(name) {
			t.Errorf("%s: metadata %v, content type %q (want sha256 %s, %q)", name, attrs.Metadata, attrs.ContentType, sha256Hex(file), ContentType(name))
		}
		r, err := obj.NewReader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, file) {
			t.Errorf("%s: %d bytes differ from %s (%d bytes)", name, len(got), path, len(file))
		}
	}
	sort.Strings(names)
	if got := objectNames(t, client); strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("bucket holds %v, want %v", got, names)
	}
	for name, ct := range map[string]string{"manifest.json": "application/json", "vocabulary.json": "application/json",
		"mask.nii.gz": "application/gzip", "model.onnx": "application/octet-stream", "articles.bin": "application/octet-stream",
		ortObject: "application/octet-stream"} {
		if ContentType(name) != ct {
			t.Errorf("ContentType(%s) = %q, want %q", name, ContentType(name), ct)
		}
	}

	// Again: everything is there.
	res, err = Upload(ctx, client, Options{Bucket: testBucket, BundleDir: dir, ORTLibrary: ort})
	wantRes.Uploaded, wantRes.Skipped = 0, len(want)
	if err != nil || res != wantRes {
		t.Errorf("second upload: %+v, %v; want %+v", res, err, wantRes)
	}

	// An object that differs from its file (here: written without the checksum) is replaced.
	w := client.Bucket(testBucket).Object("models/" + version + "/vocabulary.json").NewWriter(ctx)
	w.Write([]byte(`{"not": "the vocabulary"}`))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	res, err = Upload(ctx, client, Options{Bucket: testBucket, BundleDir: dir})
	if err != nil || res.Uploaded != 1 || res.Skipped != 7 || res.ONNXRuntimeURI != "" {
		t.Errorf("upload after a damaged object, no library: %+v, %v; want 1 uploaded, 7 skipped", res, err)
	}
}

// copyBundle copies the bundle into a temporary directory that a test may damage.
func copyBundle(t *testing.T) string {
	t.Helper()
	src, dst := testenv.BundleDir(t), t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestUploadChangedFile(t *testing.T) {
	ctx := context.Background()
	client := fakeStorage(t)
	dir := copyBundle(t)
	// Same size, another checksum.
	path := filepath.Join(dir, "articles.bin")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Upload(ctx, client, Options{Bucket: testBucket, BundleDir: dir, ORTLibrary: testenv.ORTLibrary(t)})
	if err == nil || !strings.Contains(err.Error(), "articles.bin") || !strings.Contains(err.Error(), "make model") {
		t.Errorf("error %v, want one that names articles.bin and says to run make model", err)
	}
	if names := objectNames(t, client); len(names) != 0 {
		t.Errorf("a bundle that fails verification was partly uploaded: %v", names)
	}
}

func TestUploadErrors(t *testing.T) {
	ctx := context.Background()
	client := fakeStorage(t)
	dir, ort := testenv.BundleDir(t), testenv.ORTLibrary(t)
	notLib := filepath.Join(t.TempDir(), "libonnxruntime.so")
	if err := os.WriteFile(notLib, []byte("<html>not found</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	testCases := []struct {
		name string
		opt  Options
		want []string
	}{
		{"missing bucket", Options{Bucket: "no-such-bucket", BundleDir: dir, ORTLibrary: ort}, []string{"gs://no-such-bucket", "does not exist", "terraform apply"}},
		{"no bucket", Options{BundleDir: dir}, []string{"no bucket given"}},
		{"uri for bucket", Options{Bucket: "gs://" + testBucket, BundleDir: dir}, []string{"is a URI", `"` + testBucket + `"`}},
		{"bad bucket name", Options{Bucket: "Models Bucket", BundleDir: dir}, []string{`"Models Bucket" is not a bucket name`}},
		{"short bucket name", Options{Bucket: "ab", BundleDir: dir}, []string{"not a bucket name"}},
		{"no bundle", Options{Bucket: testBucket, BundleDir: filepath.Join(t.TempDir(), "model")}, []string{"not found", "make model"}},
		{"no library", Options{Bucket: testBucket, BundleDir: dir, ORTLibrary: notLib + ".1"}, []string{"missing", "make ort"}},
		{"not a library", Options{Bucket: testBucket, BundleDir: dir, ORTLibrary: notLib}, []string{"not a shared library", "make ort"}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Upload(ctx, client, tc.opt)
			for _, want := range tc.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v, want one that says %q", err, want)
				}
			}
			if tc.name == "missing bucket" && !errors.Is(err, ErrNoBucket) {
				t.Errorf("error %v is not ErrNoBucket", err)
			}
		})
	}
	if names := objectNames(t, client); len(names) != 0 {
		t.Errorf("failed uploads left objects: %v", names)
	}
}

func TestCheckBucketName(t *testing.T) {
	for _, ok := range []string{"abc", "my-project-text2brain-models", "a_b.c-d", "0ab", strings.Repeat("a", 63), strings.Repeat("a", 63) + "." + strings.Repeat("b", 63)} {
		if err := CheckBucketName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "ab", "-abc", "abc-", "ABC", "a b c", "a..bc", "gs://abc", "abc/def", strings.Repeat("a", 64)} {
		if err := CheckBucketName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
