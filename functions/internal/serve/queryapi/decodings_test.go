package queryapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

var _ BlobWriter = (*blobs.Store)(nil)

// Create makes memBlobs a BlobWriter, as the real bucket is.
func (m *memBlobs) Create(ctx context.Context, bucket, name string, o blobs.Object) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if _, ok := m.objects[bucket+"/"+name]; ok {
		return blobs.ErrExists
	}
	m.objects[bucket+"/"+name] = o
	return nil
}

var (
	maskOnce sync.Once
	mask     *brain.Mask
	maskErr  error
)

func testMask(t *testing.T) *brain.Mask {
	t.Helper()
	dir := testenv.BundleDir(t)
	maskOnce.Do(func() { mask, maskErr = brain.ReadMaskFile(dir + "/" + bundle.MaskFile) })
	if maskErr != nil {
		t.Fatal(maskErr)
	}
	return mask
}

// decodingBackends is a server with decodings on: the model's mask.
func decodingBackends(t *testing.T) *backends {
	b := newBackends(t)
	b.s.EnableDecoding(testMask(t))
	return b
}

// mapFile is a map on the model's grid as the service writes its downloads: a blob of positive
// values around (x, y, z) mm.
func mapFile(t *testing.T, m *brain.Mask, x, y, z float64) []byte {
	t.Helper()
	values := make([]float32, m.Len())
	for p, idx := range m.Voxels {
		i, j, k := brain.Coords(int(idx))
		dx, dy, dz := float64(4*i-90)-x, float64(4*j-126)-y, float64(4*k-72)-z
		values[p] = float32(8 * math.Exp(-(dx*dx+dy*dy+dz*dz)/(2*100)))
	}
	var buf bytes.Buffer
	if err := brain.WriteMap(&buf, m, values, "test"); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// patched inflates a .nii.gz, lets change edit its bytes, and returns the raw .nii.
func patched(t *testing.T, gz []byte, change func([]byte)) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	change(raw)
	return raw
}

func (b *backends) upload(t *testing.T, target, contentType string, body []byte, header map[string]string) answer {
	t.Helper()
	req := httptest.NewRequest("POST", target, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		a.body = decodeJSON(t, rec.Body.Bytes())
	}
	return a
}

// A good file is stored under its hash and makes one job; the same file again (as a form this
// time) is the same decoding, no second job; once Predict has done it, it is a cached answer. A
// decoding is not a map, nor a map a decoding.
func TestDecodingLifecycle(t *testing.T) {
	b := decodingBackends(t)
	file := mapFile(t, testMask(t), 40, -50, -20)
	sum := sha256.Sum256(file)
	sha := hex.EncodeToString(sum[:])
	id := querytext.DecodingKey(b.s.ModelVersion(), sha)

	a := b.upload(t, "/api/v1/decodings", "application/gzip", file, map[string]string{"X-File-Name": `C:\maps\zstat1.nii.gz`})
	if a.status != http.StatusAccepted || a.body["id"] != id || a.body["kind"] != "decoding" || a.body["stage"] != "queued" {
		t.Fatalf("first upload: %d %s", a.status, a.raw)
	}
	if f, _ := a.body["file"].(map[string]any); f["name"] != "zstat1.nii.gz" || f["sha256"] != sha || f["bytes"] != float64(len(file)) {
		t.Errorf("file %v", a.body["file"])
	}
	if o, ok := b.blobs.objects["results/"+jobs.UploadObject(sha)]; !ok || !bytes.Equal(o.Data, file) {
		t.Fatalf("the upload is not stored under its hash")
	}
	msgs := b.q.Messages()
	if len(msgs) != 1 || msgs[0].Kind != jobs.KindDecoding || msgs[0].Upload != sha || msgs[0].ID != id || msgs[0].Text != "" {
		t.Fatalf("jobs %+v", msgs)
	}

	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "again.nii.gz")
	fw.Write(file)
	mw.Close()
	a = b.upload(t, "/api/v1/decodings", mw.FormDataContentType(), form.Bytes(), nil)
	if a.status != http.StatusAccepted || a.body["id"] != id {
		t.Fatalf("the same file in a form: %d %s", a.status, a.raw)
	}
	if n := len(b.q.Messages()); n != 1 {
		t.Errorf("%d jobs after the same file twice, want 1", n)
	}

	res := &jobs.Result{RelatedTerms: []jobs.Term{{Term: "face", Weight: 0.31}}, MapObject: "m.nii.gz", PreviewObject: "m.png"}
	if _, err := b.predict.Complete(context.Background(), id, res); err != nil {
		t.Fatal(err)
	}
	a = b.get(t, "/api/v1/decodings/"+id)
	terms, _ := a.body["related_terms"].([]any)
	if a.status != http.StatusOK || len(terms) != 1 || terms[0].(map[string]any)["score"] != 0.31 ||
		a.body["map_url"] != "/api/v1/decodings/"+id+"/map.nii.gz" {
		t.Fatalf("the done decoding: %d %s", a.status, a.raw)
	}
	a = b.upload(t, "/api/v1/decodings", "", file, nil)
	if a.status != http.StatusOK || a.body["hits"] != float64(1) {
		t.Errorf("the same file once done: %d %s, want the cached result with its first hit", a.status, a.raw)
	}
	if a := b.get(t, "/api/v1/maps/"+id); a.status != http.StatusNotFound {
		t.Errorf("a decoding under /api/v1/maps: %d", a.status)
	}
	if a := b.get(t, "/api/v1/maps/"+id+"/map.nii.gz"); a.status != http.StatusNotFound {
		t.Errorf("a decoding's file under /api/v1/maps: %d", a.status)
	}
	mapID := b.get(t, "/api/v1/maps?q=faces").body["id"].(string)
	if a := b.get(t, "/api/v1/decodings/"+mapID); a.status != http.StatusNotFound {
		t.Errorf("a map under /api/v1/decodings: %d", a.status)
	}
}

