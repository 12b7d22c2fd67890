"""The integration's own periodic audit sweep (not the harness's oracle, ``sim.reconcile``).

Webhooks get lost and write-backs fail in ways no retry sees (a webhook the sender gave up on, a
crash between two steps). The sweep walks the orders touched since ``since`` (hourly buckets kept
by ``workflows.save``), asks each system what it actually holds, and repairs drift through the
same workflows and idempotency keys as the webhook path, so a repair can never duplicate:

- a booked (OPEN) ERP order without a WMS fulfilment gets one (``fo:<crm id>``);
- a fulfilment ready to ship without a shipment gets one booked (``sh:<crm id>``);
- carrier scans the integration missed (lost ``tracking.update``) are applied, with goods issue and
  invoice as usual;
- a CRM status behind the integration's own record is pushed again.

Each repair counts once; the sweep ends with ``Publish("metrics", {"repairs": n, ...})``. Orders are
picked from the touched buckets of the last ``LOOKBACK_S``. Only orders that have gone quiet are
audited: no event for longer than the one they wait for usually takes (``quiet_after``: minutes
while being booked or in the warehouse, a day for a pickup or for stock and credit, two days for a
delivery); one audited and still quiet is looked at again once it has been quiet as long again
(6 h to 2 days). So the sweep's load stays a small fraction of the webhook path's: it no longer
re-polls every parcel in transit every few hours. ``DueIndex`` keeps the walk itself linear.
"""

from __future__ import annotations

import heapq
import math
import struct
import sys
from collections.abc import Generator, Mapping
from itertools import chain, filterfalse
from typing import Any

from reference_integration import mappings as m
from reference_integration.canonical import OrderStatus
from reference_integration.effects import DueOrders, Effect, Now, Publish, StateGet, StateGetMany, StatePut, Workflow
from reference_integration.errors import CallFailed
from reference_integration.mappings import MappingError
from reference_integration.workflows import (
    P_CARRIER_TRACKING,
    P_CRM_ORDER,
    P_ERP_ORDER,
    P_WMS_FULFILMENT,
    TOUCH_BUCKET_S,
    WorkflowContext,
    call,
    fulfillment_ready,
    load,
    order_released,
    save,
    state_key,
    tracking_update,
)

LOOKBACK_S = 7 * 86400.0  # orders untouched for longer are left to people (and the harness)
# How long an order may go without an event (a write by a workflow: ``touched``) before the sweep
# suspects one was lost, by what it waits for next (``quiet_after``):
SETTLE_S = 15 * 60.0  # in the flow (being booked, waiting for the warehouse): a workflow may be in flight
AWAIT_PICKUP_S = 24 * 3600.0  # shipment booked: the carrier's next daily pickup scans it (PU, then IT)
AWAIT_DELIVERY_S = 2 * 86400.0  # picked up: delivered (DL) within a usual ground transit
PARKED_REAUDIT_S = 24 * 3600.0  # waiting on something slow (stock, credit, people)
# An audited order that stays quiet is looked at again once it has been quiet as long again
# (geometric back-off), at least REAUDIT_S and at most MAX_REAUDIT_S later.
REAUDIT_S = 6 * 3600.0
MAX_REAUDIT_S = 2 * 86400.0
_PARKED = frozenset({OrderStatus.BACKORDERED.value, OrderStatus.CREDIT_HOLD.value, OrderStatus.EXCEPTION.value})
# Enum ``.value`` is a descriptor call; the index reads these on every state write.
_EXCEPTION = OrderStatus.EXCEPTION.value
_SHIPPED = OrderStatus.SHIPPED.value


