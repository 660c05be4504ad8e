#!/usr/bin/env bash
# vnet-node's command line: bad arguments give a clear message and exit status 2, never a
# crash. Needs no root.
set -u
NODE="$1/examples/vnet-node"
FAILS=0
PASSES=0
expect() { # status pattern args...
  local want=$1 pattern=$2
  shift 2
  "$NODE" "$@" >/tmp/cli.$$ 2>&1
  local got=$?
  if [ $got -eq "$want" ] && grep -Eq -e "$pattern" /tmp/cli.$$; then
    echo "ok   - vnet-node $* -> $got"
    PASSES=$((PASSES + 1))
  else
    echo "FAIL - vnet-node $*: exit $got (want $want), output:"
    sed 's/^/       /' /tmp/cli.$$
    FAILS=$((FAILS + 1))
  fi
  rm -f /tmp/cli.$$
}
BASE=(--dev tap:x --underlay udp:10.0.0.1:4789 --mac 02:00:00:00:00:01)
expect 0 "usage: " --help
expect 0 "--fallback raw\|none" --help
expect 0 "vnet-node [0-9]" --version
expect 2 "--dev is required" --underlay udp:1.2.3.4:4789 --vni 1 --mac 02:00:00:00:00:01
expect 2 "--vni is required" "${BASE[@]}"
expect 2 "bad --vni '16777216'" "${BASE[@]}" --vni 16777216
expect 2 "bad --vni 'x'" "${BASE[@]}" --vni x
expect 2 "bad --mac" --dev tap:x --underlay udp:10.0.0.1:4789 --vni 1 --mac 01:02:03:04:05
expect 2 "multicast" --dev tap:x --underlay udp:10.0.0.1:4789 --vni 1 --mac 01:00:5e:00:00:01
expect 2 "bad --peer '300.1.1.1:5'" "${BASE[@]}" --vni 1 --peer 300.1.1.1:5
expect 2 "bad --peer '\[::1\]:99999'" "${BASE[@]}" --vni 1 --peer '[::1]:99999'
expect 2 "bad --static" "${BASE[@]}" --vni 1 --static 02:00:00:00:00:02
expect 2 "bad --arp" "${BASE[@]}" --vni 1 --arp 10.0.0.300=02:00:00:00:00:02
expect 2 "bad --ip" "${BASE[@]}" --vni 1 --ip 10.0.0.1
expect 2 "bad --mtu" "${BASE[@]}" --vni 1 --mtu 70000
expect 2 "unknown option '--bogus'" "${BASE[@]}" --vni 1 --bogus
expect 2 "needs a value" "${BASE[@]}" --vni
expect 2 "unexpected argument" "${BASE[@]}" --vni 1 extra
expect 2 "bad --underlay" --dev tap:x --underlay tcp:1.2.3.4:5 --vni 1 --mac 02:00:00:00:00:01
expect 2 "bad --fallback 'foo': want raw or none" "${BASE[@]}" --vni 1 --fallback foo
expect 2 "needs a value" "${BASE[@]}" --vni 1 --fallback
echo "$PASSES passed, $FAILS failed"
[ $FAILS -eq 0 ]
