#!/usr/bin/env bash
# vnet-node --fallback raw: an xdp: port that AF_XDP cannot serve is opened as raw: instead.
# AF_XDP is made to fail for real, by permission: the node runs without CAP_BPF and
# CAP_SYS_ADMIN (loading an XDP program takes CAP_BPF with CAP_NET_ADMIN, or CAP_SYS_ADMIN, so
# dropping only one of the two is not enough), but keeps CAP_NET_ADMIN (TAP, links) and
# CAP_NET_RAW (AF_PACKET).
#   host a: a guest behind --dev xdp:vm0, --underlay xdp:eth0,local=...   (falls back to raw)
#   host b: --dev tap:vn0, --underlay udp                                 (the peer)
# Checks: without --fallback the node stops with status 1 and a log naming the missing
# permission; with --fallback raw it says so for both ports, the guest and b ping each other,
# and no XDP program is left on (or ever attached to) the interfaces; managed mode falls back
# too.
# Usage: fallback_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"
for tool in setpriv ethtool; do
  command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
# Root's program gets, at exec, its inheritable set plus its bounding set as permitted (a
# root exec counts as a file with every capability): drop them from both.
DROP=(setpriv --inh-caps=-bpf,-sys_admin --bounding-set=-bpf,-sys_admin)
"${DROP[@]}" true 2>/dev/null || { echo "SKIP: setpriv cannot drop CAP_BPF here"; exit 77; }

underlay_init
underlay_host a 1
underlay_host b 2
# veth leaves transmit checksums to a NIC that is not there, and XDP cannot see that state
# (see combo_test.sh); off, so that the result does not depend on the backend in use.
for h in a b; do in_ns $h ethtool -K eth0 tx off >/dev/null; done
ns_add g
ip link add vm0 netns "$P-a" type veth peer name eth0 netns "$P-g"
ip -n "$P-a" link set vm0 up
ip -n "$P-g" addr add 10.99.0.1/24 dev eth0
ip -n "$P-g" link set eth0 mtu 1450 up
in_ns g ethtool -K eth0 tx off >/dev/null
MG=$(ip netns exec "$P-g" cat /sys/class/net/eth0/address)
MB=02:00:00:00:00:0b
A_ARGS=(--dev xdp:vm0 --underlay xdp:eth0,local=10.200.0.1:4789 --vni 7 --mac "$MG"
  --peer 10.200.0.2:4789 --static "$MB=10.200.0.2:4789")

no_xdp() { # host ifname: no XDP program attached
  ! ip -n "$P-$1" link show "$2" | grep -qw xdp
}

# With every capability, AF_XDP must work here; else there is nothing to fall back from.
ip netns exec "$P-a" "$NODE" "${A_ARGS[@]}" >"$TMP/probe.log" 2>&1 &
PROBE=$!
PIDS+=($PROBE)
if ! wait_log "$TMP/probe.log" "up: |stopped|error" 10 || ! grep -q "up: " "$TMP/probe.log"; then
  if grep -qiE "not supported|CONFIG_XDP|needs CAP" "$TMP/probe.log"; then
    echo "SKIP: AF_XDP unavailable here even with every capability:"
    cat "$TMP/probe.log"
    exit 77
  fi
  echo "the AF_XDP node with every capability did not come up:"
  cat "$TMP/probe.log"
  exit 1
fi
check "with every capability the node runs on AF_XDP (an XDP program on vm0 and eth0)" \
  bash -c "ip -n $P-a link show vm0 | grep -qw xdp && ip -n $P-a link show eth0 | grep -qw xdp"
kill $PROBE
wait $PROBE

# 1. No --fallback (the default): an error, naming what is missing.
timeout 20 ip netns exec "$P-a" "${DROP[@]}" "$NODE" "${A_ARGS[@]}" >"$TMP/nofb.log" 2>&1
RC=$?
check "without CAP_BPF/CAP_SYS_ADMIN and no --fallback: exit status 1 (got $RC)" test $RC -eq 1
check "... its log names the missing capability" grep -q "needs CAP_BPF" "$TMP/nofb.log"
check "... and the port that failed" \
  grep -q -- "--dev xdp:vm0: operation not permitted" "$TMP/nofb.log"
check "... and it does not fall back" bash -c "! grep -q 'falling back' $TMP/nofb.log"
timeout 20 ip netns exec "$P-a" "${DROP[@]}" "$NODE" "${A_ARGS[@]}" --fallback none \
  >"$TMP/none.log" 2>&1
RC=$?
check "--fallback none: the same (exit status $RC)" test $RC -eq 1

# 2. --fallback raw: both ports come up as raw, and traffic flows both ways.
ip netns exec "$P-a" "${DROP[@]}" "$NODE" "${A_ARGS[@]}" --fallback raw >"$TMP/a.log" 2>&1 &
PID_A=$!
PIDS+=($PID_A)
ip netns exec "$P-b" "$NODE" --dev tap:vn0 --underlay udp:10.200.0.2:4789 --vni 7 --mac $MB \
  --ip 10.99.0.2/24 --peer 10.200.0.1:4789 --static "$MG=10.200.0.1:4789" >"$TMP/b.log" 2>&1 &
PID_B=$!
PIDS+=($PID_B)
wait_log "$TMP/a.log" "up: vm0" || exit 1
wait_log "$TMP/b.log" "up: vn0" || exit 1
EPERM="operation not permitted: falling back to"
check "--dev: the fallback warning" \
  grep -qF -- "warn [node]: --dev xdp:vm0: $EPERM raw:vm0" "$TMP/a.log"
U=eth0,local=10.200.0.1:4789
check "--underlay: the fallback warning" \
  grep -qF -- "warn [node]: --underlay xdp:$U: $EPERM raw:$U" "$TMP/a.log"
check "guest (behind the fallen-back node) -> b" in_ns g ping -c 3 -i 0.2 -W 2 10.99.0.2
check "b -> guest" in_ns b ping -c 3 -i 0.2 -W 2 10.99.0.1
check "large frames both ways (1400 bytes)" in_ns g ping -c 2 -s 1400 -W 2 10.99.0.2

# 3. No XDP program: none while it runs (raw), none after it stops.
check "no XDP program on vm0 while it runs" no_xdp a vm0
check "no XDP program on eth0 while it runs" no_xdp a eth0
kill $PID_A $PID_B
wait $PID_A
check "a exits 0" test $? -eq 0
wait $PID_B

# Managed mode opens its ports the same way, before it reaches a controller (none here).
ip netns exec "$P-a" "${DROP[@]}" "$NODE" --controller 10.200.0.2:7700 --network n --name a \
  --dev xdp:vm0 --underlay xdp:$U --fallback raw >"$TMP/m.log" 2>&1 &
PID_M=$!
PIDS+=($PID_M)
wait_log "$TMP/m.log" "managed: vm0|error \[node\]" || exit 1
check "managed mode: both ports fall back" \
  bash -c "grep -qF -- '--dev xdp:vm0: $EPERM raw:vm0' $TMP/m.log &&
           grep -qF -- '--underlay xdp:$U: $EPERM raw:$U' $TMP/m.log &&
           grep -q 'managed: vm0' $TMP/m.log"
kill $PID_M
wait $PID_M
check "no XDP program on vm0 afterwards" no_xdp a vm0
check "no XDP program on eth0 afterwards" no_xdp a eth0
finish
