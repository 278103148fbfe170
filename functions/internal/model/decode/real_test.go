package decode_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/dev/testenv"
	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/model/decode"
)

// The real decoder is the bundle's (`make model`), with the model that predicts the maps it is
// tested on; both are opened once for every test and benchmark.
var shared struct {
	once sync.Once
	m    *model.Model
	err  error
}

func realModel(tb testing.TB) (*model.Model, *decode.Decoder) {
	tb.Helper()
	dir, lib := testenv.BundleDir(tb), testenv.ORTLibrary(tb)
	shared.once.Do(func() { shared.m, shared.err = model.Open(dir, model.Options{ORTLibrary: lib}) })
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	d := shared.m.Bundle().Decoder
	if d == nil {
		tb.Fatalf("the bundle %s has no %s: it was built before the decoder; rebuild it with `make model`", dir, bundle.DecoderFile)
	}
	return shared.m, d
}

// A term's own predicted map must decode to that term near the top: the decoder reads maps the
// way the model writes them. (It also holds for most well-studied terms; rare ones lose to the
// frequent terms of their region, which is what the corpus's key terms reward.)
func TestOwnTermMapDecodesToTheTerm(t *testing.T) {
	m, d := realModel(t)
	for _, term := range []string{"face", "working memory", "pain", "auditory", "reward", "motor", "amygdala", "visual"} {
		t.Run(term, func(t *testing.T) {
			r, err := m.Predict(context.Background(), term)
			if err != nil {
				t.Fatal(err)
			}
			got := d.Terms(r.Map, 3)
			if !slices.ContainsFunc(got, func(x decode.Term) bool { return x.Term == term }) {
				t.Errorf("the map of %q decodes to %v, without it in the top 3", term, got)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Score > got[i-1].Score {
					t.Errorf("terms not in order of score: %v", got)
				}
			}
		})
	}
}

// The decoder in the bundle is exactly what its file says: reading and re-encoding decoder.bin
// gives its bytes, and the decoder made from the re-read data ranks as the bundle's.
func TestBundleDecoderRoundTrip(t *testing.T) {
	m, d := realModel(t)
	raw, err := os.ReadFile(filepath.Join(testenv.BundleDir(t), bundle.DecoderFile))
	if err != nil {
		t.Fatal(err)
	}
	data, err := decode.ReadData(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if _, err := data.WriteTo(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, again.Bytes()) {
		t.Error("re-encoding the bundle's decoder changed the bytes")
	}
	b := m.Bundle()
	if data.MaskLen != b.Mask.Len() || data.NFeatures != len(b.Vocabulary.Features) || data.Articles < 13000 {
		t.Errorf("decoder of %d voxels, %d terms, %d articles; want %d, %d and about 13,000",
			data.MaskLen, data.NFeatures, data.Articles, b.Mask.Len(), len(b.Vocabulary.Features))
	}
	d2, err := decode.New(data, b.Vocabulary.Features)
	if err != nil {
		t.Fatal(err)
	}
	u := b.Articles.Map(b.Mask, 0)
	if a, c := d.Terms(u, 10), d2.Terms(u, 10); !slices.Equal(a, c) {
		t.Errorf("bundle decoder %v, re-read decoder %v", a, c)
	}
}

func TestRealBadMaps(t *testing.T) {
	_, d := realModel(t)
	n := d.MaskLen()
	for name, values := range map[string][]float32{
		"zeros": make([]float32, n), "short": make([]float32, n-1), "nil": nil,
	} {
		if got := d.Terms(values, 10); got != nil {
			t.Errorf("%s: %v, want nothing", name, got)
		}
	}
}

// BenchmarkDecode times one decode of a map on the model's grid (mask order, after resampling):
// standardising it, its description, every term's score and the top 10.
func BenchmarkDecode(b *testing.B) {
	m, d := realModel(b)
	r, err := m.Predict(context.Background(), "faces")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if got := d.Terms(r.Map, 10); len(got) != 10 {
			b.Fatal(got)
		}
	}
}

// BenchmarkLoadDecoder times what the decoder adds to a bundle load, past reading and
// checksumming decoder.bin: decoding the file and making the Decoder.
func BenchmarkLoadDecoder(b *testing.B) {
	_, d := realModel(b)
	raw, err := os.ReadFile(filepath.Join(testenv.BundleDir(b), bundle.DecoderFile))
	if err != nil {
		b.Fatal(err)
	}
	terms := shared.m.Bundle().Vocabulary.Features
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		data, err := decode.ParseData(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decode.New(data, terms); err != nil {
			b.Fatal(err)
		}
	}
	_ = d
}
