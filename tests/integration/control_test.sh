#!/usr/bin/env bash
# The control plane end to end, in network namespaces this test creates: a controller on a
# SQLite file, vnetctl requests, and vnet-node daemons in managed mode on a bridged underlay.
# Usage: control_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"
CTL="$BUILD/examples/vnet-controller"
VNETCTL="$BUILD/examples/vnetctl"
DB="$TMP/vnet.db"

underlay_init
underlay_host ctl 100
for i in 1 2 3 4; do underlay_host n$i $i; done

start_controller() {
  ip netns exec "$P-ctl" "$CTL" --db "$DB" --listen 10.200.0.100:7700 --api 127.0.0.1:7701 \
    --keepalive 500 >>"$TMP/ctl.log" 2>&1 &
  CTL_PID=$!
  PIDS+=($CTL_PID)
  local i=0
  until ip netns exec "$P-ctl" ss -Hltn "sport = :7701" | grep -q LISTEN; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "controller did not start"; cat "$TMP/ctl.log"; return 1; }
    sleep 0.05
  done
}
vnetctl() { ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701 "$@"; }

start_node() { # i [underlay-ip]
  local i=$1 ip=${2:-10.200.0.$1}
  ip netns exec "$P-n$i" "$NODE" --controller 10.200.0.100:7700 --network blue --name n$i \
    --dev tap:vn0 --underlay "udp:$ip:4789" >>"$TMP/n$i.log" 2>&1 &
  eval "NODE_PID_$i=$!"
  PIDS+=($!)
}

# Wait until `network status` says N nodes are connected and converged (at most $2 s).
wait_converged() {
  local want=$1 limit=${2:-20} i=0
  while :; do
    local s
    s=$(vnetctl --json network status blue 2>/dev/null)
    if python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d['connected']>=$want and d['converged']>=$want else 1)" "$s" 2>/dev/null; then
      return 0
    fi
    i=$((i + 1))
    if [ $i -gt $((limit * 20)) ]; then
      echo "not converged: $s"
      return 1
    fi
    sleep 0.05
  done
}

start_controller || exit 1
check "network create" vnetctl network create blue --vni 100 --subnet 10.100.0.0/24
vnetctl network create red --vni 100 >"$TMP/dup.out" 2>&1
check "duplicate VNI refused: exit 1" test $? -eq 1
check "duplicate VNI refused: the reason names the VNI" grep -q "VNI 100" "$TMP/dup.out"
vnetctl network create green --mode secure >"$TMP/secure.out" 2>&1
check "mode secure refused by a controller without a key (exit 1)" test $? -eq 1
check "mode secure refusal says why" grep -q "needs node keys" "$TMP/secure.out"
check "network list shows the mode" sh -c "ip netns exec $P-ctl $VNETCTL --controller 127.0.0.1:7701 network list | grep -q ' plain '"
vnetctl nework list >/dev/null 2>&1
check "usage error: exit 2" test $? -eq 2
for i in 1 2 3; do vnetctl node add blue n$i >/dev/null; done
check "three nodes listed" sh -c "ip netns exec $P-ctl $VNETCTL --controller 127.0.0.1:7701 --json node list blue | python3 -c 'import json,sys; assert len(json.load(sys.stdin))==3'"
for i in 1 2 3; do start_node $i; done
check "three nodes connected and converged" wait_converged 3
for x in 1 2 3; do
  for y in 1 2 3; do
    [ $x = $y ] && continue
    check "ping n$x -> n$y" in_ns n$x ping -c 2 -i 0.2 -W 2 10.100.0.$y
  done
done

# A fourth node joins while the others run.
t0=$(date +%s%N)
vnetctl node add blue n4 >/dev/null
start_node 4
check "n4 converged" wait_converged 4
check "n1 reaches the new n4" in_ns n1 ping -c 1 -W 2 10.100.0.4
t1=$(date +%s%N)
echo "     (node add to first ping from n1 to n4: $(((t1 - t0) / 1000000)) ms)"

# Move n3: it restarts on another underlay address; the controller is told, traffic follows.
kill $NODE_PID_3; wait $NODE_PID_3 2>/dev/null
ip -n "$P-n3" addr add 10.200.0.13/24 dev eth0
check "node move" vnetctl node move blue n3 --phys 10.200.0.13:4789
start_node 3 10.200.0.13
check "all converged after the move" wait_converged 4
check "n1 reaches n3 at its new place" in_ns n1 ping -c 2 -i 0.2 -W 2 10.100.0.3
check "n2 reaches n3 at its new place" in_ns n2 ping -c 2 -i 0.2 -W 2 10.100.0.3

# Remove n4: it becomes unreachable.
check "node remove" vnetctl node remove blue n4
check "n4 unreachable after removal" sh -c "! ip netns exec $P-n1 ping -c 2 -i 0.2 -W 1 10.100.0.4"

# kill -9 the controller: the overlay keeps forwarding; a restart brings everyone back.
kill -9 $CTL_PID; wait $CTL_PID 2>/dev/null
check "forwarding goes on without the controller" in_ns n1 ping -c 2 -i 0.2 -W 2 10.100.0.2
start_controller
check "nodes reconnect and converge after a controller restart" wait_converged 3 30

# kill -9 the controller in the middle of a burst of node adds: every acknowledged add survives.
(
  for k in $(seq 1 1000); do
    if ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701 --timeout 2000 node add blue b$k >/dev/null 2>&1; then
      echo "b$k"
    fi
  done >"$TMP/acked.txt"
) &
BURST=$!
for t in $(seq 1 400); do [ "$(wc -l <"$TMP/acked.txt" 2>/dev/null || echo 0)" -ge 150 ] && break; sleep 0.05; done
kill -9 $CTL_PID; wait $CTL_PID 2>/dev/null
wait $BURST
start_controller
vnetctl --json node list blue >"$TMP/list.json"
check "burst: some adds were acknowledged before the kill" test "$(wc -l <"$TMP/acked.txt")" -ge 150
check "burst: every acknowledged node is in the database" python3 -c "
import json,sys
names={n['name'] for n in json.load(open('$TMP/list.json'))}
acked=[l.strip() for l in open('$TMP/acked.txt') if l.strip()]
missing=[a for a in acked if a not in names]
print(len(acked), 'acknowledged,', len(missing), 'missing', missing[:5])
sys.exit(1 if missing else 0)"
check "converged again after the burst" wait_converged 3 30

# Restart a node: it resyncs.
kill $NODE_PID_2; wait $NODE_PID_2 2>/dev/null
start_node 2
check "restarted node converges" wait_converged 3 20
check "ping n1 -> restarted n2" in_ns n1 ping -c 2 -i 0.2 -W 2 10.100.0.2
vnetctl network status blue >"$TMP/status.txt"
check "network status shows connected and converged nodes" grep -Eq "3 connected, [0-9]+ converged" "$TMP/status.txt"

kill $CTL_PID; wait $CTL_PID
check "controller exits 0 on SIGTERM" test $? -eq 0
finish
