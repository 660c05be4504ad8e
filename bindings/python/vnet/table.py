"""The VN switch table: (VNI, MAC) -> physical endpoint, and (VNI, IP) -> MAC.

A :class:`Table` wraps ``struct vnet_table``. The thread that changes it (put, delete, batches)
is the table's *writer*; libvnet allows exactly one, so use a table from one Python thread (the
GIL does not make two writers safe: the C calls release it). Datapaths started on the table
read it concurrently from their own threads without locks; a batch is seen by them whole or
not at all.

Lookups and iteration return copies (:class:`Entry`), never pointers into the table, so they
stay valid whatever the writer does next.
"""

from __future__ import annotations

import ctypes
import errno
import enum
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, List, Optional, Tuple

from . import _lib
from ._lib import VNET_VNI_ANY, lib
from .addr import (
    Endpoint,
    EndpointLike,
    IPAddress,
    IPLike,
    MacLike,
    endpoint_from_c,
    endpoint_to_c,
    ip_from_c,
    ip_to_c,
    mac_from_c,
    mac_to_c,
)
from .errors import InvalidArgumentError, StateError, check

if TYPE_CHECKING:
    from .datapath import Datapath

__all__ = ["Table", "Batch", "Entry", "EntryFlag", "TableStats", "VNI_ANY"]

VNI_ANY = VNET_VNI_ANY


class EntryFlag(enum.IntFlag):
    """Entry flags (``VNET_ENTRY_*``); bits 3..6 (``USER``) are the embedder's."""

    NONE = 0
    STATIC = 0x01
    LEARNED = 0x02
    LOCAL = 0x04
    USER = 0x78


@dataclass(frozen=True)
class Entry:
    """A copy of one table entry."""

    vni: int
    mac: str
    endpoint: Optional[Endpoint]
    peer_id: int
    flags: EntryFlag
    revision: int

    @classmethod
    def _from_c(cls, e: _lib.Entry) -> "Entry":
        ep = _lib.Endpoint()
        lib.vnet_entry_endpoint(ctypes.byref(e), ctypes.byref(ep))
        return cls(
            vni=e.priv_vf_ >> 8,
            mac=mac_from_c(e.mac),
            endpoint=endpoint_from_c(ep),
            peer_id=e.peer_id,
            flags=EntryFlag(e.priv_vf_ & 0x7F),
            revision=e.revision,
        )

    def __repr__(self) -> str:
        names = [n for n, v in (("static", 1), ("learned", 2), ("local", 4)) if self.flags & v]
        if self.flags & EntryFlag.USER:
            names.append(f"user={int(self.flags) & 0x78:#x}")
        flags = "|".join(names) or "0"
        return (
            f"<Entry vni={self.vni} {self.mac} -> {self.endpoint} peer={self.peer_id} "
            f"flags={flags} rev={self.revision}>"
        )


@dataclass(frozen=True)
class TableStats:
    """``struct vnet_table_stats``."""

    entries: int
    ip_entries: int
    slots: int
    ip_slots: int
    load_factor: float
    ip_load_factor: float
    memory_bytes: int
    pending_reclaim: int
    batches: int
    rebuilds: int
    readers: int


def _vni(vni: int) -> int:
    if not isinstance(vni, int) or not 0 <= vni <= _lib.VNET_VNI_MAX:
        raise InvalidArgumentError(-errno.EINVAL, f"bad VNI {vni!r}: want 0..16777215")
    return vni


