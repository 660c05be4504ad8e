#!/usr/bin/env bash
# vnet-node fails clearly (issue 13), in network namespaces this test creates, with a real keyed
# controller: each permanent refusal ends the node with exit status 1 and its line within 10 s;
# a node that enrolled restarts with the same command line (--join included), with --key
# alone, or (default key in the state directory) without --join; deleting the network stops its nodes and takes their TAP down; a pre-existing TAP gets
# its MAC, MTU, addresses and state back; an unreachable or unresolvable controller is retried
# with a warning that gives the delay; raw: underlay without local= picks the interface's
# address; bad inputs exit 2 with their line.
# Usage: node_fail_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
vnet_programs

underlay_init
underlay_host ctl 100
for i in 1 2 3; do underlay_host n$i $i; done

"$CTL" --genkey "$K/other.key" >"$K/other.pub"
keyed_controller --keepalive 500 || exit 1
token() { # network node: add the node, print its join token
  vnetctl --json node add "$1" "$2" | python3 -c "import json,sys; print(json.load(sys.stdin)['join_token'])"
}
vnetctl network create blue --subnet 10.100.0.0/24 >/dev/null
vnetctl network create green --subnet 10.101.0.0/24 >/dev/null

# start_node i log args...: a managed node in namespace n$i (tap:vn0, udp underlay); LAST is
# its pid.
start_node() {
  local i=$1 log=$2
  shift 2
  ip netns exec "$P-n$i" "$NODE" --dev tap:vn0 --underlay "udp:10.200.0.$i:4789" \
    --log-level info "$@" >"$TMP/$log.log" 2>&1 &
  LAST=$!
  PIDS+=($LAST)
}
# Wait (at most $2 s) for pid $1 to end; its exit status in RC (255: still running).
wait_exit() {
  local pid=$1 limit=${2:-10} i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt $((limit * 20)) ]; then RC=255; return 1; fi
    sleep 0.05
  done
  wait "$pid"
  RC=$?
}
# A permanent refusal: the node ends within 10 s, exit 1, and its log has the line.
expect_refused() { # what log pattern
  local what=$1 log=$2 pattern=$3
  wait_exit "$LAST" 10
  check "$what: exit 1 within 10 s" test "$RC" -eq 1
  check "$what: says why" grep -Eq -e "$pattern" "$TMP/$log.log"
  grep -h "stopping:" "$TMP/$log.log" | sed 's/^/       /'
}
connected() { # network node
  vnetctl --json network status "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if any(n['node']=='$2' and n['connected'] for n in d['status']) else 1)" 2>/dev/null
}
wait_connected() { # network node (at most 15 s)
  local until=$(($(date +%s) + 15))
  until connected "$1" "$2"; do
    [ "$(date +%s)" -gt $until ] && { vnetctl network status "$1"; return 1; }
    sleep 0.1
  done
}
M=(--controller 10.200.0.100:7700)

# ---- bad input: exit 2, one line naming the option ----
expect2() { # what pattern args...
  local what=$1 pattern=$2
  shift 2
  "$NODE" "$@" >"$TMP/bad.out" 2>&1
  local rc=$?
  check "$what: exit 2" test $rc -eq 2
  check "$what: says '$pattern'" grep -qF -e "$pattern" "$TMP/bad.out"
}
expect2 "--dev without backend" "--dev vnet0: want tap:NAME, raw:IFNAME, xdp:IFNAME or kernel:NAME" \
  --dev vnet0 --underlay udp:10.0.0.1:4789 --vni 5 --mac 02:00:00:00:00:01
expect2 "--vni 0" "VNI 0 is reserved" \
  --dev tap:x --underlay udp:10.0.0.1:4789 --vni 0 --mac 02:00:00:00:00:01
expect2 "--controller without port" "bad --controller 'nohost'" \
  --controller nohost --network blue --name a --dev tap:x --underlay udp:10.0.0.1:4789
expect2 "--controller bad port" "bad --controller 'nohost:99999'" \
  --controller nohost:99999 --network blue --name a --dev tap:x --underlay udp:10.0.0.1:4789
expect2 "--controller bad name" "bad --controller 'no_host!:7700'" \
  --controller 'no_host!:7700' --network blue --name a --dev tap:x --underlay udp:10.0.0.1:4789

