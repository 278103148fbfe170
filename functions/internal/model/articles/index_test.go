package articles

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
)

const coordHeader = "id\ttable_id\ttable_name\tx\ty\tz\n"

// trainingCSV lists pmids as training rows, with title "T<pmid>".
func trainingCSV(ids ...int64) string {
	var b strings.Builder
	b.WriteString("pmid,title,pubmed_url\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "%d,T%d,https://www.ncbi.nlm.nih.gov/pubmed/%d\n", id, id, id)
	}
	return b.String()
}

func peakVoxels(ix *Index, pmid int64) []int32 {
	for i, a := range ix.articles {
		if a.PMID == pmid {
			return ix.articlePeaks(i)
		}
	}
	return nil
}

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
	ix, err := buildStrings(coords.String(), trainingCSV(ids...), "", fullMask(t))
	if err != nil {
		t.Fatal(err)
	}
	center := int32(brain.Index(22, 31, 18))
	for n, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := []int32{center}
			if tc.want != nil {
				want = []int32{int32(brain.Index(tc.want.i, tc.want.j, tc.want.k)), center}
			}
			if got := peakVoxels(ix, ids[n]); !slices.Equal(got, want) {
				t.Errorf("peaks of (%g, %g, %g) = %v, want %v", tc.x, tc.y, tc.z, got, want)
			}
		})
	}
}

func TestArticlesWithoutMap(t *testing.T) {
	m := boxMask(t, 10, 20) // MNI x in [−50, −10), y in [−86, −46), z in [−32, 8)
	coords := coordHeader +
		"1\tt\tT\t-70\t-106\t-52\n" + // voxel (5,5,5): in the volume, outside the mask
		"2\tt\tT\t-30\t-66\t-12\n" + // voxel (15,15,15): in the mask
		"4\tt\tT\t-54\t-66\t-12\n" + // voxel (9,15,15): next to the mask, whose blur reaches it
		"4\tt\tT\t500\t0\t0\n" + // outside the volume
		"5\tt\tT\t-54\t-66\t-12\n" + // outside the mask, but with a peak inside:
		"5\tt\tT\t-50\t-66\t-12\n" //   voxel (10,15,15)
	ix, err := buildStrings(coords, trainingCSV(1, 2, 3, 4, 5), "", m)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for i := range ix.Len() {
		got = append(got, ix.Article(i).PMID)
	}
	if want := []int64{2, 5}; !slices.Equal(got, want) {
		t.Errorf("articles with a map: %v, want %v", got, want)
	}
	// Article 5's outside peak still counts: the mask sees part of its blurred mass.
	if got := peakVoxels(ix, 5); len(got) != 2 {
		t.Errorf("article 5 keeps %d peaks, want 2", len(got))
	}
}

