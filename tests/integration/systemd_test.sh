#!/usr/bin/env bash
# vnet-controller and vnet-node as systemd services (issue 13), in network namespaces this test
# creates:
#   - the installed units (build/dist/*.service) pass `systemd-analyze verify` (when installed);
#   - READY=1 comes only once the controller serves (both listeners accept connections) and
#     once a node is up (managed: not while its controller is down, then with its TAP address
#     set; static: its TAP up), STATUS= lines follow the state, WATCHDOG=1 pings come at half
#     of $WATCHDOG_USEC, STOPPING=1 on SIGTERM and a clean exit;
#   - the nodes (managed and static) run as an unprivileged user with only the capabilities
#     the unit grants (CAP_NET_ADMIN, CAP_NET_RAW), as vnet-node@.service runs them (setpriv).
# With systemd as PID 1 the programs run under a real `systemd-run -p Type=notify`; without it
# (containers) this test plays the manager: it listens on the $NOTIFY_SOCKET it gives them
# (notify_listen.py).
# Usage: systemd_test.sh SOURCE_DIR BUILD_DIR
set -u
SRC=$1
BUILD=$2
. "$(dirname "$0")/lib.sh"
need_root
NODE="$BUILD/examples/vnet-node"
CTL="$BUILD/examples/vnet-controller"
VNETCTL="$BUILD/examples/vnetctl"
LISTENER="$SRC/tests/integration/notify_listen.py"
grep -q 'VNET_HAVE_SYSTEMD=1' "$BUILD/build.ninja" ||
  { echo "SKIP: built without libsystemd (-Dsystemd=disabled)"; exit 77; }

# ---- the unit files ----
UNITS="$TMP/units"
mkdir -p "$UNITS"
for u in vnet-controller.service vnet-node@.service; do
  check "$u: Type=notify, watchdog, no restart loop on exit 1 or 2" \
    grep -qzE 'Type=notify.*WatchdogSec=[0-9]+.*Restart=on-failure.*RestartPreventExitStatus=1 2' \
    "$BUILD/dist/$u"
  # Verify a copy that runs the programs of this build (the installed paths may not exist yet).
  sed "s#^ExecStart=[^ ]*/#ExecStart=$BUILD/examples/#" "$BUILD/dist/$u" >"$UNITS/$u"
done
check "vnet-node@.service reads /etc/vnet/node-%i.conf" \
  grep -q -- '--config /etc/vnet/node-%i.conf' "$BUILD/dist/vnet-node@.service"
for d in AmbientCapabilities CapabilityBoundingSet; do
  check "vnet-node@.service: $d=CAP_NET_ADMIN CAP_NET_RAW (only)" \
    grep -qx "$d=CAP_NET_ADMIN CAP_NET_RAW" "$BUILD/dist/vnet-node@.service"
done
if command -v systemd-analyze >/dev/null; then
  cp "$UNITS/vnet-node@.service" "$UNITS/vnet-node@t1.service"
  # --man=no: the Documentation= man pages are installed by `meson install`, not here.
  # Clean: exit 0 and not a word (unknown keys, bad values are only warnings).
  verify() {
    local rc=0
    SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$@" >"$TMP/verify.out" 2>&1 || rc=$?
    cat "$TMP/verify.out"
    [ $rc -eq 0 ] && ! grep -q . "$TMP/verify.out"
  }
  check "systemd-analyze verify vnet-controller.service" verify "$UNITS/vnet-controller.service"
  check "systemd-analyze verify vnet-node@.service (an instance)" verify "$UNITS/vnet-node@t1.service"
else
  echo "skip - systemd-analyze not installed: unit files not verified"
fi

# ---- the programs ----
underlay_init
underlay_host ctl 100
underlay_host n1 1
underlay_host n2 2
chmod 0711 "$TMP" # the unprivileged node below reaches its notify socket in there
SOCKS="$TMP/notify"
mkdir -m 0777 "$SOCKS"

# Wait until file $1 has at least $3 lines matching $2 (grep -E), at most $4 seconds.
wait_count() {
  local i=0
  until [ "$(grep -Ec "$2" "$1" 2>/dev/null)" -ge "$3" ]; do
    i=$((i + 1))
    [ $i -gt $(($4 * 20)) ] && { echo "fewer than $3 /$2/ in $1:"; cat "$1"; return 1; }
    sleep 0.05
  done
}

