#!/usr/bin/env bash
# User-space path benchmark (issue #14 §2): latency and the small-packet flood of vnet-node
# tap+udp against Linux kernel VXLAN, measured in the same run on the same underlay (two
# namespaces joined by a veth pair). Figures are medians of RUNS runs. Not a pass/fail test.
#
#   hot ping      ping -i 0.001 (1000/s, one packet in flight): the path kept warm
#   10 ms ping    ping -i 0.01: every packet finds the threads asleep
#   64 B flood    udpblast (sendmmsg, 64-byte payloads): datagrams sent and received per
#                 second, and the loss in %
#
# Usage: tests/bench/uspath.sh [BUILD_DIR]
#   (root; env: RUNS=3 SECS=3 NODE_ARGS="--busy-poll 50" ONLY="hot idle flood" TRACE=FILE
#    DROPS=1: after each flood, where datagrams were lost: the sending side's TAP queue, the
#    receiving side's UDP socket buffers (every socket in that namespace), the receiving TAP)
# TRACE=FILE (with a build made with -Dc_args=-DVNET_DP_TRACE): the nodes stamp every ping along
# the path; at the end the records go to FILE and tests/bench/uspath_trace.py prints per-stage
# latencies (use ONLY="hot" or ONLY="idle" and one variant).
# NODE_ARGS are added to both vnet-node command lines (compare options in one run with
# VARIANTS="default|--busy-poll 50|chrt -f 10;": each variant is a row of its own; a variant
# "WRAP;ARGS" runs the nodes under the command WRAP, e.g. "nice -n -10;" or "chrt -f 10;").
# Traffic stays inside the namespaces this script creates and deletes.
set -u
BUILD=${1:-build}
RUNS=${RUNS:-3}
SECS=${SECS:-3}
NODE="$BUILD/examples/vnet-node"
BLAST="$BUILD/tests/bench/udpblast"
[ "$(id -u)" -eq 0 ] || { echo "uspath.sh: needs root" >&2; exit 77; }
for t in ping python3; do
  command -v $t >/dev/null || { echo "uspath.sh: $t missing" >&2; exit 77; }
done
[ -x "$NODE" ] && [ -x "$BLAST" ] || { echo "uspath.sh: build first (meson compile -C $BUILD)" >&2; exit 1; }
IFS='|' read -r -a VARS <<<"${VARIANTS:-default}"

P="vu$$"
A="$P-a"
B="$P-b"
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for ns in "$A" "$B"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$A"
ip netns add "$B"
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip link add veth0 netns "$A" type veth peer name veth0 netns "$B"
ip -n "$A" addr add 10.231.0.1/24 dev veth0
ip -n "$B" addr add 10.231.0.2/24 dev veth0
ip -n "$A" link set veth0 up
ip -n "$B" link set veth0 up
for side in 1 2; do
  ns=$A; [ $side = 2 ] && ns=$B
  ip -n "$ns" link add vx0 type vxlan id 77 local 10.231.0.$side remote 10.231.0.$((3 - side)) dstport 4789 dev veth0
  ip -n "$ns" link set vx0 mtu 1450 up
  ip -n "$ns" addr add 10.232.0.$side/24 dev vx0
done
ip netns exec "$A" ping -c 1 -W 2 10.232.0.2 >/dev/null || { echo "kernel vxlan not up"; exit 1; }

# One vnet-node pair per variant: tap vnN, UDP port 4900+N, overlay 10.240+N.0.0/24.
declare -A DST NAME
n=0
for v in "${VARS[@]}"; do
  n=$((n + 1))
  args=() wrap=()
  if [ "$v" != default ]; then
    [[ "$v" == *";"* ]] && read -r -a wrap <<<"${v%%;*}"
    read -r -a args <<<"${v#*;}"
  fi
  read -r -a extra <<<"${NODE_ARGS:-}"
  for side in 1 2; do
    ns=$A; [ $side = 2 ] && ns=$B
    other=$((3 - side))
    mac=02:00:00:01:$(printf %02x $n):0$side
    omac=02:00:00:01:$(printf %02x $n):0$other
    ip netns exec "$ns" env ${TRACE:+VNET_DP_TRACE=$TRACE.$n.$side} "${wrap[@]}" "$NODE" --dev tap:vn$n --underlay udp:10.231.0.$side:$((4900 + n)) \
      --vni $((200 + n)) --mac $mac --ip 10.$((240 + n)).0.$side/24 \
      --arp 10.$((240 + n)).0.$other=$omac --peer 10.231.0.$other:$((4900 + n)) \
      --static $omac=10.231.0.$other:$((4900 + n)) "${args[@]}" "${extra[@]}" \
      >"$TMP/$n.$side.log" 2>&1 &
    PIDS+=($!)
  done
  for i in $(seq 1 100); do
    grep -qs "up: " "$TMP/$n.1.log" && grep -qs "up: " "$TMP/$n.2.log" && break
    sleep 0.05
  done
  [ -n "${TRACE:-}" ] && rm -f "$TRACE.$n".*
  ip netns exec "$A" ping -c 1 -i 0.2 -w 5 10.$((240 + n)).0.2 >/dev/null ||
    { echo "variant '$v' not up"; cat "$TMP/$n".*.log; exit 1; }
  DST[$n]=10.$((240 + n)).0.2
  NAME[$n]="tap+udp $v"
