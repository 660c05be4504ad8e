#!/usr/bin/env bash
# The libvnet demo: installs what is missing, builds, and shows what the tree can do today.
#
# Today that is the foundation: the VN switch table and the VXLAN codec, measured on this
# machine. As the data plane and control plane land, this script grows into the full demo:
# a controller on an embedded SQLite database and three nodes in network namespaces, with
# traffic crossing the overlay.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dependencies"
./.ci/deps.sh
echo "all present"

step "build ($BUILD)"
if [ -f "$BUILD/build.ninja" ]; then
  meson setup --reconfigure "$BUILD" >/dev/null
else
  meson setup "$BUILD" >/dev/null
fi
meson compile -C "$BUILD" >/dev/null
echo "built libvnet.a and the tools in $BUILD/"

step "unit tests"
meson test -C "$BUILD" --suite unit --num-processes 2 | grep -E '^ *[0-9]+/[0-9]+ |^Ok:|^Fail:'

step "VN switch table: lookups/s and memory (vnet-bench table --quick)"
"$BUILD/tests/bench/vnet-bench" table --quick

step "VXLAN codec: ns per packet (vnet-bench encap --quick)"
"$BUILD/tests/bench/vnet-bench" encap --quick

step "done"
echo "Next: ./tests/run.sh runs every suite; docs/architecture.md explains the modules."
