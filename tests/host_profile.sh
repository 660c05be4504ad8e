#!/usr/bin/env bash
# Make this machine look like an ordinary Debian 12 host for one test run, and put it back.
#
#   tests/host_profile.sh apply debian STATEFILE    save the current values in STATEFILE, apply
#   tests/host_profile.sh restore STATEFILE         put the saved values back
#
# The "debian" profile is what a Debian 12 host with udev and systemd has and a bare machine
# (such as a CI image) may not: /dev/net/tun mode 0666 (udev's rule), loose reverse-path
# filtering, ping sockets open to every group and promoted secondary addresses (systemd's
# sysctl.d/50-default.conf). New network namespaces inherit the host's IPv4 settings, so these
# reach every test namespace. tests/run.sh uses it for the first of its two runs when
# VNET_HOST_PROFILE=debian (CI sets it; the second run keeps the machine's own settings), so
# one CI run sees both. Needs root; without root it does nothing and says so.
set -euo pipefail
KEYS=(net.ipv4.conf.all.rp_filter net.ipv4.conf.default.rp_filter net.ipv4.ping_group_range
  net.ipv4.conf.all.promote_secondaries net.ipv4.conf.default.promote_secondaries)
cmd=${1:-}
if [ "$(id -u)" != 0 ]; then
  echo "host profile: not root, leaving the host as it is"
  exit 0
fi
case "$cmd" in
  apply)
    [ "${2:-}" = debian ] || { echo "host profile: unknown profile '${2:-}' (want debian)" >&2; exit 2; }
    state=${3:?state file}
    {
      echo "tun $(stat -c %a /dev/net/tun 2>/dev/null || echo none)"
      for k in "${KEYS[@]}"; do echo "sysctl $k $(sysctl -n "$k" | tr '\t' ' ')"; done
    } >"$state"
    [ -e /dev/net/tun ] && chmod 0666 /dev/net/tun
    sysctl -qw net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2 \
      "net.ipv4.ping_group_range=0 2147483647" net.ipv4.conf.all.promote_secondaries=1 \
      net.ipv4.conf.default.promote_secondaries=1
    echo "host profile debian: /dev/net/tun 0666, rp_filter 2, ping_group_range open, promote_secondaries 1"
    ;;
  restore)
    state=${2:?state file}
    [ -f "$state" ] || exit 0
    while read -r kind key val; do
      case "$kind" in
        tun) [ "$key" != none ] && chmod "$key" /dev/net/tun ;;
        sysctl) sysctl -qw "$key=$val" ;;
      esac
    done <"$state"
    rm -f "$state"
    echo "host profile: restored"
    ;;
  *)
    echo "usage: $0 apply debian STATEFILE | restore STATEFILE" >&2
    exit 2
    ;;
esac
