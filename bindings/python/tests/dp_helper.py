"""Run by test_datapath.py inside a private network namespace (``unshare -n``): a Datapath
with a real TAP and UDP underlay, and this script playing the remote VXLAN endpoint on a UDP
socket. Prints one JSON object with what it saw; exits non-zero on failure."""

import json
import socket
import struct
import subprocess
import sys
import time

import vnet

VNI = 42
A, B, C = "02:00:00:00:55:0a", "02:00:00:00:55:0b", "02:00:00:00:55:0c"
LOCAL, PEER = ("127.0.0.1", 4789), ("127.0.0.1", 4790)


def mac_bytes(m):
    return bytes(int(x, 16) for x in m.split(":"))


def vxlan(frame):
    return struct.pack("!II", 0x08000000, VNI << 8) + frame


def recv_vxlan(sock, want_type, timeout=5.0):
    """The next inner frame of EtherType @want_type received from the datapath."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, src = sock.recvfrom(65535)
        except socket.timeout:
            break
        flags, vni = struct.unpack("!II", data[:8])
        inner = data[8:]
        ethertype = struct.unpack("!H", inner[12:14])[0]
        if flags & 0x08000000 and vni >> 8 == VNI and ethertype == want_type:
            return inner, src
    raise SystemExit(f"no VXLAN frame of type {want_type:#x} from the datapath")


def main():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    out = {}
    with vnet.Table() as t:
        with t.batch(revision=1) as b:
            b.put(VNI, A, LOCAL, flags=vnet.EntryFlag.LOCAL)
            b.put(VNI, B, PEER, peer_id=2)
            b.put(VNI, C, PEER, peer_id=3)
            b.put_ip(VNI, "10.55.0.3", C)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(PEER)
        with vnet.Datapath(t, "tap:vpy0", "udp:127.0.0.1:4789", vni=VNI, mac=A,
                           addresses=["10.55.0.1/24"], peers=[PEER]) as dp:
            dp.start()
            out["repr"] = repr(dp)
            out["vport"] = dp.vport_info().ifname
            app = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            # 1. Unknown neighbour 10.55.0.2: the kernel's ARP request is flooded to the peer.
            app.sendto(b"hello", ("10.55.0.2", 9))
            arp, src = recv_vxlan(peer, 0x0806)
            out["arp_src"] = list(src)
            assert arp[0:6] == b"\xff" * 6 and arp[6:12] == mac_bytes(A), arp[:14].hex()
            assert socket.inet_ntoa(arp[14 + 24:14 + 28]) == "10.55.0.2"
            # 2. Answer it from B through the underlay, as a remote node would.
            reply = (mac_bytes(A) + mac_bytes(B) + b"\x08\x06" +
                     struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac_bytes(B) +
                     socket.inet_aton("10.55.0.2") + mac_bytes(A) + socket.inet_aton("10.55.0.1"))
            peer.sendto(vxlan(reply), LOCAL)
            # 3. The queued datagram now leaves as unicast to B's endpoint.
            ip, _ = recv_vxlan(peer, 0x0800)
            assert ip[0:6] == mac_bytes(B), ip[:14].hex()
            assert ip[14 + 28:14 + 28 + 5] == b"hello"
            neigh = subprocess.run(["ip", "neigh", "show", "10.55.0.2"], capture_output=True,
                                   text=True).stdout
            assert B in neigh, neigh
            # 4. 10.55.0.3 is bound in the table: its ARP is answered locally (ARP proxy).
            app.sendto(b"proxy", ("10.55.0.3", 9))
            ip, _ = recv_vxlan(peer, 0x0800)
            assert ip[0:6] == mac_bytes(C)
            st = dp.stats()
            out["stats"] = {"vport": st.vport.__dict__, "uport": st.uport.__dict__,
                            "flooded": st.flooded, "arp_replies": st.arp_replies,
                            "drops": st.drops}
            out["peers"] = [str(p.endpoint) for p in dp.peer_stats()]
            assert st.flooded >= 1 and st.arp_replies >= 1, st
            assert st.vport.rx_packets >= 3 and st.uport.tx_packets >= 3, st
            assert st.uport.rx_packets >= 1 and st.vport.tx_packets >= 1, st
            dp.stop()
            assert not dp.running
        assert t.stats().readers == 0  # the datapath unregistered
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
