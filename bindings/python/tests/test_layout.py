"""The ctypes structs match the C headers: sizes and field offsets, from vnet-py-layout."""

import json
import os
import subprocess

import pytest

from vnet import _lib

STRUCTS = {
    "vnet_mac": _lib.Mac,
    "vnet_ip": _lib.Ip,
    "vnet_prefix": _lib.Prefix,
    "vnet_endpoint": _lib.Endpoint,
    "vnet_network": _lib.Network,
    "vnet_node_info": _lib.Node,
    "vnet_subscriber": _lib.Subscriber,
    "vnet_node_status": _lib.NodeStatus,
    "vnet_report_counters": _lib.ReportCounters,
    "vnet_report_peer": _lib.ReportPeer,
    "vnet_report": _lib.Report,
    "vnet_client_opts": _lib.ClientOpts,
    "vnet_client_network_opts": _lib.ClientNetworkOpts,
    "vnet_client_node_opts": _lib.ClientNodeOpts,
    "vnet_client_networks": _lib.ClientNetworks,
    "vnet_client_network": _lib.ClientNetwork,
    "vnet_client_status": _lib.ClientStatus,
    "vnet_client_nodes": _lib.ClientNodes,
    "vnet_client_subscribers": _lib.ClientSubscribers,
    "vnet_client_new_node": _lib.ClientNewNode,
    "vnet_client_new_token": _lib.ClientNewToken,
    "vnet_entry": _lib.Entry,
    "vnet_table_opts": _lib.TableOpts,
    "vnet_table_op": _lib.TableOp,
    "vnet_table_stats": _lib.TableStats,
    "vnet_port_cfg": _lib.PortCfg,
    "vnet_port_info": _lib.PortInfo,
    "vnet_datapath_cfg": _lib.DatapathCfg,
    "vnet_dp_port_stats": _lib.DpPortStats,
    "vnet_datapath_stats": _lib.DatapathStats,
    "vnet_dp_peer_stats": _lib.DpPeerStats,
}


@pytest.fixture(scope="module")
def layout(build):
    exe = os.environ.get("VNET_PY_LAYOUT", os.path.join(build, "bindings/python/vnet-py-layout"))
    if not os.access(exe, os.X_OK):
        pytest.skip(f"{exe} not built")
    return json.loads(subprocess.run([exe], check=True, capture_output=True).stdout)


@pytest.mark.parametrize("cname", sorted(STRUCTS))
def test_struct_layout(layout, cname):
    py = STRUCTS[cname]
    c = layout[cname]
    assert c["size"] == __import__("ctypes").sizeof(py), f"sizeof(struct {cname})"
    for field, off in c["fields"].items():
        assert getattr(py, field).offset == off, f"offsetof(struct {cname}, {field})"


def test_constants(layout):
    k = layout["constants"]
    assert k["VNET_DP_DROP__MAX"] == _lib.VNET_DP_DROP__MAX
    assert k["VNET_NAME_MAX"] == _lib.VNET_NAME_MAX
    assert k["VNET_CLIENT_TOKEN_MAX"] == _lib.VNET_CLIENT_TOKEN_MAX
    assert k["VNET_CLIENT_MODE_SECURE"] == _lib.CLIENT_MODE_SECURE
