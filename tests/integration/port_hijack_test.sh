#!/usr/bin/env bash
# Issue #12 item 6, performed for real: a second vnet-node binds the UDP underlay port of a
# running one (as the review did, which silently took its traffic). It must be refused with a
# clear error and exit status 1, with one queue or several, and the running overlay must keep
# working. (The library side, all queue combinations: test_ports t_udp_hijack.)
# Usage: port_hijack_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"

underlay_init
for i in 1 2; do underlay_host n$i $i; done
# a static two-node overlay, VNI 42
for i in 1 2; do
  j=$((3 - i))
  in_ns n$i "$NODE" --dev tap:vn0 --underlay "udp:10.200.0.$i:4789" --vni 42 \
    --mac "02:00:00:00:00:0$i" --ip "10.100.0.$i/24" --peer "10.200.0.$j:4789" \
    --static "02:00:00:00:00:0$j=10.200.0.$j:4789" --arp "10.100.0.$j=02:00:00:00:00:0$j" \
    >"$TMP/n$i.log" 2>&1 &
  PIDS+=($!)
done
wait_log "$TMP/n1.log" "up:" 10 && wait_log "$TMP/n2.log" "up:" 10
check "the overlay works" in_ns n1 ping -c 2 -i 0.2 -W 2 10.100.0.2

for q in 1 2; do
  in_ns n2 timeout 10 "$NODE" --dev tap:evil --underlay udp:10.200.0.2:4789 --vni 42 \
    --mac 02:00:00:00:00:09 --queues $q >"$TMP/evil$q.log" 2>&1
  rc=$?
  check "a second vnet-node on the port ($q queue(s)) exits with status 1" test $rc -eq 1
  check "... with a clear error" grep -Eq "held by another|already used by another process" "$TMP/evil$q.log"
done
check "the running overlay still works" in_ns n1 ping -c 3 -i 0.2 -W 2 10.100.0.2
finish
