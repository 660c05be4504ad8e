#!/usr/bin/env bash
# Overlay benchmark: the same measurements, in the same run, through
#   underlay   the underlay alone (two namespaces joined by a veth pair),
#   kernel     Linux kernel VXLAN on that underlay,
#   DEV+UL     libvnet's vnet-node with each backend combination (--dev DEV --underlay UL):
#              tap+udp, tap+raw, tap+xdp, raw+udp, raw+raw, xdp+udp, xdp+xdp, and kernel+udp
#              (the in-kernel tier, --dev kernel:NAME; "n/a" when this vnet-node has no kernel:
#              tier, detected from its --help). With DEV=tap the traffic starts and ends in the
#              node's own namespace; with raw, xdp or kernel in a "guest" namespace behind a veth
#              (as a VM's port would be).
# and ratios to kernel VXLAN. Figures are medians of RUNS runs. Not a pass/fail test.
# Measurements: iperf3 TCP with 1 and 4 streams; a 64-byte UDP flood (udpblast, sendmmsg) as
# packets per second counted by the receiving application, what the sender pushed and the loss
# between them; iperf3 UDP with 64-byte payloads (received pps); "hot" ping (ping -A: the next
# probe as soon as the reply is in, 1000 probes with SECS=5) and ping every 10 ms (100*SECS probes), each
# as average and p99 of the round trips.
# CPU: user+system time of both vnet-node processes (/proc/PID/stat), in % of one core, during
# the 1-stream TCP run and during the 64-byte blast (the kernel paths spend softirq time that no
# process owns, so the kernel tier's target is ~0).
#
# Each row that puts an XDP program on an interface gets veths of its own (one XDP program per
# interface), with transmit checksum offload off on the sending side, so that frames arrive with
# complete checksums, as from real NICs (xdp ports complete pending ones themselves otherwise).
#
# Usage: tests/bench/overlay.sh [BUILD_DIR]
#   (root; env: RUNS=3 SECS=5 ROWS="tap+udp xdp+xdp" ONLY="tcp pps iperf64 rtt" KEEP_LOGS=1
#    MD=1 also prints the table in Markdown, SHOW_STATS=1 the nodes' counters)
# Traffic stays inside the namespaces this script creates and deletes.
set -u
BUILD=${1:-build}
RUNS=${RUNS:-3}
SECS=${SECS:-5}
ROWS=${ROWS:-"tap+udp tap+raw tap+xdp raw+udp raw+raw xdp+udp xdp+xdp kernel+udp"}
NODE="$BUILD/examples/vnet-node"
BLAST="$BUILD/tests/bench/udpblast"
# STRICT=1 (the smoke test): a row that does not come up fails the run; no root or a missing
# tool is a skip (exit 77).
SKIP=1
[ -n "${STRICT:-}" ] && SKIP=77
[ "$(id -u)" -eq 0 ] || { echo "overlay.sh: needs root" >&2; exit $SKIP; }
for t in iperf3 ping python3 ethtool; do
  command -v $t >/dev/null || { echo "overlay.sh: $t missing (./.ci/deps.sh installs it)" >&2; exit $SKIP; }
done
[ -x "$NODE" ] && [ -x "$BLAST" ] || { echo "overlay.sh: build first (meson compile -C $BUILD)" >&2; exit 1; }
# The in-kernel tier is another helper's work: rows with DEV=kernel run when this vnet-node
# offers it.
KTIER=
"$NODE" --help 2>&1 | grep -q kernel: && KTIER=1

