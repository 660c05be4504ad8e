# Shared helpers for the namespace-based integration tests (sourced, not run).
# Every namespace gets the per-run prefix $P, and everything is removed on exit.

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root (network namespaces, TAP devices)"
    exit 77
  fi
  for tool in ip ping; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
  done
}

P="vt$$"
NSLIST=()
PIDS=()
TMP=$(mktemp -d)

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  # Anything still running inside our namespaces (servers whose client failed, ...).
  for ns in "${NSLIST[@]}"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
  done
  for ns in "${NSLIST[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ns_add() { # name
  ip netns add "$P-$1"
  NSLIST+=("$P-$1")
  ip -n "$P-$1" link set lo up
}

in_ns() { # name cmd...
  local ns=$1
  shift
  ip netns exec "$P-$ns" "$@"
}

# A bridge namespace "hub" joining hosts: underlay 10.200.0.N/24 and fd20::N/64.
underlay_init() {
  ns_add hub
  ip -n "$P-hub" link add br0 type bridge
  ip -n "$P-hub" link set br0 up
}

underlay_host() { # name N
  local name=$1 n=$2
  ns_add "$name"
  ip link add "u$n" netns "$P-$name" type veth peer name "h$n" netns "$P-hub"
  ip -n "$P-hub" link set "h$n" master br0 up
  ip -n "$P-$name" link set "u$n" name eth0
  ip -n "$P-$name" addr add "10.200.0.$n/24" dev eth0
  ip -n "$P-$name" addr add "fd20::$n/64" dev eth0 nodad
  ip -n "$P-$name" link set eth0 up
}

# Wait until file $1 contains a line matching $2 (grep -E), at most $3 seconds.
wait_log() {
  local file=$1 pattern=$2 limit=${3:-10} i=0
  while ! grep -Eq "$pattern" "$file" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt $((limit * 20)) ]; then
      echo "timed out waiting for /$pattern/ in $file:"
      cat "$file"
      return 1
    fi
    sleep 0.05
  done
}

FAILS=0
PASSES=0
check() { # description cmd...
  local what=$1
  shift
  if "$@" >"$TMP/check.out" 2>&1; then
    echo "ok   - $what"
    PASSES=$((PASSES + 1))
  else
    echo "FAIL - $what"
    sed 's/^/       /' "$TMP/check.out" | tail -20
    FAILS=$((FAILS + 1))
  fi
}

finish() {
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

# Wait until something listens on TCP port $2 in namespace $1 (at most 10 s).
wait_listen() {
  local i=0
  while ! ip netns exec "$P-$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q LISTEN; do
    i=$((i + 1))
    [ $i -gt 200 ] && { echo "nothing listens on $1:$2"; return 1; }
    sleep 0.05
  done
}

# Write a script that sends bad packets to the VXLAN endpoint 10.200.0.1:4789 (VNI 42): two
# garbage datagrams, a frame for another VNI (43), and a frame claiming MAC_B from the wrong
# endpoint; print its path. Run it as: python3 SCRIPT MAC_A MAC_B MAC_OF_THE_SENDER
bad_packets_script() {
  cat >"$TMP/bad.py" <<'PY'
import socket, struct, sys
ma, mb, mk = sys.argv[1:4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst = ("10.200.0.1", 4789)
def vx(vni, inner):
    return struct.pack("!BBHI", 0x08, 0, 0, vni << 8) + inner
eth = lambda dst, src: bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + b"\x08\x00"
s.sendto(b"\x00garbage", dst)
s.sendto(b"\x08\x00\x00", dst)
s.sendto(vx(43, eth(ma, mk) + b"x" * 46), dst)
s.sendto(vx(42, eth(ma, mb) + b"x" * 46), dst)
PY
  echo "$TMP/bad.py"
}

# Start tcpdump in namespace $P-$1 on interface $2, writing $3, with the filter in the rest;
# returns once tcpdump says it is capturing (so nothing sent afterwards is missed). CAP_PID is
# its pid (also in PIDS). Stop it with capture_stop.
capture_start() { # ns dev file filter...
  local ns=$1 dev=$2 out=$3 i=0
  shift 3
  ip netns exec "$P-$ns" tcpdump -i "$dev" --immediate-mode -U -w "$out" "$@" >/dev/null 2>"$out.log" &
  CAP_PID=$!
  PIDS+=($CAP_PID)
  until grep -q "listening on" "$out.log" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$CAP_PID" 2>/dev/null; then
      echo "tcpdump in $ns on $dev did not start:"
      cat "$out.log"
      return 1
    fi
    sleep 0.05
  done
}

# Wait until the capture file $1 holds the bytes $2 (at most 10 s): the positive control that
# the traffic of interest has been written before the capture is stopped.
capture_wait() { # file marker
  local i=0
  until grep -aqF -e "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 200 ] && { echo "capture $1 never held $2"; return 1; }
    sleep 0.05
  done
}

# For captures of encrypted traffic, which holds no marker to wait for: from namespace $P-$1,
# open a TCP connection to $2:$3 and send the plaintext ENDOFCAPTURE; the capture has
# everything sent before once it holds that (capture_wait FILE ENDOFCAPTURE). The server sees
# a client that speaks no protocol and drops it.
capture_sentinel() { # ns addr port
  ip netns exec "$P-$1" python3 -c "import socket; s = socket.create_connection(('$2', $3), 5); s.sendall(b'ENDOFCAPTURE'); s.close()"
}

capture_stop() { # pid...
  kill "$@" 2>/dev/null
  wait "$@" 2>/dev/null
  return 0
}

# The programs of build $BUILD, and $K: a directory for keys (0700).
vnet_programs() {
  NODE="$BUILD/examples/vnet-node"
  CTL="$BUILD/examples/vnet-controller"
  VNETCTL="$BUILD/examples/vnetctl"
  K="$TMP/keys"
  mkdir -p -m 700 "$K"
}

# A keyed controller in namespace ctl (underlay address 10.200.0.100): nodes on port 7700, the
# API on 127.0.0.1:7701, its log in $TMP/ctl.log; extra arguments go to vnet-controller. Makes
# $K/ctl.key unless it exists. Sets CTLPUB and CTL_PID, exports the admin's API environment
# (VNET_CONTROLLER_KEY, VNET_TOKEN_FILE) and defines vnetctl: vnetctl ARGS... runs there.
keyed_controller() {
  [ -f "$K/ctl.key" ] || "$CTL" --genkey "$K/ctl.key" >"$K/ctl.pub"
  CTLPUB=$("$CTL" --pubkey "$K/ctl.key")
  ip netns exec "$P-ctl" "$CTL" --db "$TMP/vnet.db" --key "$K/ctl.key" \
    --listen 10.200.0.100:7700 --api 127.0.0.1:7701 "$@" >"$TMP/ctl.log" 2>&1 &
  CTL_PID=$!
  PIDS+=($CTL_PID)
  wait_listen ctl 7701 || return 1
  export VNET_CONTROLLER_KEY="$CTLPUB" VNET_TOKEN_FILE="$TMP/vnet.db.admin-token"
  vnetctl() { ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701 "$@"; }
}