func TestNewRejects(t *testing.T) {
	m := boxMask(t, 10, 20)
	in := mni(t, -30, -66, -12)
	tests := []struct {
		name  string
		arts  []Article
		peaks [][]int32
		m     *brain.Mask
		want  string
	}{
		{"nil mask", []Article{titled(1)}, [][]int32{{in}}, nil, "no mask"},
		{"fewer peak lists", []Article{titled(1), titled(2)}, [][]int32{{in}}, m, "2 articles but 1 peak lists"},
		{"more peak lists", []Article{titled(1)}, [][]int32{{in}, {in}}, m, "1 articles but 2 peak lists"},
		{"negative voxel", []Article{titled(1)}, [][]int32{{in, -1}}, m, "article 0 (pmid 1): voxel -1 outside the volume"},
		{"voxel past the volume", []Article{titled(1), titled(2)}, [][]int32{{in}, {brain.NVoxels}}, m, "article 1 (pmid 2): voxel 116380 outside the volume"},
		{"zero pmid", []Article{{Title: "x"}}, [][]int32{{in}}, m, "article 0: pmid 0"},
		{"negative pmid, no map", []Article{titled(1), {PMID: -3}}, [][]int32{{in}, nil}, m, "article 1: pmid -3"},
		{"year beyond 32 bits", []Article{{PMID: 1, Year: math.MaxInt32 + 1}}, [][]int32{{in}}, m, "year 2147483648 does not fit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix, err := New(tc.arts, tc.peaks, tc.m)
			if err == nil {
				t.Fatalf("index of %d articles, want error %q", ix.Len(), tc.want)
			}
			if !strings.HasPrefix(err.Error(), "articles: new index: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// The index is immutable: New keeps copies, not the caller's slices.
func TestNewCopiesItsInput(t *testing.T) {
	m := boxMask(t, 10, 20)
	arts := []Article{titled(1), titled(2)}
	peaks := [][]int32{{mni(t, -30, -66, -12), mni(t, -26, -66, -12)}, {mni(t, -30, -62, -12)}}
	ix := newIndex(t, arts, peaks, m)
	before := encode(t, ix)
	arts[0].Title = "changed"
	peaks[0][0] = mni(t, -22, -66, -12)
	peaks[1] = append(peaks[1][:0], 0)
	if !bytes.Equal(encode(t, ix), before) {
		t.Error("changing New's arguments changed the index")
	}
}

// wantStats are the mean and centred norm of article i's blurred count map computed densely.
func wantStats(ix *Index, i int, m *brain.Mask) (mean, norm float64) {
	vol := make([]float64, brain.NVoxels)
	for _, v := range ix.articlePeaks(i) {
		vol[v]++
	}
	brain.NewKernel(brain.BlurSigma).Blur3D(vol)
	a := m.FromVolume(vol)
	for _, v := range a {
		mean += v
	}
	mean /= float64(len(a))
	for _, v := range a {
		norm += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(norm)
}

func closeRel(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b)) }

func TestDuplicatedPeaksCountTwice(t *testing.T) {
	m := boxMask(t, 5, 30)
	coords := coordHeader +
		"1\tt\tT\t-30\t-66\t-12\n" +
		"1\tt2\tT\t-30\t-66\t-12\n" + // same voxel, from another table
		"1\tt2\tT\t-10\t-66\t-12\n" +
		"2\tt\tT\t-30\t-66\t-12\n" +
		"2\tt\tT\t-10\t-66\t-12\n"
	ix, err := buildStrings(coords, trainingCSV(1, 2), "", m)
	if err != nil {
		t.Fatal(err)
	}
	v, w := int32(brain.Index(15, 15, 15)), int32(brain.Index(20, 15, 15))
	if got, want := ix.articlePeaks(0), []int32{v, v, w}; !slices.Equal(got, want) {
		t.Fatalf("peaks %v, want %v", got, want)
	}
	for i := range ix.Len() {
		mean, norm := wantStats(ix, i, m)
		if !closeRel(ix.mean[i], mean, 1e-12) || !closeRel(ix.norm[i], norm, 1e-12) {
			t.Errorf("article %d: mean, norm = %g, %g; dense %g, %g", ix.Article(i).PMID, ix.mean[i], ix.norm[i], mean, norm)
		}
	}
	if closeRel(ix.norm[0]/ix.mean[0], ix.norm[1]/ix.mean[1], 1e-3) {
		t.Error("a doubled peak left the map's shape unchanged")
	}
}

func TestQuotedTableName(t *testing.T) {
	coords := coordHeader +
		"1\tt1\t\"Table\n1\"\t-30\t-66\t-12\n" +
		"1\tt1\t\"a \"\"quoted\"\" name\"\t-26\t-66\t-12\n" +
		"2\tt1\tstray \" quote\t-22\t-66\t-12\n"
	ix, err := buildStrings(coords, trainingCSV(1, 2), "", fullMask(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := peakVoxels(ix, 1); !slices.Equal(got, []int32{int32(brain.Index(15, 15, 15)), int32(brain.Index(16, 15, 15))}) {
		t.Errorf("article 1 peaks %v", got)
	}
	if got := peakVoxels(ix, 2); !slices.Equal(got, []int32{int32(brain.Index(17, 15, 15))}) {
		t.Errorf("article 2 peaks %v", got)
	}
	// The quoted newline shifts line numbers; errors must name the file's line, not the record.
	_, err = buildStrings(coordHeader+"1\tt1\t\"Table\n1\"\t0\t0\t0\n1\tt1\tT\tabc\t0\t0\n", trainingCSV(1), "", fullMask(t))
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
	var got []Article
	for i := range ix.Len() {
		got = append(got, ix.Article(i))
	}
	want := []Article{
		{PMID: 7, Title: "A title over two lines", Authors: "Doe J, Roe R", Year: 2004, Journal: "NeuroImage", DOI: "10.1/x"},
		{PMID: 3, Title: "Another"},
		{PMID: 9, Title: "Third", Authors: "Smith A", Journal: "J3"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("articles (-want +got):\n%s", d)
	}
	if u := got[0].URL(); u != "https://pubmed.ncbi.nlm.nih.gov/7/" {
		t.Errorf("URL %q", u)
	}
	js, err := json.Marshal(Match{Article: got[0], Correlation: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pmid":7,"title":"A title over two lines","authors":"Doe J, Roe R","year":2004,"journal":"NeuroImage","doi":"10.1/x","correlation":0.5}`; string(js) != want {
		t.Errorf("JSON %s\nwant %s", js, want)
	}
}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
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
	if d := cmp.Diff(plain, zipped, cmp.AllowUnexported(Index{})); d != "" {
		t.Errorf("gzip input changed the index (-plain +gzip):\n%s", d)
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
		{"corrupt gzip", "\x1f\x8b\x08\x00garbage", okTraining, "", "articles: coordinates:"},
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
			if !strings.HasPrefix(err.Error(), "articles: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := Build(strings.NewReader(okCoords), strings.NewReader(okTraining), nil, nil); err == nil {
		t.Error("no error for a nil mask")
	}
}

// smallIndex has articles with metadata, duplicated peaks and boundary peaks, on a box mask.
func smallIndex(t *testing.T) (*Index, *brain.Mask) {
	t.Helper()
	m := boxMask(t, 3, 40)
	rng := rand.New(rand.NewPCG(3, 4))
	var coords strings.Builder
	coords.WriteString(coordHeader)
	var ids []int64
	for a := range 40 {
		id := int64(1000 + 37*a)
		ids = append(ids, id)
		for range 1 + rng.IntN(12) {
			fmt.Fprintf(&coords, "%d\tt\tT\t%.1f\t%.1f\t%.1f\n", id, rng.Float64()*200-100, rng.Float64()*230-130, rng.Float64()*200-80)
		}
		fmt.Fprintf(&coords, "%d\tt\tT\t0\t0\t0\n%d\tt\tT\t0\t0\t0\n", id, id)
	}
	ns := "id\tdoi\tspace\ttitle\tauthors\tyear\tjournal\n" +
		"1000\t10.1/a\tMNI\tx\tÅström K, Núñez R\t1999\tBrain\n" +
		"1037\t\tMNI\tx\tLee C\t2010\tCortex\n"
	ix, err := buildStrings(coords.String(), trainingCSV(ids...), ns, m)
	if err != nil {
		t.Fatal(err)
	}
	return ix, m
}

func encode(t *testing.T, ix *Index) []byte {
	t.Helper()
	var b bytes.Buffer
	n, err := ix.WriteTo(&b)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(b.Len()) {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, b.Len())
	}
	return b.Bytes()
}

func TestSerialisationRoundTrip(t *testing.T) {
	ix, m := smallIndex(t)
	data := encode(t, ix)
	// Two copies back to back: ReadIndex must stop at the end of the first.
	stream := bytes.NewReader(append(append([]byte(nil), data...), data...))
	for copy := range 2 {
		got, err := ReadIndex(stream)
		if err != nil {
			t.Fatalf("copy %d: %v", copy, err)
		}
		if d := cmp.Diff(ix, got, cmp.AllowUnexported(Index{})); d != "" {
			t.Fatalf("copy %d differs (-written +read):\n%s", copy, d)
		}
		if again := encode(t, got); !bytes.Equal(again, data) {
			t.Fatalf("copy %d: re-encoding changed the bytes", copy)
		}
		values := bump(m, [3]float64{0, 0, 0}, 10)
		if d := cmp.Diff(ix.Related(m, values, 5), got.Related(m, values, 5)); d != "" {
			t.Errorf("copy %d: Related differs:\n%s", copy, d)
		}
	}
	if stream.Len() != 0 {
		t.Errorf("%d bytes left unread", stream.Len())
	}
}

func TestSerialisationDeterministic(t *testing.T) {
	a, _ := smallIndex(t)
	b, _ := smallIndex(t)
	if !bytes.Equal(encode(t, a), encode(t, b)) {
		t.Error("two builds of the same input encode differently")
	}
	if !bytes.Equal(encode(t, a), encode(t, a)) {
		t.Error("two encodings of one index differ")
	}
}

// resealed recomputes the checksum of a modified encoding, to reach the payload checks.
func resealed(data []byte) []byte {
	out := append([]byte(nil), data...)
	payload := out[headerSize : len(out)-4]
	binary.LittleEndian.PutUint32(out[len(out)-4:], crc32.ChecksumIEEE(payload))
	return out
}

func TestReadIndexCorrupt(t *testing.T) {
	ix, _ := smallIndex(t)
	data := encode(t, ix)
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), data...)
		f(b)
		return b
	}
	payload := headerSize
	n := ix.Len()
	peaksAt := payload + 20 + n*(8+4+8+8+4)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "header: truncated"},
		{"short header", data[:10], "header: truncated"},
		{"bad magic", mutate(func(b []byte) { b[0] = 'X' }), "bad magic"},
		{"future version", mutate(func(b []byte) { b[8] = 2 }), "format version 2"},
		{"absurd length", mutate(func(b []byte) { b[19] = 0x7f }), "corrupt header"},
		{"truncated payload", data[:len(data)/2], "truncated"},
		{"missing checksum", data[:len(data)-2], "checksum: truncated"},
		{"flipped bit", mutate(func(b []byte) { b[len(b)/2] ^= 4 }), "checksum mismatch"},
		{"article count too large", resealed(mutate(func(b []byte) { b[payload+12+3] = 0x10 })), "do not fit"},
		{"peak outside volume", resealed(mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[peaksAt:], brain.NVoxels) })), "outside the volume"},
		{"bad statistics", resealed(mutate(func(b []byte) {
			binary.LittleEndian.PutUint64(b[payload+20+n*12:], math.Float64bits(-1))
		})), "bad map statistics"},
		{"text length overrun", resealed(mutate(func(b []byte) { copy(b[peaksAt+4*len(ix.peaks):], []byte{0xff, 0xff, 0xff, 0x7f}) })), "text truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadIndex(bytes.NewReader(tc.data))
			if err == nil {
				t.Fatalf("read %d articles, want error %q", got.Len(), tc.want)
			}
			if !strings.HasPrefix(err.Error(), "articles: read index: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	// No prefix of a valid index may read as one, or panic.
	for l := range len(data) {
		if _, err := ReadIndex(bytes.NewReader(data[:l])); err == nil {
			t.Fatalf("prefix of %d of %d bytes read without error", l, len(data))
		}
	}
}

func TestAdjointBlurIsBlur3D(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	vol := make([]float64, brain.NVoxels)
	for i := range vol {
		vol[i] = rng.NormFloat64()
	}
	// Zero lines exercise the shortcut for lines outside the brain.
	clear(vol[:brain.NVoxels/3])
	want := slices.Clone(vol)
	brain.NewKernel(brain.BlurSigma).Blur3D(want)
	got := adjointBlur(slices.Clone(vol), make([]float64, brain.NVoxels), kernelResponses())
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("voxel %d: %g, Blur3D %g", i, got[i], want[i])
		}
	}
}

