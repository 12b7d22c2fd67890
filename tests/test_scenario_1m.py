"""scenarios/quarter_end_1m.yaml: the quarter-end surge at 1M orders, its world scaled with demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1] / "scenarios"


def test_1m_scenario_validates_and_keeps_the_standard_world_per_order() -> None:
    big = load_scenario(ROOT / "quarter_end_1m.yaml")
    std = load_scenario(ROOT / "quarter_end_surge.yaml")
    s = big.demand.surge
    assert big.demand.orders * ((1 - s.share) + s.share * s.peak_multiplier) == pytest.approx(1_000_000)
    k = big.demand.orders / std.demand.orders
    # Capacity and population per order as in the standard scenario (within rounding to whole people).
    assert [sh.pickers / k for sh in big.warehouse.shifts] == pytest.approx(
        [sh.pickers for sh in std.warehouse.shifts], rel=0.01
    )
    assert big.masterdata.customers / k == pytest.approx(std.masterdata.customers, rel=0.01)
    assert big.masterdata.sales_reps / k == pytest.approx(std.masterdata.sales_reps, rel=0.01)
    # Everything else (faults, SLOs, horizon, demand shape) is the standard quarter-end's.
    assert (big.faults, big.slo, big.horizon, big.demand.surge) == (std.faults, std.slo, std.horizon, std.demand.surge)
