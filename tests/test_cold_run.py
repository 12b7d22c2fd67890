"""A virtual run whose idle per-order state pages out to disk is the same run as one that keeps
everything in memory: KPIs, orders, events and calls identical, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

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
