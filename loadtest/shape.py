"""Load shapes as data: a scenario's demand curve compressed into a load test of D wall seconds.

A scenario's horizon (a quarter, say) is cut into ``n`` equal segments; segment ``k`` becomes load
test step ``k`` and its arrival rate is proportional to the *integral* of the demand rate over the
segment (expected orders / segment length), not to a point sample: a 30 s test of a 13-week quarter
puts three days into every step, so sampling would alias the intraday and weekday cycles, while
integrating keeps the volume right and leaves the slow shape (month weeks, the quarter-end hockey
stick) which is what a load test should show: a ramp into a spike at the end.

Rates are scaled so the busiest step offers ``peak_rps`` orders per second. Everything here is pure
(no Locust, no I/O), so it is unit-tested and shared by the locustfile, ``twin load`` and the docs.

Users are sized for an open arrival model on top of Locust's closed one: each user starts an
iteration every ``users / rate`` seconds, and there are ``ceil(rate x budget_s)`` users, so an
iteration may take up to ``budget_s`` seconds (set it to a few times the expected p99 iteration
latency) before a slow system under test throttles the offered load (coordinated omission).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from sim.scenario import Scenario

DEFAULT_BUDGET_S = 2.0


class RateCurve(Protocol):
    """What the compression needs from a demand model (``sim.demand.DemandModel`` provides both)."""

    def rate(self, t: float) -> float: ...

    def expected_count(self, t0: float, t1: float) -> float: ...


# --------------------------------------------------------------------------------------- demand adapter


def demand_curve(scenario: Scenario) -> tuple[RateCurve, str]:
    """The scenario's demand rate, from the same ``sim.demand.DemandModel`` a run draws orders from.

    Returns the curve and its source so a report can say what shaped the load."""
    from sim.demand import DemandModel
    from sim.masterdata import generate
    from sim.rng import Streams

    streams = Streams(scenario.seed)
    return DemandModel(scenario, generate(scenario.masterdata, streams), streams), "demand-model"


# --------------------------------------------------------------------------------------- schedule


@dataclass(frozen=True, slots=True)
class Step:
    start_s: float
    duration_s: float
    rate: float  # offered orders per wall second during the step

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True, slots=True)
class Stage:
    end_s: float
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class Schedule:
    """Offered arrival rate as steps over ``duration_s`` wall seconds, and the users to carry it."""

    steps: tuple[Step, ...]
    budget_s: float = DEFAULT_BUDGET_S
    source: str = "demand-model"
    sim_horizon_s: float = 0.0
    _starts: list[float] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a schedule needs at least one step")
        if self.budget_s <= 0:
            raise ValueError(f"budget_s must be > 0, got {self.budget_s}")
        self._starts.extend(s.start_s for s in self.steps)

    @property
    def duration_s(self) -> float:
        return self.steps[-1].end_s

    @property
    def peak_rps(self) -> float:
        return max(s.rate for s in self.steps)

    @property
    def total_offered(self) -> float:
        return sum(s.rate * s.duration_s for s in self.steps)

    @property
    def mean_rps(self) -> float:
        return self.total_offered / self.duration_s

    def step_at(self, t: float) -> Step | None:
        if t < 0 or t >= self.duration_s:
            return None
        return self.steps[bisect.bisect_right(self._starts, t) - 1]

    def rate_at(self, t: float) -> float:
        s = self.step_at(t)
        return s.rate if s else 0.0

    def users_for(self, rate: float) -> int:
        # At least one user, so a quiet step still has someone to notice when the rate returns.
        return max(1, math.ceil(rate * self.budget_s - 1e-9))

    def users_at(self, t: float) -> int:
        s = self.step_at(t)
        return self.users_for(s.rate) if s else 0

    def interval_at(self, t: float) -> float | None:
        """Seconds between iteration starts for one user at time ``t``; None while the rate is 0."""
        s = self.step_at(t)
        if s is None or s.rate <= 0:
            return None
        return self.users_for(s.rate) / s.rate

    def offered(self, t0: float, t1: float) -> float:
        """Orders offered between wall seconds ``t0`` and ``t1`` of the test."""
        return sum(s.rate * max(0.0, min(t1, s.end_s) - max(t0, s.start_s)) for s in self.steps)

    def stages(self) -> list[Stage]:
        """Locust stages: users per step, spawned within a fifth of a second (slow spawning would
        quietly cut the offered load at every step up)."""
        out: list[Stage] = []
        prev = 0
        for s in self.steps:
            users = self.users_for(s.rate)
            spawn = float(max(1, 5 * abs(users - prev)))
            if out and out[-1].users == users:
                out[-1] = Stage(s.end_s, users, out[-1].spawn_rate)
            else:
                out.append(Stage(s.end_s, users, spawn))
            prev = users
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "duration_s": self.duration_s,
            "peak_rps": self.peak_rps,
            "mean_rps": self.mean_rps,
            "total_offered": self.total_offered,
            "budget_s": self.budget_s,
            "source": self.source,
            "sim_horizon_s": self.sim_horizon_s,
            "steps": [[s.start_s, s.duration_s, s.rate] for s in self.steps],
            "stages": [[g.end_s, g.users, g.spawn_rate] for g in self.stages()],
        }


def default_steps(duration_s: float) -> int:
    """One step per wall second (Locust ticks its shape once a second), at most 120 steps."""
    return max(1, min(120, round(duration_s)))


Cycle = Callable[[np.ndarray], np.ndarray]  # simulated times -> weight of the periodic profile there

SAMPLES_PER_CYCLE = 4  # a cycle shorter than this many steps cannot be drawn, only aliased


def cycle_profile(scenario: Scenario, segment_s: float) -> Cycle | None:
    """The calendar cycles too fast to show at ``segment_s`` per step, as a weight function.

    A step that is not a whole number of days or weeks catches an arbitrary share of nights or
    weekends: a 13-week quarter in 30 steps puts 3.03 days in each, so one step holds a weekend and
    the next does not and the load zigzags for no business reason (aliasing). Cycles with fewer than
    ``SAMPLES_PER_CYCLE`` steps per period (the intraday one beyond 6 h steps, the weekly one beyond
    1.75 days) are divided out; slower structure (month weeks, the surge) stays as it is.
    """
    d = scenario.demand
    if d.process != "nhpp":
        return None
    drop_day = segment_s * SAMPLES_PER_CYCLE > 86400
    drop_week = segment_s * SAMPLES_PER_CYCLE > 7 * 86400
    if not (drop_day or drop_week):
        return None
    from sim.calendar import Calendar

    cal = Calendar.from_scenario(scenario)
    intraday = np.asarray(d.intraday, float)
    weekday = np.asarray(d.weekday, float)

    def weights(t: np.ndarray) -> np.ndarray:
        w = np.ones_like(t, dtype=float)
        if drop_day:
            w = w * intraday[cal.hour(t)]
        if drop_week:
            w = w * weekday[cal.weekday(t)]
        return w

    return weights


def compress(
    curve: RateCurve,
    horizon_s: float,
    duration_s: float,
    peak_rps: float,
    *,
    steps: int | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    cycle: Cycle | None = None,
    source: str = "custom",
) -> Schedule:
    """Squeeze ``curve`` over ``[0, horizon_s)`` into ``duration_s`` wall seconds peaking at ``peak_rps``.

    Step ``k``'s rate is proportional to the expected orders in simulated segment ``k``; with a
    ``cycle`` (see ``cycle_profile``) that volume is first divided by the segment's share of the
    cycle's weight: the level of demand the segment would have had over whole cycles.
    """
    if duration_s <= 0:
        raise ValueError(f"duration must be > 0 s, got {duration_s}")
    if peak_rps <= 0:
        raise ValueError(f"peak rate must be > 0 requests/s, got {peak_rps}")
    n = steps or default_steps(duration_s)
    seg = horizon_s / n
    means = np.array([curve.expected_count(k * seg, (k + 1) * seg) / seg for k in range(n)])
    if cycle is not None:
        # The cycle's mean over each segment, from hourly-or-finer samples (its weights are hourly).
        m = max(1, math.ceil(seg / 3600))
        mids = (np.arange(n * m) + 0.5) * (seg / m)
        w = cycle(mids).reshape(n, m).mean(axis=1)
        whole = float(cycle((np.arange(7 * 24 * 4) + 0.5) * 900.0).mean())  # one week in 15-min samples
        means = np.divide(means * whole, w, out=np.zeros_like(means), where=w > 0)
    top = float(means.max())
    # A curve with no demand at all still gets a flat load, rather than a test that does nothing.
    scaled = [peak_rps * float(x) / top for x in means] if top > 0 else [peak_rps] * n
    wall = duration_s / n
    return Schedule(
        steps=tuple(Step(k * wall, wall, r) for k, r in enumerate(scaled)),
        budget_s=budget_s,
        source=source,
        sim_horizon_s=horizon_s,
    )


def schedule_for(
    scenario: Scenario,
    duration_s: float,
    peak_rps: float,
    *,
    steps: int | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    users: int | None = None,
    deseasonalise: bool = True,
    curve_factory: Callable[[Scenario], tuple[RateCurve, str]] = demand_curve,
) -> Schedule:
    """The load schedule of a scenario. ``users`` (users at the peak) overrides ``budget_s``."""
    if users is not None:
        if users < 1:
            raise ValueError(f"users must be >= 1, got {users}")
        budget_s = users / peak_rps
    curve, source = curve_factory(scenario)
    n = steps or default_steps(duration_s)
    cycle = cycle_profile(scenario, scenario.horizon / n) if deseasonalise else None
    return compress(
        curve, scenario.horizon, duration_s, peak_rps, steps=n, budget_s=budget_s, cycle=cycle, source=source
    )
