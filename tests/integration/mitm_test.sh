#!/usr/bin/env bash
# Issue 12, items 1 and 2, performed for real: a man in the middle (tests/integration/vnet-mitm,
# in its own namespace) between vnet-node and a keyed vnet-controller
#   - rewrites the WELCOME (network mode secure -> plain, VNI, MTU, MAC, IP) with its auth
#     bytes untouched: the node refuses it, never comes up, sends no plaintext VXLAN, and
#     spoofed plain VXLAN frames reach nothing;
#   - lifts the sealed join secret off a joining node's HELLO and replays it behind a handshake
#     with its own key: the controller enrols nothing and sends no snapshot; the real node joins;
# and a node with a key takes part in a plain network only with --allow-plain.
# Usage: mitm_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
command -v tcpdump >/dev/null || { echo "SKIP: tcpdump not installed"; exit 77; }
vnet_programs
MITM="$BUILD/tests/integration/vnet-mitm"

underlay_init
underlay_host ctl 100
underlay_host mitm 50
for i in 1 2 3; do underlay_host n$i $i; done

for k in n1 n2 p1 p2; do "$NODE" --genkey "$K/$k.key" >"$K/$k.pub"; done
keyed_controller --keepalive 500 || exit 1
vnetctl network create blue --subnet 10.100.0.0/24 >/dev/null
vnetctl network create pl --subnet 10.101.0.0/24 --mode plain >/dev/null
vnetctl node add blue n1 --pubkey "$(cat "$K/n1.pub")" >/dev/null
vnetctl node add blue n2 --pubkey "$(cat "$K/n2.pub")" >/dev/null
vnetctl node add pl p1 --pubkey "$(cat "$K/p1.pub")" >/dev/null
vnetctl node add pl p2 --pubkey "$(cat "$K/p2.pub")" >/dev/null
vnetctl --json node add blue n3 >"$TMP/n3.json"
TOKEN=$(python3 -c "import json; print(json.load(open('$TMP/n3.json'))['join_token'] or '')")
PLVNI=$(vnetctl --json network show pl | python3 -c "import json,sys; d=json.load(sys.stdin); print((d.get('network') or d)['vni'])")
check "setup: a join token for n3 and the plain network's VNI" test -n "$TOKEN" -a -n "$PLVNI"

start_node() { # ns log controller network name extra...
  local ns=$1 log=$2 ctl=$3 net=$4 name=$5
  shift 5
  ip netns exec "$P-$ns" "$NODE" --controller "$ctl" --network "$net" --name "$name" \
    --dev tap:vn0 --underlay "udp:10.200.0.${ns#n}:4789" "$@" >>"$log" 2>&1 &
  PIDS+=($!)
  LAST=$!
}
start_mitm() { # log mode arg...
  local log=$1
  shift
  ip netns exec "$P-mitm" "$MITM" 10.200.0.50:7700 10.200.0.100:7700 "$@" >"$log" 2>&1 &
  PIDS+=($!)
  MITM_PID=$!
  wait_listen mitm 7700
}
stop() { kill "$@" 2>/dev/null; wait "$@" 2>/dev/null; return 0; }
status() { vnetctl --json network status "$1"; }
connected() { # network node: the controller shows it connected
  status "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if any(n['node']=='$2' and n['connected'] for n in d['status']) else 1)"
}
not_connected() { ! connected "$1" "$2"; }
wait_connected() { # network node
  local i=0
  until connected "$1" "$2"; do
    i=$((i + 1)); [ $i -gt 200 ] && { status "$1"; return 1; }
    sleep 0.05
  done
}
# Plain VXLAN frames (VNI $2) to $3:4789 from namespace $1 (an on-path attacker can send from a
# peer's address; the node takes plain frames from its peers' addresses): a broadcast Ethernet
# frame carrying the marker SPOOFMARKER-5e1f.
spoof() { # ns vni dst
  ip netns exec "$P-$1" python3 -c "
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
inner = b'\xff' * 6 + bytes.fromhex('026600000001') + b'\x08\x00' + b'SPOOFMARKER-5e1f' * 4
for i in range(5):
    s.sendto(struct.pack('!BBHI', 0x08, 0, 0, $2 << 8) + inner, ('$3', 4789))
"
}
packets() { tcpdump -nr "$1" 2>/dev/null | wc -l; }

