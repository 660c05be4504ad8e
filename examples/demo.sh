#!/usr/bin/env bash
# The libvnet demo: installs what is missing, builds, and shows the overlay at work.
#
# A controller (with its own key) on an embedded SQLite database and three nodes, each in its
# own network namespace, in two "sites" whose underlays meet only through a router namespace.
# vnetctl creates an encrypted network and adds the nodes; each node enrols its key with a
# join token and gets its configuration from the controller. The demo pings every pair,
# measures TCP throughput across the router, shows the controller's convergence status and the
# nodes' counters; then the switch-table and codec benchmarks.
#
# Needs root (namespaces, TAP devices). Cleans up everything it created, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run me as root: I create network namespaces and TAP devices." >&2
  exit 1
fi

step "dependencies"
./.ci/deps.sh
echo "all present"

step "build ($BUILD)"
if [ -f "$BUILD/build.ninja" ]; then
  meson setup --reconfigure "$BUILD" >/dev/null
else
  meson setup "$BUILD" >/dev/null
fi
meson compile -C "$BUILD" >/dev/null
echo "built libvnet.a, vnet-node and the tools in $BUILD/"
NODE="$BUILD/examples/vnet-node"
CTLR="$BUILD/examples/vnet-controller"
VNETCTL="$BUILD/examples/vnetctl"

P="vdemo$$"
NS=()
PIDS=()
TMP=$(mktemp -d)
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in "${NS[@]}"; do
    pids=$(ip netns pids "$n" 2>/dev/null || true)
    [ -n "$pids" ] && kill $pids 2>/dev/null || true
  done
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: cleaning up"; exit 130' INT TERM

step "underlay: two sites joined only through a router, as clouds are through the Internet"
# site A: bridge in $P-siteA, 10.250.1.0/24: the controller (.100), node1 (.1), node2 (.2)
# site B: bridge in $P-siteB, 10.250.2.0/24: node3 (.3)
# $P-router: 10.250.1.254 and 10.250.2.254, forwarding between them
for site in A B; do
  ip netns add "$P-site$site"
  NS+=("$P-site$site")
  ip -n "$P-site$site" link add br0 type bridge
  ip -n "$P-site$site" link set br0 up
done
ip netns add "$P-router"
NS+=("$P-router")
ip -n "$P-router" link set lo up
ip netns exec "$P-router" sysctl -qw net.ipv4.ip_forward=1
for site in A B; do
  n=1; [ $site = B ] && n=2
  ip link add "eth$site" netns "$P-router" type veth peer name rt netns "$P-site$site"
  ip -n "$P-site$site" link set rt master br0 up
  ip -n "$P-router" addr add "10.250.$n.254/24" dev "eth$site"
  ip -n "$P-router" link set "eth$site" up
done
host() { # name site address
  ip netns add "$P-$1"
  NS+=("$P-$1")
  ip -n "$P-$1" link set lo up
  ip link add eth0 netns "$P-$1" type veth peer name "p-$1" netns "$P-site$2"
  ip -n "$P-site$2" link set "p-$1" master br0 up
  ip -n "$P-$1" addr add "$3/24" dev eth0
  ip -n "$P-$1" link set eth0 up
  local gw=10.250.1.254
  [ "$2" = B ] && gw=10.250.2.254
  ip -n "$P-$1" route add default via $gw
}
host ctl A 10.250.1.100
host node1 A 10.250.1.1
host node2 A 10.250.1.2
host node3 B 10.250.2.3
declare -A UNDERLAY=([1]=10.250.1.1 [2]=10.250.1.2 [3]=10.250.2.3)
echo "  site A: controller 10.250.1.100, node1 10.250.1.1, node2 10.250.1.2"
echo "  site B: node3 10.250.2.3        (router 10.250.1.254 <-> 10.250.2.254)"

step "controller: vnet-controller with its own key, on a SQLite database in $P-ctl"
CTLPUB=$("$CTLR" --genkey "$TMP/controller.key")
echo "  controller key (nodes pin it): $CTLPUB"
ip netns exec "$P-ctl" "$CTLR" --db "$TMP/vnet.db" --key "$TMP/controller.key" \
  --listen 10.250.1.100:7700 --api 127.0.0.1:7701 >"$TMP/controller.log" 2>&1 &
