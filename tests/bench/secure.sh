#!/usr/bin/env bash
# Encrypted vs plain overlay, same run: a controller with a key, two networks ("plain":
# VXLAN, "secure": per-pair AEAD), a node of each in two namespaces joined by veth. iperf3 TCP
# with 1 and 4 streams, 64-byte UDP packets per second (sendmmsg sender), medians of RUNS runs,
# and the secure/plain ratios. Target: secure >= 70% of plain. Not a pass/fail test.
# Usage: tests/bench/secure.sh [BUILD_DIR]   (root; env: RUNS=3 SECS=5)
set -u
BUILD=${1:-build}
RUNS=${RUNS:-3}
SECS=${SECS:-5}
NODE="$BUILD/examples/vnet-node"
CTL="$BUILD/examples/vnet-controller"
VNETCTL="$BUILD/examples/vnetctl"
BLAST="$BUILD/tests/bench/udpblast"
# STRICT=1 (the smoke test): no root or a missing tool is a skip (exit 77).
SKIP=1
[ -n "${STRICT:-}" ] && SKIP=77
[ "$(id -u)" -eq 0 ] || { echo "secure.sh: needs root" >&2; exit $SKIP; }
for t in iperf3 ping python3; do
  command -v $t >/dev/null || { echo "secure.sh: $t missing" >&2; exit $SKIP; }
done
P="vs$$"
A="$P-a"
B="$P-b"
TMP=$(mktemp -d)
cleanup() {
  for ns in "$A" "$B"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
  done
  sleep 0.2
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

"$CTL" --genkey "$TMP/ctl.key" >"$TMP/ctl.pub"
ip netns exec "$A" "$CTL" --db "$TMP/v.db" --key "$TMP/ctl.key" --listen 10.201.0.1:7700 \
  --api 127.0.0.1:7701 >"$TMP/ctl.log" 2>&1 &
for i in $(seq 1 100); do ip netns exec "$A" ss -Hltn "sport = :7701" | grep -q LISTEN && break; sleep 0.05; done
# A keyed controller's API wants its public key pinned and the admin token (written at its first
# start next to the database).
vnetctl() {
  ip netns exec "$A" "$VNETCTL" --controller 127.0.0.1:7701 --controller-key "$(cat "$TMP/ctl.pub")" \
    --token-file "$TMP/v.db.admin-token" "$@"
}
vnetctl network create plain --mode plain --subnet 10.61.0.0/24 --mtu 1400 >/dev/null
vnetctl network create secure --mode secure --subnet 10.62.0.0/24 --mtu 1400 >/dev/null
declare -A PORT=([plain]=4789 [secure]=4790) TAP=([plain]=vp0 [secure]=vs0)
for net in plain secure; do
  for side in 1 2; do
    ns=$A; [ $side = 2 ] && ns=$B
    "$NODE" --genkey "$TMP/$net$side.key" >"$TMP/$net$side.pub"
    vnetctl node add $net n$side --pubkey "$(cat "$TMP/$net$side.pub")" >/dev/null
    ip netns exec "$ns" "$NODE" --controller 10.201.0.1:7700 --network $net --name n$side \
      --key "$TMP/$net$side.key" --controller-key "$(cat "$TMP/ctl.pub")" \
      $([ $net = plain ] && echo --allow-plain) --dev "tap:${TAP[$net]}" --underlay "udp:10.201.0.$side:${PORT[$net]}" >"$TMP/$net$side.log" 2>&1 &
  done
  for i in $(seq 1 200); do vnetctl network status $net | grep -q "2 connected, 2 converged" && break; sleep 0.05; done
done
ip netns exec "$A" ping -c 1 -W 2 10.61.0.2 >/dev/null || { echo "plain overlay not up"; exit 1; }
ip netns exec "$A" ping -c 1 -W 2 10.62.0.2 >/dev/null || { echo "secure overlay not up"; cat "$TMP"/*.log; exit 1; }

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:] if x]; print(f"{statistics.median(v):.2f}" if v else "nan")' "$@"; }
tcp() { # dst streams
  ip netns exec "$B" iperf3 -s -1 -p 5301 >/dev/null 2>&1 &
  local srv=$!
  for i in $(seq 1 100); do ip netns exec "$B" ss -Hltn "sport = :5301" | grep -q LISTEN && break; sleep 0.02; done
  ip netns exec "$A" iperf3 -c "$1" -p 5301 -t "$SECS" -P "$2" -J 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)' 2>/dev/null
  wait $srv 2>/dev/null
}
pps() { # dst
  ip netns exec "$B" "$BLAST" recv 5400 "$SECS" >"$TMP/recv.out" &
  local r=$!
  for i in $(seq 1 40); do grep -q ready "$TMP/recv.out" 2>/dev/null && break; sleep 0.05; done
  ip netns exec "$A" "$BLAST" send "$1" 5400 64 "$SECS" >/dev/null
  wait $r
  sed -n 's/.*pps=\([0-9.]*\).*/\1/p' "$TMP/recv.out" | tail -1
}
declare -A R
for net in plain secure; do
  dst=10.61.0.2; [ $net = secure ] && dst=10.62.0.2
  t1=() t4=() p=()
  for r in $(seq 1 "$RUNS"); do
    t1+=("$(tcp $dst 1)"); t4+=("$(tcp $dst 4)"); p+=("$(pps $dst)")
  done
  R[$net.t1]=$(median "${t1[@]}"); R[$net.t4]=$(median "${t4[@]}"); R[$net.pps]=$(median "${p[@]}")
done
ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b else '-')"; }
echo "secure vs plain overlay: $RUNS runs of ${SECS}s, medians (suite: $(grep -o 'aes256gcm\|chacha20poly1305' "$TMP"/secure1.log | head -1 || true))"
printf '%-14s %14s %14s %14s\n' "network" "TCP 1 (Gb/s)" "TCP 4 (Gb/s)" "64B pps"
for net in plain secure; do printf '%-14s %14s %14s %14s\n' $net "${R[$net.t1]}" "${R[$net.t4]}" "${R[$net.pps]}"; done
printf '%-14s %14s %14s %14s\n' "secure/plain" "$(ratio "${R[secure.t1]}" "${R[plain.t1]}")" \
  "$(ratio "${R[secure.t4]}" "${R[plain.t4]}")" "$(ratio "${R[secure.pps]}" "${R[plain.pps]}")"
echo "target: secure >= 0.70x plain"
