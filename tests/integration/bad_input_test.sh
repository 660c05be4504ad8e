#!/usr/bin/env bash
# Issue #13, "failing clearly" on the controller's and vnetctl's side: each bad input found by a
# new operator, run again, with its message (a specific phrase), its exit status (2 for usage
# errors, 1 for failures; within 10 s) and, for vnet-controller, nothing left behind by a start
# that fails: no database, directory, admin token or socket in the state directory, and no
# process. Everything runs in one namespace of its own (lo only): no traffic leaves it.
# Usage: bad_input_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
command -v setpriv >/dev/null || { echo "SKIP: setpriv (util-linux) not installed"; exit 77; }
CTL="$BUILD/examples/vnet-controller"
VNETCTL="$BUILD/examples/vnetctl"
ns_add ctl
STATE="$TMP/state" # what failed starts must leave as they found it: empty
mkdir -p "$STATE"
chmod 755 "$TMP"

# expect RC PHRASE CMD...: CMD exits with RC within 10 s and says PHRASE (grep -F) on its first
# line of stderr.
expect() {
  local want=$1 phrase=$2 rc
  shift 2
  timeout 10 "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "exit status $rc, want $want; stderr:"
    cat "$TMP/err"
    return 1
  fi
  if ! head -1 "$TMP/err" | grep -qF -- "$phrase"; then
    echo "first line of stderr lacks '$phrase':"
    cat "$TMP/err"
    return 1
  fi
}

# nothing_left: the state directory is empty and no process but the long-lived controller
# ($CTLPID, once started) runs in the namespace.
nothing_left() {
  local left pids
  left=$(find "$STATE" -mindepth 1)
  if [ -n "$left" ]; then
    echo "left behind in $STATE:"
    echo "$left"
    return 1
  fi
  pids=$(ip netns pids "$P-ctl" | grep -vx "${CTLPID:-none}")
  if [ -n "$pids" ]; then
    echo "processes left: $pids"
    return 1
  fi
}

# ctl_fails NAME RC PHRASE ARGS...: vnet-controller with a database in a directory that does
# not exist yet (the store would make it) fails as said and leaves nothing.
ctl_fails() {
  local name=$1 rc=$2 phrase=$3
  shift 3
  check "$name: exit $rc, '$phrase'" \
    expect "$rc" "$phrase" ip netns exec "$P-ctl" "$CTL" --db "$STATE/db/vnet.db" "$@"
  check "$name: nothing left behind" nothing_left
}

# ---- vnet-controller: addresses ----
ctl_fails "--listen port 99999" 2 "bad --listen '0.0.0.0:99999': bad port" \
  --listen 0.0.0.0:99999
ctl_fails "--api port 70000" 2 "bad --api '127.0.0.1:70000': bad port" \
  --listen 127.0.0.1:0 --api 127.0.0.1:70000
ctl_fails "--listen without a port" 2 "bad --listen '127.0.0.1'" --listen 127.0.0.1
ctl_fails "--listen IPv6 without brackets" 2 "in brackets" --listen ::1:7700
ctl_fails "--listen unresolvable" 1 "--listen nohost.invalid:7700: cannot resolve 'nohost.invalid'" \
  --listen nohost.invalid:7700
ctl_fails "--listen not on this host" 1 "no interface of this host has that address" \
  --listen 192.0.2.1:7700
ctl_fails "--listen and --api the same" 1 "--api 127.0.0.1:7790: Address already in use" \
  --listen 127.0.0.1:7790 --api 127.0.0.1:7790
ctl_fails "--socket in a missing directory" 1 \
  "--socket $TMP/nodir/ctl.sock: No such file or directory: directory $TMP/nodir does not exist" \
  --listen 127.0.0.1:0 --socket "$TMP/nodir/ctl.sock"
touch "$TMP/notasocket"
ctl_fails "--socket naming a plain file" 1 "exists and is not a socket" \
  --listen 127.0.0.1:0 --socket "$TMP/notasocket"