# 0. The honest path through the same relay: n1 (via the mitm) and n2 (direct) come up secure
#    and ping each other. This is the control for everything below.
start_mitm "$TMP/mitm0.log" relay || exit 1
start_node n1 "$TMP/n1-relay.log" 10.200.0.50:7700 blue n1 --key "$K/n1.key" --controller-key "$CTLPUB"
N1=$LAST
start_node n2 "$TMP/n2.log" 10.200.0.100:7700 blue n2 --key "$K/n2.key" --controller-key "$CTLPUB"
check "relay: n1 connects through the mitm" wait_connected blue n1
check "relay: n2 connects directly" wait_connected blue n2
check "relay: n1 is up" wait_log "$TMP/n1-relay.log" "up: vn0 in network blue" 10
check "relay: ... secure, not plain" sh -c "! grep 'up: vn0' $TMP/n1-relay.log | grep -q plain"
check "relay: ping n1 -> n2 over the overlay" in_ns n1 ping -c 2 -i 0.2 -W 2 10.100.0.2
stop $N1 $MITM_PID

# 1. Downgrade: the mitm flips network.mode 1 -> 0 in every WELCOME.
capture_start n1 eth0 "$TMP/n1-under.pcap" udp port 4789 and src host 10.200.0.1 || exit 1
CAP_UNDER=$CAP_PID
# (not icmp: once the node has stopped, a spoofed datagram to its closed port comes back as an
# ICMP port unreachable that quotes it; that is no frame on its TAP)
capture_start n1 any "$TMP/n1-inner.pcap" not udp port 4789 and not icmp || exit 1
CAP_INNER=$CAP_PID
start_mitm "$TMP/mitm1.log" welcome mode=0 || exit 1
start_node n1 "$TMP/n1-mode.log" 10.200.0.50:7700 blue n1 --key "$K/n1.key" --controller-key "$CTLPUB"
N1=$LAST
check "downgrade: the mitm rewrote the WELCOME's mode" wait_log "$TMP/mitm1.log" "rewrote WELCOME mode=0" 10
check "downgrade: the node refuses the WELCOME" wait_log "$TMP/n1-mode.log" "welcome refused" 10
check "downgrade: ... saying it may have been changed on the way" grep -q "changed on the way" "$TMP/n1-mode.log"
check "downgrade: the node stops after the second refused welcome" wait_log "$TMP/n1-mode.log" "stopping: .*welcome refused" 10
BLUEVNI=$(vnetctl --json network show blue | python3 -c "import json,sys; d=json.load(sys.stdin); print((d.get('network') or d)['vni'])")
spoof n2 "$BLUEVNI" 10.200.0.1 # from n2's address: n2 is n1's peer in blue
spoof mitm "$BLUEVNI" 10.200.0.1
in_ns n1 python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    try: s.sendto(b'PLAINMARKER-77aa', ('10.100.0.2', 9999))
    except OSError: pass
" 2>/dev/null
in_ns n1 ping -c 2 -i 0.2 -W 1 10.100.0.2 >/dev/null 2>&1
check "downgrade: n1 never came up" sh -c "! grep -q 'up: vn0' $TMP/n1-mode.log"
check "downgrade: the controller does not show n1 connected" not_connected blue n1
capture_sentinel n1 10.200.0.100 7700
sleep 0.5 # the sentinel is not on port 4789: give the captures a moment (no marker to await)
stop $CAP_UNDER $CAP_INNER
check "downgrade: no VXLAN at all left n1 on the underlay" test "$(packets "$TMP/n1-under.pcap")" -eq 0
check "downgrade: no spoofed frame reached n1's TAP" sh -c "! grep -aq SPOOFMARKER-5e1f $TMP/n1-inner.pcap"
stop $N1 $MITM_PID

