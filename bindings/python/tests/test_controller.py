"""The subscriber API against a real vnet-controller (a subprocess on 127.0.0.1 with free ports,
a temporary SQLite file, a key and a Unix socket): every request vnetctl makes, refusals as the
right exceptions, and the authenticated TCP API with the admin's token."""

import os
import signal
import subprocess
import time

import pytest

import vnet
from conftest import free_tcp_port, program


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    ctl = program("vnet-controller")
    d = tmp_path_factory.mktemp("ctl")
    key = d / "ctl.key"
    pub = subprocess.run(
        [ctl, "--genkey", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    listen, api = free_tcp_port(), free_tcp_port()
    sock = d / "ctl.sock"
    log = open(d / "ctl.log", "w")
    proc = subprocess.Popen(
        [
            ctl,
            "--db",
            str(d / "vnet.db"),
            "--key",
            str(key),
            "--listen",
            f"127.0.0.1:{listen}",
            "--api",
            f"127.0.0.1:{api}",
            "--socket",
            str(sock),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with vnet.Client(str(sock), timeout=1):
                break
        except vnet.VnetError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("controller did not start:\n" + (d / "ctl.log").read_text())
            time.sleep(0.05)
    token = (d / "vnet.db.admin-token").read_text().strip()
    yield {"sock": str(sock), "api": f"127.0.0.1:{api}", "pub": pub, "token": token, "dir": d}
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=10) == 0, (d / "ctl.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def test_networks_and_nodes(controller):
    with vnet.Client(controller["sock"]) as c:
        assert "open" in repr(c)
        net = c.network_create("blue", vni=4242, subnet=["10.42.0.0/24", "fd42::/64"], mtu=1400,
                               mode="plain")
        assert (net.name, net.vni, net.mtu, net.mode) == ("blue", 4242, 1400, "plain")
        assert str(net.subnet4) == "10.42.0.0/24" and str(net.subnet6) == "fd42::/64"
        assert repr(net).startswith("<Network 'blue' vni=4242")
        assert [n.name for n in c.network_list()] == ["blue"]

        n1 = c.node_add("blue", "n1", phys="192.0.2.1:4789")
        assert n1.name == "n1" and str(n1.ip4) == "10.42.0.1" and str(n1.phys) == "192.0.2.1:4789"
        assert n1.state == vnet.NodeState.PENDING and n1.mac.startswith(("02", "0", "1", "2"))
        assert n1.join_token  # the controller has a key: a single-use join token
        n2 = c.node_add("blue", "n2", mac="02:00:00:00:42:02", ip=["10.42.0.20", "fd42::20"])
        assert (n2.mac, str(n2.ip4), str(n2.ip6)) == ("02:00:00:00:42:02", "10.42.0.20", "fd42::20")
        assert "n2" in repr(n2) and "10.42.0.20" in repr(n2)

        assert [n.name for n in c.node_list("blue")] == ["n1", "n2"]
        shown = c.network_show("blue")
        assert shown.name == "blue" and [n.name for n in shown.nodes] == ["n1", "n2"]
        assert c.node_show("blue", "n2").id == n2.id

        moved = c.node_move("blue", "n2", "[2001:db8::2]:4790")
        assert str(moved.phys) == "[2001:db8::2]:4790" and moved.revision > n2.revision

        st = c.network_status("blue")
        assert [s.node.name for s in st.nodes] == ["n1", "n2"]
        assert st.connected == 0 and not st.nodes[0].connected
        assert st.nodes[0].report is None and st.nodes[0].last_seen_ms == 0
        assert st.nodes[0].session_from is None
        assert "2 nodes, 0 connected" in repr(st) and "disconnected" in repr(st.nodes[0])

        c.node_remove("blue", "n1")
        assert [n.name for n in c.node_list("blue")] == ["n2"]


def test_refusals(controller):
    with vnet.Client(controller["sock"]) as c:
        c.network_create("red", vni=77)
        with pytest.raises(vnet.ConflictError) as ei:
            c.network_create("green", vni=77)  # duplicate VNI
        e = ei.value
        assert e.code == vnet.ConflictError(-17).code and e.name == "VNET_EEXIST"
        assert e.text and "77" in e.text  # the controller names the conflict
        with pytest.raises(vnet.ConflictError):
            c.network_create("red")
        with pytest.raises(vnet.NotFoundError) as ei:
            c.network_show("nope")
        assert ei.value.name == "VNET_ENOENT" and isinstance(ei.value, LookupError)
        with pytest.raises(vnet.NotFoundError):
            c.node_remove("red", "ghost")
        c.node_add("red", "a", mac="02:00:00:00:77:01")
        with pytest.raises(vnet.ConflictError):
            c.node_add("red", "b", mac="02:00:00:00:77:01")  # MAC taken
        with pytest.raises(vnet.InvalidArgumentError):
            c.node_add("red", "c", ip="10.1.1.1")  # the network has no subnet
        # Refused on the Python side, before anything is sent, with the library's parsers.
        with pytest.raises(vnet.InvalidArgumentError):
            c.node_add("red", "d", phys="192.0.2.1")
        with pytest.raises(vnet.InvalidArgumentError):
            c.network_create("x" * 64)
        c.network_delete("red")


def test_subnet_and_name_rules(controller):
    """Issue 13: the store's rules hold for the binding as for vnetctl."""
    with vnet.Client(controller["sock"]) as c:
        with pytest.raises(vnet.InvalidArgumentError) as ei:
            c.network_create("hb", subnet="10.20.0.5/24")
        assert "did you mean 10.20.0.0/24?" in ei.value.text
        with pytest.raises(vnet.InvalidArgumentError) as ei:
            c.network_create("two", subnet=["10.20.0.0/24", "10.30.0.0/24"])
        assert "two IPv4 subnets" in str(ei.value)
        c.network_create("ov1", subnet="10.20.0.0/16")
        with pytest.raises(vnet.ConflictError) as ei:
            c.network_create("ov2", subnet="10.20.7.0/24")
        assert "overlaps subnet 10.20.0.0/16 of network 'ov1'" in ei.value.text
        with pytest.raises(vnet.InvalidArgumentError) as ei:
            c.network_create("a b")
        assert "A-Z a-z 0-9 . _ -" in str(ei.value)
        assert [n.name for n in c.network_list() if n.name.startswith(("hb", "two", "ov", "a "))] \
            == ["ov1"]
        c.network_delete("ov1")
        with pytest.raises(vnet.NotFoundError):
            c.network_delete("red")


def test_tcp_authenticated(controller):
    api, pub, token = controller["api"], controller["pub"], controller["token"]
    with vnet.Client(api, controller_key=pub, token=token, timeout=5) as c:
        names = [n.name for n in c.network_list()]
        assert "blue" in names
    # No key, no token: a controller with a key serves only authenticated sessions.
    with pytest.raises(vnet.AccessDeniedError) as ei:
        with vnet.Client(api, timeout=5) as c:
            c.network_list()
    assert ei.value.name in ("VNET_EACCES", "VNET_EPERM") and isinstance(ei.value, PermissionError)
    wrong = "vnetapi1-" + "A" * 43
    with pytest.raises(vnet.AccessDeniedError):
        with vnet.Client(api, controller_key=pub, token=wrong, timeout=5) as c:
            c.network_list()
    with pytest.raises(vnet.InvalidArgumentError):
        vnet.Client(api, controller_key="not-a-key")


def test_unreachable(tmp_path):
    with pytest.raises(vnet.VnetError) as ei:
        vnet.Client(str(tmp_path / "no.sock"), timeout=1)
    assert ei.value.code < 0 and ei.value.name.startswith("VNET_E")
    with pytest.raises(vnet.VnetConnectionError):
        vnet.Client(f"127.0.0.1:{free_tcp_port()}", timeout=1)


def test_subscribers(controller):
    with vnet.Client(controller["sock"]) as c:
        carol = c.subscriber_create("carol")
        assert carol.name == "carol" and not carol.admin and carol.has_token
        assert carol.token.startswith("vnetapi1-") and "vnetapi1" not in repr(carol)
        with pytest.raises(vnet.ConflictError):
            c.subscriber_create("carol")
        subs = c.subscriber_list()
        assert subs[0].admin and "carol" in [s.name for s in subs]
        with vnet.Client(controller["api"], controller_key=controller["pub"], token=carol.token,
                         timeout=5) as s:
            assert s.network_create("cnet").subscriber_id == carol.id
            nets = s.network_list()
            assert [n.name for n in nets] == ["cnet"] and nets[0].owner is None
            with pytest.raises(vnet.AccessDeniedError):
                s.subscriber_list()
        owners = {n.name: n.owner for n in c.network_list()}
        assert owners["cnet"] == "carol"
        rotated = c.subscriber_token("carol")
        assert rotated.token and rotated.token != carol.token
        with pytest.raises(vnet.AccessDeniedError):
            vnet.Client(controller["api"], controller_key=controller["pub"], token=carol.token,
                        timeout=5)
        with pytest.raises(vnet.BusyError):
            c.subscriber_delete("carol")
        c.network_delete("carol/cnet")
        c.subscriber_delete("carol")
        with pytest.raises(vnet.NotFoundError):
            c.subscriber_delete("carol")


def test_refused_by_the_library(controller):
    """Checked by the C typed calls before anything is sent; the session stays usable."""
    with vnet.Client(controller["sock"]) as c:
        with pytest.raises(vnet.InvalidArgumentError) as ei:
            c.node_add("blue", "m", mac="03:00:00:00:00:01")  # multicast
        assert "unicast" in ei.value.text
        with pytest.raises(vnet.InvalidArgumentError) as ei:
            c.node_show("blue", "y" * 64)
        assert "node name" in ei.value.text
        with pytest.raises(TypeError):
            c.network_show(42)
        assert "blue" in [n.name for n in c.network_list()]
    with pytest.raises(vnet.StateError):
        c.network_list()


def test_report_from_c():
    """A node's report as the C struct carries it becomes a vnet.Report."""
    from vnet import _lib

    r = _lib.Report()
    r.virt.rx_bytes, r.virt.tx_bytes = 100, 200
    r.drops = 3
    r.drop_reasons[2] = 3  # unknown_peer
    r.table_size = 5
    peers = (_lib.ReportPeer * 2)()
    peers[0].node_id = 7
    peers[0].ep.ip.family = 4
    peers[0].ep.ip.addr[:4] = [10, 0, 0, 7]
    peers[0].ep.port = 4789
    peers[0].c.rx_packets = 9
    peers[0].has_last_rx, peers[0].last_rx_ms, peers[0].reach = True, 250, _lib.REACH_DIRECT
    r.peers, r.npeers = peers, 2
    rep = vnet.Report._from_c(r, 1500)
    assert rep.age_ms == 1500 and rep.bytes_out == 100 and rep.bytes_in == 200
    assert rep.drops == 3 and rep.drop_reasons == {"unknown_peer": 3} and rep.table_size == 5
    assert [p.reach for p in rep.peers] == ["direct", "none"]
    assert str(rep.peers[0].endpoint) == "10.0.0.7:4789" and rep.peers[0].last_rx_ms == 250
    assert rep.peers[1].endpoint is None and rep.peers[1].last_rx_ms is None
