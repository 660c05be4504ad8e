"""Shared fixtures. The meson test sets PYTHONPATH, VNET_LIBRARY, VNET_BUILD_DIR and
VNET_PY_LAYOUT; run by hand:

    VNET_BUILD_DIR=build PYTHONPATH=bindings/python /usr/bin/python3 -m pytest bindings/python/tests
"""

import os
import socket
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the package, when PYTHONPATH is not set

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


def build_dir() -> str:
    return os.path.abspath(os.environ.get("VNET_BUILD_DIR", os.path.join(ROOT, "build")))


if "VNET_LIBRARY" not in os.environ:
    os.environ["VNET_LIBRARY"] = os.path.join(build_dir(), "libvnet", "libvnet.so.0")


@pytest.fixture(scope="session")
def build():
    return build_dir()


def program(name: str) -> str:
    path = os.path.join(build_dir(), "examples", name)
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} not built")
    return path


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
