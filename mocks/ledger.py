"""Append-only business journal kept by every mock system: the oracle reconciliation reads.

An entry records what changed in the system's business state, when (simulated seconds since the
scenario start), and who caused it: the CRM order id the caller carried (``ref``), the correlation id
and the idempotency key of the request. Reconciliation only ever reads ledgers, never a system's
internal state, so it works the same for the bundled integration and for a black-box one.

Entry kinds used across the mocks (``<entity>.<verb>``), the ones reconciliation relies on:

- crm:     ``order.submitted`` (the demand), ``order.status_changed`` (data: status, previous)
- erp:     ``sales_order.created`` (data: lines [[sku, qty_each, unit_price]], order_no),
           ``sales_order.backordered``, ``sales_order.released``, ``sales_order.credit_hold``,
           ``sales_order.cancelled``, ``goods_issue.posted``, ``invoice.posted``, ``stock.received``
- wms:     ``fulfilment.created`` (data: lines [[sku, qty_each]]), ``fulfilment.picked``,
           ``fulfilment.packed``, ``fulfilment.ready_to_ship``, ``fulfilment.shipped``
- carrier: ``shipment.created``, ``shipment.picked_up``, ``shipment.in_transit``,
           ``shipment.delivered``, ``shipment.exception``
"""

from __future__ import annotations

import marshal
import os
import pickle
import sys
import tempfile
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

# Entries per spilled segment (``Ledger.spill_to``). An exporter merging the four ledgers holds one
# segment of each, unpickled and as Arrow, at once (~0.7 KB an entry): 2^14 keeps that ~50 MB.
# Read when spilling starts, so a test can make it tiny.
SEGMENT = 1 << 14


@dataclass(slots=True)
class Entry:
    seq: int
    t: float
    system: str
    kind: str
    entity: str
    ref: str | None = None
    correlation_id: str | None = None
    idempotency_key: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Which of ref / correlation_id / idempotency_key an entry carries (bits of its shape).
_REF, _CORR, _IDEM = 1, 2, 4


class _Packed(bytes):
    """A list or dict of an entry's data, kept marshalled: order lines as ``[[sku, qty, price],
    ...]`` objects cost ~450 B, marshalled ~130 B, and they were the bulk of a ledger's values.
    ``marshal`` round-trips exactly the builtin types it accepts (a list stays a list, floats to
    the bit); a value holding anything else is kept as it was given. Read back as a new object
    equal to the one recorded (nothing mutates a recorded value: the cores record fresh ones)."""

    __slots__ = ()


_CONTAINERS = frozenset((list, dict))


def _pack(v: Any) -> Any:
    if type(v) is list or type(v) is dict:
        try:
            return _Packed(marshal.dumps(v))
        except ValueError:  # something marshal does not take: keep the object itself
            return v
    return v


def _unpacked(vals: list[Any]) -> list[Any]:
    return [marshal.loads(v) if type(v) is _Packed else v for v in vals]


