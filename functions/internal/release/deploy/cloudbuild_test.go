package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// cloudBuild is the part of cloudbuild.yaml's schema that the checks read.
type cloudBuild struct {
	Substitutions  map[string]string `yaml:"substitutions"`
	ServiceAccount string            `yaml:"serviceAccount"`
	Options        struct {
		Logging string   `yaml:"logging"`
		Env     []string `yaml:"env"`
	} `yaml:"options"`
	Steps []struct {
		ID         string   `yaml:"id"`
		Name       string   `yaml:"name"`
		Entrypoint string   `yaml:"entrypoint"`
		Args       []string `yaml:"args"`
		Env        []string `yaml:"env"`
		WaitFor    []string `yaml:"waitFor"`
	} `yaml:"steps"`
}

func readCloudBuild(t *testing.T) (cloudBuild, string) {
	t.Helper()
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "cloudbuild.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cb cloudBuild
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(false)
	if err := dec.Decode(&cb); err != nil {
		t.Fatalf("cloudbuild.yaml: %v", err)
	}
	return cb, root
}

// The build tests, builds the frontend, makes the archive, builds the model, and runs Terraform
// init, plan and apply, in an order that respects what each step needs.
func TestCloudBuildSteps(t *testing.T) {
	cb, root := readCloudBuild(t)
	var ids []string
	for _, s := range cb.Steps {
		ids = append(ids, s.ID)
	}
	want := []string{"toolchain-go", "toolchain-terraform", "data", "frontend", "source", "model", "test",
		"terraform-init", "publish-model", "terraform-plan", "terraform-apply"}
	if !slices.Equal(ids, want) {
		t.Fatalf("steps %v, want %v", ids, want)
	}

	// Every image is public and pinned to a version (never latest or untagged).
	public := regexp.MustCompile(`^(golang|node|hashicorp/terraform|gcr\.io/google\.com/cloudsdktool/google-cloud-cli):[a-z0-9][a-z0-9.-]*$`)
	// Node.js releases that are past their end of life get no fixes.
	for _, s := range cb.Steps {
		if strings.HasPrefix(s.Name, "node:") && !strings.HasPrefix(s.Name, "node:22-") && !strings.HasPrefix(s.Name, "node:24-") {
			t.Errorf("step %s: %s is not a maintained Node.js line", s.ID, s.Name)
		}
	}
	for _, s := range cb.Steps {
		if !public.MatchString(s.Name) || strings.HasSuffix(s.Name, ":latest") {
			t.Errorf("step %s: image %q is not a pinned public image", s.ID, s.Name)
		}
	}
	// The Go image is the Go of go.mod.
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goVersion == nil || cb.Steps[0].Name != "golang:"+string(goVersion[1])+"-bookworm" {
		t.Errorf("the Go toolchain image is %s; go.mod says go %s", cb.Steps[0].Name, goVersion[1])
	}

	// A step runs only after those it needs: Cloud Build runs a step without waitFor after all the
	// steps before it, and one with waitFor after those only.
	needs := map[string][]string{
		"source": {"toolchain-go"}, "model": {"toolchain-go", "data"},
		"test":           {"toolchain-go", "toolchain-terraform", "data", "model"},
		"terraform-init": {"test", "source", "toolchain-terraform", "model"},
		"publish-model":  {"terraform-init", "model"}, "terraform-plan": {"publish-model", "source"},
		"terraform-apply": {"terraform-plan"},
	}
	for i, s := range cb.Steps {
		after := s.WaitFor
		if after == nil {
			after = ids[:i]
		}
		for _, n := range needs[s.ID] {
			if !slices.Contains(after, n) && !transitivelyAfter(cb, s.WaitFor, n) {
				t.Errorf("step %s does not wait for %s", s.ID, n)
			}
		}
	}

	// A user-specified service account, the one terraform/bootstrap makes, logging as such builds must.
	if cb.ServiceAccount != "projects/$PROJECT_ID/serviceAccounts/${_NAME_PREFIX}-deploy@$PROJECT_ID.iam.gserviceaccount.com" {
		t.Errorf("serviceAccount %q, want the bootstrap's deployer", cb.ServiceAccount)
	}
	boot, err := os.ReadFile(filepath.Join(root, "terraform", "bootstrap", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(boot), `account_id   = "${local.prefix}-deploy"`) {
		t.Error("terraform/bootstrap does not make the ${prefix}-deploy account that cloudbuild.yaml names")
	}
	if cb.Options.Logging != "CLOUD_LOGGING_ONLY" {
		t.Errorf("options.logging %q: a build with its own service account must log to Cloud Logging only", cb.Options.Logging)
	}

	// Every substitution used is declared, and the bootstrap's trigger sets the required ones.
	used := regexp.MustCompile(`\$\{(_[A-Z_]+)\}`)
	all, _ := os.ReadFile(filepath.Join(root, "cloudbuild.yaml"))
	for _, m := range used.FindAllStringSubmatch(string(all), -1) {
		if _, ok := cb.Substitutions[m[1]]; !ok {
			t.Errorf("substitution %s is used but not declared", m[1])
		}
	}
	for name := range cb.Substitutions {
		if !strings.Contains(string(boot), name+" ") && !strings.Contains(string(boot), name+"=") {
			t.Errorf("substitution %s is not set by the bootstrap's trigger", name)
		}
	}
}

// transitivelyAfter reports whether a step that waits for waitFor runs after step n.
func transitivelyAfter(cb cloudBuild, waitFor []string, n string) bool {
	index := map[string]int{}
	for i, s := range cb.Steps {
		index[s.ID] = i
	}
	var after func(id string, seen map[string]bool) bool
	after = func(id string, seen map[string]bool) bool {
		if id == n {
			return true
		}
		if seen[id] {
			return false
		}
		seen[id] = true
		s := cb.Steps[index[id]]
		deps := s.WaitFor
		if deps == nil {
			for _, p := range cb.Steps[:index[id]] {
				deps = append(deps, p.ID)
			}
		}
		for _, d := range deps {
			if d != "-" && after(d, seen) {
				return true
			}
		}
		return false
	}
	for _, w := range waitFor {
		if after(w, map[string]bool{}) {
			return true
		}
	}
	return false
}

// Every repository file the build names exists, and every script is executable.
func TestCloudBuildFilesExist(t *testing.T) {
	cb, root := readCloudBuild(t)
	path := regexp.MustCompile(`^(scripts|terraform|functions)/|^\./functions/`)
	seen := 0
	for _, s := range cb.Steps {
		for _, a := range s.Args {
			if !path.MatchString(a) {
				continue
			}
			seen++
			fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(a, "./"))))
			if err != nil {
				t.Errorf("step %s names %s: %v", s.ID, a, err)
				continue
			}
			if strings.HasSuffix(a, ".sh") && fi.Mode()&0o111 == 0 {
				t.Errorf("step %s: %s is not executable", s.ID, a)
			}
		}
	}
	if seen < 5 {
		t.Errorf("only %d repository paths found in the steps", seen)
	}
	// Make targets the steps call exist.
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range cb.Steps {
		for i, a := range s.Args {
			if a != "make" {
				continue
			}
			for _, target := range s.Args[i+1:] {
				if strings.Contains(target, "=") {
					continue
				}
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`).Match(makefile) {
					t.Errorf("step %s calls make %s, which the Makefile lacks", s.ID, target)
				}
			}
		}
	}
	// The scripts' own references to other scripts.
	for _, name := range []string{"env.sh", "with-go.sh", "fetch-data.sh", "test.sh", "deploy.sh"} {
		if _, err := os.Stat(filepath.Join(root, "scripts", "cloudbuild", name)); err != nil {
			t.Error(err)
		}
	}
}

// The archive the build deploys is the one this package makes, at the path Terraform uploads.
func TestCloudBuildArchive(t *testing.T) {
	cb, root := readCloudBuild(t)
	var args []string
	for _, s := range cb.Steps {
		if s.ID == "source" {
			args = s.Args
		}
	}
	i := slices.Index(args, "go")
	if i < 0 || !slices.Equal(args[i:i+4], []string{"go", "run", "./functions/cmd/text2brain", "source-zip"}) {
		t.Fatalf("the source step runs %q, want go run ./functions/cmd/text2brain source-zip", args)
	}
	out := args[slices.Index(args, "--out")+1]
	vars, err := os.ReadFile(filepath.Join(root, "terraform", "variables.tf"))
	if err != nil {
		t.Fatal(err)
	}
	def := regexp.MustCompile(`(?s)variable "function_source_zip" \{.*?default\s*=\s*"([^"]+)"`).FindSubmatch(vars)
	if def == nil || filepath.Clean(filepath.Join("terraform", string(def[1]))) != filepath.Clean(out) {
		t.Errorf("the build writes %s; Terraform uploads %s (from terraform/)", out, def)
	}

	// Run the step's command as the build does (from the repository root, into a temporary path)
	// and compare with WriteZip.
	tmp := filepath.Join(t.TempDir(), "source.zip")
	cmdArgs := append(slices.Clone(args[i+1:]), "")
	cmdArgs[slices.Index(cmdArgs, "--out")+1] = tmp
	cmdArgs = cmdArgs[:len(cmdArgs)-1]
	cmd := exec.CommandContext(t.Context(), "go", cmdArgs...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(cmdArgs, " "), err, b)
	}
	got, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := WriteZip(&want, root); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the build's archive (%d bytes) differs from WriteZip's (%d bytes)", len(got), want.Len())
	}
}

