"""The subscriber API: requests to a vnet-controller, as vnetctl makes them.

A :class:`Client` wraps ``struct vnet_client`` (blocking sockets with a timeout, no event
loop). Each method is one typed call of ``include/vnet/client.h`` (``vnet_client_network_create``,
``vnet_client_node_add``, ...), the same calls ``examples/vnetctl.c`` makes; the results become
dataclasses. A refusal raises the :class:`~vnet.errors.VnetError` subclass for the controller's
code, with its text: :class:`~vnet.errors.ConflictError` (``VNET_EEXIST``),
:class:`~vnet.errors.NotFoundError` (``VNET_ENOENT``), :class:`~vnet.errors.AccessDeniedError`
(``VNET_EACCES``/``VNET_EPERM``), :class:`~vnet.errors.InvalidArgumentError` (``VNET_EINVAL``),
...

A client handle is for one thread at a time (the library's rule).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import enum
import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator, List, Optional, Sequence, Union

from . import _lib
from ._lib import lib
from .addr import (
    Endpoint,
    EndpointLike,
    IPAddress,
    IPInterface,
    IPLike,
    MacLike,
    PrefixLike,
    endpoint_from_c,
    endpoint_to_c,
    format_pubkey,
    ip_from_c,
    ip_to_c,
    mac_from_c,
    mac_to_c,
    parse_pubkey,
    prefix_from_c,
    prefix_to_c,
)
from .errors import InvalidArgumentError, StateError, error_from_code

__all__ = [
    "Client",
    "Network",
    "Node",
    "NodeState",
    "NodeStatus",
    "NetworkStatus",
    "Report",
    "ReportPeer",
    "Subscriber",
]

_ERRLEN = 512


class NodeState(enum.IntEnum):
    PENDING = 0  # added, never connected
    ACTIVE = 1  # has connected at least once
    REMOVED = 2


@dataclass
class Node:
    """A node of a network (``struct vnet_node_info``)."""

    name: str
    id: int
    network_id: int
    mac: str
    ip4: Optional[IPAddress]
    ip6: Optional[IPAddress]
    phys: Optional[Endpoint]  # configured underlay endpoint
    observed: Optional[Endpoint]  # as reported by the node / seen by the controller
    pubkey: Optional[str]
    state: NodeState
    revision: int
    join_token: Optional[str] = field(default=None, repr=False)  # node_add only, shown once

    @classmethod
    def _from_c(cls, n: _lib.Node) -> "Node":
        return cls(
            name=n.name.decode(),
            id=n.id,
            network_id=n.network_id,
            mac=mac_from_c(n.mac),
            ip4=ip_from_c(n.ips[0]),
            ip6=ip_from_c(n.ips[1]),
            phys=endpoint_from_c(n.phys),
            observed=endpoint_from_c(n.observed),
            pubkey=format_pubkey(bytes(n.pubkey)) if n.has_pubkey else None,
            state=NodeState(n.state) if n.state in (0, 1, 2) else n.state,
            revision=n.revision,
        )

    def __repr__(self) -> str:
        ips = " ".join(str(a) for a in (self.ip4, self.ip6) if a is not None)
        where = self.phys or self.observed
        return (
            f"<Node {self.name!r} id={self.id} {self.mac} {ips or '-'} at {where or '-'} "
            f"{self.state.name.lower()} rev={self.revision}>"
        )


@dataclass
class Network:
    """A virtual network (``struct vnet_network``); ``nodes`` is filled by network_show."""

    name: str
    id: int
    vni: int
    subnet4: Optional[IPInterface]
    subnet6: Optional[IPInterface]
    mtu: int
    mode: str  # "plain" or "secure"
    revision: int
    subscriber_id: int
    nodes: List[Node] = field(default_factory=list, repr=False)
    owner: Optional[str] = None  # the owner's name, in the admin's network_list

    @classmethod
    def _from_c(cls, n: _lib.Network) -> "Network":
        return cls(
            name=n.name.decode(),
            id=n.id,
            vni=n.vni,
            subnet4=prefix_from_c(n.subnet4),
            subnet6=prefix_from_c(n.subnet6),
            mtu=n.mtu,
            mode="secure" if n.mode else "plain",
            revision=n.revision,
            subscriber_id=n.subscriber_id,
        )

    def __repr__(self) -> str:
        subnets = " ".join(str(s) for s in (self.subnet4, self.subnet6) if s is not None)
        owner = f" owner={self.owner}" if self.owner else ""
        nodes = f" {len(self.nodes)} nodes" if self.nodes else ""
        return (
            f"<Network {self.name!r} vni={self.vni} {subnets or '-'} mtu={self.mtu} "
            f"{self.mode} rev={self.revision}{owner}{nodes}>"
        )


@dataclass
class ReportPeer:
    """A peer in a node's report: its counters as this node sees them and whether it is
    reached (``"direct"``: packets came from it within three report intervals; ``"none"``)."""

    node_id: int  # 0: a peer the controller did not describe
    endpoint: Optional[Endpoint]
    rx_packets: int
    rx_bytes: int
    tx_packets: int
    tx_bytes: int
    last_rx_ms: Optional[int]  # how long before the report a packet last came from it
    reach: str
    rtt_us: Optional[int]  # data-plane round trip, when measured


@dataclass
class Report:
    """A node's last periodic report (``struct vnet_report``), ``age_ms`` old. ``virtual``
    and ``underlay`` are the ports' counters as the data plane counts them: on the virtual
    port ``rx`` is what the host sent, ``tx`` what it received."""

    age_ms: int
    virtual: dict
    underlay: dict
    drops: int
    drop_reasons: dict  # name -> count, non-zero ones
    table_size: int
    peers: List[ReportPeer]

    @property
    def bytes_in(self) -> int:
        return self.virtual["tx_bytes"]

    @property
    def bytes_out(self) -> int:
        return self.virtual["rx_bytes"]

    @classmethod
    def _from_c(cls, r: _lib.Report, age_ms: int) -> "Report":
        def counters(c: _lib.ReportCounters) -> dict:
            return {k: getattr(c, k) for k in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes")}

        return cls(
            age_ms=age_ms,
            virtual=counters(r.virt),
            underlay=counters(r.under),
            drops=r.drops,
            drop_reasons={
                lib.vnet_dp_drop_name(i).decode(): r.drop_reasons[i]
                for i in range(_lib.VNET_REPORT_DROPS)
                if r.drop_reasons[i]
            },
            table_size=r.table_size,
            peers=[
                ReportPeer(
                    node_id=p.node_id,
                    endpoint=endpoint_from_c(p.ep),
                    rx_packets=p.c.rx_packets,
                    rx_bytes=p.c.rx_bytes,
                    tx_packets=p.c.tx_packets,
                    tx_bytes=p.c.tx_bytes,
                    last_rx_ms=p.last_rx_ms if p.has_last_rx else None,
                    reach="direct" if p.reach == _lib.REACH_DIRECT else "none",
                    rtt_us=p.rtt_us if p.has_rtt else None,
                )
                for p in (r.peers[k] for k in range(r.npeers))
            ],
        )


@dataclass
class NodeStatus:
    """What the controller knows of a node's session, and its last report."""

    node: Node
    connected: bool
    acked: int  # the revision the node acknowledged last
    converged: bool  # acked == the network's revision
    connected_since_ms: int  # unix time in ms, 0 when not connected
    last_seen_ms: int = 0  # unix time in ms of its last frame; 0: not since the controller started
    session_from: Optional[Endpoint] = None  # where its session comes from
    report: Optional[Report] = None  # its last report (memory only on the controller)

    def __repr__(self) -> str:
        conn = "connected" if self.connected else "disconnected"
        conv = "converged" if self.converged else "behind"
        return f"<NodeStatus {self.node.name!r} {conn} acked={self.acked} {conv}>"


