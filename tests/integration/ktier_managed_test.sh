#!/usr/bin/env bash
# The kernel tier (--dev kernel:NAME) in managed mode, in network namespaces this test creates:
# a keyed controller; a plain network where n1 runs kernel:vn0 and n2, later n3, run tap:vn0
# (the controller's snapshot, then its deltas and peer lists, mirrored to the BPF maps); and a
# secure network where kernel:vn0 is refused with an error naming the reason.
# Skips (77) where BPF programs cannot be loaded or attached.
# Usage: ktier_managed_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"
CTL="$BUILD/examples/vnet-controller"
VNETCTL="$BUILD/examples/vnetctl"
K="$TMP/keys"
mkdir -m 700 "$K"

underlay_init
underlay_host ctl 100
for i in 1 2 3 4; do underlay_host n$i $i; done
in_ns n1 ethtool -K eth0 tx off >/dev/null # user-space receivers need the inner checksums

"$CTL" --genkey "$K/ctl.key" >"$K/ctl.pub"
for i in 1 2 3 4; do "$NODE" --genkey "$K/n$i.key" >"$K/n$i.pub"; done
CTLPUB=$(cat "$K/ctl.pub")
start_controller() {
  ip netns exec "$P-ctl" "$CTL" --db "$TMP/vnet.db" --key "$K/ctl.key" \
    --listen 10.200.0.100:7700 --api 127.0.0.1:7701 --keepalive 500 >>"$TMP/ctl.log" 2>&1 &
  CTL_PID=$!
  PIDS+=($CTL_PID)
  wait_listen ctl 7701
}
start_controller || exit 1
export VNET_CONTROLLER_KEY="$CTLPUB" VNET_TOKEN_FILE="$TMP/vnet.db.admin-token"
vnetctl() { ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701 "$@"; }
vnetctl network create blue --mode plain --subnet 10.100.0.0/24 >/dev/null
vnetctl network create green --mode secure --subnet 10.101.0.0/24 >/dev/null
for i in 1 2 3; do vnetctl node add blue n$i --pubkey "$(cat "$K/n$i.pub")" >/dev/null; done
vnetctl node add green n4 --pubkey "$(cat "$K/n4.pub")" >/dev/null

start_node() { # i network dev extra...
  local i=$1 net=$2 dev=$3
  shift 3
  ip netns exec "$P-n$i" "$NODE" --controller 10.200.0.100:7700 --network "$net" --name "n$i" \
    --key "$K/n$i.key" --controller-key "$CTLPUB" --dev "$dev" \
    --underlay "udp:10.200.0.$i:4789" "$@" >>"$TMP/n$i.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$i=$!"
}

start_node 1 blue kernel:vn0 --allow-plain
start_node 2 blue tap:vn0 --allow-plain
start_node 4 green kernel:vn0
wait_log "$TMP/n1.log" "up: vn0 in network blue|error" || exit 1
if ! grep -q "up: vn0 in network blue" "$TMP/n1.log"; then
  if grep -Eq "without libbpf|attaching the TC programs|loading the BPF programs" "$TMP/n1.log"; then
    echo "SKIP: no kernel tier here:"
    cat "$TMP/n1.log"
    exit 77
  fi
  cat "$TMP/n1.log"
  exit 1
fi
wait_log "$TMP/n2.log" "up: vn0 in network blue" || exit 1
check "kernel tier: the VXLAN device vk-vn0 exists" ip -n "$P-n1" link show vk-vn0
check "kernel tier: the network's MTU on vn0" \
  sh -c "ip -n $P-n1 link show vn0 | grep -q 'mtu 1450'"
check "ping n1 (kernel:) -> n2 (tap:)" in_ns n1 ping -c 3 -i 0.2 -W 2 10.100.0.2
check "ping n2 -> n1" in_ns n2 ping -c 3 -i 0.2 -W 2 10.100.0.1

# A third node joins while n1 runs: its entry and peer come as deltas, mirrored to the maps.
start_node 3 blue tap:vn0 --allow-plain
wait_log "$TMP/n3.log" "up: vn0 in network blue" || exit 1
check "ping n1 -> n3 (joined later)" in_ns n1 ping -c 3 -i 0.2 -W 3 10.100.0.3
check "ping n3 -> n1" in_ns n3 ping -c 3 -i 0.2 -W 2 10.100.0.1
# SIGUSR1 on n1, then the "flooded N" of its new counters line.
n1_flooded() {
  local before
  before=$(grep -c "drops:" "$TMP/n1.log")
  kill -USR1 "$PID_1"
  local i=0
  while [ "$(grep -c "drops:" "$TMP/n1.log")" -le "$before" ] && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
  done
  grep -o "flooded [0-9]*" "$TMP/n1.log" | tail -1 | cut -d' ' -f2
}
F1=$(n1_flooded)
in_ns n1 ping -c 20 -i 0.05 -W 2 10.100.0.3 >/dev/null
F2=$(n1_flooded)
check "unicast to n3 goes by the table entry the controller sent (not flooded: $F1 -> $F2)" \
  test $((F2 - F1)) -lt 5
check "SIGUSR1: the tier's counters (frames from the overlay)" grep -Eq "rx [1-9]" "$TMP/n1.log"
check "ARP answered in the kernel from the controller's IP bindings" grep -Eq "arp [1-9]" "$TMP/n1.log"

# The controller restarts: n1 is welcomed again and keeps its tier (same VXLAN device).
VX_BEFORE=$(ip -n "$P-n1" -o link show vk-vn0 | cut -d: -f1)
kill "$CTL_PID"
wait "$CTL_PID" 2>/dev/null
start_controller || exit 1
i=0
until [ "$(grep -c 'up: vn0 in network blue' "$TMP/n1.log")" -ge 2 ] || [ $i -gt 200 ]; do
  sleep 0.05
  i=$((i + 1))
done
check "after a controller restart n1 is welcomed again" \
  test "$(grep -c 'up: vn0 in network blue' "$TMP/n1.log")" -ge 2
check "... and keeps its VXLAN device" \
  test "$(ip -n "$P-n1" -o link show vk-vn0 | cut -d: -f1)" = "$VX_BEFORE"
check "... and still reaches n2" in_ns n1 ping -c 2 -i 0.2 -W 2 10.100.0.2

wait_log "$TMP/n4.log" "is secure|up: vn0" 10
check "secure network on kernel:: a clear error naming the reason" \
  grep -q "error \[node\]: network green is secure: --dev kernel:vn0 carries plain networks only (this kernel has no ESP/xfrm" "$TMP/n4.log"
check "... and no VXLAN device is made" sh -c "! ip -n $P-n4 link show vk-vn0 2>/dev/null"

kill "$PID_1"
wait "$PID_1"
check "n1 exits 0 on SIGTERM" test $? -eq 0
check "nothing left on n1: no vn0, no vk-vn0" \
  sh -c "! ip -n $P-n1 link show vn0 2>/dev/null && ! ip -n $P-n1 link show vk-vn0 2>/dev/null"
finish
