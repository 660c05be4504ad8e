#!/usr/bin/env bash
# `vnetctl network status` end to end, in network namespaces this test creates: a controller
# with a key (encrypted sessions), three nodes on a bridged underlay, traffic between two of
# them. Nodes report every second (--report-interval 1000); the status shows who is connected
# and converged, bytes moving, who reaches whom, and a killed node as disconnected with the
# time it was last seen. --json carries every column of the table.
# Usage: status_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
vnet_programs

underlay_init
underlay_host ctl 100
for i in 1 2 3; do underlay_host n$i $i; done

for i in 1 2 3; do "$NODE" --genkey "$K/n$i.key" >"$K/n$i.pub" || exit 1; done
keyed_controller --keepalive 500 --report-interval 1000 || exit 1
vnetctl network create blue --subnet 10.100.0.0/24 >/dev/null || exit 1
for i in 1 2 3; do vnetctl node add blue n$i --pubkey "$(cat "$K/n$i.pub")" >/dev/null || exit 1; done

for i in 1 2 3; do
  ip netns exec "$P-n$i" "$NODE" --controller 10.200.0.100:7700 --network blue --name n$i \
    --key "$K/n$i.key" --controller-key "$VNET_CONTROLLER_KEY" \
    --dev tap:vn0 --underlay "udp:10.200.0.$i:4789" >>"$TMP/n$i.log" 2>&1 &
  eval "NODE_PID_$i=$!"
  PIDS+=($!)
done

# Poll `network status --json` until the Python expression $1 (over d, the parsed status, and
# n, its entries by node name) holds, at most $2 seconds; print the last status otherwise.
wait_status() { # expr [seconds]
  local expr=$1 deadline=$(($(date +%s) + ${2:-20}))
  while :; do
    vnetctl --json network status blue >"$TMP/st.json" 2>"$TMP/st.err"
    if python3 -c "
import json, sys
d = json.load(open('$TMP/st.json'))
n = {e['node']: e for e in d['status']}
sys.exit(0 if ($expr) else 1)" 2>/dev/null; then
      return 0
    fi
    if [ "$(date +%s)" -ge $deadline ]; then
      echo "status never satisfied: $expr"
      cat "$TMP/st.json" "$TMP/st.err"
      return 1
    fi
    sleep 0.1
  done
}
# The peer entry of node $1 for peer $2 in the Python expressions.
reach() { echo "[p['reach'] for p in (n['$1']['reaches'] or []) if p['peer'] == '$2']"; }

check "three nodes connected and converged" \
  wait_status "d['connected'] == 3 and d['converged'] == 3 and all(e['converged'] for e in d['status'])"
check "every node has sent a report" wait_status "all(e['report'] is not None for e in d['status'])"

# Traffic between n1 and n2 only.
check "ping n1 -> n2" in_ns n1 ping -c 3 -i 0.2 -W 2 10.100.0.2
check "n1 reaches n2 and n2 reaches n1 (direct)" \
  wait_status "$(reach n1 n2) == ['direct'] and $(reach n2 n1) == ['direct']"

# n1 and n3 exchange no traffic: the data planes' probes (every 2 s) still show the path, with
# a round trip measured by them.
rtt() { echo "[p['rtt_us'] for p in (n['$1']['reaches'] or []) if p['peer'] == '$2']"; }
check "idle n1 and n3 reach each other by the data plane's probes, with a round trip" \
  wait_status "$(reach n1 n3) == ['direct'] and $(reach n3 n1) == ['direct'] and all(r and 0 < r < 1000000 for r in $(rtt n1 n3))"

vnetctl --json network status blue >"$TMP/before.json"
check "--json parses and carries every column, for every node" python3 -c "
import json, sys
d = json.load(open('$TMP/before.json'))
cols = ['node', 'id', 'connected', 'connected_since_ms', 'acked', 'converged', 'last_seen_ms',
        'phys', 'observed', 'session_from', 'bytes_in', 'bytes_out', 'drops', 'reaches', 'report']
