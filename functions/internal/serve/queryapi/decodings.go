package queryapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/serve/jobs"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

// Limits of an uploaded map. A 1 mm float32 MNI volume (182×218×182, 29 MB uncompressed) fits;
// Cloud Run takes requests up to 32 MiB, so that is about the most a function could take anyway.
const (
	MaxUploadBytes = 30 << 20
	// maxInflated bounds what a gzip-compressed upload may inflate to: a compressed file of 30 MB
	// could otherwise inflate to gigabytes.
	maxInflated = 256 << 20
	// maxUploadName bounds the file name kept with a decoding.
	maxUploadName = 200
)

// Decoding is a finished decoding, as the API returns it.
type Decoding struct {
	ID           string      `json:"id"`
	Kind         string      `json:"kind"`
	ModelVersion string      `json:"model_version"`
	Status       jobs.Status `json:"status"`
	File         UploadInfo  `json:"file"`
	// RelatedTerms are the model's terms ranked by the decoder, with its score.
	RelatedTerms    []DecodedTerm  `json:"related_terms"`
	RelatedArticles []jobs.Article `json:"related_articles"`
	Peaks           []jobs.Peak    `json:"peaks"`
	MapURL          string         `json:"map_url"`
	PreviewURL      string         `json:"preview_url"`
	SurfaceURL      string         `json:"surface_url,omitempty"`
	Hits            *int64         `json:"hits,omitempty"`
	CreatedAt       time.Time      `json:"created_at"`
	ComputeMS       float64        `json:"compute_ms"`
}

// DecodedTerm is a term and the decoder's score for it.
type DecodedTerm struct {
	Term  string  `json:"term"`
	Score float64 `json:"score"`
}

// UploadInfo describes the uploaded file of a decoding.
type UploadInfo struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// PendingDecoding is a decoding being computed.
type PendingDecoding struct {
	ID           string      `json:"id"`
	Kind         string      `json:"kind"`
	ModelVersion string      `json:"model_version"`
	Status       jobs.Status `json:"status"`
	Stage        string      `json:"stage"`
	File         UploadInfo  `json:"file"`
	Poll         string      `json:"poll"`
	CreatedAt    time.Time   `json:"created_at"`
}

func decodingPath(id string) string { return "/api/v1/decodings/" + id }

// EnableDecoding turns on the decodings routes with the model's mask, onto whose grid an upload is
// resampled to be checked before it is accepted.
func (s *Server) EnableDecoding(m *brain.Mask) { s.mask = m }

