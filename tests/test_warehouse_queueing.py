"""The warehouse floor against queueing theory: M/M/c (Erlang C) and Little's law.

Direct SimPy, no HTTP: constant pickers, exponential pick time, zero pack time, Poisson arrivals.
Each run records per-order waits; batch means give a confidence half-width for the mean wait.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, Sequence

import pytest
import simpy

from sim.distributions import Exponential, Fixed
from sim.rng import Streams
from sim.scenario import Warehouse as WarehouseConfig
from sim.world.queueing import erlang_b, erlang_c, mmc
from sim.world.warehouse import Warehouse

MEAN_PICK = 300.0  # seconds
RHO = 0.7


def _run(c: int, orders: int, seed: int, warmup: int = 2000) -> tuple[Warehouse, float]:
    env = simpy.Environment()
    streams = Streams(seed)
    cfg = WarehouseConfig(pickers=c, pick_time=Exponential(mean=MEAN_PICK), pack_time=Fixed(value=0))
    wh = Warehouse(env, cfg, streams, pickup_days=range(7))
    lam = RHO * c / MEAN_PICK
    rng = streams.py("arrivals")

    def source() -> Iterator[simpy.Event]:
        for i in range(orders + warmup):
            if i == warmup:
                wh.reset_stats()  # drop the empty-and-idle start
            yield env.timeout(rng.expovariate(lam))
            wh.submit(f"O{i}")

    env.process(source())
    env.run()
    return wh, lam


def _batch_half_width(xs: Sequence[float], batches: int = 20) -> float:
    """95 % half-width of the mean from batch means (waits are autocorrelated)."""
    size = len(xs) // batches
    means = [statistics.fmean(xs[k * size : (k + 1) * size]) for k in range(batches)]
    return 2.093 * statistics.stdev(means) / math.sqrt(batches)  # t(0.975, 19)


def test_erlang_formulas_known_values() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    m = mmc(1, 0.5, 1.0)
    assert m.wq == pytest.approx(1.0) and m.l == pytest.approx(1.0)  # rho/(mu-lam), rho/(1-rho)
    with pytest.raises(ValueError):
        erlang_c(2, 2.0)


@pytest.mark.parametrize(("c", "orders"), [(1, 40_000), (2, 30_000), (4, 25_000)])
def test_mmc_matches_erlang_c_and_littles_law(c: int, orders: int) -> None:
    wh, lam = _run(c, orders, seed=7 + c)
    s = wh.stats()
    theory = mmc(c, lam, 1 / MEAN_PICK)

    hw = _batch_half_width(wh.waits)
    # The batch CI, widened for a little non-stationarity, and a sanity bound on the relative error.
    assert abs(s["mean_wait"] - theory.wq) < max(2 * hw, 0.05 * theory.wq), (s["mean_wait"], theory.wq, hw)
    assert s["mean_wait"] == pytest.approx(theory.wq, rel=0.15)
    assert s["mean_queue_len"] == pytest.approx(theory.lq, rel=0.15)
    assert s["mean_in_system"] == pytest.approx(theory.l, rel=0.1)
    assert s["utilisation"] == pytest.approx(RHO, abs=0.02)
    assert s["mean_service"] == pytest.approx(MEAN_PICK, rel=0.03)
    assert s["throughput"] == pytest.approx(lam, rel=0.03)
    # Share of orders that waited at all: Erlang C itself.
    waited = sum(1 for w in wh.waits if w > 0) / len(wh.waits)
    assert waited == pytest.approx(theory.p_wait, abs=0.03)

    # Little's law on the recorded data alone (no theory): L = lambda W, Lq = lambda Wq.
    assert s["mean_in_system"] == pytest.approx(s["arrival_rate"] * s["mean_sojourn"], rel=0.02)
    assert s["mean_queue_len"] == pytest.approx(s["arrival_rate"] * s["mean_wait"], rel=0.02)


def test_queueing_run_is_seed_repeatable() -> None:
    a, _ = _run(2, 2000, seed=3, warmup=0)
    b, _ = _run(2, 2000, seed=3, warmup=0)
    assert a.waits == b.waits and a.stats() == b.stats()
