#!/usr/bin/env bash
# The test step: on the Google Cloud CLI's emulators image (Java, the Firestore and Pub/Sub
# emulators), with the workspace's Go and Terraform, the tools make test needs (Chromium for the
# page's browser tests), then make test. The page was built by the frontend step (Node.js 22);
# make sees it is up to date, and this image's Node.js only runs its tests.
set -euo pipefail
. "$(dirname "$0")/env.sh"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq gcc libc6-dev make nodejs npm python3-nibabel chromium >/dev/null
CLOUDSDK_ROOT=$(gcloud info --format='value(installation.sdk_root)')
export CLOUDSDK_ROOT
make test DATA="${T2B_DATA:-/workspace/.modeldata}"
