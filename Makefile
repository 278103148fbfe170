# The front door: `make run` and `make test` prepare everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Where the model data lives: the read-only shared folder here; elsewhere, the official downloads
# laid out the same way (see README).
DATA ?= ../shared/data
# ONNX Runtime: the release whose C API the pinned onnxruntime_go speaks (ORT_API_VERSION 24),
# taken from the onnxruntime-node package, which ships the glibc shared library.
ORT_VERSION := 1.24.3
ORT_DIR := .cache/onnxruntime
ORT_LIB := $(ORT_DIR)/libonnxruntime.so
MODEL_DIR := build/model
NEURAL_DIR := build/model-neural
NEURAL_TINY_DIR := build/model-neural-tiny
BIN := build/bin/text2brain
LOCALSTACK := build/bin/localstack

# Set in the environment, these point make run and the tests at another library or bundle.
ONNXRUNTIME_LIB ?= $(CURDIR)/$(ORT_LIB)
TEXT2BRAIN_MODEL ?= $(CURDIR)/$(MODEL_DIR)
export ONNXRUNTIME_LIB TEXT2BRAIN_MODEL
export TEXT2BRAIN_DATA := $(abspath $(DATA))
export CGO_ENABLED := 1

GO_SOURCES := $(shell find functions frontend -name '*.go' -not -name '*_test.go' -not -path '*/node_modules/*') $(wildcard *.go) \
	frontend/placeholder.html functions/internal/serve/queryapi/openapi.yaml go.mod go.sum
# The web page: its sources (Vite, TypeScript), and the stamp of its last build into frontend/dist
# (which the Query function embeds, so binaries that serve it depend on the stamp).
FRONTEND_SOURCES := $(shell find frontend -path frontend/node_modules -prune -o -path frontend/dist -prune -o \
	-type f \( -name '*.ts' -o -name '*.css' -o -name '*.html' -o -name '*.svg' -o -name 'package*.json' -o -name 'tsconfig*.json' \) -print)
