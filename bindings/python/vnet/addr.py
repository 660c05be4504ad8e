"""MAC, IP, prefix and endpoint values, parsed and formatted by libvnet itself.

Parsing goes through the library's strict parsers (``vnet_mac_parse``, ``vnet_ip_parse``, ...),
so what Python accepts and refuses is exactly what vnetctl and vnet-node accept and refuse, and a
refusal raises :class:`~vnet.errors.InvalidArgumentError` with the library's code
(``VNET_EINVAL``, or ``VNET_ERANGE`` for an out-of-range number).

Python-side values: a MAC is a lower-case ``"02:00:00:00:00:01"`` string, an IP address an
:mod:`ipaddress` object, a prefix an :class:`ipaddress.IPv4Interface` /
:class:`ipaddress.IPv6Interface` (host bits kept, as the library keeps them) and an endpoint an
:class:`Endpoint` (IP address and UDP port). Every function that takes one of them also takes
its text.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
from typing import NamedTuple, Optional, Union

from . import _lib
from ._lib import lib
from .errors import InvalidArgumentError, check

__all__ = [
    "IPAddress",
    "IPInterface",
    "Endpoint",
    "MacLike",
    "IPLike",
    "EndpointLike",
    "PrefixLike",
    "parse_mac",
    "format_mac",
    "parse_vni",
    "parse_ip",
    "format_ip",
    "parse_prefix",
    "format_prefix",
    "parse_endpoint",
    "format_endpoint",
    "parse_pubkey",
    "format_pubkey",
    "name_valid",
]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]


class Endpoint(NamedTuple):
    """A physical (underlay) endpoint: IP address and UDP port."""

    ip: IPAddress
    port: int

    def __str__(self) -> str:
        return format_endpoint(self)


MacLike = Union[str, bytes]
IPLike = Union[str, IPAddress]
PrefixLike = Union[str, IPInterface, ipaddress.IPv4Network, ipaddress.IPv6Network]
EndpointLike = Union[str, Endpoint, tuple]

_BUF = 64


def _text(s: object, what: str) -> bytes:
    if not isinstance(s, str):
        raise TypeError(f"{what}: expected str, got {type(s).__name__}")
    try:
        return s.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidArgumentError(-errno.EINVAL, f"bad {what} {s!r}") from None


# ---- C struct <-> Python value ----


def mac_to_c(mac: MacLike) -> _lib.Mac:
    out = _lib.Mac()
    if isinstance(mac, (bytes, bytearray)):
        if len(mac) != 6:
            raise InvalidArgumentError(-errno.EINVAL, f"bad MAC {bytes(mac)!r}: want 6 bytes")
        out.b[:] = list(mac)
        return out
    check(lib.vnet_mac_parse(_text(mac, "MAC"), ctypes.byref(out)), f"bad MAC {mac!r}")
    return out


def mac_from_c(m: _lib.Mac) -> str:
    buf = ctypes.create_string_buffer(_BUF)
    check(lib.vnet_mac_format(ctypes.byref(m), buf, _BUF))
    return buf.value.decode()


def ip_to_c(ip: IPLike) -> _lib.Ip:
    out = _lib.Ip()
    if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        ip = str(ip)
    check(lib.vnet_ip_parse(_text(ip, "IP address"), ctypes.byref(out)), f"bad IP address {ip!r}")
    return out


def ip_from_c(ip: _lib.Ip) -> Optional[IPAddress]:
    """The address, or None for an unset one (family 0)."""
    if ip.family == 4:
        return ipaddress.IPv4Address(bytes(ip.addr[:4]))
    if ip.family == 6:
        return ipaddress.IPv6Address(bytes(ip.addr))
    return None


def prefix_to_c(p: PrefixLike) -> _lib.Prefix:
    out = _lib.Prefix()
    if not isinstance(p, str):
        p = p.with_prefixlen if hasattr(p, "with_prefixlen") else str(p)
    check(lib.vnet_prefix_parse(_text(p, "prefix"), ctypes.byref(out)), f"bad prefix {p!r}")
    return out


def prefix_from_c(p: _lib.Prefix) -> Optional[IPInterface]:
    ip = ip_from_c(p.ip)
    if ip is None:
        return None
    return ipaddress.ip_interface(f"{ip}/{p.len}")


def endpoint_to_c(ep: EndpointLike) -> _lib.Endpoint:
    out = _lib.Endpoint()
    if isinstance(ep, tuple):
        ip, port = ep
        ip = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
        ep = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    check(
        lib.vnet_endpoint_parse(_text(ep, "endpoint"), ctypes.byref(out)), f"bad endpoint {ep!r}"
    )
    return out


def endpoint_from_c(ep: _lib.Endpoint) -> Optional[Endpoint]:
    ip = ip_from_c(ep.ip)
    if ip is None:
        return None
    return Endpoint(ip, ep.port)


# ---- public helpers ----


def parse_mac(s: str) -> str:
    """Parse a MAC ("01:23:45:67:89:ab" or with dashes, either case); returns it normalised."""
    return mac_from_c(mac_to_c(s))


def format_mac(mac: MacLike) -> str:
    """Format 6 bytes (or a MAC string) as "01:23:45:67:89:ab"."""
    return mac_from_c(mac_to_c(mac))


def parse_vni(s: str) -> int:
    """Parse a decimal VNI, 0..16777215."""
    out = ctypes.c_uint32()
    check(lib.vnet_vni_parse(_text(s, "VNI"), ctypes.byref(out)), f"bad VNI {s!r}")
    return out.value


def parse_ip(s: str) -> IPAddress:
    """Parse an IPv4 or IPv6 address."""
    ip = ip_from_c(ip_to_c(s))
    assert ip is not None
    return ip


def format_ip(ip: IPLike) -> str:
    buf = ctypes.create_string_buffer(_BUF)
    check(lib.vnet_ip_format(ctypes.byref(ip_to_c(ip)), buf, _BUF))
    return buf.value.decode()


def parse_prefix(s: str) -> IPInterface:
    """Parse "10.0.0.1/24" or "fd00::1/64" (host bits are kept)."""
    p = prefix_from_c(prefix_to_c(s))
    assert p is not None
    return p


def format_prefix(p: PrefixLike) -> str:
    buf = ctypes.create_string_buffer(_BUF)
    check(lib.vnet_prefix_format(ctypes.byref(prefix_to_c(p)), buf, _BUF))
    return buf.value.decode()


def parse_endpoint(s: str) -> Endpoint:
    """Parse "192.0.2.1:4789" or "[2001:db8::1]:4789" (port 1..65535)."""
    ep = endpoint_from_c(endpoint_to_c(s))
    assert ep is not None
    return ep


def format_endpoint(ep: EndpointLike) -> str:
    c = endpoint_to_c(ep)
    buf = ctypes.create_string_buffer(_BUF)
    check(lib.vnet_endpoint_format(ctypes.byref(c), buf, _BUF))
    return buf.value.decode()


def parse_pubkey(s: Union[str, bytes]) -> bytes:
    """A public key: the 43 base64 characters ``vnet-controller --pubkey`` prints, or 32 raw
    bytes. Returns the 32 bytes."""
    if isinstance(s, (bytes, bytearray)) and len(s) == 32:
        return bytes(s)
    if isinstance(s, (bytes, bytearray)):
        s = bytes(s).decode("ascii", "replace")
    out = (ctypes.c_uint8 * 32)()
    check(lib.vnet_pubkey_parse(_text(s.strip(), "public key"), out), "bad public key")
    return bytes(out)


def format_pubkey(key: bytes) -> str:
    if len(key) != 32:
        raise InvalidArgumentError(-errno.EINVAL, "a public key is 32 bytes")
    raw = (ctypes.c_uint8 * 32)(*key)
    buf = ctypes.create_string_buffer(_BUF)
    check(lib.vnet_pubkey_format(raw, buf, _BUF))
    return buf.value.decode()


def name_valid(name: str) -> bool:
    """True for a valid network or node name: 1..63 of [A-Za-z0-9._-], starting alphanumeric."""
    try:
        return bool(lib.vnet_name_valid(name.encode("ascii")))
    except UnicodeEncodeError:
        return False
