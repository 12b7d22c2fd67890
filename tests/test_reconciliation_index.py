"""The audit sweep's due-time index (``reconciliation.DueIndex``) changes its cost, never its
choices: with and without the index, the same writes give the same audits in the same order."""

from __future__ import annotations

import random
from typing import Any

import pytest

from reference_integration.config import IntegrationConfig
from reference_integration.effects import (
    Call,
    DueOrders,
    Now,
    Publish,
    Result,
    StateAdd,
    StateGet,
    StateGetMany,
    StatePut,
)
from reference_integration.reconciliation import LOOKBACK_S, SETTLE_S, DueIndex, due_at, sweep
from reference_integration.store import MemoryStore
from reference_integration.workflows import WorkflowContext, save, state_key

STATUSES = ["Submitted", "Booked", "Backordered", "Credit Hold", "In Fulfilment", "Shipped", "Exception"]
CLOSED = ["Delivered", "Cancelled"]


class World:
    """A hand interpreter over a ``MemoryStore``; other workflows write while an audit waits on a
    call (time passes then), as in a real run. Every random draw comes from one seeded stream, so
    two worlds given the same seed stay in step exactly as long as their sweeps choose alike."""

    def __init__(self, seed: int, indexed: bool) -> None:
        self.rng = random.Random(seed)
        self.store = MemoryStore(clock=lambda: self.now, index=DueIndex() if indexed else None)
        self.now = 0.0
        self.audits: list[tuple[float, str]] = []
        self.ids = [f"801{i:015d}" for i in range(60)]

    def run(self, wf: Any) -> Any:
        value: Any = None
        while True:
            try:
                eff = wf.send(value)
            except StopIteration as stop:
                return stop.value
            value = None
            if isinstance(eff, Call):
                self.now += self.rng.choice([0.0, 0.05, 2.0, 30.0])
                if self.rng.random() < 0.3:
                    self.write_random()
                value = self.reply(eff)
            elif isinstance(eff, StateGet):
                value = self.store.get_state(eff.key)
            elif isinstance(eff, StateGetMany):
                value = self.store.get_states(eff.keys)
            elif isinstance(eff, DueOrders):
                idx = self.store.index
                value = idx.due(eff.start, eff.now) if idx is not None else None
            elif isinstance(eff, StatePut):
                if isinstance(eff.value, dict) and "audited" in eff.value and eff.key.startswith("order:"):
                    old = self.store.get_state(eff.key) or {}
                    if old.get("audited") != eff.value["audited"]:
                        self.audits.append((self.now, eff.key))
                self.store.put_state(eff.key, eff.value)
            elif isinstance(eff, StateAdd):
                add = getattr(self.store, "state_add", None)  # None: the workflow reads and rewrites
                value = None if add is None else add(eff.key, eff.member)
            elif isinstance(eff, Now):
                value = self.now
            else:
                assert isinstance(eff, Publish)

    def reply(self, call: Call) -> Result:
        # Mostly consistent systems; sometimes a body the audit cannot map (an error, still audited).
        if call.operation == "get_sales_order":
            return Result(200, {"SalesOrderNo": "SO-1", "Status": self.rng.choice(["OPEN", "BACKORDERED", "X"])})
        if call.operation == "find_fulfillments":
            return Result(200, {"items": [{"fulfillment_id": "FO-1"}]})
        if call.operation == "get_fulfillment":
            return Result(200, {"fulfillment_id": "FO-1", "status": "picked"})
        return Result(200, {})

    def write_random(self) -> None:
        crm_id = self.rng.choice(self.ids)
        st = dict(self.store.get_state(state_key(crm_id)) or {"crm_id": crm_id})
        r = self.rng.random()
        st["status"] = self.rng.choice(CLOSED) if r < 0.05 else self.rng.choice(STATUSES)
        if self.rng.random() < 0.7:
            st["erp_order"] = "SO-1"
        if self.rng.random() < 0.3:
            st["fulfillment_id"] = "FO-1"
        self.run(save(st))


def history(seed: int, indexed: bool) -> list[tuple[float, str]]:
    w = World(seed, indexed)
    ctx = WorkflowContext(config=IntegrationConfig.resilient())
    for _ in range(400):  # ~4 days of 15-minute sweeps: orders age out of the look-back too
        for _ in range(w.rng.randrange(4)):
            w.write_random()
        w.now += w.rng.choice([SETTLE_S, SETTLE_S, 0.0, 3600.0, LOOKBACK_S / 8])
        w.run(sweep(ctx))
    return w.audits


@pytest.mark.parametrize("seed", range(8))
def test_index_audits_the_same_orders_in_the_same_order(seed: int) -> None:
    full, indexed = history(seed, indexed=False), history(seed, indexed=True)
    assert len(full) > 50  # the walk had real work to do
    assert indexed == full


