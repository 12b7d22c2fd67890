"""Probability distributions, written one way everywhere in a scenario file.

A distribution in YAML is either a bare number (fixed) or a mapping with ``kind``::

    latency: 0.05                                   # fixed
    latency: {kind: uniform, low: 0.01, high: 0.2}
    latency: {kind: exponential, mean: 0.1}
    latency: {kind: lognormal, median: 0.08, sigma: 0.5}
    latency: {kind: gamma, shape: 2.0, scale: 0.05}
    latency: {kind: empirical, percentiles: {50: 0.08, 95: 0.3, 99: 0.9, 100: 2.0}}
    transit_time: {kind: lognormal, median: 2d, sigma: 0.3}  # durations: 45s, 30m, 2h, 3d, 1w

Every parameter in the value's unit (``median``, ``mean``, ``low``/``high``, ``value``, ``scale``,
percentile values) may be written as a duration string; it becomes seconds.

Sampling takes a ``random.Random`` passed in by the caller (a named stream from ``sim.rng``), so the
same code runs under virtual and live clocks and a seed reproduces every draw. ``sample_np`` draws
many at once from a numpy ``Generator`` (``Streams.np``) for vectorised consumers such as demand.
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections.abc import Callable
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AMOUNT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def _amount(v: object) -> object:
    """A duration string (``30m``) -> seconds; anything else is left to pydantic's float check."""
    if isinstance(v, str):
        m = _AMOUNT_RE.match(v)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
        try:
            return float(v)
        except ValueError:
            raise ValueError(f"must be a number or a duration like 45s, 30m, 2h, 3d, got {v!r}") from None
    return v


Num = Annotated[float, BeforeValidator(_amount)]


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def sampler(self, rng: random.Random) -> Callable[[], float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, rng: random.Random) -> float:
        return self.sampler(rng)()

    def sample_np(self, gen: np.random.Generator, size: int) -> np.ndarray:  # pragma: no cover - abstract
        """``size`` independent draws as a float array."""
        raise NotImplementedError

    def mean(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def scaled(self, factor: float) -> Distribution:
        """The same shape stretched by ``factor`` (used by brown-out and supplier-delay faults)."""
        return Scaled(base=self, factor=factor)  # type: ignore[arg-type]


class Fixed(_Dist):
    kind: Literal["fixed"] = "fixed"
    value: Num = Field(ge=0)

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        v = self.value
        return lambda: v

    def sample_np(self, gen: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value, dtype=float)

    def mean(self) -> float:
        return self.value


class Uniform(_Dist):
    kind: Literal["uniform"] = "uniform"
    low: Num = Field(ge=0)
    high: Num = Field(ge=0)

    @model_validator(mode="after")
    def _order(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high must be >= low, got low={self.low} high={self.high}")
        return self

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        lo, hi = self.low, self.high
        return lambda: rng.uniform(lo, hi)

    def sample_np(self, gen: np.random.Generator, size: int) -> np.ndarray:
        return gen.uniform(self.low, self.high, size)

    def mean(self) -> float:
        return (self.low + self.high) / 2


class Exponential(_Dist):
    kind: Literal["exponential"] = "exponential"
    mean_: Num = Field(gt=0, alias="mean")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        lam = 1.0 / self.mean_
        return lambda: rng.expovariate(lam)

    def sample_np(self, gen: np.random.Generator, size: int) -> np.ndarray:
        return gen.exponential(self.mean_, size)

    def mean(self) -> float:
        return self.mean_


class Lognormal(_Dist):
    kind: Literal["lognormal"] = "lognormal"
    median: Num = Field(gt=0)
    sigma: float = Field(ge=0)

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        mu, s = math.log(self.median), self.sigma
        return lambda: rng.lognormvariate(mu, s)

    def sample_np(self, gen: np.random.Generator, size: int) -> np.ndarray:
        return gen.lognormal(math.log(self.median), self.sigma, size)

    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


class Gamma(_Dist):
    kind: Literal["gamma"] = "gamma"
    shape: float = Field(gt=0)
    scale: Num = Field(gt=0)

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        a, b = self.shape, self.scale
        return lambda: rng.gammavariate(a, b)

    def sample_np(self, gen: np.random.Generator, size: int) -> np.ndarray:
        return gen.gamma(self.shape, self.scale, size)

    def mean(self) -> float:
        return self.shape * self.scale


class Empirical(_Dist):
    """Inverse-CDF interpolation through the given percentiles (0-100 -> value).

    Below the lowest percentile given the value rises linearly from 0 (or from the p0 value when
    given); above the highest one it stays at the highest value.
    """

    kind: Literal["empirical"] = "empirical"
    percentiles: dict[float, Num]

    @model_validator(mode="after")
    def _check(self) -> Empirical:
        if not self.percentiles:
            raise ValueError("percentiles must name at least one percentile")
        prev = -1.0
        for p in sorted(self.percentiles):
            v = self.percentiles[p]
            if not 0 <= p <= 100:
                raise ValueError(f"percentile keys must be within 0..100, got {p}")
            if v < 0:
                raise ValueError(f"percentile values must be >= 0, got {v} at p{p:g}")
            if v < prev:
                raise ValueError(f"percentile values must not decrease, got {v} at p{p:g} after {prev}")
            prev = v
        return self

    def _points(self) -> tuple[list[float], list[float]]:
        ps = sorted(self.percentiles)
        xs = [p / 100 for p in ps]
        vs = [self.percentiles[p] for p in ps]
        if xs[0] > 0:
            xs.insert(0, 0.0)
            vs.insert(0, 0.0)
        if xs[-1] < 1:
            xs.append(1.0)
            vs.append(vs[-1])
        return xs, vs

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        xs, vs = self._points()

        def draw() -> float:
            u = rng.random()
            i = max(1, bisect.bisect_right(xs, u))
            x0, x1, v0, v1 = xs[i - 1], xs[i], vs[i - 1], vs[i]
            return v0 if x1 == x0 else v0 + (v1 - v0) * (u - x0) / (x1 - x0)

        return draw

    def sample_np(self, gen: np.random.Generator, size: int) -> np.ndarray:
        xs, vs = self._points()
        # The same inverse-CDF interpolation as ``draw``, for a whole array of uniforms.
        return np.interp(gen.random(size), xs, vs)

    def mean(self) -> float:
        xs, vs = self._points()
        return sum((xs[i] - xs[i - 1]) * (vs[i] + vs[i - 1]) / 2 for i in range(1, len(xs)))


class Scaled(_Dist):
    kind: Literal["scaled"] = "scaled"
    base: Distribution
    factor: float = Field(ge=0)

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        inner, f = self.base.sampler(rng), self.factor
        return lambda: inner() * f

    def sample_np(self, gen: np.random.Generator, size: int) -> np.ndarray:
        return self.base.sample_np(gen, size) * self.factor

    def mean(self) -> float:
        return self.base.mean() * self.factor


def _number_is_fixed(v: object) -> object:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return {"kind": "fixed", "value": v}
    if isinstance(v, str):
        if _AMOUNT_RE.match(v):
            return {"kind": "fixed", "value": v}
        raise ValueError(f"must be a number, a duration like 2h, or a mapping with kind ({KINDS}), got {v!r}")
    return v


KINDS = "fixed, uniform, exponential, lognormal, gamma, empirical"


Distribution = Annotated[
    Fixed | Uniform | Exponential | Lognormal | Gamma | Empirical | Scaled,
    Field(discriminator="kind"),
    BeforeValidator(_number_is_fixed),
]

Scaled.model_rebuild()
