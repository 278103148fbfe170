package queryapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/text2brain/text2brain/functions/internal/model/bundle/manifest"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
)

// resultCache keeps finished documents in the instance's memory, the most recently used
// T2B_CACHE_ENTRIES of them, so that a cached query, a poll of a finished map and its files'
// routes are answered without a Firestore read. A finished document never changes (its id is a
// hash of the model version and the normalised text, or of the uploaded file), so an entry never
// goes stale; only its hit count moves, and that is counted in memory (hitCounter). Pending and
// failed documents are never kept: they change (a failed one may be retried).
//
// Each entry also keeps its answer's JSON, encoded once, in the parts that do not depend on the
// request: a cached answer only copies them around the text as sent, its spans and the hit count.
type resultCache struct {
	lru *lru.Cache[string, *cachedDoc]
}

// newResultCache is a cache of n entries, nil (no cache: every method does nothing) for n ≤ 0.
func newResultCache(n int) *resultCache {
	if n <= 0 {
		return nil
	}
	c, err := lru.New[string, *cachedDoc](n)
	if err != nil {
		panic(err) // only for n ≤ 0
	}
	return &resultCache{lru: c}
}

// get is the entry of id, nil when it is not cached.
func (c *resultCache) get(id string) *cachedDoc {
	if c == nil {
		return nil
	}
	e, _ := c.lru.Get(id)
	return e
}

// peek is get without making the entry the most recently used.
func (c *resultCache) peek(id string) *cachedDoc {
	if c == nil {
		return nil
	}
	e, _ := c.lru.Peek(id)
	return e
}

// add keeps e unless its id is cached already, and returns the entry that is kept.
func (c *resultCache) add(e *cachedDoc) *cachedDoc {
	if c == nil {
		return e
	}
	if prev, ok, _ := c.lru.PeekOrAdd(e.doc.ID, e); ok {
		return prev
	}
	return e
}

func (c *resultCache) len() int {
	if c == nil {
		return 0
	}
	return c.lru.Len()
}

// cacheable reports whether a document may be kept: finished, with its result.
func cacheable(d *jobs.Doc) bool { return d != nil && d.Status == jobs.Done && d.Result != nil }

// cachedDoc is a finished document and its answer, encoded.
type cachedDoc struct {
	// doc is the document without its result's lists (terms, articles, peaks: they are in the
	// encoded answer, and would double the entry's size), shared by every request that reads the
	// entry: never changed.
	doc *jobs.Doc
	// mappable is set for a map whose normalised text passes lookup's checks (known terms, one
	// at least with a brain map), as every map made by a query does.
	mappable bool
	// base is the document's hit total as last read from Firestore (noBase while unknown); the
	// answers add this instance's unflushed hits (hitCounter). baseTried is when a read of it last
	// failed (UnixNano), so that a Firestore outage costs one read per entry per flush interval.
	base      atomic.Int64
	baseTried atomic.Int64

	// A map's answer is head + query part + tail + [,"hits":N] + end, where the query part is
	// the JSON of the text as sent, the fields between, and the JSON of its spans:
	//   head  {"id":…,"query":
	//   mid   ,"normalized_query":…,"recognized_terms":[…],"recognized_spans":
	//   tail  ,"related_terms":…,"surface_url":…
	//   end   ,"created_at":…,"compute_ms":…}\n
	// A decoding's is head + [,"hits":N] + end (mid, tail and the query parts are empty).
	head, mid, tail, end []byte
	// stored is the query part of the text stored with the document (the poll's);
	// last, that of the text of the latest ?q= that differed from it.
	stored []byte
	last   atomic.Pointer[queryPart]
}

type queryPart struct {
	text string
	json []byte
}

// noBase marks a hit total not read yet: totals are never negative.
const noBase = -1

// errLayout is an encoding whose fields are not where the cache splits it: a field was added or
// moved in Result or Decoding without the cache's layout following. The document is then served
// without the cache, as before.
var errLayout = errors.New("queryapi: unexpected layout of an encoded answer")

