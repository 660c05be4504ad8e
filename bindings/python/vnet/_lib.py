"""ctypes declarations of the libvnet C API (private to the package).

Every struct here mirrors one in include/vnet/*.h field for field; tests/test_layout.py checks
sizes and offsets against a C program compiled from the headers (vnet-py-layout), so a header
change the binding missed fails the tests instead of corrupting memory.

The shared object is found, in order: $VNET_LIBRARY (a path), then ``libvnet.so`` next to a
build tree named by $VNET_BUILD_DIR, then the dynamic loader's search path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    Union,
    c_bool,
    c_char,
    c_char_p,
    c_double,
    c_int,
    c_int32,
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
VNET_MSG_TEXT_MAX = 256
VNET_AUTH_MAX = 512
VNET_DP_DROP__MAX = 15
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


# ---- proto.h ----

REQ_HAS_VNI = 0x01
REQ_HAS_SUBNET4 = 0x02
REQ_HAS_SUBNET6 = 0x04
REQ_HAS_MTU = 0x08
REQ_HAS_MAC = 0x10
REQ_HAS_IP4 = 0x20
REQ_HAS_IP6 = 0x40
REQ_HAS_PHYS = 0x80
REQ_HAS_PUBKEY = 0x100
REQ_HAS_MODE = 0x200

(
    REQ_NETWORK_CREATE,
    REQ_NETWORK_LIST,
    REQ_NETWORK_SHOW,
    REQ_NETWORK_DELETE,
    REQ_NETWORK_STATUS,
    REQ_NODE_ADD,
    REQ_NODE_LIST,
    REQ_NODE_SHOW,
    REQ_NODE_MOVE,
    REQ_NODE_REMOVE,
    REQ_SUBSCRIBER_CREATE,
    REQ_SUBSCRIBER_LIST,
    REQ_SUBSCRIBER_DELETE,
    REQ_SUBSCRIBER_TOKEN,
    REQ_NODE_REVOKE,
) = range(1, 16)


class MsgHello(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("role", c_int),
        ("network", c_char * VNET_NAME_MAX),
        ("node", c_char * VNET_NAME_MAX),
        ("revision", c_uint64),
        ("auth", c_uint8 * VNET_AUTH_MAX),
        ("auth_len", c_uint32),
    ]


class MsgWelcome(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("network", Network),
        ("node", Node),
        ("auth", c_uint8 * VNET_AUTH_MAX),
        ("auth_len", c_uint32),
    ]


class MsgRequest(Structure):
    _fields_ = [
        ("id", c_uint32),
        ("op", c_int),
        ("has", c_uint32),
        ("network", c_char * VNET_NAME_MAX),
        ("node", c_char * VNET_NAME_MAX),
        ("vni", c_uint32),
        ("subnet4", Prefix),
        ("subnet6", Prefix),
        ("mtu", c_uint32),
        ("mac", Mac),
        ("ip4", Ip),
        ("ip6", Ip),
        ("phys", Endpoint),
        ("pubkey", c_uint8 * VNET_PUBKEY_LEN),
        ("mode", c_uint8),
    ]


class NodeStatus(Structure):
    _fields_ = [
        ("node", Node),
        ("acked", c_uint64),
        ("connected", c_uint8),
        ("connected_since_ms", c_uint64),
    ]


class MsgReply(Structure):
    _fields_ = [
        ("id", c_uint32),
        ("code", c_int32),
        ("text", c_char * VNET_MSG_TEXT_MAX),
        ("networks", POINTER(Network)),
        ("nnetworks", c_uint32),
        ("nodes", POINTER(Node)),
        ("nnodes", c_uint32),
        ("status", POINTER(NodeStatus)),
        ("nstatus", c_uint32),
        ("token", c_char * VNET_MSG_TEXT_MAX),
        ("subscribers", POINTER(Subscriber)),
        ("nsubscribers", c_uint32),
    ]


class MsgError(Structure):
    _fields_ = [("code", c_int32), ("text", c_char * VNET_MSG_TEXT_MAX)]


class MsgUnion(Union):
    # Only the members the binding reads are spelled out; hello and welcome are the largest and
    # fix the union's size (checked by test_layout).
    _fields_ = [
        ("hello", MsgHello),
        ("welcome", MsgWelcome),
        ("error", MsgError),
        ("request", MsgRequest),
        ("reply", MsgReply),
    ]


class Msg(Structure):
    _fields_ = [("type", c_int), ("u", MsgUnion)]


# ---- client.h ----


class ClientOpts(Structure):
    _fields_ = [
        ("timeout_ms", c_uint32),
        ("controller_pub", POINTER(c_uint8)),
        ("token", c_char_p),
    ]


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


def _find_library() -> str:
    path = os.environ.get("VNET_LIBRARY")
    if path:
        return path
    build = os.environ.get("VNET_BUILD_DIR")
    if build:
        cand = os.path.join(build, "libvnet", "libvnet.so")
        if os.path.exists(cand):
            return cand
    found = ctypes.util.find_library("vnet")
    if found:
        return found
    raise OSError(
        "libvnet.so not found: set VNET_LIBRARY to its path (a meson build has it in "
        "BUILD/libvnet/libvnet.so)"
    )


lib = ctypes.CDLL(_find_library())

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
    # proto.h, client.h
    "vnet_msg_free": (None, [POINTER(Msg)]),
    "vnet_client_connect2": (
        c_int,
        [c_char_p, POINTER(ClientOpts), POINTER(c_void_p), c_char_p, c_size_t],
    ),
    "vnet_client_close": (None, [_P]),
    "vnet_client_request": (
        c_int,
        [_P, POINTER(MsgRequest), POINTER(Msg), c_char_p, c_size_t],
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