assert {'network', 'revision', 'nodes', 'connected', 'converged', 'status'} <= set(d), d.keys()
assert len(d['status']) == 3
for e in d['status']:
    missing = [c for c in cols if c not in e]
    assert not missing, (e['node'], missing)
    r = e['report']
    for c in ['age_ms', 'virtual', 'underlay', 'drops', 'drop_reasons', 'table_size']:
        assert c in r, (e['node'], c)
    for p in e['reaches']:
        for c in ['peer', 'node_id', 'endpoint', 'rx_packets', 'rx_bytes', 'tx_packets',
                  'tx_bytes', 'last_rx_ms', 'reach', 'rtt_us']:
            assert c in p, (e['node'], c)
"
check "the observed endpoints and session addresses are the nodes' underlay addresses" python3 -c "
import json
d = json.load(open('$TMP/before.json'))
for e in d['status']:
    i = e['node'][1:]
    assert e['observed'] == '10.200.0.%s:4789' % i, e
    assert e['session_from'].startswith('10.200.0.%s:' % i), e
    assert e['connected_since_ms'] and e['last_seen_ms'], e
"
check "n1's report names its two peers" python3 -c "
import json
d = json.load(open('$TMP/before.json'))
n1 = [e for e in d['status'] if e['node'] == 'n1'][0]
assert sorted(p['peer'] for p in n1['reaches']) == ['n2', 'n3'], n1['reaches']
assert n1['report']['table_size'] >= 2, n1['report']
"

# Bytes move between two calls: more traffic from n1 to n2, then n1's bytes out and n2's
# bytes in pass what the first call showed.
B1_OUT=$(python3 -c "import json; print([e for e in json.load(open('$TMP/before.json'))['status'] if e['node']=='n1'][0]['bytes_out'])")
B2_IN=$(python3 -c "import json; print([e for e in json.load(open('$TMP/before.json'))['status'] if e['node']=='n2'][0]['bytes_in'])")
check "more traffic n1 -> n2" in_ns n1 ping -c 5 -i 0.2 -s 1000 -W 2 10.100.0.2
check "bytes moved between two calls (n1 out, n2 in, by at least 5000)" \
  wait_status "n['n1']['bytes_out'] >= $B1_OUT + 5000 and n['n2']['bytes_in'] >= $B2_IN + 5000"

# The table, polled until it matches /$1/ (at most 10 s): a peer counts as reached for three
# report intervals after its last packet, so traffic goes first.
wait_table() { # pattern
  local deadline=$(($(date +%s) + 10))
  until vnetctl network status blue >"$TMP/table.txt" 2>&1 && grep -Eq "$1" "$TMP/table.txt"; do
    [ "$(date +%s)" -ge $deadline ] && { cat "$TMP/table.txt"; return 1; }
    sleep 0.2
  done
}
in_ns n1 ping -c 3 -i 0.2 -W 2 10.100.0.2 >/dev/null
check "the table: n1 connected, converged, seen now, reaching n2 directly" \
  wait_table "^n1 +yes +yes +now .*n2\(direct\)"
cat "$TMP/table.txt"
check "the table has the IN, OUT, DROPS and REACHES columns" \
  grep -Eq "^NODE +CONNECTED +CONVERGED +LAST-SEEN +OBSERVED +IN +OUT +DROPS +REACHES" "$TMP/table.txt"

# n2 goes away: it shows disconnected with the time it was last seen, and n1 stops reaching
# it (nothing came back for three report intervals).
T_KILL=$(date +%s%3N)
kill -9 $NODE_PID_2
wait $NODE_PID_2 2>/dev/null
check "killed n2 shows disconnected with a last-seen time" \
  wait_status "not n['n2']['connected'] and n['n2']['last_seen_ms'] and n['n2']['last_seen_ms'] <= $T_KILL + 1000 and n['n2']['last_seen_ms'] >= $T_KILL - 5000 and d['connected'] == 2" 10
check "... and its last report stays" wait_status "n['n2']['report'] is not None" 2
check "n1 no longer reaches n2 (none)" \
  wait_status "$(reach n1 n2) == ['none']" 15
vnetctl network status blue >"$TMP/table2.txt"
check "the table shows n2 disconnected, seen seconds ago" \
  grep -Eq "^n2 +no +(yes|no) +([0-9]+s ago|now) " "$TMP/table2.txt"
check "no report was dropped as malformed" sh -c "! grep -q 'report dropped' $TMP/ctl.log"

kill $CTL_PID
wait $CTL_PID
check "controller exits 0 on SIGTERM" test $? -eq 0
finish
