package frontend

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// Before `make frontend`, the site is a page that says how to build it; after, the built page.
func TestSite(t *testing.T) {
	unbuilt := siteOf(fstest.MapFS{"dist/README.md": {Data: []byte("built here")}})
	page, err := fs.ReadFile(unbuilt, "index.html")
	if err != nil || !strings.Contains(string(page), "make frontend") {
		t.Errorf("unbuilt site: %v %q", err, page)
	}
	builtFS := siteOf(fstest.MapFS{"dist/site/index.html": {Data: []byte("<html>built</html>")}, "dist/site/assets/a.js": {Data: []byte("js")}})
	page, err = fs.ReadFile(builtFS, "index.html")
	if err != nil || string(page) != "<html>built</html>" {
		t.Errorf("built site: %v %q", err, page)
	}
	if _, err := fs.Stat(builtFS, "assets/a.js"); err != nil {
		t.Error(err)
	}
	// What this binary embeds: the README at least, the page once built.
	if _, err := fs.Stat(dist, "dist/README.md"); err != nil {
		t.Errorf("frontend/dist/README.md is not embedded: %v", err)
	}
}
