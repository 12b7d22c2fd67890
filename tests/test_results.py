"""sim.results: loading run folders into DataFrames, and the analysis cuts (exact numbers on
hand-made orders; shape and consistency on a real, freshly written run)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.reconcile import FALLOUT
from sim.results import (
    backlog,
    fallout_by_category,
    fallout_by_fault_window,
    find_runs,
    flatten_kpis,
    latency_by_milestone_over_time,
    load_results,
    load_runs,
    order_drilldown,
    run_ids,
    shade_fault_windows,
    throughput,
)
from sim.scenario import load_scenario

DEMO = Path(__file__).resolve().parent.parent / "scenarios" / "demo.yaml"
SMALL = ["horizon=1d", "drain_limit=2d", "demand.orders=30"]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real runs (same seed, both profiles) written the way `twin run` writes them."""
    from sim.virtual import run_virtual

    root = tmp_path_factory.mktemp("runs")
    sc = load_scenario(DEMO, SMALL)
    for profile in ("naive", "resilient"):
        run_virtual(sc, profile=profile, out=root / "batch" / f"small-{profile}", report=False)
    return root


# --------------------------------------------------------------------------------------- loading


def test_flatten_kpis_dotted_names_fault_windows_and_none() -> None:
    kpis = {
        "orders_submitted": 10,
        "fallout_rate": 0.1,
        "latency_s": {"erp_accepted": {"p95": 2.5, "n": 9}, "delivered": {"p95": None}},
        "fault_windows": [
            {"name": "erp-down", "kind": "outage", "start_s": 0, "end_s": 60, "recovery_s": None, "max_backlog": 4}
        ],
        "outcomes": {"completed": 9, "lost": 1},
        "label": "text is not a measure",
        "flag": True,
    }
    flat = flatten_kpis(kpis)
    assert flat["orders_submitted"] == 10.0 and flat["latency_s.erp_accepted.p95"] == 2.5
    assert math.isnan(flat["latency_s.delivered.p95"])
    assert math.isnan(flat["fault_windows.erp-down.recovery_s"]) and flat["fault_windows.erp-down.max_backlog"] == 4
    assert flat["outcomes.lost"] == 1.0 and flat["flag"] == 1.0
    assert "label" not in flat and not any(k.startswith("fault_windows.erp-down.start") for k in flat)


def test_load_one_run_folder(runs_dir: Path) -> None:
    folder = runs_dir / "batch" / "small-naive"
    res = load_results(folder)
    assert list(res.runs["run"]) == ["small-naive"]
    row = res.runs.iloc[0]
    assert (row["scenario"], row["profile"], row["mode"]) == ("demo", "naive", "virtual")
    run = res.run()
    assert row["orders_submitted"] == run.kpis["orders_submitted"] == len(res.orders)
    assert row["latency_s.erp_accepted.p95"] == pytest.approx(run.kpis["latency_s"]["erp_accepted"]["p95"])
    for name in ("orders", "events", "calls"):
        df = getattr(res, name)
        assert df.columns[0] == "run" and (df["run"] == "small-naive").all()
        assert len(df) == len(getattr(run, name))
    assert res.runs.drop(columns=["run", "path", "scenario", "profile", "seed", "mode"]).dtypes.eq("float64").all()
    assert [w.name for w in res.fault_windows()] == [w["name"] for w in run.kpis["fault_windows"]]


