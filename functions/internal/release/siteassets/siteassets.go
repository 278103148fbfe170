// Package siteassets finishes the web page's build (`make frontend`, after Vite): it adds what the
// viewer loads from the site itself, made from the template data (a 2 mm copy of the MNI152 T1
// template, the fsaverage5 meshes and sulcal depth), and writes a gzip copy (name + ".gz") of every
// file worth compressing, which the Query function sends to browsers that take gzip.
package siteassets

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// TemplateName is the viewer's background image under the site's brain/ folder.
const TemplateName = "mni152_2mm.nii.gz"

// Meshes are the fsaverage5 files the page loads, under brain/fsaverage5/ (served as NAME.gii).
var Meshes = []string{"pial_left", "pial_right", "infl_left", "infl_right", "sulc_left", "sulc_right"}

// Report says what Build wrote.
type Report struct {
	Files       int   // files of the site, gzip copies not counted
	Bytes       int64 // their size
	Compressed  int   // gzip copies written
	TemplateDim [3]int
}

// Build writes brain/ into site (from templates: mni152_t1_1mm.nii.gz and fsaverage5/) and then
// the gzip copies of every compressible file of site.
func Build(templates, site string) (*Report, error) {
	if _, err := os.Stat(filepath.Join(site, "index.html")); err != nil {
		return nil, fmt.Errorf("site assets: %s has no index.html: build the page first (npm run build)", site)
	}
	rep := &Report{}
	dir := filepath.Join(site, "brain")
	if err := os.MkdirAll(filepath.Join(dir, "fsaverage5"), 0o755); err != nil {
		return nil, err
	}
	t1, err := brain.ReadNIfTIFile(filepath.Join(templates, "mni152_t1_1mm.nii.gz"))
	if err != nil {
		return nil, fmt.Errorf("site assets: %w", err)
	}
	small := brain.Downsample(t1, 2)
	rep.TemplateDim = small.Dims
	var buf bytes.Buffer
	if err := brain.WriteUint8(&buf, small, "MNI152 T1, 2 mm (text2brain viewer)"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, TemplateName), buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	for _, name := range Meshes {
		raw, err := os.ReadFile(filepath.Join(templates, "fsaverage5", name+".gii.gz"))
		if err != nil {
			return nil, fmt.Errorf("site assets: %w", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("site assets: %s: %w", name, err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("site assets: %s: %w", name, err)
		}
		// The template's own gzip file is the copy sent to browsers; the plain one is for the rest.
		if err := os.WriteFile(filepath.Join(dir, "fsaverage5", name+".gii"), plain, 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "fsaverage5", name+".gii.gz"), raw, 0o644); err != nil {
			return nil, err
		}
	}
	err = filepath.WalkDir(site, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".gz") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rep.Files++
		rep.Bytes += int64(len(data))
		gz := path + ".gz"
		if _, err := os.Stat(gz); err == nil || !Compressible(path) || len(data) < 1024 {
			return nil
		}
		var out bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
		zw.Write(data)
		if err := zw.Close(); err != nil {
			return err
		}
		// A copy that saves little is not worth a second file.
		if out.Len() > len(data)*9/10 {
			return nil
		}
		rep.Compressed++
		return os.WriteFile(gz, out.Bytes(), 0o644)
	})
	if err != nil {
		return nil, fmt.Errorf("site assets: %w", err)
	}
	return rep, nil
}

// Compressible reports whether a file is text-like (already compressed formats gain nothing).
func Compressible(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".html", ".js", ".mjs", ".css", ".svg", ".json", ".yaml", ".txt", ".map", ".gii", ".wasm", ".ico":
		return true
	}
	return false
}
