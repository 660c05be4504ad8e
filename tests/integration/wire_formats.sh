#!/usr/bin/env bash
# The two data-plane wire formats, captured for real in network namespaces this test creates,
# and checked against docs/security.md section 5.2:
#   plain   two static vnet-nodes (VNI 42, UDP port 4789): UDP payload = VXLAN header (8 bytes,
#           flags 0x08, VNI) || inner Ethernet frame;
#   secure  a keyed controller and two managed vnet-nodes in a secure network (UDP port 4790):
#           UDP payload = seal header (16 bytes: version/suite, flags, counter, epoch) ||
#           ciphertext || tag (16), no VXLAN header.
# The same ping (ICMP echo request, 56 data bytes, a fixed pattern) goes n1 -> n2 over each;
# tcpdump on n1's underlay catches it. Checks: the documented fields are where the doc says,
# the secure payload is 24 bytes longer than the plain one (32 of seal overhead instead of 8 of
# VXLAN), never starts with the VXLAN flags byte 0x08, holds no plaintext, and its counter
# grows. With OUT, the annotated hex dumps are written there (the text docs/security.md shows).
# Usage: wire_formats.sh BUILD_DIR [OUT]
set -u
BUILD=$1
OUT=${2:-}
. "$(dirname "$0")/lib.sh"
need_root
for tool in tcpdump python3; do
  command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
NODE="$BUILD/examples/vnet-node"
CTL="$BUILD/examples/vnet-controller"
VNETCTL="$BUILD/examples/vnetctl"
K="$TMP/keys"
mkdir -m 700 "$K"
PATTERN=574952452d464f524d41542d         # "WIRE-FORMAT-", repeated by ping -p
M1=02:00:00:00:01:01
M2=02:00:00:00:01:02

underlay_init
underlay_host ctl 100
underlay_host n1 1
underlay_host n2 2

# Plain VXLAN: two static nodes on port 4789, TAP vp0.
in_ns n1 "$NODE" --dev tap:vp0 --underlay udp:10.200.0.1:4789 --vni 42 --mac $M1 \
  --ip 10.99.0.1/24 --peer 10.200.0.2:4789 --static $M2=10.200.0.2:4789 --arp 10.99.0.2=$M2 \
  >"$TMP/p1.log" 2>&1 &
PIDS+=($!)
in_ns n2 "$NODE" --dev tap:vp0 --underlay udp:10.200.0.2:4789 --vni 42 --mac $M2 \
  --ip 10.99.0.2/24 --peer 10.200.0.1:4789 --static $M1=10.200.0.1:4789 --arp 10.99.0.1=$M1 \
  >"$TMP/p2.log" 2>&1 &
PIDS+=($!)

# Secure: a keyed controller, network "sec" (VNI 43), managed nodes on port 4790, TAP vs0.
"$CTL" --genkey "$K/ctl.key" >"$K/ctl.pub"
CTLPUB=$(cat "$K/ctl.pub")
in_ns ctl "$CTL" --db "$TMP/vnet.db" --key "$K/ctl.key" --listen 10.200.0.100:7700 \
  --api 127.0.0.1:7701 >"$TMP/ctl.log" 2>&1 &
PIDS+=($!)
wait_listen ctl 7701 || exit 1
export VNET_CONTROLLER_KEY="$CTLPUB" VNET_TOKEN_FILE="$TMP/vnet.db.admin-token"
vnetctl() { in_ns ctl "$VNETCTL" --controller 127.0.0.1:7701 "$@"; }
vnetctl network create sec --mode secure --vni 43 --subnet 10.101.0.0/24 >/dev/null
for i in 1 2; do
  "$NODE" --genkey "$K/n$i.key" >"$K/n$i.pub"
  vnetctl node add sec n$i --pubkey "$(cat "$K/n$i.pub")" >/dev/null
  in_ns n$i "$NODE" --controller 10.200.0.100:7700 --network sec --name n$i --key "$K/n$i.key" \
    --controller-key "$CTLPUB" --dev tap:vs0 --underlay "udp:10.200.0.$i:4790" \
    >"$TMP/s$i.log" 2>&1 &
  PIDS+=($!)
done
for f in p1 p2; do wait_log "$TMP/$f.log" "up: vp0" || exit 1; done
for f in s1 s2; do wait_log "$TMP/$f.log" "up: vs0 in network sec " || exit 1; done
i=0
until vnetctl network status sec | grep -q "2 connected, 2 converged"; do
  i=$((i + 1)); [ $i -gt 300 ] && { vnetctl network status sec; exit 1; }
  sleep 0.05
