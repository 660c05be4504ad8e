#!/usr/bin/env bash
# Smoke run of vnet-convergence (suite bench-smoke): 100 sessions, in a network namespace of its
# own (the benchmark uses fixed loopback ports). It must run to the end; no figure is judged.
# Usage: convergence_smoke.sh BUILD_DIR
set -u
BUILD=$1
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (a network namespace)"; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: unshare missing"; exit 77; }
exec unshare -n sh -c 'ip link set lo up && exec "$0" "$1" 100' \
  "$BUILD/tests/bench/vnet-convergence" "$BUILD/examples/vnet-controller"
