"""A node's data plane from Python: ports opened by backend name and a datapath between them.

:class:`Datapath` opens the virtual port (``"tap:NAME"``, or any registered backend) and the
underlay port (``"udp:IP:PORT"``) with ``vnet_port_open``, creates a ``struct vnet_datapath``
over a :class:`~vnet.table.Table`, and either runs libvnet's worker thread (:meth:`start`) or
lets the caller drive it (:meth:`fds` + :meth:`poll`). Packets never cross into Python.

Threads: the thread that writes the table is also the one that calls :meth:`set_peers`,
:meth:`add_local_mac` and :meth:`learn_drain` (libvnet's "writer thread" rule); the worker
thread only reads the table. Opening TAP devices needs root (CAP_NET_ADMIN).
"""

from __future__ import annotations

import ctypes
import errno
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from . import _lib
from ._lib import lib
from .addr import (
    Endpoint,
    EndpointLike,
    MacLike,
    PrefixLike,
    endpoint_from_c,
    endpoint_to_c,
    mac_from_c,
    mac_to_c,
    prefix_to_c,
)
from .errors import InvalidArgumentError, StateError, check
from .table import Table

__all__ = ["Datapath", "DatapathStats", "PortStats", "PeerStats", "PortInfo"]


@dataclass(frozen=True)
class PortStats:
    rx_packets: int
    rx_bytes: int
    tx_packets: int
    tx_bytes: int


@dataclass(frozen=True)
class PeerStats:
    endpoint: Optional[Endpoint]
    tx_packets: int
    tx_bytes: int
    rx_packets: int
    rx_bytes: int


@dataclass(frozen=True)
class DatapathStats:
    """``struct vnet_datapath_stats``; ``drops`` and ``decap`` are keyed by reason name and
    hold only the non-zero counters."""

    vport: PortStats
    uport: PortStats
    drops: Dict[str, int]
    decap: Dict[str, int]
    arp_replies: int
    nd_replies: int
    flooded: int
    learned: int
    gso_frames: int
    gro_frames: int
    too_big_sent: int

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())


@dataclass(frozen=True)
class PortInfo:
    backend: str
    ifname: str
    ifindex: int
    mac: Optional[str]
    mtu: int
    local: Optional[Endpoint]
    caps: int
    queues: int


def _port_stats(p: _lib.DpPortStats) -> PortStats:
    return PortStats(p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes)


