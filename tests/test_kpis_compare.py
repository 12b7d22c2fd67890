"""Run comparison and replication statistics (sim.compare)."""

from __future__ import annotations

import pytest

from sim.compare import compare_kpis, replication_seeds, summarize, t95, value


def _k(lost: float, p95: float, rec: float | None = 10.0) -> dict:
    return {
        "lost": lost,
        "latency_s": {"erp_accepted": {"p95": p95}},
        "fault_windows": [{"name": "w", "recovery_s": rec, "max_backlog": 3}],
    }


def test_summary_mean_and_t_interval():
    runs = [_k(1, 2.0), _k(2, 2.0), _k(3, 2.0)]
    s = {x.name: x for x in summarize(runs)}
    lost = s["lost"]
    assert lost.mean == 2 and lost.n == 3
    assert lost.half_width == pytest.approx(4.303 * 1.0 / 3**0.5)
    assert s["latency_s.erp_accepted.p95"].half_width == 0
    assert s["fault_windows.w.recovery_s"].mean == 10
    assert s["otif"].n == 0 and s["otif"].mean is None
    assert t95(100) == 1.96


def test_summary_skips_never_recovered():
    s = {x.name: x for x in summarize([_k(0, 1, None), _k(0, 1, 20.0)])}
    assert s["fault_windows.w.recovery_s"].n == 1 and s["fault_windows.w.recovery_s"].half_width is None


def test_compare_deltas():
    d = {x.name: x for x in compare_kpis(_k(4, 2.0), _k(1, 3.0, None))}
    assert (d["lost"].a, d["lost"].b, d["lost"].delta, d["lost"].rel) == (4, 1, -3, -0.75)
    assert d["latency_s.erp_accepted.p95"].rel == pytest.approx(0.5)
    assert d["fault_windows.w.recovery_s"].delta is None
    assert value(_k(0, 1), "fault_windows.nope.recovery_s") is None


def test_replication_seeds_independent_and_stable():
    a = replication_seeds(42, 5)
    assert a == replication_seeds(42, 5) and len(set(a)) == 5
    assert replication_seeds(43, 1)[0] not in a
