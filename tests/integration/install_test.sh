#!/usr/bin/env bash
# Install libvnet into a staging directory and build a small out-of-tree program against the
# installed headers, linking through `pkg-config --static --libs libvnet`; then run it.
set -euo pipefail
SRC=$1
BUILD=$2
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

meson install -C "$BUILD" --destdir "$STAGE" --no-rebuild >"$STAGE/install.log" 2>&1 ||
  { cat "$STAGE/install.log"; exit 1; }

pc=$(find "$STAGE" -name libvnet.pc | head -n1)
[ -n "$pc" ] || { echo "libvnet.pc was not installed"; exit 1; }
for f in vnet/vnet.h vnet/switch_table.h vnet/encap.h vnet/version.h; do
  [ -n "$(find "$STAGE" -path "*/include/$f")" ] || { echo "header $f was not installed"; exit 1; }
done
[ -n "$(find "$STAGE" -name libvnet.a)" ] || { echo "libvnet.a was not installed"; exit 1; }
for m in vnet-controller.1 vnet-node.1 vnetctl.1; do
  [ -n "$(find "$STAGE" -name "$m")" ] || { echo "man page $m was not installed"; exit 1; }
done
for p in vnet-controller vnet-node vnetctl; do
  [ -n "$(find "$STAGE" -type f -name "$p")" ] || { echo "program $p was not installed"; exit 1; }
done

export PKG_CONFIG_PATH=$(dirname "$pc")
prefix=$(pkg-config --variable=prefix libvnet)
cflags=$(pkg-config --define-variable=prefix="$STAGE$prefix" --cflags libvnet)
libs=$(pkg-config --define-variable=prefix="$STAGE$prefix" --static --libs libvnet)
echo "cflags: $cflags"
echo "libs:   $libs"
cc -std=c11 -Wall -Wextra -Werror $cflags "$SRC/tests/integration/consumer.c" -o "$STAGE/consumer" $libs
"$STAGE/consumer"
