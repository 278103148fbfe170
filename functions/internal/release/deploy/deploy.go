// Package deploy decides what a Cloud Functions deployment uploads and packs it into the source
// archive.
//
// Cloud Functions' Go buildpack unpacks the uploaded source into a folder, builds a generated main
// package that imports the package at the root of that source (whose init() registers the functions)
// and starts the functions framework on FUNCTION_TARGET. The upload therefore has to be the module's
// go.mod and go.sum, the root package and every package it imports from this module, and, for a
// small and reproducible upload, nothing else.
//
// The rules (SourceFiles), with paths relative to the repository root:
//
//   - go.mod and go.sum (both required);
//   - the root package: the *.go files directly in the root;
//   - every *.go file anywhere under functions/, except under functions/cmd/ (command-line tools are
//     not deployed);
//   - the web page, which the Query function embeds: the *.go and *.html files directly in
//     frontend/ and everything under frontend/dist/ (the built page, `make frontend`); not the
//     page's sources, node_modules, tests or build tools;
//   - the files that Go code under functions/ embeds: the API's openapi.yaml;
//   - never a test file (*_test.go), nor anything the go tool itself ignores: directories named
//     testdata, and files and directories whose names begin with "." or "_"; nor node_modules/.
//
// Nothing else is read: no other root directory is ever walked, so terraform/, .git/ and
// make's outputs (build/, .cache/, data/) are never uploaded, and neither are non-Go files under
// functions/ (protobuf sources, data, binaries). A package that needs other files to build (cgo
// sources, another //go:embed) needs a new rule here; TestBuildpackBuild fails until it has one.
//
// The .gcloudignore at the repository root states the same rules for `gcloud functions deploy`;
// TestGcloudignore checks with gcloud that both choose the same files.
package deploy

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// modTime is the modification time of every archive entry, so that the archive depends on the
// files' contents only (1980-01-01, the start of the zip format's MS-DOS time).
var modTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// SourceFiles lists the files under root (the repository root) that a deployment uploads: relative,
// slash-separated and sorted. See the package comment for the rules.
func SourceFiles(root string) ([]string, error) {
	var files []string
	for _, name := range []string{"go.mod", "go.sum"} {
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			return nil, fmt.Errorf("deploy: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("deploy: %s is not a regular file", filepath.Join(root, name))
		}
		files = append(files, name)
	}

	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() && isGoSource(e.Name()) {
			files = append(files, e.Name())
		}
	}

	page, err := os.ReadDir(filepath.Join(root, "frontend"))
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	for _, e := range page {
		if !e.IsDir() && (isGoSource(e.Name()) || isPageFile(e.Name())) {
			files = append(files, "frontend/"+e.Name())
		}
	}
	// The built page, whole (//go:embed all:dist): dot files too.
	dist := filepath.Join(root, "frontend", "dist")
	if _, err := os.Stat(dist); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("deploy: %s is missing (it holds the built page's README.md): is %s the repository root?", dist, root)
	}
	err = filepath.WalkDir(dist, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err == nil && d.Type().IsRegular() {
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}

	functions := filepath.Join(root, "functions")
	err = filepath.WalkDir(functions, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if path != functions && (rel == "functions/cmd" || skipDir(d.Name())) {
				return filepath.SkipDir
			}
			return nil
		}
		if isGoSource(d.Name()) || embedded[rel] {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	sort.Strings(files)
	return files, nil
}

// isGoSource reports whether a file name is a non-test Go source file the go tool reads.
func isGoSource(name string) bool {
	return strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") &&
		!strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "_")
}

// embedded are the files under functions/ that Go code embeds.
var embedded = map[string]bool{"functions/internal/serve/queryapi/openapi.yaml": true}

// isPageFile reports whether a file directly in frontend/ is embedded (the placeholder page;
// index.html there is Vite's source, built into dist/).
func isPageFile(name string) bool {
	return name == "placeholder.html"
}

// skipDir reports whether a directory below functions/ is left out wherever it is.
func skipDir(name string) bool {
	return name == "testdata" || name == "node_modules" ||
		strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// WriteZip writes the source archive of the repository at root to w: the files of SourceFiles in
// that order, deflated, with fixed modification times and modes (0644), so that the same sources
// always give the same bytes (and the same object hash when Terraform or gcloud uploads it).
func WriteZip(w io.Writer, root string) error {
	files, err := SourceFiles(root)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	for _, name := range files {
		if err := addFile(zw, root, name); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	return nil
}

func addFile(zw *zip.Writer, root, name string) error {
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	defer f.Close()
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: modTime}
	h.SetMode(0o644)
	zf, err := zw.CreateHeader(h)
	if err != nil {
		return fmt.Errorf("deploy: %s: %w", name, err)
	}
	if _, err := io.Copy(zf, f); err != nil {
		return fmt.Errorf("deploy: %s: %w", name, err)
	}
	return nil
}
