#!/usr/bin/env bash
# End to end through the data plane, in network namespaces this test creates:
#   a, b, f  run vnet-node (TAP + UDP underlay), c runs a Linux kernel vxlan device (interop).
# Checks: ping between all pairs (IPv4 and IPv6 overlay addresses), ARP answered locally,
# broadcast reaches everyone, iperf3 both ways through the overlay and to the kernel peer,
# learning, and that a foreign VNI, a spoofed source and garbage are dropped and counted while
# forwarding goes on.
# Usage: overlay_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"

underlay_init
underlay_host a 1
underlay_host b 2
underlay_host c 3
underlay_host f 6

MA=02:00:00:00:00:0a
MB=02:00:00:00:00:0b
MC=02:00:00:00:00:0c
MF=02:00:00:00:00:0f

# a: learns; knows b statically and answers ARP for b and c itself.
ip netns exec "$P-a" "$NODE" --dev tap:vn0 --underlay udp:10.200.0.1:4789 --vni 42 --mac $MA \
  --ip 10.99.0.1/24 --ip fd99::1/64 --peer 10.200.0.2:4789 --peer 10.200.0.3:4789 \
  --peer 10.200.0.6:4789 \
  --static $MB=10.200.0.2:4789 --arp 10.99.0.2=$MB --arp fd99::2=$MB --learn --log-level info \
  >"$TMP/a.log" 2>&1 &
PIDS+=($!)
PID_A=$!
# b: no learning; static entries for the others; two queues (two worker threads).
ip netns exec "$P-b" "$NODE" --dev tap:vn0 --underlay udp:10.200.0.2:4789 --vni 42 --mac $MB \
  --ip 10.99.0.2/24 --ip fd99::2/64 --peer 10.200.0.1:4789 --peer 10.200.0.3:4789 \
  --peer 10.200.0.6:4789 --static $MA=10.200.0.1:4789 --static $MC=10.200.0.3:4789 \
  --static $MF=10.200.0.6:4789 --queues 2 >"$TMP/b.log" 2>&1 &
PIDS+=($!)
PID_B=$!
# f: learns everything.
ip netns exec "$P-f" "$NODE" --dev tap:vn0 --underlay udp:10.200.0.6:4789 --vni 42 --mac $MF \
  --ip 10.99.0.6/24 --ip fd99::6/64 --peer 10.200.0.1:4789 --peer 10.200.0.2:4789 \
  --peer 10.200.0.3:4789 --learn >"$TMP/f.log" 2>&1 &
PIDS+=($!)
PID_F=$!
# Answer broadcast pings, so the broadcast check sees both libvnet nodes reply.
for n in a b f; do in_ns $n sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=0; done
# c: the Linux kernel's own VXLAN, flooding to a and b. veth would leave the inner checksum of
# its packets to a NIC that is not there (checksum offload), so let the kernel compute it, as
# it does for a NIC without offload.
in_ns c ethtool -K eth0 tx off >/dev/null
in_ns c ip link add vx0 type vxlan id 42 local 10.200.0.3 dstport 4789 dev eth0
in_ns c ip link set vx0 address $MC mtu 1450 up
in_ns c bridge fdb append 00:00:00:00:00:00 dev vx0 dst 10.200.0.1
in_ns c bridge fdb append 00:00:00:00:00:00 dev vx0 dst 10.200.0.2
in_ns c bridge fdb append 00:00:00:00:00:00 dev vx0 dst 10.200.0.6
in_ns c ip addr add 10.99.0.3/24 dev vx0
in_ns c ip addr add fd99::3/64 dev vx0 nodad

wait_log "$TMP/a.log" "up: vn0" || exit 1
wait_log "$TMP/b.log" "up: vn0" || exit 1
wait_log "$TMP/f.log" "up: vn0" || exit 1

check "tap device created with MAC and MTU" \
  sh -c "ip -n $P-a link show vn0 | grep -q 'link/ether $MA' && ip -n $P-a link show vn0 | grep -q 'mtu 1450'"
declare -A ADDR=([a]=1 [b]=2 [c]=3 [f]=6)
for x in a b c f; do
  for y in a b c f; do
    [ $x = $y ] && continue
    check "ping $x -> $y (IPv4)" in_ns $x ping -c 2 -i 0.2 -W 2 10.99.0.${ADDR[$y]}
  done
done
check "ping a -> b (IPv6)" in_ns a ping -6 -c 2 -i 0.2 -W 2 fd99::2
check "ping f -> a (IPv6)" in_ns f ping -6 -c 2 -i 0.2 -W 2 fd99::1
check "ping c -> f (IPv6, kernel vxlan peer)" in_ns c ping -6 -c 2 -i 0.2 -W 2 fd99::6
check "large ping a -> b (1400 bytes)" in_ns a ping -c 2 -s 1400 -W 2 10.99.0.2
ip netns exec $P-c ping -b -c 3 -i 0.2 -W 1 10.99.0.255 >"$TMP/bcast.out" 2>&1
check "broadcast ping from c: a answers" grep -q "from 10.99.0.1:" "$TMP/bcast.out"
check "broadcast ping from c: b answers" grep -q "from 10.99.0.2:" "$TMP/bcast.out"
check "broadcast ping from c: f answers" grep -q "from 10.99.0.6:" "$TMP/bcast.out"

