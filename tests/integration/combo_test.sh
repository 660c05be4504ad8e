#!/usr/bin/env bash
# The data-plane checks of overlay_test.sh for one combination of vnet-node backends:
# --dev DEV (tap|raw|xdp) and --underlay UNDERLAY (udp|raw|xdp). On a bridged underlay:
#   a, b  vnet-node DEV+UNDERLAY (so a raw or xdp underlay talks to its own kind); with DEV=tap
#         the node's namespace is the endpoint (a TAP with --ip), with DEV=raw|xdp the endpoint
#         is a guest namespace behind a veth (vm0 on the host, eth0 in the guest, the guest's
#         MAC is the node's --mac), as a hypervisor's VM port would be
#   r     a reference vnet-node, TAP + UDP (traffic between this combination and another one)
#   k     a Linux kernel vxlan device (interop)
# Checks: ping between all pairs of endpoints (IPv4, and IPv6 for some), large frames, ARP and
# ND answered locally by a, broadcast from k answered by a, b and r, iperf3 TCP a -> b, a -> k
# and k -> a, garbage / foreign VNI / spoofed source sent to a's underlay dropped and counted
# while forwarding goes on, exit 0 on SIGTERM and nothing left behind (TAP, XDP program,
# promiscuous mode).
# The veths keep their default offloads: a sender with transmit checksum offload on hands frames
# over with only the pseudo-header sum in the TCP/UDP checksum, which XDP does not flag; the xdp
# backend must recognise and complete them (an xdp port fed by such a veth is what is tested).
# Usage: combo_test.sh BUILD_DIR DEV UNDERLAY
set -u
BUILD=$1
DEV=$2
UL=$3
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"
case "$DEV" in tap | raw | xdp) ;; *) echo "bad DEV '$DEV'"; exit 2 ;; esac
case "$UL" in udp | raw | xdp) ;; *) echo "bad UNDERLAY '$UL'"; exit 2 ;; esac
command -v ethtool >/dev/null || { echo "SKIP: ethtool missing"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
echo "combination: --dev $DEV --underlay $UL"

underlay_init
underlay_host a 1
underlay_host b 2
underlay_host r 3
underlay_host k 4

MA=02:00:00:00:00:0a
MB=02:00:00:00:00:0b
MR=02:00:00:00:00:0c
MK=02:00:00:00:00:0d
declare -A ADDR=([a]=1 [b]=2 [r]=3 [k]=4)
declare -A MAC=([a]=$MA [b]=$MB [r]=$MR [k]=$MK)
declare -A EP=([a]=a [b]=b [r]=r [k]=k) # namespace holding each endpoint

# Node a or b with the combination under test; the endpoint's addresses go on the TAP or on the
# guest's eth0.
VIF=vn0
[ "$DEV" = tap ] || VIF=vm0
node() { # host other-host
  local h=$1 o=$2 n=${ADDR[$1]} ips=()
  shift 2
  if [ "$DEV" = tap ]; then
    ips=(--ip "10.99.0.$n/24" --ip "fd99::$n/64")
  else
    ns_add "g$h"
    EP[$h]=g$h
    ip link add vm0 netns "$P-$h" type veth peer name eth0 netns "$P-g$h"
    ip -n "$P-$h" link set vm0 up
    ip -n "$P-g$h" link set eth0 address "${MAC[$h]}" mtu 1450 up
    ip -n "$P-g$h" addr add "10.99.0.$n/24" dev eth0
    ip -n "$P-g$h" addr add "fd99::$n/64" dev eth0 nodad
  fi
  local u="udp:10.200.0.$n:4789"
  [ "$UL" = udp ] || u="$UL:eth0,local=10.200.0.$n:4789"
  local peers=()
  for p in a b r k; do [ $p = "$h" ] || peers+=(--peer "10.200.0.${ADDR[$p]}:4789"); done
  ip netns exec "$P-$h" "$NODE" --dev "$DEV:$VIF" --underlay "$u" --vni 42 --mac "${MAC[$h]}" \
    "${ips[@]}" "${peers[@]}" --static "${MAC[$o]}=10.200.0.${ADDR[$o]}:4789" "$@" --learn \
    --log-level info >"$TMP/$h.log" 2>&1 &
  PIDS+=($!)
}
# a answers ARP and ND for r itself.
node a b --arp 10.99.0.3=$MR --arp fd99::3=$MR
PID_A=$!
node b a
PID_B=$!
ip netns exec "$P-r" "$NODE" --dev tap:vn0 --underlay udp:10.200.0.3:4789 --vni 42 --mac $MR \
  --ip 10.99.0.3/24 --ip fd99::3/64 --peer 10.200.0.1:4789 --peer 10.200.0.2:4789 \
  --peer 10.200.0.4:4789 --learn >"$TMP/r.log" 2>&1 &
PIDS+=($!)
PID_R=$!
# k: the kernel's own VXLAN, flooding to a, b and r. Its inner checksums are computed by the
# kernel (no offload to a veth that would leave them to a NIC).
in_ns k ethtool -K eth0 tx off >/dev/null
in_ns k ip link add vx0 type vxlan id 42 local 10.200.0.4 dstport 4789 dev eth0
in_ns k ip link set vx0 address $MK mtu 1450 up
for n in 1 2 3; do in_ns k bridge fdb append 00:00:00:00:00:00 dev vx0 dst 10.200.0.$n; done
in_ns k ip addr add 10.99.0.4/24 dev vx0
in_ns k ip addr add fd99::4/64 dev vx0 nodad
# Answer broadcast pings, so the broadcast check sees every vnet-node endpoint reply.
for h in a b r; do in_ns "${EP[$h]}" sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=0; done

for h in a b r; do
  if ! wait_log "$TMP/$h.log" "up: " 10; then
    if [ "$DEV" = xdp ] || [ "$UL" = xdp ] &&
      grep -qiE "not supported|CONFIG_XDP|needs CAP|no native or generic XDP" "$TMP/$h.log"; then
      echo "SKIP: AF_XDP unavailable here"
      exit 77
    fi
    exit 1
  fi
done

# Make node $1 (pid $2) print its counters; what it printed goes to $TMP/$1.stats.
stats() { # host pid
  local log=$TMP/$1.log from i=0
  from=$(($(wc -l <"$log") + 1))
  kill -USR1 "$2"
  while ! tail -n "+$from" "$log" | grep -q "drops:"; do
    i=$((i + 1))
    [ $i -gt 200 ] && { echo "no counters from $1 after SIGUSR1"; return 1; }
    sleep 0.05
  done
  tail -n "+$from" "$log" >"$TMP/$1.stats"
}
drop_count() { # host name: that drop counter in $TMP/host.stats (0 when not printed)
  local v
  v=$(grep "drops:" "$TMP/$1.stats" | grep -Eo " $2=[0-9]+" | cut -d= -f2)
  echo "${v:-0}"
}

for x in a b r k; do
  for y in a b r k; do
    [ $x = $y ] && continue
    check "ping $x -> $y (IPv4)" in_ns "${EP[$x]}" ping -c 2 -i 0.2 -W 2 "10.99.0.${ADDR[$y]}"
  done
done
check "ping a -> r (IPv6)" in_ns "${EP[a]}" ping -6 -c 2 -i 0.2 -W 2 fd99::3
check "ping b -> a (IPv6)" in_ns "${EP[b]}" ping -6 -c 2 -i 0.2 -W 2 fd99::1
check "ping k -> a (IPv6, kernel vxlan peer)" in_ns k ping -6 -c 2 -i 0.2 -W 2 fd99::1
check "ping b -> k (IPv6, kernel vxlan peer)" in_ns "${EP[b]}" ping -6 -c 2 -i 0.2 -W 2 fd99::4
check "large ping a -> b (1400 bytes)" in_ns "${EP[a]}" ping -c 2 -s 1400 -W 2 10.99.0.2
check "large ping b -> r (1400 bytes)" in_ns "${EP[b]}" ping -c 2 -s 1400 -W 2 10.99.0.3
check "large ping a -> k (1400 bytes)" in_ns "${EP[a]}" ping -c 2 -s 1400 -W 2 10.99.0.4
in_ns k ping -b -c 3 -i 0.2 -W 1 10.99.0.255 >"$TMP/bcast.out" 2>&1
check "broadcast ping from k: a answers" grep -q "from 10.99.0.1:" "$TMP/bcast.out"
check "broadcast ping from k: b answers" grep -q "from 10.99.0.2:" "$TMP/bcast.out"
check "broadcast ping from k: r answers" grep -q "from 10.99.0.3:" "$TMP/bcast.out"

# a answered ARP and ND for r from its --arp bindings, and both of its ports carried traffic.
check "a prints its counters on SIGUSR1" stats a $PID_A
check "a answered ARP for r locally" grep -Eq "arp [1-9]" "$TMP/a.stats"
check "a answered neighbour solicitation for r locally" grep -Eq "nd [1-9]" "$TMP/a.stats"
check "a's $DEV port received frames" grep -Eq "virtual rx [1-9][0-9]* pkts" "$TMP/a.stats"
check "a's $UL underlay received packets" grep -Eq "underlay rx [1-9][0-9]* pkts" "$TMP/a.stats"

if command -v iperf3 >/dev/null; then
  in_ns "${EP[b]}" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  PIDS+=($!)
  in_ns k iperf3 -s -1 -p 5202 >/dev/null 2>&1 &
  PIDS+=($!)
  in_ns k iperf3 -s -1 -p 5203 >/dev/null 2>&1 &
  PIDS+=($!)
  wait_listen "${EP[b]}" 5201
  wait_listen k 5202
  wait_listen k 5203
  check "iperf3 TCP a -> b" in_ns "${EP[a]}" iperf3 -c 10.99.0.2 -p 5201 -t 2 --connect-timeout 3000
  check "iperf3 TCP a -> k (kernel vxlan receives)" \
    in_ns "${EP[a]}" iperf3 -c 10.99.0.4 -p 5202 -t 2 --connect-timeout 3000
  check "iperf3 TCP k -> a (kernel vxlan sends)" \
    in_ns "${EP[a]}" iperf3 -c 10.99.0.4 -p 5203 -t 2 -R --connect-timeout 3000
fi

# Bad packets to a's underlay endpoint from k: two garbage datagrams, a foreign VNI, and a frame
# claiming b's (static) MAC from the wrong endpoint.
BAD=$(bad_packets_script)
stats a $PID_A
cp "$TMP/a.stats" "$TMP/a.before"
in_ns k python3 "$BAD" $MA $MB $MK
check "ping a -> b still works after bad packets" in_ns "${EP[a]}" ping -c 2 -i 0.2 -W 2 10.99.0.2
stats a $PID_A
cp "$TMP/a.stats" "$TMP/a.after"
delta() { # counter: after - before
  local b a
  cp "$TMP/a.before" "$TMP/a.stats"
  b=$(drop_count a "$1")
  cp "$TMP/a.after" "$TMP/a.stats"
  a=$(drop_count a "$1")
  echo $((a - b))
}
check "garbage counted (decap +2)" sh -c "grep drops: $TMP/a.after; test $(delta decap) -eq 2"
check "foreign VNI counted (foreign_vni +1)" sh -c "grep drops: $TMP/a.after; test $(delta foreign_vni) -eq 1"
check "spoofed source counted (spoof +1)" sh -c "grep drops: $TMP/a.after; test $(delta spoof) -eq 1"

# What the ports left on the interfaces while running, to compare with after the exit.
XIFS=()
[ "$DEV" = xdp ] && XIFS+=(vm0)
[ "$UL" = xdp ] && XIFS+=(eth0)
for i in "${XIFS[@]}"; do
  check "a's $i has an XDP program while running" sh -c "ip -n $P-a link show $i | grep -q prog/xdp"
done
if [ "$DEV" != tap ]; then
  check "a's vm0 is promiscuous while running" \
    sh -c "ip -d -n $P-a link show vm0 | grep -q 'promiscuity [1-9]'"
fi

kill $PID_A $PID_B $PID_R
wait $PID_A
check "vnet-node a exits 0 on SIGTERM" test $? -eq 0
wait $PID_B
check "vnet-node b exits 0 on SIGTERM" test $? -eq 0
wait $PID_R
check "reference vnet-node r exits 0 on SIGTERM" test $? -eq 0
if [ "$DEV" = tap ]; then
  check "a's TAP device is gone after exit" sh -c "! ip -n $P-a link show vn0 2>/dev/null"
else
  check "a's vm0 is no longer promiscuous after exit" \
    sh -c "ip -d -n $P-a link show vm0 | grep -q 'promiscuity 0'"
fi
for h in a b; do
  for i in "${XIFS[@]}"; do
    check "no XDP program left on $h's $i after exit" \
      sh -c "ip -n $P-$h link show $i; ! ip -n $P-$h link show $i | grep -Eq 'prog/xdp| xdp'"
  done
done
finish
