package config

import (
	"context"
	"strings"
	"testing"
)

func TestValidateNamesEveryProblem(t *testing.T) {
	for _, k := range []string{"GOOGLE_CLOUD_PROJECT", "T2B_MODEL_URI", "T2B_RESULTS_BUCKET", "ONNXRUNTIME_LIB"} {
		t.Setenv(k, "")
	}
	c, err := FromEnv(context.Background())
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
	c, err := FromEnv(context.Background())
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
	if _, err := FromEnv(context.Background()); err == nil || !strings.Contains(err.Error(), "T2B_MAX_WAIT") {
		t.Errorf("unparsable duration: error %v", err)
	}
	t.Setenv("T2B_MAX_WAIT", "10s")
	t.Setenv("T2B_MODEL_URI", "gs://")
	c, _ = FromEnv(context.Background())
	if err := c.ValidateQuery(); err == nil || !strings.Contains(err.Error(), "T2B_MODEL_URI") {
		t.Errorf("bad URI: error %v", err)
	}
}
