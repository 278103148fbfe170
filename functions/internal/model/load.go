package model

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/text2brain/text2brain/functions/internal/model/bundle"
)

// Load makes the model of a bundle being loaded (bundle.Start, bundle.StartFS): ONNX Runtime is
// loaded, and the session opened on the graph as soon as the graph is verified, while the bundle's
// other files are still read and parsed. The session runs the graph once before Load returns, so
// that the first prediction does not pay for ONNX Runtime's first run. A bundle that does not load
// gives its error, as bundle.Load does, whatever ONNX Runtime would have said; the runtime's errors
// come after.
func Load(l *bundle.Loading, opt Options) (*Model, error) {
	ortErr := make(chan error, 1)
	go func() { ortErr <- initORT(opt.ORTLibrary) }()
	var session *ort.DynamicAdvancedSession
	var serr error
	if onnx, man, ok := l.Graph(); ok {
		if serr = <-ortErr; serr == nil {
			session, serr = newSession(onnx, man)
		}
	}
	b, err := l.Wait()
	switch {
	case err != nil:
		if session != nil {
			session.Destroy()
		}
		return nil, err
	case serr != nil:
		return nil, serr
	case session == nil:
		return nil, errors.New("model: the bundle loaded without its graph")
	}
	return newModel(b, session)
}

// newSession opens an ONNX Runtime session on a bundle's graph and runs it once on a zero input of
// the manifest's shape: ONNX Runtime allocates much of what a run needs on the first one, and a
// graph that cannot run on the tensors its manifest promises is refused here, not by every job.
func newSession(onnx []byte, man bundle.Manifest) (*ort.DynamicAdvancedSession, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("model: ONNX Runtime session options: %w", err)
	}
	defer so.Destroy()
	// MatMul would pre-pack its constant weights when the session opens: ~40 ms of the first
	// session of a process (95 → 55 ms measured), to make a prediction's single-row products
	// ~0.15 ms faster (Infer ~1.0 → 1.2 ms without, of a ~6 ms BenchmarkPredict).
	if err := so.AddSessionConfigEntry("session.disable_prepacking", "1"); err != nil {
		return nil, fmt.Errorf("model: ONNX Runtime session options: %w", err)
	}
	// No spinning: ONNX Runtime's pool (a thread per core) spun between runs, half of Predict's
	// CPU time in BenchmarkHandle's profile, taking the cores that concurrent jobs' encoding and
	// the instance's requests need. Its threads still share one run (a run alone is faster so).
	if err := errors.Join(so.SetInterOpNumThreads(1),
		so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"),
		so.AddSessionConfigEntry("session.inter_op.allow_spinning", "0")); err != nil {
		return nil, fmt.Errorf("model: ONNX Runtime session options: %w", err)
	}
	session, err := ort.NewDynamicAdvancedSessionWithONNXData(onnx,
		[]string{bundle.InputName}, []string{bundle.OutputZ, bundle.OutputSmooth}, so)
	if err != nil {
		return nil, fmt.Errorf("model: ONNX Runtime cannot open %s: %w; rebuild the bundle", bundle.ModelFile, err)
	}
	if err := warmUp(session, man); err != nil {
		session.Destroy()
		return nil, fmt.Errorf("model: ONNX Runtime cannot run %s on the tensors of its manifest: %w; rebuild the bundle", bundle.ModelFile, err)
	}
	return session, nil
}

// maxWarmUpValues bounds the tensors a manifest can make the warm-up allocate (the real ones have
// tens of thousands of values): a manifest that promises more is refused by the bundle's checks
// anyway, and gets no warm-up.
const maxWarmUpValues = 1 << 24

// warmUp runs the graph once on zeros, the shapes those of the manifest. A manifest whose shapes
// are not one row each is left to the bundle's checks, which refuse it.
func warmUp(session *ort.DynamicAdvancedSession, man bundle.Manifest) error {
	row := func(s bundle.TensorSpec) (int64, bool) {
		if len(s.Shape) != 2 || s.Shape[0] != 1 || s.Shape[1] <= 0 || s.Shape[1] > maxWarmUpValues || s.Type != "float32" {
			return 0, false
		}
		return s.Shape[1], true
	}
	nIn, ok := row(man.Input)
	if !ok || len(man.Outputs) != 2 {
		return nil
	}
	nZ, okZ := row(man.Outputs[0])
	nS, okS := row(man.Outputs[1])
	if !okZ || !okS {
		return nil
	}
	input, err := ort.NewTensor(ort.NewShape(1, nIn), make([]float32, nIn))
	if err != nil {
		return err
	}
	defer input.Destroy()
	z, err := ort.NewEmptyTensor[float32](ort.NewShape(1, nZ))
	if err != nil {
		return err
	}
	defer z.Destroy()
	smoothed, err := ort.NewEmptyTensor[float32](ort.NewShape(1, nS))
	if err != nil {
		return err
	}
	defer smoothed.Destroy()
	return session.Run([]ort.Value{input}, []ort.Value{z, smoothed})
}
