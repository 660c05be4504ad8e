#!/usr/bin/env bash
# Install libvnet into a staging directory and check what is there: headers, libvnet.a and
# libvnet.so (soname libvnet.so.0), pkg-config file, programs, man pages, LICENSE, the systemd
# units with the installed programs' paths, the sysusers.d entry and example configs. Build a
# small out-of-tree program against the installed headers twice, linked with libvnet.so
# (`pkg-config --libs libvnet`) and with libvnet.a, and run both; `pip install` the Python
# binding into a fresh venv (offline) and check it imports and loads the installed libvnet.so.
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

fail() { echo "$*"; exit 1; }
version=$(sed -n "s/^  version : '\\(.*\\)',/\\1/p" "$SRC/meson.build")
[ -n "$(find "$STAGE" -name LICENSE -path '*/doc/libvnet/*')" ] || fail "LICENSE was not installed"
for f in node-example.conf controller-example.conf vnet-node-xdp.conf; do
  [ -n "$(find "$STAGE" -path "*/doc/libvnet/examples/$f")" ] || fail "example $f was not installed"
done
a=$(find "$STAGE" -name libvnet.a)
libdir=$(dirname "$a")
[ -f "$libdir/libvnet.so.$version" ] || fail "libvnet.so.$version was not installed beside libvnet.a"
[ "$(readlink "$libdir/libvnet.so.0")" = "libvnet.so.$version" ] || fail "no libvnet.so.0 -> libvnet.so.$version"
[ "$(readlink "$libdir/libvnet.so")" = "libvnet.so.0" ] || fail "no libvnet.so -> libvnet.so.0"
readelf -d "$libdir/libvnet.so.$version" | grep -q 'SONAME.*\[libvnet.so.0\]' || fail "libvnet.so: soname is not libvnet.so.0"

export PKG_CONFIG_PATH=$(dirname "$pc")
prefix=$(pkg-config --variable=prefix libvnet)
if grep -q 'VNET_HAVE_SYSTEMD=1' "$BUILD/build.ninja"; then
  for u in vnet-controller.service vnet-node@.service; do
    f=$(find "$STAGE" -path "*/lib/systemd/system/$u")
    [ -n "$f" ] || fail "unit $u was not installed"
    p=${u%%[@.]*}
    grep -q "^ExecStart=$prefix/bin/$p --config /etc/vnet/" "$f" || fail "$u does not run $prefix/bin/$p --config"
    [ -x "$STAGE$prefix/bin/$p" ] || fail "$u runs $prefix/bin/$p, which was not installed"
  done
  [ -n "$(find "$STAGE" -path '*/sysusers.d/vnet.conf')" ] || fail "sysusers.d/vnet.conf was not installed"
  echo "units:  $(find "$STAGE" -path '*/systemd/system/*' -printf '%P ')"
fi

cflags=$(pkg-config --define-variable=prefix="$STAGE$prefix" --cflags libvnet)
libs=$(pkg-config --define-variable=prefix="$STAGE$prefix" --static --libs libvnet)
echo "cflags: $cflags"
echo "libs:   $libs"
# Linked with libvnet.so: -lvnet finds it first.
cc -std=c11 -Wall -Wextra -Werror $cflags "$SRC/tests/integration/consumer.c" -o "$STAGE/consumer" $libs
readelf -d "$STAGE/consumer" | grep -q 'NEEDED.*\[libvnet.so.0\]' || fail "consumer: not linked with libvnet.so.0"
LD_LIBRARY_PATH=$libdir "$STAGE/consumer"
# Linked with libvnet.a (by its path, in place of -lvnet): nothing of libvnet needed at run time.
static_libs=$(echo " $libs " | sed "s# -lvnet # $a #")
cc -std=c11 -Wall -Wextra -Werror $cflags "$SRC/tests/integration/consumer.c" -o "$STAGE/consumer-static" $static_libs
! readelf -d "$STAGE/consumer-static" | grep -q 'NEEDED.*libvnet' || fail "consumer-static needs libvnet.so"
"$STAGE/consumer-static"

# The Python binding: `pip install` (offline: the build backend comes from the system, see
# docs/python.md) into a venv, from a copy of the source (pip builds in place).
PY=/usr/bin/python3
if ! "$PY" -c 'import venv, setuptools, wheel' 2>/dev/null; then
  echo "skip - pip install of the binding: needs python3-venv, python3-setuptools, python3-wheel"
  exit 0
fi
cp -r "$SRC/bindings/python" "$STAGE/pysrc"
"$PY" -m venv --system-site-packages "$STAGE/venv"
"$STAGE/venv/bin/python" -m pip install -q --no-index --no-build-isolation "$STAGE/pysrc" \
  >"$STAGE/pip.log" 2>&1 || { cat "$STAGE/pip.log"; fail "pip install ./bindings/python failed"; }
cat >"$STAGE/probe.py" <<'PY'
import importlib.metadata, os, sys
import vnet
site, libdir, version = sys.argv[1:4]
assert vnet.__file__.startswith(site), f"vnet imported from {vnet.__file__}, not the venv"
maps = [l.split()[-1] for l in open("/proc/self/maps") if "libvnet.so" in l]
assert maps and all(m.startswith(libdir + "/") for m in maps), f"libvnet.so loaded from {maps}"
assert vnet.format_mac(vnet.parse_mac("02:00:00:00:00:AB")) == "02:00:00:00:00:ab"
assert importlib.metadata.version("libvnet") == version, importlib.metadata.version("libvnet")
print(f"python: vnet {version} from {os.path.dirname(vnet.__file__)}, {maps[0]}")
PY
site=$("$STAGE/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cd "$STAGE" # not the source tree: the installed package must be the one imported
# Found by the loader (as after `meson install` + ldconfig; here LD_LIBRARY_PATH), then by
# $VNET_LIBRARY alone.
env -u VNET_LIBRARY -u VNET_BUILD_DIR -u PYTHONPATH LD_LIBRARY_PATH="$libdir" \
  "$STAGE/venv/bin/python" "$STAGE/probe.py" "$site" "$libdir" "$version" || fail "binding: loader"
env -u VNET_BUILD_DIR -u PYTHONPATH -u LD_LIBRARY_PATH VNET_LIBRARY="$libdir/libvnet.so.0" \
  "$STAGE/venv/bin/python" "$STAGE/probe.py" "$site" "$libdir" "$version" || fail "binding: VNET_LIBRARY"
# Neither: a clear error naming VNET_LIBRARY.
if env -u VNET_LIBRARY -u VNET_BUILD_DIR -u PYTHONPATH -u LD_LIBRARY_PATH \
  "$STAGE/venv/bin/python" -c 'import vnet' >"$STAGE/nolib.out" 2>&1; then
  ldconfig -p | grep -q 'libvnet.so.0 ' || fail "binding: imported without any libvnet.so"
else
  grep -q 'set VNET_LIBRARY' "$STAGE/nolib.out" || { cat "$STAGE/nolib.out"; fail "binding: no clear error without libvnet.so"; }
fi
echo "install: ok"
