"""Twin fidelity: the comparison rules (pure) and `twin fidelity scenarios/fidelity.yaml` live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.fidelity import compare, passed

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
    rows = compare(kpis(), kpis(), 3600)
    assert passed(rows) and all(r.ok for r in rows)


def test_fallout_tolerates_two_orders_or_ten_percent() -> None:
    assert passed(compare(kpis(lost=0), kpis(lost=2), 3600))
    assert not passed(compare(kpis(lost=0), kpis(lost=3), 3600))
    assert passed(compare(kpis(stuck=40), kpis(stuck=44), 3600))
    r = by_name(compare(kpis(stuck=40), kpis(stuck=46), 3600))["stuck"]
    assert r.judged and not r.ok and r.rel == pytest.approx(0.15)


def test_latency_within_twenty_percent_or_the_live_resolution() -> None:
    assert passed(compare(kpis(rts=40_000), kpis(rts=47_000), 3600))
    rows = by_name(compare(kpis(rts=40_000), kpis(rts=50_000), 3600))
    assert not rows["latency_s.ready_to_ship.p50"].ok
    # 1 wall second of slack at 3600x: a 3000 s shift of a 10 h milestone is within resolution.
    assert passed(compare(kpis(rts=10_000 * 3.6), kpis(rts=10_000 * 3.6 + 3000), 3600))


def test_milestones_shorter_than_live_resolution_are_shown_not_judged() -> None:
    rows = by_name(compare(kpis(erp=0.5), kpis(erp=4000.0), 3600))
    r = rows["latency_s.erp_accepted.p95"]
    assert not r.judged and r.note == "below live resolution"
    assert passed(list(rows.values()))


@pytest.mark.live
@pytest.mark.slow
def test_twin_fidelity_passes_for_the_shipped_scenario(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["fidelity", str(REPO / "scenarios" / "fidelity.yaml"), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "virtual and live agree" in res.output
    doc = json.loads((tmp_path / "fidelity.json").read_text())
    assert doc["passed"] is True
    judged = [r for r in doc["rows"] if r["judged"]]
    assert {"lost", "stuck", "duplicates"} <= {r["name"] for r in judged}
    assert any(r["name"].startswith("latency_s.") for r in judged)  # at least one milestone compared
    for sub in ("virtual", "live"):
        assert (tmp_path / sub / "kpis.json").exists()
    live_meta = json.loads((tmp_path / "live" / "meta.json").read_text())
    assert live_meta["mode"] == "live" and live_meta["drained_quiet"] is True
