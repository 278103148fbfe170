package queryapi

import (
	_ "embed"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// OpenAPI is the API's description, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// ContentSecurityPolicy is the page's policy: everything from the site itself, no inline script
// or style, no plug-ins, no framing. NiiVue decodes images from data: and blob: URLs.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// siteHandler serves the built page: files of static by path, with the gzip copy (name + ".gz")
// that the build made when the client takes gzip, and cache lifetimes by kind: Vite's hashed
// assets for ever, the template and meshes for a day, the page itself for five minutes (a
// deployment changes it, and it must match the API it calls).
func siteHandler(static fs.FS) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name == "" {
			name = "index.html"
		}
		fi, err := fs.Stat(static, name)
		if err != nil || fi.IsDir() || strings.HasSuffix(name, ".gz") && !strings.HasSuffix(name, ".nii.gz") {
			pageNotFound(w, r)
			return
		}
		h := w.Header()
		setPageHeaders(h)
		switch {
		case strings.HasPrefix(name, "assets/"):
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		case strings.HasPrefix(name, "brain/"):
			h.Set("Cache-Control", "public, max-age=86400")
		default:
			h.Set("Cache-Control", "public, max-age=300")
		}
		ctype := mime.TypeByExtension(path.Ext(name))
		switch {
		case strings.HasSuffix(name, ".nii.gz"):
			// A gzip file in its own right: NiiVue inflates it, the browser must not.
			ctype = "application/gzip"
		case ctype == "":
			ctype = "application/octet-stream"
		}
		h.Set("Content-Type", ctype)
		h.Add("Vary", "Accept-Encoding")
		gz := name + ".gz"
		if _, err := fs.Stat(static, gz); err == nil && acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			serveFile(w, r, static, gz)
			return
		}
		serveFile(w, r, static, name)
	}
}

// setPageHeaders sets the page's security headers, on top of those of every answer.
func setPageHeaders(h http.Header) {
	SecurityHeaders(h)
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// notFoundPage is the page of a path outside the API that has nothing: a person followed a link
// or typed it, and a browser shows HTML. (The API's 404s are JSON.)
const notFoundPage = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Not found · text2brain</title>
<h1>Not found</h1>
<p>There is nothing at <code>%s</code>.</p>
<p><a href="/">Search brain maps</a>, or see <a href="/openapi.yaml">the API</a>.</p>
</html>
`

func pageNotFound(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	setPageHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintf(w, notFoundPage, html.EscapeString(r.URL.Path))
}

func serveFile(w http.ResponseWriter, r *http.Request, static fs.FS, name string) {
	f, err := static.Open(name)
	if err != nil {
		pageNotFound(w, r)
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	}
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, f); err != nil {
		slog.WarnContext(r.Context(), "serving a page file", "name", name, "err", err)
	}
}

// acceptsGzip reports whether the request's Accept-Encoding takes gzip (q=0 refuses it).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.TrimSpace(coding) != "*" {
			continue
		}
		if q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false
			}
		}
		return true
	}
	return false
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Browsers download application/yaml; a person following the page's link wants to read it.
	ctype := "application/yaml; charset=utf-8"
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		ctype = "text/plain; charset=utf-8"
	}
	h.Set("Content-Type", ctype)
	h.Add("Vary", "Accept")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Content-Length", strconv.Itoa(len(OpenAPI)))
	if _, err := w.Write(OpenAPI); err != nil {
		slog.WarnContext(r.Context(), "writing openapi.yaml", "err", err)
	}
}
