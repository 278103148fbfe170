// Command text2brain builds model bundles and predicts brain maps from text on this machine, and
// makes what a deployment uploads.
//
//	text2brain model build --neuroquery DIR --corpus DIR [--metadata FILE] --template FILE --surface DIR --out DIR
//	text2brain model build-neural --onnx FILE --meta FILE --base DIR --out DIR [--ort LIB]
//	text2brain model check [--model DIR] [--ort LIB]
//	text2brain model publish --bucket BUCKET [--model DIR] [--ort LIB] [--json] [--dry-run] [--tfvars FILE]
//	text2brain predict [--model DIR] [--ort LIB] [--out map.nii.gz] [--png preview.png] [--json] QUERY…
//	text2brain decode [--model DIR] [--ort LIB] [--out map.nii.gz] [--png preview.png] [--json] FILE
//	text2brain source-zip --out FILE [--root DIR]
//	text2brain site-assets --templates DIR --site DIR
//
// model publish verifies the bundle and uploads it and the ONNX Runtime library to the models
// bucket (package publish), with the Cloud Storage client's usual credentials (Application Default
// Credentials, or STORAGE_EMULATOR_HOST), and prints the values of the functions' T2B_MODEL_URI
// and ONNXRUNTIME_LIB. source-zip writes the functions' source archive (package deploy): the one
// archive a deployment uploads.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/storage"

	"github.com/text2brain/text2brain/functions/internal/model"
	"github.com/text2brain/text2brain/functions/internal/model/brain"
	"github.com/text2brain/text2brain/functions/internal/model/bundle"
	"github.com/text2brain/text2brain/functions/internal/model/textfeat"
	"github.com/text2brain/text2brain/functions/internal/modelbuild"
	"github.com/text2brain/text2brain/functions/internal/release/deploy"
	"github.com/text2brain/text2brain/functions/internal/release/publish"
	"github.com/text2brain/text2brain/functions/internal/release/siteassets"
	"github.com/text2brain/text2brain/functions/internal/serve/queryapi"
	"github.com/text2brain/text2brain/functions/internal/serve/querytext"
)