// The Terraform steps do nothing off the deploy branch (whose builds run as the test-only account). A stand-in terraform
// and go on PATH record what the script would run.
func TestDeployScriptBranches(t *testing.T) {
	root := repoRoot(t)
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	for _, tool := range []string{"terraform", "go"} {
		script := "#!/bin/sh\necho \"" + tool + " $*\" >> " + calls + "\n[ \"$2\" = output ] && echo the-models-bucket\nexit 0\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(branch, what string) string {
		os.Remove(calls)
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "cloudbuild", "deploy.sh"), what)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "T2B_TOOLCHAIN="+t.TempDir(), "PATH="+bin+":"+os.Getenv("PATH"),
			"BRANCH_NAME="+branch, "DEPLOY_BRANCH=main", "PROJECT_ID=t2b-test-project", "REGION=europe-west1",
			"NAME_PREFIX=text2brain", "BUILD_NAME=abc1234", "STATE_BUCKET=state")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("deploy.sh %s on %s: %v\n%s", what, branch, err, out)
		}
		b, _ := os.ReadFile(calls)
		return string(b)
	}
	for _, step := range []string{"init", "publish", "plan", "apply"} {
		if got := run("feature/x", step); got != "" {
			t.Errorf("%s on a feature branch ran:\n%s", step, got)
		}
	}
	if got := run("main", "plan"); !strings.Contains(got, "terraform -chdir=terraform plan") || !strings.Contains(got, "-var-file=../build/model.tfvars.json") || !strings.Contains(got, "-lock-timeout=") {
		t.Errorf("plan on main ran:\n%s", got)
	}
	if got := run("main", "apply"); !strings.Contains(got, "terraform -chdir=terraform apply -input=false -lock-timeout=15m tfplan") {
		t.Errorf("apply on main ran:\n%s", got)
	}
	got := run("main", "publish")
	if !strings.Contains(got, "-target=google_storage_bucket.models") || !strings.Contains(got, "model publish --bucket the-models-bucket") {
		t.Errorf("publish on main ran:\n%s", got)
	}
	if strings.Index(got, "-target") > strings.Index(got, "model publish") {
		t.Errorf("publish on main uploaded before the bucket was made:\n%s", got)
	}
	if got := run("main", "init"); !strings.Contains(got, "-backend-config=bucket=state") {
		t.Errorf("init ran:\n%s", got)
	}
}