// newCachedDoc encodes a finished document's answer in its parts.
func (s *Server) newCachedDoc(d *jobs.Doc) (*cachedDoc, error) {
	slim, res := *d, *d.Result
	res.RecognizedTerms, res.RelatedTerms, res.RelatedArticles, res.Peaks = nil, nil, nil, nil
	slim.Result = &res
	e := &cachedDoc{doc: &slim}
	e.base.Store(noBase)
	if d.Kind == jobs.KindDecoding {
		b := encodeJSON(s.decoding(d, nil))
		at := bytes.LastIndex(b, []byte(`,"created_at":`))
		if at < 0 {
			return nil, errLayout
		}
		e.head, e.end = b[:at:at], b[at:]
		return e, nil
	}
	terms := s.feat.Terms(d.NormalizedQuery)
	unmapped := s.models[0].unmapped
	if m := s.modelOfVersion(d.ModelVersion); m != nil {
		unmapped = m.unmapped
	}
	e.mappable = len(terms) > 0 && !manifest.NoneMapped(terms, unmapped)
	b := encodeJSON(s.result(d, "", nil))
	q := bytes.Index(b, []byte(`,"query":""`))
	sp := bytes.Index(b, []byte(`,"recognized_spans":[]`))
	at := bytes.LastIndex(b, []byte(`,"created_at":`))
	if q < 0 || sp < q || at < sp {
		return nil, errLayout
	}
	q += len(`,"query":`)
	e.head = b[:q:q]
	e.mid = b[q+len(`""`) : sp+len(`,"recognized_spans":`) : sp+len(`,"recognized_spans":`)]
	e.tail = b[sp+len(`,"recognized_spans":[]`) : at : at]
	e.end = b[at:]
	e.stored = s.queryPart(e, d.Query)
	return e, nil
}

// queryPart encodes the part of a map's answer that depends on the text as sent.
func (s *Server) queryPart(e *cachedDoc, text string) []byte {
	b := appendJSON(nil, text)
	b = append(b, e.mid...)
	return appendJSON(b, s.spans(text))
}

// partFor is the query part of text, encoded at most once in a row for the same text.
func (s *Server) partFor(e *cachedDoc, text string) []byte {
	if text == e.doc.Query {
		return e.stored
	}
	if p := e.last.Load(); p != nil && p.text == text {
		return p.json
	}
	b := s.queryPart(e, text)
	e.last.Store(&queryPart{text: text, json: b})
	return b
}

// bodies recycles the buffers of cached answers.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// writeCached answers 200 with a cached document, exactly as respond (or respondDecoding) would
// with its document: text is the query as sent (a map's), hits the count to show (nil: none).
func (s *Server) writeCached(w http.ResponseWriter, e *cachedDoc, text, cache string, hits *int64) {
	bp := bodies.Get().(*[]byte)
	b := append((*bp)[:0], e.head...)
	if e.doc.Kind != jobs.KindDecoding {
		b = append(b, s.partFor(e, text)...)
		b = append(b, e.tail...)
	}
	if hits != nil {
		b = append(b, `,"hits":`...)
		b = strconv.AppendInt(b, *hits, 10)
	}
	b = append(b, e.end...)
	h := w.Header()
	h.Set("Cache-Control", cache)
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 { // a huge query's buffer is not kept
		*bp = b
		bodies.Put(bp)
	}
}

// remember caches a finished document, and returns its entry: nil when it is not cacheable, the
// cache is off or its answer could not be split; the entry already cached when there is one.
func (s *Server) remember(d *jobs.Doc) *cachedDoc {
	if s.cache == nil || !cacheable(d) {
		return nil
	}
	if e := s.cache.peek(d.ID); e != nil {
		return e
	}
	e, err := s.newCachedDoc(d)
	if err != nil {
		return nil
	}
	s.pending.finished(d.ID)
	return s.cache.add(e)
}

// encodeJSON is v as writeJSON writes it, newline included.
func encodeJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // the API's types always encode
	}
	return b.Bytes()
}

// appendJSON appends v's JSON, as writeJSON writes it, without the newline.
func appendJSON(dst []byte, v any) []byte {
	b := encodeJSON(v)
	return append(dst, b[:len(b)-1]...)
}
