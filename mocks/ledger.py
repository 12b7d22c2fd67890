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

from collections import deque
from collections.abc import Iterator
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


class Ledger:
    """Append-only journal. ``max_entries`` bounds memory in long live runs (oldest dropped first);
    ``dropped`` says how many, so an export can tell a complete ledger from a truncated one."""

    def __init__(self, system: str, max_entries: int | None = None) -> None:
        self.system = system
        self._entries: deque[Entry] = deque(maxlen=max_entries)
        self._seq = 0
        self.dropped = 0

    def append(
        self,
        t: float,
        kind: str,
        entity: str,
        *,
        ref: str | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Entry:
        self._seq += 1
        if self._entries.maxlen is not None and len(self._entries) == self._entries.maxlen:
            self.dropped += 1
        e = Entry(self._seq, t, self.system, kind, entity, ref, correlation_id, idempotency_key, data or {})
        self._entries.append(e)
        return e

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def since(self, seq: int = 0, limit: int | None = None) -> list[Entry]:
        """Entries with a sequence number above ``seq`` (for paging an export)."""
        out: list[Entry] = []
        for e in self._entries:
            if e.seq > seq:
                out.append(e)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def of_kind(self, kind: str) -> list[Entry]:
        return [e for e in self._entries if e.kind == kind]

    def clear(self) -> None:
        self._entries.clear()
        self._seq = 0
        self.dropped = 0