# The median gap between the WATCHDOG=1 pings in notify log $1 is within [$2, $3] seconds.
ping_gap() {
  python3 - "$@" <<'PY'
import statistics, sys
log, lo, hi = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
t = [float(l.split()[0]) for l in open(log) if l.rstrip().endswith(" WATCHDOG=1")]
gaps = [b - a for a, b in zip(t, t[1:])]
med = statistics.median(gaps) if gaps else -1
print(f"{len(t)} pings, median gap {med:.3f} s, wanted {lo}..{hi}")
sys.exit(0 if lo <= med <= hi else 1)
PY
}

# Listen as the service manager on $SOCKS/$1.sock, logging to $SOCKS/$1.log; $2 is run when
# READY=1 arrives (notify_listen.py).
listen_notify() {
  python3 "$LISTENER" "$SOCKS/$1.sock" "$SOCKS/$1.log" "$2" &
  PIDS+=($!)
  wait_log "$SOCKS/$1.log" ' LISTENING$|^LISTENING$' 10
}

# Everything sent to $SOCKS/$1.sock so far is in its log: datagrams are read in order, so once
# a marker sent now is logged, the earlier ones are too.
notify_sync() {
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"SYNC", sys.argv[1])' "$SOCKS/$1.sock"
  wait_log "$SOCKS/$1.log" ' SYNC$' 10
}

# The probe notify_listen.py ran on READY=1 (logged in $1) succeeded.
probe_ok() {
  wait_log "$1" '^PROBE rc=' 10 && grep -q '^PROBE rc=0$' "$1" || { cat "$1"; return 1; }
}
vnetctl() { ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701 "$@"; }
CTL_PROBE="ip netns exec $P-ctl ss -Hltn 'sport = :7700' | grep -q LISTEN && ip netns exec $P-ctl ss -Hltn 'sport = :7701' | grep -q LISTEN"
N1_PROBE="ip -n $P-n1 -4 addr show dev vn0 | grep -q 'inet 10.100.0.1/'"

# Exit status of pid $1, waiting for it at most $2 seconds after SIGTERM.
term_status() {
  local pid=$1 i=0
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt $(($2 * 20)) ] && { echo "pid $pid still runs"; return 255; }
    sleep 0.05
  done
  wait "$pid"
}

if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then
  # ---- under systemd (PID 1): real transient units ----
  UNITS_STARTED=()
  svc_cleanup() {
    for u in "${UNITS_STARTED[@]}"; do systemctl stop "$u" 2>/dev/null; systemctl reset-failed "$u" 2>/dev/null; done
    cleanup
  }
  trap svc_cleanup EXIT
  prop() { systemctl show -P "$2" "$1"; }
  # run_unit NAME LOG [--no-block] -- cmd...: a Type=notify unit with a 4 s watchdog.
  run_unit() {
    local name=$1 log=$2 block=()
    shift 2
    [ "$1" = --no-block ] && { block=(--no-block); shift; }
    [ "$1" = -- ] && shift
    systemctl reset-failed "$name" 2>/dev/null
    UNITS_STARTED+=("$name.service")
    timeout 30 systemd-run --quiet "${block[@]}" --unit="$name" -p Type=notify \
      -p NotifyAccess=main -p WatchdogSec=4s -p TimeoutStartSec=infinity \
      /bin/sh -c 'log=$1; shift; exec "$@" 2>>"$log"' sh "$log" "$@"
  }
  wait_prop() { # unit property value seconds
    local i=0
    until [ "$(prop "$1" "$2")" = "$3" ]; do
      i=$((i + 1))
      [ $i -gt $(($4 * 20)) ] && { echo "$1: $2=$(prop "$1" "$2"), wanted $3"; return 1; }
      sleep 0.05
    done
  }
  CTL_CMD=(ip netns exec "$P-ctl" "$CTL" --db "$TMP/vnet.db" --listen 10.200.0.100:7700
           --api 127.0.0.1:7701)
  run_unit "$P-ctl" "$TMP/ctl.log" -- "${CTL_CMD[@]}"
  check "controller unit active once started (READY=1)" test "$(prop "$P-ctl" ActiveState)" = active
  check "controller: listening once active" sh -c "$CTL_PROBE"
  check "controller: STATUS= shown" sh -c "systemctl show -P StatusText $P-ctl | grep -q 'serving: nodes on port 7700'"
  pid=$(prop "$P-ctl" MainPID)
  sleep 9 # two watchdog periods: without pings systemd would have killed it by now
  check "controller: the watchdog is fed (same pid after 2 periods)" test "$(prop "$P-ctl" MainPID)" = "$pid"
  vnetctl network create blue --vni 100 --subnet 10.100.0.0/24 >/dev/null
  vnetctl node add blue n1 >/dev/null
  systemctl stop "$P-ctl"
  # A unit that failed stays loaded as failed; one that stopped cleanly is gone.
  check "controller: a clean stop" sh -c "! systemctl is-failed --quiet $P-ctl && grep -q stopped $TMP/ctl.log"

  run_unit "$P-n1" "$TMP/n1.log" --no-block -- ip netns exec "$P-n1" "$NODE" --controller \
    10.200.0.100:7700 --network blue --name n1 --dev tap:vn0 --underlay udp:10.200.0.1:4789 \
    --log-level info
  wait_count "$TMP/n1.log" 'connection refused' 2 20
  check "node: activating, not active, while its controller is down" \
    test "$(prop "$P-n1" ActiveState)" = activating
  run_unit "$P-ctl" "$TMP/ctl.log" -- "${CTL_CMD[@]}"
  check "node: active once the controller is back" wait_prop "$P-n1" ActiveState active 30
  check "node: its TAP has the address the controller gave" sh -c "$N1_PROBE"
  check "node: STATUS= says up" sh -c "systemctl show -P StatusText $P-n1 | grep -q 'up: network blue'"
  systemctl stop "$P-n1"
  check "node: a clean stop" sh -c "! systemctl is-failed --quiet $P-n1 && grep -q stopped $TMP/n1.log"
  systemctl stop "$P-ctl"
  finish
  exit
