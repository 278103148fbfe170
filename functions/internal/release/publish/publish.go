// Package publish puts what the Predict function loads into the models bucket: the model bundle
// and the ONNX Runtime shared library. A deployment runs it (`text2brain model publish`) before the
// functions are deployed, and the local stack runs it against its fake Cloud Storage, so that both
// lay out the bucket the same way:
//
//	models/<model_version>/<file>               every file the bundle's manifest lists
//	models/<model_version>/manifest.json        last, so that a bundle without it is incomplete
//	onnxruntime/<sha256>/libonnxruntime.so      the library, named by the SHA-256 of its content
//
// Both names are derived from the content (the model version is a hash of the bundle's files), so
// an object never has to change: one is uploaded only if it is missing or differs from the local file
// in size or in its "sha256" metadata, which every upload sets. Running it again with the same files
// costs one metadata request per object and uploads nothing.
//
// The bundle is verified (bundle.Load: every checksum and shape) before anything is uploaded, and
// each file is checked against its manifest checksum again as it is read for upload, so a corrupt
// or half-rebuilt bundle is never published.
//
// The bucket is not created here: in the cloud it is Terraform's (the local stack makes its own).
package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/text2brain/text2brain/functions/internal/model/bundle"
)

// Object name prefixes and the library's file name.
const (
	ModelsPrefix   = "models/"
	ORTPrefix      = "onnxruntime/"
	ORTLibraryName = "libonnxruntime.so"
)

// ErrNoBucket is returned (wrapped, with the bucket's name) when the bucket does not exist.
var ErrNoBucket = errors.New("the bucket does not exist")

// Options says what to publish where.
type Options struct {
	// Bucket is the models bucket's name (not a gs:// URI).
	Bucket string
	// BundleDir is the model bundle directory made by `make model`.
	BundleDir string
	// ORTLibrary is the path of libonnxruntime.so; empty publishes no library.
	ORTLibrary string
	// Log receives a line for each object uploaded or found in place; nil discards them.
	Log io.Writer
	// DryRun verifies everything and says where it would go, without a request (client may be
	// nil): what a plan needs before the bucket exists.
	DryRun bool
}

// Result is what a deployment needs to know of the published objects.
type Result struct {
	ModelVersion string `json:"model_version"`
	// ModelURI is gs://Bucket/models/ModelVersion, the value of T2B_MODEL_URI.
	ModelURI string `json:"model_uri"`
	// ONNXRuntimeURI is gs://Bucket/onnxruntime/SHA256/libonnxruntime.so, the value of
	// ONNXRUNTIME_LIB for Predict; empty if no library was given.
	ONNXRuntimeURI string `json:"onnxruntime_uri"`
	// ONNXRuntimeObject is the library's object name, Terraform's onnxruntime_object.
	ONNXRuntimeObject string `json:"onnxruntime_object"`
	// Uploaded and Skipped count the objects written and those that were there already.
	Uploaded int `json:"uploaded"`
	Skipped  int `json:"skipped"`
}

// upload is one object to put.
type upload struct {
	name   string // object name
	path   string // local file
	sha256 string // the checksum the file must have
	bytes  int64  // and its size
}

