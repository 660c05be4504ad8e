"""The switch table binding: writes, batches, lookups, iteration, stats, errors."""

import pytest

import vnet
from vnet import EntryFlag

A, B, C = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"


@pytest.fixture
def table():
    with vnet.Table(max_entries=4) as t:
        yield t


def test_put_lookup_delete(table):
    assert table.revision == 0 and len(table) == 0 and table.lookup(42, A) is None
    table.put(42, A, "192.0.2.1:4789", peer_id=7)
    e = table.lookup(42, A)
    assert e is not None
    assert (e.vni, e.mac, str(e.endpoint), e.peer_id, e.revision) == (
        42,
        A,
        "192.0.2.1:4789",
        7,
        1,
    )
    assert e.flags == EntryFlag.STATIC
    assert "02:00:00:00:00:0a -> 192.0.2.1:4789" in repr(e) and "static" in repr(e)
    assert (42, A) in table and (43, A) not in table
    table.insert(42, A, "[2001:db8::1]:4789", flags=EntryFlag.LEARNED | 0x08)
    e = table.lookup(42, A)
    assert str(e.endpoint) == "[2001:db8::1]:4789" and e.revision == 2
    assert e.flags & EntryFlag.LEARNED and e.flags & 0x08
    table.delete(42, A)
    assert table.lookup(42, A) is None and table.revision == 3


def test_batch_atomic_and_ip(table):
    with table.batch(revision=10) as b:
        b.put(42, A, "192.0.2.1:4789").put(42, B, "192.0.2.2:4789", peer_id=2)
        b.put_ip(42, "10.0.0.2", B)
        assert len(b) == 3
        assert table.lookup(42, A) is None  # nothing before the exit
    assert b.applied and table.revision == 10 and len(table) == 2
    assert table.lookup_ip(42, "10.0.0.2") == B and table.lookup_ip(42, "10.0.0.3") is None
    assert table.ip_bindings() == [(42, vnet.parse_ip("10.0.0.2"), B)]
    # An exception in the block: nothing applied.
    with pytest.raises(RuntimeError):
        with table.batch() as b:
            b.delete(42, A)
            raise RuntimeError("abandon")
    assert table.lookup(42, A) is not None and table.revision == 10
    # Over max_entries mid-batch: all or nothing, with the library's code.
    with pytest.raises(vnet.NoSpaceError) as ei:
        with table.batch() as b:
            b.delete(42, A)
            for i in range(5):
                b.put(7, f"02:00:00:00:01:{i:02x}", "192.0.2.9:4789")
    assert ei.value.name == "VNET_ENOSPC"
    assert table.lookup(42, A) is not None and len(table) == 2 and table.revision == 10
    with table.batch() as b:
        b.delete_ip(42, "10.0.0.2").clear(42)
    assert len(table) == 0 and table.lookup_ip(42, "10.0.0.2") is None


def test_iterate(table):
    table.put(1, A, "192.0.2.1:4789")
    table.put(2, B, "192.0.2.2:4789")
    table.put(2, C, "192.0.2.3:4789", flags=EntryFlag.LOCAL)
    assert sorted(e.mac for e in table) == [A, B, C]
    assert sorted(e.mac for e in table.entries(2)) == [B, C]
    s = table.stats()
    assert s.entries == 3 and s.batches == 3 and s.readers == 0 and s.memory_bytes > 0
    assert repr(table) == "<vnet.Table 3 entries rev=3>"


def test_errors(table):
    with pytest.raises(vnet.InvalidArgumentError):
        table.put(1 << 24, A, "192.0.2.1:4789")
    with pytest.raises(vnet.InvalidArgumentError):
        table.put(1, "nope", "192.0.2.1:4789")
    with pytest.raises(vnet.InvalidArgumentError):
        table.put(1, A, "192.0.2.1:4789", flags=0x80)
    b = table.batch()
    b.apply()
    with pytest.raises(vnet.StateError):
        b.apply()


def test_closed():
    t = vnet.Table()
    t.close()
    t.close()
    assert t.closed and repr(t) == "<vnet.Table closed>"
    with pytest.raises(vnet.StateError):
        len(t)
