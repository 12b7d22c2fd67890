"""Every distribution kind: sample means match ``mean()``, scalar and vectorised; YAML forms."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from sim.distributions import Distribution, Empirical, Exponential, Fixed, Gamma, Lognormal, Scaled, Uniform

ADAPTER: TypeAdapter[Distribution] = TypeAdapter(Distribution)
N = 40_000

CASES = [
    Fixed(value=3.0),
    Uniform(low=1.0, high=5.0),
    Exponential(mean=2.0),
    Lognormal(median=3.0, sigma=0.6),
    Gamma(shape=2.0, scale=1.5),
    Empirical(percentiles={50: 1.0, 95: 4.0, 100: 6.0}),
    Empirical(percentiles={0: 2.0, 100: 2.0}),
    Scaled(base=Lognormal(median=1.0, sigma=0.3), factor=4.0),
]


def _sd(d: Distribution) -> float:
    rng = random.Random(99)
    xs = [d.sample(rng) for _ in range(2000)]
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / len(xs))


@pytest.mark.parametrize("dist", CASES, ids=lambda d: d.kind)
def test_python_sampler_mean(dist: Distribution) -> None:
    rng = random.Random(1)
    draw = dist.sampler(rng)
    xs = [draw() for _ in range(N)]
    tol = 5 * _sd(dist) / math.sqrt(N) + 1e-9
    assert abs(sum(xs) / N - dist.mean()) <= tol
    assert min(xs) >= 0


@pytest.mark.parametrize("dist", CASES, ids=lambda d: d.kind)
def test_numpy_sampler_mean(dist: Distribution) -> None:
    xs = dist.sample_np(np.random.default_rng(2), N)
    assert xs.shape == (N,)
    tol = 5 * _sd(dist) / math.sqrt(N) + 1e-9
    assert abs(xs.mean() - dist.mean()) <= tol
    assert xs.min() >= 0


def test_same_rng_seed_same_draws() -> None:
    d = Lognormal(median=1, sigma=1)
    assert d.sample(random.Random(4)) == d.sample(random.Random(4))
    assert (d.sample_np(np.random.default_rng(4), 5) == d.sample_np(np.random.default_rng(4), 5)).all()


def test_empirical_percentiles_are_respected() -> None:
    d = Empirical(percentiles={50: 1.0, 95: 4.0, 100: 6.0})
    xs = np.sort(d.sample_np(np.random.default_rng(3), N))
    assert abs(np.quantile(xs, 0.5) - 1.0) < 0.05
    assert abs(np.quantile(xs, 0.95) - 4.0) < 0.1
    assert xs.max() <= 6.0


def test_yaml_forms() -> None:
    assert ADAPTER.validate_python(0.5) == Fixed(value=0.5)
    assert ADAPTER.validate_python("2h") == Fixed(value=7200)
    assert ADAPTER.validate_python({"kind": "lognormal", "median": "2d", "sigma": 0.3}).median == 2 * 86400
    assert ADAPTER.validate_python({"kind": "exponential", "mean": "30s"}).mean() == 30
    assert ADAPTER.validate_python({"kind": "uniform", "low": "1m", "high": 120}).mean() == 90
    assert ADAPTER.validate_python({"kind": "empirical", "percentiles": {50: "1m", 100: "2m"}}).percentiles[100] == 120


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "weibull"},
        {"kind": "lognormal", "median": 1},
        {"kind": "lognormal", "median": -1, "sigma": 1},
        {"kind": "uniform", "low": 3, "high": 1},
        {"kind": "empirical", "percentiles": {50: 3, 90: 1}},
        {"kind": "empirical", "percentiles": {150: 3}},
        {"kind": "fixed", "value": 1, "extra": 2},
        "fast",
        True,
    ],
)
def test_invalid(raw: object) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(raw)


def test_scaled_helper() -> None:
    d = Exponential(mean=2).scaled(3)
    assert d.mean() == 6
