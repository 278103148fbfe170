package config

import (
	"strings"
	"testing"
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