class Batch:
    """Operations collected for one atomic :meth:`Table.apply`.

    Made by :meth:`Table.batch`; used as a context manager, it applies everything at a clean
    exit and nothing when the block raises. Methods return the batch, so they chain.
    """

    def __init__(self, table: "Table", revision: Optional[int] = None):
        self._table = table
        self.revision = revision
        self._ops: List[_lib.TableOp] = []
        self.applied = False

    def __len__(self) -> int:
        return len(self._ops)

    def __repr__(self) -> str:
        state = "applied" if self.applied else "pending"
        return f"<vnet.Batch {len(self._ops)} ops rev={self.revision} {state}>"

    def _op(self, type_: int, vni: int) -> _lib.TableOp:
        if self.applied:
            raise StateError(_lib_estate(), "batch already applied")
        op = _lib.TableOp()
        op.type = type_
        op.vni = vni
        self._ops.append(op)
        return op

    def put(
        self,
        vni: int,
        mac: MacLike,
        endpoint: EndpointLike,
        peer_id: int = 0,
        flags: int = EntryFlag.STATIC,
    ) -> "Batch":
        """Insert or replace (vni, mac) -> endpoint."""
        op = self._op(_lib.TABLE_PUT, _vni(vni))
        op.mac = mac_to_c(mac)
        op.ep = endpoint_to_c(endpoint)
        op.peer_id = peer_id
        if not 0 <= int(flags) <= 0x7F:
            raise InvalidArgumentError(-errno.EINVAL, f"bad flags {flags!r}: 7 bits")
        op.flags = int(flags)
        return self

    insert = put

    def delete(self, vni: int, mac: MacLike) -> "Batch":
        """Remove (vni, mac); absent is not an error."""
        self._op(_lib.TABLE_DEL, _vni(vni)).mac = mac_to_c(mac)
        return self

    def put_ip(self, vni: int, ip: IPLike, mac: MacLike) -> "Batch":
        """Bind (vni, ip) -> mac, for answering ARP / neighbour solicitations locally."""
        op = self._op(_lib.TABLE_PUT_IP, _vni(vni))
        op.ip = ip_to_c(ip)
        op.mac = mac_to_c(mac)
        return self

    def delete_ip(self, vni: int, ip: IPLike) -> "Batch":
        self._op(_lib.TABLE_DEL_IP, _vni(vni)).ip = ip_to_c(ip)
        return self

    def clear(self, vni: int = VNI_ANY) -> "Batch":
        """Remove every entry and binding of ``vni`` (:data:`VNI_ANY`: all)."""
        self._op(_lib.TABLE_CLEAR_VNI, vni if vni == VNI_ANY else _vni(vni))
        return self

    def apply(self) -> int:
        """Apply now; returns the revision the entries were stamped with."""
        if self.applied:
            raise StateError(_lib_estate(), "batch already applied")
        rev = self._table._apply(self._ops, self.revision)
        self.applied = True
        self.revision = rev
        return rev

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self.applied:
            self.apply()


def _lib_estate() -> int:
    return -4000 - 4  # VNET_ESTATE


