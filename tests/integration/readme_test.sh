#!/usr/bin/env bash
# The README's "An overlay by hand" steps, run as written: the lines of the block that follows
# the marker `<!-- readme-overlay -->` in README.md, on three "machines" (network namespaces
# joined by a bridge, each with a private /var/lib so that its state directory is its own):
# the controller at 192.0.2.10 and nodes n1 at 192.0.2.1 and n2 at 192.0.2.2, the addresses
# the README uses. Only placeholders are filled in: TOKEN by the token `vnetctl node add`
# printed, and for n2 ("likewise with its own name, address and token") n1 -> n2 and
# 192.0.2.1 -> 192.0.2.2. Then: the nodes ping each other over the overlay, status shows both
# connected, and a node restarted with the very same command line comes back (issue 13).
# Usage: readme_test.sh SOURCE_ROOT BUILD_DIR
set -u
SRC=$1
BUILD=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"
need_root

BIN="$TMP/bin"
mkdir -p "$BIN"
for p in vnet-controller vnet-node vnetctl; do ln -s "$BUILD/examples/$p" "$BIN/$p"; done

# The block, split into its three parts by its comment lines.
python3 - "$SRC/README.md" "$TMP" <<'PY' || { echo "FAIL - README.md has no readme-overlay block"; exit 1; }
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"<!-- readme-overlay -->\s*```sh\n(.*?)```", text, re.S)
if not m:
    sys.exit(1)
lines, cur, parts = [], None, {"ctl": [], "node": [], "status": []}
buf = ""
for raw in m.group(1).splitlines():
    s = raw.rstrip()
    if s.startswith("# on the controller"):
        cur = "ctl"; continue
    if s.startswith("# on each node"):
        cur = "node"; continue
    if s.startswith("# back on the controller"):
        cur = "status"; continue
    if not s or s.startswith("#") or cur is None:
        continue
    buf += s[:-1] + " " if s.endswith("\\") else s
    if not s.endswith("\\"):
        # drop a trailing comment (two spaces and '#')
        buf = re.sub(r"\s+#\s.*$", "", buf)
        parts[cur].append(" ".join(buf.split()))
        buf = ""
for k, v in parts.items():
    if not v:
        sys.exit(1)
    open(f"{sys.argv[2]}/readme-{k}.txt", "w").write("\n".join(v) + "\n")
PY
echo "README lines: $(cat "$TMP"/readme-*.txt | wc -l)"

# Three machines on one bridge.
ns_add hub
ip -n "$P-hub" link add br0 type bridge
ip -n "$P-hub" link set br0 up
machine() { # name address
  local name=$1 addr=$2 n=$((${#NSLIST[@]}))
  ns_add "$name"
  ip link add "r$n" netns "$P-$name" type veth peer name "h$n" netns "$P-hub"
  ip -n "$P-hub" link set "h$n" master br0 up
  ip -n "$P-$name" link set "r$n" name eth0
  ip -n "$P-$name" addr add "$addr/24" dev eth0
  ip -n "$P-$name" link set eth0 up
  mkdir -p "$TMP/$name/var-lib"
}
machine ctl 192.0.2.10
machine n1 192.0.2.1
machine n2 192.0.2.2

# Run one README line on a machine: its namespace, its own /var/lib, the programs on PATH.
on() { # machine line
  local m=$1 line=$2
  ip netns exec "$P-$m" unshare -m --propagation private sh -c \
    'mount --bind "$1" /var/lib && cd "$2" && PATH="$3:$PATH" exec sh -c "$4"' \
    sh "$TMP/$m/var-lib" "$TMP/$m" "$BIN" "$line"
}

# The controller's lines; "vnetctl node add" prints the tokens.
declare -A TOKENS
while read -r line; do
  case "$line" in
    *"&") line="${line%&} >$TMP/ctl.log 2>&1 &" ;;
  esac
  if ! out=$(on ctl "$line" 2>&1); then
    echo "FAIL - on the controller: '$line' failed:"
    echo "$out" | sed 's/^/       /'
    cat "$TMP/ctl.log" 2>/dev/null | sed 's/^/       ctl: /'
    exit 1
  fi
  echo "ok   - controller: $line"
  case "$line" in
    *"vnet-controller"*"&"*) wait_listen ctl 7700 && wait_listen ctl 7701 || exit 1 ;;
    "vnetctl node add "*)
      node=$(echo "$line" | awk '{print $5}')
      TOKENS[$node]=$(echo "$out" | sed -n 's/^join token.*: //p')
      [ -n "${TOKENS[$node]}" ] || { echo "FAIL - no join token in: $out"; exit 1; }
      ;;
  esac
done <"$TMP/readme-ctl.txt"
check "the controller made its state directory 0700" \
  sh -c "[ \"\$(stat -c %a $TMP/ctl/var-lib/vnet)\" = 700 ]"

# The node's line(s), for n1 as written and for n2 likewise.
node_line() { # name
  local l
  l=$(cat "$TMP/readme-node.txt")
  if [ "$1" = n2 ]; then
    l=$(echo "$l" | sed -e 's/--name n1/--name n2/' -e 's/192\.0\.2\.1:/192.0.2.2:/')
  fi
  echo "${l//TOKEN/${TOKENS[$1]}}"
}
start_node() { # name
  on "$1" "$(node_line "$1") >>$TMP/$1.log 2>&1 &"
}
for n in n1 n2; do start_node $n; done
for n in n1 n2; do check "$n is up" wait_log "$TMP/$n.log" "up: " 20; done

addr_of() { ip -n "$P-$1" -4 -o addr show dev vnet0 | awk '{print $4}' | cut -d/ -f1; }
A2=$(addr_of n2)
check "n1 pings n2 over the overlay ($A2)" ip netns exec "$P-n1" ping -c 3 -i 0.2 -W 2 "$A2"

status_ok() {
  local out
  out=$(on ctl "$(head -1 "$TMP/readme-status.txt")" 2>&1) || { echo "$out"; return 1; }
  echo "$out"
  for n in n1 n2; do echo "$out" | grep -E "^$n\b.*\byes\b" >/dev/null || return 1; done
}
check "the README's status line shows both nodes connected" status_ok

# Restart n1 with the same command line: the spent token must not stop it.
pid=$(ip netns pids "$P-n1" | head -1)
kill "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
: >"$TMP/n1.log"
start_node n1
check "n1 restarted with the same command line is up again" wait_log "$TMP/n1.log" "up: " 20
check "... and pings n2" ip netns exec "$P-n1" ping -c 3 -i 0.2 -W 2 "$A2"
check "... without a token error" sh -c "! grep -qi 'token' $TMP/n1.log || grep -q 'already enrolled' $TMP/n1.log"
finish
