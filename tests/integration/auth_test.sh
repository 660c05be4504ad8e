#!/usr/bin/env bash
# Authenticated, encrypted control channel end to end, in network namespaces this test
# creates: keys, pinning, registration by public key, single-use join tokens, refusals, and no
# plaintext on the control connection.
# Usage: auth_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
vnet_programs

underlay_init
underlay_host ctl 100
for i in 1 2 3; do underlay_host n$i $i; done

# Keys: created 0600, public key printable, loose permissions refused.
check "controller --genkey" sh -c "$CTL --genkey $K/ctl.key > $K/ctl.pub"
check "key file is mode 0600" sh -c "test \$(stat -c %a $K/ctl.key) = 600"
check "--pubkey prints the same key" sh -c "test \"\$($CTL --pubkey $K/ctl.key)\" = \"\$(cat $K/ctl.pub)\""
cp "$K/ctl.key" "$K/loose.key"
chmod 644 "$K/loose.key"
"$CTL" --db "$TMP/x.db" --key "$K/loose.key" >"$TMP/loose.out" 2>&1
check "a key file readable by others is refused (exit 1)" test $? -eq 1
check "... with a message naming the mode" grep -q "readable by others" "$TMP/loose.out"
"$NODE" --genkey "$K/n1.key" >"$K/n1.pub"
"$NODE" --genkey "$K/evil.key" >"$K/evil.pub"
"$CTL" --genkey "$K/other.key" >"$K/other.pub"
check "genkey refuses to overwrite" sh -c "! $NODE --genkey $K/n1.key 2>/dev/null"

keyed_controller --keepalive 500 || exit 1
# The API of a controller with a key needs its public key and an API token: the admin's,
# written next to the database at the first start.
export VNET_CONTROLLER_KEY="$CTLPUB" VNET_TOKEN_FILE="$TMP/vnet.db.admin-token"
vnetctl() { ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701 "$@"; }
vnetctl network create blue --subnet 10.100.0.0/24 >/dev/null
vnetctl node add blue n1 --pubkey "$(cat "$K/n1.pub")" >/dev/null
vnetctl --json node add blue n2 >"$TMP/n2.json"
TOKEN=$(python3 -c "import json; print(json.load(open('$TMP/n2.json'))['join_token'] or '')")
check "node add without a key prints a join token" test -n "$TOKEN"

start_node() { # i name extra...
  local i=$1 name=$2
  shift 2
  ip netns exec "$P-n$i" "$NODE" --controller 10.200.0.100:7700 --network blue --name "$name" \
    --dev tap:vn0 --underlay "udp:10.200.0.$i:4789" "$@" >>"$TMP/n$i.log" 2>&1 &
  PIDS+=($!)
  LAST=$!
}
status() { vnetctl --json network status blue; }
wait_converged() { # revision: both nodes acknowledged it
  local i=0
  until status | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if d['revision']>=$1 and d['converged']>=2 else 1)"; do
    i=$((i + 1)); [ $i -gt 300 ] && { status; return 1; }
    sleep 0.05
  done
}
wait_connected() { # count
  local i=0
  until status | python3 -c "import json,sys; sys.exit(0 if json.load(sys.stdin)['connected']>=$1 else 1)"; do
    i=$((i + 1)); [ $i -gt 300 ] && { status; return 1; }
    sleep 0.05
  done
}

# Capture the control connection while nodes join and a node with a marker name is added.
capture_start ctl eth0 "$TMP/ctl.pcap" tcp port 7700 || exit 1
TCPDUMP=$CAP_PID

start_node 1 n1 --key "$K/n1.key" --controller-key "$CTLPUB"
check "n1 (registered key, pinned controller) connects" wait_connected 1
start_node 2 n2 --key "$K/n2.key" --join "$TOKEN"
check "n2 joins with its token" wait_connected 2
check "n2's key file was created 0600" sh -c "test \$(stat -c %a $K/n2.key) = 600"
check "n2's key is now registered (the one in its key file)" sh -c "ip netns exec $P-ctl $VNETCTL --controller 127.0.0.1:7701 --json node show blue n2 | grep -qF -e \"\$($NODE --pubkey $K/n2.key)\""
check "ping n1 -> n2 over the overlay" in_ns n1 ping -c 2 -i 0.2 -W 2 10.100.0.2
REV=$(status | python3 -c "import json,sys; print(json.load(sys.stdin)['revision'])")
vnetctl node add blue MARKERNODE4242 --pubkey "$(cat "$K/evil.pub")" >/dev/null
# the capture ends once both nodes have acknowledged the delta that carries the marker
check "both nodes took the delta adding the marker node" wait_converged $((REV + 1))
capture_sentinel n1 10.200.0.100 7700
check "the capture holds everything up to the end marker" capture_wait "$TMP/ctl.pcap" ENDOFCAPTURE
capture_stop $TCPDUMP
check "the capture saw the control traffic" test "$(stat -c %s "$TMP/ctl.pcap")" -gt 2000
check "no plaintext on the control connection (marker absent)" sh -c "! grep -aq MARKERNODE4242 $TMP/ctl.pcap"

