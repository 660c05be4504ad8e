#!/usr/bin/env bash
# vnet-node with the raw (AF_PACKET) backend on either side, against the tap and udp ones:
#   host a: --dev raw:vm0 (a veth whose other end is a "guest" namespace, as a hypervisor's VM
#           port would be) and --underlay udp
#   host b: --dev tap:vn0 and --underlay raw:eth0,local=... (whole frames on the NIC)
# The guest and b's TAP ping each other and run iperf3 through the overlay.
# Usage: backends_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"

underlay_init
underlay_host a 1
underlay_host b 2
ns_add g
ip link add vm0 netns "$P-a" type veth peer name eth0 netns "$P-g"
ip -n "$P-a" link set vm0 up
ip -n "$P-g" addr add 10.99.0.1/24 dev eth0
ip -n "$P-g" link set eth0 mtu 1450 up
MG=$(ip netns exec "$P-g" cat /sys/class/net/eth0/address)
MB=02:00:00:00:00:0b

ip netns exec "$P-a" "$NODE" --dev raw:vm0 --underlay udp:10.200.0.1:4789 --vni 42 --mac "$MG" \
  --peer 10.200.0.2:4789 --static $MB=10.200.0.2:4789 >"$TMP/a.log" 2>&1 &
PIDS+=($!)
PID_A=$!
ip netns exec "$P-b" "$NODE" --dev tap:vn0 --underlay raw:eth0,local=10.200.0.2:4789 --vni 42 \
  --mac $MB --ip 10.99.0.2/24 --peer 10.200.0.1:4789 --static "$MG=10.200.0.1:4789" \
  >"$TMP/b.log" 2>&1 &
PIDS+=($!)
PID_B=$!
wait_log "$TMP/a.log" "up: vm0" || exit 1
wait_log "$TMP/b.log" "up: vn0" || exit 1

check "guest (raw virtual side, udp underlay) -> b (tap, raw underlay)" \
  in_ns g ping -c 3 -i 0.2 -W 2 10.99.0.2
check "b -> guest" in_ns b ping -c 3 -i 0.2 -W 2 10.99.0.1
check "large frames both ways (1400 bytes)" in_ns g ping -c 2 -s 1400 -W 2 10.99.0.2
if command -v iperf3 >/dev/null; then
  in_ns b iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  PIDS+=($!)
  wait_listen b 5201
  check "iperf3 TCP guest -> b" in_ns g iperf3 -c 10.99.0.2 -p 5201 -t 2 --connect-timeout 3000
fi
kill -USR1 $PID_A $PID_B
wait_log "$TMP/b.log" "drops:" 5
check "b's underlay counters moved (raw underlay)" grep -Eq "underlay rx [1-9][0-9]* pkts" "$TMP/b.log"
check "a's virtual counters moved (raw virtual side)" grep -Eq "virtual rx [1-9][0-9]* pkts" "$TMP/a.log"
kill $PID_A $PID_B
wait $PID_A
check "a exits 0" test $? -eq 0
wait $PID_B
check "b exits 0" test $? -eq 0
finish
