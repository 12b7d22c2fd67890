"""Virtual mode end to end: determinism, run folder, naive vs resilient under ERP faults."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sim.kpis import strip_wall
from sim.scenario import Scenario
from sim.virtual import MissingPiece, _need, run_virtual

SMALL = {
    "name": "small",
    "horizon": "2d",
    "drain_limit": "4d",
    "demand": {"orders": 80},
    "masterdata": {"customers": 40, "skus": 80},
}
FAULTS = [
    {
        "name": "erp-503",
        "system": "erp",
        "kind": "error",
        "probability": 0.3,
        "status": 503,
        "start": "1d",
        "duration": "1d",
    },
    {"name": "erp-outage", "system": "erp", "kind": "outage", "start": 118800, "duration": "1h"},
    {
        "name": "erp-hang",
        "system": "erp",
        "kind": "timeout",
        "endpoint": "create_sales_order",
        "probability": 0.3,
        "start": "1d",
        "duration": "1d",
    },
]


def test_same_seed_same_results(tmp_path):
    sc = Scenario.model_validate({**SMALL, "faults": FAULTS[:1]})
    a = run_virtual(sc, seed=11, out=tmp_path / "a", report=False)
    b = run_virtual(sc, seed=11, out=tmp_path / "b", report=False)
    ka = json.loads((tmp_path / "a" / "kpis.json").read_text())
    kb = json.loads((tmp_path / "b" / "kpis.json").read_text())
    assert strip_wall(ka) == strip_wall(kb)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a" / "orders.parquet"), pd.read_parquet(tmp_path / "b" / "orders.parquet")
    )
    pd.testing.assert_frame_equal(a.events, b.events)
    assert a.kpis["orders_submitted"] > 0 and a.meta["seed"] == 11
    c = run_virtual(sc, seed=12, report=False)
    assert c.orders["t_submitted"].tolist() != a.orders["t_submitted"].tolist()


def test_run_folder_complete(tmp_path):
    r = run_virtual(Scenario.model_validate(SMALL), out=tmp_path / "run")
    for f in (
        "scenario.yaml",
        "meta.json",
        "kpis.json",
        "orders.parquet",
        "events.parquet",
        "calls.parquet",
        "report.html",
        "chart_backlog.png",
    ):
        assert (tmp_path / "run" / f).stat().st_size > 0, f
    assert r.out == tmp_path / "run"
    assert r.kpis["calls"] == len(r.calls) > 0
    assert r.kpis["latency_s"]["erp_accepted"]["n"] > 0


def test_naive_loses_orders_resilient_does_not():
    sc = Scenario.model_validate({**SMALL, "faults": FAULTS})
    naive = run_virtual(sc, profile="naive", report=False).kpis
    resilient = run_virtual(sc, profile="resilient", report=False).kpis
    assert naive["lost"] + naive["duplicates"] > 0
    assert resilient["lost"] == 0 and resilient["duplicates"] == 0
    assert resilient["retries"] > 0 and naive["retries"] == 0


def test_missing_piece_is_a_clear_error():
    with pytest.raises(MissingPiece, match="virtual mode needs no_such.module"):
        _need("no_such.module", "X")
    with pytest.raises(MissingPiece, match="sim.rng.Nope"):
        _need("sim.rng", "Streams,Nope")


def test_duplicate_webhooks_duplicate_naive_orders_only():
    dup = {"name": "crm-dup", "system": "crm", "kind": "webhook_duplicate", "probability": 0.5, "start": 0,
           "duration": "2d"}  # fmt: skip
    sc = Scenario.model_validate({**SMALL, "faults": [dup]})
    naive = run_virtual(sc, profile="naive", report=False).kpis
    resilient = run_virtual(sc, profile="resilient", report=False).kpis
    assert naive["duplicates"] > 0
    assert resilient["duplicates"] == 0 and resilient["webhook_duplicates_acked"] > 0
