#!/usr/bin/env bash
# Install what is missing, build, and run the whole test suite:
#   1. a normal build with -Werror running every suite (unit, fuzz replay, integration);
#   2. a build with AddressSanitizer + UndefinedBehaviorSanitizer running every suite but the
#      install test.
# Each suite's own output is shown. The last line is "N passed, N failed, N skipped", counted
# from meson's test logs; the exit status is non-zero when anything failed.
#
# Environment: BUILD_DIR (default build), ASAN_BUILD_DIR (default build-asan),
# VNET_SKIP_ASAN=1 to skip the sanitizer build, VNET_SKIP_DEPS=1 to skip apt-get,
# VNET_HOST_PROFILE=debian to run the first build's tests on a host set up like an ordinary
# Debian 12 machine (tests/host_profile.sh; restored afterwards; CI sets it).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${BUILD_DIR:-build}
ASAN=${ASAN_BUILD_DIR:-build-asan}

if [ "${VNET_SKIP_DEPS:-0}" != 1 ]; then
  ./.ci/deps.sh || exit 1
fi

status=0
logs=()
build_fails=0

setup() { # dir, options...
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
  else
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
  fi || { cat "$dir.setup.log"; return 1; }
}

echo "== build ($BUILD, -Werror)"
if setup "$BUILD" -Dwerror=true && meson compile -C "$BUILD"; then
  echo "== test ($BUILD)"
  profile_state=
  if [ -n "${VNET_HOST_PROFILE:-}" ]; then
    profile_state=$(mktemp)
    trap 'tests/host_profile.sh restore "$profile_state"' EXIT
    tests/host_profile.sh apply "$VNET_HOST_PROFILE" "$profile_state" || exit 1
  fi
  meson test -C "$BUILD" -v --num-processes 2 || status=1
  if [ -n "$profile_state" ]; then
    tests/host_profile.sh restore "$profile_state"
    trap - EXIT
  fi
  logs+=("$BUILD/meson-logs/testlog.json")
else
  echo "build failed"
  status=1
  build_fails=$((build_fails + 1))
fi

if [ "${VNET_SKIP_ASAN:-0}" != 1 ]; then
  echo "== build ($ASAN, address + undefined sanitizers)"
  if setup "$ASAN" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
      -Dc_args=-fno-sanitize-recover=all -Dbench=false &&
      meson compile -C "$ASAN"; then
    # Everything but the install test (an out-of-tree program cannot link a sanitized
    # libvnet.a without the sanitizer runtime): the integration tests run vnet-node under
    # the sanitizers with real traffic.
    echo "== test ($ASAN: all suites but install)"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
      meson test -C "$ASAN" -v --num-processes 2 --no-suite install || status=1
    logs+=("$ASAN/meson-logs/testlog.json")
  else
    echo "sanitizer build failed"
    status=1
    build_fails=$((build_fails + 1))
  fi
fi

# Count results over both runs. meson writes one JSON object per test.
summary=$(BUILD_FAILS=$build_fails python3 - "${logs[@]}" <<'PY'
import json, os, sys
p = s = 0
f = int(os.environ.get("BUILD_FAILS", "0"))  # a build that failed counts as a failed test
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        f += 1
        continue
    for line in lines:
        if not line.strip():
            continue
        r = json.loads(line).get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            p += 1
        elif r == "SKIP":
            s += 1
        else:
            f += 1
print(f"{p} passed, {f} failed, {s} skipped")
PY
) || { summary="0 passed, 1 failed, 0 skipped"; status=1; }
case "$summary" in
  *" 0 failed,"*) ;;
  *) status=1 ;;
esac
echo "$summary"
exit $status
