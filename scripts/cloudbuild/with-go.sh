#!/usr/bin/env bash
# Runs a command with the workspace's Go toolchain (cloudbuild.yaml).
set -euo pipefail
. "$(dirname "$0")/env.sh"
exec "$@"
