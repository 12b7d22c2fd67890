"""Live end to end: the four mocks and the reference integration as processes on loopback, a short
scenario driven over real sockets, KPIs checked against the ledgers themselves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from sim import live
from sim.procs import TWIN, processes_mentioning
from sim.scenario import Scenario, load_scenario

FIXTURE = Path(__file__).parent / "fixtures" / "live_small.yaml"


def _ours(folder: Path) -> list[str]:
    """Processes whose command line mentions this run folder (its scenario file, its db)."""
    return processes_mentioning(str(folder))


@pytest.mark.live
@pytest.mark.slow
def test_live_run_reconciles_against_the_ledgers(tmp_path: Path) -> None:
    sc = load_scenario(FIXTURE)
    out = tmp_path / "run"
    r = live.run_live(sc, profile="resilient", out=out)

    orders, _ = live.demand(sc)
    events = pd.read_parquet(out / "events.parquet")
    kinds = events.groupby(["system", "kind"]).size()
    submitted = events[(events.system == "crm") & (events.kind == "order.submitted")]
    assert r.kpis["orders_submitted"] == len(submitted) == len(orders) > 30
    assert set(submitted.ref if "ref" in submitted else submitted.entity) >= set(r.orders.crm_id)
    # Resilient through an ERP error window: nothing lost, nothing twice, all accepted by the ERP.
    assert r.kpis["lost"] == r.kpis["duplicates"] == r.kpis["mismatches"] == 0
    erp_created = events[(events.system == "erp") & (events.kind == "sales_order.created")]
    assert erp_created.ref.nunique() == len(erp_created) == len(orders)
    assert r.kpis["completed"] == kinds[("carrier", "shipment.delivered")] == len(orders)
    assert r.kpis["retries"] > 0  # the 503 window was met with retries, not fallout

    meta = json.loads((out / "meta.json").read_text())
    kpis = json.loads((out / "kpis.json").read_text())
    assert meta["mode"] == "live" and meta["drained_quiet"] is True
    assert meta["compression"] == 7200 and set(meta["clocks"]) == set(live.SYSTEMS)
    assert kpis["clock_lag_exceeded"] is (kpis["max_clock_lag_s"] > sc.live.max_clock_lag_s)
    # Every mock's clock ran on the same epoch: their simulated "now" agree within a wall second.
    nows = [c["now"] for c in meta["clocks"].values()]
    assert max(nows) - min(nows) < sc.live.compression
    # The reference integration's call log is the run's calls.parquet, on the run's simulated clock.
    calls = pd.read_parquet(out / "calls.parquet")
    creates = calls[(calls.system == "erp") & (calls.operation == "create_sales_order") & (calls.outcome == "ok")]
    assert creates.correlation_id.nunique() == len(orders) <= len(creates)
    assert calls.t_start.between(0, kpis["sim_s"]).all() and (calls.t_end >= calls.t_start).all()
    assert int((calls.attempt > 1).sum()) == kpis["retries"] and (calls.outcome == "server_error").any()
    # Milestones in model time: ERP acceptance is seconds of HTTP, not compression x seconds.
    assert 0 < kpis["latency_s"]["erp_accepted"]["p50"] < 2.0
    assert kpis["latency_s"]["delivered"]["p50"] > 3600  # transit: hours on the scenario's clock
    assert {f"lat_{m}" for m in ("erp_accepted", "delivered")} <= set(pd.read_parquet(out / "orders.parquet").columns)
    assert (out / "report.html").exists() and (out / "live" / "logs" / "integration.log").exists()
    assert kpis["wall_s"] < 60
    assert _ours(out) == []  # no process left behind


@pytest.mark.live
@pytest.mark.slow
def test_kill_integration_window_sigkills_and_restarts_the_reference_integration(tmp_path: Path) -> None:
    data = load_scenario(FIXTURE).model_dump(mode="json")
    data["faults"] = [{"name": "crash", "kind": "kill_integration", "start": "11h", "duration": "30m"}]
    # A restart takes wall seconds = simulated hours at 7200x: give webhook redelivery the budget.
    data["webhooks"]["max_attempts"] = 12
    sc = Scenario.model_validate(data)
    out = tmp_path / "run"
    r = live.run_live(sc, profile="resilient", out=out)
    assert r.meta["integration_restarts"] == 1 and r.kpis["integration_restarts"] == 1
    # Durable inbox + webhook redelivery: the crash costs time, not orders.
    assert r.kpis["orders_submitted"] == len(live.demand(sc)[0])
    assert r.kpis["lost"] == r.kpis["duplicates"] == 0
    assert _ours(out) == []


@pytest.mark.live
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_live_run_leaves_no_process_behind(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "run"
    cmd = [*TWIN, "run", str(FIXTURE), "--mode", "live", "--out", str(out), "-q"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_ours(out)) < 5:  # 4 mocks + the integration up
            time.sleep(0.2)
        assert len(_ours(out)) >= 5, p.communicate(timeout=30)[0].decode() if p.poll() is not None else "still starting"
        time.sleep(2.0)
        p.send_signal(sig)
        output, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, output.decode()
    assert b"Traceback" not in output and b"interrupted" in output
    time.sleep(0.5)
    assert _ours(out) == []
