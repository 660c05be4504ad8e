#!/usr/bin/env bash
# Every long option a program accepts is in its --help, and every option its --help names is
# one it accepts: the options are read from the program's source (getopt_long tables; vnetctl's
# own parser and command table), the help from the built program.
# Usage: help_test.sh SOURCE_ROOT BUILD_ROOT
set -u
SRC=$1
BUILD=$2
FAILS=0

# The options of a source file: getopt_long entries {"name", ..._argument, ...}, and vnetctl's
# strcmp(a, "--name") and command option lists ("vni subnet mtu mode").
source_opts() {
  {
    grep -oE '\{"[a-z][a-z0-9-]*", *(no|required|optional)_argument' "$1" | sed -E 's/\{"([^"]*)".*/\1/'
    grep -oE 'strcmp\(a, "--[a-z][a-z0-9-]*"\)' "$1" | sed -E 's/.*"--([^"]*)".*/\1/'
    sed -n '/^} commands\[\] = {/,/^};/p' "$1" | grep -oE '"[a-z ]+"\},$' | tr -d '"},' | tr ' ' '\n'
  } | grep -v '^$' | sort -u
}

help_opts() {
  "$1" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sed 's/^--//' | sort -u
}

for prog in vnet-node vnet-controller vnetctl; do
  src="$SRC/examples/$prog.c"
  bin="$BUILD/examples/$prog"
  accepted=$(source_opts "$src")
  helped=$(help_opts "$bin")
  if [ -z "$accepted" ] || [ -z "$helped" ]; then
    echo "FAIL - $prog: no options found (source: $(echo $accepted | wc -w), help: $(echo $helped | wc -w))"
    FAILS=$((FAILS + 1))
    continue
  fi
  missing=$(comm -23 <(echo "$accepted") <(echo "$helped"))
  unknown=$(comm -13 <(echo "$accepted") <(echo "$helped"))
  if [ -n "$missing" ]; then
    echo "FAIL - $prog --help does not list: $(echo $missing | sed 's/\([^ ]*\)/--\1/g')"
    FAILS=$((FAILS + 1))
  else
    echo "ok   - $prog --help lists its $(echo $accepted | wc -w) options"
  fi
  if [ -n "$unknown" ]; then
    echo "FAIL - $prog --help names options it does not accept: $(echo $unknown | sed 's/\([^ ]*\)/--\1/g')"
    FAILS=$((FAILS + 1))
  fi
done
[ "$FAILS" -eq 0 ]
