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
BIN := build/bin/text2brain
LOCALSTACK := build/bin/localstack

# Set in the environment, these point make run and the tests at another library or bundle.
ONNXRUNTIME_LIB ?= $(CURDIR)/$(ORT_LIB)
TEXT2BRAIN_MODEL ?= $(CURDIR)/$(MODEL_DIR)
export ONNXRUNTIME_LIB TEXT2BRAIN_MODEL
export TEXT2BRAIN_DATA := $(abspath $(DATA))
export CGO_ENABLED := 1

GO_SOURCES := $(shell find functions frontend -name '*.go' -not -name '*_test.go') $(wildcard *.go frontend/*.html frontend/*.js frontend/*.css) go.mod go.sum
# What the bundle is made by: a change elsewhere (the API, the page) does not rebuild the model.
BUNDLE_SOURCES := $(shell find functions/internal/bundle functions/internal/neuroquery functions/internal/articles \
	functions/internal/brain functions/internal/textfeat functions/internal/onnxpb -name '*.go' -not -name '*_test.go')
MODEL_INPUTS := $(wildcard $(DATA)/neuroquery_model/* $(DATA)/neuroquery_model/*/* \
	$(DATA)/neuroquery_corpus/coordinates.tsv.gz $(DATA)/neurosynth/metadata.tsv.gz \
	$(DATA)/templates/mni152_t1_1mm.nii.gz)

# Root is not needed for apt-get when already root (CI and this machine image run as root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help deps ort tools model build test bench bench-stack run clean

help:
	@echo "make run    run the whole system on this machine at http://127.0.0.1:8080/ (builds what is missing)"
	@echo "make test   install what the tests need, then run every test"
	@echo "make bench  run the benchmarks"
	@echo "make bench-stack  start the local stack and measure cold, new and cached queries"
	@echo "make model  build the model bundle into $(MODEL_DIR) from $(DATA)"

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

# An independent NIfTI reader for the tests (nibabel, Debian's python3-nibabel).
tools:
	@/usr/bin/python3 -c 'import nibabel' 2>/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-nibabel >/dev/null; }

$(BIN): $(GO_SOURCES)
	go build -o $@ ./functions/cmd/text2brain

build: $(BIN)

model: $(MODEL_DIR)/manifest.json

$(MODEL_DIR)/manifest.json: $(BUNDLE_SOURCES) $(MODEL_INPUTS) | $(BIN)
	@test -d $(DATA)/neuroquery_model || { echo "no model data in $(DATA): set DATA=/path/to/data (see README)"; exit 1; }
	$(BIN) model build --neuroquery $(DATA)/neuroquery_model --corpus $(DATA)/neuroquery_corpus \
		--metadata $(DATA)/neurosynth/metadata.tsv.gz --template $(DATA)/templates/mni152_t1_1mm.nii.gz \
		--out $(MODEL_DIR)

test: deps ort tools model
	go vet ./...
	go test -count=1 ./...

bench: ort model
	go test -run '^$$' -bench . -benchmem -benchtime 20x ./...

# The whole serverless system on this machine: Firestore and Pub/Sub emulators, a fake Cloud
# Storage, the Query and Predict functions, the warm-up ticker and the page with the API at
# http://127.0.0.1:8080/ (T2B_PORT sets another port). Ctrl-C stops all of it.
run: ort model $(LOCALSTACK)
	$(LOCALSTACK)

$(LOCALSTACK): $(GO_SOURCES)
	go build -o $@ ./functions/cmd/localstack

bench-stack: ort model $(LOCALSTACK)
	go run ./functions/cmd/stackbench --functions $(LOCALSTACK)

clean:
	rm -rf build