fi

# ---- without systemd as PID 1: this test is the manager at the end of $NOTIFY_SOCKET ----
echo "     (PID 1 is $(ps -p 1 -o comm=), not systemd: checking the notify protocol directly)"
# As vnet-node@.service runs a node: another user (here nobody), only CAP_NET_ADMIN and
# CAP_NET_RAW, ambient as AmbientCapabilities= gives them. The unprivileged open needs
# /dev/net/tun 0666, as udev makes it on a systemd host (tests/host_profile.sh).
AS_UNIT=()
caps=-all,+net_admin,+net_raw
tun_mode=$(stat -c %a /dev/net/tun)
if ! command -v setpriv >/dev/null; then
  echo "     (setpriv not installed: the nodes run as root)"
elif [ "$tun_mode" != 666 ]; then
  echo "     (/dev/net/tun is mode $tun_mode here, not udev's 0666: the nodes run as root)"
else
  AS_UNIT=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=$caps
           --ambient-caps=$caps --bounding-set=$caps --)
fi

start_controller() { # notify-name
  listen_notify "$1" "$CTL_PROBE" || return 1
  NOTIFY_SOCKET="$SOCKS/$1.sock" WATCHDOG_USEC=200000 ip netns exec "$P-ctl" "$CTL" \
    --db "$TMP/vnet.db" --listen 10.200.0.100:7700 --api 127.0.0.1:7701 >>"$TMP/ctl.log" 2>&1 &
  CTL_PID=$!
  PIDS+=($CTL_PID)
}

start_controller ctl
check "controller: READY=1" wait_log "$SOCKS/ctl.log" 'READY=1' 10
check "controller: both listeners accepted connections when it said READY=1" \
  probe_ok "$SOCKS/ctl.log"
check "controller: STATUS= says where it serves" \
  grep -q 'READY=1 | STATUS=serving: nodes on port 7700, api on 127.0.0.1:7701' "$SOCKS/ctl.log"
check "controller: WATCHDOG=1 pings" wait_count "$SOCKS/ctl.log" ' WATCHDOG=1$' 6 10
check "controller: a ping every WATCHDOG_USEC/2 (0.1 s)" ping_gap "$SOCKS/ctl.log" 0.05 0.15
# A controller that cannot serve (its ports are taken by the first one) never says READY=1.
listen_notify busy ""
NOTIFY_SOCKET="$SOCKS/busy.sock" ip netns exec "$P-ctl" "$CTL" --db "$TMP/busy.db" \
  --listen 10.200.0.100:7700 --api 127.0.0.1:7701 >"$TMP/busy.log" 2>&1
