package model

import (
	"errors"
	"fmt"
	"os"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ORTLibraryEnv names the environment variable that points at libonnxruntime.so.
const ORTLibraryEnv = "ONNXRUNTIME_LIB"

// DefaultORTLibrary is where `make ort` puts the library, relative to the repository root.
const DefaultORTLibrary = ".cache/onnxruntime/libonnxruntime.so"

// ORTVersion is the ONNX Runtime release whose C API the pinned onnxruntime_go speaks
// (its header's ORT_API_VERSION 24); newer releases work too.
const ORTVersion = "1.24"

// The ONNX Runtime environment is process-wide: onnxruntime_go keeps it in a global.
var (
	ortMu   sync.Mutex
	ortPath string
)

// ORTLoaded reports whether this process has loaded ONNX Runtime, and from where.
func ORTLoaded() (string, bool) {
	ortMu.Lock()
	defer ortMu.Unlock()
	return ortPath, ort.IsInitialized()
}

// initORT loads the ONNX Runtime shared library once per process.
func initORT(path string) error {
	ortMu.Lock()
	defer ortMu.Unlock()
	if ort.IsInitialized() {
		if path != ortPath {
			return fmt.Errorf("model: ONNX Runtime is already loaded from %s, cannot load %s too", ortPath, path)
		}
		return nil
	}
	if path == "" {
		return errors.New("model: no ONNX Runtime library given: set " + ORTLibraryEnv +
			" to libonnxruntime.so (`make ort` fetches ONNX Runtime " + ORTVersion + " into .cache/onnxruntime)")
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("model: ONNX Runtime library %s not found: run `make ort` (fetches ONNX Runtime %s into .cache/onnxruntime) or set %s",
			path, ORTVersion, ORTLibraryEnv)
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("model: loading ONNX Runtime from %s: %w (this program needs ONNX Runtime %s or newer)", path, err, ORTVersion)
	}
	ortPath = path
	return nil
}
