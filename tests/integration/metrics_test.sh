#!/usr/bin/env bash
# --metrics end to end, in network namespaces this test creates: a controller and two managed
# nodes (a plain network, then a secure one), ping traffic between the nodes, /metrics scraped
# during the traffic. Checks: the text is valid format 0.0.4; per-peer counters move between two
# scrapes; the round-trip time the data planes measure is there and plausible; probes never
# reach a TAP; the controller shows 2 node sessions, converged nodes and request counters that
# grow after a vnetctl call; a bad path is a 404; a bad --metrics is a usage error (exit 2); a
# port in use fails the start (exit 1) before the database is made.
# Usage: metrics_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"
CTL="$BUILD/examples/vnet-controller"
VNETCTL="$BUILD/examples/vnetctl"
SCRAPE="$(dirname "$0")/metrics_scrape.py"
DB="$TMP/vnet.db"

underlay_init
underlay_host ctl 100
for i in 1 2; do underlay_host n$i $i; done

CTL_M=http://127.0.0.1:9100/metrics
NODE_M=http://127.0.0.1:9101/metrics

start_controller() { # extra args...
  ip netns exec "$P-ctl" "$CTL" --db "$DB" --listen 10.200.0.100:7700 --api 127.0.0.1:7701 \
    --metrics 127.0.0.1:9100 "$@" >>"$TMP/ctl.log" 2>&1 &
  CTL_PID=$!
  PIDS+=($CTL_PID)
  wait_listen ctl 7701 && wait_listen ctl 9100
}
vnetctl() { ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701 "$@"; }

start_node() { # i network [extra args...]
  local i=$1 net=$2
  shift 2
  ip netns exec "$P-n$i" "$NODE" --controller 10.200.0.100:7700 --network "$net" --name n$i \
    --dev tap:vn0 --underlay "udp:10.200.0.$i:4789" --metrics 127.0.0.1:9101 "$@" \
    >>"$TMP/n$i.log" 2>&1 &
  eval "NODE_PID_$i=$!"
  PIDS+=($!)
}

scrape() { # ns url out
  ip netns exec "$P-$1" python3 "$SCRAPE" get "$2" "$3"
}
val() { # file name label=value...
  python3 "$SCRAPE" val "$@"
}

# Wait until metric $3 (labels in the rest) scraped from ns $1 at url $2 satisfies the python
# expression $PRED on v (at most 20 s); the last scrape is left in $TMP/last.txt.
PRED=""
wait_metric() { # ns url name label=value...
  local ns=$1 url=$2 end=$((SECONDS + 20)) v
  shift 2
  while :; do
    if scrape "$ns" "$url" "$TMP/last.txt" >/dev/null && v=$(val "$TMP/last.txt" "$@" 2>/dev/null) &&
      python3 -c "import sys; v=float(sys.argv[1]); sys.exit(0 if ($PRED) else 1)" "$v"; then
      echo "$v"
      return 0
    fi
    if [ $SECONDS -ge $end ]; then
      echo "timed out: $* never satisfied '$PRED' (last: ${v:-absent})"
      return 1
    fi
    sleep 0.1
  done
}

# ---- usage errors and failed starts ----
"$NODE" --metrics 0.0.0.0:99999 --dev tap:x >"$TMP/u1.out" 2>&1
check "vnet-node --metrics 0.0.0.0:99999: exit 2" test $? -eq 2
check "vnet-node: the message names --metrics" grep -q -- "--metrics '0.0.0.0:99999'" "$TMP/u1.out"
"$CTL" --db "$TMP/never.db" --metrics 0.0.0.0:99999 >"$TMP/u2.out" 2>&1
check "vnet-controller --metrics 0.0.0.0:99999: exit 2" test $? -eq 2
check "vnet-controller: the message names --metrics" grep -q -- "--metrics '0.0.0.0:99999'" "$TMP/u2.out"
"$CTL" --db "$TMP/never.db" --metrics localhost:9100 >/dev/null 2>&1
check "vnet-controller --metrics localhost:9100 (a name): exit 2" test $? -eq 2