class Datapath:
    """The forwarding engine between a virtual port and the underlay, for one VNI.

    Args:
        table: the switch table it forwards with (borrowed: kept alive, not closed).
        vport: the virtual port's spec, ``"tap:NAME"`` (or a registered backend's).
        uport: the underlay's spec, ``"udp:IP:PORT"`` or ``"udp:[IPv6]:PORT"``.
        vni: the network's VXLAN network identifier.
        mtu: inner MTU (also set on the TAP); 0: 1450 (1430 over an IPv6 underlay).
        mac: the TAP's MAC (set on the device, and registered as local); None: keep the
            kernel's.
        addresses: prefixes to add to the TAP (``"10.0.0.1/24"``), via rtnetlink.
        peers: the flood list (every other node's underlay endpoint).
        learn: learn source MACs of frames from known peers.
        arp_proxy: answer ARP / neighbour solicitations from the table's IP bindings.
        offload: TSO / checksum offload on the TAP, GSO / GRO on the UDP socket.
        burst: packets per burst (1..64; 0: 64).

    :meth:`start` runs libvnet's worker thread; :meth:`close` (or the context manager) stops
    it and closes both ports.
    """

    def __init__(
        self,
        table: Table,
        vport: str,
        uport: str,
        vni: int,
        mtu: int = 0,
        mac: Optional[MacLike] = None,
        addresses: Sequence[PrefixLike] = (),
        peers: Sequence[EndpointLike] = (),
        learn: bool = False,
        arp_proxy: bool = True,
        offload: bool = True,
        burst: int = 0,
    ):
        self._table = table
        self._dp: Optional[int] = None
        self._vport: Optional[int] = None
        self._uport: Optional[int] = None
        self._started = False
        self.vni = vni
        self.vport_spec = vport
        self.uport_spec = uport
        if not uport.startswith("udp:"):
            raise InvalidArgumentError(-errno.EINVAL, f"bad underlay {uport!r}: want udp:IP:PORT")
        local = endpoint_to_c(uport[4:])
        if not mtu:
            mtu = 1500 - (70 if local.ip.family == 6 else 50)
        self.mtu = mtu
        try:
            vcfg = _lib.PortCfg()
            vcfg.mtu = mtu
            vcfg.up = True
            vcfg.offload = offload
            if mac is not None:
                vcfg.mac = mac_to_c(mac)
                vcfg.set_mac = True
            h = ctypes.c_void_p()
            check(lib.vnet_port_open(vport.encode(), ctypes.byref(vcfg), ctypes.byref(h)), vport)
            self._vport = h.value
            info = self.vport_info()
            for p in addresses:
                check(
                    lib.vnet_netdev_add_addr(info.ifname.encode(), ctypes.byref(prefix_to_c(p))),
                    f"address {p} on {info.ifname}",
                )
            ucfg = _lib.PortCfg()
            ucfg.offload = offload
            h = ctypes.c_void_p()
            check(lib.vnet_port_open(uport.encode(), ctypes.byref(ucfg), ctypes.byref(h)), uport)
            self._uport = h.value
            dcfg = _lib.DatapathCfg()
            dcfg.table = table._handle()
            dcfg.vport = self._vport
            dcfg.uport = self._uport
            dcfg.vni = vni
            dcfg.learn = learn
            dcfg.no_arp_proxy = not arp_proxy
            dcfg.mtu = mtu
            dcfg.burst = burst
            h = ctypes.c_void_p()
            check(lib.vnet_datapath_create(ctypes.byref(dcfg), ctypes.byref(h)), "datapath")
            self._dp = h.value
            table._datapaths.add(self)
            if mac is not None:
                self.add_local_mac(mac)
            if peers:
                self.set_peers(peers)
        except BaseException:
            self.close()
            raise

    # ---- lifetime ----

    def _handle(self) -> int:
        if self._dp is None:
            raise StateError(-4000 - 4, "datapath is closed")
        return self._dp

    def start(self) -> "Datapath":
        """Run libvnet's worker thread (poll(2) on both ports, 100 ms timeout)."""
        if not self._started:
            check(lib.vnet_datapath_start(self._handle()), "datapath start")
            self._started = True
        return self

    def stop(self) -> None:
        if self._started and self._dp is not None:
            lib.vnet_datapath_stop(self._dp)
        self._started = False

    @property
    def running(self) -> bool:
        return self._started

    def close(self) -> None:
        """Stop the worker, destroy the datapath and close both ports (idempotent)."""
        self.stop()
        if self._dp is not None:
            lib.vnet_datapath_destroy(self._dp)
            self._dp = None
            self._table._datapaths.discard(self)
        if self._uport is not None:
            lib.vnet_port_close(self._uport)
            self._uport = None
        if self._vport is not None:
            lib.vnet_port_close(self._vport)
            self._vport = None

    @property
    def closed(self) -> bool:
        return self._dp is None

    def __enter__(self) -> "Datapath":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        if self._dp is None:
            return "<vnet.Datapath closed>"
        state = "running" if self._started else "stopped"
        return f"<vnet.Datapath {self.vport_spec} <-> {self.uport_spec} vni={self.vni} {state}>"

    # ---- configuration (table writer thread) ----

    def set_peers(self, peers: Sequence[EndpointLike]) -> None:
        """Replace the flood list: every other node's underlay endpoint."""
        arr = (_lib.Endpoint * max(1, len(peers)))(*[endpoint_to_c(p) for p in peers])
        check(lib.vnet_datapath_set_peers(self._handle(), arr, len(peers)), "set_peers")

    def add_local_mac(self, mac: MacLike) -> None:
        """A MAC of this node: frames claiming it from the underlay are dropped."""
        check(lib.vnet_datapath_add_local_mac(self._handle(), ctypes.byref(mac_to_c(mac))))

    def learn_drain(self) -> int:
        """Write queued learned entries into the table; returns how many."""
        return check(lib.vnet_datapath_learn_drain(self._handle()), "learn_drain")

    @property
    def learn_fd(self) -> int:
        """An eventfd, readable when :meth:`learn_drain` has work."""
        return int(lib.vnet_datapath_learn_fd(self._handle()))

    # ---- driving it yourself (instead of start) ----

    def fds(self) -> Tuple[int, int]:
        """The fds to poll for readability: (virtual port, underlay)."""
        fds = (ctypes.c_int * 2)()
        check(lib.vnet_datapath_fds(self._handle(), fds), "fds")
        return fds[0], fds[1]

    def poll(self, budget: int = 64) -> int:
        """Handle up to ``budget`` packets from each port; never blocks. Not while started."""
        if self._started:
            raise StateError(-4000 - 4, "poll() while the worker thread runs")
        return check(lib.vnet_datapath_poll(self._handle(), budget), "poll")

    # ---- inspection ----

    def stats(self) -> DatapathStats:
        s = _lib.DatapathStats()
        lib.vnet_datapath_get_stats(self._handle(), ctypes.byref(s))
        drops = {
            lib.vnet_dp_drop_name(i).decode(): s.drops[i]
            for i in range(_lib.VNET_DP_DROP__MAX)
            if s.drops[i]
        }
        decap = {lib.vnet_drop_reason_name(i).decode(): s.decap[i] for i in range(32) if s.decap[i]}
        return DatapathStats(
            vport=_port_stats(s.vport),
            uport=_port_stats(s.uport),
            drops=drops,
            decap=decap,
            arp_replies=s.arp_replies,
            nd_replies=s.nd_replies,
            flooded=s.flooded,
            learned=s.learned,
            gso_frames=s.gso_frames,
            gro_frames=s.gro_frames,
            too_big_sent=s.too_big_sent,
        )

    def peer_stats(self) -> List[PeerStats]:
        arr = (_lib.DpPeerStats * 256)()
        n = int(lib.vnet_datapath_peer_stats(self._handle(), arr, 256))
        return [
            PeerStats(endpoint_from_c(p.ep), p.tx_packets, p.tx_bytes, p.rx_packets, p.rx_bytes)
            for p in arr[: min(n, 256)]
        ]

    def _info(self, h: Optional[int]) -> PortInfo:
        if h is None:
            raise StateError(-4000 - 4, "port is closed")
        i = _lib.PortInfo()
        check(lib.vnet_port_get_info(h, ctypes.byref(i)), "port info")
        return PortInfo(
            backend=(i.backend or b"").decode(),
            ifname=i.ifname.decode(),
            ifindex=i.ifindex,
            mac=mac_from_c(i.mac) if any(i.mac.b) else None,
            mtu=i.mtu,
            local=endpoint_from_c(i.local),
            caps=i.caps,
            queues=i.queues,
        )

    def vport_info(self) -> PortInfo:
        return self._info(self._vport)

    def uport_info(self) -> PortInfo:
        return self._info(self._uport)
