// Package config is the configuration of both functions, read from the environment only and
// validated at start with every problem named in one error. Parse and Problems are the one way
// this module reads the environment: the local stack's options use them too.
package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/text2brain/text2brain/functions/internal/cloud/blobs"
)

// Config is shared by the Query and Predict functions; each validates what it uses.
type Config struct {
	Project string `env:"GOOGLE_CLOUD_PROJECT"`
	// ModelURI is the model bundle: gs://bucket/prefix, or a local directory.
	ModelURI string `env:"T2B_MODEL_URI"`
	// MoreModelURIs are other bundles served beside ModelURI's, the default (comma-separated, in
	// the order the API lists them): a network built with `text2brain model build-neural` on it.
	MoreModelURIs []string `env:"T2B_MORE_MODEL_URIS"`
	// ResultsBucket holds the maps and previews Predict writes and Query serves.
	ResultsBucket string `env:"T2B_RESULTS_BUCKET"`
	Topic         string `env:"T2B_TOPIC"`      // default DefaultTopic
	Collection    string `env:"T2B_COLLECTION"` // default DefaultCollection
	// ORTLibrary is libonnxruntime.so (Predict): a local path, or gs://bucket/object fetched at start.
	ORTLibrary string `env:"ONNXRUNTIME_LIB"`

	// MaxWait caps how long a request may wait for its result.
	MaxWait time.Duration `env:"T2B_MAX_WAIT, default=10s"`
	// StaleAfter is how old a pending job must be before a request publishes it once more.
	StaleAfter time.Duration `env:"T2B_STALE_AFTER, default=2m"`
	// BackendTimeout bounds each call to Firestore, Pub/Sub or Cloud Storage from the API.
	BackendTimeout time.Duration `env:"T2B_BACKEND_TIMEOUT, default=5s"`
	// Rate and RateBurst limit each client's API requests (token bucket per client address): the
	// limit of cheap reads, which every request counts against.
	Rate      float64 `env:"T2B_RATE, default=10"`
	RateBurst int     `env:"T2B_RATE_BURST, default=30"`
	// The costly requests have limits of their own per client, on top of Rate: a new prediction
	// (a request that creates a job: a job costs a Predict run, a cached answer almost nothing),
	// a warm-up and a feedback. One request every Every on average, Burst at once; a zero Every
	// takes no such limit.
	PredictEvery  time.Duration `env:"T2B_PREDICT_EVERY, default=5s"`
	PredictBurst  int           `env:"T2B_PREDICT_BURST, default=10"`
	WarmupEvery   time.Duration `env:"T2B_WARMUP_CLIENT_EVERY, default=10s"`
	WarmupBurst   int           `env:"T2B_WARMUP_CLIENT_BURST, default=3"`
	FeedbackEvery time.Duration `env:"T2B_FEEDBACK_EVERY, default=20s"`
	FeedbackBurst int           `env:"T2B_FEEDBACK_BURST, default=5"`
	// MaxPending caps the jobs an instance has published and not yet seen finish: above it a query
	// that would make a new job is answered 503 busy. 0 takes no cap.
	MaxPending int `env:"T2B_MAX_PENDING, default=50"`
	// CacheEntries is how many finished maps and decodings an instance keeps in memory, to answer
	// them without reading Firestore (least recently used first out); 0 keeps none. An entry is
	// its answer's JSON, encoded once, and the few fields of its document that the file routes
	// read. Measured on this model's answers (10 related terms, articles and peaks: 5.2 kB of JSON
	// on average over the model's articles, 8.7 kB with its longest ones), an entry takes 7 kB on
	// average and 11 kB at most, so the default's 5,000 take about 35 MB (55 MB at worst): a tenth
	// of Query's 512 MiB.
	CacheEntries int `env:"T2B_CACHE_ENTRIES, default=5000"`
	// HitFlush is how often an instance writes the hits it counted to Firestore, in one batch
	// (and when it stops): the hit counts it shows lag other instances' by up to this much.
	HitFlush time.Duration `env:"T2B_HIT_FLUSH, default=10s"`
	// Timeouts bound how long a client may take over a request.
	Timeouts Timeouts
	// TrustedProxies is how many proxies in front of Query append to X-Forwarded-For (1: Google's
	// front end, or the local front server); the client's address is the one they appended.
	TrustedProxies int `env:"T2B_TRUSTED_PROXIES, default=1"`
	// WarmEvery is the least time between two warm-up messages sent for page loads.
	WarmEvery time.Duration `env:"T2B_WARM_EVERY, default=1m"`
	// CORSOrigins are the origins whose pages may call the API (comma-separated); empty or "*"
	// allows any, as suits a public API that uses no credentials.
	CORSOrigins []string `env:"T2B_CORS_ORIGINS, default=*"`
	// BaseURL makes the map and preview URLs absolute (e.g. https://text2brain.example); empty
	// leaves them relative to the API's origin.
	BaseURL string `env:"T2B_BASE_URL"`
	// Build names the deployed build in /api/v1/version.
	Build string `env:"T2B_BUILD, default=dev"`
}

