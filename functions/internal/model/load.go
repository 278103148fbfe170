package model

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/model/bundle/manifest"
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
	c, err := man.Contract()
	if err != nil {
		return nil, fmt.Errorf("model: %w; rebuild the bundle", err)
	}
	outputs := []string{c.Map.Name}
	if c.Features != nil {
		outputs = append(outputs, c.Features.Name)
	}
	session, err := ort.NewDynamicAdvancedSessionWithONNXData(onnx, []string{c.Input.Name}, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("model: ONNX Runtime cannot open %s: %w; rebuild the bundle", bundle.ModelFile, err)
	}
	if err := warmUp(session, c); err != nil {
		session.Destroy()
		return nil, fmt.Errorf("model: ONNX Runtime cannot run %s on the tensors of its manifest: %w; rebuild the bundle", bundle.ModelFile, err)
	}
	return session, nil
}

// maxWarmUpValues bounds the tensors a manifest can make the warm-up allocate (the real ones have
// tens of thousands of values): a manifest that promises more is refused by the bundle's checks
// anyway, and gets no warm-up.
const maxWarmUpValues = 1 << 24

// warmUp runs the graph once on zeros, the shapes those of the contract.
func warmUp(session *ort.DynamicAdvancedSession, c manifest.Contract) error {
	for _, t := range append([]bundle.TensorSpec{c.Input, c.Map}, features(c)...) {
		if t.Len() > maxWarmUpValues {
			return fmt.Errorf("tensor %s has %d values, more than a bundle may (%d)", t.Name, t.Len(), maxWarmUpValues)
		}
	}
	_, _, err := run(session, c, make([]float32, c.Input.Len()))
	return err
}

func features(c manifest.Contract) []bundle.TensorSpec {
	if c.Features == nil {
		return nil
	}
	return []bundle.TensorSpec{*c.Features}
}

// run runs the graph on one input row and returns its outputs' values: the map (as the graph
// gives it, mask or volume) and the features (nil when the graph has none).
func run(session *ort.DynamicAdvancedSession, c manifest.Contract, in []float32) (mapOut, feat []float32, err error) {
	input, err := ort.NewTensor(ort.NewShape(c.Input.Shape...), in)
	if err != nil {
		return nil, nil, err
	}
	defer input.Destroy()
	outs := make([]ort.Value, 0, 2)
	tensors := make([]*ort.Tensor[float32], 0, 2)
	defer func() {
		for _, t := range tensors {
			t.Destroy()
		}
	}()
	for _, spec := range append([]bundle.TensorSpec{c.Map}, features(c)...) {
		t, err := ort.NewEmptyTensor[float32](ort.NewShape(spec.Shape...))
		if err != nil {
			return nil, nil, err
		}
		tensors = append(tensors, t)
		outs = append(outs, t)
	}
	if err := session.Run([]ort.Value{input}, outs); err != nil {
		return nil, nil, err
	}
	mapOut = append([]float32(nil), tensors[0].GetData()...)
	if len(tensors) > 1 {
		feat = append([]float32(nil), tensors[1].GetData()...)
	}
	return mapOut, feat, nil
}