const usage = `text2brain: free text → predicted brain activation map.

Usage:
  text2brain model build --neuroquery DIR --corpus DIR [--metadata FILE] --template FILE --surface DIR --out DIR
  text2brain model build-neural --onnx FILE --meta FILE --base DIR --out DIR [--ort LIB]
  text2brain model check [--model DIR] [--ort LIB]
  text2brain model publish --bucket BUCKET [--model DIR] [--ort LIB] [--json] [--dry-run] [--tfvars FILE]
  text2brain predict [--model DIR] [--ort LIB] [--out map.nii.gz] [--png preview.png] [--json] QUERY…
  text2brain decode [--model DIR] [--ort LIB] [--out map.nii.gz] [--png preview.png] [--json] FILE
  text2brain source-zip --out FILE [--root DIR]
  text2brain site-assets --templates DIR --site DIR

  predict        print the map's recognised terms, peaks, related terms and articles; --json
                 prints one JSON object whatever happens: the result, or {query,
                 recognized_terms, error: {code, message}} with exit status 1
  decode         the other way: read a statistical map in MNI space (.nii or .nii.gz, NIfTI-1 or
                 -2, any grid), resample it onto the model's 4 mm grid and print its peaks, the
                 terms the decoder ranks highest (with their scores) and the related articles;
                 --out writes the resampled map; --json prints one JSON object whatever happens:
                 the result, or {file, error: {code, message}} with exit status 1
  model build-neural
                 make a bundle of another model's ONNX export (neural/README.md gives the
                 contract; neural/train.py writes FILEs model.onnx and neural.json), sharing the
                 vocabulary, mask, articles, template, surface and decoder of the NeuroQuery
                 bundle --base; then load it through ONNX Runtime to check that it runs
  model check    the anatomical checks a model passes before it may be the default: the
                 strongest peak of "faces", "working memory" and "self-generated thought" in
                 its region; exit status 1 if one fails
  model publish  verify the bundle, upload it to gs://BUCKET/models/VERSION/ and the ONNX Runtime
                 library to gs://BUCKET/onnxruntime/SHA256/ (what is there already is skipped);
                 print T2B_MODEL_URI and ONNXRUNTIME_LIB for the functions
  source-zip     write the functions' source archive that a deployment uploads (run it from the
                 repository root, or give --root)
  site-assets    finish the built web page in --site (frontend/dist/site): add the viewer's 2 mm
                 template and fsaverage5 meshes made from --templates, and gzip copies of its files

Environment:
  TEXT2BRAIN_MODEL       default bundle directory for predict and model publish (else build/model)
  ONNXRUNTIME_LIB        path of libonnxruntime.so (else .cache/onnxruntime/libonnxruntime.so)
  STORAGE_EMULATOR_HOST  host:port of a Cloud Storage emulator for model publish (else Google's,
                         with Application Default Credentials)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "text2brain:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, args []string, out, errOut io.Writer) error {
	switch {
	case len(args) >= 2 && args[0] == "model" && args[1] == "build":
		return buildCmd(args[2:], out)
	case len(args) >= 2 && args[0] == "model" && args[1] == "build-neural":
		return buildNeuralCmd(args[2:], out)
	case len(args) >= 2 && args[0] == "model" && args[1] == "check":
		return checkCmd(ctx, args[2:], out)
	case len(args) >= 2 && args[0] == "model" && args[1] == "publish":
		return publishCmd(ctx, args[2:], out, errOut)
	case len(args) >= 1 && args[0] == "predict":
		return predictCmd(ctx, args[1:], out)
	case len(args) >= 1 && args[0] == "decode":
		return decodeCmd(ctx, args[1:], out)
	case len(args) >= 1 && args[0] == "source-zip":
		return sourceZipCmd(args[1:], out)
	case len(args) >= 1 && args[0] == "site-assets":
		return siteAssetsCmd(args[1:], out)
	case len(args) >= 1 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help"):
		fmt.Fprint(out, usage)
		return nil
	}
	fmt.Fprint(errOut, usage)
	return fmt.Errorf("unknown command %q", strings.Join(args, " "))
}

func checkCmd(ctx context.Context, args []string, out io.Writer) error {
	fl := flag.NewFlagSet("text2brain model check", flag.ContinueOnError)
	dir := fl.String("model", envOr(bundle.DirEnv, bundle.DefaultDir), "model bundle directory")
	ortLib := fl.String("ort", envOr(model.ORTLibraryEnv, model.DefaultORTLibrary), "path of libonnxruntime.so")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("model check: unexpected arguments %q", fl.Args())
	}
	m, err := model.Open(*dir, model.Options{ORTLibrary: *ortLib})
	if err != nil {
		return err
	}
	defer m.Close()
	res, err := m.CheckAnatomy(ctx)
	if err != nil {
		return err
	}
	failed := 0
	fmt.Fprintf(out, "model %s (%s):\n", m.Version(), m.Bundle().Manifest.DisplayName())
	for _, r := range res {
		verdict := "pass"
		if !r.Pass {
			verdict, failed = "FAIL", failed+1
		}
		fmt.Fprintf(out, "  %-4s  %-24q strongest peak (%g, %g, %g), z %.1f; want %s\n", verdict, r.Query,
			r.Peak.MNI[0], r.Peak.MNI[1], r.Peak.MNI[2], r.Peak.Z, r.Region)
	}
	if failed > 0 {
		return fmt.Errorf("model check: %d of %d anatomical checks failed", failed, len(res))
	}
	return nil
}

func buildNeuralCmd(args []string, out io.Writer) error {
	fl := flag.NewFlagSet("text2brain model build-neural", flag.ContinueOnError)
	var opt modelbuild.NeuralOptions
	fl.StringVar(&opt.ONNX, "onnx", "", "the exported graph (model.onnx)")
	fl.StringVar(&opt.Meta, "meta", "", "its description (neural.json)")
	fl.StringVar(&opt.Base, "base", "", "the NeuroQuery bundle whose vocabulary, mask, articles, template, surface and decoder it shares")
	fl.StringVar(&opt.Out, "out", "", "bundle directory to write (replaced)")
	ortLib := fl.String("ort", envOr(model.ORTLibraryEnv, model.DefaultORTLibrary), "path of libonnxruntime.so")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("model build-neural: unexpected arguments %q", fl.Args())
	}
	start := time.Now()
	man, err := modelbuild.BuildNeural(opt)
	if err != nil {
		return err
	}
	m, err := model.Open(opt.Out, model.Options{ORTLibrary: *ortLib})
	if err != nil {
		return fmt.Errorf("model build-neural: the bundle was written but does not load: %w", err)
	}
	defer m.Close()
	fmt.Fprintf(out, "bundle %s: model %s (%s), %d features (%d with a map), %d files, built and loaded in %s\n",
		opt.Out, man.ModelVersion, man.Kind, man.Features, len(m.Bundle().Vocabulary.Selected), len(man.Files), time.Since(start).Round(time.Millisecond))
	return nil
}

func buildCmd(args []string, out io.Writer) error {
	fl := flag.NewFlagSet("text2brain model build", flag.ContinueOnError)
	var opt modelbuild.BuildOptions
	fl.StringVar(&opt.NeuroQuery, "neuroquery", "", "model directory in the NeuroQuery layout (neuroquery_model/)")
	fl.StringVar(&opt.Corpus, "corpus", "", "NeuroQuery corpus directory (coordinates.tsv.gz)")
	fl.StringVar(&opt.Metadata, "metadata", "", "Neurosynth metadata.tsv.gz (authors, year, journal, DOI); optional")
	fl.StringVar(&opt.Template, "template", "", "1 mm MNI152 T1 template (.nii.gz) for previews")
	fl.StringVar(&opt.Surface, "surface", "", "fsaverage5 mesh directory (pial and white .gii.gz) for the surface view")
	fl.StringVar(&opt.Out, "out", "", "bundle directory to write (replaced)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("model build: unexpected arguments %q", fl.Args())
	}
	start := time.Now()
	man, err := modelbuild.Build(opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "bundle %s: model %s, %d features, %d articles, %d files, built in %s\n",
		opt.Out, man.ModelVersion, man.Features, man.Articles, len(man.Files), time.Since(start).Round(time.Millisecond))
	return nil
}

func publishCmd(ctx context.Context, args []string, out, errOut io.Writer) error {
	fl := flag.NewFlagSet("text2brain model publish", flag.ContinueOnError)
	bucket := fl.String("bucket", "", "the models bucket's name (Terraform's output models_bucket)")
	dir := fl.String("model", envOr(bundle.DirEnv, bundle.DefaultDir), "model bundle directory")
	ortLib := fl.String("ort", envOr(model.ORTLibraryEnv, model.DefaultORTLibrary), "path of libonnxruntime.so")
	asJSON := fl.Bool("json", false, "print JSON instead of text")
	dryRun := fl.Bool("dry-run", false, "verify and print where everything would go, with no request (--bucket optional)")
	tfvars := fl.String("tfvars", "", "also write Terraform's model_version and onnxruntime_object to this JSON variables file")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("model publish: unexpected arguments %q", fl.Args())
	}
	if *dryRun && *bucket == "" {
		// Nothing is sent, so no bucket is needed: the object names do not depend on it.
	} else if *bucket == "" {
		return errors.New("model publish: --bucket is required: the models bucket's name (`terraform output -raw models_bucket`)")
	}
	if *bucket != "" {
		if err := publish.CheckBucketName(*bucket); err != nil {
			return fmt.Errorf("model publish: --bucket: %w", err)
		}
	}
	var client *storage.Client
	if !*dryRun {
		var err error
		if client, err = storage.NewClient(ctx); err != nil {
			return fmt.Errorf("model publish: a Cloud Storage client: %w (log in with `gcloud auth application-default login`)", err)
		}
		defer client.Close()
	}
	// Progress on errOut, so that out holds only the result (a build script reads the JSON).
	res, err := publish.Upload(ctx, client, publish.Options{Bucket: *bucket, BundleDir: *dir, ORTLibrary: *ortLib, Log: errOut, DryRun: *dryRun})
	if err != nil {
		return err
	}
	if *tfvars != "" {
		vars, err := res.TFVars()
		if err != nil {
			return err
		}
		if _, _, err := writeAtomic(*tfvars, func(w io.Writer) error { _, err := w.Write(append(vars, '\n')); return err }); err != nil {
			return fmt.Errorf("model publish: --tfvars: %w", err)
		}
	}
	if *asJSON {
		return json.NewEncoder(out).Encode(res)
	}
	if *dryRun {
		fmt.Fprintf(out, "model %s: verified; nothing was sent (--dry-run)\n", res.ModelVersion)
	} else {
		fmt.Fprintf(out, "model %s: %d objects uploaded, %d there already\n", res.ModelVersion, res.Uploaded, res.Skipped)
	}
	fmt.Fprintf(out, "T2B_MODEL_URI=%s\n", res.ModelURI)
	fmt.Fprintf(out, "%s=%s\n", model.ORTLibraryEnv, res.ONNXRuntimeURI)
	return nil
}

func sourceZipCmd(args []string, out io.Writer) error {
	fl := flag.NewFlagSet("text2brain source-zip", flag.ContinueOnError)
	path := fl.String("out", "", "the archive to write (replaced; its directory is made if missing)")
	root := fl.String("root", ".", "the repository root")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("source-zip: unexpected arguments %q", fl.Args())
	}
	if *path == "" {
		return errors.New("source-zip: --out is required, e.g. --out build/function-source.zip")
	}
	if _, err := os.Stat(filepath.Join(*root, "go.mod")); err != nil {
		return fmt.Errorf("source-zip: %s is not the repository root (no go.mod): run it from the root or give --root", *root)
	}
	size, sum, err := writeAtomic(*path, func(w io.Writer) error { return deploy.WriteZip(w, *root) })
	if err != nil {
		return fmt.Errorf("source-zip: %w", err)
	}
	fmt.Fprintf(out, "%s: %d bytes, sha256 %s\n", *path, size, sum)
	return nil
}

func siteAssetsCmd(args []string, out io.Writer) error {
	fl := flag.NewFlagSet("text2brain site-assets", flag.ContinueOnError)
	templates := fl.String("templates", "", "the templates directory (mni152_t1_1mm.nii.gz, fsaverage5/)")
	site := fl.String("site", "", "the built page (frontend/dist/site)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *templates == "" || *site == "" || fl.NArg() > 0 {
		return errors.New("site-assets: give --templates DIR and --site DIR, and nothing else")
	}
	rep, err := siteassets.Build(*templates, *site)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "site %s: %d files, %d bytes (%d gzip copies); template %v at 2 mm\n", *site, rep.Files, rep.Bytes, rep.Compressed, rep.TemplateDim)
	return nil
}

// writeAtomic writes a file through a temporary file in its directory, renamed into place only
// once complete, and returns its size and SHA-256.
func writeAtomic(path string, write func(io.Writer) error) (int64, string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(tmp.Name()) // fails once renamed
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(tmp, h)}
	if err := write(cw); err != nil {
		tmp.Close()
		return 0, "", err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return 0, "", err
	}
	if err := tmp.Close(); err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, "", err
	}
	return cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// predictError is a predict that gave no map: a code of the API's and a sentence for a person.
type predictError struct {
	code, message string
	// query is the normalised text when there is one, else the text as given; terms are the
	// recognised terms when the model was loaded.
	query string
	terms []string
}

func (e *predictError) Error() string { return e.message }

func predictCmd(ctx context.Context, args []string, out io.Writer) error {
	fl := flag.NewFlagSet("text2brain predict", flag.ContinueOnError)
	dir := fl.String("model", envOr(bundle.DirEnv, bundle.DefaultDir), "model bundle directory")
	ortLib := fl.String("ort", envOr(model.ORTLibraryEnv, model.DefaultORTLibrary), "path of libonnxruntime.so")
	niiPath := fl.String("out", "", "write the map as NIfTI (.nii.gz) to this file")
	pngPath := fl.String("png", "", "write a preview PNG to this file")
	asJSON := fl.Bool("json", false, "print JSON instead of text: the result, or {query, recognized_terms, error: {code, message}}")
	if err := fl.Parse(args); err != nil {
		// The flag package has said what is wrong on stderr; a script reading stdout gets JSON.
		if !errors.Is(err, flag.ErrHelp) && slices.ContainsFunc(args, func(a string) bool { return a == "--json" || a == "-json" || a == "--json=true" }) {
			writePredictError(out, &predictError{code: "usage", message: "predict: " + err.Error(), query: strings.Join(fl.Args(), " ")})
		}
		return err
	}
	res, m, timings, err := predict(ctx, fl.Args(), *dir, *ortLib, *niiPath, *pngPath)
	if m != nil {
		defer m.Close()
	}
	if err != nil {
		if *asJSON {
			var pe *predictError
			if !errors.As(err, &pe) {
				pe = &predictError{code: "prediction_failed", message: err.Error(), query: strings.Join(fl.Args(), " ")}
			}
			writePredictError(out, pe)
		}
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*model.Result
			Timings cliTimings `json:"timings"`
		}{res, timings})
	}
	printResult(out, res, timings)
	return nil
}

// writePredictError prints a predict that gave no map as one JSON object, as the API words it.
func writePredictError(out io.Writer, e *predictError) {
	terms := e.terms
	if terms == nil {
		terms = []string{}
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{"query": e.query, "recognized_terms": terms,
		"error": map[string]string{"code": e.code, "message": e.message}})
}

// predict normalises the words of a query as the API does, loads the model and predicts, writing
// the files asked for. Every failure is a *predictError; m is the loaded model, to close.
func predict(ctx context.Context, words []string, dir, ortLib, niiPath, pngPath string) (_ *model.Result, m *model.Model, _ cliTimings, _ error) {
	raw := strings.Join(words, " ")
	// The one normalisation of the API, so that the CLI maps a text as the service does.
	query, err := querytext.Normalize(raw)
	switch {
	case errors.Is(err, querytext.ErrEmpty):
		return nil, nil, cliTimings{}, &predictError{code: "missing_query", message: "predict: give the query text, e.g. text2brain predict working memory.", query: raw}
	case errors.Is(err, querytext.ErrTooLong):
		return nil, nil, cliTimings{}, &predictError{code: "too_long", message: "predict: " + querytext.Message(err), query: raw}
	case err != nil:
		return nil, nil, cliTimings{}, &predictError{code: "invalid_query", message: "predict: " + querytext.Message(err), query: raw}
	}

	start := time.Now()
	m, err = model.Open(dir, model.Options{ORTLibrary: ortLib})
	if err != nil {
		return nil, nil, cliTimings{}, &predictError{code: "model_unavailable", message: err.Error(), query: query}
	}
	loadMS := msSince(start)

	terms := m.Featurizer().Terms(query)
	res, err := m.Predict(ctx, query)
	switch {
	case errors.Is(err, model.ErrNoMappedTerms): // before ErrNoKnownTerms, which it also is
		return nil, m, cliTimings{}, &predictError{code: "no_mapped_terms", message: textfeat.NoMappedTermsMessage(terms), query: query, terms: terms}
	case errors.Is(err, model.ErrNoKnownTerms):
		return nil, m, cliTimings{}, &predictError{code: "no_known_terms", message: textfeat.NoKnownTermsMessage(query), query: query, terms: terms}
	case err != nil:
		return nil, m, cliTimings{}, &predictError{code: "prediction_failed", message: err.Error(), query: query, terms: terms}
	}
	var niiMS, pngMS float64
	if niiPath != "" {
		t := time.Now()
		if err := writeFile(niiPath, func(w io.Writer) error { return m.WriteNIfTI(w, res) }); err != nil {
			return nil, m, cliTimings{}, &predictError{code: "write_failed", message: err.Error(), query: query, terms: terms}
		}
		niiMS = msSince(t)
	}
	if pngPath != "" {
		t := time.Now()
		if err := writeFile(pngPath, func(w io.Writer) error { return m.WritePreview(w, res) }); err != nil {
			return nil, m, cliTimings{}, &predictError{code: "write_failed", message: err.Error(), query: query, terms: terms}
		}
		pngMS = msSince(t)
	}
	return res, m, cliTimings{Timings: res.Timings, LoadMS: loadMS, NIfTIMS: niiMS, PNGMS: pngMS, PeakRSSMB: peakRSSMB()}, nil
}

type cliTimings struct {
	model.Timings
	LoadMS    float64 `json:"load_ms"`
	NIfTIMS   float64 `json:"nifti_ms,omitempty"`
	PNGMS     float64 `json:"png_ms,omitempty"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// peakRSSMB is the process's peak resident memory: the figure the 8 GB Predict function is sized by.
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