func TestRelatedMatchesDenseSmall(t *testing.T) {
	ix, m := smallIndex(t)
	rng := rand.New(rand.NewPCG(7, 8))
	noise := make([]float32, m.Len())
	for i := range noise {
		noise[i] = float32(rng.NormFloat64())
	}
	for name, values := range map[string][]float32{
		"bump":  bump(m, [3]float64{10, -20, 0}, 12),
		"noise": noise,
	} {
		t.Run(name, func(t *testing.T) {
			got := ix.Related(m, values, ix.Len())
			want := denseRelated(ix, m, values, ix.Len())
			compareMatches(t, got, want, 1e-12)
		})
	}
}

func compareMatches(t *testing.T, got, want []Match, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d matches, dense %d", len(got), len(want))
	}
	if !slices.Equal(pmids(got), pmids(want)) {
		t.Errorf("ranking %v\n   dense %v", pmids(got), pmids(want))
	}
	for i := range got {
		if got[i].Article != want[i].Article || math.Abs(got[i].Correlation-want[i].Correlation) > tol {
			t.Errorf("rank %d: %d r=%.15f, dense %d r=%.15f", i, got[i].PMID, got[i].Correlation, want[i].PMID, want[i].Correlation)
		}
	}
}

func TestRelatedEdgeCases(t *testing.T) {
	ix, m := smallIndex(t)
	values := bump(m, [3]float64{0, 0, 0}, 10)
	constant := make([]float32, m.Len())
	for i := range constant {
		constant[i] = 3.25
	}
	withNaN := slices.Clone(values)
	withNaN[7] = float32(math.NaN())
	withInf := slices.Clone(values)
	withInf[7] = float32(math.Inf(1))
	tests := []struct {
		name   string
		values []float32
		k      int
		want   int
	}{
		{"zeros", make([]float32, m.Len()), 5, 0},
		{"constant", constant, 5, 0},
		{"NaN", withNaN, 5, 0},
		{"infinity", withInf, 5, 0},
		{"k zero", values, 0, 0},
		{"k negative", values, -1, 0},
		{"k one", values, 1, 1},
		{"k beyond the articles", values, ix.Len() + 10, ix.Len()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ix.Related(m, tc.values, tc.k)
			if len(got) != tc.want || (tc.want == 0 && got != nil) {
				t.Errorf("%d matches (nil: %t), want %d", len(got), got == nil, tc.want)
			}
			for i := 1; i < len(got); i++ {
				if better(got[i], got[i-1]) {
					t.Errorf("rank %d before rank %d", i-1, i)
				}
			}
		})
	}

	panics := []struct {
		name   string
		m      *brain.Mask
		values []float32
	}{
		{"other mask", boxMask(t, 4, 41), values},
		{"nil mask", nil, values},
		{"short values", m, values[1:]},
	}
	for _, tc := range panics {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "articles: Related: ") {
					t.Errorf("panic %v, want an articles: Related: message", r)
				}
			}()
			ix.Related(tc.m, tc.values, 3)
		})
	}
}

