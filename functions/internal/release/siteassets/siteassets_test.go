package siteassets_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/release/siteassets"
)

func TestBuild(t *testing.T) {
	site := t.TempDir()
	if _, err := siteassets.Build(testenv.Data(t, "templates"), site); err == nil || !strings.Contains(err.Error(), "npm run build") {
		t.Fatalf("a site without its page: %v", err)
	}
	js := strings.Repeat("export const brain = 'text2brain';\n", 100)
	if err := os.MkdirAll(filepath.Join(site, "assets"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<!doctype html>"), 0o644)
	os.WriteFile(filepath.Join(site, "assets", "index-1.js"), []byte(js), 0o644)
	os.WriteFile(filepath.Join(site, "assets", "logo.png"), bytes.Repeat([]byte{1}, 4096), 0o644)
	rep, err := siteassets.Build(testenv.Data(t, "templates"), site)
	if err != nil {
		t.Fatal(err)
	}

	// The 2 mm template: half the resolution, centred on the 1 mm voxels it averages.
	t1, err := brain.ReadNIfTIFile(testenv.Data(t, "templates", "mni152_t1_1mm.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	small, err := brain.ReadNIfTIFile(filepath.Join(site, "brain", siteassets.TemplateName))
	if err != nil {
		t.Fatal(err)
	}
	if small.Dims != rep.TemplateDim || small.Dims[0] != (t1.Dims[0]+1)/2 || small.Affine[0][0] != 2*t1.Affine[0][0] ||
		small.Affine[1][3] != t1.Affine[1][3]+0.5 {
		t.Errorf("2 mm template %v %v, from %v %v", small.Dims, small.Affine, t1.Dims, t1.Affine)
	}
	// Same world position, same intensity (to within the block average and the 8-bit steps).
	at := [3]float64{0, -20, 10}
	if a, b := t1.SampleMNI(at, brain.Trilinear), small.SampleMNI(at, brain.Trilinear); b < 0.7*a || b > 1.3*a {
		t.Errorf("intensity at %v: %v at 1 mm, %v at 2 mm", at, a, b)
	}

	// Every mesh, plain and as its gzip copy; the JavaScript's copy inflates to it; no copy of
	// what does not compress (PNG) or of the template (gzip already).
	for _, name := range siteassets.Meshes {
		plain, err := os.ReadFile(filepath.Join(site, "brain", "fsaverage5", name+".gii"))
		if err != nil || !bytes.Contains(plain[:200], []byte("<GIFTI")) && !bytes.Contains(plain, []byte("<GIFTI")) {
			t.Errorf("%s.gii: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(site, "brain", "fsaverage5", name+".gii.gz")); err != nil {
			t.Error(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(site, "assets", "index-1.js.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); string(got) != js {
		t.Error("the gzip copy does not inflate to the file")
	}
	for _, name := range []string{"assets/logo.png.gz", "brain/" + siteassets.TemplateName + ".gz", "index.html.gz"} {
		if _, err := os.Stat(filepath.Join(site, name)); err == nil {
			t.Errorf("%s was written", name)
		}
	}
}
