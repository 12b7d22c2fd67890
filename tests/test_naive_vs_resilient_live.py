"""Naive vs resilient through real processes under the same ERP trouble.

5 % of ERP requests answer 503 for the whole run, and a 10-simulated-minute ERP outage (3 wall
seconds at a compression of 200) hits in the middle of the order stream. The ledgers, reconciled
with ``sim.reconcile``, must show the naive integration losing orders and the resilient one
getting every order into ERP exactly once, with nothing lost or duplicated.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from test_integration_live import SYSTEMS, LiveTwin, OrderFeed, creates, stream_orders, write_scenario

pytestmark = [pytest.mark.live, pytest.mark.timeout(150)]

COMPRESSION = 200.0  # simulated seconds per wall second: the 600 s outage lasts 3 wall seconds
OUTAGE_S = 600
ORDERS = 90
RATE = 15.0  # orders per second: a 6 s stream, the outage from its 1.5th to its 4.5th second
OUTAGE_AT = 1.5
WORLD: dict[str, Any] = {
    "live": {"compression": COMPRESSION, "max_clock_lag_s": 2.0},
    "systems": {"erp": {"error_rate": 0.05, "error_status": [503]}},
}
# Live policy time is wall time: a breaker resting 30 s (the default) would outlast the test.
RESILIENT_POLICIES = {"systems": {"erp": {"breaker": {"reset_timeout": 1.0}}}}


def _outage(twin: LiveTwin) -> None:
    window = {"name": "erp-outage", "kind": "outage", "status": 503, "start": 0, "duration": OUTAGE_S}
    r = httpx.put(
        f"{twin.urls['erp']}/_twin/faults", params={"relative": "true"}, json=window, headers=twin.admin, timeout=5
    )
    assert r.status_code == 200 and r.json()["active"], r.text


def _run(tmp: Path, profile: str) -> dict[str, Any]:
    from sim.reconcile import demand_log, entries_frame, exceptions_frame, outcome_counts, reconcile

    tmp.mkdir()
    world = write_scenario(tmp / "world.yaml", **WORLD)
    integ = world if profile == "naive" else write_scenario(tmp / "integ.yaml", **WORLD, integration=RESILIENT_POLICIES)
    twin = LiveTwin(tmp, world, profile=profile, integration_scenario=integ, delay_scale=0.01)
    try:
        twin.start_mocks()
        twin.start_integration()
        acked = asyncio.run(
            stream_orders(twin.urls["crm"], OrderFeed(world), ORDERS, RATE, at={OUTAGE_AT: lambda: _outage(twin)})
        )
        # Naive never gets some orders into ERP: wait for the integration to go idle instead.
        t0 = time.monotonic()
        twin.drain(set(acked), timeout_s=45 if profile == "resilient" else 6)
        twin.quiesce()
        ledgers = twin.ledgers()
        exceptions = twin.exceptions()
        drain_s = time.monotonic() - t0
    finally:
        twin.close()
    flat = [e for s in SYSTEMS for e in ledgers[s]]
    entries = entries_frame(flat)
    orders = reconcile(entries, demand_log(entries), exceptions_frame(exceptions))
    return {
        "acked": acked,
        "creates": creates(ledgers),
        "orders": orders,
        "counts": outcome_counts(orders),
        "exceptions": exceptions,
        "drain_s": drain_s,
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("nvr")
    return {p: _run(base / p, p) for p in ("naive", "resilient")}


def test_both_profiles_saw_the_same_demand(runs: dict[str, dict[str, Any]]) -> None:
    for r in runs.values():
        assert len(r["acked"]) == ORDERS
        assert len(r["orders"]) == ORDERS  # the CRM ledger's demand is exactly what was acknowledged
        assert set(r["orders"]["crm_id"]) == set(r["acked"])


def test_naive_loses_orders(runs: dict[str, dict[str, Any]]) -> None:
    r = runs["naive"]
    c = r["counts"]
    assert c["lost"] + c["duplicate"] > 0, c
    missing = set(r["acked"]) - set(r["creates"]["erp"])
    assert len(missing) >= 5, f"only {len(missing)} orders never reached ERP"  # the outage alone costs more
    assert not [e for e in r["exceptions"] if e["category"] == "technical"]  # no DLQ: nobody is told


def test_resilient_loses_and_duplicates_nothing(runs: dict[str, dict[str, Any]]) -> None:
    r = runs["resilient"]
    c = r["counts"]
    assert c["lost"] == 0 and c["duplicate"] == 0 and c["mismatched"] == 0, c
    assert c["dead_lettered_technical"] == 0, r["exceptions"]
    assert set(r["creates"]["erp"]) == set(r["acked"])  # every order in ERP...
    assert max(r["creates"]["erp"].values()) == 1  # ...exactly once
    for system in ("wms", "carrier"):
        assert not r["creates"][system] or max(r["creates"][system].values()) == 1
    orders: pd.DataFrame = r["orders"]
    assert orders["t_erp_accepted"].notna().all()