// postDecodings accepts a map to decode: the file as the body, or in a multipart form's "file"
// field (what a browser's form sends). It is read and checked whole here, so that a file that
// cannot be decoded gets its 4xx at once and nothing is stored; a good one is stored under its
// SHA-256, and its document is created if absent, so that the same file twice is one job and then
// a cached answer.
func (s *Server) postDecodings(w http.ResponseWriter, r *http.Request) {
	if s.mask == nil || s.uploads == nil {
		WriteError(w, http.StatusServiceUnavailable, "unavailable", "Decoding uploaded maps is not enabled on this server.")
		return
	}
	q, ok := queryValues(w, r)
	if !ok {
		return
	}
	wait, err := s.parseWait(q.Get("wait"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid_wait", err.Error())
		return
	}
	data, name, ok := readUpload(w, r)
	if !ok {
		return
	}
	if status, code, msg := CheckUpload(data, s.mask); status != 0 {
		WriteError(w, status, code, msg)
		return
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	id := querytext.DecodingKey(s.ModelVersion(), sha)

	if e := s.cache.get(id); e != nil && e.doc.Kind == jobs.KindDecoding {
		s.writeCached(w, e, "", cacheByID, s.hitsFor(r.Context(), id, e, true))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
	defer cancel()
	d, err := s.store.Get(ctx, id)
	if errors.Is(err, jobs.ErrNotFound) {
		d, err = nil, nil
	}
	if err != nil {
		backendError(w, r, err)
		return
	}
	if d != nil && d.Status == jobs.Done {
		s.respondDecodingDone(ctx, w, d, true)
		return
	}
	if s.makesJob(d) && !s.admitJob(w, r) {
		return
	}
	// The file first: a job whose file is missing could only fail.
	err = s.uploads.Create(ctx, s.cfg.ResultsBucket, jobs.UploadObject(sha), blobs.Object{Data: data, ContentType: "application/octet-stream", CacheControl: "private, no-store"})
	if err != nil && !errors.Is(err, blobs.ErrExists) {
		backendError(w, r, err)
		return
	}
	d, err = s.jobs.EnsureFrom(ctx, jobs.Spec{ID: id, ModelVersion: s.ModelVersion(), Kind: jobs.KindDecoding,
		Upload: sha, UploadName: name, UploadBytes: int64(len(data))}, d)
	if err != nil {
		backendError(w, r, err)
		return
	}
	if d.Status == jobs.Done {
		s.respondDecodingDone(ctx, w, d, true)
		return
	}
	d = s.waitDone(r, d, wait)
	s.respondDecoding(w, d, cacheByID, nil)
}

// respondDecodingDone answers with a finished decoding, counting a hit when addHit is set, and
// caches it.
func (s *Server) respondDecodingDone(ctx context.Context, w http.ResponseWriter, d *jobs.Doc, addHit bool) {
	e := s.remember(d)
	hits := s.hitsFor(ctx, d.ID, e, addHit)
	if e != nil {
		s.writeCached(w, e, "", cacheByID, hits)
		return
	}
	s.respondDecoding(w, d, cacheByID, hits)
}

// readUpload reads the uploaded file and its name ("" when the sender gave none), answering the
// error itself.
func readUpload(w http.ResponseWriter, r *http.Request) ([]byte, string, bool) {
	tooLarge := func() {
		WriteError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf(
			"The file is larger than %d MB, the most this service takes (a 1 mm float32 volume, gzip-compressed or not, fits).", MaxUploadBytes>>20))
	}
	if r.ContentLength > MaxUploadBytes+64<<10 {
		tooLarge()
		return nil, "", false
	}
	// A form's boundaries and headers take a little room beside the file.
	body := http.MaxBytesReader(w, r.Body, MaxUploadBytes+64<<10)
	var in io.Reader = body
	name := ""
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/form-data" {
		part, err := filePart(multipart.NewReader(body, params["boundary"]))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				tooLarge()
			} else {
				WriteError(w, http.StatusBadRequest, "invalid_upload", "The form has no file in a field named \"file\": "+err.Error())
			}
			return nil, "", false
		}
		in, name = part, part.FileName()
	} else if v := r.Header.Get("X-File-Name"); v != "" {
		name = v
	}
	data, err := io.ReadAll(io.LimitReader(in, MaxUploadBytes+1))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || len(data) > MaxUploadBytes:
		tooLarge()
		return nil, "", false
	case err != nil:
		WriteError(w, http.StatusBadRequest, "invalid_upload", "The upload could not be read: "+err.Error())
		return nil, "", false
	case len(data) == 0:
		WriteError(w, http.StatusBadRequest, "invalid_upload", "The upload is empty: send a NIfTI file (.nii or .nii.gz) as the body, or in a form field named \"file\".")
		return nil, "", false
	}
	return data, cleanName(name), true
}

// filePart finds the form's "file" field.
func filePart(mr *multipart.Reader) (*multipart.Part, error) {
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no such field")
		}
		if err != nil {
			return nil, err
		}
		if p.FormName() == "file" {
			return p, nil
		}
	}
}

// cleanName keeps the base of a file name, valid UTF-8 without control characters, bounded.
func cleanName(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	if name == "." || name == "/" {
		return ""
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, ""))
	if len(name) > maxUploadName {
		name = name[:maxUploadName]
		for !utf8.ValidString(name) {
			name = name[:len(name)-1]
		}
	}
	return name
}

// CheckUpload reads an upload as Predict will and resamples it onto the mask's grid: the status,
// code and message of the error a person gets for a file that cannot be decoded (status 0: none).
// The CLI's decode says the same.
func CheckUpload(data []byte, m *brain.Mask) (int, string, string) {
	raw := data
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return http.StatusBadRequest, "invalid_nifti", "The file looks gzip-compressed but is not valid gzip: " + err.Error()
		}
		raw, err = io.ReadAll(io.LimitReader(zr, maxInflated+1))
		if err != nil {
			return http.StatusBadRequest, "invalid_nifti", "The file's gzip stream is truncated or corrupt (" + err.Error() + ")."
		}
		if len(raw) > maxInflated {
			return http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("The file inflates to more than %d MB, the most this service takes.", maxInflated>>20)
		}
	}
	vol, err := brain.ReadNIfTIWith(bytes.NewReader(raw), brain.ReadOptions{MaxVoxels: jobs.MaxUploadVoxels})
	if err != nil {
		return UploadError(err)
	}
	if vol.Transform == brain.TransformNone {
		return UploadError(brain.ErrNoTransform)
	}
	if _, _, err := brain.ResampleToMask(vol, m); err != nil {
		return UploadError(err)
	}
	return 0, "", ""
}