@dataclass
class NetworkStatus:
    """``network status``: the network and one :class:`NodeStatus` per node."""

    network: Network
    nodes: List[NodeStatus]

    @property
    def connected(self) -> int:
        return sum(1 for s in self.nodes if s.connected)

    @property
    def converged(self) -> int:
        return sum(1 for s in self.nodes if s.converged)

    def __repr__(self) -> str:
        return (
            f"<NetworkStatus {self.network.name!r} rev={self.network.revision} "
            f"{len(self.nodes)} nodes, {self.connected} connected, {self.converged} converged>"
        )


@dataclass
class Subscriber:
    """A subscriber (``struct vnet_subscriber``); ``token`` is set by subscriber_create and
    subscriber_token only (shown once)."""

    name: str
    id: int
    admin: bool
    has_token: bool
    token: Optional[str] = field(default=None, repr=False)

    @classmethod
    def _from_c(cls, s: _lib.Subscriber) -> "Subscriber":
        return cls(name=s.name.decode(), id=s.id, admin=bool(s.admin), has_token=bool(s.has_token))


def _name(s: str, what: str) -> bytes:
    """The name's bytes; the library judges its length (VNET_EINVAL)."""
    if not isinstance(s, str):
        raise TypeError(f"{what}: expected str, got {type(s).__name__}")
    return s.encode()