def sweep(ctx: WorkflowContext, since: float | None = None) -> Workflow:
    """Audit open orders touched at or after ``since`` (default: ``LOOKBACK_S`` ago, which is also
    the limit) that have gone quiet (``quiet_after``) and were not audited lately (``_reaudit_after``);
    returns the counts."""
    now = yield Now()
    start = now - LOOKBACK_S if since is None else max(since, now - LOOKBACK_S)
    counts = {"repairs": 0, "audited": 0, "errors": 0}
    closed: set[str] = set()
    hours = range(int(start // TOUCH_BUCKET_S), int(now // TOUCH_BUCKET_S) + 1)
    due = yield DueOrders(start, now)
    if due is not None:
        # A due-time index (``DueIndex``) names the orders that can pass the filters now, in walk
        # order; every other open order would be skipped. Judged on their state as the walk
        # reaches them, exactly as below: the same audits in the same order, without reading the
        # whole look-back every sweep.
        ids, done, done_hours = due
        for crm_id in ids:
            st = yield StateGet(state_key(crm_id))
            yield from _visit(ctx, crm_id, st, now, closed, counts)
        # Closed orders leave the buckets the index says they are in, not a scan of the week's
        # buckets (that scan alone would again cost the open orders of the look-back per sweep).
        # Those the walk found closing meanwhile are the index's to hand over next time.
        gone = set(done)
        for b in done_hours:
            key = f"touched:{b}"
            current = (yield StateGet(key)) or []
            yield StatePut(key, list(filterfalse(gone.__contains__, current)))
        yield Publish("metrics", counts)
        return counts
    else:
        lists = yield from states([f"touched:{b}" for b in hours])
        buckets = {b: lst or [] for b, lst in zip(hours, lists, strict=True)}
        order = list(dict.fromkeys(chain.from_iterable(buckets.values())))
        # Orders are judged on their state as it is when the walk reaches them. Skipping takes no
        # time, so a run of skipped orders can be read in one go; an audit lets time pass (other
        # workflows write meanwhile), so what follows it is read afresh.
        snapshot: list[Any] = []
        base = i = 0
        ahead = _READ_AHEAD
        while i < len(order):
            if i - base >= len(snapshot):
                base = i
                snapshot = yield from states([state_key(c) for c in order[i : i + ahead]])
                ahead = min(2 * ahead, 64 * _READ_AHEAD)  # a long run of skips: read further ahead
            crm_id, st = order[i], snapshot[i - base]
            i += 1
            if (yield from _visit(ctx, crm_id, st, now, closed, counts)):
                snapshot, base, ahead = [], i, _READ_AHEAD
    # A delivered or cancelled order never reopens (``OrderStatus.advances_from``; ``save`` keeps
    # the further status), so it leaves the buckets for good: later sweeps then walk the open
    # orders of the look-back only, not every order of the week. Read and write back to back (no
    # wait between them in either interpreter) so a concurrent ``save`` is never lost.
    if closed:
        for b, lst in buckets.items():
            if not closed.isdisjoint(lst):
                key = f"touched:{b}"
                current = (yield StateGet(key)) or []
                yield StatePut(key, [c for c in current if c not in closed])
    yield Publish("metrics", counts)
    return counts


def _visit(
    ctx: WorkflowContext, crm_id: str, st: Any, now: float, closed: set[str], counts: dict[str, int]
) -> Generator[Effect, Any, bool]:
    """Judge one order of the walk on ``st`` (its state now) and audit it if due; True if audited
    (time passed: what the walk read ahead is stale)."""
    if not st:
        return False
    if st.get("status") in _TERMINAL:
        closed.add(crm_id)
        return False
    if now - st.get("touched", now) < quiet_after(st):
        return False
    if st.get("audited") is not None and now - st["audited"] < _reaudit_after(st):
        return False
    if st.get("status") == _EXCEPTION and not st.get("erp_order"):
        return False  # stopped before the ERP (mapping, validation): for people, not for a sweep
    try:
        counts["repairs"] += yield from audit_order(ctx, crm_id, check_crm=st.get("audited") is None)
        counts["audited"] += 1
    except (CallFailed, MappingError):
        # One unreachable system or odd record must not stop the sweep; the next one retries.
        counts["errors"] += 1
    st = yield StateGet(state_key(crm_id))
    # Straight StatePut, not ``save``: an audit is not a touch (it must not keep the order in the
    # recent buckets forever).
    yield StatePut(state_key(crm_id), {**(st or {"crm_id": crm_id}), "audited": now})
    return True


def due_at(st: Mapping[str, Any]) -> float:
    """The earliest sweep time at which an open order with state ``st`` passes the filters of
    ``_visit`` (inf: never, until its state changes). A hair early (``_SLACK``): ``a - b < c`` and
    ``a < b + c`` may round differently, and the walk applies the exact test anyway."""
    touched = st.get("touched")
    if touched is None or (st.get("status") == _EXCEPTION and not st.get("erp_order")):
        return math.inf
    due = touched + quiet_after(st)
    audited = st.get("audited")
    if audited is not None:
        due = max(due, audited + _reaudit_after(st))
    return due - _SLACK


_SLACK = 1e-3  # seconds; far above float rounding at simulated times of years


class DueIndex:
    """What the sweep would find due, maintained from every state write (``MemoryStore.index``).

    The full walk reads every open order of the 7-day look-back every sweep, so its cost grows with
    (open orders) x (sweeps) and a run stops scaling linearly. The index keeps, per open order, its
    due time (``due_at``) in a heap and the hourly buckets it was appended to, each with a global
    sequence number. Appends to bucket h happen during hour h only, so sequence order is the walk
    order (first appearance over the buckets of the look-back, oldest first): an order's place in a
    sweep from ``start`` is the sequence of its first bucket at or after ``start``'s hour.

    During a sweep only an audit lets time pass, and whatever other workflows write meanwhile
    touches an order (``save``: touched >= the sweep's now), which can only make it skip: so the
    orders due when the sweep starts, judged afresh as the walk reaches them, are all it audits."""

    def __init__(self) -> None:
        self._seq = 0  # bucket appends, in the order they happened
        self._entries = 0  # heap entries made: each one's number breaks ties in the heap
        # Open orders only: the due time of the latest write (inf: never, until written again).
        self._due: dict[str, float] = {}
        # The heap holds at most one live entry per order (``_queued``), due at or before the
        # order's latest due time. A write that is due no earlier than that entry leaves it be
        # (most writes: ``touched`` only moves on); when the entry comes up, ``due`` takes the
        # order if its latest due time has come and queues it again at that time if not. So the
        # orders found due are those whose latest write is due, as with an entry per write, for
        # a heap push per few writes instead of one each (and no pile of stale entries).
        self._queued: dict[str, tuple[float, int, str]] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._ready: set[str] = set()  # due at the last query, not written since
        # crm id -> its (hour, seq) records, ascending, packed (``_REC``): ~60 B per open order
        # where a list of tuples of ints was ~330.
        self._buckets: dict[str, bytes] = {}
        self._bucket_len: dict[int, int] = {}
        self._closed: set[str] = set()  # terminal and appended to a bucket since the last sweep

    def put(self, key: str, value: Any) -> None:
        if key.startswith(_ORDER_PREFIX):
            # Interned: the version key, every heap entry and the ready set then share one string
            # per order (a slice is a new string per write, ~70 B per heap entry).
            self._put_order(_intern(key[_ORDER_CUT:]), value)
        elif key.startswith(_BUCKET_PREFIX):
            self._put_bucket(int(key[_BUCKET_CUT:]), value or [])

    def _put_order(self, crm_id: str, st: Any) -> None:
        self._ready.discard(crm_id)
        if st and st.get("status") in _TERMINAL:
            # Never reopens: forget it (its heap entry is stale from now on), and let the next
            # sweep take it out of the buckets.
            self._due.pop(crm_id, None)
            self._queued.pop(crm_id, None)
            self._closed.add(crm_id)
            return
        due = self._due[crm_id] = due_at(st) if st else math.inf
        if due != math.inf:
            queued = self._queued.get(crm_id)
            if queued is None or queued[0] > due:
                self._queue(crm_id, due)

    def _queue(self, crm_id: str, due: float) -> None:
        self._entries += 1
        entry = self._queued[crm_id] = (due, self._entries, crm_id)
        heapq.heappush(self._heap, entry)

    def _put_bucket(self, hour: int, ids: list[str]) -> None:
        # ``save`` appends one id (after writing the order); the sweep rewrites a bucket without
        # its closed orders (shorter).
        seen = self._bucket_len.get(hour, 0)
        self._bucket_len[hour] = len(ids)
        buckets = self._buckets
        for crm_id in map(sys.intern, ids[seen:]):
            recs = buckets.get(crm_id, b"")
            if not recs or _REC.unpack_from(recs, len(recs) - _REC.size)[0] != hour:
                self._seq += 1
                buckets[crm_id] = recs + _REC.pack(hour, self._seq)
            if crm_id not in self._due:
                self._closed.add(crm_id)  # a closed order touched again (a late scan)

    def due(self, start: float, now: float) -> tuple[list[str], list[str], list[int]]:
        """``(ids, closed, hours)``: the open orders due at ``now`` in walk order, the closed orders
        still in the buckets from ``start``'s hour on, and those buckets' hours."""
        first = int(start // TOUCH_BUCKET_S)
        heap, queued, dues = self._heap, self._queued, self._due
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            crm_id = entry[2]
            if queued.get(crm_id) is not entry:
                continue  # stale: the order closed, or a write queued it earlier since
            due = dues[crm_id]
            if due <= now:
                del queued[crm_id]
                self._ready.add(crm_id)
            elif due != math.inf:
                self._queue(crm_id, due)  # written since, due later: wait for that
            else:
                del queued[crm_id]  # written since, never due until written again
        placed: list[tuple[int, str]] = []
        for crm_id in list(self._ready):
            seq = _first_from(self._buckets.get(crm_id, b""), first)
            if seq is None:
                # Out of the look-back; only a new touch (a write, so a new heap entry) brings it back.
                self._ready.discard(crm_id)
            else:
                placed.append((seq, crm_id))
        placed.sort()
        closed: list[str] = []
        hours: set[int] = set()
        for c in self._closed:
            # The sweep takes them out of the buckets of its look-back; older buckets are never
            # walked again.
            recs = [h for h, _ in _REC.iter_unpack(self._buckets.pop(c, b"")) if h >= first]
            if recs:
                closed.append(c)
                hours.update(recs)
        self._closed = set()
        return [c for _, c in placed], closed, sorted(hours)


_ORDER_PREFIX = state_key("")
_BUCKET_PREFIX = "touched:"
# Looked up once: ``put`` runs on every state write.
_ORDER_CUT = len(_ORDER_PREFIX)
_BUCKET_CUT = len(_BUCKET_PREFIX)
_intern = sys.intern


_REC = struct.Struct("<iq")  # a bucket record of ``DueIndex``: (hour, seq)


def _first_from(recs: bytes, hour: int) -> int | None:
    for h, seq in _REC.iter_unpack(recs):
        if h >= hour:
            return seq
    return None


_READ_AHEAD = 16  # orders read by the first StateGetMany after an audit (doubling while skipping)


def states(keys: list[str]) -> Generator[Effect, Any, list[Any]]:
    """The values of ``keys`` at one instant: one ``StateGetMany`` in the bundled interpreters, one
    ``StateGet`` per key in an interpreter that answers ``StateGetMany`` with None."""
    got = yield StateGetMany(tuple(keys))
    if got is None:
        got = []
        for k in keys:
            got.append((yield StateGet(k)))
    return list(got)


def quiet_after(st: Mapping[str, Any]) -> float:
    """How long an open order may stay without an event before the sweep audits it.

    Auditing every open order on a timer re-polled each shipped parcel every few hours for its
    whole transit (most of the integration's calls) to find the rare lost webhook. An event is
    expected within a known time of the state the order is in; only an order quiet for longer is
    suspect. The price: a lost delivery scan is noticed up to ``AWAIT_DELIVERY_S`` after pickup,
    not within hours of the delivery."""
    status = st.get("status")
    if status in _PARKED:
        return PARKED_REAUDIT_S
    if status == _SHIPPED:
        return AWAIT_DELIVERY_S
    if st.get("tracking_number"):
        return AWAIT_PICKUP_S
    return SETTLE_S


def _reaudit_after(st: Mapping[str, Any]) -> float:
    quiet = st["audited"] - st.get("touched", st["audited"])
    return min(max(REAUDIT_S, quiet), MAX_REAUDIT_S)


_TERMINAL = frozenset(s.value for s in OrderStatus if s.terminal)


def _closed(st: Mapping[str, Any]) -> bool:
    return st.get("status") in _TERMINAL


def audit_order(ctx: WorkflowContext, crm_id: str, check_crm: bool = True) -> Generator[Effect, Any, int]:
    """Compare one order across systems and repair drift; returns the number of repairs.

    An order in ``Exception`` waits for people: no fulfilment or shipment is created for it here
    (that would repeat the failure every sweep), but carrier scans and CRM status are still synced."""
    st = yield from load(crm_id)
    if _closed(st):
        return 0
    flagged = st.get("status") == OrderStatus.EXCEPTION.value
    repairs = 0
    fid = st.get("fulfillment_id")
    if not fid:
        # Only the ERP knows whether a fulfilment is due (OPEN) or not yet (backorder, hold).
        erp_order = st.get("erp_order")
        if not erp_order:
            res = yield from call(ctx, "erp", "find_sales_orders", params={"ExtRef": crm_id}, corr=crm_id)
            rows = res.body.get("SalesOrders", []) if isinstance(res.body, Mapping) else []
            if not rows:
                return 0  # never reached the ERP: a dead-lettered event (replay) or a business exception
            erp_order = m.required(rows[0], "SalesOrderNo", "SalesOrderNo")
        so = yield from call(ctx, "erp", "get_sales_order", params={P_ERP_ORDER: erp_order}, corr=crm_id)
        if m.required(so.body, "Status", "Status") == "OPEN" and not flagged:
            found = yield from call(ctx, "wms", "find_fulfillments", params={"client_reference": crm_id}, corr=crm_id)
            items = found.body.get("items", []) if isinstance(found.body, Mapping) else []
            if items:
                fid = st["fulfillment_id"] = items[0]["fulfillment_id"]
                st.setdefault("erp_order", erp_order)
                yield from save(st)
            else:
                released = {
                    "source": "erp",
                    "type": "SalesOrder.Released",
                    "data": {"SalesOrderNo": erp_order, "ExtRef": crm_id},
                }
                yield from order_released(ctx, released)
                repairs += 1
                st = yield from load(crm_id)
                fid = st.get("fulfillment_id")

    if fid and not st.get("tracking_number"):
        fo = yield from call(ctx, "wms", "get_fulfillment", params={P_WMS_FULFILMENT: fid}, corr=crm_id)
        body = fo.body if isinstance(fo.body, Mapping) else {}
        if body.get("tracking_number"):
            # Shipped already: only our record of the shipment was lost.
            st["tracking_number"] = body["tracking_number"]
            yield from save(st)
        elif body.get("status") == "ready_to_ship" and not flagged:
            yield from fulfillment_ready(ctx, {"source": "wms", "type": "fulfillment.ready_to_ship", "data": body})
            repairs += 1
            st = yield from load(crm_id)

    if st.get("tracking_number"):
        tr = yield from call(
            ctx, "carrier", "get_tracking", params={P_CARRIER_TRACKING: st["tracking_number"]}, corr=crm_id
        )
        code = _latest_code(tr.body)
        if code is not None:
            data = {"trackingNumber": st["tracking_number"], "shipperReference": crm_id, "eventCode": code}
            out = yield from tracking_update(ctx, {"source": "carrier", "type": "tracking.update", "data": data})
            if out.get("outcome") == "updated":
                repairs += 1
            st = yield from load(crm_id)

    # Our own record follows every CRM write we made, so reading the CRM back pays only once per
    # order (a write acknowledged but not recorded, someone editing the order by hand).
    if st.get("status") and check_crm:
        crm = yield from call(ctx, "crm", "get_order", params={P_CRM_ORDER: crm_id}, corr=crm_id)
        crm_status = crm.body.get("Status") if isinstance(crm.body, Mapping) else None
        ours = OrderStatus(st["status"])
        if crm_status in _STATUSES and ours.advances_from(crm_status):
            body = m.crm_status_update(ours, erp_order=st.get("erp_order"), tracking_number=st.get("tracking_number"))
            yield from call(ctx, "crm", "update_order", body, {P_CRM_ORDER: crm_id}, corr=crm_id)
            repairs += 1
    return repairs


_STATUSES = frozenset(s.value for s in OrderStatus)


def _latest_code(body: Any) -> str | None:
    """The most advanced scan on a tracking record: events may arrive out of order, rank decides.
    An exception scan counts only if nothing later (a delivery) superseded it."""
    if not isinstance(body, Mapping):
        return None
    codes = [e.get("eventCode") for e in body.get("events") or [] if isinstance(e, Mapping)]
    known = [c for c in codes if c in ("PU", "IT", "DL", "EX")]
    if not known:
        return None
    if "DL" in known:
        return "DL"
    if known[-1] == "EX":
        return "EX"
    return "PU" if "PU" in known or "IT" in known else None
