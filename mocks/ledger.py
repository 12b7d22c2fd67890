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
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any


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
    """

    def __init__(self, system: str, max_entries: int | None = None) -> None:
        self.system = system
        self.max_entries = max_entries
        self._reset()

    def _reset(self) -> None:
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

    def _entry(self, i: int) -> Entry:
        kind, bits, keys = self._shapes[self._shape[i]]
        values = self._values
        j = self._at[i]
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
        t = self._odd_t[i] if self._odd_t and i in self._odd_t else self._t[i]
        data = dict(zip(keys, _unpacked(values[j : j + len(keys)]), strict=True)) if keys else {}
        return Entry(self._base + i, t, self.system, kind, entity, ref, corr, idem, data)

    def __len__(self) -> int:
        return len(self._t) - self._head

    def __iter__(self) -> Iterator[Entry]:
        for i in range(self._head, len(self._t)):
            yield self._entry(i)

    def since(self, seq: int = 0, limit: int | None = None) -> list[Entry]:
        """Entries with a sequence number above ``seq`` (for paging an export)."""
        start = max(self._head, seq + 1 - self._base)
        # As ever, a limit below 1 still returns one entry.
        stop = len(self._t) if limit is None else min(len(self._t), start + max(limit, 1))
        return [self._entry(i) for i in range(start, stop)]

    def of_kind(self, kind: str) -> list[Entry]:
        codes = {c for c, (k, _, _) in enumerate(self._shapes) if k == kind}
        shape = self._shape
        return [self._entry(i) for i in range(self._head, len(self._t)) if shape[i] in codes]

    def clear(self) -> None:
        self._reset()

    # ------------------------------------------------------------------------------ columns
    # Bulk reads for an export (sim.runfolder.ledgers_events_frame): fields without Entry objects.

    def pick(self, name: str, rows: Iterable[int], convert: Callable[[dict[str, Any]], Any] | None = None) -> list[Any]:
        """One ``Entry`` field (not ``seq``, ``t`` or ``system``) of the given entries (0 = the
        oldest kept), in the order given; ``data`` as dicts, or ``convert(dict)`` of each."""
        values, shape, at, h = self._values, self._shape, self._at, self._head
        if name == "kind":
            kinds = [k for k, _, _ in self._shapes]
            return [kinds[shape[h + r]] for r in rows]
        if name == "entity":
            return [values[at[h + r]] for r in rows]
        bit = {"ref": _REF, "correlation_id": _CORR, "idempotency_key": _IDEM}.get(name)
        if bit is not None:
            # Per shape: where the id sits after the entity (the lower id bits come first), or -1.
            offs = [1 + (bits & (bit - 1)).bit_count() if bits & bit else -1 for _, bits, _ in self._shapes]
            return [values[at[h + r] + o] if (o := offs[shape[h + r]]) >= 0 else None for r in rows]
        if name != "data":
            raise KeyError(name)
        lay = [(1 + bits.bit_count(), keys, len(keys)) for _, bits, keys in self._shapes]  # per shape
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
        """The kept entries' times as the float array itself (no copy), or None when some time
        is not a float (read ``column("t")`` then)."""
        if any(i >= self._head for i in self._odd_t):
            return None
        return self._t if self._head == 0 else self._t[self._head :]
