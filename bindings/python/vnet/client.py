"""The subscriber API: requests to a vnet-controller, as vnetctl makes them.

A :class:`Client` wraps ``struct vnet_client`` (blocking sockets with a timeout, no event
loop). Each method builds one ``struct vnet_msg_request`` exactly as ``examples/vnetctl.c``
does, sends it with ``vnet_client_request`` and turns the reply into dataclasses. A refusal
raises the :class:`~vnet.errors.VnetError` subclass for the controller's code, with its text:
:class:`~vnet.errors.ConflictError` (``VNET_EEXIST``), :class:`~vnet.errors.NotFoundError`
(``VNET_ENOENT``), :class:`~vnet.errors.AccessDeniedError` (``VNET_EACCES``/``VNET_EPERM``),
:class:`~vnet.errors.InvalidArgumentError` (``VNET_EINVAL``), ...

A client handle is for one thread at a time (the library's rule).
"""

from __future__ import annotations

import ctypes
import errno
import enum
import os
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Union

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

__all__ = ["Client", "Network", "Node", "NodeState", "NodeStatus", "NetworkStatus"]

_ERRLEN = 512


class NodeState(enum.IntEnum):
    PENDING = 0  # added, never connected
    ACTIVE = 1  # has connected at least once
    REMOVED = 2


@dataclass
class Node:
    """A node of a network (``struct vnet_node``)."""

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
class NodeStatus:
    """What the controller knows of a node's session."""

    node: Node
    connected: bool
    acked: int  # the revision the node acknowledged last
    converged: bool  # acked == the network's revision
    connected_since_ms: int  # unix time in ms, 0 when not connected

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


