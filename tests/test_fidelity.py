"""Twin fidelity: the comparison rules (pure) and `twin fidelity scenarios/fidelity.yaml` live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.fidelity import compare, passed
from sim.scenario import MILESTONES

REPO = Path(__file__).resolve().parent.parent


def kpis(
    lost: int = 0, stuck: int = 0, erp: float = 0.5, rts: float = 40_000.0, dl: float = 90_000.0
) -> dict[str, Any]:
    lat = {
        "erp_accepted": {"p50": erp, "p95": erp * 2},
        "ready_to_ship": {"p50": rts, "p95": rts * 1.5},
        "delivered": {"p50": dl, "p95": dl * 1.4},
    }
    return {"orders_submitted": 100, "lost": lost, "duplicates": 0, "stuck": stuck, "mismatches": 0, "dlq": 0,
            "latency_s": lat}  # fmt: skip


def by_name(rows: list[Any]) -> dict[str, Any]:
    return {r.name: r for r in rows}


def test_identical_runs_agree() -> None:
    rows = compare(kpis(), kpis())
    assert passed(rows) and all(r.ok for r in rows)


def test_fallout_tolerates_two_orders_or_ten_percent() -> None:
    assert passed(compare(kpis(lost=0), kpis(lost=2)))
    assert not passed(compare(kpis(lost=0), kpis(lost=3)))
    assert passed(compare(kpis(stuck=40), kpis(stuck=44)))
    r = by_name(compare(kpis(stuck=40), kpis(stuck=46)))["stuck"]
    assert r.judged and not r.ok and r.rel == pytest.approx(0.15)


def test_latency_within_twenty_percent_or_fifty_milliseconds() -> None:
    assert passed(compare(kpis(rts=40_000), kpis(rts=47_000)))
    rows = by_name(compare(kpis(rts=40_000), kpis(rts=50_000)))
    assert not rows["latency_s.ready_to_ship.p50"].ok
    # Sub-second API milestones: 50 ms of live HTTP and scheduling noise is tolerated, more is not.
    assert passed(compare(kpis(erp=0.1), kpis(erp=0.12)))  # p50 +20 ms, p95 +40 ms
    r = by_name(compare(kpis(erp=0.1), kpis(erp=0.2)))["latency_s.erp_accepted.p50"]
    assert r.judged and not r.ok


def test_every_milestone_is_judged_in_model_time() -> None:
    # A live ERP acceptance reported on the compressed clock (0.5 s x 7200) is a real disagreement now.
    rows = by_name(compare(kpis(erp=0.5), kpis(erp=3600.0)))
    r = rows["latency_s.erp_accepted.p95"]
    assert r.judged and not r.ok
    assert not passed(list(rows.values()))


def test_a_milestone_only_one_run_reached_fails() -> None:
    live = kpis()
    del live["latency_s"]["delivered"]
    r = by_name(compare(kpis(), live))["latency_s.delivered.p50"]
    assert r.judged and not r.ok and r.note == "only one run reached it"


@pytest.mark.live
@pytest.mark.slow
def test_twin_fidelity_passes_for_the_shipped_scenario(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["fidelity", str(REPO / "scenarios" / "fidelity.yaml"), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "virtual and live agree" in res.output
    doc = json.loads((tmp_path / "fidelity.json").read_text())
    assert doc["passed"] is True
    judged = {r["name"] for r in doc["rows"] if r["judged"]}
    assert {"lost", "stuck", "duplicates"} <= judged
    # Every milestone, the sub-second ERP acceptance included, is compared in model time.
    assert {f"latency_s.{m}.{p}" for m in MILESTONES for p in ("p50", "p95")} <= judged
    for sub in ("virtual", "live"):
        assert (tmp_path / sub / "kpis.json").exists()
    live_meta = json.loads((tmp_path / "live" / "meta.json").read_text())
    assert live_meta["mode"] == "live" and live_meta["drained_quiet"] is True
