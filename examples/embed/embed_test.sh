#!/usr/bin/env bash
# The embedding example end to end: vnet-embed (a toy hypervisor with its own epoll loop and
# an in-memory "vmq" port for its VM) in namespace A, a real vnet-node (static mode, TAP) in
# namespace B, a veth pair as the underlay. Checks that the VM resolves and pings the node's
# TAP address, that the node's kernel can ping the VM, and that the counters show the traffic.
# Root only: exits 77 (SKIP) otherwise. Namespaces carry a per-run prefix and are deleted on
# exit.
# Usage: embed_test.sh BUILD_DIR
set -u
BUILD=$1
EMBED="$BUILD/examples/embed/vnet-embed"
NODE="$BUILD/examples/vnet-node"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (network namespaces, TAP devices)"
  exit 77
fi
for tool in ip ping; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done

P="ve$$"
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  ip netns del "$P-a" 2>/dev/null
  ip netns del "$P-b" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

FAILS=0
PASSES=0
check() { # description cmd...
  local what=$1
  shift
  if "$@" >"$TMP/check.out" 2>&1; then
    echo "ok   - $what"
    PASSES=$((PASSES + 1))
  else
    echo "FAIL - $what"
    sed 's/^/       /' "$TMP/check.out" | tail -20
    FAILS=$((FAILS + 1))
  fi
}
wait_log() { # file pattern seconds
  local i=0
  while ! grep -Eq "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt $(($3 * 20)) ]; then
      echo "timed out waiting for /$2/ in $1:"
      cat "$1"
      return 1
    fi
    sleep 0.05
  done
}

# Underlay: a veth pair, 10.201.0.1 (A, the hypervisor) <-> 10.201.0.2 (B, vnet-node).
ip netns add "$P-a"
ip netns add "$P-b"
ip link add eth0 netns "$P-a" type veth peer name eth0 netns "$P-b"
for x in a b; do ip -n "$P-$x" link set lo up; done
ip -n "$P-a" addr add 10.201.0.1/24 dev eth0
ip -n "$P-b" addr add 10.201.0.2/24 dev eth0
ip -n "$P-a" link set eth0 up
ip -n "$P-b" link set eth0 up

VM_MAC=02:00:00:00:e0:01
NODE_MAC=02:00:00:00:e0:02
ip netns exec "$P-b" "$NODE" --dev tap:vn0 --underlay udp:10.201.0.2:4789 --vni 4242 \
  --mac $NODE_MAC --ip 10.77.0.2/24 --peer 10.201.0.1:4789 --static $VM_MAC=10.201.0.1:4789 \
  >"$TMP/node.log" 2>&1 &
PIDS+=($!)
NODE_PID=$!
wait_log "$TMP/node.log" "up: vn0" 10 || exit 1

ip netns exec "$P-a" "$EMBED" --underlay udp:10.201.0.1:4789 --vni 4242 --mac $VM_MAC \
  --ip 10.77.0.1 --peer 10.201.0.2:4789 --static $NODE_MAC=10.201.0.2:4789 \
  --ping 10.77.0.2 --count 5 --duration 30 >"$TMP/embed.log" 2>&1 &
PIDS+=($!)
EMBED_PID=$!
wait_log "$TMP/embed.log" "^up: vmq:vm0" 10 || exit 1

check "the VM resolves the node's TAP address (ARP through the overlay)" \
  wait_log "$TMP/embed.log" "is at $NODE_MAC" 10
check "the VM pings the node's TAP address: 5 echo replies" \
  wait_log "$TMP/embed.log" "echo reply from 10.77.0.2 .*\(5 of 5\)" 15
check "the node's kernel pings the VM (the VM answers ARP and echo)" \
  ip netns exec "$P-b" ping -c 3 -i 0.2 -W 2 10.77.0.1

kill -TERM $EMBED_PID
wait $EMBED_PID
rc=$?
check "vnet-embed exits 0 on SIGTERM" test $rc -eq 0
cat "$TMP/embed.log" | grep -E "^(vm|datapath):" | grep -v "echo reply"
counts=$(grep -E "^vm: sent" "$TMP/embed.log")
check "the VM got 5 echo replies and answered 3 echo requests" \
  sh -c "echo '$counts' | grep -Eq 'got 5 echo replies; answered [0-9]+ ARP and ([3-9]|[1-9][0-9]+) echo'"
dp=$(grep -E "^datapath: vport" "$TMP/embed.log")
check "datapath counters show traffic both ways" \
  sh -c "echo '$dp' | grep -Eq 'vport rx [1-9][0-9]* tx [1-9][0-9]*, uport rx [1-9][0-9]* tx [1-9][0-9]*'"
kill -USR1 $NODE_PID 2>/dev/null
sleep 0.2
grep -E "vport|uport|rx|tx" "$TMP/node.log" | head -5 | sed 's/^/vnet-node: /'

echo "$PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