def test_due_at_matches_the_filters() -> None:
    st = {"crm_id": "x", "status": "Booked", "touched": 100.0}
    assert due_at(st) == pytest.approx(100.0 + SETTLE_S, abs=0.01)
    assert due_at({**st, "audited": 1000.0}) == pytest.approx(1000.0 + 6 * 3600.0, abs=0.01)
    parked = {**st, "status": "Backordered", "audited": 90000.0}
    assert due_at(parked) == pytest.approx(90000.0 + 89900.0, abs=0.01)  # quiet as long again
    assert due_at({**st, "status": "Shipped", "tracking_number": "1Z"}) == pytest.approx(100.0 + 2 * 86400.0, abs=0.01)
    assert due_at({**st, "status": "Exception"}) == float("inf")  # before the ERP: for people
    assert due_at({**st, "status": "Exception", "erp_order": "SO-1"}) < float("inf")


def test_index_forgets_closed_orders_and_hands_them_to_the_sweep_once() -> None:
    idx = DueIndex()
    idx.put(state_key("a"), {"crm_id": "a", "status": "Booked", "touched": 10.0})
    idx.put("touched:0", ["a"])
    idx.put(state_key("b"), {"crm_id": "b", "status": "Booked", "touched": 20.0})
    idx.put("touched:0", ["a", "b"])
    assert idx.due(0.0, 5000.0) == (["a", "b"], [], [])
    idx.put(state_key("a"), {"crm_id": "a", "status": "Delivered", "touched": 30.0})
    assert idx.due(0.0, 5000.0) == (["b"], ["a"], [0])
    assert idx.due(0.0, 5000.0) == (["b"], [], [])
    # Out of the look-back (its only bucket is older than ``start``): not due any more.
    assert idx.due(3600.0, 5000.0) == ([], [], [])


class _EntryPerWrite(DueIndex):
    """The index as it was: a heap entry per write, stale ones skipped by version."""

    def __init__(self) -> None:
        super().__init__()
        self._version: dict[str, int] = {}
        self._writes = 0

    def _put_order(self, crm_id: str, st: Any) -> None:
        import heapq
        import math

        from reference_integration.reconciliation import _TERMINAL

        self._ready.discard(crm_id)
        if st and st.get("status") in _TERMINAL:
            self._version.pop(crm_id, None)
            self._due.pop(crm_id, None)  # ``_put_bucket`` reads it as "open"
            self._closed.add(crm_id)
            return
        self._writes += 1
        v = self._version[crm_id] = self._writes
        due = self._due[crm_id] = due_at(st) if st else math.inf
        if due != math.inf:
            heapq.heappush(self._heap, (due, v, crm_id))

    def due(self, start: float, now: float) -> tuple[list[str], list[str], list[int]]:
        import heapq

        heap = self._heap
        while heap and heap[0][0] <= now:
            _, v, crm_id = heapq.heappop(heap)
            if self._version.get(crm_id) == v:
                self._ready.add(crm_id)
        # Nothing left for the lazy queue: the rest of ``due`` is the same code.
        self._queued.clear()
        return super().due(start, now)


@pytest.mark.parametrize("seed", range(6))
def test_one_entry_per_order_finds_what_an_entry_per_write_finds(seed: int) -> None:
    """The heap keeps one live entry per order, requeued when it comes up before the order's
    latest due time: every query answers exactly what a heap entry per write answered."""
    rng = random.Random(seed)
    lazy, eager = DueIndex(), _EntryPerWrite()
    ids = [f"801{i:05d}" for i in range(40)]
    buckets: dict[int, list[str]] = {}
    now = 0.0
    for _ in range(3000):
        now += rng.choice([0.0, 1.0, 60.0, SETTLE_S, 3600.0, 6 * 3600.0])
        if rng.random() < 0.8:
            crm_id = rng.choice(ids)
            st: dict[str, Any] = {"crm_id": crm_id, "touched": now - rng.choice([0.0, 0.0, 600.0, 86400.0])}
            r = rng.random()
            st["status"] = rng.choice(CLOSED) if r < 0.04 else rng.choice(STATUSES)
            if rng.random() < 0.5:
                st["erp_order"] = "SO-1"
            if rng.random() < 0.3:
                st["tracking_number"] = "1Z"
            if rng.random() < 0.3:
                st["audited"] = now - rng.choice([0.0, 3600.0, 86400.0])
            value: Any = st if rng.random() < 0.97 else None
            hour = int(now // 3600)
            members = buckets.setdefault(hour, [])
            if crm_id not in members:
                members.append(crm_id)
            for idx in (lazy, eager):
                idx.put(state_key(crm_id), value)
                idx.put(f"touched:{hour}", list(members))
        else:
            start = max(0.0, now - LOOKBACK_S)
            assert lazy.due(start, now) == eager.due(start, now)