# ---- transient: unreachable and unresolvable controllers are retried, at warn level ----
# Names resolve through files ip netns exec puts over /etc in n1: a hosts file naming the
# controller, and a resolver on the namespace's loopback (none: an unknown name fails at once).
mkdir -p "/etc/netns/$P-n1"
trap 'rm -rf "/etc/netns/$P-n1"; cleanup' EXIT
echo "10.200.0.100 vnetctl-test-ctl" >"/etc/netns/$P-n1/hosts"
echo "nameserver 127.0.0.1" >"/etc/netns/$P-n1/resolv.conf"
start_node 1 unreach --controller 10.200.0.100:7799 --network blue --name x --log-level warn
check "unreachable controller: warned with the retry delay" \
  wait_log "$TMP/unreach.log" "controller 10.200.0.100:7799: unreachable \(connection refused\), retrying in [0-9.]+ s" 10
check "unreachable controller: still retrying (transient)" kill -0 "$LAST"
kill "$LAST"; wait "$LAST" 2>/dev/null
start_node 1 nohost --controller nohost.invalid:7700 --network blue --name x --log-level warn
check "unresolvable controller: warned with the retry delay" \
  wait_log "$TMP/nohost.log" "controller nohost.invalid:7700: cannot resolve nohost.invalid .*retrying in" 10
check "unresolvable controller: still retrying (transient)" kill -0 "$LAST"
kill "$LAST"; wait "$LAST" 2>/dev/null

# ---- enrolment, then restarts with the same command line ----
T1=$(token blue n1)
start_node 1 n1a --controller vnetctl-test-ctl:7700 --network blue --name n1 --key "$K/n1.key" --join "$T1"
check "n1 enrols with its token (controller by name)" wait_connected blue n1
check "the controller key is pinned beside the key file, mode 0600" \
  sh -c "test \$(stat -c %a $K/n1.key.controller) = 600 && grep -q '^vnet-pin-v1 ' $K/n1.key.controller"
kill "$LAST"; wait "$LAST" 2>/dev/null
start_node 1 n1b "${M[@]}" --network blue --name n1 --key "$K/n1.key" --join "$T1"
check "restart with the same --join: connected again" wait_connected blue n1
check "... and says the join is ignored" grep -q "already enrolled, ignoring --join" "$TMP/n1b.log"
kill "$LAST"; wait "$LAST" 2>/dev/null
start_node 1 n1c "${M[@]}" --network blue --name n1 --key "$K/n1.key"
check "restart with --key alone (pinned controller key): connected" wait_connected blue n1
kill "$LAST"; wait "$LAST" 2>/dev/null
# The pin file lost: the controller still recognises a repeated join by the registered key.
mv "$K/n1.key.controller" "$K/n1.pin.saved"
start_node 1 n1d "${M[@]}" --network blue --name n1 --key "$K/n1.key" --join "$T1"
check "restart with --join and no pin file: the controller accepts the key it has" wait_connected blue n1
kill "$LAST"; wait "$LAST" 2>/dev/null

# The default key in the state directory (no --key): enrolled with --join, then the same line
# without --join finds the key and the controller key pinned beside it.
T6=$(token blue n6)
VNET_STATE_DIR="$TMP/state" start_node 1 n6a "${M[@]}" --network blue --name n6 --join "$T6"
check "n6 enrols with the default key" wait_connected blue n6
check "... its controller key pinned beside it" test -s "$TMP/state/node-blue-n6.key.controller"
kill "$LAST"; wait "$LAST" 2>/dev/null
VNET_STATE_DIR="$TMP/state" start_node 1 n6b "${M[@]}" --network blue --name n6
check "n6 restarts without --join or --key" wait_connected blue n6
kill "$LAST"; wait "$LAST" 2>/dev/null

# ---- permanent refusals before the handshake (the controller's uniform answer) ----
"$NODE" --genkey "$K/n2.key" >/dev/null
start_node 2 unknown_net "${M[@]}" --network nowhere --name n2 --key "$K/n2.key" --controller-key "$CTLPUB"
expect_refused "unknown network" unknown_net "refused this node .*network 'nowhere' or node 'n2' unknown"
start_node 2 unknown_node "${M[@]}" --network blue --name ghost --key "$K/n2.key" --controller-key "$CTLPUB"
expect_refused "unknown node" unknown_node "refused this node .*node 'ghost' unknown"
start_node 2 used_token "${M[@]}" --network blue --name n1 --key "$K/n2.key" --join "$T1"
expect_refused "used token" used_token "refused this node .*join token used or expired"
start_node 2 wrong_ctl "${M[@]}" --network blue --name n1 --key "$K/n1.key" --controller-key "$(cat "$K/other.pub")"
expect_refused "wrong controller key" wrong_ctl "the controller's key does not match --controller-key / the pinned key"
check "a refused node is not left running" sh -c "! ip netns pids $P-n2 | grep -q ."

