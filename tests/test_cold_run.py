"""A virtual run whose idle per-order state pages out to disk is the same run as one that keeps
everything in memory: KPIs, orders, events and calls identical, byte for byte."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mocks.core.base import Request
from sim.kpis import strip_wall
from sim.scenario import load_scenario
from sim.virtual import run_virtual

ROOT = Path(__file__).resolve().parents[1] / "scenarios"

CASES = [
    ("quarter_end_surge.yaml", "resilient", ["demand.orders=300"]),
    ("quarter_end_surge.yaml", "naive", ["demand.orders=300"]),
    ("resilience/crm_duplicate_webhooks.yaml", "resilient", []),
    ("resilience/erp_outage.yaml", "resilient", []),
]


@pytest.mark.parametrize(("name", "profile", "sets"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_paging_out_idle_state_changes_nothing(name: str, profile: str, sets: list[str]) -> None:
    sc = load_scenario(ROOT / name, sets)
    warm = run_virtual(sc, profile=profile, seed=11, isolate=False, cold=False, report=False)
    cold = run_virtual(sc, profile=profile, seed=11, isolate=False, cold=True, report=False)
    assert warm.paged == {}
    spilled = sum(s["spilled"] for s in cold.paged.values())
    loaded = sum(s["loaded"] for s in cold.paged.values())
    assert spilled > 0, cold.paged  # the cold path was exercised ...
    assert loaded > 0, cold.paged  # ... and read back from
    assert strip_wall(cold.kpis) == strip_wall(warm.kpis)
    for frame in ("orders", "events", "calls", "exceptions"):
        pd.testing.assert_frame_equal(getattr(cold, frame), getattr(warm, frame), check_exact=True)
    assert cold.dlq == warm.dlq


# -- heavy paging: every document served the same --------------------------------------------


def _documents(world: Any) -> dict[str, Any]:
    """Every API answer about every document the four cores hold, through ``handle`` as a caller
    would get it: reading a paged-out document loads it, so this compares what came back."""
    crm, erp, wms, car = (world.cores[s] for s in ("crm", "erp", "wms", "carrier"))
    tok = erp.handle(
        Request("token", {"grant_type": "client_credentials", "client_id": "t", "client_secret": erp.client_secret})
    )
    auth = {"authorization": f"Bearer {tok.body['access_token']}"}
    out: dict[str, Any] = {}

    def get(core: Any, op: str, headers: dict[str, str] | None = None, **params: str) -> None:
        r = core.handle(Request(op, None, params, headers or {}))
        out[f"{core.system}:{op}:{sorted(params.items())}"] = (r.status, r.body)

    for oid in list(crm.orders):
        get(crm, "get_order", Id=oid)
        get(crm, "get_order_history", Id=oid)
    for no in list(erp.orders):
        get(erp, "get_sales_order", auth, SalesOrderNo=no)
        get(erp, "find_sales_orders", auth, ExtRef=erp.orders[no].ext_ref)
    for fid in list(wms.fulfilments):
        get(wms, "get_fulfillment", fulfillment_id=fid)
        get(wms, "find_fulfillments", client_reference=wms.fulfilments[fid].client_reference)
    for tn in list(car.shipments):
        get(car, "get_tracking", trackingNumber=tn)
    out["erp:stock"] = (dict(erp.on_hand), dict(erp.reserved), dict(erp.backorder_qty), dict(erp.exposure))
    return out


def test_paging_out_between_every_few_events_serves_every_document_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 17 small runs page out little; here idle documents page out every few SimPy events (not
    only between steps), on a run of a few thousand orders, and at the end every document of the
    four cores is read through their API and compared with a run that kept everything."""
    import sim.virtual as v

    every = 20  # SimPy events between spills
    build, counters = v.build, v._counters
    seen: dict[bool, dict[str, Any]] = {}

    def build_spilling(scenario: Any, cold: bool = False, cold_dir: str | None = None) -> Any:
        world = build(scenario, cold=cold, cold_dir=cold_dir)
        if world.cold is not None:
            env, spill, step = world.env, world.cold.spill, world.env.step
            n = itertools.count()

            def step_and_spill() -> None:
                step()
                if next(n) % every == 0:
                    spill()

            env.step = step_and_spill  # type: ignore[method-assign]
        return world

    def counters_and_documents(world: Any) -> dict[str, Any]:
        seen[world.cold is not None] = _documents(world)
        return counters(world)  # type: ignore[no-any-return]

    monkeypatch.setattr(v, "build", build_spilling)
    monkeypatch.setattr(v, "_counters", counters_and_documents)
    sc = load_scenario(ROOT / "quarter_end_surge.yaml", ["demand.orders=1200"])
    warm = run_virtual(sc, profile="resilient", seed=5, isolate=False, cold=False, report=False)
    cold = run_virtual(sc, profile="resilient", seed=5, isolate=False, cold=True, report=False)
    paged = cold.paged
    assert set(paged) >= {"crm_orders", "erp_orders", "wms_fulfilments", "carrier_shipments"}
    for name in ("crm_orders", "erp_orders", "wms_fulfilments", "carrier_shipments"):
        # every document paged out at least once and most read back (a few thousand orders)
        assert paged[name]["spilled"] > warm.kpis["orders_submitted"] * 0.8, paged
        assert paged[name]["loaded"] > warm.kpis["orders_submitted"] * 0.3, paged
    assert seen[True].keys() == seen[False].keys() and len(seen[True]) > 5 * warm.kpis["orders_submitted"]
    diff = [k for k in seen[False] if seen[True][k] != seen[False][k]]
    assert not diff, (len(diff), diff[:5])
    assert strip_wall(cold.kpis) == strip_wall(warm.kpis)
    for frame in ("orders", "events", "calls", "exceptions"):
        pd.testing.assert_frame_equal(getattr(cold, frame), getattr(warm, frame), check_exact=True)


@pytest.mark.parametrize(("orders", "expected"), [(99_999, False), (100_000, True), (400_000, True)])
def test_large_runs_page_out_by_default(orders: int, expected: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cold=None`` (``twin run --memory auto``) is cold from ``COLD_FROM_ORDERS``; an explicit
    choice always wins. Stopped before it simulates: only the choice is under test."""
    import sim.virtual as virtual

    chosen: list[bool] = []

    class Chosen(Exception):
        pass

    def simulate(*args: Any, cold: bool = False, **kwargs: Any) -> Any:
        chosen.append(cold)
        raise Chosen

    monkeypatch.setattr(virtual, "simulate", simulate)
    sc = load_scenario(ROOT / "quarter_end_surge.yaml", [f"demand.orders={orders}"])
    for cold in (None, True, False):
        with pytest.raises(Chosen):
            virtual.run_virtual(sc, seed=1, isolate=False, report=False, cold=cold)
    assert chosen == [expected, True, False]