# ---- vnet-controller: a start that fails after the database was made removes it ----
ln -s "$TMP/nowhere" "$TMP/dangling-token" # O_EXCL refuses to write through it
ctl_fails "admin token file unwritable (after the database)" 1 \
  "admin token file $TMP/dangling-token" --listen 127.0.0.1:0 --admin-token-file "$TMP/dangling-token"
touch "$TMP/loose-token"
chmod 644 "$TMP/loose-token"
ctl_fails "admin token file readable by others" 1 "readable by others" \
  --listen 127.0.0.1:0 --admin-token-file "$TMP/loose-token"

# ---- vnet-controller: a database directory this user cannot write ----
mkdir -p "$TMP/ro"
chmod 555 "$TMP/ro"
ASNOBODY=(ip netns exec "$P-ctl" setpriv --reuid=nobody --regid=nogroup --clear-groups)
check "unwritable database directory: 'Permission denied' naming the path" \
  expect 1 "cannot create store $TMP/ro/vnet.db: Permission denied" \
  "${ASNOBODY[@]}" "$CTL" --db "$TMP/ro/vnet.db" --listen 127.0.0.1:0
check "uncreatable database directory: 'Permission denied' naming it" \
  expect 1 "cannot create the store's directory $TMP/ro/sub: Permission denied" \
  "${ASNOBODY[@]}" "$CTL" --db "$TMP/ro/sub/vnet.db" --listen 127.0.0.1:0
check "nothing made in the unwritable directory" sh -c "test -z \"\$(ls -A $TMP/ro)\""
# a database file of this user in a directory it cannot write (SQLite needs -wal/-shm there)
mkdir -p "$TMP/rw"
chmod 777 "$TMP/rw"
"${ASNOBODY[@]}" "$CTL" --db "$TMP/rw/vnet.db" --listen 127.0.0.1:0 --api none >"$TMP/rw.log" 2>&1 &
RWPID=$!
wait_log "$TMP/rw.log" "up: database" || kill $RWPID
kill $RWPID
wait $RWPID
chmod 555 "$TMP/rw"
check "a database in a read-only directory: 'permission denied' naming the directory" \
  expect 1 "permission denied: its directory $TMP/rw is not writable" \
  "${ASNOBODY[@]}" "$CTL" --db "$TMP/rw/vnet.db" --listen 127.0.0.1:0 --api none

# ---- vnet-controller: host names work (localhost:7800); a first start makes the database's
# directory, where its socket may go ----
ip netns exec "$P-ctl" "$CTL" --db "$TMP/lh/vnet.db" --listen localhost:0 --api localhost:7800 \
  --socket "$TMP/lh/ctl.sock" >"$TMP/lh.log" 2>&1 &
LHPID=$!
PIDS+=($LHPID)
check "--api localhost:7800 listens on 127.0.0.1:7800" wait_listen ctl 7800
check "vnetctl --controller localhost:7800 reaches it" \
  ip netns exec "$P-ctl" "$VNETCTL" --controller localhost:7800 network list
check "its socket in the database's new directory works" \
  ip netns exec "$P-ctl" "$VNETCTL" --socket "$TMP/lh/ctl.sock" network list
kill $LHPID
wait $LHPID

# ---- a running controller with a key, for the rest ----
"$CTL" --genkey "$TMP/ctl.key" >"$TMP/ctl.pub"
"$CTL" --genkey "$TMP/other.key" >"$TMP/other.pub"
ip netns exec "$P-ctl" "$CTL" --db "$TMP/run/vnet.db" --key "$TMP/ctl.key" \
  --listen 127.0.0.1:7700 --api 127.0.0.1:7701 --socket "$TMP/run/ctl.sock" >"$TMP/ctl.log" 2>&1 &
CTLPID=$!
PIDS+=($CTLPID)
wait_listen ctl 7701 || exit 1
wait_log "$TMP/ctl.log" "up: database" || exit 1