class Ledger:
    """Append-only journal. ``max_entries`` bounds memory in long live runs (oldest dropped first);
    ``dropped`` says how many, so an export can tell a complete ledger from a truncated one.

    Storage is by column, not one ``Entry`` per append: a quarter appends ~20 entries per order,
    tens of millions in all, and as objects (an Entry, its ``data`` dict and a ``seq`` int) they
    were ~350 B each before any value. Here an entry is its time in an ``array('d')``, a *shape*
    code (kind, data keys, which of ref / correlation id / idempotency key it has) and an offset
    into one flat list holding, in order, its entity, those ids and its data values (~60 B plus
    8 B per value; lists and dicts marshalled, see ``_Packed``). ``seq`` is implicit (entries are
    numbered without gaps). Readers get ``Entry`` objects built on demand, equal to what was
    appended: the same values under the same keys, in the same order (scalars the very objects,
    lists and dicts equal copies); ``data`` is a new dict on every read, so it no longer aliases
    what the appender passed (nothing mutates a recorded entry).

    ``spill_to(directory)`` takes the columns out of memory as the ledger grows (a large virtual
    run): every ``SEGMENT`` entries they are pickled to a segment file and started afresh, so the
    ledger keeps at most one segment in memory. Every read gives the same as before, reading the
    segments back one at a time; ``blocks()`` hands an exporter the columns segment by segment.
    """

    def __init__(self, system: str, max_entries: int | None = None) -> None:
        self.system = system
        self.max_entries = max_entries
        self._spill_dir: str | None = None
        self._spill_at = sys.maxsize  # in-memory column index whose append starts a new segment
        self._reset()

    def _reset(self) -> None:
        self._segments: list[str] = []  # segment files, oldest first
        self._seg_ends: list[int] = []  # column index after each segment's last entry
        self._spilled = 0  # entries in segments (they come before the in-memory columns)
        self._cache: tuple[int, _Block] | None = None  # the segment read last
        self._seq = 0
        self.dropped = 0
        self._head = 0  # column index of the oldest kept entry (the ones before it were dropped)
        self._base = 1  # seq of column index 0
        self._t = array("d")
        self._shape = array("I")
        self._at = array("I")  # offset of the entry's values in _values (2**32 values = 32 GiB of refs)
        self._values: list[Any] = []
        self._shapes: list[tuple[str, int, tuple[str, ...]]] = []  # code -> (kind, id bits, data keys)
        self._codes: dict[tuple[str, int, tuple[str, ...]], int] = {}
        self._shape_n: list[int] = []  # code -> entries of that shape appended (dropped ones too)
        self._odd_t: dict[int, Any] = {}  # column index -> a time that is not a float (kept as given)

    def append(
        self,
        t: float,
        kind: str,
        entity: str,
        ref: str | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        """Record one entry; returns its ``seq``. No ``Entry`` is built (the cores record millions
        and read none back); ``since(seq - 1)[0]`` reads it."""
        self._seq += 1
        if self.max_entries is not None and len(self) >= self.max_entries:
            self._drop_oldest()
        values = self._values
        i = len(self._t)
        self._at.append(len(values))
        values.append(entity)
        bits = 0
        if ref is not None:
            bits = _REF
            values.append(ref)
        if correlation_id is not None:
            bits |= _CORR
            values.append(correlation_id)
        if idempotency_key is not None:
            bits |= _IDEM
            values.append(idempotency_key)
        if data:
            key = (kind, bits, tuple(data))
            vals = data.values()
            values.extend(vals if _CONTAINERS.isdisjoint(map(type, vals)) else map(_pack, vals))
        else:
            key = (kind, bits, ())
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = len(self._shapes)
            self._shapes.append(key)
            self._shape_n.append(0)
        self._shape.append(code)
        self._shape_n[code] += 1
        # _t last: the length is len(_t), so a reader (another thread, live) never sees half an entry.
        if type(t) is float:
            self._t.append(t)
        else:
            self._odd_t[i] = t
            self._t.append(float("nan"))
        if i >= self._spill_at:
            self._spill()
        return self._seq

    def kinds(self) -> Counter[str]:
        """Entries appended since the last ``clear``, by kind (dropped ones included): O(shapes),
        so a drain loop can test quiescence without walking the ledger."""
        out: Counter[str] = Counter()
        for (kind, _, _), n in zip(self._shapes, self._shape_n, strict=True):
            out[kind] += n
        return out

    def _drop_oldest(self) -> None:
        self.dropped += 1
        self._head += 1
        if self._head >= 1024 and self._head * 2 >= len(self._t):
            # Compact: forget the dropped prefix (amortised O(1) per append).
            h, cut = self._head, self._at[self._head]
            del self._t[:h], self._shape[:h], self._at[:h], self._values[:cut]
            self._at = array("I", (a - cut for a in self._at))
            self._odd_t = {i - h: v for i, v in self._odd_t.items() if i >= h}
            self._base += h
            self._head = 0

    # ------------------------------------------------------------------------------ spilling

    def spill_to(self, directory: str, segment: int | None = None) -> None:
        """From now on keep at most ``segment`` (default ``SEGMENT``) entries in memory: the rest
        go to segment files in ``directory``, which the caller owns and removes."""
        if self.max_entries is not None:
            raise ValueError("a ledger with max_entries drops entries; it cannot also spill them")
        n = SEGMENT if segment is None else segment
        if n < 1:
            raise ValueError(f"segment must hold at least one entry, not {n}")
        self._spill_dir = directory
        self._spill_at = n - 1
        if len(self._t) >= n:
            self._spill()

    def flush(self) -> None:
        """Write the in-memory entries of a spilling ledger as a (short) segment: what is left in
        memory is then only the ledger's small tables (a hand-over pickles just those)."""
        if self._spill_dir is not None and len(self._t):
            self._spill()

    def _spill(self) -> None:
        assert self._spill_dir is not None and self._head == 0
        fd, path = tempfile.mkstemp(prefix=f"ledger-{self.system}-", suffix=".seg", dir=self._spill_dir)
        with os.fdopen(fd, "wb") as f:
            pickle.dump((self._t, self._shape, self._at, self._values, self._odd_t), f, pickle.HIGHEST_PROTOCOL)
        self._spilled += len(self._t)
        self._segments.append(path)
        self._seg_ends.append(self._spilled)
        self._t, self._shape, self._at = array("d"), array("I"), array("I")
        self._values = []
        self._odd_t = {}

    def _segment(self, k: int, keep: bool = True) -> _Block:
        if self._cache is not None and self._cache[0] == k:
            return self._cache[1]
        with open(self._segments[k], "rb") as f:
            t, shape, at, values, odd_t = pickle.load(f)
        blk = _Block(self._seg_ends[k] - len(t), t, shape, at, values, odd_t, 0, self._base)
        if keep:  # for the next random read (since, pick); a walk through blocks() keeps none
            self._cache = (k, blk)
        return blk

    def _memory(self) -> _Block:
        return _Block(self._spilled, self._t, self._shape, self._at, self._values, self._odd_t, self._head, self._base)

    def _block_of(self, c: int) -> _Block:
        """The block holding column index ``c`` (segments first, then the in-memory columns)."""
        if c >= self._spilled:
            return self._memory()
        return self._segment(bisect_right(self._seg_ends, c))

    def blocks(self) -> Iterator[_Block]:
        """The kept entries' columns, oldest first, one segment (or the in-memory part) at a time."""
        for k in range(len(self._segments)):
            yield self._segment(k, keep=False)
        if len(self._t) > self._head:
            yield self._memory()

    @property
    def shapes(self) -> list[tuple[str, int, tuple[str, ...]]]:
        """Shape code -> (kind, id bits, data keys), for reading ``blocks()``."""
        return self._shapes

    def shape_counts(self) -> list[int]:
        """Shape code -> entries of that shape appended since the last ``clear`` (dropped ones too)."""
        return list(self._shape_n)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None  # a segment read back is not part of the ledger
        return state

    # ------------------------------------------------------------------------------ reading

    def _entry(self, c: int, blk: _Block | None = None) -> Entry:
        if blk is None:
            blk = self._block_of(c)
        i = c - blk.start
        kind, bits, keys = self._shapes[blk.shape[i]]
        values = blk.values
        j = blk.at[i]
        entity = values[j]
        j += 1
        ref = corr = idem = None
        if bits & _REF:
            ref = values[j]
            j += 1
        if bits & _CORR:
            corr = values[j]
            j += 1
        if bits & _IDEM:
            idem = values[j]
            j += 1
        t = blk.odd_t[i] if blk.odd_t and i in blk.odd_t else blk.t[i]
        data = dict(zip(keys, _unpacked(values[j : j + len(keys)]), strict=True)) if keys else {}
        return Entry(self._base + c, t, self.system, kind, entity, ref, corr, idem, data)

    def _end(self) -> int:
        return self._spilled + len(self._t)

    def __len__(self) -> int:
        return self._end() - self._head

    def __iter__(self) -> Iterator[Entry]:
        for blk in self.blocks():
            for i in range(blk.head, len(blk.t)):
                yield self._entry(blk.start + i, blk)

    def since(self, seq: int = 0, limit: int | None = None) -> list[Entry]:
        """Entries with a sequence number above ``seq`` (for paging an export)."""
        end = self._end()
        start = max(self._head, seq + 1 - self._base)
        # As ever, a limit below 1 still returns one entry.
        stop = end if limit is None else min(end, start + max(limit, 1))
        return [self._entry(c) for c in range(start, stop)]

    def of_kind(self, kind: str) -> list[Entry]:
        codes = {c for c, (k, _, _) in enumerate(self._shapes) if k == kind}
        return [
            self._entry(blk.start + i, blk)
            for blk in self.blocks()
            for i in range(blk.head, len(blk.t))
            if blk.shape[i] in codes
        ]

    def clear(self) -> None:
        for path in self._segments:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self._reset()

    # ------------------------------------------------------------------------------ columns
    # Bulk reads for an export (sim.runfolder.ledgers_events_frame): fields without Entry objects.

    def pick(self, name: str, rows: Iterable[int], convert: Callable[[dict[str, Any]], Any] | None = None) -> list[Any]:
        """One ``Entry`` field (not ``seq``, ``t`` or ``system``) of the given entries (0 = the
        oldest kept), in the order given; ``data`` as dicts, or ``convert(dict)`` of each."""
        if self._segments:  # spilled: entry by entry, each from its segment (slow, but the same)
            if name not in ("kind", "entity", "ref", "correlation_id", "idempotency_key", "data"):
                raise KeyError(name)
            got = [getattr(self._entry(self._head + r), name) for r in rows]
            return got if name != "data" or convert is None else [convert(d) for d in got]
        values, shape, at, h = self._values, self._shape, self._at, self._head
        if name == "kind":
            kinds = [k for k, _, _ in self._shapes]
            return [kinds[shape[h + r]] for r in rows]
        if name == "entity":
            return [values[at[h + r]] for r in rows]
        bit = {"ref": _REF, "correlation_id": _CORR, "idempotency_key": _IDEM}.get(name)
        if bit is not None:
            offs = id_offsets(self._shapes, bit)
            return [values[at[h + r] + o] if (o := offs[shape[h + r]]) >= 0 else None for r in rows]
        if name != "data":
            raise KeyError(name)
        lay = data_layout(self._shapes)
        out: list[Any] = []
        append = out.append
        for r in rows:
            o, keys, k = lay[shape[h + r]]
            a = at[h + r] + o
            d = dict(zip(keys, _unpacked(values[a : a + k]), strict=True)) if k else {}
            append(d if convert is None else convert(d))
        return out

    @property
    def first_seq(self) -> int:
        """The seq of the oldest kept entry (the next seq to come when the ledger is empty)."""
        return self._base + self._head

    def times(self) -> array[float] | None:
        """The kept entries' times as the float array itself (no copy; a spilled ledger's a new
        array), or None when some time is not a float (read ``column("t")`` then)."""
        if self._segments:
            out = array("d")
            for blk in self.blocks():
                if blk.odd_t:
                    return None
                out += blk.t
            return out
        if any(i >= self._head for i in self._odd_t):
            return None
        return self._t if self._head == 0 else self._t[self._head :]


class _Block:
    """A run of a ledger's entries as columns: a segment read back, or the in-memory part.
    ``start`` is the column index of its first row; rows before ``head`` were dropped; the entry
    in row ``i`` has seq ``base + start + i``."""

    __slots__ = ("start", "t", "shape", "at", "values", "odd_t", "head", "base")

    def __init__(
        self,
        start: int,
        t: array[float],
        shape: array[int],
        at: array[int],
        values: list[Any],
        odd_t: dict[int, Any],
        head: int,
        base: int,
    ) -> None:
        self.start, self.t, self.shape, self.at, self.values, self.odd_t, self.head, self.base = (
            start, t, shape, at, values, odd_t, head, base
        )  # fmt: skip


def id_offsets(shapes: list[tuple[str, int, tuple[str, ...]]], bit: int) -> list[int]:
    """Per shape: where the id of ``bit`` sits after the entity (lower id bits come first), or -1."""
    return [1 + (bits & (bit - 1)).bit_count() if bits & bit else -1 for _, bits, _ in shapes]


def data_layout(shapes: list[tuple[str, int, tuple[str, ...]]]) -> list[tuple[int, tuple[str, ...], int]]:
    """Per shape: (offset of the first data value after ``at``, data keys, how many)."""
    return [(1 + bits.bit_count(), keys, len(keys)) for _, bits, keys in shapes]


def unpacked(vals: list[Any]) -> list[Any]:
    """Data values as recorded (marshalled lists and dicts loaded back)."""
    return _unpacked(vals)


ID_BITS = {"ref": _REF, "correlation_id": _CORR, "idempotency_key": _IDEM}
