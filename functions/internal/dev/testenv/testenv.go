// Package testenv finds what the tests need outside the repository: the shared data, the built model
// bundle and the ONNX Runtime library. `make test` provides all three and names them in the
// environment; a plain `go test` falls back to their places relative to the repository root. A
// missing one fails the test with what to run, never skips it.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

func find(t testing.TB, env, fallback, what string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(Root(), fallback)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found at %s: run the tests with `make test`, which prepares it, or set %s", what, p, env)
	}
	return p
}

// DataDir is the shared data directory (neuroquery_model/, neuroquery_corpus/, neurosynth/, templates/).
func DataDir(t testing.TB) string {
	return find(t, "TEXT2BRAIN_DATA", filepath.Join("..", "shared", "data"), "shared data")
}

// Data is a path inside the shared data directory.
func Data(t testing.TB, rel ...string) string {
	return filepath.Join(append([]string{DataDir(t)}, rel...)...)
}

// BundleDir is the model bundle built by `make model`. (The names here repeat bundle.DirEnv and
// model.DefaultORTLibrary: importing those packages would make a cycle with their own tests.)
func BundleDir(t testing.TB) string {
	return find(t, "TEXT2BRAIN_MODEL", filepath.Join("build", "model"), "model bundle")
}

// ORTLibrary is libonnxruntime.so, fetched by `make ort`.
func ORTLibrary(t testing.TB) string {
	return find(t, "ONNXRUNTIME_LIB", filepath.Join(".cache", "onnxruntime", "libonnxruntime.so"), "ONNX Runtime library")
}

// NeuralBundleDir is the bundle of the tiny network `make model-neural-tiny` trains and builds (a
// Text2Brain-style network on a few hundred articles), which the tests serve beside the NeuroQuery
// bundle.
func NeuralBundleDir(t testing.TB) string {
	return find(t, "TEXT2BRAIN_MODEL_NEURAL", filepath.Join("build", "model-neural-tiny"), "tiny neural bundle")
}
