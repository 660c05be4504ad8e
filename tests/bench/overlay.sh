#!/usr/bin/env bash
# Overlay benchmark: the same measurements, in the same run, through
#   (a) the underlay alone (two namespaces joined by a veth pair),
#   (b) Linux kernel VXLAN on that underlay,
#   (c) libvnet, vnet-node with TAP + UDP backends, on that underlay,
#   (d) libvnet with TAP + raw (AF_PACKET) underlay,
#   (e) libvnet with TAP + AF_XDP underlay (on a second veth pair, checksum offload off),
# and ratios to (b). Figures are medians of RUNS runs. Not a pass/fail test.
#
# Usage: tests/bench/overlay.sh [BUILD_DIR]   (root; env: RUNS=3 SECS=5)
# Traffic stays inside the two namespaces this script creates and deletes.
set -u
BUILD=${1:-build}
RUNS=${RUNS:-3}
SECS=${SECS:-5}
NODE="$BUILD/examples/vnet-node"
BLAST="$BUILD/tests/bench/udpblast"
[ "$(id -u)" -eq 0 ] || { echo "overlay.sh: needs root" >&2; exit 1; }
for t in iperf3 ping python3; do
  command -v $t >/dev/null || { echo "overlay.sh: $t missing (./.ci/deps.sh installs it)" >&2; exit 1; }
done
[ -x "$NODE" ] && [ -x "$BLAST" ] || { echo "overlay.sh: build first (meson compile -C $BUILD)" >&2; exit 1; }

P="vb$$"
A="$P-a"
B="$P-b"
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  [ -n "${KEEP_LOGS:-}" ] && cp "$TMP"/node*.log /tmp/ 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for ns in "$A" "$B"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
  done
  ip netns del "$A" 2>/dev/null
  ip netns del "$B" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$A"
ip netns add "$B"
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip link add veth0 netns "$A" type veth peer name veth0 netns "$B"
ip -n "$A" addr add 10.201.0.1/24 dev veth0
ip -n "$B" addr add 10.201.0.2/24 dev veth0
ip -n "$A" link set veth0 up
ip -n "$B" link set veth0 up

# (b) kernel VXLAN, port 4789
for side in 1 2; do
  ns=$A; [ $side = 2 ] && ns=$B
  other=$((3 - side))
  ip -n "$ns" link add vx0 type vxlan id 77 local 10.201.0.$side remote 10.201.0.$other dstport 4789 dev veth0
  ip -n "$ns" link set vx0 mtu 1450 up
  ip -n "$ns" addr add 10.202.0.$side/24 dev vx0
done

# (c) libvnet, port 4790
for side in 1 2; do
  ns=$A; [ $side = 2 ] && ns=$B
  other=$((3 - side))
  ip netns exec "$ns" "$NODE" --dev tap:vn0 --underlay udp:10.201.0.$side:4790 --vni 78 \
    --mac 02:00:00:00:01:0$side --ip 10.203.0.$side/24 --peer 10.201.0.$other:4790 \
    --static 02:00:00:00:01:0$other=10.201.0.$other:4790 \
    --arp 10.203.0.$other=02:00:00:00:01:0$other >"$TMP/node$side.log" 2>&1 &
  PIDS+=($!)
done
NODE_A=${PIDS[0]}

# (d) libvnet, TAP + raw (AF_PACKET) underlay, port 4791
for side in 1 2; do
  ns=$A; [ $side = 2 ] && ns=$B
  other=$((3 - side))
  ip netns exec "$ns" "$NODE" --dev tap:vr0 --underlay "raw:veth0,local=10.201.0.$side:4791" \
    --vni 79 --mac 02:00:00:00:02:0$side --ip 10.204.0.$side/24 --peer 10.201.0.$other:4791 \
    --static 02:00:00:00:02:0$other=10.201.0.$other:4791 \
    --arp 10.204.0.$other=02:00:00:00:02:0$other >"$TMP/raw$side.log" 2>&1 &
  PIDS+=($!)
done
NODE_RAW_A=${PIDS[2]}

# (e) libvnet, TAP + AF_XDP underlay, on a second veth pair (veth1, 10.206.0.0/24) with transmit
# checksum offload off: XDP cannot see a veth's pending checksums.
ip link add veth1 netns "$A" type veth peer name veth1 netns "$B"
for side in 1 2; do
  ns=$A; [ $side = 2 ] && ns=$B
  ip -n "$ns" addr add 10.206.0.$side/24 dev veth1
  ip -n "$ns" link set veth1 up
  ip netns exec "$ns" ethtool -K veth1 tx off >/dev/null 2>&1
