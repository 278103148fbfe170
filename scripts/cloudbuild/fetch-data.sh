#!/usr/bin/env bash
# Copies the model data (the layout of the README's "Where the model data comes from") from
# Cloud Storage into $T2B_DATA for the model and test steps.
set -euo pipefail
uri=${1:-}
if [[ $uri != gs://* ]]; then
	echo "fetch-data: set the _DATA_URI substitution to the gs:// folder of the model data (terraform/bootstrap's data_uri output)" >&2
	exit 1
fi
dest=${T2B_DATA:-/workspace/.modeldata}
mkdir -p "$dest"
gcloud storage cp --recursive "${uri%/}/*" "$dest/"
for want in neuroquery_model neuroquery_corpus/coordinates.tsv.gz neurosynth/metadata.tsv.gz templates/mni152_t1_1mm.nii.gz; do
	if [[ ! -e $dest/$want ]]; then
		echo "fetch-data: $uri has no $want (see the README's data layout)" >&2
		exit 1
	fi
done
echo "model data from $uri in $dest"
