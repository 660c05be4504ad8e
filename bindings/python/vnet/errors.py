"""Exceptions: every libvnet error code becomes a :class:`VnetError` subclass.

The library returns 0 or a negative ``VNET_E*`` code (negated errno values where one fits).
:func:`check` turns a code into an exception carrying the code, its symbolic name
(``vnet_err_name``), the library's description (``vnet_strerror``) and, for refusals and
transport errors, the detail text from the controller or the client.
"""

from __future__ import annotations

import errno as _errno
from typing import Optional

from ._lib import lib

__all__ = [
    "VnetError",
    "InvalidArgumentError",
    "NotFoundError",
    "ConflictError",
    "AccessDeniedError",
    "NoSpaceError",
    "BusyError",
    "VnetTimeoutError",
    "VnetConnectionError",
    "ProtocolError",
    "StateError",
    "strerror",
    "err_name",
    "error_from_code",
    "check",
]


def strerror(code: int) -> str:
    """The library's short description of ``code`` ("invalid argument")."""
    return lib.vnet_strerror(code).decode()


def err_name(code: int) -> str:
    """The symbolic name of ``code`` ("VNET_EINVAL"; another errno's own name, "ECONNREFUSED"),
    "VNET_E?" when unknown."""
    return lib.vnet_err_name(code).decode()


class VnetError(Exception):
    """A libvnet call failed.

    Attributes:
        code: the negative ``VNET_E*`` code.
        name: its symbolic name, e.g. ``"VNET_EEXIST"``.
        text: the detail from the controller or the library when there is one, else the
            library's description of the code.
    """

    code: int
    name: str
    text: str
    errno: Optional[int]

    def __init__(self, code: int, text: Optional[str] = None, what: Optional[str] = None):
        self.code = code
        self.name = err_name(code)
        self.text = text or strerror(code)
        self.what = what
        msg = f"{what}: {self.text}" if what else self.text
        super().__init__(f"{msg} [{self.name}]")
        # errno for codes that are negated errno values (OSError subclasses read it).
        self.errno = -code if _E_BASE < code < 0 else None

    def __str__(self) -> str:  # OSError subclasses would otherwise print "[Errno ...]"
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, name={self.name!r}, text={self.text!r})"

    def __reduce__(self):  # picklable despite the custom __init__
        return (self.__class__, (self.code, self.text, self.what))


class InvalidArgumentError(VnetError, ValueError):
    """VNET_EINVAL / VNET_ERANGE: malformed or out-of-range input (parsers raise this)."""


class NotFoundError(VnetError, LookupError):
    """VNET_ENOENT: no such network, node, backend, ..."""


class ConflictError(VnetError):
    """VNET_EEXIST: the name, VNI, MAC or address is taken."""


class AccessDeniedError(VnetError, PermissionError):
    """VNET_EACCES / VNET_EPERM: refused (token, key, ownership, privileges)."""


class NoSpaceError(VnetError):
    """VNET_ENOSPC: a limit was reached (table size, reader slots, ...)."""


class BusyError(VnetError):
    """VNET_EBUSY."""


class VnetTimeoutError(VnetError, TimeoutError):
    """VNET_ETIMEDOUT: the controller did not answer in time."""


class VnetConnectionError(VnetError, ConnectionError):
    """The connection could not be made or was lost (refused, reset, no such socket)."""


class ProtocolError(VnetError):
    """VNET_EPROTO / VNET_EVERSION: the peer spoke something else."""


class StateError(VnetError):
    """VNET_ESTATE: the call is not valid in the object's current state."""


_E_BASE = -4000
_BY_CODE: dict[int, type[VnetError]] = {
    -_errno.EINVAL: InvalidArgumentError,
    -_errno.ERANGE: InvalidArgumentError,
    -_errno.ENOENT: NotFoundError,
    -_errno.EEXIST: ConflictError,
    -_errno.EACCES: AccessDeniedError,
    -_errno.EPERM: AccessDeniedError,
    -_errno.EKEYREJECTED: AccessDeniedError,  # VNET_EKEYREJECTED: not the pinned key
    -_errno.ENOSPC: NoSpaceError,
    -_errno.EBUSY: BusyError,
    -_errno.ETIMEDOUT: VnetTimeoutError,
    -_errno.ECONNREFUSED: VnetConnectionError,
    -_errno.ECONNRESET: VnetConnectionError,
    -_errno.EPIPE: VnetConnectionError,
    -_errno.ENOTCONN: VnetConnectionError,
    -_errno.EHOSTUNREACH: VnetConnectionError,
    -_errno.ENETUNREACH: VnetConnectionError,
    -_errno.EPROTO: ProtocolError,
    _E_BASE - 6: ProtocolError,  # VNET_EVERSION
    _E_BASE - 4: StateError,  # VNET_ESTATE
}


def error_from_code(code: int, text: Optional[str] = None, what: Optional[str] = None) -> VnetError:
    """The exception for a negative ``VNET_E*`` code (not raised)."""
    return _BY_CODE.get(code, VnetError)(code, text, what)


def check(code: int, what: Optional[str] = None, text: Optional[str] = None) -> int:
    """Raise the matching :class:`VnetError` when ``code`` is negative; return it otherwise."""
    if code < 0:
        raise error_from_code(code, text, what)
    return code
