#!/usr/bin/env bash
# Lays out the official downloads as the data folder that `make model DATA=DIR` reads (the README's
# "Where the model data comes from"):
#
#   scripts/fetch-official-data.sh DIR
#   make model DATA=DIR && make publish-model MODEL_BUCKET=…
#   then terraform apply with the model_version it printed (README, Deploy: by hand)
#
# Sources, pinned: the official NeuroQuery model (OSF 598tj), the neuroquery_data and
# neurosynth-data repositories at fixed commits, and the MNI152 template and fsaverage5 meshes
# from the nilearn package. Needs curl, unzip and python3 with pip, and the network.
#
# The tests' reference figures (model.md) are those of the data set this project was built with,
# a NeuroQuery model retrained on the public corpus; the official model is trained on full texts
# too, so its maps differ and those tests fail with it. Cloud Build tests and builds from one data
# set, so it takes the project's own; deploy the official model by hand.
set -euo pipefail

dest=${1:?usage: fetch-official-data.sh DIR}
nq_model_zip=https://osf.io/598tj/download
nq_data=https://github.com/neuroquery/neuroquery_data/raw/4580f86267fb7c14ac1f601e298cbed898d79f2d
ns_data=https://github.com/neurosynth/neurosynth-data/raw/b3d9890554e41bdcb1e7d7e464648fdc397b033c
nilearn=nilearn==0.14.1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dest"/{neuroquery_corpus,neurosynth,templates/fsaverage5}

get() { curl --fail --location --silent --show-error --retry 3 -o "$2" "$1"; }

echo "NeuroQuery model ($nq_model_zip)"
get "$nq_model_zip" "$tmp/model.zip"
unzip -q "$tmp/model.zip" -d "$tmp/model"
weights=$(find "$tmp/model" -path '*/regression/M.npy' | head -n 1)
[[ -n $weights ]] || { echo "the model zip has no regression/M.npy" >&2; exit 1; }
rm -rf "$dest/neuroquery_model"
cp -r "$(dirname "$(dirname "$weights")")" "$dest/neuroquery_model"

echo "NeuroQuery corpus (neuroquery_data)"
get "$nq_data/data/data-neuroquery_version-1_coordinates.tsv.gz" "$dest/neuroquery_corpus/coordinates.tsv.gz"
get "$nq_data/data/data-neuroquery_version-1_metadata.tsv.gz" "$dest/neuroquery_corpus/metadata.tsv.gz"
get "$nq_data/LICENSE" "$dest/neuroquery_corpus/LICENSE"

echo "Neurosynth metadata (neurosynth-data, version 7)"
get "$ns_data/data-neurosynth_version-7_metadata.tsv.gz" "$dest/neurosynth/metadata.tsv.gz"

echo "Templates ($nilearn)"
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp/wheel" "$nilearn"
unzip -q -o "$tmp"/wheel/nilearn-*.whl 'nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz' \
	'nilearn/datasets/data/fsaverage5/*' -d "$tmp/nilearn"
cp "$tmp/nilearn/nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz" "$dest/templates/mni152_t1_1mm.nii.gz"
cp "$tmp"/nilearn/nilearn/datasets/data/fsaverage5/*.gii.gz "$dest/templates/fsaverage5/"

echo "data in $dest"