def _one_or_many(v) -> Iterable:
    if v is None:
        return ()
    return v if isinstance(v, (list, tuple)) else (v,)


class Client:
    """A connection to a vnet-controller's subscriber API.

    Args:
        addr: ``"IP:PORT"``, ``"[IPv6]:PORT"`` or a Unix socket path (anything with a ``/``).
        controller_key: the controller's public key (43 base64 characters, or 32 bytes) to pin;
            needed over TCP when the controller has a key. Ignored over the Unix socket.
        token: your API token (``"vnetapi1-..."``); needs ``controller_key``.
        timeout: seconds, bounding the connect and every request.

    Use it as a context manager, or call :meth:`close`. Raises
    :class:`~vnet.errors.VnetError` subclasses when the connection fails (e.g.
    :class:`~vnet.errors.AccessDeniedError` for a refused token).
    """

    def __init__(
        self,
        addr: Union[str, "os.PathLike[str]"],
        controller_key: Union[str, bytes, None] = None,
        token: Optional[str] = None,
        timeout: float = 10.0,
    ):
        self.addr = os.fspath(addr)
        self._h: Optional[int] = None
        if timeout <= 0:
            raise InvalidArgumentError(-errno.EINVAL, "timeout must be positive")
        opts = _lib.ClientOpts()
        opts.timeout_ms = max(1, int(timeout * 1000))
        keybuf = None
        if controller_key is not None:
            keybuf = (ctypes.c_uint8 * 32)(*parse_pubkey(controller_key))
            opts.controller_pub = ctypes.cast(keybuf, ctypes.POINTER(ctypes.c_uint8))
        tok = token.strip().encode() if token else None
        opts.token = tok
        err = ctypes.create_string_buffer(_ERRLEN)
        h = ctypes.c_void_p()
        rc = lib.vnet_client_connect2(
            self.addr.encode(), ctypes.byref(opts), ctypes.byref(h), err, _ERRLEN
        )
        if rc:
            raise error_from_code(rc, err.value.decode(errors="replace") or None, self.addr)
        self._h = h.value

    # ---- lifetime ----

    def close(self) -> None:
        if self._h is not None:
            lib.vnet_client_close(self._h)
            self._h = None

    @property
    def closed(self) -> bool:
        return self._h is None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<vnet.Client {self.addr} {'closed' if self._h is None else 'open'}>"

    # ---- plumbing ----

    def _call(self, fn, what: str, *args) -> None:
        """fn(handle, *args, err, errlen); raises the error for a negative code."""
        if self._h is None:
            raise StateError(-4000 - 4, "client is closed")
        err = ctypes.create_string_buffer(_ERRLEN)
        rc = fn(self._h, *args, err, _ERRLEN)
        if rc:
            raise error_from_code(rc, err.value.decode(errors="replace") or None, what)

    @contextlib.contextmanager
    def _list(self, fn, ctype, what: str, *args) -> Iterator:
        """A list result of @fn, freed (vnet_client_free) when the block ends."""
        out = ctypes.POINTER(ctype)()
        self._call(fn, what, *args, ctypes.byref(out))
        try:
            yield out.contents
        finally:
            lib.vnet_client_free(out)

    # ---- networks ----

    def network_create(
        self,
        name: str,
        vni: Optional[int] = None,
        subnet: Union[PrefixLike, Sequence[PrefixLike], None] = None,
        mtu: Optional[int] = None,
        mode: Optional[str] = None,
    ) -> Network:
        """Create a network. ``subnet``: one prefix or a list (one IPv4, one IPv6); ``mode``:
        ``"plain"`` or ``"secure"`` (the controller's default when None)."""
        o = _lib.ClientNetworkOpts()
        if vni is not None:  # 0 would ask for the default
            if not isinstance(vni, int) or not 1 <= vni <= _lib.VNET_VNI_MAX:
                raise InvalidArgumentError(-errno.EINVAL, f"bad vni {vni!r}: want 1..16777215")
            o.vni = vni
        for s in _one_or_many(subnet):
            p = prefix_to_c(s)
            if (o.subnet4 if p.ip.family == 4 else o.subnet6).ip.family:
                raise InvalidArgumentError(
                    -errno.EINVAL, f"two IPv{p.ip.family} subnets: a network has at most one "
                    "IPv4 and one IPv6 subnet")
            if p.ip.family == 4:
                o.subnet4 = p
            else:
                o.subnet6 = p
        if mtu is not None:
            if not isinstance(mtu, int) or not 576 <= mtu <= 65000:
                raise InvalidArgumentError(-errno.EINVAL, f"bad mtu {mtu!r}: want 576..65000")
            o.mtu = mtu
        if mode is not None:
            modes = {"plain": _lib.CLIENT_MODE_PLAIN, "secure": _lib.CLIENT_MODE_SECURE}
            if mode not in modes:
                raise InvalidArgumentError(-errno.EINVAL, f"bad mode {mode!r}: plain or secure")
            o.mode = modes[mode]
        out = _lib.Network()
        self._call(
            lib.vnet_client_network_create,
            f"network create {name}",
            _name(name, "network name"),
            ctypes.byref(o),
            ctypes.byref(out),
        )
        return Network._from_c(out)

    def network_list(self) -> List[Network]:
        with self._list(lib.vnet_client_network_list, _lib.ClientNetworks, "network list") as r:
            nets = [Network._from_c(r.networks[i]) for i in range(r.count)]
            if r.owners:  # the admin's view
                for i, n in enumerate(nets):
                    n.owner = r.owners[i].name.decode() or None
            return nets

    def network_show(self, name: str) -> Network:
        """The network, with its nodes in ``.nodes``."""
        what = f"network show {name}"
        with self._list(
            lib.vnet_client_network_show, _lib.ClientNetwork, what, _name(name, "network name")
        ) as r:
            net = Network._from_c(r.network)
            net.nodes = [Node._from_c(r.nodes[i]) for i in range(r.count)]
            return net

    def network_delete(self, name: str) -> None:
        self._call(
            lib.vnet_client_network_delete, f"network delete {name}", _name(name, "network name")
        )

    def network_status(self, name: str) -> NetworkStatus:
        what = f"network status {name}"
        with self._list(
            lib.vnet_client_network_status, _lib.ClientStatus, what, _name(name, "network name")
        ) as r:
            net = Network._from_c(r.network)
            st = [
                NodeStatus(
                    node=Node._from_c(s.node),
                    connected=bool(s.connected),
                    acked=s.acked,
                    converged=s.acked == net.revision,
                    connected_since_ms=s.connected_since_ms,
                    last_seen_ms=s.last_seen_ms,
                    session_from=endpoint_from_c(s.session_from),
                    report=Report._from_c(s.report, s.report_age_ms) if s.has_report else None,
                )
                for s in (r.nodes[i] for i in range(r.count))
            ]
            return NetworkStatus(net, st)

    # ---- nodes ----

    def node_add(
        self,
        network: str,
        name: str,
        mac: Optional[MacLike] = None,
        ip: Union[IPLike, Sequence[IPLike], None] = None,
        phys: Optional[EndpointLike] = None,
        pubkey: Union[str, bytes, None] = None,
    ) -> Node:
        """Add a node. ``ip``: one address or a list (one IPv4, one IPv6); default the next free
        ones. The returned node's ``join_token`` holds its single-use join token when the
        controller has a key and no ``pubkey`` was given."""
        o = _lib.ClientNodeOpts()
        if mac is not None:
            o.mac = mac_to_c(mac)
            o.has_mac = True
        for a in _one_or_many(ip):
            c = ip_to_c(a)
            if c.family == 4:
                o.ip4 = c
            else:
                o.ip6 = c
        if phys is not None:
            o.phys = endpoint_to_c(phys)
        if pubkey is not None:
            o.pubkey[:] = list(parse_pubkey(pubkey))
            o.has_pubkey = True
        out = _lib.ClientNewNode()
        self._call(
            lib.vnet_client_node_add,
            f"node add {network} {name}",
            _name(network, "network name"),
            _name(name, "node name"),
            ctypes.byref(o),
            ctypes.byref(out),
        )
        node = Node._from_c(out.node)
        node.join_token = out.join_token.decode() or None
        return node

    def node_list(self, network: str) -> List[Node]:
        what = f"node list {network}"
        with self._list(
            lib.vnet_client_node_list, _lib.ClientNodes, what, _name(network, "network name")
        ) as r:
            return [Node._from_c(r.nodes[i]) for i in range(r.count)]

    def _node_call(self, fn, what: str, network: str, name: str, *args) -> Node:
        out = _lib.Node()
        names = (_name(network, "network name"), _name(name, "node name"))
        self._call(fn, f"{what} {network} {name}", *names, *args, ctypes.byref(out))
        return Node._from_c(out)

    def node_show(self, network: str, name: str) -> Node:
        return self._node_call(lib.vnet_client_node_show, "node show", network, name)

    def node_move(self, network: str, name: str, phys: EndpointLike) -> Node:
        """Set a node's physical endpoint."""
        ep = endpoint_to_c(phys)
        return self._node_call(
            lib.vnet_client_node_move, "node move", network, name, ctypes.byref(ep)
        )

    def node_remove(self, network: str, name: str) -> None:
        self._call(
            lib.vnet_client_node_remove,
            f"node remove {network} {name}",
            _name(network, "network name"),
            _name(name, "node name"),
        )

    def node_revoke(self, network: str, name: str) -> None:
        """Forget a node's key: it is disconnected and refused until it enrols again."""
        self._call(
            lib.vnet_client_node_revoke,
            f"node revoke {network} {name}",
            _name(network, "network name"),
            _name(name, "node name"),
        )

    # ---- subscribers (the admin only) ----

    def _new_token(self, fn, what: str, name: str) -> Subscriber:
        out = _lib.ClientNewToken()
        self._call(fn, f"{what} {name}", _name(name, "subscriber name"), ctypes.byref(out))
        sub = Subscriber._from_c(out.subscriber)
        sub.token = out.token.decode()
        ctypes.memset(ctypes.addressof(out), 0, ctypes.sizeof(out))
        return sub

    def subscriber_create(self, name: str) -> Subscriber:
        """Create a subscriber; its API token (shown this once) is in ``.token``."""
        return self._new_token(lib.vnet_client_subscriber_create, "subscriber create", name)

    def subscriber_token(self, name: str) -> Subscriber:
        """A new API token for a subscriber (in ``.token``); the old one stops working."""
        return self._new_token(lib.vnet_client_subscriber_token, "subscriber token", name)

    def subscriber_list(self) -> List[Subscriber]:
        what = "subscriber list"
        with self._list(lib.vnet_client_subscriber_list, _lib.ClientSubscribers, what) as r:
            return [Subscriber._from_c(r.subscribers[i]) for i in range(r.count)]

    def subscriber_delete(self, name: str) -> None:
        """Delete a subscriber (refused with ``VNET_EBUSY`` while it owns networks)."""
        self._call(
            lib.vnet_client_subscriber_delete,
            f"subscriber delete {name}",
            _name(name, "subscriber name"),
        )
