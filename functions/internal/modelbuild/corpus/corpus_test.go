package corpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/text2brain/text2brain/functions/internal/model/articles"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

func TestFloorRule(t *testing.T) {
	type voxel struct{ i, j, k int }
	tests := []struct {
		name    string
		x, y, z float64
		want    *voxel // nil: dropped
	}{
		{"origin corner", -90, -126, -72, &voxel{0, 0, 0}},
		{"just below x origin", -90.001, 0, 0, nil},
		{"floor not truncation", -91, -126, -72, nil},
		{"inside first voxel", -86.001, -122.5, -68.01, &voxel{0, 0, 0}},
		{"next voxel starts on its edge", -86, -122, -68, &voxel{1, 1, 1}},
		{"negative fraction", -2.5, -1, -0.5, &voxel{21, 31, 17}},
		{"last x voxel", 93.999, 0, 0, &voxel{45, 31, 18}},
		{"past last x voxel", 94, 0, 0, nil},
		{"last y voxel", 0, 93.999, 0, &voxel{22, 54, 18}},
		{"past last y voxel", 0, 94, 0, nil},
		{"last z voxel", 0, 0, 111.999, &voxel{22, 31, 45}},
		{"past last z voxel", 0, 0, 112, nil},
	}
	// Each case is its own article, next to a peak that keeps the article in the index.
	var coords strings.Builder
	coords.WriteString(coordHeader)
	var ids []int64
	for n, tc := range tests {
		id := int64(100 + n)
		ids = append(ids, id)
		fmt.Fprintf(&coords, "%d\tt\tTable 1\t%g\t%g\t%g\n", id, tc.x, tc.y, tc.z)
		fmt.Fprintf(&coords, "%d\tt\tTable 1\t0\t0\t0\n", id)
	}
	p := readStrings(t, coords.String(), trainingCSV(ids...), "")
	center := int32(brain.Index(22, 31, 18))
	for n, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := []int32{center}
			if tc.want != nil {
				want = []int32{int32(brain.Index(tc.want.i, tc.want.j, tc.want.k)), center}
			}
			if got := p.peaksOf(t, ids[n]); !slices.Equal(got, want) {
				t.Errorf("peaks of (%g, %g, %g) = %v, want %v", tc.x, tc.y, tc.z, got, want)
			}
		})
	}
	// And the index keeps them all: each has its peak at the centre.
	ix, err := buildStrings(coords.String(), trainingCSV(ids...), "", fullMask(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pmids(ix), ids) {
		t.Errorf("index of %v, want %v", pmids(ix), ids)
	}
}

// Which articles have a map is articles.New's rule (tested there); the reader must hand it every
// training article, with the in-volume peaks of each, and drop only peaks outside the volume.
func TestArticlesWithoutMap(t *testing.T) {
	m := boxMask(t, 10, 20) // MNI x in [−50, −10), y in [−86, −46), z in [−32, 8)
	coords := coordHeader +
		"1\tt\tT\t-70\t-106\t-52\n" + // voxel (5,5,5): in the volume, outside the mask
		"2\tt\tT\t-30\t-66\t-12\n" + // voxel (15,15,15): in the mask
		"4\tt\tT\t-54\t-66\t-12\n" + // voxel (9,15,15): next to the mask, whose blur reaches it
		"4\tt\tT\t500\t0\t0\n" + // outside the volume
		"5\tt\tT\t-54\t-66\t-12\n" + // outside the mask, but with a peak inside:
		"5\tt\tT\t-50\t-66\t-12\n" //   voxel (10,15,15)
	training := trainingCSV(1, 2, 3, 4, 5)
	ix, err := buildStrings(coords, training, "", m)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pmids(ix), []int64{2, 5}; !slices.Equal(got, want) {
		t.Errorf("articles with a map: %v, want %v", got, want)
	}
	p := readStrings(t, coords, training, "")
	if got := len(p.arts); got != 5 {
		t.Errorf("%d training articles read, want 5", got)
	}
	for _, c := range []struct {
		pmid int64
		want []int32
	}{
		{1, []int32{int32(brain.Index(5, 5, 5))}},
		{3, nil},
		{4, []int32{int32(brain.Index(9, 15, 15))}},
		// Article 5's outside peak still counts: the mask sees part of its blurred mass.
		{5, []int32{int32(brain.Index(9, 15, 15)), int32(brain.Index(10, 15, 15))}},
	} {
		if got := p.peaksOf(t, c.pmid); !slices.Equal(got, c.want) {
			t.Errorf("article %d: peaks %v, want %v", c.pmid, got, c.want)
		}
	}
}

