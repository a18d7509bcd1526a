#!/usr/bin/env bash
# Generates the Java classes (protobuf-java), the grpc-java stubs and, with
# --kotlin, Kotlin builder DSLs from proto/delivery/tracking/v1, offline, with
# Debian's protoc and grpc-java plugin (scripts/setup.sh installs both).
#   ./edge proto:java -- <out dir> [--lite] [--kotlin]
# --lite: the lite runtime (Android): protobuf-javalite + grpc-protobuf-lite.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
plugin=${GRPC_JAVA_PLUGIN:-/usr/bin/grpc_java_plugin}

usage() { echo "usage: ./edge proto:java -- <out dir> [--lite] [--kotlin]"; }
out="" lite="" kotlin=""
for arg in "$@"; do
  case "$arg" in
    --help | -h) usage; echo; sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --lite) lite="lite:" ;;
    --kotlin) kotlin=1 ;;
    -*) echo "error: unknown flag '$arg'" >&2; usage >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "error: one out dir only" >&2; usage >&2; exit 2; }; out=$arg ;;
  esac
done
[ -n "$out" ] || { echo "error: the out dir is required" >&2; usage >&2; exit 2; }
command -v protoc >/dev/null || { echo "error: protoc missing: apt-get install protobuf-compiler" >&2; exit 2; }
[ -x "$plugin" ] || { echo "error: $plugin missing: apt-get install protobuf-compiler-grpc-java-plugin" >&2; exit 2; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
args=(--java_out="${lite}${out}" --plugin=protoc-gen-grpc-java="$plugin" --grpc-java_out="${lite}${out}")
if [ -n "$kotlin" ]; then args+=(--kotlin_out="${lite}${out}"); fi
cd "$root/proto"
protoc -I . "${args[@]}" delivery/tracking/v1/*.proto