// Every IAM grant in the Terraform configuration is listed in its iam_grants output, which the
// Terraform tests check for least privilege.
func TestTerraformGrantsListed(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "terraform", "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Terraform files: %v", err)
	}
	var src strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	grants := regexp.MustCompile(`resource "(google_[a-z0-9_]+_iam_(?:member|binding|policy))" "([a-z0-9_]+)"`).FindAllStringSubmatch(src.String(), -1)
	if len(grants) < 10 {
		t.Fatalf("only %d grants found", len(grants))
	}
	outputs, err := os.ReadFile(filepath.Join(root, "terraform", "outputs.tf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		if strings.HasSuffix(g[1], "_binding") || strings.HasSuffix(g[1], "_policy") {
			t.Errorf("%s.%s: authoritative IAM would remove grants made elsewhere; use _iam_member", g[1], g[2])
		}
		if !strings.Contains(string(outputs), g[1]+"."+g[2]) {
			t.Errorf("%s.%s is not listed in the iam_grants output", g[1], g[2])
		}
	}
}

// Each function links only what it runs: never the offline bundle builder, its numerics or the
// ONNX protobufs; Query not even the model runtime, the article lookup or ONNX Runtime (it reads
// only the bundle's manifest, vocabulary and mask). Query does link the grid package (brain): it
// reads and resamples an uploaded map to check it before a decoding is accepted.
func TestFunctionsLinkOnlyWhatTheyRun(t *testing.T) {
	root := repoRoot(t)
	const mod = "github.com/text2brain/text2brain/"
	never := []string{mod + "functions/internal/modelbuild", "gonum.org/", "github.com/sbinet/npyio"}
	for _, tc := range []struct {
		pkg    string
		forbid []string
	}{
		{"./functions/predict", never},
		{"./functions/query", append([]string{mod + "functions/internal/model\n", mod + "functions/internal/model/bundle\n",
			mod + "functions/internal/model/articles", mod + "functions/internal/model/decode", "github.com/yalue/onnxruntime_go"}, never...)},
	} {
		cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", tc.pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tc.pkg, err)
		}
		deps := string(out)
		if !strings.Contains(deps, mod+"functions/internal/serve/jobs\n") {
			t.Fatalf("go list -deps %s does not list the lifecycle:\n%s", tc.pkg, deps)
		}
		for _, f := range tc.forbid {
			if strings.Contains(deps, f) {
				t.Errorf("%s links %s", tc.pkg, strings.TrimSpace(f))
			}
		}
	}
}
