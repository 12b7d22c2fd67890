"""The load shape: the scenario's demand curve compressed into a load test (``loadtest/shape.py``)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # ``loadtest`` is not installed

from loadtest.shape import (  # noqa: E402
    Schedule,
    Step,
    compress,
    cycle_profile,
    demand_curve,
    schedule_for,
)
from sim.scenario import Scenario  # noqa: E402

WEEK = 7 * 86400.0


@pytest.fixture(scope="module")
def surge() -> Scenario:
    return Scenario.model_validate({"name": "surge", "demand": {"surge": {"weeks": 2, "peak_multiplier": 4}}})


@pytest.fixture(scope="module")
def curve(surge: Scenario):  # type: ignore[no-untyped-def]
    c, source = demand_curve(surge)
    return c


class _Ramp:
    """rate(t) = t on [0, h): a curve with an exact integral."""

    def __init__(self, h: float) -> None:
        self.h = h

    def rate(self, t: float) -> float:
        return t if 0 <= t < self.h else 0.0

    def expected_count(self, t0: float, t1: float) -> float:
        a, b = max(0.0, t0), min(self.h, t1)
        return max(0.0, (b * b - a * a) / 2)


def _norm(x: list[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(x, float)
    return a / a.sum()


def test_compress_keeps_each_segments_share_of_the_volume() -> None:
    ramp = _Ramp(1000.0)
    sch = compress(ramp, 1000.0, duration_s=20, peak_rps=8)
    assert len(sch.steps) == 20
    want = _norm([ramp.expected_count(k * 50, (k + 1) * 50) for k in range(20)])
    got = _norm([s.rate * s.duration_s for s in sch.steps])
    assert np.allclose(got, want, rtol=1e-9)
    assert sch.peak_rps == pytest.approx(8)
    assert sch.steps[-1].rate == pytest.approx(8)  # the ramp peaks at its end


def test_total_offered_is_duration_times_mean_rate(surge: Scenario) -> None:
    sch = schedule_for(surge, duration_s=30, peak_rps=10)
    assert sch.duration_s == pytest.approx(30)
    assert sch.total_offered == pytest.approx(30 * sch.mean_rps)
    assert sch.total_offered == pytest.approx(sum(s.rate for s in sch.steps) * 1.0)  # 1 s steps
    assert sch.offered(0, 30) == pytest.approx(sch.total_offered)
    assert sch.offered(0, 15) + sch.offered(15, 30) == pytest.approx(sch.total_offered)


def test_daily_steps_match_the_demand_curve_exactly(surge: Scenario, curve) -> None:  # type: ignore[no-untyped-def]
    # 91 steps of one simulated day each: whole days hold whole intraday cycles, nothing to divide out.
    sch = schedule_for(surge, duration_s=91, peak_rps=10)
    want = _norm([curve.expected_count(d * 86400, (d + 1) * 86400) for d in range(91)])
    got = _norm([s.rate for s in sch.steps])
    assert np.allclose(got, want, rtol=1e-9, atol=1e-12)


def test_coarse_steps_follow_the_curve_in_blocks(surge: Scenario, curve) -> None:  # type: ignore[no-untyped-def]
    # 30 steps of 3.03 days: the weekly cycle is divided out, so compare volumes over 6-step blocks.
    sch = schedule_for(surge, duration_s=30, peak_rps=10)
    h = surge.horizon
    blocks = [(6 * i, 6 * i + 6) for i in range(5)]
    got = _norm([sch.offered(a, b) for a, b in blocks])
    want = _norm([curve.expected_count(h * a / 30, h * b / 30) for a, b in blocks])
    assert np.max(np.abs(got / want - 1)) < 0.15
    # the surge window's share of the volume survives the compression
    s0 = h - 2 * WEEK
    first = math.ceil(s0 / (h / 30))
    got_share = sch.offered(first, 30) / sch.total_offered
    want_share = curve.expected_count(first * h / 30, h) / curve.expected_count(0, h)
    assert got_share == pytest.approx(want_share, rel=0.1)


def test_hockey_stick_peaks_in_the_surge_at_the_end(surge: Scenario) -> None:
    sch = schedule_for(surge, duration_s=30, peak_rps=10)
    rates = [s.rate for s in sch.steps]
    peak = int(np.argmax(rates))
    surge_steps = 30 * 2 * WEEK / surge.horizon  # the last ~4.6 steps
    assert peak >= 30 - math.ceil(surge_steps)
    assert rates[peak] == pytest.approx(10)
    assert np.mean(rates[-4:]) > 3 * np.mean(rates[:-5])  # a ramp into a spike, not a bump


def test_dividing_out_the_week_removes_the_zigzag(surge: Scenario) -> None:
    raw = schedule_for(surge, duration_s=30, peak_rps=10, deseasonalise=False)
    smooth = schedule_for(surge, duration_s=30, peak_rps=10)

    def wiggle(s: Schedule) -> float:
        r = np.array([x.rate for x in s.steps[:24]])  # before the surge
        return float(np.abs(np.diff(r)).sum() / r.mean())

    assert wiggle(smooth) < 0.6 * wiggle(raw)
    assert cycle_profile(surge, 3 * 86400) is not None
    assert cycle_profile(surge, 3600) is None  # hourly steps show the intraday curve as it is


def test_poisson_demand_is_a_flat_load() -> None:
    poisson = Scenario.model_validate({"name": "p", "demand": {"process": "poisson"}})
    flat = schedule_for(poisson, 10, 3)
    assert [s.rate for s in flat.steps] == pytest.approx([3.0] * 10)


def test_users_carry_the_rate_with_latency_headroom(surge: Scenario) -> None:
    sch = schedule_for(surge, duration_s=30, peak_rps=10, budget_s=2.0)
    for s in sch.steps:
        users = sch.users_for(s.rate)
        assert users >= s.rate * 2.0 - 1e-9
        interval = sch.interval_at(s.start_s + 0.5)
        assert interval is not None and interval >= 2.0 - 1e-9  # an iteration may take 2 s unthrottled
        assert users / interval == pytest.approx(s.rate)  # and together they offer exactly the rate
    stages = sch.stages()
    assert stages[-1].end_s == pytest.approx(30)
    assert max(g.users for g in stages) == 20
    assert all(b.end_s > a.end_s for a, b in zip(stages, stages[1:], strict=False))
    by_users = schedule_for(surge, duration_s=30, peak_rps=10, users=50)
    assert max(g.users for g in by_users.stages()) == 50
    assert by_users.budget_s == pytest.approx(5.0)


def test_schedule_lookups_and_errors() -> None:
    sch = Schedule(steps=(Step(0, 2, 1.0), Step(2, 2, 0.0), Step(4, 2, 4.0)))
    assert sch.rate_at(1.9) == 1.0 and sch.rate_at(2.0) == 0.0 and sch.rate_at(5) == 4.0
    assert sch.rate_at(6.0) == 0.0 and sch.step_at(-1) is None
    assert sch.interval_at(3) is None  # nothing to offer: users idle until the next step
    assert sch.users_at(3) == 1
    with pytest.raises(ValueError, match="duration"):
        compress(_Ramp(10), 10, 0, 1)
    with pytest.raises(ValueError, match="peak"):
        compress(_Ramp(10), 10, 5, 0)
    d = sch.to_dict()
    assert d["total_offered"] == pytest.approx(10.0) and len(d["steps"]) == 3
