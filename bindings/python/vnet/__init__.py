"""libvnet from Python.

- :class:`Client`: the subscriber API of a vnet-controller (networks, nodes, status).
- :class:`Table`: a VN switch table, with atomic batches, lookups and iteration.
- :class:`Datapath`: a node's data plane (TAP + UDP underlay) run by libvnet's worker thread.
- Parse and format helpers for MACs, IPs, prefixes and endpoints, using libvnet's parsers.
- :class:`VnetError` and subclasses, carrying the library's error code and name.

The package calls a shared build of libvnet through ctypes (docs/python.md says why). It is
found through $VNET_LIBRARY, else $VNET_BUILD_DIR/libvnet/libvnet.so.0, else an installed
libvnet.so.0 (the dynamic loader's path).
"""

from ._lib import lib as _clib
from .addr import (
    Endpoint,
    format_endpoint,
    format_ip,
    format_mac,
    format_prefix,
    format_pubkey,
    name_valid,
    parse_endpoint,
    parse_ip,
    parse_mac,
    parse_prefix,
    parse_pubkey,
    parse_vni,
)
from .client import Client, Network, NetworkStatus, Node, NodeState, NodeStatus, Subscriber
from .datapath import Datapath, DatapathStats, PeerStats, PortInfo, PortStats
from .errors import (
    AccessDeniedError,
    BusyError,
    ConflictError,
    InvalidArgumentError,
    NoSpaceError,
    NotFoundError,
    ProtocolError,
    StateError,
    VnetConnectionError,
    VnetError,
    VnetTimeoutError,
    err_name,
    strerror,
)
from .table import VNI_ANY, Batch, Entry, EntryFlag, Table, TableStats

__version__ = "0.1.0"


def library_version() -> str:
    """The version string of the loaded libvnet ("0.1.0")."""
    return _clib.vnet_version().decode()


__all__ = [
    "AccessDeniedError",
    "Batch",
    "BusyError",
    "Client",
    "ConflictError",
    "Datapath",
    "DatapathStats",
    "Endpoint",
    "Entry",
    "EntryFlag",
    "InvalidArgumentError",
    "Network",
    "NetworkStatus",
    "NoSpaceError",
    "Node",
    "NodeState",
    "NodeStatus",
    "NotFoundError",
    "PeerStats",
    "PortInfo",
    "PortStats",
    "ProtocolError",
    "StateError",
    "Subscriber",
    "Table",
    "TableStats",
    "VNI_ANY",
    "VnetConnectionError",
    "VnetError",
    "VnetTimeoutError",
    "err_name",
    "format_endpoint",
    "format_ip",
    "format_mac",
    "format_prefix",
    "format_pubkey",
    "library_version",
    "name_valid",
    "parse_endpoint",
    "parse_ip",
    "parse_mac",
    "parse_prefix",
    "parse_pubkey",
    "parse_vni",
    "strerror",
]