// A file that cannot be decoded is refused at once with its reason, and nothing is stored or
// published.
func TestBadUploads(t *testing.T) {
	m := testMask(t)
	good := mapFile(t, m, 0, -60, 30)
	set16 := func(off int, v int16) func([]byte) {
		return func(raw []byte) { binary.LittleEndian.PutUint16(raw[off:], uint16(v)) }
	}
	zeros := make([]float32, m.Len())
	var zeroFile bytes.Buffer
	brain.WriteMap(&zeroFile, m, zeros, "zeros")
	constant := make([]float32, m.Len())
	for i := range constant {
		constant[i] = 2
	}
	var constFile bytes.Buffer
	brain.WriteMap(&constFile, m, constant, "constant")
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"empty", nil, 400, "invalid_upload"},
		{"not NIfTI", []byte("hello, this is a text file and no brain map"), 400, "invalid_nifti"},
		{"corrupt gzip", append([]byte{0x1f, 0x8b}, bytes.Repeat([]byte{7}, 100)...), 400, "invalid_nifti"},
		{"truncated gzip", good[:len(good)/2], 400, "invalid_nifti"},
		{"truncated raw data", patched(t, good, func([]byte) {})[:5000], 400, "invalid_nifti"},
		{"no spatial transform", patched(t, good, func(raw []byte) { set16(252, 0)(raw); set16(254, 0)(raw) }), 422, "no_transform"},
		{"2D", patched(t, good, func(raw []byte) { set16(40, 2)(raw); set16(46, 1)(raw) }), 422, "not_a_volume"},
		{"all zero", zeroFile.Bytes(), 422, "empty_map"},
		{"constant", constFile.Bytes(), 422, "empty_map"},
		{"outside the brain", patched(t, good, func(raw []byte) {
			binary.LittleEndian.PutUint32(raw[292:], math.Float32bits(5000)) // srow_x's offset
			set16(252, 0)(raw)                                               // the sform alone
		}), 422, "outside_brain"},
		{"too large", make([]byte, MaxUploadBytes+1), 413, "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := decodingBackends(t)
			a := b.upload(t, "/api/v1/decodings", "application/octet-stream", tc.body, nil)
			if a.status != tc.status || errCode(a.body) != tc.code || errMessage(a.body) == "" {
				t.Fatalf("%d %.300s, want %d %s", a.status, a.raw, tc.status, tc.code)
			}
			if n := len(b.blobs.objects); n != 0 {
				t.Errorf("%d objects stored", n)
			}
			if n := len(b.q.Messages()); n != 0 {
				t.Errorf("%d jobs published", n)
			}
		})
	}
	// Without a mask (a server that was not given one), decodings are refused, not crashed on.
	b := newBackends(t)
	if a := b.upload(t, "/api/v1/decodings", "", good, nil); a.status != http.StatusServiceUnavailable {
		t.Errorf("no mask: %d %s", a.status, a.raw)
	}
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	return v
}