class Table:
    """A VN switch table (``vnet_table_create``).

    Args:
        max_entries: MAC entries at most (0: 16,777,216).
        max_ip_entries: IP bindings at most (0: as max_entries).
        initial_capacity: entries to size the index for (0: 1024).
        max_readers: reader threads (datapaths) at most (0: 64).

    Single writes (:meth:`put`, :meth:`delete`, ...) are one-operation batches stamped with
    ``revision + 1``; :meth:`batch` groups several into one atomic change.
    """

    def __init__(
        self,
        max_entries: int = 0,
        max_ip_entries: int = 0,
        initial_capacity: int = 0,
        max_readers: int = 0,
    ):
        opts = _lib.TableOpts(max_entries, max_ip_entries, initial_capacity, max_readers)
        h = ctypes.c_void_p()
        check(lib.vnet_table_create(ctypes.byref(opts), ctypes.byref(h)), "table")
        self._h: Optional[int] = h.value
        self._datapaths: "weakref.WeakSet[Datapath]" = weakref.WeakSet()

    # ---- lifetime ----

    @property
    def closed(self) -> bool:
        return self._h is None

    def _handle(self) -> int:
        if self._h is None:
            raise StateError(_lib_estate(), "table is closed")
        return self._h

    def close(self) -> None:
        """Destroy the table. Datapaths still using it are closed first."""
        if self._h is None:
            return
        for dp in list(self._datapaths):
            dp.close()
        lib.vnet_table_destroy(self._h)
        self._h = None

    def __enter__(self) -> "Table":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ---- writes ----

    def _apply(self, ops: List[_lib.TableOp], revision: Optional[int]) -> int:
        h = self._handle()
        rev = self.revision + 1 if revision is None else revision
        arr = (_lib.TableOp * len(ops))(*ops)
        check(lib.vnet_table_apply(h, arr, len(ops), rev), "table apply")
        return rev

    def batch(self, revision: Optional[int] = None) -> Batch:
        """A batch to fill and apply atomically::

            with table.batch(revision=7) as b:
                b.put(42, "02:00:00:00:00:02", "192.0.2.2:4789", peer_id=2)
                b.delete(42, "02:00:00:00:00:03")

        ``revision`` stamps the written entries (default: the table's revision + 1).
        """
        return Batch(self, revision)

    def put(
        self,
        vni: int,
        mac: MacLike,
        endpoint: EndpointLike,
        peer_id: int = 0,
        flags: int = EntryFlag.STATIC,
        revision: Optional[int] = None,
    ) -> None:
        """Insert or replace (vni, mac) -> endpoint."""
        Batch(self, revision).put(vni, mac, endpoint, peer_id, flags).apply()

    insert = put

    def delete(self, vni: int, mac: MacLike, revision: Optional[int] = None) -> None:
        Batch(self, revision).delete(vni, mac).apply()

    def put_ip(self, vni: int, ip: IPLike, mac: MacLike, revision: Optional[int] = None) -> None:
        Batch(self, revision).put_ip(vni, ip, mac).apply()

    def delete_ip(self, vni: int, ip: IPLike, revision: Optional[int] = None) -> None:
        Batch(self, revision).delete_ip(vni, ip).apply()

    def clear(self, vni: int = VNI_ANY, revision: Optional[int] = None) -> None:
        Batch(self, revision).clear(vni).apply()

    def synchronize(self) -> None:
        """Wait for every datapath to pass a quiescent state and free what removed entries
        left behind (``vnet_table_synchronize``)."""
        lib.vnet_table_synchronize(self._handle())

    # ---- reads ----

    def lookup(self, vni: int, mac: MacLike) -> Optional[Entry]:
        """The entry for (vni, mac), or None."""
        p = lib.vnet_table_lookup(self._handle(), _vni(vni), ctypes.byref(mac_to_c(mac)))
        return Entry._from_c(p.contents) if p else None

    def lookup_ip(self, vni: int, ip: IPLike) -> Optional[str]:
        """The MAC bound to (vni, ip), or None."""
        m = _lib.Mac()
        rc = lib.vnet_table_lookup_ip(
            self._handle(), _vni(vni), ctypes.byref(ip_to_c(ip)), ctypes.byref(m)
        )
        if rc == -errno.ENOENT:
            return None
        check(rc, "lookup_ip")
        return mac_from_c(m)

    def __contains__(self, key: Tuple[int, MacLike]) -> bool:
        vni, mac = key
        return self.lookup(vni, mac) is not None

    def entries(self, vni: int = VNI_ANY) -> List[Entry]:
        """Copies of every entry of ``vni`` (:data:`VNI_ANY`: all), in no particular order."""
        out: List[Entry] = []

        def cb(e, _arg):
            out.append(Entry._from_c(e.contents))
            return 0

        fn = _lib.TABLE_ITER_FN(cb)
        check(lib.vnet_table_foreach(self._handle(), vni, fn, None), "foreach")
        return out

    def ip_bindings(self, vni: int = VNI_ANY) -> List[Tuple[int, IPAddress, str]]:
        """Every (vni, ip, mac) binding."""
        out: List[Tuple[int, IPAddress, str]] = []

        def cb(v, ip, mac, _arg):
            addr = ip_from_c(ip.contents)
            out.append((v, addr, mac_from_c(mac.contents)))
            return 0

        fn = _lib.TABLE_IP_ITER_FN(cb)
        check(lib.vnet_table_foreach_ip(self._handle(), vni, fn, None), "foreach_ip")
        return out

    def __iter__(self) -> Iterator[Entry]:
        """Iterate over a snapshot of every entry (taken with ``vnet_table_foreach``)."""
        return iter(self.entries())

    def __len__(self) -> int:
        return int(lib.vnet_table_count(self._handle()))

    def __bool__(self) -> bool:  # a table is an object, not a container to test for emptiness
        return True

    @property
    def revision(self) -> int:
        """The revision of the last applied batch (0 for a new table)."""
        return int(lib.vnet_table_revision(self._handle()))

    def stats(self) -> TableStats:
        s = _lib.TableStats()
        lib.vnet_table_get_stats(self._handle(), ctypes.byref(s))
        return TableStats(**{name: getattr(s, name) for name, _ in _lib.TableStats._fields_})

    def __repr__(self) -> str:
        if self._h is None:
            return "<vnet.Table closed>"
        return f"<vnet.Table {len(self)} entries rev={self.revision}>"