done
check "plain: overlay up (ping n1 -> n2)" in_ns n1 ping -c 1 -W 2 10.99.0.2
check "secure: overlay up (ping n1 -> n2)" in_ns n1 ping -c 1 -W 2 10.101.0.2

# One capture on n1's underlay for both; the pings with the pattern are the packets shown.
capture_start n1 eth0 "$TMP/wire.pcap" udp and src host 10.200.0.1 || exit 1
TD=$CAP_PID
check "plain: 3 pings with the pattern" \
  in_ns n1 ping -c 3 -i 0.2 -W 2 -s 56 -p $PATTERN 10.99.0.2
check "secure: 3 pings with the pattern" \
  in_ns n1 ping -c 3 -i 0.2 -W 2 -s 56 -p $PATTERN 10.101.0.2
check "the capture holds the plain pings (control)" capture_wait "$TMP/wire.pcap" "WIRE-FORMAT-"
# the secure pings are encrypted: wait for the byte count instead (3 x (42 + 130) at least)
i=0
until python3 - "$TMP/wire.pcap" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
pos, n = 24, 0
while pos + 16 <= len(d):
    incl = struct.unpack_from("<I", d, pos + 8)[0]
    f = d[pos + 16:pos + 16 + incl]
    pos += 16 + incl
    if len(f) >= 42 and f[36:38] == b"\x12\xb6" and len(f) - 42 == 130:
        n += 1
sys.exit(0 if n >= 3 else 1)
PY
do
  i=$((i + 1)); [ $i -gt 200 ] && break
  sleep 0.05
done
capture_stop $TD

cat >"$TMP/wire.py" <<'PY'
# Check and dump the captured payloads: argv = pcap, output file or "-", unix time now.
import struct, sys

pcap, out, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = open(pcap, "rb").read()
assert struct.unpack_from("<I", d, 0)[0] == 0xA1B2C3D4, "a little-endian pcap"
assert struct.unpack_from("<I", d, 20)[0] == 1, "Ethernet captures"
frames, pos = [], 24
while pos + 16 <= len(d):
    incl = struct.unpack_from("<I", d, pos + 8)[0]
    frames.append(d[pos + 16:pos + 16 + incl])
    pos += 16 + incl

def udp(f):
    """(src, dst, sport, dport, payload) of an IPv4/UDP frame, or None."""
    if len(f) < 42 or f[12:14] != b"\x08\x00" or f[23] != 17:
        return None
    ihl = (f[14] & 15) * 4
    sport, dport, ulen = struct.unpack_from("!HHH", f, 14 + ihl)
    src = ".".join(map(str, f[26:30]))
    dst = ".".join(map(str, f[30:34]))
    return src, dst, sport, dport, f[14 + ihl + 8:14 + ihl + ulen]

INNER = 14 + 20 + 8 + 56  # inner Ethernet + IPv4 + ICMP + 56 data bytes: 98
pat = bytes.fromhex("574952452d464f524d41542d")
plain = [u for u in map(udp, frames) if u and u[3] == 4789 and pat in u[4]]
secure = [u for u in map(udp, frames) if u and u[3] == 4790 and len(u[4]) == INNER + 32]
fails = []
def check(what, ok):
    print(("ok   - " if ok else "FAIL - ") + what)
    if not ok:
        fails.append(what)

check("plain: 3 echo requests captured", len(plain) == 3)
check("secure: 3 echo-request-sized packets captured", len(secure) >= 3)
if len(plain) < 1 or len(secure) < 3:
    sys.exit(1)
p = plain[0][4]
check("plain: VXLAN flags byte 0x08 at offset 0, reserved bytes 1..3 zero", p[0:4] == b"\x08\0\0\0")
check("plain: VNI 42 at offsets 4..6, byte 7 zero", p[4:7] == (42).to_bytes(3, "big") and p[7] == 0)
check("plain: the inner frame follows at offset 8 (n2's MAC, IPv4)",
      p[8:14] == bytes.fromhex("020000000102") and p[20:22] == b"\x08\x00")