start_controller || exit 1
ip netns exec "$P-ctl" "$CTL" --db "$TMP/second.db" --listen 127.0.0.1:7800 --api none \
  --metrics 127.0.0.1:9100 >"$TMP/busy.out" 2>&1
check "a --metrics port in use: exit 1" test $? -eq 1
check "... saying it cannot listen" grep -q -- "--metrics 127.0.0.1:9100: cannot listen" "$TMP/busy.out"
check "... before the database was made" test ! -e "$TMP/second.db"

# ---- a plain network ----
vnetctl network create blue --vni 100 --subnet 10.100.0.0/24 >/dev/null
for i in 1 2; do vnetctl node add blue n$i >/dev/null; done
for i in 1 2; do start_node $i blue; done
for i in 1 2; do wait_listen n$i 9101 || exit 1; done

PRED="v == 2"
check "controller: 2 node sessions" wait_metric ctl $CTL_M vnet_controller_sessions kind=node state=up
PRED="v == 0"
for i in 1 2; do
  check "controller: n$i converged (lag 0)" wait_metric ctl $CTL_M \
    vnet_controller_node_convergence_lag network=blue node=n$i
done
check "controller: the text is valid format 0.0.4" python3 "$SCRAPE" check "$TMP/last.txt"
scrape ctl $CTL_M "$TMP/c0.txt"
r0=$(val "$TMP/c0.txt" vnet_controller_requests_total type=network.list result=ok)
vnetctl network list >/dev/null
PRED="v == $r0 + 1"
check "controller: network.list requests grow by one after a vnetctl call" wait_metric ctl $CTL_M \
  vnet_controller_requests_total type=network.list result=ok
check "controller: store durations observed" sh -c "python3 '$SCRAPE' val '$TMP/last.txt' vnet_controller_store_duration_seconds_count call=request | grep -qv '^0$'"
check "controller: 404 for another path" sh -c "[ \"\$(ip netns exec $P-ctl python3 '$SCRAPE' status http://127.0.0.1:9100/foo)\" = 404 ]"
check "node: 404 for another path" sh -c "[ \"\$(ip netns exec $P-n1 python3 '$SCRAPE' status http://127.0.0.1:9101/)\" = 404 ]"

PRED="v == 1"
check "node: controller session up" wait_metric n1 $NODE_M vnet_node_controller_connected
check "node: the text is valid format 0.0.4" python3 "$SCRAPE" check "$TMP/last.txt"
check "node: drops by reason" val "$TMP/last.txt" vnet_node_drops_total reason=unknown_peer
check "node: decap drops by reason" val "$TMP/last.txt" vnet_node_decap_drops_total reason=bad_vxlan_flags

# Probes must never reach a TAP: capture n2's TAP from before the first probe is answered.
capture_start n2 vn0 "$TMP/probes.pcap" ether proto 0x88b5 || exit 1
scrape n2 $NODE_M "$TMP/a0.txt"
a0=$(val "$TMP/a0.txt" vnet_node_peer_probes_answered_total peer=10.200.0.1:4789)

# Traffic, scraped twice while it flows.
ip netns exec "$P-n1" ping -q -c 600 -i 0.01 10.100.0.2 >"$TMP/ping.out" 2>&1 &
PING=$!
PIDS+=($PING)
PRED="v > 20"
check "node: peer tx counter moves with the traffic" wait_metric n1 $NODE_M \
  vnet_node_peer_packets_total peer=10.200.0.2:4789 direction=tx
cp "$TMP/last.txt" "$TMP/s1.txt"
tx1=$(val "$TMP/s1.txt" vnet_node_peer_packets_total peer=10.200.0.2:4789 direction=tx)
rx1=$(val "$TMP/s1.txt" vnet_node_peer_packets_total peer=10.200.0.2:4789 direction=rx)
b1=$(val "$TMP/s1.txt" vnet_node_peer_bytes_total peer=10.200.0.2:4789 direction=tx)
PRED="v > $tx1 + 20"
check "node: peer tx packets grow between two scrapes" wait_metric n1 $NODE_M \
  vnet_node_peer_packets_total peer=10.200.0.2:4789 direction=tx