func printResult(out io.Writer, r *model.Result, t cliTimings) {
	fmt.Fprintf(out, "query:            %s\n", r.Query)
	fmt.Fprintf(out, "model:            %s\n", r.ModelVersion)
	fmt.Fprintf(out, "recognized terms: %s\n", strings.Join(r.Terms, ", "))
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(out, "\npeaks (MNI mm):")
	fmt.Fprintln(tw, "x\ty\tz\tz-score\t")
	for _, p := range r.Peaks {
		fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%.2f\t\n", p.MNI[0], p.MNI[1], p.MNI[2], p.Z)
	}
	tw.Flush()
	fmt.Fprintln(out, "\nrelated terms (weight, weight in map):")
	for _, term := range r.RelatedTerms {
		fmt.Fprintf(out, "  %-32s %.3f  %.3f\n", term.Term, term.Weight, term.MapWeight)
	}
	fmt.Fprintln(out, "\nrelated articles (Pearson r):")
	for _, a := range r.RelatedArticles {
		var byline []string
		for _, s := range []string{a.Authors, a.Journal} {
			if s != "" {
				byline = append(byline, s)
			}
		}
		if a.Year > 0 {
			byline = append(byline, strconv.Itoa(a.Year))
		}
		byline = append(byline, a.URL())
		fmt.Fprintf(out, "  %.3f  %s\n         %s\n", a.Correlation, a.Title, strings.Join(byline, ". "))
	}
	fmt.Fprintf(out, "\ntimings: load %.0f ms; features %.2f ms, inference %.2f ms, articles+peaks %.2f ms, terms %.2f ms, total %.2f ms",
		t.LoadMS, t.FeaturesMS, t.InferMS, t.ArticlesMS, t.TermsMS, t.TotalMS)
	if t.NIfTIMS > 0 {
		fmt.Fprintf(out, "; NIfTI %.1f ms", t.NIfTIMS)
	}
	if t.PNGMS > 0 {
		fmt.Fprintf(out, "; PNG %.1f ms", t.PNGMS)
	}
	fmt.Fprintf(out, "; peak memory %.0f MB\n", t.PeakRSSMB)
}