def _name(s: str, what: str) -> bytes:
    if not isinstance(s, str):
        raise TypeError(f"{what}: expected str, got {type(s).__name__}")
    b = s.encode()
    if not b or len(b) >= _lib.VNET_NAME_MAX:
        raise InvalidArgumentError(-errno.EINVAL, f"bad {what} {s!r}: 1 to 63 characters")
    return b


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

    def _request(self, req: _lib.MsgRequest, what: str):
        """Send @req; returns a context-managed reply the caller reads then frees."""
        if self._h is None:
            raise StateError(-4000 - 4, "client is closed")
        msg = _lib.Msg()
        err = ctypes.create_string_buffer(_ERRLEN)
        rc = lib.vnet_client_request(self._h, ctypes.byref(req), ctypes.byref(msg), err, _ERRLEN)
        if rc:
            raise error_from_code(rc, err.value.decode(errors="replace") or None, what)
        return _Reply(msg, what)

    @staticmethod
    def _req(op: int, network: Optional[str] = None, node: Optional[str] = None):
        req = _lib.MsgRequest()
        req.op = op
        if network is not None:
            req.network = _name(network, "network name")
        if node is not None:
            req.node = _name(node, "node name")
        return req

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
        req = self._req(_lib.REQ_NETWORK_CREATE, name)
        if vni is not None:
            if not isinstance(vni, int) or not 1 <= vni <= _lib.VNET_VNI_MAX:
                raise InvalidArgumentError(-errno.EINVAL, f"bad vni {vni!r}: want 1..16777215")
            req.vni = vni
            req.has |= _lib.REQ_HAS_VNI
        subnets: Iterable[PrefixLike]
        if subnet is None:
            subnets = ()
        elif isinstance(subnet, (list, tuple)):
            subnets = subnet
        else:
            subnets = (subnet,)  # type: ignore[assignment]
        for s in subnets:
            p = prefix_to_c(s)
            if p.ip.family == 4:
                req.subnet4 = p
                req.has |= _lib.REQ_HAS_SUBNET4
            else:
                req.subnet6 = p
                req.has |= _lib.REQ_HAS_SUBNET6
        if mtu is not None:
            if not isinstance(mtu, int) or not 576 <= mtu <= 65000:
                raise InvalidArgumentError(-errno.EINVAL, f"bad mtu {mtu!r}: want 576..65000")
            req.mtu = mtu
            req.has |= _lib.REQ_HAS_MTU
        if mode is not None:
            if mode not in ("plain", "secure"):
                raise InvalidArgumentError(-errno.EINVAL, f"bad mode {mode!r}: plain or secure")
            req.mode = 1 if mode == "secure" else 0
            req.has |= _lib.REQ_HAS_MODE
        with self._request(req, f"network create {name}") as r:
            return r.networks()[0]

    def network_list(self) -> List[Network]:
        with self._request(self._req(_lib.REQ_NETWORK_LIST), "network list") as r:
            nets = r.networks()
            owners = {s.id: s.name.decode() for s in r.subscribers()}
            for n in nets:
                n.owner = owners.get(n.subscriber_id)
            return nets

    def network_show(self, name: str) -> Network:
        """The network, with its nodes in ``.nodes``."""
        with self._request(self._req(_lib.REQ_NETWORK_SHOW, name), f"network show {name}") as r:
            net = r.networks()[0]
            net.nodes = r.nodes()
            return net

    def network_delete(self, name: str) -> None:
        with self._request(self._req(_lib.REQ_NETWORK_DELETE, name), f"network delete {name}"):
            pass

    def network_status(self, name: str) -> NetworkStatus:
        with self._request(self._req(_lib.REQ_NETWORK_STATUS, name), f"network status {name}") as r:
            net = r.networks()[0]
            st = [
                NodeStatus(
                    node=Node._from_c(s.node),
                    connected=bool(s.connected),
                    acked=s.acked,
                    converged=s.acked == net.revision,
                    connected_since_ms=s.connected_since_ms,
                )
                for s in r.status()
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
        req = self._req(_lib.REQ_NODE_ADD, network, name)
        if mac is not None:
            req.mac = mac_to_c(mac)
            if req.mac.b[0] & 1:
                raise InvalidArgumentError(-errno.EINVAL, f"bad mac {mac!r}: want a unicast MAC")
            req.has |= _lib.REQ_HAS_MAC
        ips: Iterable[IPLike]
        if ip is None:
            ips = ()
        elif isinstance(ip, (list, tuple)):
            ips = ip
        else:
            ips = (ip,)  # type: ignore[assignment]
        for a in ips:
            c = ip_to_c(a)
            if c.family == 4:
                req.ip4 = c
                req.has |= _lib.REQ_HAS_IP4
            else:
                req.ip6 = c
                req.has |= _lib.REQ_HAS_IP6
        if phys is not None:
            req.phys = endpoint_to_c(phys)
            req.has |= _lib.REQ_HAS_PHYS
        if pubkey is not None:
            req.pubkey[:] = list(parse_pubkey(pubkey))
            req.has |= _lib.REQ_HAS_PUBKEY
        with self._request(req, f"node add {network} {name}") as r:
            node = r.nodes()[0]
            node.join_token = r.token() or None
            return node

    def node_list(self, network: str) -> List[Node]:
        with self._request(self._req(_lib.REQ_NODE_LIST, network), f"node list {network}") as r:
            return r.nodes()

    def node_show(self, network: str, name: str) -> Node:
        req = self._req(_lib.REQ_NODE_SHOW, network, name)
        with self._request(req, f"node show {network} {name}") as r:
            return r.nodes()[0]

    def node_move(self, network: str, name: str, phys: EndpointLike) -> Node:
        """Set a node's physical endpoint."""
        req = self._req(_lib.REQ_NODE_MOVE, network, name)
        req.phys = endpoint_to_c(phys)
        req.has |= _lib.REQ_HAS_PHYS
        with self._request(req, f"node move {network} {name}") as r:
            return r.nodes()[0]

    def node_remove(self, network: str, name: str) -> None:
        req = self._req(_lib.REQ_NODE_REMOVE, network, name)
        with self._request(req, f"node remove {network} {name}"):
            pass

    def node_revoke(self, network: str, name: str) -> None:
        """Forget a node's key: it is disconnected and refused until it enrols again."""
        req = self._req(_lib.REQ_NODE_REVOKE, network, name)
        with self._request(req, f"node revoke {network} {name}"):
            pass


class _Reply:
    """A decoded reply: raises for a refusal on entry, frees the C arrays on exit."""

    def __init__(self, msg: _lib.Msg, what: str):
        self._msg = msg
        self._what = what

    def __enter__(self) -> "_Reply":
        r = self._msg.u.reply
        if r.code != 0:
            code, text = r.code, r.text.decode(errors="replace")
            lib.vnet_msg_free(ctypes.byref(self._msg))
            raise error_from_code(code, text or None, self._what)
        return self

    def __exit__(self, *exc) -> None:
        lib.vnet_msg_free(ctypes.byref(self._msg))

    @property
    def _r(self) -> _lib.MsgReply:
        return self._msg.u.reply

    def networks(self) -> List[Network]:
        return [Network._from_c(self._r.networks[i]) for i in range(self._r.nnetworks)]

    def nodes(self) -> List[Node]:
        return [Node._from_c(self._r.nodes[i]) for i in range(self._r.nnodes)]

    def status(self) -> List[_lib.NodeStatus]:
        return [self._r.status[i] for i in range(self._r.nstatus)]

    def subscribers(self) -> List[_lib.Subscriber]:
        return [self._r.subscribers[i] for i in range(self._r.nsubscribers)]

    def token(self) -> str:
        return self._r.token.decode(errors="replace")


