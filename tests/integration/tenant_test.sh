#!/usr/bin/env bash
# Subscribers (tenants) end to end: the admin token file, subscriber accounts with API tokens,
# per-subscriber scoping of networks, refusals (no token, wrong token, rotated token, wrong
# controller key), the Unix socket as the admin, and no plaintext on the API connection.
# The controller runs on 127.0.0.1 in a network namespace this test creates.
# Usage: tenant_test.sh BUILD_DIR
set -u
BUILD=$1
. "$(dirname "$0")/lib.sh"
need_root
command -v tcpdump >/dev/null || { echo "SKIP: tcpdump not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
CTL="$BUILD/examples/vnet-controller"
VNETCTL="$BUILD/examples/vnetctl"
DB="$TMP/vnet.db"
ADMIN="$DB.admin-token"
SOCK="$TMP/ctl.sock"
API=127.0.0.1:17701

ns_add ctl
"$CTL" --genkey "$TMP/ctl.key" >"$TMP/ctl.pub"
"$CTL" --genkey "$TMP/other.key" >"$TMP/other.pub"
CTLPUB=$(cat "$TMP/ctl.pub")

start_controller() {
  # Not through in_ns: a function in the background is a subshell, and $! must be the
  # controller itself for the restart below.
  ip netns exec "$P-ctl" "$CTL" --db "$DB" --key "$TMP/ctl.key" --listen 127.0.0.1:17700 \
    --api "$API" --socket "$SOCK" --keepalive 500 >>"$TMP/ctl.log" 2>&1 &
  CTL_PID=$!
  PIDS+=($CTL_PID)
  wait_listen ctl 17701 || { cat "$TMP/ctl.log"; return 1; }
}
stop_controller() { kill "$CTL_PID"; wait "$CTL_PID" 2>/dev/null; }

# api TOKEN_FILE ARGS...: vnetctl over TCP with the pinned controller key and that token.
api() {
  local tf=$1
  shift
  in_ns ctl "$VNETCTL" --controller "$API" --controller-key "$CTLPUB" --token-file "$tf" "$@"
}
# admin over the Unix socket: no key, no token.
sock() { in_ns ctl "$VNETCTL" --socket "$SOCK" "$@"; }

# refused WHAT_IN_OUTPUT CMD...: the command exits 1 and says WHAT_IN_OUTPUT.
refused() {
  local want=$1
  shift
  "$@" >"$TMP/refused.out" 2>&1
  local rc=$?
  cat "$TMP/refused.out"
  [ $rc -eq 1 ] || { echo "exit $rc, want 1"; return 1; }
  grep -q -- "$want" "$TMP/refused.out" || { echo "no '$want' in the output"; return 1; }
}

# token_of JSON_FILE OUT_FILE: the "token" of a subscriber create/token reply, into a 0600 file.
token_of() {
  (umask 077 && python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['token'])" \
    "$1" >"$2")
}

# json_len CMD...: the length of the JSON array the command prints.
json_len() { "$@" | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }

# ---- the admin token file ----
start_controller || exit 1
check "admin token file created at the first start" test -f "$ADMIN"
check "... mode 0600" test "$(stat -c %a "$ADMIN")" = 600
check "... holds an API token" grep -Eq '^vnetapi1-[A-Za-z0-9_-]{43}$' "$ADMIN"
check "the log says where it was written" grep -q "admin API token written to $ADMIN" "$TMP/ctl.log"
check "warning-free start with a key (no open-API warning)" sh -c "! grep -q 'API on .* is open' $TMP/ctl.log"
cp "$ADMIN" "$TMP/admin.first"
check "the admin token works over TCP" api "$ADMIN" subscriber list
stop_controller
start_controller || exit 1
check "restart: the file is reused unchanged" cmp "$ADMIN" "$TMP/admin.first"
check "restart: the log names the file" grep -q "admin API token in $ADMIN" "$TMP/ctl.log"
check "restart: the admin token still works" api "$ADMIN" subscriber list
cp "$ADMIN" "$TMP/loose.token"
chmod 644 "$TMP/loose.token"
check "an admin token file readable by others is refused at start (exit 1)" \
  refused "readable by others" in_ns ctl "$CTL" --db "$TMP/other.db" \
  --admin-token-file "$TMP/loose.token" --listen 127.0.0.1:17710 --api 127.0.0.1:17711
ip netns exec "$P-ctl" "$CTL" --db "$TMP/open.db" --listen 127.0.0.1:17720 --api 127.0.0.1:17721 \
  >"$TMP/open.log" 2>&1 &
OPEN_PID=$!
PIDS+=($OPEN_PID)
wait_listen ctl 17721
kill $OPEN_PID; wait $OPEN_PID 2>/dev/null
check "a controller without a key warns that its API is open" grep -q "API on 127.0.0.1:17721 is open" "$TMP/open.log"

# ---- subscribers ----
api "$ADMIN" --json subscriber create alice >"$TMP/alice.json"
check "subscriber create alice" token_of "$TMP/alice.json" "$TMP/alice.tok"
api "$ADMIN" --json subscriber create bob >"$TMP/bob.json"
check "subscriber create bob" token_of "$TMP/bob.json" "$TMP/bob.tok"
check "the printed tokens are API tokens" grep -Eq '^vnetapi1-[A-Za-z0-9_-]{43}$' "$TMP/alice.tok"
check "subscriber create alice again is refused" refused "already exists" api "$ADMIN" subscriber create alice
check "subscriber list: admin, alice, bob" test "$(json_len api "$ADMIN" --json subscriber list)" = 3
check "a subscriber cannot manage subscribers" refused "only the admin" api "$TMP/alice.tok" subscriber list
check "... nor create one" refused "only the admin" api "$TMP/bob.tok" subscriber create eve

check "alice creates network blue" api "$TMP/alice.tok" network create blue --subnet 10.1.0.0/24
check "bob creates network blue too" api "$TMP/bob.tok" network create blue --subnet 10.1.0.0/24
check "bob creates network red" api "$TMP/bob.tok" network create red
vni() { api "$1" --json network show blue | python3 -c "import json,sys; print(json.load(sys.stdin)['network']['vni'])"; }
VNI_A=$(vni "$TMP/alice.tok")
VNI_B=$(vni "$TMP/bob.tok")
check "the two blue networks have different VNIs ($VNI_A, $VNI_B)" test -n "$VNI_A" -a -n "$VNI_B" -a "$VNI_A" != "$VNI_B"
check "alice's network list shows only her network" test "$(json_len api "$TMP/alice.tok" --json network list)" = 1
check "bob's network list shows his two" test "$(json_len api "$TMP/bob.tok" --json network list)" = 2
check "alice cannot see bob's red (show)" refused "no network" api "$TMP/alice.tok" network show red
check "alice cannot see bob's red (status)" refused "no network" api "$TMP/alice.tok" network status red
check "alice cannot delete bob's red" refused "no network" api "$TMP/alice.tok" network delete red
check "alice cannot add a node to bob's red" refused "no network" api "$TMP/alice.tok" node add red x
check "alice cannot name it as bob/red either" refused "no network" api "$TMP/alice.tok" network show bob/red
check "bob's red is still there" api "$TMP/bob.tok" network show red
check "nodes: alice adds n1 to her blue" api "$TMP/alice.tok" node add blue n1
check "... bob's blue does not have it" test "$(json_len api "$TMP/bob.tok" --json node list blue)" = 0
check "alice cannot pick a VNI bob uses, and is not told whose it is" \
  sh -c "! ip netns exec $P-ctl $VNETCTL --controller $API --controller-key $CTLPUB --token-file $TMP/alice.tok network create green --vni $VNI_B 2>&1 | grep -q \"network '\""

# ---- refusals ----
python3 -c "import os,base64; print('vnetapi1-' + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('='))" >"$TMP/wrong.tok"
chmod 600 "$TMP/wrong.tok"
check "a wrong token is refused" refused "unknown API token" api "$TMP/wrong.tok" network list
check "no token over TCP is refused (key pinned)" \
  refused "no API token" in_ns ctl "$VNETCTL" --controller "$API" --controller-key "$CTLPUB" network list
check "no token and no key over TCP is refused" \
  refused "authentication required" in_ns ctl "$VNETCTL" --controller "$API" network list
check "a client pinning another controller key is refused" \
  refused "the controller's key does not match --controller-key" in_ns ctl "$VNETCTL" --controller "$API" \
  --controller-key "$(cat "$TMP/other.pub")" --token-file "$TMP/alice.tok" network list
check "the refusals are logged" grep -q "api client refused: unknown API token" "$TMP/ctl.log"
chmod 644 "$TMP/alice.tok"
check "vnetctl refuses a token file readable by others" refused "readable by others" api "$TMP/alice.tok" network list
chmod 600 "$TMP/alice.tok"
check "VNET_TOKEN works like --token-file" in_ns ctl env VNET_TOKEN="$(cat "$TMP/alice.tok")" \
  VNET_CONTROLLER_KEY="$CTLPUB" "$VNETCTL" --controller "$API" network show blue
check "VNET_TOKEN_FILE works too" in_ns ctl env VNET_TOKEN_FILE="$TMP/alice.tok" \
  VNET_CONTROLLER_KEY="$CTLPUB" "$VNETCTL" --controller "$API" network show blue

# ---- the Unix socket: the admin, without a token ----
check "the Unix socket works without a token" sock network list
check "... and sees every subscriber's networks" test "$(json_len sock --json network list)" = 3
check "... with their owners" sh -c "ip netns exec $P-ctl $VNETCTL --socket $SOCK network list | grep -q '^alice  *blue'"
check "a name two subscribers use is ambiguous for the admin" refused "say which" sock network show blue
check "the admin names it as SUBSCRIBER/NAME" sock network show alice/blue
check "the admin token over TCP sees everything too" test "$(json_len api "$ADMIN" --json network list)" = 3
check "the admin creates a network for a subscriber" sock network create alice/violet
check "... which alice then sees" api "$TMP/alice.tok" network show violet
check "... and deletes" api "$TMP/alice.tok" network delete violet

# ---- token rotation ----
cp "$TMP/alice.tok" "$TMP/alice.old"
api "$ADMIN" --json subscriber token alice >"$TMP/alice2.json"
check "subscriber token alice prints a new token" token_of "$TMP/alice2.json" "$TMP/alice.tok"
check "... different from the old one" sh -c "! cmp -s $TMP/alice.tok $TMP/alice.old"
check "the old token is refused" refused "unknown API token" api "$TMP/alice.old" network list
check "the new token works" api "$TMP/alice.tok" network show blue

# ---- subscriber delete ----
check "subscriber delete is refused while bob owns networks" \
  refused "owns networks" api "$ADMIN" subscriber delete bob
check "the admin cannot be deleted" refused "cannot be deleted" sock subscriber delete admin
check "bob deletes his networks" sh -c "ip netns exec $P-ctl $VNETCTL --controller $API --controller-key $CTLPUB --token-file $TMP/bob.tok network delete blue && ip netns exec $P-ctl $VNETCTL --controller $API --controller-key $CTLPUB --token-file $TMP/bob.tok network delete red"
check "then subscriber delete bob works" api "$ADMIN" subscriber delete bob
check "bob's token is refused afterwards" refused "unknown API token" api "$TMP/bob.tok" network list
check "subscriber list: admin and alice" test "$(json_len sock --json subscriber list)" = 2

# ---- no plaintext on the API connection ----
capture_start ctl lo "$TMP/api.pcap" tcp port 17701 || exit 1
TCPDUMP=$CAP_PID
api "$TMP/alice.tok" network create MARKERNET4242 --subnet 10.9.0.0/24 >/dev/null
api "$TMP/alice.tok" node add MARKERNET4242 MARKERNODE4242 >/dev/null
api "$TMP/alice.tok" network show MARKERNET4242 >/dev/null
api "$ADMIN" subscriber create MARKERSUB4242 >/dev/null
capture_sentinel ctl 127.0.0.1 17701
check "the capture holds everything up to the end marker" capture_wait "$TMP/api.pcap" ENDOFCAPTURE
capture_stop $TCPDUMP
check "the capture saw the API traffic" test "$(stat -c %s "$TMP/api.pcap")" -gt 2000
check "no plaintext on the API connection (markers absent)" sh -c "! grep -aq MARKER $TMP/api.pcap"
check "the API tokens are absent from the capture" sh -c "! grep -aqF -e \"\$(cut -c10- $TMP/alice.tok)\" $TMP/api.pcap"

check "the controller is still running" kill -0 "$CTL_PID"
stop_controller
finish