check("plain: UDP payload = 8 + %d bytes" % INNER, len(p) == 8 + INNER)
epoch_now = (now - 1577836800)  # VNET_SEAL_EPOCH_BASE_S: 2020-01-01 UTC
last = None
for k, s in enumerate(x[4] for x in secure[:3]):
    ctr = int.from_bytes(s[2:8], "big")
    epoch = int.from_bytes(s[8:16], "big")
    if k == 0:
        check("secure: no VXLAN header (offset 0 is not the flags byte 0x08)", s[0] != 0x08)
        check("secure: offset 0 = version 1 (high nibble), suite 1 or 2 (low nibble)",
              s[0] >> 4 == 1 and s[0] & 15 in (1, 2))
        check("secure: offset 1 = flags 0", s[1] == 0)
        check("secure: offsets 8..15 = epoch, high 32 bits = seconds since 2020 (now %d)"
              % epoch_now, abs((epoch >> 32) - epoch_now) <= 600)
        check("secure: UDP payload = 16 + %d + 16 bytes (24 more than plain)" % INNER,
              len(s) == 16 + INNER + 16 and len(s) - len(p) == 24)
        check("secure: the ping pattern is nowhere in the secure packets",
              all(pat[:6] not in x[4] for x in secure))
    elif last and epoch == last[1]:
        check("secure: offsets 2..7 = 48-bit counter, growing (%d > %d)" % (ctr, last[0]),
              ctr > last[0])
    last = (ctr, epoch)

def hexdump(b):
    lines = []
    for o in range(0, len(b), 16):
        row = b[o:o + 16]
        h = " ".join("%02x" % c for c in row[:8]) + "  " + " ".join("%02x" % c for c in row[8:])
        a = "".join(chr(c) if 32 <= c < 127 else "." for c in row)
        lines.append("%04x  %-49s %s" % (o, h, a))
    return "\n".join(lines)

def mac(b):
    return ":".join("%02x" % c for c in b)

src, dst, sport, dport, _ = plain[0]
txt = []
txt.append("Plain VXLAN (a plain network; here two static nodes), n1 -> n2: ping -s 56, UDP %s:%d -> %s:%d, UDP payload %d bytes"
           % (src, sport, dst, dport, len(p)))
txt.append("```")
txt.append(hexdump(p))
txt.append("```")
txt.append("- 0..7 VXLAN header: flags `%02x` (I bit), reserved `%s`, VNI `%s` (%d), reserved `%02x`"
           % (p[0], p[1:4].hex(" "), p[4:7].hex(" "), int.from_bytes(p[4:7], "big"), p[7]))
txt.append("- 8..%d the inner Ethernet frame in the clear: dst %s, src %s, type %s, IPv4 ICMP echo "
           "request 10.99.0.1 -> 10.99.0.2 with the ping pattern readable" % (len(p) - 1, mac(p[8:14]),
           mac(p[14:20]), p[20:22].hex()))
txt.append("")
src, dst, sport, dport, s = secure[0]
txt.append("Secure (`--mode secure`), n1 -> n2: the same ping, UDP %s:%d -> %s:%d, UDP payload %d bytes"
           % (src, sport, dst, dport, len(s)))
txt.append("```")
txt.append(hexdump(s))
txt.append("```")
suite = {1: "AES-256-GCM", 2: "ChaCha20-Poly1305"}.get(s[0] & 15, "?")
epoch = int.from_bytes(s[8:16], "big")
txt.append("- 0 `%02x`: version %d, suite %d (%s); 1 `%02x`: flags" % (s[0], s[0] >> 4, s[0] & 15, suite, s[1]))
txt.append("- 2..7 `%s`: counter %d" % (s[2:8].hex(" "), int.from_bytes(s[2:8], "big")))
txt.append("- 8..15 `%s`: epoch, time part %d s after 2020-01-01, random part 0x%08x"
           % (s[8:16].hex(" "), epoch >> 32, epoch & 0xFFFFFFFF))
txt.append("- 16..%d: ciphertext of the %d-byte inner frame; %d..%d: the tag"
           % (15 + INNER, INNER, 16 + INNER, len(s) - 1))
text = "\n".join(txt) + "\n"
if out != "-":
    open(out, "w").write(text)
else:
    print(text)
sys.exit(1 if fails else 0)
PY
python3 "$TMP/wire.py" "$TMP/wire.pcap" "${OUT:--}" "$(date +%s)" >"$TMP/wire.out" 2>&1
RC=$?
grep -E "^(ok  |FAIL)" "$TMP/wire.out"
PASSES=$((PASSES + $(grep -c "^ok  " "$TMP/wire.out")))
FAILS=$((FAILS + $(grep -c "^FAIL" "$TMP/wire.out")))
[ $RC -eq 0 ] || { FAILS=$((FAILS + 1)); grep -vE "^(ok  |FAIL)" "$TMP/wire.out" | tail -20; }
[ -z "$OUT" ] && grep -vE "^(ok  |FAIL)" "$TMP/wire.out"
finish
