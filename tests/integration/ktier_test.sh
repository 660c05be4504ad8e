#!/usr/bin/env bash
# The kernel tier (--dev kernel:NAME), in network namespaces this test creates:
#   a runs vnet-node with kernel:vn0 (eBPF on TC + a flow-based VXLAN device),
#   b runs vnet-node with tap:vn0 (the user-space path), c has a Linux vxlan device,
#   d is a host on the underlay that is no peer of a,
#   e runs vnet-node with kernel:vm0 on an existing veth whose peer is the guest namespace g
#   (a VM's port: frames taken on vm0's ingress, delivered to its egress).
# Checks: ping between all pairs (ARP answered in the kernel for an --arp entry, flooded for
# the others), iperf3 a <-> c, the MTU on vn0,
# drops counted by reason in SIGUSR1's output (a foreign VNI, an unknown peer, a spoofed
# source MAC) while forwarding goes on, and that nothing is left after the node exits.
# Skips (77) where BPF programs cannot be loaded or attached (no libbpf, kernel without tcx).
# Usage: ktier_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"

underlay_init
underlay_host a 1
underlay_host b 2
underlay_host c 3
underlay_host d 4
underlay_host e 5
ns_add g
ip link add vm0 netns "$P-e" type veth peer name eth0 netns "$P-g"
ME=02:00:00:00:00:0e
ip -n "$P-g" link set eth0 address $ME mtu 1450 up
ip -n "$P-g" addr add 10.99.0.5/24 dev eth0

MA=02:00:00:00:00:0a
MB=02:00:00:00:00:0b
MC=02:00:00:00:00:0c

