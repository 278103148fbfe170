package queryapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/text2brain/text2brain/functions/internal/serve/config"
)

// The cached path's cost against the cheapest route's, through the same handler (every
// middleware) and the in-process fake store, at concurrency 50 (25 goroutines a core on the
// 2-core machine): handler/ is the handler's own cost (a request served again and again, its
// answer counted and dropped), http/ goes through a loopback HTTP server and a keep-alive client,
// as a load test of the deployed stack would. The ratio of their ns/op is the ratio of the
// routes' throughputs:
//
//	go test ./functions/internal/serve/queryapi/ -run '^$' -bench 'CachedQuery|Version' -count 5
//
// BenchmarkCachedQuery asks ?q= of a finished map of the model's size (10 related terms,
// articles and peaks: 5 kB of JSON) in the cache, as the page does, which counts a hit each time.

const benchParallelism = 25

func benchBackends(b *testing.B) *backends {
	bk := newBackends(b, func(c *config.Config) { c.Rate, c.RateBurst = 1e12, 1<<40 })
	bk.finish(b, "working memory", true)
	return bk
}

// discardWriter is a ResponseWriter that keeps the status and headers and counts the body, as a
// server's writer does before the network: a recorder's growing buffer would weigh on the larger
// answer.
type discardWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}

func benchRoute(b *testing.B, h http.Handler, target string) {
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(benchParallelism)
		b.RunParallel(func(pb *testing.PB) {
			// One request per goroutine, served again and again: parsing a new one would cost
			// more than either route (a server reads it into a reused buffer).
			req := httptest.NewRequest("GET", target, nil)
			for pb.Next() {
				w := &discardWriter{header: http.Header{}}
				h.ServeHTTP(w, req)
				if w.code != http.StatusOK || w.n == 0 {
					b.Errorf("GET %s: %d, %d bytes", target, w.code, w.n)
					return
				}
			}
		})
	})
	b.Run("http", func(b *testing.B) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		tr := &http.Transport{MaxIdleConnsPerHost: 4 * benchParallelism}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		url := srv.URL + target
		b.ReportAllocs()
		b.SetParallelism(benchParallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("GET %s: %d", target, resp.StatusCode)
					return
				}
			}
		})
	})
}

func BenchmarkCachedQuery(b *testing.B) {
	bk := benchBackends(b)
	target := "/api/v1/maps?q=working+memory"
	if a := bk.get(b, target); a.status != http.StatusOK {
		b.Fatalf("GET %s: %d %s", target, a.status, a.raw)
	}
	benchRoute(b, bk.h, target)
}

func BenchmarkVersion(b *testing.B) {
	benchRoute(b, benchBackends(b).h, "/api/v1/version")
}