done

want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:] if x and x != "nan"]; print(f"{statistics.median(v):.1f}" if v else "nan")' "$@"; }

ping_stats() { # dst interval count -> "avg p99" (microseconds)
  ip netns exec "$A" ping -q -c "$3" -i "$2" -W 1 "$1" >/dev/null 2>&1 # warm: neighbours, caches
  ip netns exec "$A" ping -c "$3" -i "$2" -W 1 "$1" 2>/dev/null | python3 -c '
import re,sys
v=sorted(float(m.group(1))*1000 for m in re.finditer(r"time=([0-9.]+) ms", sys.stdin.read()))
print(f"{sum(v)/len(v):.1f} {v[min(len(v)-1,int(len(v)*0.99))]:.1f}" if v else "nan nan")'
}

counters() { # -> "A's TAP tx drops, B's UDP receive buffer errors, B's TAP tx drops" (all TAPs)
  local a b c
  a=$(ip -n "$A" -s -j link show type tun 2>/dev/null | python3 -c 'import json,sys; print(sum(l["stats64"]["tx"]["dropped"] for l in json.load(sys.stdin)))' 2>/dev/null)
  c=$(ip -n "$B" -s -j link show type tun 2>/dev/null | python3 -c 'import json,sys; print(sum(l["stats64"]["tx"]["dropped"] for l in json.load(sys.stdin)))' 2>/dev/null)
  b=$(ip netns exec "$B" awk '/^Udp:/ {n++; if (n == 1) for (i = 1; i <= NF; i++) h[i] = $i; else for (i = 1; i <= NF; i++) if (h[i] == "RcvbufErrors") print $i}' /proc/net/snmp)
  echo "${a:-0} ${b:-0} ${c:-0}"
}

flood() { # dst -> "sent_pps received_pps"
  local c0 c1
  [ -n "${DROPS:-}" ] && c0=$(counters)
  ip netns exec "$B" "$BLAST" recv 5500 "$SECS" >"$TMP/recv.out" &
  local r=$!
  for i in $(seq 1 40); do grep -q ready "$TMP/recv.out" 2>/dev/null && break; sleep 0.05; done
  local s
  s=$(ip netns exec "$A" "$BLAST" send "$1" 5500 64 "$SECS" | sed -n 's/.*pps=\([0-9.]*\).*/\1/p')
  wait $r
  if [ -n "${DROPS:-}" ]; then
    c1=$(counters)
    python3 -c "a=[int(x) for x in '$c0'.split()]; b=[int(x) for x in '$c1'.split()]; print('  flood to $1: sender TAP tx drops %d, receiver UDP rcvbuf errors %d, receiver TAP tx drops %d' % tuple(y - x for x, y in zip(a, b)))" >&2
  fi
  echo "${s:-nan} $(sed -n 's/.*pps=\([0-9.]*\).*/\1/p' "$TMP/recv.out" | tail -1)"
}

declare -A R
measure() { # key dst
  local ha=() hp=() ia=() ip=() sp=() rp=() lo=() a p s r
  for run in $(seq 1 "$RUNS"); do
    if want hot; then read -r a p <<<"$(ping_stats "$2" 0.001 2000)"; ha+=("$a"); hp+=("$p"); fi
    if want idle; then read -r a p <<<"$(ping_stats "$2" 0.01 300)"; ia+=("$a"); ip+=("$p"); fi
    if want flood; then
      read -r s r <<<"$(flood "$2")"
      sp+=("$s"); rp+=("${r:-0}")
      lo+=("$(python3 -c "s,r=float('$s'),float('${r:-0}'); print(f'{100*(s-r)/s:.1f}' if s else 'nan')")")
    fi
  done
  R[$1]="$(median "${ha[@]}") $(median "${hp[@]}") $(median "${ia[@]}") $(median "${ip[@]}") $(median "${sp[@]}") $(median "${rp[@]}") $(median "${lo[@]}")"
}

echo "uspath benchmark: $RUNS runs, medians; load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
measure kernel 10.232.0.2
for k in "${!DST[@]}"; do measure "$k" "${DST[$k]}"; done
F='%-28s %8s %8s %8s %8s %9s %9s %6s\n'
printf "$F" path "hot avg" "hot p99" "10ms avg" "10ms p99" "64B sent" "64B recv" "loss"
printf "$F" "" us us us us pps pps %
printf "$F" "kernel vxlan" ${R[kernel]}
for k in $(printf '%s\n' "${!DST[@]}" | sort -n); do printf "$F" "${NAME[$k]}" ${R[$k]}; done
if [ -n "${TRACE:-}" ]; then
  : >"$TRACE"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  PIDS=()
  cat "$TRACE".* >>"$TRACE" && rm -f "$TRACE".*
  python3 "$(dirname "$0")/uspath_trace.py" "$TRACE"
fi
if [ -n "${SHOW_STATS:-}" ]; then
  for p in "${PIDS[@]}"; do kill -USR1 "$p" 2>/dev/null; done
  sleep 0.5
  cat "$TMP"/*.log
fi
