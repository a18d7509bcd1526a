#!/usr/bin/env bash
# Fails when the .proto files break what shipped apps were built against:
# the commit named in proto/PUBLISHED (bump it when a version ships).
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=$(tr -d '[:space:]' < proto/PUBLISHED)
buf breaking proto --against ".git#ref=${baseline},subdir=proto"