PIDS+=($!)
for t in $(seq 1 100); do
  ip netns exec "$P-ctl" ss -Hltn "sport = :7701" | grep -q LISTEN && break
  sleep 0.05
done
# The API of a controller with a key needs its public key and an API token: the admin's,
# written next to the database at the first start.
export VNET_CONTROLLER_KEY="$CTLPUB" VNET_TOKEN_FILE="$TMP/vnet.db.admin-token"
vnetctl() { ip netns exec "$P-ctl" "$VNETCTL" --controller 127.0.0.1:7701 "$@"; }
echo "  \$ vnetctl network create demo --vni 4242 --subnet 10.90.0.0/24   (secure by default)"
vnetctl network create demo --vni 4242 --subnet 10.90.0.0/24 | sed 's/^/  /'
declare -A TOKEN
for i in 1 2 3; do
  echo "  \$ vnetctl node add demo node$i"
  vnetctl --json node add demo "node$i" >"$TMP/add$i.json"
  TOKEN[$i]=$(python3 -c "import json; print(json.load(open('$TMP/add$i.json'))['join_token'])")
  echo "    join token: ${TOKEN[$i]:0:24}..."
done

step "nodes: vnet-node --controller ... --join TOKEN on each (a key made and enrolled), TAP vnet0"
for i in 1 2 3; do
  ip netns exec "$P-node$i" "$NODE" --controller 10.250.1.100:7700 --network demo \
    --name "node$i" --key "$TMP/node$i.key" --join "${TOKEN[$i]}" \
    --dev tap:vnet0 --underlay "udp:${UNDERLAY[$i]}:4789" >"$TMP/node$i.log" 2>&1 &
  PIDS+=($!)
done
for t in $(seq 1 200); do
  vnetctl network status demo | grep -q "3 connected, 3 converged" && break
  sleep 0.05
done
vnetctl network status demo | sed 's/^/  /'

step "ping between all pairs over the overlay"
printf '  %-8s %-8s %-12s\n' from to "rtt avg"
for i in 1 2 3; do
  for j in 1 2 3; do
    [ "$i" = "$j" ] && continue
    rtt=$(ip netns exec "$P-node$i" ping -c 3 -i 0.2 -W 2 "10.90.0.$j" 2>/dev/null |
      sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1 ms|p')
    printf '  %-8s %-8s %-12s\n' "node$i" "node$j" "${rtt:-FAILED}"
  done
done

step "TCP throughput node1 (site A) -> node3 (site B), encrypted, across the router (iperf3, 3 s)"
ip netns exec "$P-node3" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
PIDS+=($!)
for t in $(seq 1 100); do
  ip netns exec "$P-node3" ss -Hltn "sport = :5201" | grep -q LISTEN && break
  sleep 0.05
done
ip netns exec "$P-node1" iperf3 -c 10.90.0.3 -p 5201 -t 3 -f g 2>/dev/null |
  awk '/receiver/ {print "  " $7 " " $8 " received"}'

step "node counters (SIGUSR1)"
for i in 1 2 3; do kill -USR1 "${PIDS[$i]}"; done
for i in 1 2 3; do # wait for each node to write its counters
  for t in $(seq 1 100); do grep -q "drops:" "$TMP/node$i.log" && break; sleep 0.02; done
done
for i in 1 2 3; do
  grep -E "virtual rx|drops:" "$TMP/node$i.log" | tail -2 | sed -E "s/^([0-9T:.Z-]+ )?vnet [a-z]+ \\[node\\]: /  node$i: /"
done

step "VN switch table: lookups/s and memory (vnet-bench table --quick)"
"$BUILD/tests/bench/vnet-bench" table --quick

step "VXLAN codec: ns per packet (vnet-bench encap --quick)"
"$BUILD/tests/bench/vnet-bench" encap --quick

step "done"
echo "Next: ./tests/run.sh runs every suite; tests/bench/overlay.sh compares the overlay with"
echo "the underlay and kernel VXLAN; docs/architecture.md explains the modules."
