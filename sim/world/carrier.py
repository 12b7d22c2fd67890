"""The parcel carrier's network: scheduled pickups at the dock, line-haul, delivery.

Shipments registered (label created) wait at the dock for the next pickup: ``carrier.pickups``
times of day on ``carrier.pickup_days``. A pickup collects everything waiting (PU), the parcel
gets a departure scan a few hours later (IT), and arrives after ``carrier.transit_time`` (stream
``carrier.transit``) measured from pickup (DL). With probability ``carrier.exception_rate``
(stream ``carrier.exception``) the arrival is a failed delivery instead (EX), delivered a day later.

Both draws are made at pickup, in registration order, each from its own stream: the exception
lottery never shifts the transit times, so two variants of a scenario see the same transits.
The pickup process runs forever (like every periodic world process): run the env with ``until``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import simpy

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
                env.process(self._journey(p))

    def _journey(self, p: Parcel) -> simpy.events.ProcessGenerator:
        env = self.env
        transit = p.transit_s or 0.0
        p.picked_up = env.now
        self._notify(p, "PU")
        scan = min(IN_TRANSIT_AFTER_S, transit / 2)
        yield env.timeout(scan)
        self._notify(p, "IT")
        yield env.timeout(transit - scan)
        if p.exception:
            self._notify(p, "EX")
            yield env.timeout(REDELIVERY_AFTER_S)
        p.delivered = env.now
        self._notify(p, "DL")

    def _notify(self, p: Parcel, code: str) -> None:
        if self.observer is not None:
            self.observer(p, code)
