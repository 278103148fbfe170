// Package stacktest starts the local stack (package localstack) for a test binary: the functions
// built from this checkout, the bundle and ONNX Runtime that make test prepares, emulators in a
// temporary directory. The end-to-end API tests and the browser tests share it.
package stacktest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/text2brain/text2brain/functions/internal/dev/localstack"
	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
)

// Start builds the functions' binary and starts a stack on it, with env added to the functions'
// environment. Logs go to os.Stderr when E2E_LOG is set. stop stops the stack and removes its
// files.
func Start(env ...string) (stack *localstack.Stack, stop func(), err error) {
	root := testenv.Root()
	tmp, err := os.MkdirTemp("", "text2brain-stack-")
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	bin := filepath.Join(tmp, "localstack")
	build := exec.Command("go", "build", "-o", bin, "./functions/cmd/localstack")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("building the functions: %v\n%s", err, out)
	}
	bundleDir := os.Getenv("TEXT2BRAIN_MODEL")
	if bundleDir == "" {
		bundleDir = filepath.Join(root, "build", "model")
	}
	// The tiny network that make test trains is served beside the NeuroQuery model, as a
	// deployment serves its network: every stack test runs with two models.
	neuralDir := os.Getenv("TEXT2BRAIN_MODEL_NEURAL")
	if neuralDir == "" {
		neuralDir = filepath.Join(root, "build", "model-neural-tiny")
	}
	ortLib := os.Getenv("ONNXRUNTIME_LIB")
	if ortLib == "" {
		ortLib = filepath.Join(root, ".cache", "onnxruntime", "libonnxruntime.so")
	}
	var log io.Writer = io.Discard
	if os.Getenv("E2E_LOG") != "" {
		log = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack, err = localstack.Start(ctx, localstack.Options{
		DataDir: filepath.Join(tmp, "data"), BundleDir: bundleDir, MoreBundleDirs: []string{neuralDir}, ORTLibrary: ortLib,
		FunctionBinary: bin, SchedulerEvery: -1, Log: log, ExtraEnv: env,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("starting the local stack (run through `make test`, which builds the models and fetches ONNX Runtime): %w", err)
	}
	return stack, func() {
		stack.Stop()
		os.RemoveAll(tmp)
	}, nil
}