// UploadError turns an error reading or resampling an uploaded image into the API's status, code
// and message.
func UploadError(err error) (int, string, string) {
	raw := strings.TrimPrefix(err.Error(), "nifti: ")
	msg := strings.ToUpper(raw[:1]) + raw[1:]
	switch {
	case errors.Is(err, brain.ErrTooManyVoxels):
		return http.StatusRequestEntityTooLarge, "too_large", msg
	case errors.Is(err, brain.ErrNoTransform), errors.Is(err, brain.ErrSingularAffine):
		return http.StatusUnprocessableEntity, "no_transform", msg
	case errors.Is(err, brain.ErrNotVolume):
		return http.StatusUnprocessableEntity, "not_a_volume", msg
	case errors.Is(err, brain.ErrZeroMap), errors.Is(err, brain.ErrConstantMap):
		return http.StatusUnprocessableEntity, "empty_map", msg
	case errors.Is(err, brain.ErrNoOverlap):
		return http.StatusUnprocessableEntity, "outside_brain", msg
	}
	return http.StatusBadRequest, "invalid_nifti", "The file is not a NIfTI image this service can read: " + raw
}

func (s *Server) getDecoding(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	q, ok := queryValues(w, r)
	if !ok {
		return
	}
	wait, err := s.parseWait(q.Get("wait"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid_wait", err.Error())
		return
	}
	if e := s.cache.get(id); e != nil {
		if e.doc.Kind != jobs.KindDecoding {
			decodingError(w, r, id, jobs.ErrNotFound)
			return
		}
		s.writeCached(w, e, "", cacheByID, s.hitsFor(r.Context(), id, e, false))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
	defer cancel()
	d, err := s.jobs.Poll(ctx, id)
	if err == nil && d.Kind != jobs.KindDecoding {
		err = jobs.ErrNotFound
	}
	if err != nil {
		decodingError(w, r, id, err)
		return
	}
	d = s.waitDone(r, d, wait)
	if d.Status == jobs.Done {
		s.respondDecodingDone(ctx, w, d, false)
		return
	}
	s.respondDecoding(w, d, cacheByID, nil)
}

func decodingError(w http.ResponseWriter, r *http.Request, id string, err error) {
	if errors.Is(err, jobs.ErrNotFound) {
		WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("There is no decoding with id %s.", id))
		return
	}
	backendError(w, r, err)
}

// decoding is a finished decoding's answer.
func (s *Server) decoding(d *jobs.Doc, hits *int64) Decoding {
	out := Decoding{ID: d.ID, Kind: jobs.KindDecoding, ModelVersion: d.ModelVersion, Status: d.Status,
		File:   UploadInfo{Name: d.UploadName, Bytes: d.UploadBytes, SHA256: d.Upload},
		MapURL: s.url(decodingPath(d.ID) + "/map.nii.gz"), PreviewURL: s.url(decodingPath(d.ID) + "/preview.png"),
		Hits: hits, CreatedAt: d.CreatedAt, RelatedTerms: []DecodedTerm{}, RelatedArticles: []jobs.Article{}, Peaks: []jobs.Peak{}}
	if res := d.Result; res != nil {
		for _, t := range res.RelatedTerms {
			out.RelatedTerms = append(out.RelatedTerms, DecodedTerm{Term: t.Term, Score: t.Weight})
		}
		if res.RelatedArticles != nil {
			out.RelatedArticles = res.RelatedArticles
		}
		if res.Peaks != nil {
			out.Peaks = res.Peaks
		}
		out.ComputeMS = res.ComputeMS
		if res.SurfaceObject != "" {
			out.SurfaceURL = s.url(decodingPath(d.ID) + "/surface.json")
		}
	}
	return out
}

// respondDecoding answers with a decoding's document in any state.
func (s *Server) respondDecoding(w http.ResponseWriter, d *jobs.Doc, cache string, hits *int64) {
	if d.Status != jobs.Pending {
		s.pending.finished(d.ID)
	}
	file := UploadInfo{Name: d.UploadName, Bytes: d.UploadBytes, SHA256: d.Upload}
	switch d.Status {
	case jobs.Done:
		w.Header().Set("Cache-Control", cache)
		writeJSON(w, http.StatusOK, s.decoding(d, hits))
	case jobs.Failed:
		WriteError(w, http.StatusUnprocessableEntity, "decoding_failed", "This map could not be decoded: "+d.Error)
	default:
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Location", s.url(decodingPath(d.ID)))
		stage := StageQueued
		if d.Deliveries > 0 {
			stage = StageComputing
		}
		writeJSON(w, http.StatusAccepted, PendingDecoding{ID: d.ID, Kind: jobs.KindDecoding, ModelVersion: d.ModelVersion, Status: d.Status,
			Stage: stage, File: file, Poll: s.url(decodingPath(d.ID)), CreatedAt: d.CreatedAt})
	}
}