done
for side in 1 2; do
  ns=$A; [ $side = 2 ] && ns=$B
  other=$((3 - side))
  ip netns exec "$ns" "$NODE" --dev tap:vt0 --underlay "xdp:veth1,local=10.206.0.$side:4792" \
    --vni 80 --mac 02:00:00:00:03:0$side --ip 10.207.0.$side/24 --peer 10.206.0.$other:4792 \
    --static 02:00:00:00:03:0$other=10.206.0.$other:4792 \
    --arp 10.207.0.$other=02:00:00:00:03:0$other >"$TMP/xdp$side.log" 2>&1 &
  PIDS+=($!)
done
NODE_XDP_A=${PIDS[4]}
for i in $(seq 1 100); do
  grep -q "up: vn0" "$TMP/node1.log" && grep -q "up: vn0" "$TMP/node2.log" && break
  sleep 0.05
done
ip netns exec "$A" ping -c 1 -W 2 10.203.0.2 >/dev/null || { echo "libvnet overlay not up"; cat "$TMP"/node*.log; exit 1; }
ip netns exec "$A" ping -c 1 -W 2 10.202.0.2 >/dev/null || { echo "kernel vxlan not up"; exit 1; }
for i in $(seq 1 100); do
  grep -q "up: vr0" "$TMP/raw1.log" && grep -q "up: vr0" "$TMP/raw2.log" && break
  sleep 0.05
done
ip netns exec "$A" ping -c 1 -W 2 10.204.0.2 >/dev/null || { echo "libvnet raw underlay not up"; cat "$TMP"/raw*.log; exit 1; }
for i in $(seq 1 100); do
  grep -q "up: vt0" "$TMP/xdp1.log" && grep -q "up: vt0" "$TMP/xdp2.log" && break
  sleep 0.05
done
XDP_OK=1
ip netns exec "$A" ping -c 1 -W 2 10.207.0.2 >/dev/null || { echo "(AF_XDP underlay not up: row skipped)"; cat "$TMP"/xdp*.log; XDP_OK=0; }

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:] if x]; print(f"{statistics.median(v):.2f}" if v else "nan")' "$@"; }

cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat; }

iperf_tcp() { # dst streams -> Gbit/s
  ip netns exec "$B" iperf3 -s -1 -p 5301 >/dev/null 2>&1 &
  local srv=$!
  sleep 0.2
  ip netns exec "$A" iperf3 -c "$1" -p 5301 -t "$SECS" -P "$2" -J 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["end"]["sum_received"]["bits_per_second"]/1e9)' 2>/dev/null
  wait $srv 2>/dev/null
}

small_pps() { # dst -> packets/s received (64-byte UDP payloads, sendmmsg sender)
  ip netns exec "$B" "$BLAST" recv 5400 "$SECS" >"$TMP/recv.out" &
  local r=$!
  for i in $(seq 1 40); do grep -q ready "$TMP/recv.out" 2>/dev/null && break; sleep 0.05; done
  ip netns exec "$A" "$BLAST" send "$1" 5400 64 "$SECS" >/dev/null
  wait $r
  sed -n 's/.*pps=\([0-9.]*\).*/\1/p' "$TMP/recv.out" | tail -1
}

iperf_udp64() { # dst -> packets/s received (iperf3, 64-byte payloads, unlimited rate)
  ip netns exec "$B" iperf3 -s -1 -p 5302 >/dev/null 2>&1 &
  local srv=$!
  for i in $(seq 1 100); do
    ip netns exec "$B" ss -Hlun "sport = :5302" 2>/dev/null | grep -q . && break
    ip netns exec "$B" ss -Hltn "sport = :5302" 2>/dev/null | grep -q LISTEN && break
    sleep 0.02
  done
  ip netns exec "$A" iperf3 -c "$1" -p 5302 -u -l 64 -b 0 -t "$SECS" -J 2>/dev/null |
    python3 -c '
import json,sys
d=json.load(sys.stdin)["end"]["sum"]
print((d["packets"]-d["lost_packets"])/d["seconds"])' 2>/dev/null
  wait $srv 2>/dev/null
}

ping_rtt() { # dst -> "avg p99" in microseconds
  ip netns exec "$A" ping -c 200 -i 0.005 -W 1 "$1" 2>/dev/null |
    python3 -c '
import re,sys
v=sorted(float(m.group(1))*1000 for m in re.finditer(r"time=([0-9.]+) ms", sys.stdin.read()))
print(f"{sum(v)/len(v):.1f} {v[min(len(v)-1,int(len(v)*0.99))]:.1f}" if v else "nan nan")'
}