FRONTEND_STAMP := build/frontend.stamp
NODE_MODULES := frontend/node_modules/.package-lock.json
# What the bundle is made by: a change elsewhere (the API, the page) does not rebuild the model.
BUNDLE_SOURCES := $(shell find functions/internal/model functions/internal/modelbuild -name '*.go' -not -name '*_test.go')
MODEL_INPUTS := $(wildcard $(DATA)/neuroquery_model/* $(DATA)/neuroquery_model/*/* \
	$(DATA)/neuroquery_corpus/coordinates.tsv.gz $(DATA)/neuroquery_corpus/counts_*.npz \
	$(DATA)/neuroquery_corpus/vocabulary.txt $(DATA)/neuroquery_corpus/pmids.txt $(DATA)/neurosynth/metadata.tsv.gz \
	$(DATA)/templates/mni152_t1_1mm.nii.gz $(wildcard $(DATA)/templates/fsaverage5/*))

# Terraform, checked offline here: Terraform itself validates and tests the configuration against
# the google provider's real schema (recorded in $(DATA)/terraform), served from a filesystem
# mirror by functions/cmd/tfschema-provider, a stand-in that knows the schema and nothing else.
# Where that file is absent (Cloud Build), Terraform installs the real provider from its registry.
TF_SCHEMA := $(DATA)/terraform/google-8.0.0.schema.json.gz
TF_BUILD := build/terraform
TF_PROVIDER := $(TF_BUILD)/mirror/registry.terraform.io/hashicorp/google/8.0.0/linux_amd64/terraform-provider-google_v8.0.0
TF_RC := $(TF_BUILD)/terraformrc
TF_ROOTS := terraform terraform/bootstrap
ifneq ($(wildcard $(TF_SCHEMA)),)
TF_OFFLINE := 1
TF_DEPS := $(TF_PROVIDER) $(TF_RC)
TF_CLI := TF_CLI_CONFIG_FILE=$(abspath $(TF_RC))
else
TF_OFFLINE :=
TF_DEPS :=
# The environment may name a CLI configuration that does not exist; the registry needs none.
TF_CLI := TF_CLI_CONFIG_FILE=/dev/null
endif
# The functions' source archive that Terraform uploads (cloudbuild.yaml makes it the same way).
FUNCTION_SOURCE := build/function-source.zip

# Root is not needed for apt-get when already root (CI and this machine image run as root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help deps ort tools model build test bench bench-stack run clean fuzz reliability decode-eval \
	function-source frontend test-frontend lint terraform-check terraform-provider model-tfvars publish-model \
	neural-tools train-neural train-neural-tiny model-neural model-neural-tiny

help:
	@echo "make run    run the whole system on this machine at http://127.0.0.1:8080/ (builds what is missing)"
	@echo "make test   install what the tests need, then run every test"
	@echo "make bench  run the benchmarks"
	@echo "make bench-stack  start the local stack and measure cold, new and cached queries"
	@echo "make reliability  crash, freeze and attack a local stack: the table of RELIABILITY.md"
	@echo "make fuzz   run each fuzz target for FUZZTIME (5s)"
	@echo "make decode-eval  measure the decoder of uploaded maps against its baselines"
	@echo "make model  build the model bundle into $(MODEL_DIR) from $(DATA)"
	@echo "make lint   gofmt, go vet and staticcheck"
	@echo "make frontend  build the web page into frontend/dist/site (npm ci, Vite, the viewer's assets)"
	@echo "make terraform-check  terraform fmt, validate and test (offline against the recorded google schema)"
	@echo "make function-source  the functions' source archive in $(FUNCTION_SOURCE)"
	@echo "make publish-model MODEL_BUCKET=NAME  upload the bundle and ONNX Runtime to the models bucket"
	@echo "make train-neural  train the Text2Brain-style network on $(DATA) and export it to build/neural (about 30 min)"

deps:
	go mod download

ort: $(ORT_LIB)

$(ORT_LIB):
	@mkdir -p $(ORT_DIR)/pkg
	cd $(ORT_DIR)/pkg && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null
	tar -xzf $(ORT_DIR)/pkg/onnxruntime-node-$(ORT_VERSION).tgz -C $(ORT_DIR)/pkg \
		package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	mv $(ORT_DIR)/pkg/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 $@.tmp
	rm -rf $(ORT_DIR)/pkg
	mv $@.tmp $@
	@echo "ONNX Runtime $(ORT_VERSION) in $@"

# An independent NIfTI reader for the tests (nibabel, Debian's python3-nibabel) and the browser the
# page's tests drive (Debian's chromium).
tools:
	@/usr/bin/python3 -c 'import nibabel' 2>/dev/null && test -x /usr/bin/chromium || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-nibabel chromium >/dev/null; }

# The neural model's trainer (neural/train.py): Debian's PyTorch (CPU), NumPy, SciPy and nibabel.
neural-tools:
	@/usr/bin/python3 -c 'import torch, numpy, scipy, nibabel' 2>/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-torch python3-scipy python3-numpy python3-nibabel >/dev/null; }

# The network trained on the split of neural/settings.json, exported to ONNX with its figures
# (build/neural/neural.json); the tiny one trains on a few hundred articles in about a minute.
train-neural: neural-tools
	/usr/bin/python3 neural/train.py --data $(DATA) --settings neural/settings.json --out build/neural

train-neural-tiny: build/neural-tiny/neural.json
build/neural-tiny/neural.json: neural/train.py neural/settings-tiny.json | neural-tools
	/usr/bin/python3 neural/train.py --data $(DATA) --settings neural/settings-tiny.json --out build/neural-tiny

# The network's serving bundle (after make train-neural), and the tiny one's, which the tests
# serve beside the NeuroQuery bundle: the graph and its figures, with the NeuroQuery bundle's
# vocabulary, mask, articles, template, surface and decoder.
model-neural: $(NEURAL_DIR)/manifest.json
$(NEURAL_DIR)/manifest.json: build/neural/neural.json build/neural/model.onnx $(MODEL_DIR)/manifest.json | $(BIN) ort
	$(BIN) model build-neural --onnx build/neural/model.onnx --meta build/neural/neural.json --base $(MODEL_DIR) --out $(NEURAL_DIR) --ort $(ORT_LIB)

model-neural-tiny: $(NEURAL_TINY_DIR)/manifest.json
$(NEURAL_TINY_DIR)/manifest.json: build/neural-tiny/neural.json $(MODEL_DIR)/manifest.json | $(BIN) ort
	$(BIN) model build-neural --onnx build/neural-tiny/model.onnx --meta build/neural-tiny/neural.json --base $(MODEL_DIR) --out $(NEURAL_TINY_DIR) --ort $(ORT_LIB)

$(BIN): $(GO_SOURCES)
	go build -o $@ ./functions/cmd/text2brain

build: $(BIN)

model: $(MODEL_DIR)/manifest.json

$(MODEL_DIR)/manifest.json: $(BUNDLE_SOURCES) $(MODEL_INPUTS) | $(BIN)
	@test -d $(DATA)/neuroquery_model || { echo "no model data in $(DATA): set DATA=/path/to/data (see README)"; exit 1; }
	$(BIN) model build --neuroquery $(DATA)/neuroquery_model --corpus $(DATA)/neuroquery_corpus \
		--metadata $(DATA)/neurosynth/metadata.tsv.gz --template $(DATA)/templates/mni152_t1_1mm.nii.gz --surface $(DATA)/templates/fsaverage5 \
		--out $(MODEL_DIR)

# Packages whose code or tests run goroutines (the lifecycle's races, the lazy values, the limiter,
# the shared model and its article lookup, the emulator harness and the stack) also run under the
# race detector. Left out: the CLI and the offline builder (one goroutine), and e2e, whose
# concurrency is across processes.
RACE_PKGS := ./functions/internal/serve/... ./functions/internal/cloud/... ./functions/internal/model/... \
	./functions/internal/dev/emulators ./functions/internal/dev/localstack

test: deps ort tools model model-neural-tiny frontend lint terraform-check test-frontend
	TEXT2BRAIN_MODEL_NEURAL=$(CURDIR)/$(NEURAL_TINY_DIR) go test -count=1 ./...
	TEXT2BRAIN_MODEL_NEURAL=$(CURDIR)/$(NEURAL_TINY_DIR) go test -race -count=1 $(RACE_PKGS)
	$(MAKE) --no-print-directory fuzz

# Each fuzz target for FUZZTIME, from its seed corpus (f.Add and testdata/fuzz): normalisation,
# the featurizer, request and push-envelope decoding, the NIfTI reader. A failing input is
# written to the package's testdata/fuzz, where it stays as a regression test.
FUZZTIME ?= 5s
FUZZ_TARGETS := querytext:FuzzNormalizeIsIdempotent textfeat:FuzzFeaturize queryapi:FuzzDecodeObject \
	predictjob:FuzzPushEnvelope brain:FuzzReadNIfTI
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$$(go list ./functions/... | grep "/$${t%%:*}$$"); \
		go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# The decoder's quality (precision@10 against each article's key terms, the issue's protocol) and
# its baselines, in one run: the figures of the README's "Decoding a map".
decode-eval: model
	go run ./functions/cmd/decodeeval --model $(MODEL_DIR) --data $(DATA)

# Crashes, freezes, bursts and hostile input against a local stack on 127.0.0.1: the table of
# RELIABILITY.md (a few minutes; it exits non-zero if anything was lost, duplicated or answered
# otherwise than expected).
reliability: ort model $(LOCALSTACK)
	go run ./functions/cmd/reliability --functions $(LOCALSTACK)

# gofmt, go vet and staticcheck (pinned in go.mod's tool directive).
lint:
	@files=$$(find . -name '*.go' -not -path './build/*' -not -path './.cache/*' -not -path './data/*' -not -path '*/node_modules/*'); \
		test -n "$$files" || { echo "lint: no Go files found"; exit 1; }; \
		out=$$(gofmt -l $$files); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	go tool staticcheck ./...

# The web page: npm packages from the lock file, type check, Vite build into frontend/dist/site,
# then the viewer's template and meshes and the gzip copies (text2brain site-assets).
frontend: $(FRONTEND_STAMP)

$(NODE_MODULES): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(FRONTEND_STAMP): $(FRONTEND_SOURCES) $(NODE_MODULES) $(wildcard $(DATA)/templates/mni152_t1_1mm.nii.gz $(DATA)/templates/fsaverage5/*) | $(BIN)
	cd frontend && npm run --silent build
	$(BIN) site-assets --templates $(DATA)/templates --site frontend/dist/site
	@mkdir -p $(@D) && touch $@

# The page's unit tests (vitest).
test-frontend: $(NODE_MODULES)
	cd frontend && npm test --silent

function-source: $(FRONTEND_STAMP)
	go run ./functions/cmd/text2brain source-zip --out $(FUNCTION_SOURCE)

terraform-provider: $(TF_PROVIDER) $(TF_RC)

$(TF_PROVIDER): $(wildcard functions/cmd/tfschema-provider/*.go) go.mod go.sum $(TF_SCHEMA)
	go build -ldflags "-X main.schemaFile=$(abspath $(TF_SCHEMA))" -o $@ ./functions/cmd/tfschema-provider

$(TF_RC):
	@mkdir -p $(@D)
	printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = ["registry.terraform.io/hashicorp/google"]\n  }\n}\n' \
		"$(abspath $(TF_BUILD)/mirror)" > $@

# fmt, init (no backend), validate and test of each Terraform root. Offline, the lock file records
# the stand-in's checksum, so it is removed: it must never reach a real deployment.
terraform-check: $(TF_DEPS) function-source
	$(TF_CLI) terraform fmt -check -recursive -diff terraform
	@set -e; for d in $(TF_ROOTS); do \
		data=$(abspath $(TF_BUILD))/data/$$(echo $$d | tr / -); \
		echo "terraform: $$d"; \
		$(TF_CLI) TF_DATA_DIR=$$data terraform -chdir=$$d init -backend=false -input=false -no-color >/dev/null; \
		$(TF_CLI) TF_DATA_DIR=$$data terraform -chdir=$$d validate -no-color; \
		$(TF_CLI) TF_DATA_DIR=$$data terraform -chdir=$$d test -no-color; \
		if [ -n "$(TF_OFFLINE)" ]; then rm -f $$d/.terraform.lock.hcl; fi; \
	done

# The model version and ONNX Runtime object that Terraform serves (cloudbuild.yaml passes them).
model-tfvars: model ort $(BIN)
	$(BIN) model publish --dry-run --tfvars build/model.tfvars.json

# Upload the bundle and ONNX Runtime to a deployment's models bucket (Application Default
# Credentials; the bucket comes from terraform apply: its models_bucket output).
publish-model: model ort $(BIN)
	@test -n "$(MODEL_BUCKET)" || { echo "set MODEL_BUCKET to the models bucket (terraform -chdir=terraform output -raw models_bucket)"; exit 1; }
	$(BIN) model publish --bucket $(MODEL_BUCKET)

bench: ort model
	go test -run '^$$' -bench . -benchmem -benchtime 20x ./...

# The whole serverless system on this machine: Firestore and Pub/Sub emulators, a fake Cloud
# Storage, the Query and Predict functions, the warm-up ticker and the page with the API at
# http://127.0.0.1:8080/ (T2B_PORT sets another port). Ctrl-C stops all of it.
# The network of make model-neural is served beside the NeuroQuery model when it is built
# (TEXT2BRAIN_MORE_MODELS, set, overrides it; set it empty to serve NeuroQuery alone).
run: ort model $(LOCALSTACK)
	@more=$${TEXT2BRAIN_MORE_MODELS-$$(test -f $(NEURAL_DIR)/manifest.json && echo $(CURDIR)/$(NEURAL_DIR))}; \
	test -n "$$more" || echo "make run: serving the NeuroQuery model alone; make train-neural model-neural (about 40 min here) builds the network to serve beside it"; \
	TEXT2BRAIN_MORE_MODELS="$$more" $(LOCALSTACK)

$(LOCALSTACK): $(GO_SOURCES) $(FRONTEND_STAMP)
	go build -o $@ ./functions/cmd/localstack

bench-stack: ort model $(LOCALSTACK)
	go run ./functions/cmd/stackbench --functions $(LOCALSTACK)

clean:
	rm -rf build frontend/dist/site