# ---- permanent refusals on the live session: revoke, remove, network deleted ----
start_node 1 n1e "${M[@]}" --network blue --name n1 --key "$K/n1.key"
check "n1 up again" wait_connected blue n1
check "node revoke" vnetctl node revoke blue n1
expect_refused "revoked key" n1e "says: key revoked"
T3=$(token blue n3)
start_node 3 n3a "${M[@]}" --network blue --name n3 --key "$K/n3.key" --join "$T3"
check "n3 enrols" wait_connected blue n3
check "node remove" vnetctl node remove blue n3
expect_refused "removed node" n3a "node removed from its network"
T2=$(token green g2)
start_node 2 g2 "${M[@]}" --network green --name g2 --key "$K/g2.key" --join "$T2"
check "g2 enrols in green" wait_connected green g2
wait_log "$TMP/g2.log" "up: vn0" 5
check "g2 has its overlay address" sh -c "ip -n $P-n2 addr show vn0 | grep -q 10.101.0."
check "network delete" vnetctl network delete green
expect_refused "deleted network" g2 "network deleted"
check "deleted network: g2's TAP is gone" sh -c "! ip -n $P-n2 link show vn0 >/dev/null 2>&1"

# ---- a pre-existing TAP is left as found ----
ip -n "$P-n3" tuntap add mode tap name pre0
ip -n "$P-n3" link set pre0 address 02:aa:bb:cc:dd:ee mtu 1300
ip -n "$P-n3" addr add 192.0.2.7/28 dev pre0
before=$(ip -n "$P-n3" -br addr show pre0 | awk '{print $2, $3, $4}'; ip -n "$P-n3" -o link show pre0 | grep -o 'mtu [0-9]*\|link/ether [0-9a-f:]*')
T4=$(token blue n4)
ip netns exec "$P-n3" "$NODE" "${M[@]}" --network blue --name n4 --key "$K/n4.key" --join "$T4" \
  --dev tap:pre0 --underlay udp:10.200.0.3:4789 >"$TMP/pre.log" 2>&1 &
LAST=$!
PIDS+=($LAST)
check "n4 on the pre-existing TAP is up" wait_log "$TMP/pre.log" "up: pre0" 10
check "... with the network's address on it" sh -c "ip -n $P-n3 addr show pre0 | grep -q 10.100.0."
kill "$LAST"; wait "$LAST" 2>/dev/null
after=$(ip -n "$P-n3" -br addr show pre0 | awk '{print $2, $3, $4}'; ip -n "$P-n3" -o link show pre0 | grep -o 'mtu [0-9]*\|link/ether [0-9a-f:]*')
check "the pre-existing TAP has its MAC, MTU, addresses and state back" test "$before" = "$after"
check "... and the network's address is gone" sh -c "! ip -n $P-n3 addr show pre0 | grep -q 10.100.0."

# ---- raw: underlay without local= takes the interface's primary address ----
T5=$(token blue n5)
ip netns exec "$P-n3" "$NODE" "${M[@]}" --network blue --name n5 --key "$K/n5.key" --join "$T5" \
  --dev tap:vn5 --underlay raw:eth0 --log-level info >"$TMP/raw.log" 2>&1 &
LAST=$!
PIDS+=($LAST)
check "raw:eth0 without local=: the chosen address is logged" \
  wait_log "$TMP/raw.log" "underlay raw:eth0: using 10.200.0.3:4789" 10
check "... and the node connects" wait_connected blue n5
kill "$LAST"; wait "$LAST" 2>/dev/null
ip -n "$P-n3" link add dummy9 type veth peer name dummy9p
ip netns exec "$P-n3" "$NODE" "${M[@]}" --network blue --name n5 --key "$K/n5.key" \
  --dev tap:vn5 --underlay raw:dummy9 >"$TMP/raw2.log" 2>&1
check "raw: underlay without an address: exit 1" test $? -eq 1
check "... naming the interface and the way out" grep -q "dummy9 does not exist or has no global IPv4 or IPv6 address; give raw:dummy9,local=IP" "$TMP/raw2.log"
finish
