#!/usr/bin/env bash
# Configuration files, the state directory, SIGHUP and log formats, in network namespaces this
# test creates: a controller and nodes started from --config files, vnetctl from vnetctl.conf,
# a reload that changes the log level live (same process), bad files (FILE:LINE, exit 2).
# Usage: config_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"
CTL="$BUILD/examples/vnet-controller"
VNETCTL="$BUILD/examples/vnetctl"
export VNET_STATE_DIR="$TMP/state" # made by the controller: it does not exist yet
unset VNETCTL_CONFIG VNET_CONTROLLER VNET_CONTROLLER_KEY VNET_TOKEN VNET_TOKEN_FILE JOURNAL_STREAM

underlay_init
underlay_host ctl 100
for i in 1 2 3 4; do underlay_host n$i $i; done

alive() { kill -0 "$1" 2>/dev/null; }
stamped() { grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z vnet ' "$1"; }

# ---- bad files: FILE:LINE and the key, exit 2; an unreadable file: exit 1 ----
printf '# a node\ndev = tap:vx0\nundrlay = udp:10.200.0.1:4789\n' >"$TMP/bad.conf"
"$NODE" --config "$TMP/bad.conf" >"$TMP/bad.out" 2>&1
check "vnet-node: unknown option in the file: exit 2" test $? -eq 2
check "... names file:line and the key" grep -q "bad.conf:3: unknown option 'undrlay'" "$TMP/bad.out"
printf '[controller]\nkeepalive =\n' >"$TMP/bad2.conf"
"$CTL" --config "$TMP/bad2.conf" >"$TMP/bad2.out" 2>&1
check "vnet-controller: a value missing: exit 2" test $? -eq 2
check "... names file:line" grep -q "bad2.conf:2: 'keepalive' needs a value" "$TMP/bad2.out"
printf 'learn = maybe\n' >"$TMP/bad3.conf"
"$NODE" --config "$TMP/bad3.conf" >"$TMP/bad3.out" 2>&1
check "a flag that is not true/false: exit 2, file:line" sh -c "test $? -eq 2 && grep -q 'bad3.conf:1: .learn. is a flag' $TMP/bad3.out"
printf 'genkey = /tmp/x\n' >"$TMP/bad4.conf"
"$CTL" --config "$TMP/bad4.conf" >"$TMP/bad4.out" 2>&1
check "command-line-only options refused in a file: exit 2" sh -c "test $? -eq 2 && grep -q 'bad4.conf:1: .genkey. is for the command line only' $TMP/bad4.out"
printf 'listen = 10.200.0.100:7700\n\nkeepalive = 1\n' >"$TMP/bad6.conf"
"$CTL" --config "$TMP/bad6.conf" >"$TMP/bad6.out" 2>&1
check "a bad value from the file: exit 2, its file:line named" sh -c "test $? -eq 2 && grep -q \"bad6.conf:3: bad --keepalive '1'\" $TMP/bad6.out"
"$CTL" --config "$TMP/none.conf" >"$TMP/bad5.out" 2>&1
check "a missing config file: exit 1, says so" sh -c "test $? -eq 1 && grep -q 'none.conf: No such file' $TMP/bad5.out"
check "no state directory made by failed starts" test ! -e "$VNET_STATE_DIR"

# ---- --genkey without a path: the state directory ----
VNET_STATE_DIR="$TMP/keys" "$CTL" --genkey >"$TMP/genkey.out" 2>&1
check "vnet-controller --genkey: writes controller.key in the state dir" test -s "$TMP/keys/controller.key"
check "... the directory is 0700" test "$(stat -c %a "$TMP/keys")" = 700
check "... the key is 0600" test "$(stat -c %a "$TMP/keys/controller.key")" = 600
VNET_STATE_DIR="$TMP/keys" "$NODE" --genkey --network blue --name n9 >/dev/null 2>&1
check "vnet-node --genkey --network --name: node-blue-n9.key" test -s "$TMP/keys/node-blue-n9.key"

# ---- the controller from a config file, no --db: the default state directory ----
cat >"$TMP/ctl.conf" <<CONF
# vnet-controller
[controller]
listen = 10.200.0.100:7700
api = 127.0.0.1:7701   ; subscribers
keepalive = 500
log-level = warn
CONF
ip netns exec "$P-ctl" "$CTL" --config "$TMP/ctl.conf" >"$TMP/ctl.log" 2>&1 &
CTL_PID=$!
PIDS+=($CTL_PID)
check "controller from its config file listens on the file's --api" wait_listen ctl 7701
check "... and on the file's --listen" wait_listen ctl 7700
check "state directory made, mode 0700" test "$(stat -c %a "$VNET_STATE_DIR" 2>/dev/null)" = 700
check "... holding controller.db" test -s "$VNET_STATE_DIR/controller.db"
check "log-level = warn from the file: no 'up:' line at info" sh -c "! grep -q 'up: database' $TMP/ctl.log"
check "... its warnings are timestamped (stderr is not the journal)" stamped "$TMP/ctl.log"

# ---- vnetctl from vnetctl.conf ----
mkdir -p "$TMP/home/.config/vnet"
printf 'controller = 127.0.0.1:7701\ntimeout = 5000\n' >"$TMP/home/.config/vnet/vnetctl.conf"
ctl_home() { ip netns exec "$P-ctl" env HOME="$TMP/home" XDG_CONFIG_HOME= "$VNETCTL" "$@"; }
check "vnetctl takes the controller from ~/.config/vnet/vnetctl.conf" ctl_home network create blue --subnet 10.100.0.0/24
ctl_home --json network list >"$TMP/list.json" 2>&1
check "... and lists it" grep -q '"blue"' "$TMP/list.json"
VNET_CONTROLLER=127.0.0.1:9 ctl_home network list >/dev/null 2>&1
check "\$VNET_CONTROLLER wins over the file (an unreachable one: exit 1)" test $? -eq 1
VNET_CONTROLLER=127.0.0.1:9 ctl_home --controller 127.0.0.1:7701 network list >/dev/null 2>&1
check "the command line wins over the environment" test $? -eq 0
printf 'controllr = 127.0.0.1:7701\n' >"$TMP/ctl-bad.conf"
ip netns exec "$P-ctl" env VNETCTL_CONFIG="$TMP/ctl-bad.conf" "$VNETCTL" network list >"$TMP/ctlbad.out" 2>&1
check "a bad vnetctl.conf: exit 2, file:line" sh -c "test $? -eq 2 && grep -q 'ctl-bad.conf:1: unknown option .controllr.' $TMP/ctlbad.out"
printf 'controller = 127.0.0.1:7701\ntoken = vnetapi1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n' >"$TMP/ctl-tok.conf"
chmod 644 "$TMP/ctl-tok.conf"
ip netns exec "$P-ctl" env VNETCTL_CONFIG="$TMP/ctl-tok.conf" "$VNETCTL" network list >"$TMP/ctltok.out" 2>&1
check "a token in a file others may read is refused" sh -c "test $? -eq 1 && grep -q 'others may read it' $TMP/ctltok.out"
for i in 1 2; do ctl_home node add blue n$i >/dev/null; done

# ---- a node from its config file; SIGHUP changes the log level live ----
cat >"$TMP/n1.conf" <<CONF
controller = 10.200.0.100:7700
network = blue
name = n1
dev = tap:vn0
underlay = udp:10.200.0.1:4789
CONF
ip netns exec "$P-n1" "$NODE" --config "$TMP/n1.conf" >"$TMP/n1.log" 2>&1 &
N1=$!
PIDS+=($N1)
check "node from its config file comes up (info is the default level)" wait_log "$TMP/n1.log" "up: vn0 in network blue" 10
check "... its lines are timestamped" stamped "$TMP/n1.log"
echo "log-level = debug" >>"$TMP/n1.conf"
sed -i 's/^underlay = .*/underlay = udp:10.200.0.1:4790/' "$TMP/n1.conf"
kill -HUP $N1
check "node SIGHUP: reload logged with the new level" wait_log "$TMP/n1.log" "reload: read .*n1.conf: log level debug" 5
check "... an option needing a restart is named" grep -q "reload: --underlay changed: takes effect at the next restart" "$TMP/n1.log"
check "... the same process keeps running" alive $N1
echo "mtu = 9999999" >>"$TMP/n1.conf" # only checked at a restart
echo "log-level = loud" >>"$TMP/n1.conf"
kill -HUP $N1
check "a bad value on reload: nothing changed, said so" wait_log "$TMP/n1.log" "reload: bad --log-level 'loud': nothing changed" 5
check "... still running" alive $N1

# ---- the controller: SIGHUP to info and json ----
sed -i 's/^log-level = warn/log-level = info/; s/^keepalive = 500/keepalive = 700/; s/^listen = .*/listen = 10.200.0.100:7709/' "$TMP/ctl.conf"
echo "log-format = json" >>"$TMP/ctl.conf"
kill -HUP $CTL_PID
check "controller SIGHUP: the reload line (info, json) appears" wait_log "$TMP/ctl.log" '"msg":"reload: read .*ctl.conf: log level info, format json, keepalive 700 ms; 1 change needs a restart"' 5
check "... --listen named as needing a restart" grep -q 'reload: --listen changed: takes effect at the next restart' "$TMP/ctl.log"
check "... the same process keeps running" alive $CTL_PID
check "... every json line parses, with ts, level, module, msg" python3 -c "
import json, sys
n = 0
for line in open(sys.argv[1]):
    if line.startswith('{'):
        d = json.loads(line)
        assert set(d) == {'ts', 'level', 'module', 'msg'}, d
        n += 1
assert n >= 2, n
" "$TMP/ctl.log"

# ---- static mode: peers change live; the command line wins over the file ----
cat >"$TMP/n3.conf" <<CONF
dev = tap:vs0
underlay = udp:10.200.0.3:4789
vni = 77
mac = 02:00:00:00:00:03
ip = 10.77.0.3/24
peer = 10.200.0.4:4789
log-level = error
CONF
ip netns exec "$P-n3" "$NODE" --config "$TMP/n3.conf" --log-level info >"$TMP/n3.log" 2>&1 &
N3=$!
PIDS+=($N3)
check "static node: --log-level on the command line wins over the file" wait_log "$TMP/n3.log" "up: vs0 .* 1 peers" 10
ARP_MAC=02:00:00:00:00:09
in_ns n3 ping -c 1 -W 1 10.77.0.9 >/dev/null 2>&1
check "before the reload, nobody answers ARP for 10.77.0.9" sh -c "! ip -n $P-n3 neigh show 10.77.0.9 | grep -q $ARP_MAC"
echo "peer = 10.200.0.1:4789" >>"$TMP/n3.conf"
echo "arp = 10.77.0.9=$ARP_MAC" >>"$TMP/n3.conf"
sed -i 's/^log-level = error/log-level = info/' "$TMP/n3.conf"
kill -HUP $N3
check "static node SIGHUP: the new peer list applies" wait_log "$TMP/n3.log" "reload: 2 peers now" 5
check "... and the new --arp entry" wait_log "$TMP/n3.log" "reload: 1 static and arp entries now" 5
arp_answered() {
  local i=0
  ip -n "$P-n3" neigh flush dev vs0 2>/dev/null
  until ip -n "$P-n3" neigh show 10.77.0.9 | grep -q "$ARP_MAC"; do
    i=$((i + 1)); [ $i -gt 20 ] && { ip -n "$P-n3" neigh show; ip -n "$P-n3" addr show vs0; kill -USR1 $N3; sleep 0.2; tail -5 "$TMP/n3.log"; return 1; }
    in_ns n3 ping -c 1 -W 1 10.77.0.9 >/dev/null 2>&1
  done
  return 0 # (until's status is the last ping's)
}
check "... which the node answers ARP with" arp_answered
check "... still running" alive $N3

# ---- without --config, SIGHUP only says so ----
ip netns exec "$P-n4" "$NODE" --dev tap:vs0 --underlay udp:10.200.0.4:4789 --vni 77 \
  --mac 02:00:00:00:00:04 --ip 10.77.0.4/24 --peer 10.200.0.3:4789 >"$TMP/n4.log" 2>&1 &
N4=$!
PIDS+=($N4)
wait_log "$TMP/n4.log" "up: vs0" 10 >/dev/null
kill -HUP $N4
check "no --config: SIGHUP logs 'no config file to reload'" wait_log "$TMP/n4.log" "no config file to reload" 5
check "... and does not kill it" alive $N4
check "the static node from its file reaches the other" in_ns n3 ping -c 2 -i 0.2 -W 2 10.77.0.4

# ---- a clean stop still works ----
kill -TERM $CTL_PID
wait $CTL_PID
check "controller SIGTERM: exit 0" test $? -eq 0
finish