# Counters: ARP for b was answered inside a (--arp); a learned c's MAC.
kill -USR1 $PID_A
wait_log "$TMP/a.log" "arp [1-9]" 5
check "a answered ARP for b locally" grep -Eq "arp [1-9]" "$TMP/a.log"
check "a answered neighbour solicitation for b locally" grep -Eq "nd [1-9]" "$TMP/a.log"
check "a learned the kernel peer's MAC" grep -Eq "learned [1-9]" "$TMP/a.log"

if command -v iperf3 >/dev/null; then
  in_ns b iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  PIDS+=($!)
  in_ns c iperf3 -s -1 -p 5202 >/dev/null 2>&1 &
  PIDS+=($!)
  wait_listen b 5201
  wait_listen c 5202
  check "iperf3 TCP a -> b" in_ns a iperf3 -c 10.99.0.2 -p 5201 -t 2 --connect-timeout 3000
  check "iperf3 TCP c -> a (kernel vxlan sends)" in_ns a iperf3 -c 10.99.0.3 -p 5202 -t 2 -R --connect-timeout 3000
  in_ns c iperf3 -s -1 -p 5203 >/dev/null 2>&1 &
  PIDS+=($!)
  wait_listen c 5203
  check "iperf3 TCP a -> c (kernel vxlan receives)" in_ns a iperf3 -c 10.99.0.3 -p 5203 -t 2 --connect-timeout 3000
  kill -USR1 $PID_A
  wait_log "$TMP/a.log" "gso [1-9]" 5
  check "a segmented TSO frames (gso > 0)" grep -Eq "gso [1-9]" "$TMP/a.log"
  check "a coalesced received segments (gro > 0)" grep -Eq "gro [1-9]" "$TMP/a.log"
fi

# A frame over the overlay MTU from a's own stack: a answers ICMP "fragmentation needed"
# (as a router would) instead of dropping it silently.
in_ns a ip link set vn0 mtu 1600
in_ns a ping -c 2 -i 0.2 -W 1 -M do -s 1500 10.99.0.2 >"$TMP/pmtu.out" 2>&1
in_ns a ping -6 -c 2 -i 0.2 -W 1 -M do -s 1500 fd99::2 >"$TMP/pmtu6.out" 2>&1
in_ns a ip link set vn0 mtu 1450
check "ICMP frag-needed with mtu 1450 reaches a's stack" \
  sh -c "cat $TMP/pmtu.out; grep -Eq 'mtu ?= ?1450' $TMP/pmtu.out"
check "ICMPv6 packet-too-big reaches a's stack" \
  sh -c "cat $TMP/pmtu6.out; grep -Eiq 'mtu ?= ?1450|too big' $TMP/pmtu6.out"

# Bad packets to a's underlay port from c: garbage, a foreign VNI, and a frame claiming b's
# (static) MAC from the wrong endpoint.
in_ns c python3 "$(bad_packets_script)" $MA $MB $MC
check "ping a -> b still works after bad packets" in_ns a ping -c 2 -i 0.2 -W 2 10.99.0.2
kill -USR1 $PID_A
wait_log "$TMP/a.log" "spoof=" 5
check "garbage counted" grep -Eq "decap=2 .*decap_(trunc_vxlan|bad_vxlan_flags)|decap=2" "$TMP/a.log"
check "foreign VNI counted" grep -Eq "foreign_vni=1" "$TMP/a.log"
check "spoofed source counted" grep -Eq "spoof=1" "$TMP/a.log"

# An IPv6 underlay: d and e, another network (VNI 7), outer headers over fd20::/64.
underlay_host d 4
underlay_host e 5
ip netns exec "$P-d" "$NODE" --dev tap:vn1 --underlay "udp:[fd20::4]:4789" --vni 7 \
  --mac 02:00:00:00:00:0d --ip 10.98.0.4/24 --peer "[fd20::5]:4789" --learn >"$TMP/d.log" 2>&1 &
PIDS+=($!)
ip netns exec "$P-e" "$NODE" --dev tap:vn1 --underlay "udp:[fd20::5]:4789" --vni 7 \
  --mac 02:00:00:00:00:0e --ip 10.98.0.5/24 --peer "[fd20::4]:4789" --learn >"$TMP/e.log" 2>&1 &
PIDS+=($!)
wait_log "$TMP/d.log" "up: vn1" && wait_log "$TMP/e.log" "up: vn1"
check "IPv6 underlay: tap MTU is 1500 - 70" sh -c "ip -n $P-d link show vn1 | grep -q 'mtu 1430'"
check "IPv6 underlay: ping d -> e" in_ns d ping -c 3 -i 0.2 -W 2 10.98.0.5

kill $PID_A $PID_B
kill -INT $PID_F
wait $PID_A
check "vnet-node a exits 0 on SIGTERM" test $? -eq 0
wait $PID_B
check "vnet-node b exits 0 on SIGTERM" test $? -eq 0
wait $PID_F
check "vnet-node f exits 0 on SIGINT" test $? -eq 0
check "the TAP device is gone after exit" sh -c "! ip -n $P-a link show vn0 2>/dev/null"
finish