// The same voxel reported twice, from two tables of a paper, is two peaks; articles tests that it
// weighs twice in the map.
func TestDuplicatedPeaksKept(t *testing.T) {
	coords := coordHeader +
		"1\tt\tT\t-30\t-66\t-12\n" +
		"1\tt2\tT\t-30\t-66\t-12\n" + // same voxel, from another table
		"1\tt2\tT\t-10\t-66\t-12\n" +
		"2\tt\tT\t-30\t-66\t-12\n" +
		"2\tt\tT\t-10\t-66\t-12\n"
	p := readStrings(t, coords, trainingCSV(1, 2), "")
	v, w := int32(brain.Index(15, 15, 15)), int32(brain.Index(20, 15, 15))
	if got, want := p.peaksOf(t, 1), []int32{v, v, w}; !slices.Equal(got, want) {
		t.Errorf("article 1: peaks %v, want %v", got, want)
	}
	if got, want := p.peaksOf(t, 2), []int32{v, w}; !slices.Equal(got, want) {
		t.Errorf("article 2: peaks %v, want %v", got, want)
	}
	ix, err := buildStrings(coords, trainingCSV(1, 2), "", boxMask(t, 5, 30))
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 2 {
		t.Errorf("%d articles, want 2", ix.Len())
	}
}

func TestQuotedTableName(t *testing.T) {
	coords := coordHeader +
		"1\tt1\t\"Table\n1\"\t-30\t-66\t-12\n" +
		"1\tt1\t\"a \"\"quoted\"\" name\"\t-26\t-66\t-12\n" +
		"2\tt1\tstray \" quote\t-22\t-66\t-12\n"
	p := readStrings(t, coords, trainingCSV(1, 2), "")
	if got := p.peaksOf(t, 1); !slices.Equal(got, []int32{int32(brain.Index(15, 15, 15)), int32(brain.Index(16, 15, 15))}) {
		t.Errorf("article 1 peaks %v", got)
	}
	if got := p.peaksOf(t, 2); !slices.Equal(got, []int32{int32(brain.Index(17, 15, 15))}) {
		t.Errorf("article 2 peaks %v", got)
	}
	// The quoted newline shifts line numbers; errors must name the file's line, not the record.
	_, err := buildStrings(coordHeader+"1\tt1\t\"Table\n1\"\t0\t0\t0\n1\tt1\tT\tabc\t0\t0\n", trainingCSV(1), "", fullMask(t))
	if err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("error %v, want one naming line 4", err)
	}
}

