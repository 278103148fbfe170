package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// upload posts a file to /api/v1/decodings.
func upload(t *testing.T, path string, file []byte, name string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(stack.URL, "/")+path, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-File-Name", name)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// decodeDone uploads a file and polls its decoding until it is done.
func decodeDone(t *testing.T, file []byte, name string) map[string]any {
	t.Helper()
	r := upload(t, "/api/v1/decodings?wait=10", file, name)
	deadline := time.Now().Add(60 * time.Second)
	for r.status == http.StatusAccepted && time.Now().Before(deadline) {
		r = get(t, "/api/v1/decodings/"+r.json(t)["id"].(string)+"?wait=10")
	}
	if r.status != http.StatusOK {
		t.Fatalf("decoding %s: %d %s", name, r.status, r.body)
	}
	return r.json(t)
}

func termsOf(v map[string]any) []string {
	var out []string
	for _, x := range v["related_terms"].([]any) {
		out = append(out, x.(map[string]any)["term"].(string))
	}
	return out
}

// A map downloaded from the service, uploaded again: decoded by Predict on the emulators into
// terms about faces and the studies of its map; the same file again is the cached answer of the
// one job; the decoding's map is the upload, resampled onto the same grid (so unchanged).
func TestDecodeOurOwnDownload(t *testing.T) {
	r := get(t, query("viewing faces", 10))
	if r.status != http.StatusOK {
		t.Fatalf("the query: %d %s", r.status, r.body)
	}
	dl := get(t, r.json(t)["map_url"].(string))
	if dl.status != http.StatusOK {
		t.Fatalf("the map's download: %d", dl.status)
	}
	res := decodeDone(t, dl.body, "text2brain-viewing-faces.nii.gz")
	terms := termsOf(res)
	found := false
	for _, term := range terms {
		found = found || strings.Contains(term, "face")
	}
	if !found {
		t.Errorf("the terms of a faces map: %v, want a face term among them", terms)
	}
	arts := res["related_articles"].([]any)
	if len(arts) != 10 || arts[0].(map[string]any)["correlation"].(float64) <= 0.2 {
		t.Errorf("related articles: %v", arts)
	}
	id := res["id"].(string)

	again := upload(t, "/api/v1/decodings", dl.body, "again.nii.gz")
	if again.status != http.StatusOK || again.json(t)["id"] != id {
		t.Errorf("the same file again: %d %s, want the cached decoding", again.status, again.body)
	}
	d, err := openStore(t).Get(context.Background(), id)
	if err != nil || d.Predictions != 1 {
		t.Errorf("the decoding's document: %+v, %v; want one prediction", d, err)
	}

	m := get(t, res["map_url"].(string))
	orig, err1 := brain.ReadNIfTI(bytes.NewReader(dl.body))
	back, err2 := brain.ReadNIfTI(bytes.NewReader(m.body))
	if m.status != http.StatusOK || err1 != nil || err2 != nil {
		t.Fatalf("the decoding's map: %d, %v, %v", m.status, err1, err2)
	}
	var worst float64
	for i := range orig.Data {
		worst = math.Max(worst, math.Abs(orig.Data[i]-back.Data[i]))
	}
	if worst > 1e-4 {
		t.Errorf("the round trip changed the map by up to %g", worst)
	}
	if p := get(t, res["preview_url"].(string)); p.status != http.StatusOK || p.header.Get("Content-Type") != "image/png" {
		t.Errorf("preview: %d %s", p.status, p.header.Get("Content-Type"))
	}
}

// A 2 mm upload on another grid (a blob in the left motor cortex, x flipped) is decoded with its
// peak where it is in MNI space.
func TestDecodeTwoMillimetreUpload(t *testing.T) {
	file := blobVolume(-38, -22, 56)
	res := decodeDone(t, file, "motor_2mm.nii")
	peaks := res["peaks"].([]any)
	if len(peaks) == 0 {
		t.Fatalf("no peaks: %v", res)
	}
	mni := peaks[0].(map[string]any)["mni"].([]any)
	for a, want := range []float64{-38, -22, 56} {
		if got := mni[a].(float64); math.Abs(got-want) > 4 {
			t.Errorf("peak %v, want (-38, -22, 56) within a voxel", mni)
			break
		}
	}
	if len(termsOf(res)) == 0 {
		t.Error("no terms")
	}
}

// blobVolume is a NIfTI-1 file on a 2 mm 91×109×91 grid whose x axis runs right to left
// (sform x = −2i + 90), holding a Gaussian blob (σ 6 mm) at (x, y, z) mm.
func blobVolume(x, y, z float64) []byte {
	const nx, ny, nz = 91, 109, 91
	var h [352]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], 348)
	dims := []int16{3, nx, ny, nz, 1, 1, 1, 1}
	for i, d := range dims {
		le.PutUint16(h[40+2*i:], uint16(d))
	}
	le.PutUint16(h[70:], 16) // float32
	le.PutUint16(h[72:], 32) // bits
	pix := []float32{-1, 2, 2, 2, 1, 1, 1, 1}
	for i, p := range pix {
		le.PutUint32(h[76+4*i:], math.Float32bits(p))
	}
	le.PutUint32(h[108:], math.Float32bits(352)) // vox_offset
	le.PutUint32(h[112:], math.Float32bits(1))   // scl_slope
	le.PutUint16(h[254:], 4)                     // sform_code: MNI
	srow := [3][4]float32{{-2, 0, 0, 90}, {0, 2, 0, -126}, {0, 0, 2, -72}}
	for r := range 3 {
		for c := range 4 {
			le.PutUint32(h[280+16*r+4*c:], math.Float32bits(srow[r][c]))
		}
	}
	copy(h[344:], "n+1\x00")
	out := bytes.NewBuffer(h[:])
	buf := make([]byte, 4)
	for k := 0; k < nz; k++ {
		for j := 0; j < ny; j++ {
			for i := 0; i < nx; i++ {
				dx, dy, dz := -2*float64(i)+90-x, 2*float64(j)-126-y, 2*float64(k)-72-z
				le.PutUint32(buf, math.Float32bits(float32(5*math.Exp(-(dx*dx+dy*dy+dz*dz)/72))))
				out.Write(buf)
			}
		}
	}
	return out.Bytes()
}