check "a controller that cannot listen exits 1" test $? -eq 1
notify_sync busy
check "... and never said READY=1" sh -c "! grep -q READY=1 $SOCKS/busy.log"
vnetctl network create blue --vni 100 --subnet 10.100.0.0/24 >/dev/null
vnetctl node add blue n1 >/dev/null
check "controller: exit 0 on SIGTERM" term_status $CTL_PID 10
check "controller: STOPPING=1 on SIGTERM" grep -q 'STOPPING=1' "$SOCKS/ctl.log"

# A managed node whose controller is down: running, retrying, not ready.
listen_notify n1 "$N1_PROBE"
NOTIFY_SOCKET="$SOCKS/n1.sock" WATCHDOG_USEC=400000 ip netns exec "$P-n1" "${AS_UNIT[@]}" "$NODE" \
  --controller 10.200.0.100:7700 --network blue --name n1 --dev tap:vn0 \
  --underlay udp:10.200.0.1:4789 --log-level info >>"$TMP/n1.log" 2>&1 &
N1_PID=$!
PIDS+=($N1_PID)
check "node: retries while its controller is down" wait_count "$TMP/n1.log" 'connection refused' 2 20
notify_sync n1
check "node: not READY while its controller is down" sh -c "! grep -q READY=1 $SOCKS/n1.log"
check "node: STATUS= says it is connecting" grep -q 'STATUS=connecting to the controller 10.200.0.100:7700' "$SOCKS/n1.log"
check "node: WATCHDOG=1 pings while it waits" wait_count "$SOCKS/n1.log" ' WATCHDOG=1$' 3 10
start_controller ctl2
check "node: READY=1 once the controller is back" wait_log "$SOCKS/n1.log" 'READY=1' 30
check "node: its TAP had the controller's address when it said READY=1" \
  probe_ok "$SOCKS/n1.log"
check "node: STATUS= says up, in which network, as which node" \
  grep -q 'READY=1 | STATUS=up: network blue (vni 100) as n1' "$SOCKS/n1.log"
check "node: STATUS= follows the session" grep -q 'STATUS=controller connected' "$SOCKS/n1.log"
check "node: a ping every WATCHDOG_USEC/2 (0.2 s)" ping_gap "$SOCKS/n1.log" 0.1 0.3
check "node: exit 0 on SIGTERM" term_status $N1_PID 10
check "node: STOPPING=1 on SIGTERM" grep -q 'STOPPING=1' "$SOCKS/n1.log"
check "controller: exit 0 on SIGTERM (again)" term_status $CTL_PID 10

# A static node, as vnet-node@.service runs it: READY=1 once its TAP is up.
static_ready() {
  wait_log "$SOCKS/n2.log" 'READY=1' 10 ||
    { cat "$TMP/n2.log"; stat -c '/dev/net/tun: mode %a, changed %z' /dev/net/tun; return 1; }
}
listen_notify n2 "ip -n $P-n2 -4 addr show dev vs0 up | grep -q 'inet 10.42.0.2/24'"
NOTIFY_SOCKET="$SOCKS/n2.sock" ip netns exec "$P-n2" "${AS_UNIT[@]}" "$NODE" --dev tap:vs0 \
  --underlay udp:10.200.0.2:4789 --vni 42 --mac 02:00:00:00:00:02 --ip 10.42.0.2/24 \
  --peer 10.200.0.1:4789 >>"$TMP/n2.log" 2>&1 &
N2_PID=$!
PIDS+=($N2_PID)
check "static node: READY=1" static_ready
check "static node: its TAP was up with its address when it said READY=1" probe_ok "$SOCKS/n2.log"
check "static node: STATUS= says up" grep -q 'READY=1 | STATUS=up: vni 42, 1 peers' "$SOCKS/n2.log"
if [ ${#AS_UNIT[@]} -gt 0 ]; then
  check "static node: runs as another user with CAP_NET_ADMIN and CAP_NET_RAW only" \
    sh -c "grep -q '^CapEff:.*0000000000003000$' /proc/$N2_PID/status && grep -Eq '^Uid:\s+65534' /proc/$N2_PID/status"
fi
check "static node: exit 0 on SIGTERM" term_status $N2_PID 10
check "static node: STOPPING=1 on SIGTERM" grep -q 'STOPPING=1' "$SOCKS/n2.log"
finish
