#!/usr/bin/env bash
# The test step: on the Google Cloud CLI's emulators image (Java, the Firestore and Pub/Sub
# emulators), with the workspace's Go and Terraform, the tools make test needs, then make test.
set -euo pipefail
. "$(dirname "$0")/env.sh"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq gcc libc6-dev make nodejs npm python3-nibabel >/dev/null
CLOUDSDK_ROOT=$(gcloud info --format='value(installation.sdk_root)')
export CLOUDSDK_ROOT
make test DATA="${T2B_DATA:-/workspace/.modeldata}"
