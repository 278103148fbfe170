package queryapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/text2brain/text2brain/functions/internal/cloud/store"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs/jobstest"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// storeCalls is how many calls of each kind the store had.
func storeCalls(st *jobstest.Store) map[jobstest.Op]int {
	out := map[jobstest.Op]int{}
	for _, op := range []jobstest.Op{jobstest.OpGet, jobstest.OpCreate, jobstest.OpTransact, jobstest.OpCountPrediction,
		jobstest.OpWait, jobstest.OpAddHits, jobstest.OpHits, jobstest.OpAddFeedback} {
		if n := st.Calls(op); n > 0 {
			out[op] = n
		}
	}
	return out
}

// storedHits is the hit total in the store.
func storedHits(t *testing.T, st *jobstest.Store, id string) int64 {
	t.Helper()
	n, err := st.Hits(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// richResult is a result of the model's size: 10 related terms, articles and peaks.
func richResult(id string, surface bool) *jobs.Result {
	r := &jobs.Result{RecognizedTerms: []string{"face", "face recognition"}, ComputeMS: 812.5,
		MapObject: "maps/v/" + id + ".nii.gz", PreviewObject: "maps/v/" + id + ".png"}
	if surface {
		r.SurfaceObject = "maps/v/" + id + ".surface.json.gz"
	}
	for i := range 10 {
		r.RelatedTerms = append(r.RelatedTerms, jobs.Term{Term: fmt.Sprintf("related term %d", i), Weight: 0.9 / float64(i+1)})
		r.RelatedArticles = append(r.RelatedArticles, jobs.Article{PMID: 20000000 + int64(i),
			Title:   fmt.Sprintf("Neural correlates of face perception & recognition <%d>: an fMRI study of \"holistic\" processing", i),
			Authors: "Smith J, Doe A, Müller K, García-López M, Chen W, Okafor N", Year: 2001 + i,
			Journal: "Journal of Cognitive Neuroscience", DOI: fmt.Sprintf("10.1162/jocn.2009.%05d", i),
			URL: fmt.Sprintf("https://pubmed.ncbi.nlm.nih.gov/%d/", 20000000+i), Correlation: 0.41 - float64(i)/100})
		r.Peaks = append(r.Peaks, jobs.Peak{MNI: []float64{40 - float64(i), -52, -18}, Z: 9.5 - float64(i)/3})
	}
	return r
}

// finish puts a finished map of text in the store, as Predict leaves it.
func (b *backends) finish(t testing.TB, text string, surface bool) *jobs.Doc {
	t.Helper()
	id := b.id(t, text)
	now := time.Date(2026, 5, 4, 3, 2, 1, 123456789, time.UTC)
	n, err := querytext.Normalize(text)
	if err != nil {
		t.Fatal(err)
	}
	d := &jobs.Doc{ID: id, Query: text, NormalizedQuery: n, ModelVersion: b.s.ModelVersion(), Status: jobs.Done,
		Result: richResult(id, surface), CreatedAt: now, PublishedAt: now, CompletedAt: now, Deliveries: 1, Predictions: 1}
	b.st.Put(d)
	return d
}

// A cached answer is byte for byte the answer made from the document, with the same status and
// headers: for maps (with and without a surface, with any text as sent, with and without hits)
// and for decodings.
func TestCachedAnswerIsTheSame(t *testing.T) {
	b := newBackends(t, func(c *config.Config) { c.BaseURL = "https://t2b.example/" })
	withSurface, without := b.finish(t, "Faces", true), b.finish(t, "working memory", false)
	nilLists := &jobs.Doc{ID: b.id(t, "reading"), Query: "reading", NormalizedQuery: "reading", ModelVersion: b.s.ModelVersion(),
		Status: jobs.Done, Result: &jobs.Result{MapObject: "m", PreviewObject: "p"}}
	decoding := &jobs.Doc{ID: strings.Repeat("d", 32), Kind: jobs.KindDecoding, ModelVersion: b.s.ModelVersion(), Status: jobs.Done,
		Upload: strings.Repeat("5", 64), UploadName: `zstat "1" <b>.nii.gz`, UploadBytes: 12345, Result: richResult("dec", true)}
	emptyDecoding := &jobs.Doc{ID: strings.Repeat("e", 32), Kind: jobs.KindDecoding, Status: jobs.Done, Result: &jobs.Result{}}
	zero, many := int64(0), int64(1234567)
	texts := []string{"Faces", "faces", "  FACES and <b>working</b> memory & \"more\" \u2028 \\ \t", "🧠 fa\u00adces", "faces", "Faces", ""}
	for _, d := range []*jobs.Doc{withSurface, without, nilLists, decoding, emptyDecoding} {
		e, err := b.s.newCachedDoc(d)
		if err != nil {
			t.Fatalf("%s: %v", d.ID, err)
		}
		for _, text := range texts {
			for _, hits := range []*int64{nil, &zero, &many} {
				want, got := httptest.NewRecorder(), httptest.NewRecorder()
				if d.Kind == jobs.KindDecoding {
					b.s.respondDecoding(want, d, cacheByID, hits)
				} else {
					b.s.respond(want, d, text, cacheByQuery, hits)
				}
				cache := cacheByQuery
				if d.Kind == jobs.KindDecoding {
					cache = cacheByID
				}
				b.s.writeCached(got, e, text, cache, hits)
				if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
					t.Errorf("%s, %q, hits %v:\ncached %d %s\nwant   %d %s", d.ID, text, hits, got.Code, got.Body, want.Code, want.Body)
				}
				if diff := cmp.Diff(want.Header(), got.Header()); diff != "" {
					t.Errorf("%s, %q: headers (-want +got):\n%s", d.ID, text, diff)
				}
			}
		}
	}
}

// Once a map is done and read, its answers come from memory: queries (any text of it), polls and
// its files make no store call. Its hits are still counted.
func TestCachedAnswerMakesNoStoreCall(t *testing.T) {
	b := newBackends(t)
	id := b.id(t, "faces")
	b.get(t, "/api/v1/maps?q=faces")
	b.complete(t, id)
	if a := b.get(t, "/api/v1/maps?q=faces"); a.status != 200 || a.body["hits"] != 1.0 {
		t.Fatalf("first cached query: %d %s", a.status, a.raw)
	}
	before := storeCalls(b.st)
	for i := 2; i <= 6; i++ {
		q := []string{"faces", "Faces", " FACES"}[i%3]
		if a := b.get(t, "/api/v1/maps?q="+url.QueryEscape(q)); a.status != 200 || a.body["hits"] != float64(i) || a.body["query"] != q {
			t.Fatalf("cached query %d: %d %s", i, a.status, a.raw)
		}
	}
	if a := b.get(t, "/api/v1/maps/"+id); a.status != 200 || a.body["hits"] != 6.0 || a.header.Get("Cache-Control") != cacheByID {
		t.Errorf("cached poll: %d %v %s", a.status, a.header, a.raw)
	}
	if a := b.post(t, "/api/v1/maps", `{"query": "Faces"}`); a.status != 200 || a.body["hits"] != 7.0 {
		t.Errorf("cached POST: %d %s", a.status, a.raw)
	}
	if a := b.get(t, "/api/v1/maps/"+id+"/map.nii.gz"); a.status != 200 || string(a.raw) != "nifti" {
		t.Errorf("cached document's file: %d %q", a.status, a.raw)
	}
	if diff := cmp.Diff(before, storeCalls(b.st)); diff != "" {
		t.Errorf("cached answers called the store (-before +after):\n%s", diff)
	}
	if n := storedHits(t, b.st, id); n != 0 {
		t.Errorf("%d hits stored before any flush, want 0", n)
	}
}

// A decoding once done is answered from memory too, to its poll and to the same file again.
func TestCachedDecodingMakesNoStoreCall(t *testing.T) {
	b := decodingBackends(t)
	file := mapFile(t, testMask(t), 40, -50, -20)
	a := b.upload(t, "/api/v1/decodings", "application/gzip", file, nil)
	id, _ := a.body["id"].(string)
	if _, err := b.predict.Complete(context.Background(), id, richResult(id, false)); err != nil {
		t.Fatal(err)
	}
	if a := b.get(t, "/api/v1/decodings/"+id); a.status != 200 {
		t.Fatalf("done decoding: %d %s", a.status, a.raw)
	}
	before := storeCalls(b.st)
	for i := 1; i <= 3; i++ {
		if a := b.upload(t, "/api/v1/decodings", "application/gzip", file, nil); a.status != 200 || a.body["hits"] != float64(i) {
			t.Fatalf("the same file, cached: %d %s", a.status, a.raw)
		}
	}
	if a := b.get(t, "/api/v1/decodings/"+id); a.status != 200 || a.body["hits"] != 3.0 {
		t.Errorf("cached poll: %d %s", a.status, a.raw)
	}
	if a := b.get(t, "/api/v1/maps/"+id); a.status != 404 {
		t.Errorf("a cached decoding under /api/v1/maps: %d", a.status)
	}
	if diff := cmp.Diff(before, storeCalls(b.st)); diff != "" {
		t.Errorf("cached answers called the store (-before +after):\n%s", diff)
	}
}

// Hits of many maps go to the store in one batch per flush; afterwards the counts shown are the
// stored totals (other instances' hits included) plus the hits since.
func TestHitsAreFlushedInOneBatch(t *testing.T) {
	b := newBackends(t)
	want := map[string]int64{"faces": 3, "working memory": 2, "reading": 1}
	for text, n := range want {
		b.finish(t, text, false)
		for i := range n {
			if a := b.get(t, "/api/v1/maps?q="+url.QueryEscape(text)); a.status != 200 || a.body["hits"] != float64(i+1) {
				t.Fatalf("%s, hit %d: %d %s", text, i+1, a.status, a.raw)
			}
		}
	}
	if err := b.s.flushHits(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if n := b.st.Calls(jobstest.OpAddHits); n != 1 {
		t.Errorf("%d batches written, want 1", n)
	}
	for text, n := range want {
		if got := storedHits(t, b.st, b.id(t, text)); got != n {
			t.Errorf("%s: %d hits stored, want %d", text, got, n)
		}
	}
	// Another instance's hits show once this one's next flush has read the total again.
	faces := b.id(t, "faces")
	b.st.SetHits(faces, 103)
	if a := b.get(t, "/api/v1/maps?q=faces"); a.body["hits"] != 4.0 {
		t.Errorf("before the flush: hits %v, want 4 (3 stored as last read, 1 since)", a.body["hits"])
	}
	if err := b.s.flushHits(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if a := b.get(t, "/api/v1/maps/"+faces); a.body["hits"] != 104.0 {
		t.Errorf("after the flush: hits %v, want 104", a.body["hits"])
	}
	if a := b.get(t, "/api/v1/maps?q=reading"); a.body["hits"] != 2.0 {
		t.Errorf("reading: hits %v, want 2", a.body["hits"])
	}
	if err := b.s.flushHits(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if n := b.st.Calls(jobstest.OpAddHits); n != 3 {
		t.Errorf("%d batches written in all, want 3", n)
	}
	if err := b.s.flushHits(context.Background(), true); err != nil || b.st.Calls(jobstest.OpAddHits) != 3 {
		t.Errorf("a flush with no hits wrote a batch (%v)", err)
	}
}

// The hits are written every T2B_HIT_FLUSH without being asked.
func TestHitsAreFlushedPeriodically(t *testing.T) {
	b := newBackends(t, func(c *config.Config) { c.HitFlush = 20 * time.Millisecond })
	d := b.finish(t, "faces", false)
	for range 3 {
		b.get(t, "/api/v1/maps?q=faces")
	}
	deadline := time.Now().Add(5 * time.Second)
	for storedHits(t, b.st, d.ID) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d hits stored after 5 s, want 3", storedHits(t, b.st, d.ID))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close writes the hits not written yet; hits counted after it are written by the next Close.
func TestCloseFlushes(t *testing.T) {
	b := newBackends(t)
	d := b.finish(t, "faces", false)
	for range 5 {
		b.get(t, "/api/v1/maps?q=faces")
	}
	if err := b.s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := storedHits(t, b.st, d.ID); n != 5 || b.st.Calls(jobstest.OpAddHits) != 1 {
		t.Errorf("after Close: %d hits stored in %d batches, want 5 in 1", n, b.st.Calls(jobstest.OpAddHits))
	}
	if a := b.get(t, "/api/v1/maps?q=faces"); a.status != 200 || a.body["hits"] != 6.0 {
		t.Errorf("a request after Close: %d %s", a.status, a.raw)
	}
	if err := b.s.Close(context.Background()); err != nil || storedHits(t, b.st, d.ID) != 6 {
		t.Errorf("second Close: %v, %d hits stored, want 6", err, storedHits(t, b.st, d.ID))
	}
}

// A flush that fails keeps its counts, shown meanwhile, for the next: none lost, none twice. A
// Close that fails says how many hits it could not write.
func TestFlushFailureKeepsCounts(t *testing.T) {
	b := newBackends(t)
	faces, memory := b.finish(t, "faces", false), b.finish(t, "memory", false)
	down := fmt.Errorf("%w: injected", store.ErrUnavailable)
	b.st.Inject(jobstest.OpAddHits, down)
	for range 3 {
		b.get(t, "/api/v1/maps?q=faces")
	}
	b.get(t, "/api/v1/maps?q=memory")
	if err := b.s.flushHits(context.Background(), true); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("flush with the store down: %v", err)
	}
	if a := b.get(t, "/api/v1/maps?q=faces"); a.body["hits"] != 4.0 {
		t.Errorf("after a failed flush: hits %v, want 4", a.body["hits"])
	}
	if err := b.s.flushHits(context.Background(), true); err == nil {
		t.Fatal("second flush with the store down succeeded")
	}
	b.st.Inject(jobstest.OpAddHits, nil)
	if err := b.s.flushHits(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if f, m := storedHits(t, b.st, faces.ID), storedHits(t, b.st, memory.ID); f != 4 || m != 1 {
		t.Errorf("stored hits %d and %d, want 4 and 1", f, m)
	}
	if a := b.get(t, "/api/v1/maps/"+faces.ID); a.body["hits"] != 4.0 {
		t.Errorf("after the flush: hits %v, want 4", a.body["hits"])
	}

	b.st.Inject(jobstest.OpAddHits, down)
	b.get(t, "/api/v1/maps?q=faces")
	b.get(t, "/api/v1/maps?q=memory")
	if err := b.s.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "2 hits of 2 maps not written") {
		t.Errorf("Close with the store down: %v", err)
	}
}

// The counts waiting for a flush are bounded: past max ids, a new id's hits are dropped (and
// counted, for the warning); ids already waiting still count.
func TestHitCounterIsBounded(t *testing.T) {
	c := newHitCounter(2)
	for _, id := range []string{"a", "b", "a", "c", "c", "b"} {
		c.add(id)
	}
	batch, dropped := c.take()
	if diff := cmp.Diff(map[string]int64{"a": 2, "b": 2}, batch); diff != "" || dropped != 2 {
		t.Errorf("batch (-want +got):\n%s\ndropped %d, want 2", diff, dropped)
	}
	c.add("a") // in flight: counts
	c.add("c") // two ids wait: dropped
	c.giveBack(batch)
	if n, hits := c.waiting(); n != 2 || hits != 5 {
		t.Errorf("%d ids and %d hits wait, want 2 and 5", n, hits)
	}
	batch, dropped = c.take()
	c.written(batch, nil)
	c.add("c")
	if n, hits := c.waiting(); n != 1 || hits != 1 || dropped != 1 {
		t.Errorf("after a flush: %d ids and %d hits wait (dropped %d), want 1, 1 (1)", n, hits, dropped)
	}
}

// The cache keeps T2B_CACHE_ENTRIES documents, the least recently used out first; 0 keeps none,
// and then hits are counted and flushed all the same.
func TestCacheIsBounded(t *testing.T) {
	b := newBackends(t, func(c *config.Config) { c.CacheEntries = 2 })
	for _, text := range []string{"faces", "memory", "reading"} {
		b.finish(t, text, false)
	}
	for _, text := range []string{"faces", "memory", "reading"} {
		b.get(t, "/api/v1/maps?q="+text)
	}
	if n := b.s.cache.len(); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
	gets := b.st.Calls(jobstest.OpGet)
	b.get(t, "/api/v1/maps?q=reading")
	b.get(t, "/api/v1/maps?q=memory")
	if n := b.st.Calls(jobstest.OpGet); n != gets {
		t.Errorf("the two most recent maps: %d reads, want 0", n-gets)
	}
	if a := b.get(t, "/api/v1/maps?q=faces"); a.status != 200 || a.body["hits"] != 2.0 || b.st.Calls(jobstest.OpGet) != gets+1 {
		t.Errorf("the least recent map: %d %s, %d reads; want it read again, with its 2 hits", a.status, a.raw, b.st.Calls(jobstest.OpGet)-gets)
	}

	b = newBackends(t, func(c *config.Config) { c.CacheEntries = 0 })
	d := b.finish(t, "faces", false)
	for i := 1; i <= 3; i++ {
		if a := b.get(t, "/api/v1/maps?q=faces"); a.status != 200 || a.body["hits"] != float64(i) {
			t.Fatalf("without a cache, hit %d: %d %s", i, a.status, a.raw)
		}
	}
	if n := b.st.Calls(jobstest.OpGet); n != 3 || b.s.cache.len() != 0 {
		t.Errorf("without a cache: %d reads for 3 queries, %d entries", n, b.s.cache.len())
	}
	if err := b.s.flushHits(context.Background(), true); err != nil || storedHits(t, b.st, d.ID) != 3 {
		t.Errorf("without a cache: flush %v, %d hits stored, want 3", err, storedHits(t, b.st, d.ID))
	}
	if a := b.get(t, "/api/v1/maps/"+d.ID); a.body["hits"] != 3.0 {
		t.Errorf("without a cache, after the flush: hits %v, want 3", a.body["hits"])
	}
}

// Pending and failed documents are read from the store at every request: they change.
func TestPendingAndFailedAreNotCached(t *testing.T) {
	b := newBackends(t)
	id := b.id(t, "faces")
	for range 3 {
		if a := b.get(t, "/api/v1/maps?q=faces"); a.status != http.StatusAccepted {
			t.Fatalf("pending: %d", a.status)
		}
		if a := b.get(t, "/api/v1/maps/"+id+"/map.nii.gz"); a.status != http.StatusAccepted {
			t.Fatalf("pending file: %d", a.status)
		}
	}
	if _, err := b.predict.Fail(context.Background(), id, "the job's text does not match its query"); err != nil {
		t.Fatal(err)
	}
	gets := b.st.Calls(jobstest.OpGet)
	for range 3 {
		if a := b.get(t, "/api/v1/maps?q=faces"); a.status != http.StatusUnprocessableEntity {
			t.Fatalf("failed: %d", a.status)
		}
	}
	if n := b.st.Calls(jobstest.OpGet) - gets; n < 3 || b.s.cache.len() != 0 {
		t.Errorf("a failed map: %d reads for 3 queries, %d entries; want one a query at least, and none", n, b.s.cache.len())
	}
	// A done document without its result is not kept either.
	d := b.st.Doc(id)
	d.Status, d.Error, d.Result = jobs.Done, "", nil
	b.st.Put(d)
	b.get(t, "/api/v1/maps/"+id)
	if n := b.s.cache.len(); n != 0 {
		t.Errorf("%d entries after a done document without a result", n)
	}
}

// Concurrent first reads of a map make one entry, whose hits all count.
func TestConcurrentHitsOnANewEntry(t *testing.T) {
	b := newBackends(t)
	d := b.finish(t, "faces", false)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			b.h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/maps?q=faces", nil))
			if rec.Code != 200 {
				t.Errorf("%d %s", rec.Code, rec.Body)
			}
		}()
	}
	wg.Wait()
	if a := b.get(t, "/api/v1/maps/"+d.ID); a.body["hits"] != 20.0 || b.s.cache.len() != 1 {
		t.Errorf("hits %v, %d entries; want 20 and 1", a.body["hits"], b.s.cache.len())
	}
}

// The checks of a text stay in front of the cache: a finished map of a text with no mapped term
// (made before the check existed, say), cached by a poll, is still answered 422 to ?q=.
func TestChecksStayInFrontOfTheCache(t *testing.T) {
	b := newBackends(t)
	d := b.finish(t, "abscess", false)
	if a := b.get(t, "/api/v1/maps/"+d.ID); a.status != 200 || b.s.cache.len() != 1 {
		t.Fatalf("poll: %d %s, %d entries", a.status, a.raw, b.s.cache.len())
	}
	if a := b.get(t, "/api/v1/maps?q=abscess"); a.status != http.StatusUnprocessableEntity || a.errorCode() != "no_mapped_terms" {
		t.Errorf("query of a cached map without mapped terms: %d %s", a.status, a.raw)
	}
}