ctl_fails "--listen in use" 1 "--listen 127.0.0.1:7700: Address already in use" \
  --listen 127.0.0.1:7700 --api none
ctl_fails "--api in use" 1 "--api 127.0.0.1:7701: Address already in use" \
  --listen 127.0.0.1:0 --api 127.0.0.1:7701
ctl_fails "--socket served by another controller" 1 "a running process serves it" \
  --listen 127.0.0.1:0 --api none --socket "$TMP/run/ctl.sock"
check "the running controller still serves its socket" \
  ip netns exec "$P-ctl" "$VNETCTL" --socket "$TMP/run/ctl.sock" network list

# ---- vnetctl ----
export VNET_CONTROLLER_KEY=$(cat "$TMP/ctl.pub") VNET_TOKEN_FILE="$TMP/run/vnet.db.admin-token"
V=(ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701)
check "network create blue" "${V[@]}" network create blue --subnet 10.100.0.0/24 --subnet fd10::/64
check "a network name with a space: exit 2, which characters" \
  expect 2 "bad network name 'a b': 1 to 63 characters of A-Z a-z 0-9 . _ -" "${V[@]}" network create "a b"
check "a node name with a space: exit 2" \
  expect 2 "bad node name 'n 1': 1 to 63 characters" "${V[@]}" node add blue "n 1"
check "--subnet with host bits: exit 2, the network meant" \
  expect 2 "host bits set: did you mean 10.20.0.0/24?" "${V[@]}" network create red --subnet 10.20.0.5/24
check "IPv6 --subnet with host bits" \
  expect 2 "did you mean fd20::/64?" "${V[@]}" network create red --subnet fd20::5/64
check "two IPv4 --subnet: exit 2" \
  expect 2 "two IPv4 --subnet given (10.20.0.0/24 and 10.30.0.0/24)" \
  "${V[@]}" network create red --subnet 10.20.0.0/24 --subnet 10.30.0.0/24
check "two IPv4 --ip: exit 2" \
  expect 2 "second address of its family" "${V[@]}" node add blue n1 --ip 10.100.0.5 --ip 10.100.0.6
check "an overlapping subnet of the same subscriber: exit 1, the other network named" \
  expect 1 "subnet 10.100.0.0/16 overlaps subnet 10.100.0.0/24 of network 'blue'" \
  "${V[@]}" network create red --subnet 10.100.0.0/16
check "an overlapping IPv6 subnet" \
  expect 1 "overlaps subnet fd10::/64 of network 'blue'" "${V[@]}" network create red --subnet fd10::/56
check "refused requests left no network" sh -c \
  "ip netns exec $P-ctl $VNETCTL --socket $TMP/run/ctl.sock --json network list | grep -c '\"name\"' | grep -qx 1"
check "another subscriber may overlap" sh -c \
  "ip netns exec $P-ctl $VNETCTL --socket $TMP/run/ctl.sock subscriber create acme >/dev/null &&
   ip netns exec $P-ctl $VNETCTL --socket $TMP/run/ctl.sock network create acme/blue --subnet 10.100.0.0/24"
check "a wrong controller key: exit 1, says it does not match" \
  expect 1 "the controller's key does not match --controller-key" \
  "${V[@]}" --controller-key "$(cat "$TMP/other.pub")" network list
check "a wrong VNET_CONTROLLER_KEY: named" \
  expect 1 "does not match VNET_CONTROLLER_KEY" \
  env VNET_CONTROLLER_KEY="$(cat "$TMP/other.pub")" \
  ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701 network list
check "--controller nohost: exit 1, cannot resolve" \
  expect 1 "cannot resolve 'nohost.invalid'" "${V[@]}" --controller nohost.invalid:7701 network list
check "--controller localhost:7701 resolves" "${V[@]}" --controller localhost:7701 network list
check "no process left but the controller" nothing_left

finish
