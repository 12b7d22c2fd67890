"""Carrier journeys as callbacks: the same SimPy events, in the same order, as the process they replaced.

``Reference`` is the network as it was (one ``env.process`` per parcel). Both run under an
environment that records every ``schedule`` call's (time, priority): equal records mean SimPy gave
every event the same id and breaks every tie the same way. The observer schedules events of its
own at each scan, so an event numbered one place off would show in the interleaving.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
import simpy

from sim.distributions import Distribution, Lognormal
from sim.rng import Streams
from sim.scenario import Carrier as CarrierConfig
from sim.world.carrier import IN_TRANSIT_AFTER_S, REDELIVERY_AFTER_S, CarrierNetwork, Parcel
from sim.world.warehouse import DAY, DayClock

H = 3600.0


class Reference(CarrierNetwork):
    """The per-parcel process the callbacks replaced, kept verbatim as the oracle (the pickup
    loop is shared: it draws, then starts each parcel's journey)."""

    def _start(self, p: Parcel) -> None:
        self.env.process(self._journey(p))

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


class Recording(simpy.Environment):
    def __init__(self) -> None:
        super().__init__()
        self.scheduled: list[tuple[float, int]] = []

    def schedule(self, event: Any, priority: Any = simpy.events.NORMAL, delay: float = 0) -> None:
        self.scheduled.append((self._now + delay, int(priority)))
        super().schedule(event, priority, delay)


def _run(network: type[CarrierNetwork], transit: Distribution | float, rate: float) -> dict[str, Any]:
    env = Recording()
    trace: list[tuple[float, str, str]] = []

    def observe(p: Parcel, code: str) -> None:
        trace.append((env.now, p.id, code))
        # An event of the observer's own at the same instant, processed among the journeys' events.
        env.timeout(0).callbacks.append(lambda _e: trace.append((env.now, p.id, code + "+0")))

    cfg = CarrierConfig(pickups=["11:00", "16:00"], transit_time=transit, exception_rate=rate)
    net = network(env, cfg, Streams(3), clock=DayClock(), observer=observe)
    parcels: list[Parcel] = []

    def demand() -> Iterator[simpy.Event]:
        for i in range(120):
            # Every 20 minutes: some registrations land on a pickup instant (and miss that truck).
            yield env.timeout(20 * 60)
            parcels.append(net.register(f"P{i}"))
            trace.append((env.now, f"P{i}", "REG"))

    env.process(demand())
    env.run(until=8 * DAY)
    states = [(p.id, p.picked_up, p.transit_s, p.exception, p.delivered) for p in parcels]
    return {"trace": trace, "scheduled": env.scheduled, "events": next(env._eid), "parcels": states}


@pytest.mark.parametrize(
    ("transit", "rate"),
    [
        (Lognormal(median=DAY, sigma=0.5), 0.3),  # exceptions and redeliveries, scans 6 h after pickup
        (4 * H, 0.5),  # short transit: IT halfway, DL and EX ties across parcels of one pickup
        (0.0, 0.5),  # every leg at the pickup instant: all ties, broken by event id alone
    ],
)
def test_callbacks_schedule_what_the_process_did(transit: Distribution | float, rate: float) -> None:
    new, old = _run(CarrierNetwork, transit, rate), _run(Reference, transit, rate)
    assert any(c == "EX" for _, _, c in new["trace"]) and any(c == "DL" for _, _, c in new["trace"])
    assert new["trace"] == old["trace"]
    assert new["scheduled"] == old["scheduled"]
    assert new["events"] == old["events"]  # ``sim_events`` of a run counts these
    assert new["parcels"] == old["parcels"]


def test_a_parcel_in_transit_holds_no_process() -> None:
    env = simpy.Environment()
    net = CarrierNetwork(env, CarrierConfig(pickups=["16:00"], exception_rate=0), Streams(1), clock=DayClock())
    n = 2000
    tracemalloc.start()
    try:
        for i in range(n):
            net.register(f"P{i:05d}")
        gc.collect()
        waiting = tracemalloc.get_traced_memory()[0]
        env.run(until=16 * H + 1)  # picked up, before the departure scans
        gc.collect()
        in_transit = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(env._queue) >= n
    assert sum(isinstance(o, simpy.Process) and o.env is env for o in gc.get_objects()) == 1  # the pickups'
    # The queue entry (tuple, time, id: ~130 B), the journey (~50 B) and the parcel's picked_up
    # and transit_s floats; a process per parcel was ~850 B.
    assert (in_transit - waiting) / n < 300