check "node: peer rx packets grow too" sh -c "[ \$(python3 '$SCRAPE' val '$TMP/last.txt' vnet_node_peer_packets_total peer=10.200.0.2:4789 direction=rx) -gt $rx1 ]"
check "node: peer tx bytes grow too" sh -c "[ \$(python3 '$SCRAPE' val '$TMP/last.txt' vnet_node_peer_bytes_total peer=10.200.0.2:4789 direction=tx) -gt $b1 ]"
check "node: port counters present" val "$TMP/last.txt" vnet_node_port_packets_total port=underlay direction=tx
PRED="v > 0 and v < 1"
check "node: peer RTT from the data plane, 0 < rtt < 1 s" wait_metric n1 $NODE_M \
  vnet_node_peer_rtt_seconds peer=10.200.0.2:4789
PRED="v >= $a0 + 1"
check "n2 answered n1's probes while capturing" wait_metric n2 $NODE_M \
  vnet_node_peer_probes_answered_total peer=10.200.0.1:4789
capture_stop "$CAP_PID"
check "no probe reached n2's TAP" sh -c "[ \$(tcpdump -r '$TMP/probes.pcap' 2>/dev/null | wc -l) -eq 0 ]"
wait $PING
check "the ping went through" grep -q " 0% packet loss" "$TMP/ping.out"
check "node: the table holds both nodes" sh -c "[ \$(python3 '$SCRAPE' val '$TMP/last.txt' vnet_node_table_entries) -ge 2 ]"

# ---- a secure network: the probes are sealed; key ages appear ----
kill "$NODE_PID_1" "$NODE_PID_2"
wait "$NODE_PID_1" "$NODE_PID_2" 2>/dev/null
kill "$CTL_PID"
wait "$CTL_PID" 2>/dev/null
ip netns exec "$P-ctl" "$CTL" --genkey "$TMP/ctl.key" >"$TMP/ctl.pub"
start_controller --key "$TMP/ctl.key" || exit 1
TOKEN_FILE="$DB.admin-token"
vnetctl_k() { ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701 \
  --controller-key "$(cat "$TMP/ctl.pub")" --token-file "$TOKEN_FILE" "$@"; }
vnetctl_k network create green --vni 200 --subnet 10.101.0.0/24 --mode secure >/dev/null ||
  { echo "cannot create the secure network"; cat "$TMP/ctl.log"; exit 1; }
for i in 1 2; do
  vnetctl_k --json node add green n$i >"$TMP/add$i.json"
  tok=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['join_token'] or '')" "$TMP/add$i.json")
  start_node $i green --key "$TMP/n$i.key" --join "$tok"
done
for i in 1 2; do wait_listen n$i 9101 || { cat "$TMP/n$i.log"; exit 1; }; done
ip netns exec "$P-n1" ping -q -c 400 -i 0.01 10.101.0.2 >"$TMP/ping2.out" 2>&1 &
PING=$!
PIDS+=($PING)
PRED="v > 0 and v < 1"
check "secure: peer RTT from sealed probes, 0 < rtt < 1 s" wait_metric n1 $NODE_M \
  vnet_node_peer_rtt_seconds peer=10.200.0.2:4789
PRED="v >= 0 and v < 3600"
check "secure: transmit key age" wait_metric n1 $NODE_M vnet_node_peer_tx_key_age_seconds \
  peer=10.200.0.2:4789
PRED="v > 20"
check "secure: peer rx counter moves" wait_metric n1 $NODE_M vnet_node_peer_packets_total \
  peer=10.200.0.2:4789 direction=rx
check "secure: no probe dropped as a forgery" sh -c "[ \$(python3 '$SCRAPE' val '$TMP/last.txt' vnet_node_drops_total reason=auth) -eq 0 ]"
wait $PING

finish