# veth leaves checksums to a NIC that is not there; user-space receivers (b) need them done.
for n in a c e; do in_ns $n ethtool -K eth0 tx off >/dev/null; done
PROGS="$(dirname "$0")/bpf_progs.py"
# The ids of the tier's programs that processes $@ hold (their fds' fdinfo names the program of
# each BPF program and link fd): by id, not a host-wide count, so another run of this test on
# the same host at the same time does not count.
held_progs() {
  local p
  for p in "$@"; do grep -h '^prog_id:' /proc/"$p"/fdinfo/* 2>/dev/null | awk '{print $2}'; done |
    sort -u | while read -r id; do python3 "$PROGS" | awk -v id="$id" '$1 == id && $2 ~ /^ktier_from_/'; done
}

ip netns exec "$P-a" "$NODE" --dev kernel:vn0 --underlay udp:10.200.0.1:4789 --vni 42 --mac $MA \
  --ip 10.99.0.1/24 --peer 10.200.0.2:4789 --peer 10.200.0.3:4789 --peer 10.200.0.5:4789 \
  --static $MB=10.200.0.2:4789 --static $MC=10.200.0.3:4789 --static $ME=10.200.0.5:4789 \
  --arp 10.99.0.2=$MB --metrics 127.0.0.1:9109 --log-level info \
  >"$TMP/a.log" 2>&1 &
PIDS+=($!)
PID_A=$!
ip netns exec "$P-b" "$NODE" --dev tap:vn0 --underlay udp:10.200.0.2:4789 --vni 42 --mac $MB \
  --ip 10.99.0.2/24 --peer 10.200.0.1:4789 --peer 10.200.0.3:4789 --peer 10.200.0.5:4789 \
  --static $MA=10.200.0.1:4789 --static $MC=10.200.0.3:4789 --static $ME=10.200.0.5:4789 \
  >"$TMP/b.log" 2>&1 &
PIDS+=($!)
PID_B=$!
in_ns c ip link add vx0 type vxlan id 42 local 10.200.0.3 dstport 4789 dev eth0
in_ns c ip link set vx0 address $MC mtu 1450 up
in_ns c bridge fdb append 00:00:00:00:00:00 dev vx0 dst 10.200.0.1
in_ns c bridge fdb append 00:00:00:00:00:00 dev vx0 dst 10.200.0.2
in_ns c bridge fdb append 00:00:00:00:00:00 dev vx0 dst 10.200.0.5
in_ns c ip addr add 10.99.0.3/24 dev vx0

if ! wait_log "$TMP/a.log" "up: vn0|error|refused|fail" 10 ||
  ! grep -q "up: vn0" "$TMP/a.log"; then
  if grep -Eq "without libbpf|attaching the TC programs|loading the BPF programs" "$TMP/a.log"; then
    echo "SKIP: no kernel tier here:"
    cat "$TMP/a.log"
    exit 77
  fi
  echo "vnet-node a did not come up:"
  cat "$TMP/a.log"
  exit 1
fi
wait_log "$TMP/b.log" "up: vn0" || exit 1
ip netns exec "$P-e" "$NODE" --dev kernel:vm0 --underlay udp:10.200.0.5:4789 --vni 42 --mac $ME \
  --peer 10.200.0.1:4789 --peer 10.200.0.2:4789 --peer 10.200.0.3:4789 \
  --static $MA=10.200.0.1:4789 --static $MB=10.200.0.2:4789 --static $MC=10.200.0.3:4789 \
  >"$TMP/e.log" 2>&1 &
PIDS+=($!)
PID_E=$!
wait_log "$TMP/e.log" "up: vm0" || exit 1

check "kernel tier: vn0 has the MAC and MTU 1450" \
  sh -c "ip -n $P-a link show vn0 | grep -q 'link/ether $MA' && ip -n $P-a link show vn0 | grep -q 'mtu 1450'"
check "kernel tier: a flow-based VXLAN device vk-vn0 on port 4789" \
  sh -c "ip -n $P-a -d link show vk-vn0 | grep -q 'external' && ip -n $P-a -d link show vk-vn0 | grep -q 'dstport 4789'"
check "no user-space socket on the underlay port (the VXLAN device has it)" \
  sh -c "! ip netns exec $P-a ss -Hulnp 'sport = :4789' | grep -q vnet-node"
four_held() { held_progs $PID_A $PID_E >"$TMP/held.txt"; [ "$(wc -l <"$TMP/held.txt")" -eq 4 ]; }
check "the tiers' BPF programs are loaded (two nodes, two each)" \
  four_held
declare -A ADDR=([a]=1 [b]=2 [c]=3)
for x in a b c; do
  for y in a b c; do
    [ $x = $y ] && continue
    check "ping $x -> $y (IPv4, ARP resolved)" in_ns $x ping -c 2 -i 0.2 -W 2 10.99.0.${ADDR[$y]}
  done
done
for y in 1 2 3; do
  check "guest g behind e's kernel:vm0 (a VM's veth) pings 10.99.0.$y" \
    in_ns g ping -c 2 -i 0.2 -W 2 10.99.0.$y
done
check "a pings the guest g" in_ns a ping -c 2 -i 0.2 -W 2 10.99.0.5
check "ARP on a resolved b's MAC" sh -c "ip -n $P-a neigh show 10.99.0.2 | grep -qi $MB"
check "large ping a -> c (1400 bytes)" in_ns a ping -c 2 -s 1400 -W 2 10.99.0.3
for n in b c; do in_ns $n sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=0; done
ip netns exec $P-a ping -b -c 3 -i 0.2 -W 1 10.99.0.255 >"$TMP/bcast.out" 2>&1
check "broadcast ping from a reaches b and c (head-end replication)" \
  sh -c "grep -q 'from 10.99.0.2:' $TMP/bcast.out && grep -q 'from 10.99.0.3:' $TMP/bcast.out"

if command -v iperf3 >/dev/null; then
  in_ns c iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  PIDS+=($!)
  wait_listen c 5201
  check "iperf3 TCP a -> c" in_ns a iperf3 -c 10.99.0.3 -p 5201 -t 2 --connect-timeout 3000
  in_ns a iperf3 -s -1 -p 5202 >/dev/null 2>&1 &
  PIDS+=($!)
  wait_listen a 5202
  check "iperf3 TCP c -> a" in_ns c iperf3 -c 10.99.0.1 -p 5202 -t 2 --connect-timeout 3000
fi

# Bad frames to a: from c a foreign VNI and b's MAC (spoofed); from d (no peer) a valid frame.
in_ns c python3 "$(bad_packets_script)" $MA $MB $MC
cat >"$TMP/unknown.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
eth = bytes.fromhex(sys.argv[1].replace(":", "")) + bytes.fromhex("020000000dd0") + b"\x08\x00"
s.sendto(struct.pack("!BBHI", 0x08, 0, 0, 42 << 8) + eth + b"x" * 46, ("10.200.0.1", 4789))
PY
in_ns d python3 "$TMP/unknown.py" $MA
check "ping a -> b still works after bad frames" in_ns a ping -c 2 -i 0.2 -W 2 10.99.0.2
# The drops are counted when the frames arrive, which a loaded host may delay: ask for the
# counters until the three have shown up (at most 10 s), then judge the last "drops:" line.
drops_seen() {
  local i=0
  while :; do
    kill -USR1 $PID_A
    wait_log "$TMP/a.log" "drops:" 5 >/dev/null || return 1
    grep "drops:" "$TMP/a.log" | tail -1 >"$TMP/drops.txt"
    grep -q foreign_vni "$TMP/drops.txt" && grep -q spoof "$TMP/drops.txt" &&
      grep -q unknown_peer "$TMP/drops.txt" && return 0
    i=$((i + 1))
    [ $i -gt 50 ] && return 1
    sleep 0.2
  done
}
drops_seen
check "counters: frames both ways" grep -Eq "rx [1-9]" "$TMP/a.log"
check "ARP for b (an --arp entry) answered in the kernel" grep -Eq "arp [1-9]" "$TMP/a.log"
check "foreign VNI counted" grep -Eq "foreign_vni=1( |$)" "$TMP/drops.txt"
check "spoofed source counted" grep -Eq "spoof=1( |$)" "$TMP/drops.txt"
check "unknown peer counted" grep -Eq "unknown_peer=1( |$)" "$TMP/drops.txt"
SCRAPE="$(dirname "$0")/metrics_scrape.py"
in_ns a python3 "$SCRAPE" get http://127.0.0.1:9109/metrics "$TMP/metrics.txt"
check "--metrics: the tier's drops by reason" \
  test "$(python3 "$SCRAPE" val "$TMP/metrics.txt" vnet_node_drops_total reason=foreign_vni)" = 1

kill $PID_A $PID_E
wait $PID_A
check "vnet-node a exits 0 on SIGTERM" test $? -eq 0
wait $PID_E
check "vnet-node e exits 0 on SIGTERM" test $? -eq 0
check "guest mode: vm0 is left in place, vk-vm0 is gone" \
  sh -c "ip -n $P-e link show vm0 >/dev/null && ! ip -n $P-e link show vk-vm0 2>/dev/null"
check "nothing left: no vn0, no vk-vn0" \
  sh -c "! ip -n $P-a link show vn0 2>/dev/null && ! ip -n $P-a link show vk-vn0 2>/dev/null"
gone_progs() { # none of the ids in $TMP/held.txt is loaded any more
  local ids
  ids=$(awk '{print $1}' "$TMP/held.txt")
  [ -n "$ids" ] && ! python3 "$PROGS" | awk '{print $1}' | grep -qxF "$ids"
}
check "nothing left: the BPF programs are unloaded" gone_progs
check "the underlay port is free again" \
  sh -c "! ip netns exec $P-a ss -Huln 'sport = :4789' | grep -q ."

# Two long names that share their first 12 characters get a VXLAN device each: the second
# start must not take (and replace) the first one's.
for i in 1 2; do
  ip netns exec "$P-d" "$NODE" --dev kernel:vm-tenant-000$i --underlay "udp:10.200.0.4:479$i" \
    --vni 4$i --mac 02:00:00:00:0d:0$i --peer "10.200.0.1:479$i" >"$TMP/long$i.log" 2>&1 &
  PIDS+=($!)
  eval "PID_L$i=$!"
  wait_log "$TMP/long$i.log" "up: vm-tenant-000$i|error" 10 >/dev/null
done
check "two long names: two VXLAN devices, both nodes up" \
  sh -c "[ \$(ip -n $P-d -o link show type vxlan | wc -l) -eq 2 ] && grep -q 'up: ' $TMP/long1.log && grep -q 'up: ' $TMP/long2.log && kill -0 $PID_L1"
kill $PID_L1 $PID_L2
finish
