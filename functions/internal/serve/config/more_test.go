package config

import "testing"

func TestMoreModelURIs(t *testing.T) {
	t.Setenv("T2B_MORE_MODEL_URIS", "")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.MoreModelURIs) != 0 {
		t.Errorf("empty T2B_MORE_MODEL_URIS: %q", c.MoreModelURIs)
	}
	t.Setenv("T2B_MORE_MODEL_URIS", "gs://models/models/nn-1,/srv/bundle")
	if c, err = FromEnv(); err != nil {
		t.Fatal(err)
	}
	if len(c.MoreModelURIs) != 2 || c.MoreModelURIs[1] != "/srv/bundle" {
		t.Errorf("T2B_MORE_MODEL_URIS: %q", c.MoreModelURIs)
	}
	c.Project, c.ModelURI, c.ResultsBucket = "p", "gs://models/models/nq-1", "r"
	if p := c.common(); len(p) != 0 {
		t.Errorf("problems %q", p)
	}
	c.MoreModelURIs = append(c.MoreModelURIs, "gs://", c.ModelURI)
	if p := c.common(); len(p) != 2 {
		t.Errorf("a bad URI and the default's again: problems %q, want 2", p)
	}
}