// Timeouts bound how long a client may take to send a request and to take its answer, so that
// one sending a byte a second holds no connection for long. Query applies Read (to a request's
// body) and Write to every request itself, whatever server runs it; the servers this repository
// starts apply all four (queryapi.NewHTTPServer). A zero duration is no limit.
type Timeouts struct {
	// ReadHeader is the longest a request's line and headers may take to arrive.
	ReadHeader time.Duration `env:"T2B_READ_HEADER_TIMEOUT, default=5s"`
	// Read is the longest a request's body may take to arrive (and, on the servers this
	// repository starts, the whole request).
	Read time.Duration `env:"T2B_READ_TIMEOUT, default=15s"`
	// Write is the longest an answer may take to be written, from the request's start: longer than
	// T2B_MAX_WAIT and T2B_BACKEND_TIMEOUT together, which a request may spend before answering.
	Write time.Duration `env:"T2B_WRITE_TIMEOUT, default=30s"`
	// Idle is the longest a kept-alive connection may wait for its next request.
	Idle time.Duration `env:"T2B_IDLE_TIMEOUT, default=1m"`
}

// The job topic and the Firestore collection when none is configured; the local stack uses the
// same names.
const (
	DefaultTopic      = "text2brain-jobs"
	DefaultCollection = "maps"
)

// FromEnv reads the functions' configuration from the environment.
func FromEnv() (*Config, error) {
	var c Config
	if err := Parse(&c); err != nil {
		return nil, err
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Collection == "" {
		c.Collection = DefaultCollection
	}
	return &c, nil
}

// Parse fills the struct dst points to from the environment: each field with an `env:"NAME"` or
// `env:"NAME, default=VALUE"` tag, an unset or empty variable taking the default, and the fields
// of each untagged struct field in turn. Fields may be strings, ints, float64s, durations,
// comma-separated []string, or implement encoding.TextUnmarshaler. Values that do not parse are all named in one error. (Plain code
// rather than an envconfig library, whose errors name struct fields, not the variables a person
// sets.)
func Parse(dst any) error { return Problems("configuration", ParseProblems(dst)) }

// ParseProblems is Parse that returns the problems themselves, for a caller that adds its own.
func ParseProblems(dst any) []string {
	v := reflect.ValueOf(dst).Elem()
	var problems []string
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		tag, ok := f.Tag.Lookup("env")
		if !ok {
			if f.Type.Kind() == reflect.Struct && f.IsExported() {
				problems = append(problems, ParseProblems(v.Field(i).Addr().Interface())...)
			}
			continue
		}
		name, def, _ := strings.Cut(tag, ",")
		def = strings.TrimPrefix(strings.TrimSpace(def), "default=")
		raw, set := os.LookupEnv(name)
		if !set || raw == "" {
			raw = def
		}
		if raw == "" {
			continue
		}
		field := v.Field(i)
		if u, ok := field.Addr().Interface().(encoding.TextUnmarshaler); ok {
			if err := u.UnmarshalText([]byte(raw)); err != nil {
				problems = append(problems, fmt.Sprintf("%s=%q: %v", name, raw, err))
			}
			continue
		}
		switch field.Interface().(type) {
		case string:
			field.SetString(raw)
		case time.Duration:
			d, err := time.ParseDuration(raw)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s=%q is not a duration such as 10s or 2m", name, raw))
				continue
			}
			field.SetInt(int64(d))
		case float64:
			x, err := strconv.ParseFloat(raw, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				problems = append(problems, fmt.Sprintf("%s=%q is not a number", name, raw))
				continue
			}
			field.SetFloat(x)
		case int:
			n, err := strconv.Atoi(raw)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s=%q is not a whole number", name, raw))
				continue
			}
			field.SetInt(int64(n))
		case []string:
			var list []string
			for _, item := range strings.Split(raw, ",") {
				if item = strings.TrimSpace(item); item != "" {
					list = append(list, item)
				}
			}
			field.Set(reflect.ValueOf(list))
		default:
			panic("config: no parser for field " + f.Name)
		}
	}
	return problems
}

