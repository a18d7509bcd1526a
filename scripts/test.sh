#!/usr/bin/env bash
# The whole suite: static checks, then every bun test file against real
# servers. Ends with "N passed, N failed" counting both (each check is one).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  echo "usage: ./edge test [-- <test file paths or name filters for bun test>]"
  echo
  echo "tsc, biome, buf lint, generated code up to date, buf breaking, OpenAPI breaking, the import-direction"
  echo "check, then bun test against real servers (the Java generation check and the docs checks among them)."
  echo "Ends with 'N passed, N failed'. With paths or name filters, the checks and then only those tests."
  exit 0
fi
export PATH="$PWD/node_modules/.bin:$PATH"

passed=0
failed=0
check() {
  local name=$1
  shift
  if output=$("$@" 2>&1); then
    echo "check ok: $name"
    passed=$((passed + 1))
  else
    echo "check FAILED: $name"
    echo "$output" | tail -40
    failed=$((failed + 1))
  fi
}

check "typescript (tsc --noEmit)" tsc --noEmit -p .
check "biome" biome ci --reporter=summary .
check "buf lint" buf lint proto
check "generated proto code up to date" bash scripts/check-generated.sh
check "buf breaking against the published baseline" bash scripts/check-breaking.sh
check "OpenAPI breaking against docs/openapi.published.json" bun scripts/openapi-breaking.ts
# Only the folders that exist yet (git keeps no empty folder).
folders=$(for f in core clients gateway location-ingest tracking demo bench; do [ -d "$f" ] && echo "$f"; done)
# shellcheck disable=SC2086
check "import direction (tiers -> core, no cycles)" depcruise --config .dependency-cruiser.cjs $folders

report=$(mktemp)
# Files start real servers (redis-server, a cluster): allow more than the 5 s default per test.
bun test --timeout 30000 --reporter=junit --reporter-outfile="$report" "$@"
bun_status=$?
if [ -s "$report" ]; then
  read -r tests failures errors skipped < <(
    grep -m1 -o '<testsuites[^>]*>' "$report" |
      sed -E 's/.*tests="([0-9]+)".*failures="([0-9]+)".*/\1 \2/' |
      { read -r t f; s=$(grep -c '<skipped' "$report"); echo "$t $f 0 $s"; }
  )
  passed=$((passed + tests - failures - skipped))
  failed=$((failed + failures))
  # bun's "(fail)" lines carry no path: name each failed test with its file where the summary is read.
  [ "$failures" -gt 0 ] && bun scripts/test-failures.ts "$report"
  if [ "$bun_status" -ne 0 ] && [ "$failures" -eq 0 ]; then
    echo "bun test exited $bun_status with no failed test in its report (an error between tests: see above)"
    failed=$((failed + 1))
  fi
else
  echo "bun test produced no report"
  failed=$((failed + 1))
fi
rm -f "$report"

echo "$passed passed, $failed failed, ${skipped:-0} skipped"
[ "$failed" -eq 0 ]