# The secure data plane (the default network mode with a keyed controller): a marker sent
# through the overlay must appear on n2's TAP (the positive control) and never on the underlay.
N2_PID=$(ip netns pids "$P-n2" | head -n1)
capture_start n1 eth0 "$TMP/under.pcap" udp port 4789 || exit 1
TD1=$CAP_PID
capture_start n2 vn0 "$TMP/tap.pcap" udp port 9999 || exit 1
TD2=$CAP_PID
cat >"$TMP/marker.py" <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(20):
    s.sendto(b"OVERLAYMARKER-7f3a9c-" + str(i).encode(), ("10.100.0.2", 9999))
PY
in_ns n1 python3 "$TMP/marker.py"
in_ns n1 ping -c 3 -i 0.2 -W 2 -p 4d41524b45524d41524b4552 10.100.0.2 >/dev/null
check "secure mode: the marker reached n2's TAP (control)" capture_wait "$TMP/tap.pcap" "OVERLAYMARKER-7f3a9c"
capture_stop $TD1 $TD2
check "secure mode: the underlay capture holds traffic" test "$(stat -c %s "$TMP/under.pcap")" -gt 1500
check "secure mode: no marker on the underlay" sh -c "! grep -aq OVERLAYMARKER-7f3a9c $TMP/under.pcap && ! grep -aq MARKERMARKER $TMP/under.pcap"

# Replayed, modified and truncated packets (taken from the capture, sent again from n1's
# address) are dropped and counted; forwarding goes on.
cat >"$TMP/replay.py" <<'PY'
import socket, struct, sys
data = open(sys.argv[1], "rb").read()
pos, pkts = 24, []
while pos + 16 <= len(data):
    incl = struct.unpack("<I", data[pos + 8:pos + 12])[0]
    frame = data[pos + 16:pos + 16 + incl]
    pos += 16 + incl
    if len(frame) > 42 and frame[12:14] == b"\x08\x00" and frame[26:30] == bytes([10, 200, 0, 1]):
        ihl = (frame[14] & 15) * 4
        pkts.append(frame[14 + ihl + 8:])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.200.0.1", 0))
dst = ("10.200.0.2", 4789)
p = pkts[-1]
ahead = p[:2] + b"\xff" * 5 + b"\xf0" + p[8:]    # counter far ahead: not a replay
s.sendto(p, dst)                                      # replayed as it was
s.sendto(ahead, dst)                                  # header modified (it is authenticated)
s.sendto(ahead[:-1] + bytes([ahead[-1] ^ 1]), dst)    # and the tag
s.sendto(p[:30], dst)                                 # truncated
print(len(pkts), "packets captured")
PY
in_ns n1 python3 "$TMP/replay.py" "$TMP/under.pcap" >"$TMP/replay.out" 2>&1
check "replay/modify/truncate sent" grep -q "packets captured" "$TMP/replay.out"
kill -USR1 "$N2_PID"
wait_log "$TMP/n2.log" "drops:.*replay=" 5
check "n2 counted the replayed packet" grep -Eq "drops:.*replay=[1-9]" "$TMP/n2.log"
check "n2 counted the forged packets" grep -Eq "drops:.*auth=[3-9]" "$TMP/n2.log"
check "forwarding goes on after forged packets" in_ns n1 ping -c 2 -i 0.2 -W 2 10.100.0.2

# Refusals.
start_node 3 n2 --key "$K/evil.key" --join "$TOKEN"
N3=$LAST
wait_log "$TMP/ctl.log" "join refused" 10
check "a used token is refused" grep -q "join refused" "$TMP/ctl.log"
kill $N3 2>/dev/null; wait $N3 2>/dev/null
start_node 3 n1 --key "$K/evil.key" --controller-key "$CTLPUB"
N3=$LAST
wait_log "$TMP/ctl.log" "is not registered" 10
check "an unregistered key is refused" grep -q "is not registered" "$TMP/ctl.log"
kill $N3 2>/dev/null; wait $N3 2>/dev/null
start_node 3 n1 --key "$K/n1.key" --controller-key "$(cat "$K/other.pub")"
N3=$LAST
wait_log "$TMP/ctl.log" "wrong controller key" 10
check "a node pinning another controller key is refused" grep -q "wrong controller key" "$TMP/ctl.log"
kill $N3 2>/dev/null; wait $N3 2>/dev/null
start_node 3 n1 --controller 10.200.0.100:7700 2>/dev/null
N3=$LAST
wait_log "$TMP/ctl.log" "authentication required" 10
check "a node without a key is refused" grep -q "authentication required" "$TMP/ctl.log"
kill $N3 2>/dev/null; wait $N3 2>/dev/null
check "the genuine nodes are still connected" wait_connected 2
check "and still forward" in_ns n2 ping -c 2 -i 0.2 -W 2 10.100.0.1
# Revoke n1's key: its session ends at once, it cannot come back, and n2 stops talking to it.
check "node revoke" vnetctl node revoke blue n1
wait_log "$TMP/ctl.log" "key revoked" 5
check "the controller logs the revocation" grep -q "key revoked" "$TMP/ctl.log"
# n1 is told on its session (authenticated): it stops at once, exit status 1, saying why
check "n1 stops, saying its key was revoked" wait_log "$TMP/n1.log" "stopping: .*key revoked" 10
check "n1 is disconnected and stays out" sh -c "! ip netns exec $P-ctl $VNETCTL --controller 127.0.0.1:7701 network status blue | grep -E '^n1 +yes'"
check "n2 no longer reaches n1 over the secure overlay" sh -c "! ip netns exec $P-n2 ping -c 2 -i 0.2 -W 1 10.100.0.1"
finish
