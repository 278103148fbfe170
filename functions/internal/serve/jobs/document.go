package jobs

import (
	"errors"
	"time"

	"github.com/text2brain/text2brain/functions/internal/cloud/queue"
)

// Status is what a map document stores of its state.
type Status string

// The stored statuses: pending until Predict writes the result (done) or gives up on the job for a
// reason that a retry cannot fix, or the job was lost twice (failed).
const (
	Pending Status = "pending"
	Done    Status = "done"
	Failed  Status = "failed"
)

// ErrNotFound is what a Store returns for a document that does not exist.
var ErrNotFound = errors.New("no such map")

// Term is a related term.
type Term struct {
	Term   string  `firestore:"term" json:"term"`
	Weight float64 `firestore:"weight" json:"weight"`
}

// Article is a related article.
type Article struct {
	PMID        int64   `firestore:"pmid" json:"pmid"`
	Title       string  `firestore:"title" json:"title"`
	Authors     string  `firestore:"authors" json:"authors,omitempty"`
	Year        int     `firestore:"year" json:"year,omitempty"`
	Journal     string  `firestore:"journal" json:"journal,omitempty"`
	DOI         string  `firestore:"doi" json:"doi,omitempty"`
	URL         string  `firestore:"url" json:"url"`
	Correlation float64 `firestore:"correlation" json:"correlation"`
}

// Peak is a local maximum of the map.
type Peak struct {
	MNI []float64 `firestore:"mni" json:"mni"`
	Z   float64   `firestore:"z" json:"z"`
}

// Result is what Predict computes for a document. It is never changed once made: documents that
// share one share it.
type Result struct {
	RecognizedTerms []string  `firestore:"recognized_terms"`
	RelatedTerms    []Term    `firestore:"related_terms"`
	RelatedArticles []Article `firestore:"related_articles"`
	Peaks           []Peak    `firestore:"peaks"`
	MapObject       string    `firestore:"map_object"`
	PreviewObject   string    `firestore:"preview_object"`
	// SurfaceObject is the map sampled on fsaverage5 (gzip-compressed JSON).
	SurfaceObject string  `firestore:"surface_object,omitempty"`
	ComputeMS     float64 `firestore:"compute_ms"`
}

// Doc is a map document: one per (model version, normalised query), both the job's state and the
// cached result. The firestore tags are the stored field names of every document written so far.
type Doc struct {
	ID              string `firestore:"id"`
	Query           string `firestore:"query"`
	NormalizedQuery string `firestore:"normalized_query"`
	ModelVersion    string `firestore:"model_version"`
	// Kind is empty for a query's map, KindDecoding for a decoding of an uploaded map, whose file
	// is Upload (its SHA-256, hex; the object uploads/Upload in the results bucket), named
	// UploadName by its sender, UploadBytes long. A decoding has no query.
	Kind        string `firestore:"kind,omitempty"`
	Upload      string `firestore:"upload,omitempty"`
	UploadName  string `firestore:"upload_name,omitempty"`
	UploadBytes int64  `firestore:"upload_bytes,omitempty"`
	Status      Status `firestore:"status"`
	Error       string `firestore:"error,omitempty"`
	// Retryable marks a failure that a new query may retry (a job that never completed), as
	// opposed to one the text itself caused.
	Retryable bool      `firestore:"retryable,omitempty"`
	Result    *Result   `firestore:"result,omitempty"`
	CreatedAt time.Time `firestore:"created_at"`
	// PublishedAt is when the job was last published; zero while it could not be published yet.
	PublishedAt time.Time `firestore:"published_at"`
	Republished bool      `firestore:"republished"`
	CompletedAt time.Time `firestore:"completed_at,omitempty"`
	// Deliveries counts the jobs Predict received for this document and Predictions the times it
	// ran the model: the evidence that duplicates and redeliveries cost no second result.
	Deliveries  int64 `firestore:"deliveries"`
	Predictions int64 `firestore:"predictions"`
}

// KindDecoding is the Kind of a decoding's document.
const KindDecoding = queue.KindDecoding

// UploadObject names a decoding's uploaded file in the results bucket: by its content (SHA-256,
// hex), so that the same file twice is one object.
func UploadObject(sha string) string { return "uploads/" + sha }

// MaxUploadVoxels bounds the voxels of an uploaded image (a 0.5 mm whole-head volume is about 60
// million): its reader holds a float64 per voxel.
const MaxUploadVoxels = 64 << 20

// Message is the job that computes the document.
func (d *Doc) Message() queue.Message {
	return queue.Message{ID: d.ID, Kind: d.Kind, Text: d.NormalizedQuery, ModelVersion: d.ModelVersion, Upload: d.Upload}
}

// Feedback is what a visitor wrote about a map: stored beside the map's document, never read by
// the service (people read it in the console or an export).
type Feedback struct {
	MapID     string    `firestore:"map_id"`
	Text      string    `firestore:"text"`
	CreatedAt time.Time `firestore:"created_at"`
}
