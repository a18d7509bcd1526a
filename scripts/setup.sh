#!/usr/bin/env bash
# Installs what the project needs and is missing: npm packages (bun is one)
# and Debian's redis-server. Safe to run again; does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  # Not `npm ci`: it rejects this lock because the registry mirror lacks other
  # platforms' optional binaries (biome, buf), which npm then records without
  # entries. Install from the lock without rewriting it instead.
  npm install --no-save --no-audit --no-fund --loglevel=error >&2
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "setup: installing redis-server from Debian" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq redis-server redis-tools >&2
fi
