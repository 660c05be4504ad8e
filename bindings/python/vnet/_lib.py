"""ctypes declarations of the libvnet C API (private to the package).

Every struct here mirrors one in include/vnet/*.h field for field; tests/test_layout.py checks
sizes and offsets against a C program compiled from the headers (vnet-py-layout), so a header
change the binding missed fails the tests instead of corrupting memory.

The shared object is found, in order: $VNET_LIBRARY (a path), then ``libvnet.so`` (or
``libvnet.so.0``) in the build tree named by $VNET_BUILD_DIR, then an installed one: ``ctypes.util.find_library`` (the
ldconfig cache, $LD_LIBRARY_PATH), then the soname ``libvnet.so.0`` through the dynamic
loader's own search (dlopen: $LD_LIBRARY_PATH, the cache, the default directories).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_double,
    c_int,
    c_size_t,
    c_uint,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)

VNET_NAME_MAX = 64
VNET_PUBKEY_LEN = 32
VNET_NODE_IPS = 2
VNET_DP_DROP__MAX = 19
VNET_DP_NONCE_LEN = 32
VNET_VNI_MAX = 0xFFFFFF
VNET_VNI_ANY = 0xFFFFFFFF

# ---- types.h ----


class Mac(Structure):
    _fields_ = [("b", c_uint8 * 6)]


class Ip(Structure):
    _fields_ = [("family", c_uint8), ("addr", c_uint8 * 16)]


class Prefix(Structure):
    _fields_ = [("ip", Ip), ("len", c_uint8)]


class Endpoint(Structure):
    _fields_ = [("ip", Ip), ("port", c_uint16)]


# ---- model.h, store.h ----


class Network(Structure):
    _fields_ = [
        ("id", c_uint64),
        ("subscriber_id", c_uint64),
        ("name", c_char * VNET_NAME_MAX),
        ("vni", c_uint32),
        ("subnet4", Prefix),
        ("subnet6", Prefix),
        ("mtu", c_uint32),
        ("revision", c_uint64),
        ("mode", c_uint8),
    ]


class Node(Structure):
    _fields_ = [
        ("id", c_uint64),
        ("network_id", c_uint64),
        ("name", c_char * VNET_NAME_MAX),
        ("pubkey", c_uint8 * VNET_PUBKEY_LEN),
        ("has_pubkey", c_bool),
        ("mac", Mac),
        ("ips", Ip * VNET_NODE_IPS),
        ("phys", Endpoint),
        ("observed", Endpoint),
        ("state", c_int),
        ("revision", c_uint64),
        ("has_dp_nonce", c_bool),
        ("dp_nonce", c_uint8 * VNET_DP_NONCE_LEN),
    ]


class Subscriber(Structure):
    _fields_ = [
        ("id", c_uint64),
        ("name", c_char * VNET_NAME_MAX),
        ("admin", c_bool),
        ("has_token", c_bool),
    ]


class Change(Structure):
    _fields_ = [("network_id", c_uint64), ("revision", c_uint64), ("op", c_int), ("node", Node)]


# ---- proto.h (plain data only) ----


class NodeStatus(Structure):
    _fields_ = [
        ("node", Node),
        ("acked", c_uint64),
        ("connected", c_uint8),
        ("connected_since_ms", c_uint64),
    ]


# ---- client.h ----

VNET_CLIENT_TOKEN_MAX = 256
CLIENT_MODE_DEFAULT, CLIENT_MODE_PLAIN, CLIENT_MODE_SECURE = range(3)


class ClientOpts(Structure):
    _fields_ = [
        ("timeout_ms", c_uint32),
        ("controller_pub", POINTER(c_uint8)),
        ("token", c_char_p),
    ]


class ClientNetworkOpts(Structure):
    _fields_ = [
        ("vni", c_uint32),
        ("subnet4", Prefix),
        ("subnet6", Prefix),
        ("mtu", c_uint32),
        ("mode", c_int),
    ]


class ClientNodeOpts(Structure):
    _fields_ = [
        ("mac", Mac),
        ("has_mac", c_bool),
        ("ip4", Ip),
        ("ip6", Ip),
        ("phys", Endpoint),
        ("pubkey", c_uint8 * VNET_PUBKEY_LEN),
        ("has_pubkey", c_bool),
    ]


class ClientNetworks(Structure):
    _fields_ = [
        ("networks", POINTER(Network)),
        ("owners", POINTER(Subscriber)),
        ("count", c_uint32),
    ]


class ClientNetwork(Structure):
    _fields_ = [("network", Network), ("nodes", POINTER(Node)), ("count", c_uint32)]


class ClientStatus(Structure):
    _fields_ = [("network", Network), ("nodes", POINTER(NodeStatus)), ("count", c_uint32)]


class ClientNodes(Structure):
    _fields_ = [("nodes", POINTER(Node)), ("count", c_uint32)]


class ClientSubscribers(Structure):
    _fields_ = [("subscribers", POINTER(Subscriber)), ("count", c_uint32)]


class ClientNewNode(Structure):
    _fields_ = [("node", Node), ("join_token", c_char * VNET_CLIENT_TOKEN_MAX)]


class ClientNewToken(Structure):
    _fields_ = [("subscriber", Subscriber), ("token", c_char * VNET_CLIENT_TOKEN_MAX)]


# ---- switch_table.h ----

TABLE_PUT, TABLE_DEL, TABLE_PUT_IP, TABLE_DEL_IP, TABLE_CLEAR_VNI = range(1, 6)


class Entry(Structure):
    _fields_ = [
        ("revision", c_uint64),
        ("priv_gen_", c_uint32 * 2),
        ("priv_vf_", c_uint32),
        ("peer_id", c_uint32),
        ("mac", Mac),
        ("port", c_uint16),
        ("addr", c_uint8 * 16),
    ]


class TableOpts(Structure):
    _fields_ = [
        ("max_entries", c_uint32),
        ("max_ip_entries", c_uint32),
        ("initial_capacity", c_uint32),
        ("max_readers", c_uint32),
    ]


class TableOp(Structure):
    _fields_ = [
        ("type", c_int),
        ("vni", c_uint32),
        ("mac", Mac),
        ("flags", c_uint8),
        ("peer_id", c_uint32),
        ("ep", Endpoint),
        ("ip", Ip),
    ]


class TableStats(Structure):
    _fields_ = [
        ("entries", c_uint64),
        ("ip_entries", c_uint64),
        ("slots", c_uint64),
        ("ip_slots", c_uint64),
        ("load_factor", c_double),
        ("ip_load_factor", c_double),
        ("memory_bytes", c_uint64),
        ("pending_reclaim", c_uint64),
        ("batches", c_uint64),
        ("rebuilds", c_uint64),
        ("readers", c_uint32),
    ]


TABLE_ITER_FN = CFUNCTYPE(c_int, POINTER(Entry), c_void_p)
TABLE_IP_ITER_FN = CFUNCTYPE(c_int, c_uint32, POINTER(Ip), POINTER(Mac), c_void_p)

# ---- port.h, datapath.h ----


class PortCfg(Structure):
    _fields_ = [
        ("queues", c_uint32),
        ("mtu", c_uint32),
        ("mac", Mac),
        ("set_mac", c_bool),
        ("offload", c_bool),
        ("up", c_bool),
        ("sndbuf", c_int),
        ("rcvbuf", c_int),
    ]


class PortInfo(Structure):
    _fields_ = [
        ("backend", c_char_p),
        ("ifname", c_char * 16),
        ("ifindex", c_int),
        ("mac", Mac),
        ("mtu", c_uint32),
        ("local", Endpoint),
        ("caps", c_uint32),
        ("queues", c_uint32),
    ]


class DatapathCfg(Structure):
    _fields_ = [
        ("table", c_void_p),
        ("vport", c_void_p),
        ("uport", c_void_p),
        ("vni", c_uint32),
        ("learn", c_bool),
        ("no_arp_proxy", c_bool),
        ("mtu", c_uint32),
        ("burst", c_uint),
        ("secure", c_bool),
        ("key", c_void_p),
        ("queue", c_uint),
        ("nonce", c_void_p),
    ]


class DpPortStats(Structure):
    _fields_ = [
        ("rx_packets", c_uint64),
        ("rx_bytes", c_uint64),
        ("tx_packets", c_uint64),
        ("tx_bytes", c_uint64),
    ]


class DatapathStats(Structure):
    _fields_ = [
        ("vport", DpPortStats),
        ("uport", DpPortStats),
        ("drops", c_uint64 * VNET_DP_DROP__MAX),
        ("decap", c_uint64 * 32),
        ("arp_replies", c_uint64),
        ("nd_replies", c_uint64),
        ("flooded", c_uint64),
        ("learned", c_uint64),
        ("gso_frames", c_uint64),
        ("gro_frames", c_uint64),
        ("too_big_sent", c_uint64),
    ]


class DpPeerStats(Structure):
    _fields_ = [
        ("ep", Endpoint),
        ("tx_packets", c_uint64),
        ("tx_bytes", c_uint64),
        ("rx_packets", c_uint64),
        ("rx_bytes", c_uint64),
    ]


# ---- loading ----


_SONAME = "libvnet.so.0"  # libvnet/meson.build: soversion


def _find_library() -> str:
    path = os.environ.get("VNET_LIBRARY")
    if path:
        return path
    build = os.environ.get("VNET_BUILD_DIR")
    if build:
        for name in ("libvnet.so", _SONAME):  # a meson build tree has only the soname link
            cand = os.path.join(build, "libvnet", name)
            if os.path.exists(cand):
                return cand
    found = ctypes.util.find_library("vnet")
    if found:
        return found
    return _SONAME


def _load() -> ctypes.CDLL:
    path = _find_library()
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        if path != _SONAME:
            raise
        raise OSError(
            f"libvnet.so not found ({e}): install libvnet (`meson install`, then `ldconfig`), "
            "or set VNET_LIBRARY to its path (a meson build has it in BUILD/libvnet/libvnet.so.0)"
        ) from None


lib = _load()

_P = c_void_p
_PROTOS: dict[str, tuple[object, list[object]]] = {
    # error.h, version
    "vnet_strerror": (c_char_p, [c_int]),
    "vnet_err_name": (c_char_p, [c_int]),
    "vnet_version": (c_char_p, []),
    # types.h
    "vnet_mac_parse": (c_int, [c_char_p, POINTER(Mac)]),
    "vnet_mac_format": (c_int, [POINTER(Mac), c_char_p, c_size_t]),
    "vnet_vni_parse": (c_int, [c_char_p, POINTER(c_uint32)]),
    "vnet_ip_parse": (c_int, [c_char_p, POINTER(Ip)]),
    "vnet_ip_format": (c_int, [POINTER(Ip), c_char_p, c_size_t]),
    "vnet_prefix_parse": (c_int, [c_char_p, POINTER(Prefix)]),
    "vnet_prefix_format": (c_int, [POINTER(Prefix), c_char_p, c_size_t]),
    "vnet_endpoint_parse": (c_int, [c_char_p, POINTER(Endpoint)]),
    "vnet_endpoint_format": (c_int, [POINTER(Endpoint), c_char_p, c_size_t]),
    "vnet_name_valid": (c_bool, [c_char_p]),
    # crypto.h (public keys only)
    "vnet_pubkey_parse": (c_int, [c_char_p, POINTER(c_uint8)]),
    "vnet_pubkey_format": (c_int, [POINTER(c_uint8), c_char_p, c_size_t]),
    # client.h
    "vnet_client_connect2": (
        c_int,
        [c_char_p, POINTER(ClientOpts), POINTER(c_void_p), c_char_p, c_size_t],
    ),
    "vnet_client_close": (None, [_P]),
    "vnet_client_free": (None, [_P]),
    "vnet_client_network_create": (
        c_int,
        [_P, c_char_p, POINTER(ClientNetworkOpts), POINTER(Network), c_char_p, c_size_t],
    ),
    "vnet_client_network_list": (
        c_int,
        [_P, POINTER(POINTER(ClientNetworks)), c_char_p, c_size_t],
    ),
    "vnet_client_network_show": (
        c_int,
        [_P, c_char_p, POINTER(POINTER(ClientNetwork)), c_char_p, c_size_t],
    ),
    "vnet_client_network_delete": (c_int, [_P, c_char_p, c_char_p, c_size_t]),
    "vnet_client_network_status": (
        c_int,
        [_P, c_char_p, POINTER(POINTER(ClientStatus)), c_char_p, c_size_t],
    ),
    "vnet_client_node_add": (
        c_int,
        [_P, c_char_p, c_char_p, POINTER(ClientNodeOpts), POINTER(ClientNewNode), c_char_p,
         c_size_t],
    ),
    "vnet_client_node_list": (
        c_int,
        [_P, c_char_p, POINTER(POINTER(ClientNodes)), c_char_p, c_size_t],
    ),
    "vnet_client_node_show": (
        c_int,
        [_P, c_char_p, c_char_p, POINTER(Node), c_char_p, c_size_t],
    ),
    "vnet_client_node_move": (
        c_int,
        [_P, c_char_p, c_char_p, POINTER(Endpoint), POINTER(Node), c_char_p, c_size_t],
    ),
    "vnet_client_node_remove": (c_int, [_P, c_char_p, c_char_p, c_char_p, c_size_t]),
    "vnet_client_node_revoke": (c_int, [_P, c_char_p, c_char_p, c_char_p, c_size_t]),
    "vnet_client_subscriber_create": (
        c_int,
        [_P, c_char_p, POINTER(ClientNewToken), c_char_p, c_size_t],
    ),
    "vnet_client_subscriber_list": (
        c_int,
        [_P, POINTER(POINTER(ClientSubscribers)), c_char_p, c_size_t],
    ),
    "vnet_client_subscriber_delete": (c_int, [_P, c_char_p, c_char_p, c_size_t]),
    "vnet_client_subscriber_token": (
        c_int,
        [_P, c_char_p, POINTER(ClientNewToken), c_char_p, c_size_t],
    ),
    # switch_table.h
    "vnet_table_create": (c_int, [POINTER(TableOpts), POINTER(c_void_p)]),
    "vnet_table_destroy": (None, [_P]),
    "vnet_table_lookup": (POINTER(Entry), [_P, c_uint32, POINTER(Mac)]),
    "vnet_table_lookup_ip": (c_int, [_P, c_uint32, POINTER(Ip), POINTER(Mac)]),
    "vnet_table_apply": (c_int, [_P, POINTER(TableOp), c_size_t, c_uint64]),
    "vnet_table_reclaim": (c_size_t, [_P]),
    "vnet_table_synchronize": (None, [_P]),
    "vnet_table_foreach": (c_int, [_P, c_uint32, TABLE_ITER_FN, c_void_p]),
    "vnet_table_foreach_ip": (c_int, [_P, c_uint32, TABLE_IP_ITER_FN, c_void_p]),
    "vnet_table_count": (c_size_t, [_P]),
    "vnet_table_revision": (c_uint64, [_P]),
    "vnet_table_get_stats": (None, [_P, POINTER(TableStats)]),
    "vnet_entry_endpoint": (None, [POINTER(Entry), POINTER(Endpoint)]),
    # port.h
    "vnet_port_open": (c_int, [c_char_p, POINTER(PortCfg), POINTER(c_void_p)]),
    "vnet_port_close": (None, [_P]),
    "vnet_port_fd": (c_int, [_P, c_uint]),
    "vnet_port_get_info": (c_int, [_P, POINTER(PortInfo)]),
    # netdev.h
    "vnet_netdev_add_addr": (c_int, [c_char_p, POINTER(Prefix)]),
    # datapath.h
    "vnet_dp_drop_name": (c_char_p, [c_int]),
    "vnet_drop_reason_name": (c_char_p, [c_int]),
    "vnet_datapath_create": (c_int, [POINTER(DatapathCfg), POINTER(c_void_p)]),
    "vnet_datapath_destroy": (None, [_P]),
    "vnet_datapath_set_peers": (c_int, [_P, POINTER(Endpoint), c_size_t]),
    "vnet_datapath_add_local_mac": (c_int, [_P, POINTER(Mac)]),
    "vnet_datapath_poll": (c_int, [_P, c_int]),
    "vnet_datapath_fds": (c_int, [_P, POINTER(c_int)]),
    "vnet_datapath_learn_drain": (c_int, [_P]),
    "vnet_datapath_learn_fd": (c_int, [_P]),
    "vnet_datapath_start": (c_int, [_P]),
    "vnet_datapath_stop": (None, [_P]),
    "vnet_datapath_get_stats": (None, [_P, POINTER(DatapathStats)]),
    "vnet_datapath_peer_stats": (c_size_t, [_P, POINTER(DpPeerStats), c_size_t]),
    # log.h
    "vnet_log_set_level": (None, [c_int]),
}

for _name, (_res, _args) in _PROTOS.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args
