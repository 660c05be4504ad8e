#!/usr/bin/env bash
# Install the Debian 12 packages libvnet needs to build, test and run its demo. Idempotent:
# installs only what is missing, and says what it would install when not root.
set -euo pipefail

PKGS=(
  # build
  build-essential meson ninja-build pkg-config clang clang-format
  libuv1-dev libmsgpack-dev libsqlite3-dev libsodium-dev check libinih-dev
  libbpf-dev libxdp-dev xdp-tools libpq-dev
  libsystemd-dev  # sd_notify in the programs (examples/svcnotify.c), -Dsystemd
  libmicrohttpd-dev
  # tests, benchmarks and the demo
  python3 python3-cffi python3-pytest iproute2 ethtool tcpdump iperf3 iputils-ping procps
  # install test: pip install of the binding, offline, in a venv; systemd test: setpriv,
  # systemd-analyze
  python3-venv python3-pip python3-setuptools python3-wheel util-linux systemd
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run as root, or: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