func TestMetadata(t *testing.T) {
	coords := coordHeader + "7\tt\tT\t0\t0\t0\n3\tt\tT\t0\t0\t0\n9\tt\tT\t0\t0\t0\n"
	training := "pmid,title,pubmed_url\n" +
		"7,\"A title\n  over  two lines\",u\n" +
		"3,Another,u\n" +
		"9,Third,u\n"
	neurosynth := "id\tdoi\tspace\ttitle\tauthors\tyear\tjournal\n" +
		"7\t10.1/x\tMNI\t\"Neurosynth \"\"title\"\"\"\tDoe J, Roe R\t2004\tNeuroImage\n" +
		"8\t\tMNI\tnot training\tX\t2000\tJ\n" +
		"7\t10.1/dup\tMNI\trepeat\tLater\t2005\tJ2\n" +
		"9\t\tMNI\tthird\tSmith A\t\tJ3\n"
	ix, err := buildStrings(coords, training, neurosynth, fullMask(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []articles.Article
	for i := range ix.Len() {
		got = append(got, ix.Article(i))
	}
	want := []articles.Article{
		{PMID: 7, Title: "A title over two lines", Authors: "Doe J, Roe R", Year: 2004, Journal: "NeuroImage", DOI: "10.1/x"},
		{PMID: 3, Title: "Another"},
		{PMID: 9, Title: "Third", Authors: "Smith A", Journal: "J3"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("articles (-want +got):\n%s", d)
	}
}

// Neurosynth rows are checked for every training article, whether it has a map or not: whether
// the file is accepted does not depend on the mask.
func TestMetadataOfArticlesWithoutMap(t *testing.T) {
	coords := coordHeader + "1\tt\tT\t-30\t-66\t-12\n2\tt\tT\t-70\t-106\t-52\n"
	nsHeader := "id\tdoi\tspace\ttitle\tauthors\tyear\tjournal\n"
	m := boxMask(t, 10, 20) // article 2's only peak is outside it
	ix, err := buildStrings(coords, trainingCSV(1, 2), nsHeader+"2\t\tMNI\tt\tA B\t1999\tJ\n", m)
	if err != nil {
		t.Fatal(err)
	}
	if got := pmids(ix); !slices.Equal(got, []int64{1}) {
		t.Errorf("articles with a map %v, want [1]", got)
	}
	_, err = buildStrings(coords, trainingCSV(1, 2), nsHeader+"2\t\tMNI\tt\tA B\t19x9\tJ\n", m)
	if err == nil || !strings.Contains(err.Error(), "neurosynth metadata: line 2: bad year \"19x9\"") {
		t.Errorf("error %v, want the bad year of article 2", err)
	}
}

func TestGzipDetected(t *testing.T) {
	coords := coordHeader + "1\tt\tT\t0\t0\t0\n2\tt\tT\t10\t0\t0\n"
	training := trainingCSV(2, 1)
	ns := "id\tdoi\tspace\ttitle\tauthors\tyear\tjournal\n1\t\tMNI\tt\tA B\t2001\tJ\n"
	m := boxMask(t, 10, 40)
	plain, err := buildStrings(coords, training, ns, m)
	if err != nil {
		t.Fatal(err)
	}
	zipped, err := buildStrings(gz(coords), gz(training), gz(ns), m)
	if err != nil {
		t.Fatal(err)
	}
	// The encoding holds every field of the index.
	if plain.Len() != 2 || !bytes.Equal(encode(t, plain), encode(t, zipped)) {
		t.Errorf("gzip input changed the index")
	}
	if d := cmp.Diff(readStrings(t, coords, training, ns), readStrings(t, gz(coords), gz(training), gz(ns)), cmp.AllowUnexported(parsed{})); d != "" {
		t.Errorf("gzip input read differently (-plain +gzip):\n%s", d)
	}
}

func TestMalformedInput(t *testing.T) {
	okCoords := coordHeader + "1\tt\tT\t0\t0\t0\n"
	okTraining := trainingCSV(1)
	nsHeader := "id\tdoi\tspace\ttitle\tauthors\tyear\tjournal\n"
	tests := []struct {
		name                 string
		coords, training, ns string
		want                 string
	}{
		{"coordinates lack z", "id\ttable_id\ttable_name\tx\ty\n1\tt\tT\t0\t0\n", okTraining, "", "coordinates: header \"id\\ttable_id\\ttable_name\\tx\\ty\" lacks column(s) z"},
		{"coordinates empty", "", okTraining, "", "coordinates: empty input"},
		{"bad x", okCoords + "1\tt\tT\t1,5\t0\t0\n", okTraining, "", "coordinates: line 3: bad x coordinate \"1,5\""},
		{"NaN z", okCoords + "1\tt\tT\t0\t0\tNaN\n", okTraining, "", "coordinates: line 3: bad z coordinate \"NaN\": want a finite number"},
		{"infinite y", okCoords + "1\tt\tT\t0\t-Inf\t0\n", okTraining, "", "line 3: bad y coordinate"},
		{"bad id", okCoords + "x1\tt\tT\t0\t0\t0\n", okTraining, "", "coordinates: line 3: bad id \"x1\""},
		{"missing field", okCoords + "1\tt\t0\t0\t0\n", okTraining, "", "coordinates: line 3: 5 fields, want 6"},
		{"corrupt gzip", "\x1f\x8b\x08\x00garbage", okTraining, "", "corpus: coordinates:"},
		{"training lacks title", okCoords, "pmid,pubmed_url\n1,u\n", "", "training metadata: header \"pmid,pubmed_url\" lacks column(s) title"},
		{"training bad pmid", okCoords, okTraining + "12a,t,u\n", "", "training metadata: line 3: bad pmid \"12a\""},
		{"training negative pmid", okCoords, okTraining + "-4,t,u\n", "", "line 3: bad pmid \"-4\": want a positive integer"},
		{"training repeats pmid", okCoords, okTraining + "2,t,u\n1,t,u\n", "", "training metadata: line 4: pmid 1 repeats training row 1"},
		{"training without rows", okCoords, "pmid,title,pubmed_url\n", "", "training metadata: no articles"},
		{"training bare quote", okCoords, "pmid,title,pubmed_url\n1,\"unterminated,u\n", "", "training metadata"},
		{"neurosynth lacks id", okCoords, okTraining, "pmid\tyear\n1\t2000\n", "neurosynth metadata: header \"pmid\\tyear\" lacks column(s) id"},
		{"neurosynth bad year", okCoords, okTraining, nsHeader + "1\t\tMNI\tt\ta\t20o4\tj\n", "neurosynth metadata: line 2: bad year \"20o4\""},
		{"neurosynth absurd year", okCoords, okTraining, nsHeader + "1\t\tMNI\tt\ta\t99999999999\tj\n", "line 2: bad year"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildStrings(tc.coords, tc.training, tc.ns, fullMask(t))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), "corpus: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := Build(strings.NewReader(okCoords), strings.NewReader(okTraining), nil, nil); err == nil || err.Error() != "corpus: build: no mask" {
		t.Errorf("error %v for a nil mask", err)
	}
	if _, err := Build(nil, strings.NewReader(okTraining), nil, fullMask(t)); err == nil || err.Error() != "corpus: coordinates: no input" {
		t.Errorf("error %v for no coordinates", err)
	}
}

func TestBuildFiles(t *testing.T) {
	dir := t.TempDir()
	coords := coordHeader + "1\tt\tT\t0\t0\t0\n2\tt\tT\t10\t0\t0\n"
	training := trainingCSV(2, 1)
	ns := "id\tdoi\tspace\ttitle\tauthors\tyear\tjournal\n1\t\tMNI\tt\tA B\t2001\tJ\n"
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cp, tp, np := write("coordinates.tsv.gz", gz(coords)), write("corpus_metadata.csv", training), write("metadata.tsv", ns)
	m := fullMask(t)
	for _, c := range []struct {
		name       string
		neurosynth string
		ns         string
	}{{"with neurosynth", np, ns}, {"without", "", ""}} {
		t.Run(c.name, func(t *testing.T) {
			got, err := BuildFiles(cp, tp, c.neurosynth, m)
			if err != nil {
				t.Fatal(err)
			}
			want, err := buildStrings(coords, training, c.ns, m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(encode(t, got), encode(t, want)) {
				t.Error("BuildFiles and Build on the same tables differ")
			}
		})
	}
	missing := filepath.Join(dir, "missing.tsv")
	for name, paths := range map[string][3]string{
		"coordinates": {missing, tp, np},
		"training":    {cp, missing, np},
		"neurosynth":  {cp, tp, missing},
	} {
		if _, err := BuildFiles(paths[0], paths[1], paths[2], m); err == nil || !strings.HasPrefix(err.Error(), "corpus: open "+missing) {
			t.Errorf("missing %s file: error %v", name, err)
		}
	}
}
