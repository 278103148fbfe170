package model

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

// The model draws previews through one brain.Previewer, which keeps the template's slices: what
// it writes, for a prediction and for a decoding, concurrently too, is what a fresh
// brain.RenderPreview draws.
func TestWritePreview(t *testing.T) {
	m := open(t)
	results := []*Result{predict(t, "faces"), predict(t, "working memory")}
	if m.b.Decoder != nil {
		var nii bytes.Buffer
		if err := m.WriteNIfTI(&nii, results[0]); err != nil {
			t.Fatal(err)
		}
		vol, err := brain.ReadNIfTI(&nii)
		if err != nil {
			t.Fatal(err)
		}
		d, err := m.Decode(context.Background(), vol, "upload.nii.gz")
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, d)
	}
	want := make([][]byte, len(results))
	for i, r := range results {
		var buf bytes.Buffer
		if err := brain.RenderPreview(&buf, m.b.Template, m.b.Mask, r.Map, r.Peaks[0].MNI,
			brain.PreviewOptions{Threshold: r.previewThreshold(), Title: r.Query}); err != nil {
			t.Fatal(err)
		}
		want[i] = buf.Bytes()
	}
	var wg sync.WaitGroup
	for range 2 {
		for i, r := range results {
			wg.Go(func() {
				var buf bytes.Buffer
				if err := m.WritePreview(&buf, r); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(buf.Bytes(), want[i]) {
					t.Errorf("preview of %q differs from RenderPreview's", r.Query)
				}
			})
		}
	}
	wg.Wait()
}