declare -A R
measure() { # name dst [pid whose CPU to measure]
  local name=$1 dst=$2 cpid=${3:-$NODE_A} t1=() t4=() pps=() ipps=() avg=() p99=() cpu=()
  for r in $(seq 1 "$RUNS"); do
    local c0 w0
    c0=$(cpu_ticks "$cpid"); w0=$(date +%s.%N)
    t1+=("$(iperf_tcp "$dst" 1)")
    local c1 w1
    c1=$(cpu_ticks "$cpid"); w1=$(date +%s.%N)
    cpu+=("$(python3 -c "print(100*($c1-$c0)/$(getconf CLK_TCK)/($w1-$w0))")")
    t4+=("$(iperf_tcp "$dst" 4)")
    pps+=("$(small_pps "$dst")")
    ipps+=("$(iperf_udp64 "$dst")")
    read -r a p <<<"$(ping_rtt "$dst")"
    avg+=("$a"); p99+=("$p")
  done
  R[$name.t1]=$(median "${t1[@]}")
  R[$name.t4]=$(median "${t4[@]}")
  R[$name.pps]=$(median "${pps[@]}")
  R[$name.ipps]=$(median "${ipps[@]}")
  R[$name.avg]=$(median "${avg[@]}")
  R[$name.p99]=$(median "${p99[@]}")
  R[$name.cpu]=$(median "${cpu[@]}")
}

echo "overlay benchmark: $RUNS runs of ${SECS}s each, medians; ratios against kernel VXLAN"
measure underlay 10.201.0.2
measure kernel 10.202.0.2
measure libvnet 10.203.0.2
measure libvnet-raw 10.204.0.2 "$NODE_RAW_A"
[ $XDP_OK = 1 ] && measure libvnet-xdp 10.207.0.2 "$NODE_XDP_A"

ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b else '-')"; }
F='%-16s %12s %12s %13s %13s %10s %10s\n'
printf "$F" "path" "TCP 1 (Gb/s)" "TCP 4 (Gb/s)" "64B pps blast" "64B pps iperf" "RTT avg us" "RTT p99 us"
for n in underlay kernel libvnet libvnet-raw libvnet-xdp; do
  [ -n "${R[$n.t1]:-}" ] || continue
  printf "$F" "$n" "${R[$n.t1]}" "${R[$n.t4]}" "${R[$n.pps]}" "${R[$n.ipps]}" "${R[$n.avg]}" "${R[$n.p99]}"
done
printf "$F" "libvnet/kernel" "$(ratio "${R[libvnet.t1]}" "${R[kernel.t1]}")" \
  "$(ratio "${R[libvnet.t4]}" "${R[kernel.t4]}")" "$(ratio "${R[libvnet.pps]}" "${R[kernel.pps]}")" \
  "$(ratio "${R[libvnet.ipps]}" "${R[kernel.ipps]}")" \
  "$(ratio "${R[libvnet.avg]}" "${R[kernel.avg]}")" "$(ratio "${R[libvnet.p99]}" "${R[kernel.p99]}")"
added_k=$(python3 -c "print(f'{float(\"${R[kernel.avg]}\")-float(\"${R[underlay.avg]}\"):.1f}')")
added_l=$(python3 -c "print(f'{float(\"${R[libvnet.avg]}\")-float(\"${R[underlay.avg]}\"):.1f}')")
echo "added latency over the underlay: kernel VXLAN ${added_k} us, libvnet ${added_l} us"
printf "$F" "raw/kernel" "$(ratio "${R[libvnet-raw.t1]}" "${R[kernel.t1]}")" \
  "$(ratio "${R[libvnet-raw.t4]}" "${R[kernel.t4]}")" "$(ratio "${R[libvnet-raw.pps]}" "${R[kernel.pps]}")" \
  "$(ratio "${R[libvnet-raw.ipps]}" "${R[kernel.ipps]}")" \
  "$(ratio "${R[libvnet-raw.avg]}" "${R[kernel.avg]}")" "$(ratio "${R[libvnet-raw.p99]}" "${R[kernel.p99]}")"
if [ $XDP_OK = 1 ]; then
  printf "$F" "xdp/kernel" "$(ratio "${R[libvnet-xdp.t1]}" "${R[kernel.t1]}")" \
    "$(ratio "${R[libvnet-xdp.t4]}" "${R[kernel.t4]}")" "$(ratio "${R[libvnet-xdp.pps]}" "${R[kernel.pps]}")" \
    "$(ratio "${R[libvnet-xdp.ipps]}" "${R[kernel.ipps]}")" \
    "$(ratio "${R[libvnet-xdp.avg]}" "${R[kernel.avg]}")" "$(ratio "${R[libvnet-xdp.p99]}" "${R[kernel.p99]}")"
fi
echo "vnet-node (sender side) CPU during 1-stream TCP: TAP+UDP ${R[libvnet.cpu]}%, TAP+raw ${R[libvnet-raw.cpu]}%, TAP+xdp ${R[libvnet-xdp.cpu]:-n/a}% of one core"
echo "targets: TCP >= 1.0x kernel VXLAN; 64B pps >= 0.5x; added latency <= 2x kernel's"
if [ -n "${SHOW_STATS:-}" ]; then
  for p in "${PIDS[@]}"; do kill -USR1 "$p" 2>/dev/null; done
  sleep 0.5
  cat "$TMP"/node*.log
fi
