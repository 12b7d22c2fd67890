"""The parcel carrier's network: scheduled pickups at the dock, line-haul, delivery.

Shipments registered (label created) wait at the dock for the next pickup: ``carrier.pickups``
times of day on ``carrier.pickup_days``. A pickup collects everything waiting (PU), the parcel
gets a departure scan a few hours later (IT), and arrives after ``carrier.transit_time`` (stream
``carrier.transit``) measured from pickup (DL). With probability ``carrier.exception_rate``
(stream ``carrier.exception``) the arrival is a failed delivery instead (EX), delivered a day later.

Both draws are made at pickup, in registration order, each from its own stream: the exception
lottery never shifts the transit times, so two variants of a scenario see the same transits.
The pickup process runs forever (like every periodic world process): run the env with ``until``.

A parcel's journey is not a SimPy process but a ``_Journey`` (two slots) that is itself the event on
SimPy's queue, rescheduled for each leg: a quarter-end surge has thousands in transit at once (6,107
in a 30,180-order run) and a process (generator frame, ``Process``, ``Initialize``, bound method,
``Timeout``) was ~0.85 KB each, the journey ~50 B. It schedules exactly what ``env.process`` of the
generator it replaced did -- the start (URGENT, at pickup), one event per leg (NORMAL, each
scheduled when the previous leg ran) and, after the DL scan, the finished process (NORMAL, now, no
callbacks) -- so SimPy numbers the same events in the same order and every (time, priority, id) tie
breaks as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import simpy
from simpy.events import NORMAL, URGENT

from sim.rng import Streams
from sim.scenario import Carrier as CarrierConfig
from sim.world.warehouse import DAY, DayClock

IN_TRANSIT_AFTER_S = 6 * 3600.0  # departure scan at the hub, or halfway for very short transits
REDELIVERY_AFTER_S = DAY  # a failed delivery is retried the next day


@dataclass(slots=True)
class Parcel:
    id: str  # the tracking number
    created: float
    data: Any = None  # the caller's record (carrier core: its shipment)
    picked_up: float | None = None
    transit_s: float | None = None
    exception: bool = False
    delivered: float | None = None


Observer = Callable[[Parcel, str], None]  # (parcel, "PU" | "IT" | "EX" | "DL")


class _Journey:
    """A parcel in the carrier's hands, as the event SimPy's queue holds for its next leg.

    ``Environment.step`` reads an event's ``callbacks`` (then sets them to None) and ``_ok``;
    ``callbacks`` is the network's tuple for the next leg, ``()`` once delivered."""

    __slots__ = ("callbacks", "parcel")
    _ok = True  # a leg never fails (an observer's exception propagates out of env.step)

    def __init__(self, callbacks: tuple[Callable[[_Journey], None], ...], parcel: Parcel) -> None:
        self.callbacks = callbacks
        self.parcel = parcel


def _scan_after(p: Parcel) -> float:
    # Recomputed at the scan leg from ``transit_s`` as drawn at pickup (nothing changes it after).
    return min(IN_TRANSIT_AFTER_S, (p.transit_s or 0.0) / 2)


class CarrierNetwork:
    def __init__(
        self,
        env: simpy.Environment,
        cfg: CarrierConfig,
        streams: Streams,
        *,
        clock: DayClock | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.env = env
        self.cfg = cfg
        self.clock = clock or DayClock()
        self.observer = observer
        self._transit = cfg.transit_time.sampler(streams.py("carrier.transit"))
        self._exc_rng = streams.py("carrier.exception")
        self._times = sorted(set(cfg.pickups))
        self._days = {d for d in cfg.pickup_days if 0 <= d <= 6}  # out-of-range days would never match
        self.waiting: list[Parcel] = []
        # One callbacks tuple per leg, shared by every journey: a _Journey holds which one is next.
        self._legs: tuple[tuple[Callable[[_Journey], None]], ...] = (
            (self._picked_up,),
            (self._scanned,),
            (self._arrived,),
            (self._delivered,),
        )
        self.pickups_done = 0
        self.last_pickup = float("-inf")
        if self._times and self._days:
            env.process(self._pickups())

    def register(self, parcel_id: str, data: Any = None) -> Parcel:
        """A labelled parcel now waits at the dock for the next pickup."""
        p = Parcel(parcel_id, self.env.now, data)
        self.waiting.append(p)
        return p

    def next_pickup(self, t: float) -> float | None:
        """Time of the pickup that will collect a parcel registered at ``t`` (None if the carrier
        never comes): the first at or after ``t`` that has not already happened at this instant."""
        return next((p for p in self._schedule(t) if p > self.last_pickup), None)

    # -- internals -----------------------------------------------------------------------------
    def _schedule(self, t: float) -> Iterator[float]:
        # Walk (day, time-of-day) pairs rather than comparing float times of day, so a pickup is
        # never missed nor repeated through rounding of the day offset.
        if not self._times or not self._days:
            return
        day, tod = self.clock.day(t), self.clock.tod(t)
        first = True
        while True:
            if self.clock.weekday_of_day(day) in self._days:
                for p in self._times:
                    if not first or p >= tod:
                        yield self.clock.at(day, p)
            day, first = day + 1, False

    def _pickups(self) -> simpy.events.ProcessGenerator:
        env = self.env
        for t in self._schedule(env.now):
            yield env.timeout(max(0.0, t - env.now))
            batch, self.waiting = self.waiting, []
            self.pickups_done += 1
            self.last_pickup = t
            for p in batch:
                p.transit_s = self._transit()
                p.exception = self._exc_rng.random() < self.cfg.exception_rate
                self._start(p)

    def _start(self, p: Parcel) -> None:
        self.env.schedule(_Journey(self._legs[0], p), URGENT)  # where env.process's Initialize was

    # The legs of a journey, each run when SimPy processes the _Journey event scheduled by the one
    # before; each scans, then schedules the next leg where the generator's ``yield env.timeout``
    # was (after the scan: an observer's events are numbered first, as they were).
    def _picked_up(self, j: _Journey) -> None:
        p, env = j.parcel, self.env
        p.picked_up = env.now
        self._notify(p, "PU")
        self._next(j, 1, _scan_after(p))

    def _scanned(self, j: _Journey) -> None:
        p = j.parcel
        self._notify(p, "IT")
        transit = p.transit_s or 0.0
        self._next(j, 2, transit - _scan_after(p))

    def _arrived(self, j: _Journey) -> None:
        p = j.parcel
        if p.exception:
            self._notify(p, "EX")
            self._next(j, 3, REDELIVERY_AFTER_S)
        else:
            self._delivered(j)

    def _delivered(self, j: _Journey) -> None:
        p = j.parcel
        p.delivered = self.env.now
        self._notify(p, "DL")
        # The process's own event, triggered when its generator returned: nobody waited on it,
        # but it took an id (``sim_events`` counts it) and a place in the queue.
        j.callbacks = ()
        self.env.schedule(j)

    def _next(self, j: _Journey, leg: int, delay: float) -> None:
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")  # as env.timeout would
        j.callbacks = self._legs[leg]
        self.env.schedule(j, NORMAL, delay)

    def _notify(self, p: Parcel, code: str) -> None:
        if self.observer is not None:
            self.observer(p, code)