// Upload verifies the bundle (and the library), then uploads every object that is not in the
// bucket already. See the package comment for the layout.
func Upload(ctx context.Context, client *storage.Client, opt Options) (Result, error) {
	var res Result
	if opt.DryRun && opt.Bucket == "" {
		opt.Bucket = "models-bucket" // the URIs are only examples then; the object names are exact
	}
	if err := CheckBucketName(opt.Bucket); err != nil {
		return res, fmt.Errorf("publish: %w", err)
	}
	log := opt.Log
	if log == nil {
		log = io.Discard
	}

	// Everything local first: a bundle or a library that is not right costs no request.
	man, manifest, err := verifyBundle(opt.BundleDir)
	if err != nil {
		return res, err
	}
	res.ModelVersion = man.ModelVersion
	prefix := ModelsPrefix + man.ModelVersion + "/"
	res.ModelURI = "gs://" + opt.Bucket + "/" + ModelsPrefix + man.ModelVersion

	var uploads []upload
	if opt.ORTLibrary != "" {
		sum, size, err := checkORT(opt.ORTLibrary)
		if err != nil {
			return res, err
		}
		name := ORTPrefix + sum + "/" + ORTLibraryName
		res.ONNXRuntimeURI = "gs://" + opt.Bucket + "/" + name
		res.ONNXRuntimeObject = name
		uploads = append(uploads, upload{name: name, path: opt.ORTLibrary, sha256: sum, bytes: size})
	}
	names := make([]string, 0, len(man.Files))
	for name := range man.Files {
		if !fs.ValidPath(name) || strings.ContainsAny(name, `/\`) || name == bundle.ManifestFile {
			return res, fmt.Errorf("publish: the manifest of %s lists %q, which is not a file of the bundle: run `make model`", opt.BundleDir, name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := man.Files[name]
		uploads = append(uploads, upload{name: prefix + name, path: filepath.Join(opt.BundleDir, name), sha256: f.SHA256, bytes: f.Bytes})
	}
	uploads = append(uploads, manifest)
	if opt.DryRun {
		return res, nil
	}

	bucket := client.Bucket(opt.Bucket)
	if err := checkBucket(ctx, bucket, opt.Bucket); err != nil {
		return res, err
	}
	for _, u := range uploads {
		done, err := put(ctx, bucket, opt.Bucket, u)
		if err != nil {
			return res, err
		}
		uri := "gs://" + opt.Bucket + "/" + u.name
		if done {
			res.Uploaded++
			fmt.Fprintf(log, "uploaded %s\n", uri)
		} else {
			res.Skipped++
			fmt.Fprintf(log, "%s is there already\n", uri)
		}
	}
	return res, nil
}

// verifyBundle checks the whole bundle in dir and returns its manifest, and the upload of
// manifest.json pinned to the content that was verified.
func verifyBundle(dir string) (bundle.Manifest, upload, error) {
	path := filepath.Join(dir, bundle.ManifestFile)
	raw, err := os.ReadFile(path) // before Load: if the bundle is rebuilt meanwhile, the versions differ
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return bundle.Manifest{}, upload{}, fmt.Errorf("publish: %w", err)
	}
	b, err := bundle.Load(dir)
	if err != nil {
		return bundle.Manifest{}, upload{}, fmt.Errorf("publish: %w", err)
	}
	var read bundle.Manifest
	if err := json.Unmarshal(raw, &read); err != nil || read.ModelVersion != b.Manifest.ModelVersion {
		return bundle.Manifest{}, upload{}, fmt.Errorf("publish: the bundle %s changed while it was verified: wait for `make model` to finish and publish again", dir)
	}
	sum := sha256.Sum256(raw)
	name := ModelsPrefix + b.Manifest.ModelVersion + "/" + bundle.ManifestFile
	return b.Manifest, upload{name: name, path: path, sha256: hex.EncodeToString(sum[:]), bytes: int64(len(raw))}, nil
}

// CheckBucketName reports whether name is a Cloud Storage bucket name (not a gs:// URI).
func CheckBucketName(name string) error {
	switch {
	case name == "":
		return errors.New("no bucket given: name the models bucket Terraform made (its output models_bucket)")
	case strings.HasPrefix(name, "gs://"):
		bucket, _, _ := strings.Cut(strings.TrimPrefix(name, "gs://"), "/")
		return fmt.Errorf("%q is a URI: give the bucket's name alone (%q)", name, bucket)
	}
	bad := len(name) < 3 || len(name) > 222 || !alnum(name[0]) || !alnum(name[len(name)-1])
	for _, part := range strings.Split(name, ".") {
		bad = bad || part == "" || len(part) > 63
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		bad = bad || !(alnum(c) || c == '-' || c == '_' || c == '.')
	}
	if bad {
		return fmt.Errorf("%q is not a bucket name (3 to 63 lower-case letters, digits, '-', '_' and '.', beginning and ending with a letter or digit)", name)
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// checkBucket fails with ErrNoBucket if the bucket does not exist.
func checkBucket(ctx context.Context, bucket *storage.BucketHandle, name string) error {
	_, err := bucket.Attrs(ctx)
	var gerr *googleapi.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrBucketNotExist):
		return fmt.Errorf("publish: gs://%s: %w: create it first with `terraform apply` (the buckets are Terraform's), then publish again", name, ErrNoBucket)
	case errors.As(err, &gerr) && gerr.Code == http.StatusForbidden:
		// Allowed to write objects but not to read the bucket's metadata (roles/storage.objectAdmin):
		// the uploads will tell.
		return nil
	}
	return fmt.Errorf("publish: gs://%s: %w", name, err)
}

// checkORT checks that path is a shared library and returns its checksum and size.
func checkORT(path string) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("publish: the ONNX Runtime library is missing at %s: run `make ort`", path)
	}
	defer f.Close()
	h := sha256.New()
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	h.Write(magic[:n])
	if string(magic[:n]) != "\x7fELF" {
		return "", 0, fmt.Errorf("publish: %s is not a shared library (no ELF header): run `make ort`", path)
	}
	rest, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("publish: reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), int64(n) + rest, nil
}

// put uploads one object unless the bucket has it with the checksum and size that were verified;
// it reports whether it uploaded. It writes with the storage client itself rather than through
// cloud/blobs, whose writer serves the functions' small results in one request: these objects are
// up to 45 MB, go in resumable chunks with a CRC32C the server checks, and carry their SHA-256 as
// metadata for the skip rule, none of which the functions' writer needs.
func put(ctx context.Context, bucket *storage.BucketHandle, bucketName string, u upload) (bool, error) {
	uri := "gs://" + bucketName + "/" + u.name
	obj := bucket.Object(u.name)
	attrs, err := obj.Attrs(ctx)
	switch {
	case err == nil && attrs.Size == u.bytes && attrs.Metadata["sha256"] == u.sha256:
		return false, nil // the file is not read again: it was verified moments ago
	case err != nil && !errors.Is(err, storage.ErrObjectNotExist):
		return false, fmt.Errorf("publish: %s: %w", uri, err)
	}
	data, err := os.ReadFile(u.path)
	if err != nil {
		return false, fmt.Errorf("publish: %w", err)
	}
	if s := sha256.Sum256(data); hex.EncodeToString(s[:]) != u.sha256 || int64(len(data)) != u.bytes {
		// Changed since it was verified (a rebuild under way, say).
		return false, fmt.Errorf("publish: %s changed while it was published (it no longer has the checksum that was verified): run `make model` and publish again", u.path)
	}
	w := obj.NewWriter(ctx)
	w.ContentType = ContentType(u.name)
	w.Metadata = map[string]string{"sha256": u.sha256}
	// The server checks the content against this checksum and rejects a damaged upload.
	w.CRC32C = crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	w.SendCRC32C = true
	// The default chunk size keeps uploads resumable and retried: the larger files are tens of MB.
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		w.Close()
		return false, fmt.Errorf("publish: uploading %s: %w", uri, err)
	}
	if err := w.Close(); err != nil {
		return false, fmt.Errorf("publish: uploading %s: %w", uri, err)
	}
	return true, nil
}

// ContentType is the media type an object is stored with, from its name.
func ContentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".json"):
		return "application/json"
	case strings.HasSuffix(name, ".gz"):
		return "application/gzip"
	}
	return "application/octet-stream"
}

// TFVars is what the Terraform deployment needs to serve a published model: its variables
// model_version and onnxruntime_object, as a JSON variables file.
func (r Result) TFVars() ([]byte, error) {
	if r.ONNXRuntimeObject == "" {
		return nil, errors.New("publish: no ONNX Runtime library was published, and Terraform needs one")
	}
	return json.MarshalIndent(map[string]string{
		"model_version":      r.ModelVersion,
		"onnxruntime_object": r.ONNXRuntimeObject,
	}, "", "  ")
}
