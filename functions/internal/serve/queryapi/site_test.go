package queryapi

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSiteHandler(t *testing.T) {
	const js = "console.log('text2brain')"
	site := fstest.MapFS{
		"index.html":                     {Data: []byte("<!doctype html><html>page</html>")},
		"assets/index-abc123.js":         {Data: []byte(js)},
		"assets/index-abc123.js.gz":      {Data: gz(t, js)},
		"brain/mni152_2mm.nii.gz":        {Data: gz(t, "nifti")},
		"brain/fsaverage5/pial_left.gii": {Data: []byte("<GIFTI/>")},
	}
	h := siteHandler(site)
	get := func(target, encoding string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", target, nil)
		if encoding != "" {
			req.Header.Set("Accept-Encoding", encoding)
		}
		h(rec, req)
		return rec
	}

	rec := get("/", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "page") || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}

	// The gzip copy goes to clients that take gzip, the plain file to the others.
	rec = get("/assets/index-abc123.js", "br, gzip;q=0.8")
	if rec.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Fatalf("hashed asset: headers %v", rec.Header())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(zr); string(body) != js {
		t.Errorf("gzip body inflates to %q", body)
	}
	for _, enc := range []string{"", "gzip;q=0", "identity"} {
		rec = get("/assets/index-abc123.js", enc)
		if rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != js {
			t.Errorf("Accept-Encoding %q: encoding %q body %q", enc, rec.Header().Get("Content-Encoding"), rec.Body)
		}
	}
	if ct := rec.Header().Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Errorf("JavaScript served as %q", ct)
	}

	// A NIfTI file is gzip in its own right: never a Content-Encoding, which would make the
	// browser inflate it.
	rec = get("/brain/mni152_2mm.nii.gz", "gzip")
	if rec.Header().Get("Content-Encoding") != "" || rec.Header().Get("Content-Type") != "application/gzip" || rec.Header().Get("Cache-Control") != "public, max-age=86400" {
		t.Errorf("template headers %v", rec.Header())
	}

	// Missing files, directories and the gzip copies themselves are a small HTML page: a person
	// followed a link. The path is shown escaped.
	for _, target := range []string{"/nope", "/assets", "/assets/index-abc123.js.gz", "/../index.html/x", "/%3Cscript%3E"} {
		rec = get(target, "gzip")
		body := rec.Body.String()
		if rec.Code != 404 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
			!strings.Contains(body, "There is nothing at") || strings.Contains(body, "<script>") {
			t.Errorf("GET %s: %d %v %s", target, rec.Code, rec.Header(), body)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); csp != ContentSecurityPolicy || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", target, rec.Header())
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{"": false, "gzip": true, "GZIP": true, "deflate, gzip": true, "gzip;q=0": false,
		"gzip; q=0.5": true, "br": false, "*": true, "identity": false} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", header)
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: %v, want %v", header, got, want)
		}
	}
}

func TestOpenAPIIsServed(t *testing.T) {
	h := newValidationServer(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.yaml", nil))
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), OpenAPI) || !strings.HasPrefix(rec.Body.String(), "openapi: 3") ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "application/yaml") {
		t.Errorf("GET /openapi.yaml: %d %v %.40q", rec.Code, rec.Header(), rec.Body)
	}
	// A browser following the page's link shows it instead of downloading it.
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/openapi.yaml", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	h.ServeHTTP(rec, req)
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("GET /openapi.yaml from a browser: %v", rec.Header())
	}
}