// ValidateQuery checks what the Query function needs.
func (c *Config) ValidateQuery() error {
	p := c.common()
	if c.MaxWait < 0 || c.MaxWait > time.Minute {
		p = append(p, fmt.Sprintf("T2B_MAX_WAIT=%s: want between 0s and 1m", c.MaxWait))
	}
	if c.StaleAfter <= 0 {
		p = append(p, "T2B_STALE_AFTER must be positive")
	}
	if c.BackendTimeout <= 0 {
		p = append(p, "T2B_BACKEND_TIMEOUT must be positive")
	}
	if c.Rate <= 0 || c.RateBurst < 1 {
		p = append(p, "T2B_RATE and T2B_RATE_BURST must be positive")
	}
	for _, l := range []struct {
		name  string
		every time.Duration
		burst int
	}{{"T2B_PREDICT", c.PredictEvery, c.PredictBurst}, {"T2B_WARMUP_CLIENT", c.WarmupEvery, c.WarmupBurst}, {"T2B_FEEDBACK", c.FeedbackEvery, c.FeedbackBurst}} {
		if l.every < 0 || l.every > 0 && l.burst < 1 {
			p = append(p, fmt.Sprintf("%s_EVERY must be 0 (no limit) or positive, and %s_BURST at least 1", l.name, l.name))
		}
	}
	if c.MaxPending < 0 {
		p = append(p, "T2B_MAX_PENDING must be 0 (no cap) or more")
	}
	if c.CacheEntries < 0 {
		p = append(p, "T2B_CACHE_ENTRIES must be 0 (no cache) or more")
	}
	if c.HitFlush <= 0 {
		p = append(p, "T2B_HIT_FLUSH must be positive")
	}
	t := c.Timeouts
	if t.ReadHeader < 0 || t.Read < 0 || t.Write < 0 || t.Idle < 0 {
		p = append(p, "T2B_READ_HEADER_TIMEOUT, T2B_READ_TIMEOUT, T2B_WRITE_TIMEOUT and T2B_IDLE_TIMEOUT must be 0 (no limit) or positive")
	}
	if t.Write > 0 && t.Write <= c.MaxWait+c.BackendTimeout {
		p = append(p, fmt.Sprintf("T2B_WRITE_TIMEOUT=%s must be longer than T2B_MAX_WAIT and T2B_BACKEND_TIMEOUT together (%s): a request may wait that long before it answers", t.Write, c.MaxWait+c.BackendTimeout))
	}
	if c.TrustedProxies < 0 {
		p = append(p, "T2B_TRUSTED_PROXIES must be 0 or more")
	}
	if c.WarmEvery <= 0 {
		p = append(p, "T2B_WARM_EVERY must be positive")
	}
	for _, o := range c.CORSOrigins {
		if o != "*" && !isOrigin(o) {
			p = append(p, fmt.Sprintf("T2B_CORS_ORIGINS: %q is not * or an origin such as https://example.org", o))
		}
	}
	return Problems("configuration", p)
}

// ValidatePredict checks what the Predict function needs.
func (c *Config) ValidatePredict() error {
	p := c.common()
	if c.ORTLibrary == "" {
		p = append(p, "ONNXRUNTIME_LIB is not set: the path or gs:// URI of libonnxruntime.so")
	}
	return Problems("configuration", p)
}

func (c *Config) common() []string {
	var p []string
	if c.Project == "" {
		p = append(p, "GOOGLE_CLOUD_PROJECT is not set")
	}
	if c.ModelURI == "" {
		p = append(p, "T2B_MODEL_URI is not set: gs://bucket/prefix of the model bundle, or its local directory")
	} else if strings.HasPrefix(c.ModelURI, "gs://") {
		if _, _, ok := blobs.ParseURI(c.ModelURI); !ok {
			p = append(p, fmt.Sprintf("T2B_MODEL_URI=%q is not a gs://bucket/prefix URI", c.ModelURI))
		}
	}
	for _, u := range c.MoreModelURIs {
		if _, _, ok := blobs.ParseURI(u); strings.HasPrefix(u, "gs://") && !ok || u == "" || u == c.ModelURI {
			p = append(p, fmt.Sprintf("T2B_MORE_MODEL_URIS: %q is not a gs://bucket/prefix URI or a directory other than T2B_MODEL_URI's", u))
		}
	}
	if c.ResultsBucket == "" {
		p = append(p, "T2B_RESULTS_BUCKET is not set")
	}

	return p
}

// isOrigin reports whether s is a browser origin: http or https, a host, an optional port, nothing
// else.
func isOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil && s == u.Scheme+"://"+u.Host
}

// Problems is the one error for everything wrong with a configuration, nil for nothing: what
// failed (such as "configuration"), then each problem on a line of its own, so that one log entry
// (or one message of make run) names them all.
func Problems(what string, p []string) error {
	if len(p) == 0 {
		return nil
	}
	e := &problems{what: what}
	for _, s := range p {
		e.list = append(e.list, errors.New(s))
	}
	return e
}

type problems struct {
	what string
	list []error
}

func (e *problems) Error() string {
	var b strings.Builder
	b.WriteString(e.what + ":")
	for _, p := range e.list {
		b.WriteString("\n  - " + p.Error())
	}
	return b.String()
}

func (e *problems) Unwrap() []error { return e.list }