# 2. The other settings, each rewritten alone: every one is refused.
for t in vni=4711 mtu=9000 mac=02:66:66:66:66:66 ip=10.100.0.66; do
  start_mitm "$TMP/mitm-$t.log" welcome "$t" || exit 1
  start_node n1 "$TMP/n1-$t.log" 10.200.0.50:7700 blue n1 --key "$K/n1.key" --controller-key "$CTLPUB"
  N1=$LAST
  wait_log "$TMP/mitm-$t.log" "rewrote WELCOME" 10 >/dev/null
  check "rewritten $t: refused by the node" wait_log "$TMP/n1-$t.log" "welcome refused" 10
  check "rewritten $t: the node never came up" sh -c "! grep -q 'up: vn0' $TMP/n1-$t.log"
  stop $N1 $MITM_PID
done

# 3. Join-token theft: the mitm replays n3's sealed join secret behind its own key first.
start_mitm "$TMP/mitm3.log" steal "$CTLPUB" || exit 1
start_node n3 "$TMP/n3.log" 10.200.0.50:7700 blue n3 --key "$K/n3.key" --join "$TOKEN"
N3=$LAST
check "theft: the mitm captured the sealed join secret" wait_log "$TMP/mitm3.log" "captured a sealed join secret" 10
check "theft: the controller refused the stolen secret" wait_log "$TMP/mitm3.log" "stolen join: refused" 10
check "theft: the attacker got no WELCOME" sh -c "! grep -q 'stolen join: WELCOME' $TMP/mitm3.log"
check "theft: the attacker got no snapshot" sh -c "! grep -q 'SNAPSHOT' $TMP/mitm3.log"
check "theft: the controller logs why" grep -q "not bound to this handshake" "$TMP/ctl.log"
check "theft: the real node still joins" wait_connected blue n3
check "theft: n3's own key is the one registered" sh -c "ip netns exec $P-ctl $VNETCTL --controller 127.0.0.1:7701 --json node show blue n3 | grep -qF -e \"\$($NODE --pubkey $K/n3.key)\""
stop $N3 $MITM_PID

# 4. A plain network and a node with a key: refused without --allow-plain, up with it.
start_node n1 "$TMP/p1-strict.log" 10.200.0.100:7700 pl p1 --key "$K/p1.key" --controller-key "$CTLPUB"
P1=$LAST
check "plain network, no --allow-plain: refused" wait_log "$TMP/p1-strict.log" "allow-plain" 10
check "... and the node never came up" sh -c "! grep -q 'up: vn0' $TMP/p1-strict.log"
stop $P1
start_node n1 "$TMP/p1-allow.log" 10.200.0.100:7700 pl p1 --key "$K/p1.key" --controller-key "$CTLPUB" --allow-plain
P1=$LAST
check "plain network with --allow-plain: up, plain" wait_log "$TMP/p1-allow.log" "up: vn0 in network pl .*plain" 10
# The control for the spoof check of step 1: on a plain data plane a spoofed frame from a
# peer's address does reach the TAP, and this capture sees it.
start_node n3 "$TMP/p2-allow.log" 10.200.0.100:7700 pl p2 --key "$K/p2.key" --controller-key "$CTLPUB" --allow-plain
P2=$LAST
check "plain network: a second node, p2, is up" wait_log "$TMP/p2-allow.log" "up: vn0 in network pl .*plain" 10
capture_start n1 any "$TMP/p1-inner.pcap" not udp port 4789 || exit 1
CAP=$CAP_PID
spoof_reaches() { # until p1 knows p2 as a peer (at most 10 s)
  local i=0
  until grep -aq SPOOFMARKER-5e1f "$TMP/p1-inner.pcap"; do
    i=$((i + 1)); [ $i -gt 40 ] && return 1
    spoof n3 "$PLVNI" 10.200.0.1
    sleep 0.25
  done
}
check "control: on a plain network a spoofed frame from a peer's address reaches the TAP" spoof_reaches
stop $CAP $P1 $P2
finish
