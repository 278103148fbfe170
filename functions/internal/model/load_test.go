package model

import (
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
)

// withoutFile is a bundle directory that lacks one file.
type withoutFile struct {
	fs.FS
	name string
}

func (w withoutFile) Open(name string) (fs.File, error) {
	if name == w.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return w.FS.Open(name)
}

// Load reports a broken bundle as bundle.Load does, even when its graph was fine and ONNX Runtime
// could not have run it; of a good bundle it reports ONNX Runtime's error.
func TestLoadErrors(t *testing.T) {
	open(t) // ONNX Runtime is loaded, from the test library: another cannot be
	dir := testenv.BundleDir(t)
	other := Options{ORTLibrary: "/elsewhere/libonnxruntime.so"}
	_, err := Load(bundle.StartFS(withoutFile{os.DirFS(dir), bundle.TemplateFile}, "gs://models/m"), other)
	if err == nil || err.Error() != "bundle: template.nii.gz is missing; rebuild it with `make model` (bundle gs://models/m)" {
		t.Errorf("a bundle without its template: %v", err)
	}
	_, err = Load(bundle.StartFS(withoutFile{os.DirFS(dir), bundle.ModelFile}, ""), other)
	if err == nil || err.Error() != "bundle: model.onnx is missing; rebuild it with `make model`" {
		t.Errorf("a bundle without its graph: %v", err)
	}
	_, err = Load(bundle.StartFS(os.DirFS(dir), ""), other)
	if err == nil || !strings.HasPrefix(err.Error(), "model: ONNX Runtime is already loaded from") {
		t.Errorf("another library: %v", err)
	}
}

// The session runs the graph once on the manifest's tensors when it opens: a graph that cannot is
// refused then, not by every prediction.
func TestSessionRunsTheGraph(t *testing.T) {
	m := open(t)
	man := m.Bundle().Manifest
	man.Input.Shape = slices.Clone(man.Input.Shape)
	man.Input.Shape[1]++
	man.Features++ // the contract holds (with the features output's size); ONNX Runtime refuses the graph
	man.Outputs = slices.Clone(man.Outputs)
	man.Outputs[1].Shape = man.Input.Shape
	s, err := newSession(m.Bundle().ONNX, man)
	if err == nil {
		s.Destroy()
		t.Fatal("a session ran the graph on an input of the wrong size")
	}
	if !strings.HasPrefix(err.Error(), "model: ONNX Runtime cannot run model.onnx on the tensors of its manifest: ") ||
		!strings.HasSuffix(err.Error(), "; rebuild the bundle") {
		t.Errorf("error %q", err)
	}
}
