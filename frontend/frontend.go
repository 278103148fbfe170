// Package frontend is the web page. It is embedded in the Query function, which serves it at /
// next to the API, so that the page and the API it calls are one origin and one deployment.
//
// The page is built (`make frontend`: Vite, then the viewer's assets) into dist/site, which git
// does not hold; a fresh clone still compiles, and serves placeholder.html until it is built.
package frontend

import (
	"embed"
	"io/fs"
	"testing/fstest"
)

//go:embed all:dist
var dist embed.FS

//go:embed placeholder.html
var placeholder []byte

// Site is the built page (dist/site), or, when it has not been built, a file system whose
// index.html says how to build it.
func Site() fs.FS { return siteOf(dist) }

// Built reports whether Site is the built page.
func Built() bool { return built(dist) }

func siteOf(embedded fs.FS) fs.FS {
	if built(embedded) {
		if site, err := fs.Sub(embedded, "dist/site"); err == nil {
			return site
		}
	}
	return fstest.MapFS{"index.html": &fstest.MapFile{Data: placeholder, Mode: 0o444}}
}

func built(embedded fs.FS) bool {
	_, err := fs.Stat(embedded, "dist/site/index.html")
	return err == nil
}