def test_load_many_by_folder_glob_and_list(runs_dir: Path) -> None:
    by_folder = load_results(runs_dir)
    assert sorted(by_folder.runs["run"]) == ["small-naive", "small-resilient"]
    assert set(by_folder.orders["run"]) == {"small-naive", "small-resilient"}
    by_glob = find_runs(str(runs_dir / "batch" / "small-*"))
    by_list = find_runs([runs_dir / "batch" / "small-naive", runs_dir / "batch" / "small-resilient"])
    assert by_glob == by_list == find_runs(runs_dir)
    assert find_runs([runs_dir, runs_dir / "batch" / "small-naive"]) == by_list  # no duplicates
    only = load_results(runs_dir, tables=("orders",))
    assert len(only.orders) == len(by_folder.orders) and only.events.empty and only.calls.empty
    fast = load_runs(runs_dir)
    pd.testing.assert_frame_equal(fast, by_folder.runs)
    with pytest.raises(ValueError, match="name one of"):
        by_folder.run()


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        load_results(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no run folders found"):
        load_results(tmp_path)
    with pytest.raises(ValueError, match="unknown table"):
        load_results(tmp_path, tables=("nope",))


def test_run_ids_unique_when_names_repeat(runs_dir: Path, tmp_path: Path) -> None:
    a = tmp_path / "sweep-a" / "rep-000"
    b = tmp_path / "sweep-b" / "rep-000"
    for p in (a, b):
        shutil.copytree(runs_dir / "batch" / "small-naive", p)
    assert run_ids([a, b]) == ["sweep-a/rep-000", "sweep-b/rep-000"]
    assert sorted(load_runs(tmp_path)["run"]) == ["sweep-a/rep-000", "sweep-b/rep-000"]


# --------------------------------------------------------------------------------------- cuts


def _orders() -> pd.DataFrame:
    """Six orders: submitted at 0, 1000, 4000, 4500, 8000 and 9000 s."""
    nan = np.nan
    return pd.DataFrame(
        {
            "crm_id": [f"o{i}" for i in range(6)],
            "t_submitted": [0.0, 1000.0, 4000.0, 4500.0, 8000.0, 9000.0],
            "t_erp_accepted": [1.0, 1010.0, 4100.0, nan, 8002.0, 9004.0],
            "t_ready_to_ship": [600.0, 2000.0, 5000.0, nan, nan, 9600.0],
            "t_delivered": [nan] * 6,
            "t_crm_closed": [nan] * 6,
            "t_settled": [600.0, 2000.0, 5000.0, nan, 8002.0, 9600.0],
            "outcome": ["completed", "duplicate", "completed", "lost", "credit_hold", "stuck"],
        }
    )


def test_fallout_by_category_counts_every_category() -> None:
    fb = fallout_by_category(_orders())
    assert list(fb.index) == ["all"]
    row = fb.loc["all"]
    assert (row["duplicate"], row["lost"], row["stuck"], row["mismatched"]) == (1, 1, 1, 0)
    assert row["fallout"] == 3 and row["submitted"] == 6 and row["fallout_rate"] == pytest.approx(0.5)
    assert list(fb.columns[: len(FALLOUT)]) == list(FALLOUT)
    two = pd.concat([_orders().assign(run="a"), _orders().assign(run="b").iloc[:3]])
    fb2 = fallout_by_category(two)
    assert list(fb2.index) == ["a", "b"] and fb2.loc["b", "fallout"] == 1 and fb2.loc["b", "submitted"] == 3


def test_fallout_by_fault_window_half_open_and_outside() -> None:
    windows = [{"name": "w", "start_s": 1000.0, "end_s": 4500.0}]  # holds o1, o2 (not o3 at the end)
    fw = fallout_by_fault_window(_orders(), windows)
    assert list(fw.index) == ["w", "(outside faults)"]
    assert fw.loc["w", "submitted"] == 2 and fw.loc["w", "fallout"] == 1 and fw.loc["w", "fallout_rate"] == 0.5
    assert fw.loc["w", "erp_accepted_p95_s"] == pytest.approx(np.percentile([10.0, 100.0], 95))
    out = fw.loc["(outside faults)"]
    assert out["submitted"] == 4 and out["fallout"] == 2
    assert fw.loc["w", "start_h"] == pytest.approx(1000 / 3600)
    # the same windows given as kpis
    pd.testing.assert_frame_equal(fallout_by_fault_window(_orders(), {"fault_windows": windows}), fw)
    with pytest.raises(ValueError, match="unknown milestone"):
        fallout_by_fault_window(_orders(), windows, milestone="nope")


def test_latency_by_milestone_over_time_bins_by_submit_time() -> None:
    lat = latency_by_milestone_over_time(_orders(), freq="1h", q=1.0)
    assert list(lat.index) == [0.0, 1.0, 2.0]  # 0-1 h: o0, o1; 1-2 h: o2, o3; 2-3 h: o4, o5
    assert lat.loc[0.0, "erp_accepted"] == 10.0 and lat.loc[0.0, "ready_to_ship"] == 1000.0
    assert lat.loc[1.0, "erp_accepted"] == 100.0  # o3 never reached ERP: not in the quantile
    assert lat.loc[2.0, "ready_to_ship"] == 600.0 and lat["orders"].tolist() == [2, 2, 2]
    assert math.isnan(lat.loc[0.0, "delivered"])
    with pytest.raises(ValueError, match="not a duration"):
        latency_by_milestone_over_time(_orders(), freq="soon")


def test_throughput_counts_each_milestone_at_its_own_time() -> None:
    tp = throughput(_orders(), 3600)
    assert tp["submitted"].tolist() == [2, 2, 2]
    assert tp["ready_to_ship"].tolist() == [2, 1, 1]
    assert tp["delivered"].sum() == 0


def test_backlog_counts_submitted_not_settled() -> None:
    bl = backlog(_orders(), step=500)
    at = bl["backlog"]
    assert at.loc[0.0] == 1  # o0 in flight
    assert at.loc[1500 / 3600] == 1  # o1 in flight, o0 settled at 600
    assert at.loc[4500 / 3600] == 2  # o2 (settles 5000) and o3 (never settles)
    assert at.iloc[-1] == 1  # after the last settle (o5 at 9600) only the lost o3 is left
    assert bl.index.name == "t_h"
    by_run = backlog(pd.concat([_orders().assign(run="a"), _orders().assign(run="b")]), step=500)
    assert list(by_run.columns) == ["a", "b"] and (by_run["a"] == by_run["b"]).all()


def test_cuts_on_a_real_run(runs_dir: Path) -> None:
    res = load_results(runs_dir)
    fb = fallout_by_category(res.orders)
    for rid in fb.index:
        run = res.run(rid)
        assert fb.loc[rid, "fallout_rate"] == pytest.approx(run.kpis["fallout_rate"])
        fw = fallout_by_fault_window(res.orders[res.orders["run"] == rid], run.kpis)
        assert fw["submitted"].sum() >= len(run.orders)  # windows may overlap; outside is the rest
    lat = latency_by_milestone_over_time(res.orders, "6h")
    assert lat.index.names == ["run", "t_h"] and lat["orders"].sum() == len(res.orders)
    bl = backlog(res.orders, "30min")
    assert list(bl.columns) == sorted(res.loaded) and (bl >= 0).all().all()


def test_order_drilldown_every_event_of_one_order_in_time_order(runs_dir: Path) -> None:
    folder = runs_dir / "batch" / "small-resilient"
    res = load_results(folder)
    run = res.run()
    crm_id = run.orders.loc[run.orders["outcome"] == "completed", "crm_id"].iloc[0]
    trail = order_drilldown(run, crm_id)
    assert trail["t"].is_monotonic_increasing
    assert trail["kind"].iloc[0] == "order.submitted" and trail["since_submit_s"].iloc[0] == 0.0
    assert {"sales_order.created", "fulfilment.created", "shipment.created", "shipment.delivered"} <= set(trail["kind"])
    assert ((trail["ref"] == crm_id) | (trail["correlation_id"] == crm_id) | (trail["entity"] == crm_id)).all()
    assert isinstance(trail["data"].iloc[0], dict)
    # The same from a folder path, from Results, and from the events frame.
    pd.testing.assert_frame_equal(order_drilldown(folder, crm_id), trail)
    pd.testing.assert_frame_equal(order_drilldown(res, crm_id), trail)
    with_calls = order_drilldown(run, crm_id, calls=True)
    assert len(with_calls) > len(trail) and with_calls["t"].is_monotonic_increasing
    assert "call:create_sales_order" in set(with_calls["kind"])
    with pytest.raises(KeyError, match="no ledger events"):
        order_drilldown(run, "801-no-such-order")
    many = load_results(runs_dir)
    with pytest.raises(ValueError, match="pass run="):
        order_drilldown(many, crm_id)
    assert len(order_drilldown(many, crm_id, run="small-resilient")) == len(trail)


def test_shade_fault_windows_draws_one_span_per_window() -> None:
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    shade_fault_windows(
        ax,
        {"fault_windows": [{"name": "a", "start_s": 0, "end_s": 3600}, {"name": "b", "start_s": 7200, "end_s": 10800}]},
    )
    assert len(ax.patches) == 2 and [t.get_text() for t in ax.texts] == ["a", "b"]
