#!/usr/bin/env bash
# vnet-node --queues N in managed mode, in network namespaces this test creates: a keyed
# controller, a plain network whose node n1 runs two queues (two worker threads) and n2 one,
# and a secure network where two queues are refused with a clear error.
# Usage: node_queues_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
vnet_programs

underlay_init
underlay_host ctl 100
for i in 1 2 3; do underlay_host n$i $i; done

for i in 1 2 3; do "$NODE" --genkey "$K/n$i.key" >"$K/n$i.pub"; done
keyed_controller --keepalive 500 || exit 1
vnetctl network create blue --mode plain --subnet 10.100.0.0/24 >/dev/null
vnetctl network create green --mode secure --subnet 10.101.0.0/24 >/dev/null
vnetctl node add blue n1 --pubkey "$(cat "$K/n1.pub")" >/dev/null
vnetctl node add blue n2 --pubkey "$(cat "$K/n2.pub")" >/dev/null
vnetctl node add green n3 --pubkey "$(cat "$K/n3.pub")" >/dev/null

start_node() { # i network extra...
  local i=$1 net=$2
  shift 2
  ip netns exec "$P-n$i" "$NODE" --controller 10.200.0.100:7700 --network "$net" --name "n$i" \
    --key "$K/n$i.key" --controller-key "$CTLPUB" --dev tap:vn0 \
    --underlay "udp:10.200.0.$i:4789" "$@" >>"$TMP/n$i.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$i=$!"
}

start_node 1 blue --queues 2 --allow-plain # a key, and a plain network: said explicitly
start_node 2 blue --allow-plain
start_node 3 green --queues 2
wait_log "$TMP/n1.log" "up: vn0 in network blue" || exit 1
wait_log "$TMP/n2.log" "up: vn0 in network blue" || exit 1
check "managed --queues 2: the TAP has two queues" \
  sh -c "ip netns exec $P-n1 ip -d link show vn0 | grep -q 'numtxqueues 2'"
check "ping n1 -> n2 over the two-queue node" in_ns n1 ping -c 3 -i 0.2 -W 2 10.100.0.2
check "ping n2 -> n1" in_ns n2 ping -c 3 -i 0.2 -W 2 10.100.0.1
# Several TCP flows n2 -> n1: the TAP spreads them over its queues.
cat >"$TMP/sink.py" <<'PY'
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.100.0.1", 5001))
s.listen(8)
for _ in range(4):
    c, _ = s.accept()
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
    assert n == 200000, n
PY
in_ns n1 timeout 20 python3 "$TMP/sink.py" &
SINK=$!
wait_listen n1 5001 || exit 1
flows() {
  for f in 1 2 3 4; do
    in_ns n2 python3 -c 'import socket; s = socket.create_connection(("10.100.0.1", 5001), timeout=5); s.sendall(b"x" * 200000); s.close()' || return 1
  done
  wait "$SINK"
}
check "TCP n2 -> n1: four flows of 200 kB arrive whole" flows
kill -USR1 "$PID_1"
wait_log "$TMP/n1.log" "queue 1:" 5
check "SIGUSR1: counters of each queue" sh -c "grep -q 'queue 0:' $TMP/n1.log && grep -q 'queue 1:' $TMP/n1.log"
check "SIGUSR1: the controller session" grep -q "controller: connected" "$TMP/n1.log"

wait_log "$TMP/n3.log" "is not supported|up: vn0" 10
check "secure network with --queues 2: a clear error" \
  grep -q "error \[node\]: network green is secure: --queues 2 is not supported there" "$TMP/n3.log"
check "... and no datapath comes up" sh -c "! grep -q 'up: vn0' $TMP/n3.log"

kill "$PID_1"
wait "$PID_1"
check "n1 exits 0 on SIGTERM" test $? -eq 0
check "... after its counters and 'stopped'" sh -c "tail -1 $TMP/n1.log | grep -q stopped"
finish
