"""A Datapath with a real TAP and UDP underlay, in a private network namespace (root only)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import vnet

HERE = os.path.dirname(os.path.abspath(__file__))


def test_datapath_refusals_without_root():
    with vnet.Table() as t:
        with pytest.raises(vnet.InvalidArgumentError):
            vnet.Datapath(t, "tap:x", "tcp:1.2.3.4:5", vni=1)
        with pytest.raises(vnet.NotFoundError) as ei:
            vnet.Datapath(t, "nosuchbackend:x", "udp:127.0.0.1:4789", vni=1)
        assert ei.value.name == "VNET_ENOENT" and "nosuchbackend:x" in str(ei.value)
        assert t.stats().readers == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespace, TAP device)")
def test_datapath_in_namespace():
    unshare = shutil.which("unshare")
    if not unshare or not shutil.which("ip"):
        pytest.skip("unshare or ip not installed")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun")
    env = dict(os.environ)
    paths = [os.path.dirname(HERE), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    r = subprocess.run([unshare, "-n", sys.executable, os.path.join(HERE, "dp_helper.py")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["vport"] == "vpy0" and out["arp_src"] == ["127.0.0.1", 4789]
    assert out["peers"] == ["127.0.0.1:4790"]
    assert out["stats"]["flooded"] >= 1 and out["stats"]["arp_replies"] >= 1