P="vb$$"
A="$P-a"
B="$P-b"
TMP=$(mktemp -d)
PIDS=()
NSS=("$A" "$B")
cleanup() {
  [ -n "${KEEP_LOGS:-}" ] && cp "$TMP"/*.log /tmp/ 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for ns in "${NSS[@]}"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
  done
  for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
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

# Kernel VXLAN, port 4789.
for side in 1 2; do
  ns=$A; [ $side = 2 ] && ns=$B
  other=$((3 - side))
  ip -n "$ns" link add vx0 type vxlan id 77 local 10.201.0.$side remote 10.201.0.$other dstport 4789 dev veth0
  ip -n "$ns" link set vx0 mtu 1450 up
  ip -n "$ns" addr add 10.202.0.$side/24 dev vx0
done

declare -A SRC DST DSTIP NPID OK NA
# One libvnet row: combination $1 (DEV+UL), row number $2 (1..): VNI 100+N, UDP port 4800+N,
# overlay 10.210+N.0.0/24; an xdp underlay gets its own veth pair (10.220+N.0.0/24).
setup_row() {
  local combo=$1 n=$2 dev=${1%+*} ul=${1#*+} side ns other ulif=veth0 ulnet=10.201.0 port=$((4800 + $2))
  local ov=10.$((210 + n)).0
  if [ "$ul" = xdp ]; then
    ulif=vu$n
    ulnet=10.$((220 + n)).0
    ip link add $ulif netns "$A" type veth peer name $ulif netns "$B"
    for side in 1 2; do
      ns=$A; [ $side = 2 ] && ns=$B
      ip -n "$ns" addr add $ulnet.$side/24 dev $ulif
      ip -n "$ns" link set $ulif up
      ip netns exec "$ns" ethtool -K $ulif tx off >/dev/null 2>&1
    done
  fi
  for side in 1 2; do
    ns=$A; [ $side = 2 ] && ns=$B
    other=$((3 - side))
    local mac=02:00:00:00:$(printf %02x "$n"):0$side omac=02:00:00:00:$(printf %02x "$n"):0$other
    local devspec ulspec ipargs=() ep=$ns
    case $ul in
      udp) ulspec=udp:$ulnet.$side:$port ;;
      *) ulspec=$ul:$ulif,local=$ulnet.$side:$port ;;
    esac
    if [ "$dev" = tap ]; then
      devspec=tap:vn$n
      ipargs=(--ip $ov.$side/24 --arp $ov.$other=$omac)
    else
      # A guest namespace behind a veth: vm$n in the host, eth0 in the guest.
      ep="$P-g$n$side"
      ip netns add "$ep"
      NSS+=("$ep")
      ip -n "$ep" link set lo up
      ip link add vm$n netns "$ns" type veth peer name eth0 netns "$ep"
      ip -n "$ns" link set vm$n up
      ip -n "$ep" link set eth0 address $mac mtu 1450 up
      ip -n "$ep" addr add $ov.$side/24 dev eth0
      ip -n "$ep" neigh replace $ov.$other lladdr $omac dev eth0
      [ "$dev" = xdp ] && ip netns exec "$ep" ethtool -K eth0 tx off >/dev/null 2>&1
      # kernel: the tier attaches its programs to the existing veth (a VM's port).
      devspec=$dev:vm$n
    fi
    ip netns exec "$ns" "$NODE" --dev "$devspec" --underlay "$ulspec" --vni $((100 + n)) \
      --mac $mac "${ipargs[@]}" --peer $ulnet.$other:$port --static $omac=$ulnet.$other:$port \
      >"$TMP/$combo.$side.log" 2>&1 &
    PIDS+=($!)
    NPID[$combo.$side]=$!
    [ $side = 1 ] && SRC[$combo]=$ep || DST[$combo]=$ep
  done
  DSTIP[$combo]=$ov.2
}

n=0
for combo in $ROWS; do
  n=$((n + 1))
  if [ "${combo%+*}" = kernel ] && [ -z "$KTIER" ]; then
    NA[$combo]="n/a (no kernel: tier in this build)"
    continue
  fi
  setup_row "$combo" $n
done
for combo in $ROWS; do
  [ -n "${NA[$combo]:-}" ] && continue
  for i in $(seq 1 100); do
    grep -q "up: " "$TMP/$combo.1.log" && grep -q "up: " "$TMP/$combo.2.log" && break
    sleep 0.05
  done
  # The first packets may wait for the underlay's neighbour resolution: up when one answers.
  if ip netns exec "${SRC[$combo]}" ping -c 1 -i 0.2 -w 5 "${DSTIP[$combo]}" >/dev/null; then
    OK[$combo]=1
  else
    echo "($combo not up: row skipped)"
    cat "$TMP/$combo".*.log
    [ -n "${STRICT:-}" ] && exit 1
  fi
done
ip netns exec "$A" ping -c 1 -W 2 10.202.0.2 >/dev/null || { echo "kernel vxlan not up"; exit 1; }

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:] if x and x != "nan"]; print(f"{statistics.median(v):.2f}" if v else "nan")' "$@"; }

cpu_ticks() { # pids... -> user+system ticks, summed
  local s=0 p
  for p in "$@"; do s=$((s + $(awk '{print $14+$15}' /proc/$p/stat))); done
  echo $s
}
cpu_pct() { # ticks0 ticks1 wall0 wall1
  python3 -c "print(f'{100*($2-$1)/$(getconf CLK_TCK)/($4-$3):.0f}')"
}

S=$A
D=$B
iperf_tcp() { # dst streams -> Gbit/s
  ip netns exec "$D" iperf3 -s -1 -p 5301 >/dev/null 2>&1 &
  local srv=$!
  for i in $(seq 1 100); do
    ip netns exec "$D" ss -Hltn "sport = :5301" 2>/dev/null | grep -q LISTEN && break
    sleep 0.02
  done
  ip netns exec "$S" iperf3 -c "$1" -p 5301 -t "$SECS" -P "$2" -J 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["end"]["sum_received"]["bits_per_second"]/1e9)' 2>/dev/null
  wait $srv 2>/dev/null
}

small_pps() { # dst -> "received_pps sent_pps loss%" (64-byte UDP payloads, sendmmsg sender)
  # Received: what the receiving application got, counted until the flow is quiet (so what
  # was still queued on the way counts), over the time from its first to its last datagram.
  # Loss: 1 - received/sent, in %.
  ip netns exec "$D" "$BLAST" recv 5400 "$SECS" >"$TMP/recv.out" &
  local r=$!
  for i in $(seq 1 40); do grep -q ready "$TMP/recv.out" 2>/dev/null && break; sleep 0.05; done
  ip netns exec "$S" "$BLAST" send "$1" 5400 64 "$SECS" >"$TMP/send.out"
  wait $r
  python3 - "$TMP/recv.out" "$TMP/send.out" <<'PY'
import re, sys
def get(path):
    m = re.search(r"(?:received|sent)=(\d+) pps=([\d.]+)", open(path).read())
    return (int(m.group(1)), float(m.group(2))) if m else (None, None)
got, rpps = get(sys.argv[1])
sent, spps = get(sys.argv[2])
loss = 100.0 * (1 - got / sent) if got is not None and sent else float("nan")
print(rpps if rpps is not None else "nan", spps if spps is not None else "nan", f"{max(loss, 0):.1f}")
PY
}

iperf_udp64() { # dst -> packets/s received (iperf3, 64-byte payloads, unlimited rate)
  ip netns exec "$D" iperf3 -s -1 -p 5302 >/dev/null 2>&1 &
  local srv=$!
  for i in $(seq 1 100); do
    ip netns exec "$D" ss -Hltn "sport = :5302" 2>/dev/null | grep -q LISTEN && break
    sleep 0.02
  done
  ip netns exec "$S" iperf3 -c "$1" -p 5302 -u -l 64 -b 0 -t "$SECS" -J 2>/dev/null |
    python3 -c '
import json,sys
d=json.load(sys.stdin)["end"]["sum"]
print((d["packets"]-d["lost_packets"])/d["seconds"])' 2>/dev/null
  wait $srv 2>/dev/null
}

ping_rtt() { # dst ping-options... -> "avg p99" in microseconds
  local dst=$1
  shift
  ip netns exec "$S" ping "$@" -W 1 "$dst" 2>/dev/null |
    python3 -c '
import re,sys
v=sorted(float(m.group(1))*1000 for m in re.finditer(r"time=([0-9.]+) ms", sys.stdin.read()))
print(f"{sum(v)/len(v):.1f} {v[min(len(v)-1,int(len(v)*0.99))]:.1f}" if v else "nan nan")'
}

# Hot: each probe as soon as the previous reply is in (ping -A, as root no minimum interval),
# 200*SECS probes (at most 1000); every 10 ms: threads and cores have gone idle between probes,
# 100*SECS probes (at least 50).
ping_hot() { local c=$((200 * ${SECS%.*})); ping_rtt "$1" -A -c $((c > 1000 ? 1000 : c < 100 ? 100 : c)); }
ping_10ms() { local c=$((100 * ${SECS%.*})); ping_rtt "$1" -i 0.01 -c $((c < 50 ? 50 : c)); }

# ONLY="pps rtt" runs just those measurements (tcp, pps, iperf64, rtt); the others print nan.
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

declare -A R
measure() { # name src_ns dst_ns dst_ip [pids whose CPU to measure...]
  local name=$1 dst=$4 t1=() t4=() pps=() spps=() loss=() ipps=() avg=() p99=() savg=() sp99=()
  local ct=() cp=() c0 c1 w0 w1 a p x y z
  S=$2
  D=$3
  shift 4
  for r in $(seq 1 "$RUNS"); do
    if want tcp; then
      [ $# -gt 0 ] && { c0=$(cpu_ticks "$@"); w0=$(date +%s.%N); }
      t1+=("$(iperf_tcp "$dst" 1)")
      [ $# -gt 0 ] && { c1=$(cpu_ticks "$@"); w1=$(date +%s.%N); ct+=("$(cpu_pct $c0 $c1 $w0 $w1)"); }
      t4+=("$(iperf_tcp "$dst" 4)")
    fi
    if want pps; then
      [ $# -gt 0 ] && { c0=$(cpu_ticks "$@"); w0=$(date +%s.%N); }
      read -r x y z <<<"$(small_pps "$dst")"
      pps+=("$x"); spps+=("$y"); loss+=("$z")
      [ $# -gt 0 ] && { c1=$(cpu_ticks "$@"); w1=$(date +%s.%N); cp+=("$(cpu_pct $c0 $c1 $w0 $w1)"); }
    fi
    want iperf64 && ipps+=("$(iperf_udp64 "$dst")")
    if want rtt; then
      read -r a p <<<"$(ping_hot "$dst")"
      avg+=("$a"); p99+=("$p")
      read -r a p <<<"$(ping_10ms "$dst")"
      savg+=("$a"); sp99+=("$p")
    fi
  done
  R[$name.t1]=$(median "${t1[@]}")
  R[$name.t4]=$(median "${t4[@]}")
  R[$name.pps]=$(median "${pps[@]}")
  R[$name.spps]=$(median "${spps[@]}")
  R[$name.loss]=$(median "${loss[@]}")
  R[$name.ipps]=$(median "${ipps[@]}")
  R[$name.avg]=$(median "${avg[@]}")
  R[$name.p99]=$(median "${p99[@]}")
  R[$name.savg]=$(median "${savg[@]}")
  R[$name.sp99]=$(median "${sp99[@]}")
  R[$name.ct]=$([ ${#ct[@]} -gt 0 ] && median "${ct[@]}" || echo -)
  R[$name.cp]=$([ ${#cp[@]} -gt 0 ] && median "${cp[@]}" || echo -)
}

echo "overlay benchmark: $RUNS runs of ${SECS}s each, medians; ratios against kernel VXLAN"
NAMES=(underlay kernel)
measure underlay "$A" "$B" 10.201.0.2
measure kernel "$A" "$B" 10.202.0.2
for combo in $ROWS; do
  NAMES+=("$combo")
  [ -n "${OK[$combo]:-}" ] || continue
  measure "$combo" "${SRC[$combo]}" "${DST[$combo]}" "${DSTIP[$combo]}" "${NPID[$combo.1]}" "${NPID[$combo.2]}"
done

ratio() { python3 -c "
a,b=float('$1'),float('$2')
print(f'{a/b:.2f}x' if b and a == a and b == b else '-')"; }
F='%-10s %6s %6s %6s %6s %8s %6s %8s %6s %7s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s\n'
printf "$F" "path" "TCP1" "/kern" "TCP4" "/kern" "pps64" "/kern" "sent64" "loss%" "iperf64" "/kern" \
  "RTTavg" "/kern" "RTTp99" "/kern" "P10avg" "/kern" "P10p99" "/kern" "CPUtcp" | sed 's/ *$//'
printf "$F" "" "Gb/s" "" "Gb/s" "" "rx pps" "" "pps" "" "pps" "" "hot us" "" "hot us" "" \
  "10ms us" "" "10ms us" "" "%" | sed 's/ *$//'
for n in "${NAMES[@]}"; do
  if [ -n "${NA[$n]:-}" ]; then
    printf '%-10s %s\n' "$n" "${NA[$n]}"
    continue
  fi
  if [ -z "${R[$n.t1]:-}" ]; then
    printf '%-10s %s\n' "$n" "not up (row skipped)"
    continue
  fi
  printf "$F" "$n" "${R[$n.t1]}" "$(ratio "${R[$n.t1]}" "${R[kernel.t1]}")" \
    "${R[$n.t4]}" "$(ratio "${R[$n.t4]}" "${R[kernel.t4]}")" \
    "${R[$n.pps]%.*}" "$(ratio "${R[$n.pps]}" "${R[kernel.pps]}")" "${R[$n.spps]%.*}" "${R[$n.loss]}" \
    "${R[$n.ipps]%.*}" "$(ratio "${R[$n.ipps]}" "${R[kernel.ipps]}")" \
    "${R[$n.avg]}" "$(ratio "${R[$n.avg]}" "${R[kernel.avg]}")" \
    "${R[$n.p99]}" "$(ratio "${R[$n.p99]}" "${R[kernel.p99]}")" \
    "${R[$n.savg]}" "$(ratio "${R[$n.savg]}" "${R[kernel.savg]}")" \
    "${R[$n.sp99]}" "$(ratio "${R[$n.sp99]}" "${R[kernel.sp99]}")" "${R[$n.ct]:--}"
done
echo "pps64: 64-byte UDP flood received by the application (sent64: what the sender pushed)"
echo "CPU of both vnet-node processes, % of one core (2 cores in all): TCP 1 stream / 64 B flood"
for n in "${NAMES[@]}"; do
  [ -n "${R[$n.t1]:-}" ] && [ "${R[$n.ct]:--}" != - ] && printf '  %-10s %s / %s %%\n' "$n" "${R[$n.ct]}" "${R[$n.cp]:--}"
done
echo "added latency over the underlay (RTT avg minus the underlay's):"
for n in "${NAMES[@]}"; do
  [ $n = underlay ] && continue
  [ -n "${R[$n.t1]:-}" ] || continue
  printf '  %-9s %s us\n' "$n" "$(python3 -c "print(f'{float(\"${R[$n.avg]}\")-float(\"${R[underlay.avg]}\"):.1f}')")"
done
echo "targets (issue 14): kernel+udp TCP1 >= 0.95x, pps64 >= 0.95x, RTTavg <= 1.5x, CPU ~0;"
echo "  tap+udp TCP1 >= 0.75x, pps64 >= 1.0x with loss <= 10%, hot RTT avg <= 60 us, p99 <= 200 us"

if [ -n "${MD:-}" ]; then
  # The same figures as a Markdown table (docs/benchmarks.md).
  md_ratio() { local r; r=$(ratio "$1" "$2"); [ "$r" = - ] && echo "" || echo " ($r)"; }
  md_k() { python3 -c "x=float('$1'); print('-' if x != x else f'{x/1000:.0f} k')"; }
  md_1() { python3 -c "x=float('$1'); print('-' if x != x else f'{x:.1f}')"; }
  cpu_md() { [ "$1" = - ] && echo - || echo "$(md_int "$1") %"; }
  md_int() { python3 -c "x=float('$1'); print('-' if x != x else f'{x:.0f}')"; }
  echo
  echo "| path | TCP 1 stream | TCP 4 streams | 64 B UDP flood: received (sent), lost | iperf3 64 B received | hot ping avg / p99 | ping every 10 ms avg / p99 | vnet-node CPU TCP / 64 B |"
  echo "|---|---|---|---|---|---|---|---|"
  for n in "${NAMES[@]}"; do
    if [ -n "${NA[$n]:-}" ]; then echo "| $n | ${NA[$n]} | | | | | | |"; continue; fi
    if [ -z "${R[$n.t1]:-}" ]; then echo "| $n | not up | | | | | | |"; continue; fi
    echo "| $n | ${R[$n.t1]} Gbit/s$(md_ratio "${R[$n.t1]}" "${R[kernel.t1]}") |" \
      "${R[$n.t4]} Gbit/s$(md_ratio "${R[$n.t4]}" "${R[kernel.t4]}") |" \
      "$(md_k "${R[$n.pps]}")$(md_ratio "${R[$n.pps]}" "${R[kernel.pps]}"); sent $(md_k "${R[$n.spps]}"), $(md_1 "${R[$n.loss]}")% lost |" \
      "$(md_k "${R[$n.ipps]}")$(md_ratio "${R[$n.ipps]}" "${R[kernel.ipps]}") |" \
      "$(md_int "${R[$n.avg]}") / $(md_int "${R[$n.p99]}") µs$(md_ratio "${R[$n.avg]}" "${R[kernel.avg]}") |" \
      "$(md_int "${R[$n.savg]}") / $(md_int "${R[$n.sp99]}") µs$(md_ratio "${R[$n.savg]}" "${R[kernel.savg]}") |" \
      "$(cpu_md "${R[$n.ct]:--}") / $(cpu_md "${R[$n.cp]:--}") |"
  done
fi
if [ -n "${SHOW_STATS:-}" ]; then
  for p in "${PIDS[@]}"; do kill -USR1 "$p" 2>/dev/null; done
  sleep 0.5
  cat "$TMP"/*.log
fi
