#!/usr/bin/env bash
# Fails when the .proto files break what shipped apps were built against:
# the commit named in proto/PUBLISHED (bump it when a version ships; see
# proto/README.md). That commit must be in this branch's history, or the
# check would pass on a clone that cannot see it.
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=$(tr -d '[:space:]' < proto/PUBLISHED)
if ! git merge-base --is-ancestor "$baseline" HEAD 2>/dev/null; then
  echo "proto/PUBLISHED names $baseline, which is not an ancestor of HEAD" >&2
  exit 1
fi
buf breaking proto --against ".git#ref=${baseline},subdir=proto"
