package jobs

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	t0      = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	limit   = 2 * time.Minute
	someRes = &Result{MapObject: "maps/v/x.nii.gz", ComputeMS: 3}
)

// at is an Input at t0 with the staleness limit.
func at(mod func(*Input)) Input {
	in := Input{Now: t0, StaleAfter: limit}
	if mod != nil {
		mod(&in)
	}
	return in
}

// doc is a document in a state, changed by mod.
func doc(s State, mod func(*Doc)) *Doc {
	d := &Doc{ID: "id", Query: "Faces", NormalizedQuery: "faces", ModelVersion: "nq-1",
		CreatedAt: t0.Add(-time.Minute), PublishedAt: t0.Add(-time.Minute), Deliveries: 2, Predictions: 1}
	switch s {
	case StatePending:
		d.PublishedAt = time.Time{}
	case StateDone:
		d.Status, d.Result, d.CompletedAt = Done, &Result{MapObject: "first"}, t0.Add(-time.Second)
	case StateFailed:
		d.Status, d.Error, d.CompletedAt = Failed, "no known terms", t0.Add(-time.Second)
	}
	if d.Status == "" {
		d.Status = Pending
	}
	if mod != nil {
		mod(d)
	}
	return d
}

// Every row of the table, taken from a document that its guard allows, makes the document it
// says, and nothing else changes.
func TestEveryTransition(t *testing.T) {
	testCases := []struct {
		name   string
		from   *Doc
		event  Event
		in     Input
		to     State
		action Action
		// want is the document after the step, from the one before.
		want func(d *Doc)
	}{
		{"create", nil, Create, at(func(in *Input) {
			in.Spec = Spec{ID: "id", Query: "Faces", NormalizedQuery: "faces", ModelVersion: "nq-1"}
		}), StatePublished, Publish, nil},
		{"claim of a job that never went out", doc(StatePending, nil), Claim, at(nil), StatePublished, Publish,
			func(d *Doc) { d.PublishedAt = t0 }},
		{"claim of a fresh job", doc(StatePublished, nil), Claim, at(nil), StatePublished, NoAction, func(*Doc) {}},
		{"claim of a job just at the limit", doc(StatePublished, func(d *Doc) { d.PublishedAt = t0.Add(-limit) }), Claim, at(nil),
			StatePublished, NoAction, func(*Doc) {}},
		{"claim of a stale job", doc(StatePublished, func(d *Doc) { d.PublishedAt = t0.Add(-time.Hour) }), Claim, at(nil),
			StatePublished, Publish, func(d *Doc) { d.Republished, d.PublishedAt = true, t0 }},
		{"claim of a republished job stale again", doc(StatePublished, func(d *Doc) {
			d.PublishedAt, d.Republished = t0.Add(-time.Hour), true
		}), Claim, at(nil), StateFailed, NoAction, func(d *Doc) {
			d.Status, d.Retryable, d.Error, d.CompletedAt = Failed, true, StalledReason, t0
		}},
		{"publish failed", doc(StatePublished, nil), PublishFailed, at(nil), StatePending, NoAction,
			func(d *Doc) { d.PublishedAt = time.Time{} }},
		{"restart of a retryable failure", doc(StateFailed, func(d *Doc) {
			d.Retryable, d.Republished, d.Error = true, true, StalledReason
		}), Restart, at(nil), StatePublished, Publish, func(d *Doc) {
			d.Status, d.Retryable, d.Republished, d.Error, d.PublishedAt = Pending, false, false, "", t0
		}},
		{"delivery of a job that never went out", doc(StatePending, nil), Deliver, at(nil), StatePending, Run,
			func(d *Doc) { d.Deliveries++ }},
		{"delivery", doc(StatePublished, nil), Deliver, at(nil), StatePublished, Run, func(d *Doc) { d.Deliveries++ }},
		{"delivery to a done document", doc(StateDone, nil), Deliver, at(nil), StateDone, NoAction, func(d *Doc) { d.Deliveries++ }},
		{"delivery to a failed document", doc(StateFailed, nil), Deliver, at(nil), StateFailed, NoAction, func(d *Doc) { d.Deliveries++ }},
		{"complete", doc(StatePublished, nil), Complete, at(func(in *Input) { in.Result = someRes }), StateDone, NoAction,
			func(d *Doc) { d.Status, d.Result, d.CompletedAt = Done, someRes, t0 }},
		{"complete of a job marked unpublished", doc(StatePending, nil), Complete, at(func(in *Input) { in.Result = someRes }), StateDone, NoAction,
			func(d *Doc) { d.Status, d.Result, d.CompletedAt = Done, someRes, t0 }},
		{"fail", doc(StatePublished, nil), Fail, at(func(in *Input) { in.Reason = "bad text" }), StateFailed, NoAction,
			func(d *Doc) { d.Status, d.Error, d.CompletedAt = Failed, "bad text", t0 }},
		{"fail of a job marked unpublished", doc(StatePending, nil), Fail, at(func(in *Input) { in.Reason = "bad text" }), StateFailed, NoAction,
			func(d *Doc) { d.Status, d.Error, d.CompletedAt = Failed, "bad text", t0 }},
		{"give up on a poison job", doc(StatePublished, nil), GiveUp, at(func(in *Input) { in.Reason = "failed 5 times" }), StateFailed, NoAction,
			func(d *Doc) { d.Status, d.Error, d.Retryable, d.CompletedAt = Failed, "failed 5 times", true, t0 }},
		{"give up on a job marked unpublished", doc(StatePending, nil), GiveUp, at(func(in *Input) { in.Reason = "failed 5 times" }), StateFailed, NoAction,
			func(d *Doc) { d.Status, d.Error, d.Retryable, d.CompletedAt = Failed, "failed 5 times", true, t0 }},
	}
	taken := map[string]bool{}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			var before *Doc
			if tc.from != nil {
				copied := *tc.from
				before = &copied
			}
			matching := 0
			for _, row := range table {
				if row.From == StateOf(tc.from) && row.Event == tc.event && row.Guard.allows(tc.from, tc.in) {
					matching++
				}
			}
			if matching != 1 {
				t.Fatalf("%d rows apply, want exactly 1", matching)
			}
			step, err := Next(tc.from, tc.event, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			taken[step.String()] = true
			if diff := cmp.Diff(before, tc.from); diff != "" {
				t.Errorf("Next changed its argument (-before +after):\n%s", diff)
			}
			if step.To != tc.to || step.Action != tc.action || StateOf(step.Doc) != tc.to {
				t.Errorf("step %s to a %s document, want to %s and %s", step, StateOf(step.Doc), tc.to, tc.action)
			}
			want := &Doc{ID: "id", Query: "Faces", NormalizedQuery: "faces", ModelVersion: "nq-1",
				Status: Pending, CreatedAt: t0, PublishedAt: t0}
			if tc.from != nil {
				copied := *tc.from
				want = &copied
				tc.want(want)
			}
			if diff := cmp.Diff(want, step.Doc); diff != "" {
				t.Errorf("document after %s (-want +got):\n%s", step, diff)
			}
			if step.Writes() != (diff(tc.from, step.Doc) || tc.from == nil) {
				t.Errorf("Writes() = %v, but the document changed: %v", step.Writes(), diff(tc.from, step.Doc))
			}
		})
	}
	for _, row := range table {
		if !taken[row.String()] {
			t.Errorf("no test takes the row %s", row)
		}
	}
}

