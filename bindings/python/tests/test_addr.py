"""Parse and format helpers: the library's strict parsers, errors with the library's codes."""

import errno
import ipaddress

import pytest

import vnet


def test_mac_roundtrip():
    assert vnet.parse_mac("02-00-00-00-00-AB") == "02:00:00:00:00:ab"
    assert vnet.format_mac(bytes([2, 0, 0, 0, 0, 1])) == "02:00:00:00:00:01"


@pytest.mark.parametrize("bad", ["", "02:00:00:00:00", "02:00:00:00:00:0g", "02:00:00:00:00:01 "])
def test_mac_refused(bad):
    with pytest.raises(vnet.InvalidArgumentError) as ei:
        vnet.parse_mac(bad)
    e = ei.value
    assert e.code == -errno.EINVAL and e.name == "VNET_EINVAL" and e.errno == errno.EINVAL
    assert isinstance(e, ValueError) and isinstance(e, vnet.VnetError)
    assert "bad MAC" in str(e) and "VNET_EINVAL" in str(e)


def test_ip_and_prefix():
    assert vnet.parse_ip("10.0.0.1") == ipaddress.IPv4Address("10.0.0.1")
    assert vnet.parse_ip("fd00::1") == ipaddress.IPv6Address("fd00::1")
    assert vnet.format_ip("FD00:0::1") == "fd00::1"
    p = vnet.parse_prefix("10.0.0.1/24")
    assert p == ipaddress.ip_interface("10.0.0.1/24")  # host bits kept
    assert vnet.format_prefix(ipaddress.ip_network("fd00::/64")) == "fd00::/64"
    with pytest.raises(vnet.InvalidArgumentError):
        vnet.parse_ip("10.0.0.256")
    with pytest.raises(vnet.InvalidArgumentError):
        vnet.parse_prefix("10.0.0.0/33")


def test_endpoint():
    ep = vnet.parse_endpoint("192.0.2.1:4789")
    assert ep == vnet.Endpoint(ipaddress.IPv4Address("192.0.2.1"), 4789)
    assert str(vnet.parse_endpoint("[2001:db8::1]:80")) == "[2001:db8::1]:80"
    assert vnet.format_endpoint(("192.0.2.1", 1)) == "192.0.2.1:1"
    for bad in ["192.0.2.1", "192.0.2.1:0", "192.0.2.1:80x", "2001:db8::1:80", "[::1]:65536"]:
        with pytest.raises(vnet.InvalidArgumentError):
            vnet.parse_endpoint(bad)


def test_vni_range_error():
    assert vnet.parse_vni("16777215") == 16777215
    with pytest.raises(vnet.InvalidArgumentError) as ei:
        vnet.parse_vni("16777216")
    assert ei.value.name == "VNET_ERANGE"
    with pytest.raises(vnet.InvalidArgumentError) as ei:
        vnet.parse_vni("+1")
    assert ei.value.name == "VNET_EINVAL"


def test_type_errors():
    with pytest.raises(TypeError):
        vnet.parse_mac(5)  # type: ignore[arg-type]
    with pytest.raises(vnet.InvalidArgumentError):
        vnet.parse_mac("02:00:00:00:00:0é")


def test_names_and_pubkeys():
    assert vnet.name_valid("blue-1.x") and not vnet.name_valid("-x") and not vnet.name_valid("")
    key = bytes(range(32))
    text = vnet.format_pubkey(key)
    assert len(text) == 43 and vnet.parse_pubkey(text) == key
    with pytest.raises(vnet.InvalidArgumentError):
        vnet.parse_pubkey("short")
