"""Error codes map to exception classes carrying code, name and text."""

import errno
import os
import pickle

import pytest

import vnet
from vnet.errors import check, error_from_code


@pytest.mark.parametrize(
    "code,cls,builtin",
    [
        (-errno.EEXIST, vnet.ConflictError, None),
        (-errno.ENOENT, vnet.NotFoundError, LookupError),
        (-errno.EACCES, vnet.AccessDeniedError, PermissionError),
        (-errno.EPERM, vnet.AccessDeniedError, PermissionError),
        (-errno.EINVAL, vnet.InvalidArgumentError, ValueError),
        (-errno.ETIMEDOUT, vnet.VnetTimeoutError, TimeoutError),
        (-errno.ECONNREFUSED, vnet.VnetConnectionError, ConnectionError),
        (-errno.ENOSPC, vnet.NoSpaceError, None),
        (-4004, vnet.StateError, None),
        (-4001, vnet.VnetError, None),
    ],
)
def test_mapping(code, cls, builtin):
    e = error_from_code(code, "the controller says no", "network create x")
    assert type(e) is cls and e.code == code
    # error.h's own codes have VNET_ names, any other errno its own name (ECONNREFUSED)
    assert e.name == vnet.err_name(code)
    assert e.name.startswith("VNET_E") or e.name == errno.errorcode[-code]
    assert e.text == "the controller says no"
    assert str(e) == f"network create x: the controller says no [{e.name}]"
    if builtin:
        assert isinstance(e, builtin)
    assert pickle.loads(pickle.dumps(e)).code == code


def test_check_and_strerror():
    assert check(5) == 5
    with pytest.raises(vnet.ConflictError) as ei:
        check(-errno.EEXIST, "put")
    assert ei.value.text == vnet.strerror(-errno.EEXIST)
    assert vnet.err_name(-4001) == "VNET_ETRUNC"
    assert vnet.err_name(-99999) == "VNET_E?"
    assert vnet.strerror(-errno.ECONNREFUSED) == os.strerror(errno.ECONNREFUSED)
