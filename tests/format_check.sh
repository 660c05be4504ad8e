#!/usr/bin/env bash
# Every C source and header follows the project's .clang-format (clang-format 14, as Debian 12
# ships it). Skips (77) when clang-format is not installed.
set -u
cd "$1"
command -v clang-format >/dev/null || { echo "SKIP: clang-format not installed"; exit 77; }
bad=0
for f in $(git ls-files '*.c' '*.h' 2>/dev/null || find libvnet include examples tests bindings -name '*.[ch]'); do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (clang-format -i $f)"
    bad=$((bad + 1))
  fi
done
echo "$bad file(s) not formatted"
[ $bad -eq 0 ]
