package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateNamesEveryProblem(t *testing.T) {
	for _, k := range []string{"GOOGLE_CLOUD_PROJECT", "T2B_MODEL_URI", "T2B_RESULTS_BUCKET", "ONNXRUNTIME_LIB"} {
		t.Setenv(k, "")
	}
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	err = c.ValidatePredict()
	if err == nil {
		t.Fatal("empty configuration accepted")
	}
	for _, want := range []string{"GOOGLE_CLOUD_PROJECT", "T2B_MODEL_URI", "T2B_RESULTS_BUCKET", "ONNXRUNTIME_LIB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestDefaultsAndParsing(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "p")
	t.Setenv("T2B_MODEL_URI", "gs://models/models/nq-1")
	t.Setenv("T2B_RESULTS_BUCKET", "results")
	t.Setenv("T2B_MAX_WAIT", "3s")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateQuery(); err != nil {
		t.Fatal(err)
	}
	if c.MaxWait.Seconds() != 3 || c.Topic != "text2brain-jobs" || c.Collection != "maps" {
		t.Errorf("config %+v", c)
	}
	t.Setenv("T2B_MAX_WAIT", "soon")
	t.Setenv("T2B_RATE", "fast")
	t.Setenv("T2B_RATE_BURST", "1.5")
	_, err = FromEnv()
	for _, name := range []string{"T2B_MAX_WAIT", "T2B_RATE=", "T2B_RATE_BURST"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("unparsable values: error %v does not name %s", err, name)
		}
	}
	t.Setenv("T2B_RATE", "")
	t.Setenv("T2B_RATE_BURST", "")
	t.Setenv("T2B_MAX_WAIT", "10s")
	t.Setenv("T2B_MODEL_URI", "gs://")
	c, _ = FromEnv()
	if err := c.ValidateQuery(); err == nil || !strings.Contains(err.Error(), "T2B_MODEL_URI") {
		t.Errorf("bad URI: error %v", err)
	}
}

func TestCORSOrigins(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "p")
	t.Setenv("T2B_MODEL_URI", "gs://models/models/nq-1")
	t.Setenv("T2B_RESULTS_BUCKET", "results")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CORSOrigins) != 1 || c.CORSOrigins[0] != "*" {
		t.Errorf("default origins %q, want [*]", c.CORSOrigins)
	}
	t.Setenv("T2B_CORS_ORIGINS", " https://a.example.org, http://localhost:5173 ,")
	c, _ = FromEnv()
	if err := c.ValidateQuery(); err != nil || len(c.CORSOrigins) != 2 || c.CORSOrigins[1] != "http://localhost:5173" {
		t.Errorf("origins %q, %v", c.CORSOrigins, err)
	}
	for _, bad := range []string{"example.org", "https://example.org/", "https://example.org/app", "ftp://example.org", "https://u@example.org"} {
		t.Setenv("T2B_CORS_ORIGINS", "https://ok.example.org,"+bad)
		c, _ = FromEnv()
		if err := c.ValidateQuery(); err == nil || !strings.Contains(err.Error(), "T2B_CORS_ORIGINS") || !strings.Contains(err.Error(), bad) {
			t.Errorf("origin %q: error %v", bad, err)
		}
	}
}

func TestLimitsAndTimeouts(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "p")
	t.Setenv("T2B_MODEL_URI", "gs://models/models/nq-1")
	t.Setenv("T2B_RESULTS_BUCKET", "results")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateQuery(); err != nil {
		t.Fatal(err)
	}
	want := Timeouts{ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: 30 * time.Second, Idle: time.Minute}
	if c.Timeouts != want || c.PredictEvery != 5*time.Second || c.PredictBurst != 10 || c.MaxPending != 50 ||
		c.FeedbackEvery != 20*time.Second || c.FeedbackBurst != 5 || c.WarmupEvery != 10*time.Second || c.WarmupBurst != 3 {
		t.Errorf("defaults %+v", c)
	}
	// The nested struct's variables are read and named like the others.
	t.Setenv("T2B_READ_TIMEOUT", "slow")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), "T2B_READ_TIMEOUT") {
		t.Errorf("unparsable timeout: %v", err)
	}
	t.Setenv("T2B_READ_TIMEOUT", "")
	t.Setenv("T2B_WRITE_TIMEOUT", "12s") // not more than 10 s of wait and 5 s of backend
	t.Setenv("T2B_PREDICT_EVERY", "-1s")
	t.Setenv("T2B_FEEDBACK_BURST", "0")
	t.Setenv("T2B_MAX_PENDING", "-1")
	c, _ = FromEnv()
	err = c.ValidateQuery()
	for _, name := range []string{"T2B_WRITE_TIMEOUT", "T2B_PREDICT_EVERY", "T2B_FEEDBACK_BURST", "T2B_MAX_PENDING"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
	// Zero turns a limit off.
	for _, name := range []string{"T2B_WRITE_TIMEOUT", "T2B_PREDICT_EVERY", "T2B_FEEDBACK_EVERY", "T2B_MAX_PENDING"} {
		t.Setenv(name, "0")
	}
	t.Setenv("T2B_WRITE_TIMEOUT", "0s")
	t.Setenv("T2B_PREDICT_EVERY", "0s")
	t.Setenv("T2B_FEEDBACK_EVERY", "0s")
	c, _ = FromEnv()
	if err := c.ValidateQuery(); err != nil {
		t.Errorf("limits off: %v", err)
	}
}

func TestCacheAndHitFlush(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "p")
	t.Setenv("T2B_MODEL_URI", "gs://models/models/nq-1")
	t.Setenv("T2B_RESULTS_BUCKET", "results")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.CacheEntries != 5000 || c.HitFlush != 10*time.Second {
		t.Errorf("defaults: T2B_CACHE_ENTRIES %d, T2B_HIT_FLUSH %s; want 5000 and 10s", c.CacheEntries, c.HitFlush)
	}
	t.Setenv("T2B_CACHE_ENTRIES", "0")
	t.Setenv("T2B_HIT_FLUSH", "1m")
	if c, _ = FromEnv(); c.ValidateQuery() != nil || c.CacheEntries != 0 || c.HitFlush != time.Minute {
		t.Errorf("no cache, a flush a minute: %d %s, %v", c.CacheEntries, c.HitFlush, c.ValidateQuery())
	}
	t.Setenv("T2B_CACHE_ENTRIES", "-1")
	t.Setenv("T2B_HIT_FLUSH", "-1s")
	c, _ = FromEnv()
	err = c.ValidateQuery()
	for _, name := range []string{"T2B_CACHE_ENTRIES", "T2B_HIT_FLUSH"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("negative values: error %v does not name %s", err, name)
		}
	}
	t.Setenv("T2B_HIT_FLUSH", "0s")
	if c, _ = FromEnv(); c.ValidateQuery() == nil {
		t.Error("T2B_HIT_FLUSH=0s accepted")
	}
}
