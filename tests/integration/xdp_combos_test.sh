#!/usr/bin/env bash
# vnet-node with the AF_XDP backend in every role, on one network:
#   host x: a guest behind xdp:vm0, underlay xdp:eth0        (xdp + xdp)
#   host t: a TAP, underlay xdp:eth0                         (tap + xdp)
#   host u: a guest behind xdp:vm0, underlay udp             (xdp + udp)
# All pairs ping. veth leaves transmit checksums to a NIC that is not there, and XDP cannot see
# that state, so transmit checksum offload is off on the veths that feed an xdp port (on real
# NICs frames arrive with their checksums).
# Usage: xdp_combos_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"
command -v ethtool >/dev/null || { echo "SKIP: ethtool missing"; exit 77; }

underlay_init
underlay_host x 1
underlay_host t 2
underlay_host u 3
for h in x t u; do in_ns $h ethtool -K eth0 tx off >/dev/null; done
guest() { # host guest ip
  ns_add "$2"
  ip link add vm0 netns "$P-$1" type veth peer name eth0 netns "$P-$2"
  ip -n "$P-$1" link set vm0 up
  ip -n "$P-$2" addr add "$3/24" dev eth0
  ip -n "$P-$2" link set eth0 mtu 1450 up
  in_ns "$2" ethtool -K eth0 tx off >/dev/null
}
guest x gx 10.99.0.1
guest u gu 10.99.0.3
MX=$(ip netns exec "$P-gx" cat /sys/class/net/eth0/address)
MU=$(ip netns exec "$P-gu" cat /sys/class/net/eth0/address)
MT=02:00:00:00:00:0e
STATICS=(--static "$MX=10.200.0.1:4789" --static "$MT=10.200.0.2:4789" --static "$MU=10.200.0.3:4789")
PEERS=(--peer 10.200.0.1:4789 --peer 10.200.0.2:4789 --peer 10.200.0.3:4789)

ip netns exec "$P-x" "$NODE" --dev xdp:vm0 --underlay xdp:eth0,local=10.200.0.1:4789 --vni 9 \
  --mac "$MX" "${PEERS[@]}" "${STATICS[@]}" >"$TMP/x.log" 2>&1 &
PIDS+=($!)
ip netns exec "$P-t" "$NODE" --dev tap:vn0 --underlay xdp:eth0,local=10.200.0.2:4789 --vni 9 \
  --mac $MT --ip 10.99.0.2/24 "${PEERS[@]}" "${STATICS[@]}" >"$TMP/t.log" 2>&1 &
PIDS+=($!)
ip netns exec "$P-u" "$NODE" --dev xdp:vm0 --underlay udp:10.200.0.3:4789 --vni 9 \
  --mac "$MU" "${PEERS[@]}" "${STATICS[@]}" >"$TMP/u.log" 2>&1 &
PIDS+=($!)
for n in x t u; do
  if ! wait_log "$TMP/$n.log" "up: " 10; then
    if grep -qiE "not supported|CONFIG_XDP|needs CAP" "$TMP/$n.log"; then
      echo "SKIP: AF_XDP unavailable here"; exit 77
    fi
    exit 1
  fi
done
check "xdp+xdp guest -> tap+xdp node" in_ns gx ping -c 3 -i 0.2 -W 2 10.99.0.2
check "tap+xdp node -> xdp+udp guest" in_ns t ping -c 3 -i 0.2 -W 2 10.99.0.3
check "xdp+udp guest -> xdp+xdp guest" in_ns gu ping -c 3 -i 0.2 -W 2 10.99.0.1
check "large frames (1400 bytes) xdp+xdp -> xdp+udp" in_ns gx ping -c 2 -s 1400 -W 2 10.99.0.3
if command -v iperf3 >/dev/null; then
  in_ns t iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  PIDS+=($!)
  wait_listen t 5201
  check "iperf3 TCP xdp+xdp guest -> tap+xdp node" in_ns gx iperf3 -c 10.99.0.2 -p 5201 -t 2 --connect-timeout 3000
fi
finish