// decodeCmd decodes a map file: the API's decodings, on this machine.
func decodeCmd(ctx context.Context, args []string, out io.Writer) error {
	fl := flag.NewFlagSet("text2brain decode", flag.ContinueOnError)
	dir := fl.String("model", envOr(bundle.DirEnv, bundle.DefaultDir), "model bundle directory")
	ortLib := fl.String("ort", envOr(model.ORTLibraryEnv, model.DefaultORTLibrary), "path of libonnxruntime.so")
	niiPath := fl.String("out", "", "write the map resampled onto the model's grid as NIfTI (.nii.gz) to this file")
	pngPath := fl.String("png", "", "write a preview PNG to this file")
	asJSON := fl.Bool("json", false, "print JSON instead of text: the result, or {file, error: {code, message}}")
	if err := fl.Parse(args); err != nil {
		return err
	}
	fail := func(file, code, message string) error {
		if *asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			_ = enc.Encode(map[string]any{"file": file, "error": map[string]string{"code": code, "message": message}})
		}
		return errors.New("decode: " + message)
	}
	if fl.NArg() != 1 {
		return fail("", "usage", "give one NIfTI file, e.g. text2brain decode zstat1.nii.gz")
	}
	file := fl.Arg(0)
	data, err := os.ReadFile(file)
	if err != nil {
		return fail(file, "unreadable", err.Error())
	}
	start := time.Now()
	m, err := model.Open(*dir, model.Options{ORTLibrary: *ortLib})
	if err != nil {
		return fail(file, "model_unavailable", err.Error())
	}
	defer m.Close()
	loadMS := msSince(start)
	// The checks of the API, with its words.
	if status, code, msg := queryapi.CheckUpload(data, m.Bundle().Mask); status != 0 {
		return fail(file, code, msg)
	}
	vol, err := brain.ReadNIfTI(bytes.NewReader(data))
	if err != nil {
		_, code, msg := queryapi.UploadError(err)
		return fail(file, code, msg)
	}
	res, err := m.Decode(ctx, vol, filepath.Base(file))
	if err != nil {
		return fail(file, "decoding_failed", err.Error())
	}
	if *niiPath != "" {
		if err := writeFile(*niiPath, func(w io.Writer) error { return m.WriteNIfTI(w, res) }); err != nil {
			return fail(file, "write_failed", err.Error())
		}
	}
	if *pngPath != "" {
		if err := writeFile(*pngPath, func(w io.Writer) error { return m.WritePreview(w, res) }); err != nil {
			return fail(file, "write_failed", err.Error())
		}
	}
	timings := cliTimings{Timings: res.Timings, LoadMS: loadMS, PeakRSSMB: peakRSSMB()}
	terms := make([]queryapi.DecodedTerm, 0, len(res.RelatedTerms))
	for _, t := range res.RelatedTerms {
		terms = append(terms, queryapi.DecodedTerm{Term: t.Term, Score: t.Weight})
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"file": file, "model_version": res.ModelVersion, "related_terms": terms,
			"related_articles": res.RelatedArticles, "peaks": res.Peaks, "timings": timings})
	}
	fmt.Fprintf(out, "file:   %s\nmodel:  %s\n", file, res.ModelVersion)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(out, "\npeaks (MNI mm):")
	fmt.Fprintln(tw, "x\ty\tz\tvalue\t")
	for _, p := range res.Peaks {
		fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%.3g\t\n", p.MNI[0], p.MNI[1], p.MNI[2], p.Z)
	}
	tw.Flush()
	fmt.Fprintln(out, "\nrelated terms (decoder score):")
	for _, t := range terms {
		fmt.Fprintf(out, "  %-32s %.4f\n", t.Term, t.Score)
	}
	fmt.Fprintln(out, "\nrelated articles (Pearson r):")
	for _, a := range res.RelatedArticles {
		fmt.Fprintf(out, "  %.3f  %s\n         %s\n", a.Correlation, a.Title, a.URL())
	}
	fmt.Fprintf(out, "\ntimings: load %.0f ms; resampling %.2f ms, articles+peaks %.2f ms, terms %.2f ms, total %.2f ms\n",
		timings.LoadMS, timings.FeaturesMS, timings.ArticlesMS, timings.TermsMS, timings.TotalMS)
	return nil
}
