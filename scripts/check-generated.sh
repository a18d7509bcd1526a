#!/usr/bin/env bash
# Fails when proto/gen differs from what `buf generate` makes from the .proto files.
set -euo pipefail
cd "$(dirname "$0")/../proto"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
buf generate --template '{"version":"v2","plugins":[{"local":"protoc-gen-es","out":"'"$fresh"'","opt":["target=ts","import_extension=js"]}]}'
diff -r "$fresh" gen
