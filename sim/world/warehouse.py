"""The warehouse floor: orders queue FIFO for a finite crew of pickers, each picked then packed.

One picker takes an order from the queue, picks it (``warehouse.pick_time``, stream
``warehouse.pick``), packs it (``warehouse.pack_time``, stream ``warehouse.pack``), stages it ready
to ship and takes the next one. Pick and pack durations are drawn when the order arrives, so a
variant with more pickers sees the same work per order (common random numbers).

Shifts: the crew is not a ``simpy.Resource`` but a counter (``capacity``) and a FIFO queue that
this class dispatches itself. A shift-plan process sets ``capacity`` at every shift boundary; when it
drops, pickers busy with an order finish it (overtime of at most one order) and then no new order
starts until ``busy < capacity`` again. Hence no order *starts* outside shift hours. A counter
is exact and cheaper than blocker requests on a Resource, and it makes the time-weighted
statistics (queue length, busy pickers, available pickers) three integrals updated in one place.

Queueing checks: with no shifts, constant ``pickers`` c, exponential pick time, zero pack time and
Poisson arrivals this is M/M/c; ``stats()`` exposes what to compare with ``sim.world.queueing``.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

from sim.calendar import Calendar
from sim.rng import Streams
from sim.scenario import Shift
from sim.scenario import Warehouse as WarehouseConfig

DAY = 86400.0
WEEKDAYS = (0, 1, 2, 3, 4)


@dataclass(frozen=True, slots=True)
class DayClock:
    """Local day index, weekday and time of day of a simulated time, in plain float arithmetic
    (the world asks per order and per boundary; ``sim.calendar`` fixes the origin once)."""

    offset: float = 0.0  # local seconds of day at t = 0
    weekday0: int = 0  # weekday of day 0 (0 = Monday)

    @classmethod
    def of(cls, start: str) -> DayClock:
        cal = Calendar.of(start)
        return cls(cal.seconds_of_day(0.0), int(cal.weekday(0.0)))

    def day(self, t: float) -> int:
        return int((self.offset + t) // DAY)

    def weekday(self, t: float) -> int:
        return self.weekday_of_day(self.day(t))

    def weekday_of_day(self, day: int) -> int:
        return (self.weekday0 + day) % 7

    def tod(self, t: float) -> float:
        return (self.offset + t) % DAY

    def at(self, day: int, tod: float) -> float:
        """Simulated time of local ``day`` at ``tod`` seconds after midnight."""
        return day * DAY + tod - self.offset


def shift_capacity(shifts: Iterable[Shift], weekday: int, tod: float) -> int:
    """Pickers on the floor at ``tod`` on ``weekday``; overlapping shifts add up.

    A shift whose end is before its start runs over midnight; its ``days`` name the day it starts."""
    n = 0
    for s in shifts:
        if s.start <= s.end:
            on = weekday in s.days and s.start <= tod < s.end
        else:
            on = (weekday in s.days and tod >= s.start) or ((weekday - 1) % 7 in s.days and tod < s.end)
        if on:
            n += s.pickers
    return n


def ship_day(clock: DayClock, t_ready: float, cutoff: float, pickup_days: Sequence[int]) -> int | None:
    """The local day an order ready at ``t_ready`` leaves: today if it is a pickup day and the order
    was ready by the cut-off, else the next pickup day (None if the carrier never comes)."""
    d = clock.day(t_ready)
    if clock.weekday_of_day(d) in pickup_days and clock.tod(t_ready) <= cutoff:
        return d
    for k in range(1, 8):
        if clock.weekday_of_day(d + k) in pickup_days:
            return d + k
    return None


@dataclass(slots=True)
class Job:
    id: str
    arrived: float
    pick_s: float
    pack_s: float
    data: Any = None  # the caller's record (WMS: its fulfilment)
    started: float | None = None
    picked: float | None = None
    packed: float | None = None
    ship_day: int | None = None

    @property
    def wait_s(self) -> float | None:
        return None if self.started is None else self.started - self.arrived


Observer = Callable[[Job, str], None]  # (job, "picked" | "packed" | "ready_to_ship")


@dataclass(slots=True)
class _Window:
    """Statistics since the last reset (a warm-up can be cut off)."""

    t0: float
    last: float
    arrivals: int = 0
    completed: int = 0
    q_area: float = 0.0  # integral of the number waiting
    busy_area: float = 0.0  # integral of the number of busy pickers
    cap_area: float = 0.0  # integral of the pickers on shift
    # Per order, so at a million orders as lists of floats ~100 B an order for the three; packed
    # doubles are 24 B and read back as the same floats.
    waits: array[float] = field(default_factory=lambda: array("d"))  # per order started in the window
    services: array[float] = field(default_factory=lambda: array("d"))  # per order completed: pick + pack
    sojourns: array[float] = field(default_factory=lambda: array("d"))  # per order completed: arrival -> ready


class Warehouse:
    def __init__(
        self,
        env: simpy.Environment,
        cfg: WarehouseConfig,
        streams: Streams,
        *,
        pickup_days: Sequence[int] = WEEKDAYS,
        clock: DayClock | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.env = env
        self.cfg = cfg
        self.clock = clock or DayClock()
        self.pickup_days = tuple(pickup_days)
        self.observer = observer
        self._pick = cfg.pick_time.sampler(streams.py("warehouse.pick"))
        self._pack = cfg.pack_time.sampler(streams.py("warehouse.pack"))
        self.queue: deque[Job] = deque()
        self.busy = 0
        self.capacity = self._capacity_at(env.now) if cfg.shifts else cfg.pickers
        self._w = _Window(env.now, env.now)
        if cfg.shifts:
            env.process(self._shift_plan())

    # -- public --------------------------------------------------------------------------------
    def submit(self, job_id: str, data: Any = None) -> Job:
        """An order released to the floor joins the back of the queue."""
        self._touch()
        job = Job(job_id, self.env.now, self._pick(), self._pack(), data)
        self._w.arrivals += 1
        self.queue.append(job)
        self._dispatch()
        return job

    def reset_stats(self) -> None:
        """Start a fresh statistics window now (orders in flight keep going)."""
        self._w = _Window(self.env.now, self.env.now)

    @property
    def waits(self) -> array[float]:
        return self._w.waits

    @property
    def services(self) -> array[float]:
        return self._w.services

    @property
    def sojourns(self) -> array[float]:
        return self._w.sojourns

    def stats(self) -> dict[str, float]:
        """Flat record of the current window (one row of a DataFrame): rates per second, times in
        seconds, ``mean_queue_len`` the time-average number waiting (Lq), ``mean_in_system`` L."""
        self._touch()
        w = self._w
        span = self.env.now - w.t0

        def per(x: float) -> float:
            return x / span if span > 0 else 0.0

        return {
            "elapsed_s": span,
            "arrivals": w.arrivals,
            "arrival_rate": per(w.arrivals),
            "started": len(w.waits),
            "completed": w.completed,
            "throughput": per(w.completed),
            "mean_wait": _mean(w.waits),
            "mean_service": _mean(w.services),
            "mean_sojourn": _mean(w.sojourns),
            "mean_queue_len": per(w.q_area),
            "mean_busy": per(w.busy_area),
            "mean_in_system": per(w.q_area + w.busy_area),
            "mean_capacity": per(w.cap_area),
            "utilisation": w.busy_area / w.cap_area if w.cap_area > 0 else 0.0,
        }

    # -- internals -----------------------------------------------------------------------------
    def _touch(self) -> None:
        # Called at the top of every state change, before the change: the integrals accumulate the
        # old state up to now.
        w, now = self._w, self.env.now
        dt = now - w.last
        if dt > 0:
            w.q_area += len(self.queue) * dt
            w.busy_area += self.busy * dt
            w.cap_area += self.capacity * dt
            w.last = now

    def _dispatch(self) -> None:
        now = self.env.now
        while self.queue and self.busy < self.capacity:
            job = self.queue.popleft()
            self.busy += 1
            job.started = now
            self._w.waits.append(now - job.arrived)
            self.env.process(self._work(job))

    def _work(self, job: Job) -> simpy.events.ProcessGenerator:
        env = self.env
        yield env.timeout(job.pick_s)
        job.picked = env.now
        self._notify(job, "picked")
        if job.pack_s > 0:
            yield env.timeout(job.pack_s)
        job.packed = env.now
        self._notify(job, "packed")
        job.ship_day = ship_day(self.clock, env.now, self.cfg.cutoff, self.pickup_days)
        self._notify(job, "ready_to_ship")
        self._touch()
        self.busy -= 1
        w = self._w
        w.completed += 1
        w.services.append(env.now - (job.started or 0.0))
        w.sojourns.append(env.now - job.arrived)
        self._dispatch()

    def _notify(self, job: Job, milestone: str) -> None:
        if self.observer is not None:
            self.observer(job, milestone)

    def _capacity_at(self, t: float) -> int:
        return shift_capacity(self.cfg.shifts, self.clock.weekday(t), self.clock.tod(t))

    def _shift_plan(self) -> simpy.events.ProcessGenerator:
        # Boundaries are times of day; capacity is evaluated from the (day, boundary) pair rather
        # than from env.now so float noise in the day offset cannot land just before a boundary.
        bounds = sorted({s.start % DAY for s in self.cfg.shifts} | {s.end % DAY for s in self.cfg.shifts})
        env, clock = self.env, self.clock
        day, tod = clock.day(env.now), clock.tod(env.now)
        i = next((k for k, b in enumerate(bounds) if b > tod), None)
        if i is None:
            day, i = day + 1, 0
        while True:
            b = bounds[i]
            yield env.timeout(max(0.0, clock.at(day, b) - env.now))
            self._touch()
            self.capacity = shift_capacity(self.cfg.shifts, clock.weekday_of_day(day), b)
            self._dispatch()
            i += 1
            if i == len(bounds):
                day, i = day + 1, 0


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0