func diff(a, b *Doc) bool { return !cmp.Equal(a, b) }

// Events that no row allows write nothing and say so.
func TestRefusedTransitions(t *testing.T) {
	stale := func(d *Doc) { d.PublishedAt = t0.Add(-time.Hour) }
	testCases := []struct {
		name  string
		from  *Doc
		event Event
	}{
		{"second result", doc(StateDone, nil), Complete},
		{"result after a failure", doc(StateFailed, nil), Complete},
		{"failure after a result", doc(StateDone, nil), Fail},
		{"second failure", doc(StateFailed, nil), Fail},
		{"give up after a result", doc(StateDone, nil), GiveUp},
		{"give up after a failure", doc(StateFailed, nil), GiveUp},
		{"restart of a final failure", doc(StateFailed, nil), Restart},
		{"restart of a pending job", doc(StatePublished, stale), Restart},
		{"restart of a result", doc(StateDone, nil), Restart},
		{"claim of a result", doc(StateDone, stale), Claim},
		{"claim of a failure", doc(StateFailed, func(d *Doc) { d.Retryable = true }), Claim},
		{"publish failed twice", doc(StatePending, nil), PublishFailed},
		{"publish failed after the result", doc(StateDone, nil), PublishFailed},
		{"create over a document", doc(StatePublished, nil), Create},
		{"claim of nothing", nil, Claim},
		{"delivery to nothing", nil, Deliver},
		{"result for nothing", nil, Complete},
		{"an unknown status", doc(StatePublished, func(d *Doc) { d.Status = "archived" }), Deliver},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			step, err := Next(tc.from, tc.event, at(func(in *Input) { in.Result, in.Reason = someRes, "x" }))
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("Next = %s, %v; want ErrRefused", step, err)
			}
			if step.Doc != tc.from {
				t.Errorf("a refused step returned %+v, want the document as it was", step.Doc)
			}
		})
	}
}

// The table in the package comment is the table the code runs.
func TestPackageCommentShowsTheTable(t *testing.T) {
	src, err := os.ReadFile("transitions.go")
	if err != nil {
		t.Fatal(err)
	}
	comment, _, _ := strings.Cut(string(src), "package jobs")
	var shown []string
	for line := range strings.SplitSeq(comment, "\n") {
		if row, ok := strings.CutPrefix(line, "//\t"); ok && !strings.HasPrefix(row, "from ") {
			// Columns are padded to fixed widths; the last, "also", is prose.
			cols := []string{row[0:11], row[11:27], row[27:47], row[47:58], row[58:min(67, len(row))]}
			for i := range cols {
				cols[i] = strings.TrimSpace(cols[i])
			}
			shown = append(shown, strings.Join(cols, " | "))
		}
	}
	var code []string
	for _, row := range table {
		code = append(code, strings.Join([]string{string(row.From), string(row.Event), row.Guard.Name, string(row.To), string(row.Action)}, " | "))
	}
	if d := cmp.Diff(code, shown); d != "" {
		t.Errorf("the package comment's table differs from the code's (-code +comment):\n%s", d)
	}
}
