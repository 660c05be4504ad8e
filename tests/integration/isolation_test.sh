#!/usr/bin/env bash
# Isolation between networks on the same hosts, and spoofing, with the secure data plane:
# hosts h1, h2 each run a node of network "red" and a node of network "blue" (both secure,
# different keys, one controller). Frames of one network never reach the other (unicast and
# broadcast, both directions); a node sending with another node's MAC, or a packet from an
# endpoint that is no member, is dropped at the receiver and counted.
# Usage: isolation_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
command -v tcpdump >/dev/null || { echo "SKIP: tcpdump missing"; exit 77; }
vnet_programs

underlay_init
underlay_host ctl 100
underlay_host h1 1
underlay_host h2 2
underlay_host h3 3
underlay_host x 9 # not a member of anything

keyed_controller || exit 1
# The API of a controller with a key needs its public key and an API token: the admin's,
# written next to the database at the first start.
export VNET_CONTROLLER_KEY="$CTLPUB" VNET_TOKEN_FILE="$TMP/vnet.db.admin-token"
vnetctl() { ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701 "$@"; }
vnetctl network create red --subnet 10.51.0.0/24 >/dev/null
vnetctl network create blue --subnet 10.52.0.0/24 >/dev/null
check "networks are secure by default" sh -c "ip netns exec $P-ctl $VNETCTL --controller 127.0.0.1:7701 --json network list | python3 -c 'import json,sys; assert [n[\"mode\"] for n in json.load(sys.stdin)] == [\"secure\", \"secure\"]'"

declare -A PORT=([red]=4789 [blue]=4790) TAP=([red]=vr0 [blue]=vb0)
for net in red blue; do
  for h in 1 2; do
    "$NODE" --genkey "$K/$net$h.key" >"$K/$net$h.pub"
    vnetctl node add $net $net$h --pubkey "$(cat "$K/$net$h.pub")" >/dev/null
    ip netns exec "$P-h$h" "$NODE" --controller 10.200.0.100:7700 --network $net --name $net$h \
      --key "$K/$net$h.key" --controller-key "$CTLPUB" --dev "tap:${TAP[$net]}" \
      --underlay "udp:10.200.0.$h:${PORT[$net]}" >"$TMP/$net$h.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$net$h=$!"
  done
done
# A third red node on h3 (its MAC is the one red1 will try to pass for).
"$NODE" --genkey "$K/red3.key" >"$K/red3.pub"
vnetctl node add red red3 --pubkey "$(cat "$K/red3.pub")" >/dev/null
ip netns exec "$P-h3" "$NODE" --controller 10.200.0.100:7700 --network red --name red3 \
  --key "$K/red3.key" --controller-key "$CTLPUB" --dev tap:vr0 --underlay udp:10.200.0.3:4789 \
  >"$TMP/red3.log" 2>&1 &
PIDS+=($!)
for net in red blue; do
  i=0
  want=2; [ $net = red ] && want=3
  until vnetctl network status $net | grep -q "$want connected, $want converged"; do
    i=$((i + 1)); [ $i -gt 300 ] && break
    sleep 0.05
  done
done
for h in 1 2; do in_ns h$h sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=0; done
check "red: h1 -> h2" in_ns h1 ping -c 2 -i 0.2 -W 2 10.51.0.2
check "blue: h2 -> h1" in_ns h2 ping -c 2 -i 0.2 -W 2 10.52.0.1

MAC_BLUE2=$(ip netns exec "$P-h2" cat /sys/class/net/vb0/address)
MAC_RED2=$(ip netns exec "$P-h2" cat /sys/class/net/vr0/address)
# Watch blue's TAP on h2 and red's TAP on h2 for anything of the other network.
capture_start h2 vb0 "$TMP/vb0.pcap" || exit 1
T1=$CAP_PID
capture_start h2 vr0 "$TMP/vr0.pcap" || exit 1
T2=$CAP_PID
# red -> blue: broadcast in red, and a unicast frame from red's TAP addressed to blue2's MAC.
in_ns h1 ping -b -c 3 -i 0.2 -W 1 -p 52454452454452454452454452454452 10.51.0.255 >/dev/null 2>&1
in_ns h1 ip neigh replace 10.51.0.77 lladdr "$MAC_BLUE2" dev vr0
in_ns h1 ping -c 3 -i 0.2 -W 1 -p 52454452454452454452454452454452 10.51.0.77 >/dev/null 2>&1
# blue -> red: the same the other way.
in_ns h1 ping -b -c 3 -i 0.2 -W 1 -p 424c5545424c5545424c5545424c5545 10.52.0.255 >/dev/null 2>&1
in_ns h1 ip neigh replace 10.52.0.77 lladdr "$MAC_RED2" dev vb0
in_ns h1 ping -c 3 -i 0.2 -W 1 -p 424c5545424c5545424c5545424c5545 10.52.0.77 >/dev/null 2>&1
check "red's broadcast and unicast arrived in red (control)" capture_wait "$TMP/vr0.pcap" "REDREDRED"
check "blue's traffic arrived in blue (control)" capture_wait "$TMP/vb0.pcap" "BLUEBLUE"
capture_stop $T1 $T2
check "nothing of red on blue's TAP" sh -c "! grep -aq REDREDRED $TMP/vb0.pcap"
check "nothing of blue on red's TAP" sh -c "! grep -aq BLUEBLUE $TMP/vr0.pcap"

# Spoofing: red1 claims red3's MAC towards red2 (the key says red1, the MAC says red3), then
# red2's own MAC: red2 drops both.
MAC_RED3=$(ip netns exec "$P-h3" cat /sys/class/net/vr0/address)
in_ns h1 ip link set vr0 address "$MAC_RED3"
in_ns h1 ping -c 3 -i 0.2 -W 1 10.51.0.2 >/dev/null 2>&1
in_ns h1 ip link set vr0 address "$MAC_RED2"
in_ns h1 ping -c 3 -i 0.2 -W 1 10.51.0.2 >/dev/null 2>&1
# A non-member sends (garbage sealed-looking) packets to red2's port.
cat >"$TMP/x.py" <<'PY'
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    s.sendto(bytes([1, 0]) + os.urandom(100), ("10.200.0.2", 4789))
PY
in_ns x python3 "$TMP/x.py"
kill -USR1 $PID_red2
wait_log "$TMP/red2.log" "drops:" 5
check "red2 dropped the frames claiming red3's MAC (spoof)" grep -Eq "drops:.*spoof=[1-9]" "$TMP/red2.log"
check "red2 dropped the frames claiming its own MAC" grep -Eq "drops:.*self=[1-9]" "$TMP/red2.log"
check "red2 dropped the non-member's packets" grep -Eq "drops:.*unknown_peer=[1-9]" "$TMP/red2.log"
check "blue still works" in_ns h1 ping -c 2 -i 0.2 -W 2 10.52.0.2
finish
