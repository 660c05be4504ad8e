#!/usr/bin/env bash
# Kernel tier benchmark: Linux kernel VXLAN against vnet-node --dev kernel:NAME (eBPF on TC + a
# flow-based VXLAN device), in the same run, between two namespaces joined by a veth pair.
# Measures TCP 1 stream (iperf3), 64-byte UDP received pps (udpblast) and hot ping RTT
# (200 pings 5 ms apart: avg and p99), alternating the two paths in each run; prints medians
# of RUNS runs and the tier's ratio to kernel VXLAN, and the CPU time of both vnet-node
# processes during the TCP run (the tier's target: ~0, no per-packet user-space work).
# Not a pass/fail test.
# Usage: tests/bench/ktier.sh [BUILD_DIR]   (root; env: RUNS=3 SECS=5)
# Traffic stays inside the namespaces this script creates and deletes.
set -u
BUILD=${1:-build}
RUNS=${RUNS:-3}
SECS=${SECS:-5}
NODE="$BUILD/examples/vnet-node"
BLAST="$BUILD/tests/bench/udpblast"
[ "$(id -u)" -eq 0 ] || { echo "ktier.sh: needs root" >&2; exit 1; }
for t in iperf3 ping python3; do
  command -v $t >/dev/null || { echo "ktier.sh: $t missing (./.ci/deps.sh installs it)" >&2; exit 1; }
done
[ -x "$NODE" ] && [ -x "$BLAST" ] || { echo "ktier.sh: build first (meson compile -C $BUILD)" >&2; exit 1; }

P="vk$$"
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
ip link add veth0 netns "$A" type veth peer name veth0 netns "$B"
for side in 1 2; do
  ns=$A; [ $side = 2 ] && ns=$B
  other=$((3 - side))
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add 10.201.0.$side/24 dev veth0
  ip -n "$ns" link set veth0 up
  # kernel VXLAN, VNI 77, port 4789
  ip -n "$ns" link add vx0 type vxlan id 77 local 10.201.0.$side remote 10.201.0.$other dstport 4789 dev veth0
  ip -n "$ns" link set vx0 mtu 1450 up
  ip -n "$ns" addr add 10.202.0.$side/24 dev vx0
  # the kernel tier, VNI 101, port 4801
  mac=02:00:00:00:01:0$side
  omac=02:00:00:00:01:0$other
  ip netns exec "$ns" "$NODE" --dev kernel:vk0 --underlay udp:10.201.0.$side:4801 --vni 101 \
    --mac $mac --ip 10.203.0.$side/24 --peer 10.201.0.$other:4801 \
    --static $omac=10.201.0.$other:4801 >"$TMP/node$side.log" 2>&1 &
  PIDS+=($!)
done
for side in 1 2; do
  for i in $(seq 1 100); do grep -q "up: " "$TMP/node$side.log" && break; sleep 0.05; done
done
ip netns exec "$A" ping -c 1 -w 5 10.202.0.2 >/dev/null || { echo "kernel vxlan not up"; exit 1; }
ip netns exec "$A" ping -c 1 -w 5 10.203.0.2 >/dev/null || { echo "kernel tier not up"; cat "$TMP"/node*.log; exit 1; }

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:] if x]; print(f"{statistics.median(v):.2f}" if v else "nan")' "$@"; }
cpu_ticks() { local s=0 p; for p in "${PIDS[@]}"; do s=$((s + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $s; }
iperf_tcp() { # dst -> Gbit/s
  ip netns exec "$B" iperf3 -s -1 -p 5301 >/dev/null 2>&1 &
  local srv=$!
  for i in $(seq 1 100); do
    ip netns exec "$B" ss -Hltn "sport = :5301" 2>/dev/null | grep -q LISTEN && break
    sleep 0.02
  done
  ip netns exec "$A" iperf3 -c "$1" -p 5301 -t "$SECS" -J 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["end"]["sum_received"]["bits_per_second"]/1e9)' 2>/dev/null
  wait $srv 2>/dev/null
}
small_pps() { # dst -> packets/s received
  ip netns exec "$B" "$BLAST" recv 5400 "$SECS" >"$TMP/recv.out" &
  local r=$!
  for i in $(seq 1 40); do grep -q ready "$TMP/recv.out" 2>/dev/null && break; sleep 0.05; done
  ip netns exec "$A" "$BLAST" send "$1" 5400 64 "$SECS" >/dev/null
  wait $r
  sed -n 's/.*pps=\([0-9.]*\).*/\1/p' "$TMP/recv.out" | tail -1
}
ping_rtt() { # dst -> "avg p99" in microseconds
  ip netns exec "$A" ping -c 200 -i 0.005 -W 1 "$1" 2>/dev/null |
    python3 -c '
import re,sys
v=sorted(float(m.group(1))*1000 for m in re.finditer(r"time=([0-9.]+) ms", sys.stdin.read()))
print(f"{sum(v)/len(v):.1f} {v[min(len(v)-1,int(len(v)*0.99))]:.1f}" if v else "nan nan")'
}

declare -A V
for r in $(seq 1 "$RUNS"); do
  for path in kernel ktier; do
    dst=10.202.0.2
    [ $path = ktier ] && dst=10.203.0.2
    c0=$(cpu_ticks)
    w0=$(date +%s.%N)
    V[$path.t1]+=" $(iperf_tcp $dst)"
    c1=$(cpu_ticks)
    w1=$(date +%s.%N)
    V[$path.cpu]+=" $(python3 -c "print(100*($c1-$c0)/$(getconf CLK_TCK)/($w1-$w0))")"
    V[$path.pps]+=" $(small_pps $dst)"
    read -r a p <<<"$(ping_rtt $dst)"
    V[$path.avg]+=" $a"
    V[$path.p99]+=" $p"
  done
done
ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b else '-')"; }
echo "kernel tier benchmark: $RUNS runs of ${SECS}s, medians; load: $(cut -d' ' -f1-3 /proc/loadavg)"
F='%-14s %8s %6s %10s %6s %8s %6s %8s %6s %9s\n'
printf "$F" path "TCP1" "/kern" "pps64 rx" "/kern" "RTTavg" "/kern" "RTTp99" "/kern" "nodeCPU"
printf "$F" "" "Gb/s" "" "" "" "us" "" "us" "" "% (TCP)"
declare -A M K
for path in kernel ktier; do
  for k in t1 pps avg p99 cpu; do M[$k]=$(median ${V[$path.$k]}); K[$path.$k]=${M[$k]}; done
  printf "$F" "$([ $path = kernel ] && echo "kernel VXLAN" || echo "kernel: tier")" \
    "${M[t1]}" "$(ratio "${M[t1]}" "${K[kernel.t1]}")" "${M[pps]%.*}" "$(ratio "${M[pps]}" "${K[kernel.pps]}")" \
    "${M[avg]}" "$(ratio "${M[avg]}" "${K[kernel.avg]}")" "${M[p99]}" "$(ratio "${M[p99]}" "${K[kernel.p99]}")" \
    "$([ $path = kernel ] && echo - || echo "${M[cpu]}")"
done
echo "targets (issue 14): kernel: tier TCP1 >= 0.95x, 64B received pps >= 0.95x, hot ping RTT <= 1.5x, vnet-node CPU ~0"