func TestRelatedTiesByPMID(t *testing.T) {
	m := boxMask(t, 5, 35)
	// Identical peaks give identical maps and correlations; training order puts larger PMIDs first.
	var coords strings.Builder
	coords.WriteString(coordHeader)
	for _, id := range []int64{50, 40, 30, 20, 10} {
		fmt.Fprintf(&coords, "%d\tt\tT\t-30\t-66\t-12\n%d\tt\tT\t-10\t-46\t0\n", id, id)
	}
	coords.WriteString("60\tt\tT\t30\t10\t40\n")
	ix, err := buildStrings(coords.String(), trainingCSV(60, 50, 40, 30, 20, 10), "", m)
	if err != nil {
		t.Fatal(err)
	}
	values := bump(m, [3]float64{-20, -56, -6}, 10)
	got := ix.Related(m, values, 4)
	if want := []int64{10, 20, 30, 40}; !slices.Equal(pmids(got), want) {
		t.Errorf("top 4 %v, want %v", pmids(got), want)
	}
	for _, g := range got[1:] {
		if g.Correlation != got[0].Correlation {
			t.Errorf("pmid %d: r=%v, want the tie %v", g.PMID, g.Correlation, got[0].Correlation)
		}
	}
	all := ix.Related(m, values, 10)
	if len(all) != 6 || all[5].PMID != 60 {
		t.Errorf("all matches %v, want the five ties then 60", pmids(all))
	}
}

func TestRelatedConcurrent(t *testing.T) {
	ix, m := smallIndex(t)
	rng := rand.New(rand.NewPCG(9, 10))
	var inputs [][]float32
	var want [][]Match
	for range 8 {
		v := bump(m, [3]float64{rng.Float64()*100 - 50, rng.Float64()*100 - 70, rng.Float64()*60 - 20}, 8)
		inputs = append(inputs, v)
		want = append(want, ix.Related(m, v, 5))
	}
	var wg sync.WaitGroup
	got := make([][]Match, len(inputs))
	for g := range inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				got[g] = ix.Related(m, inputs[g], 5)
			}
		}()
	}
	wg.Wait()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("concurrent results differ (-sequential +concurrent):\n%s", d)
	}
}
