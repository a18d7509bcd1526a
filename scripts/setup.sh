#!/usr/bin/env bash
# Installs what the project needs and is missing: npm packages (bun is one)
# and Debian's redis-server, chromium (the live map's browser test), protoc
# with the grpc-java plugin and the Java runtime jars and JDK (the offline
# Java/Kotlin generation and its compile check), nginx, prometheus
# (promtool) and openssl (the shipped balancer's tests).
# Safe to run again; does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  # Not `npm ci`: it rejects this lock because the registry mirror lacks other
  # platforms' optional binaries (biome, buf), which npm then records without
  # entries. Install from the lock without rewriting it instead.
  npm install --no-save --no-audit --no-fund --loglevel=error >&2
fi

apt_updated=""
apt_install() {
  local sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  if [ -z "$apt_updated" ]; then
    $sudo_cmd apt-get update -qq >&2
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >&2
}

if ! command -v redis-server >/dev/null 2>&1; then
  echo "setup: installing redis-server from Debian" >&2
  apt_install redis-server redis-tools
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing chromium from Debian (for the live map's browser test)" >&2
  apt_install chromium
fi

# Java/Kotlin clients, offline: protoc, the grpc-java plugin, the jars the
# generated code compiles against (grpc-java 1.41 stubs need guava and
# javax.annotation), and a JDK for the compile check.
java_packages=()
command -v protoc >/dev/null 2>&1 || java_packages+=(protobuf-compiler)
[ -x /usr/bin/grpc_java_plugin ] || java_packages+=(protobuf-compiler-grpc-java-plugin)
[ -f /usr/share/java/protobuf.jar ] || java_packages+=(libprotobuf-java)
[ -f /usr/share/java/grpc-stub.jar ] || java_packages+=(libgrpc-java)
[ -f /usr/share/java/guava.jar ] || java_packages+=(libguava-java)
[ -f /usr/share/java/geronimo-annotation-1.3-spec.jar ] || java_packages+=(libgeronimo-annotation-1.3-spec-java)
command -v javac >/dev/null 2>&1 || java_packages+=(default-jdk-headless)
if [ ${#java_packages[@]} -gt 0 ]; then
  echo "setup: installing ${java_packages[*]} from Debian (offline Java/Kotlin generation)" >&2
  apt_install "${java_packages[@]}"
fi

# The shipped balancer's tests run Debian's nginx on docker/nginx.conf over
# TLS (a certificate openssl makes at test start); promtool (Debian's
# prometheus package) checks docker/prometheus/. The tests start their own
# nginx; a service the package itself starts (on systemd hosts: nginx on
# :80, prometheus on :9090) is stopped and disabled when this script is what
# installed it.
edge_packages=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || edge_packages+=(nginx)
command -v promtool >/dev/null 2>&1 || edge_packages+=(prometheus)
command -v openssl >/dev/null 2>&1 || edge_packages+=(openssl)
if [ ${#edge_packages[@]} -gt 0 ]; then
  echo "setup: installing ${edge_packages[*]} from Debian (the balancer's tests, promtool)" >&2
  apt_install --no-install-recommends "${edge_packages[@]}"
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for service in nginx prometheus; do
      if [[ " ${edge_packages[*]} " == *" ${service} "* ]]; then
        if [ "$(id -u)" -eq 0 ]; then systemctl disable --now "$service"; else sudo systemctl disable --now "$service"; fi >/dev/null 2>&1 || true
      fi
    done
  fi
fi
