#!/usr/bin/env bash
# Fails when proto/gen differs from what `./edge proto:gen` (buf generate with
# proto/buf.gen.yaml) makes from the .proto files.
set -euo pipefail
cd "$(dirname "$0")/../proto"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
buf generate --template buf.gen.yaml -o "$fresh"
diff -r "$fresh/gen" gen
