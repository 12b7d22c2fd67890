"""Run folder round trip and the report files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mocks.ledger import Ledger
from sim.kpis import compute_kpis
from sim.reconcile import reconcile
from sim.report import overlay_chart
from sim.runfolder import FILES, calls_frame, events_frame, load_run, make_meta, write_run
from sim.scenario import FaultWindow, Scenario

PNG = b"\x89PNG\r\n\x1a\n"


def _ledgers() -> list:
    crm, erp, wms, car = Ledger("crm"), Ledger("erp"), Ledger("wms"), Ledger("carrier")
    for i in range(20):
        cid, t = f"801{i:015d}", i * 600.0
        lines = [["SKU-1", 12], ["SKU-2", 3]]
        crm.append(t, "order.submitted", cid, ref=cid, data={"key": f"D{i}", "lines": lines, "requested_t": t + 1e5})
        if i == 7:
            continue  # lost
        erp.append(t + 2, "sales_order.created", "SO", ref=cid, data={"lines": [[s, q, 1.5] for s, q in lines]})
        wms.append(t + 3, "fulfilment.created", "FO", ref=cid, data={"lines": lines})
        wms.append(t + 900, "fulfilment.ready_to_ship", "FO", ref=cid)
        car.append(t + 950, "shipment.created", "1Z", ref=cid)
        car.append(t + 9e4, "shipment.delivered", "1Z", ref=cid)
        crm.append(t + 9e4 + 1, "order.status_changed", cid, ref=cid, data={"status": "Delivered"})
    return [e for led in (crm, erp, wms, car) for e in led]


@pytest.fixture()
def run_parts():
    sc = Scenario(
        name="rt",
        seed=7,
        horizon=86400,
        faults=[FaultWindow(name="erp-down", system="erp", kind="outage", start=3000, duration=1200)],
    )
    events = events_frame(_ledgers())
    orders = reconcile(events, end=2e5)
    calls = calls_frame(
        [
            {"system": "erp", "operation": "create_sales_order", "attempt": 1, "latency_s": 0.1, "outcome": "ok"},
            {
                "system": "erp",
                "operation": "create_sales_order",
                "attempt": 2,
                "latency_s": 5.0,
                "outcome": "error",
                "headers": {"retry-after": "3"},
            },
        ]
    )
    kpis = compute_kpis(orders, calls=calls, faults=sc.faults, sim_s=2e5, wall_s=0.5)
    return sc, events, orders, calls, kpis


def test_round_trip(tmp_path, run_parts):
    sc, events, orders, calls, kpis = run_parts
    meta = make_meta(sc, mode="virtual", wall_start="2026-01-01T00:00:00+00:00")
    out = write_run(tmp_path / "run", scenario=sc, orders=orders, events=events, calls=calls, kpis=kpis, meta=meta)
    for f in FILES:
        assert (out / f).stat().st_size > 0, f
    run = load_run(out)
    assert run.scenario == sc
    assert run.meta["seed"] == 7 and run.meta["mode"] == "virtual" and "python" in run.meta["versions"]
    assert run.kpis == json.loads(json.dumps(kpis))
    assert run.kpis["lost"] == 1 and run.kpis["orders_submitted"] == 20
    pd.testing.assert_frame_equal(run.orders, orders, check_dtype=False)
    assert len(run.events) == len(events) and run.events["data"].map(type).eq(str).all()
    assert json.loads(run.calls.loc[1, "headers"]) == {"retry-after": "3"}
    # events.parquet is enough to reconcile again: the oracle can be rerun from the folder
    again = reconcile(run.events, end=2e5)
    assert again["outcome"].tolist() == orders["outcome"].tolist()


def test_report_files(tmp_path, run_parts):
    sc, events, orders, calls, kpis = run_parts
    meta = make_meta(sc, mode="virtual")
    out = write_run(
        tmp_path / "r",
        scenario=sc,
        orders=orders,
        events=events,
        calls=calls,
        kpis=kpis,
        meta=meta,
        breaches=["lost: 1 > limit 0"],
    )
    for name in ("orders", "latency", "backlog", "fallout"):
        png = (out / f"chart_{name}.png").read_bytes()
        assert png.startswith(PNG) and len(png) > 1000
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("data:image/png;base64,") == 4
    assert "latency_s.erp_accepted.p95" in page and "lost: 1 &gt; limit 0" in page
    data = overlay_chart([("a", orders, sc.faults, 2e5), ("b", orders.iloc[:5], sc.faults, 2e5)], tmp_path / "c.png")
    assert data.startswith(PNG) and (tmp_path / "c.png").stat().st_size == len(data)


def test_load_run_rejects_non_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        load_run(tmp_path)
