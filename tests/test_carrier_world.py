"""Carrier network world: pickup schedule, scan sequence, exceptions, seeded transit times."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest
import simpy

from sim.distributions import Lognormal
from sim.rng import Streams
from sim.scenario import Carrier as CarrierConfig
from sim.world.carrier import IN_TRANSIT_AFTER_S, REDELIVERY_AFTER_S, CarrierNetwork, Parcel
from sim.world.warehouse import DAY, DayClock

H = 3600.0


def _network(
    cfg: CarrierConfig, seed: int = 1
) -> tuple[simpy.Environment, CarrierNetwork, list[tuple[float, str, str]]]:
    env = simpy.Environment()
    scans: list[tuple[float, str, str]] = []
    net = CarrierNetwork(
        env, cfg, Streams(seed), clock=DayClock(), observer=lambda p, c: scans.append((env.now, p.id, c))
    )
    return env, net, scans


def _register_at(env: simpy.Environment, net: CarrierNetwork, t: float, pid: str) -> None:
    def go() -> Iterator[simpy.Event]:
        yield env.timeout(t - env.now)
        net.register(pid)

    env.process(go())


def test_pickup_schedule_collects_what_was_waiting() -> None:
    cfg = CarrierConfig(pickups=["11:00", "16:00"], transit_time=DAY, exception_rate=0)
    env, net, scans = _network(cfg)
    registered = {
        "mon-09": 9 * H,  # -> Mon 11:00
        "mon-11": 11 * H,  # created at the instant the truck leaves: misses it
        "mon-12": 12 * H,  # -> Mon 16:00
        "mon-17": 17 * H,  # -> Tue 11:00
        "fri-17": 4 * DAY + 17 * H,  # -> Mon 11:00 next week
        "sat-10": 5 * DAY + 10 * H,  # -> Mon 11:00 next week
    }
    for pid, t in registered.items():
        _register_at(env, net, t, pid)
    env.run(until=10 * DAY)
    pu = {pid: t for t, pid, c in scans if c == "PU"}
    assert pu == {
        "mon-09": 11 * H,
        "mon-11": 16 * H,
        "mon-12": 16 * H,
        "mon-17": DAY + 11 * H,
        "fri-17": 7 * DAY + 11 * H,
        "sat-10": 7 * DAY + 11 * H,
    }
    assert all(t % DAY in (11 * H, 16 * H) and int(t // DAY) % 7 < 5 for t in pu.values())
    _, fresh, _ = _network(cfg)
    assert fresh.next_pickup(12 * H) == 16 * H and fresh.next_pickup(4 * DAY + 16.5 * H) == 7 * DAY + 11 * H
    assert fresh.next_pickup(11 * H) == 11 * H  # before the 11:00 truck has left


def test_scan_sequence_pu_it_dl() -> None:
    cfg = CarrierConfig(pickups=["16:00"], transit_time=2 * DAY, exception_rate=0)
    env, net, scans = _network(cfg)
    net.register("A")
    env.run(until=5 * DAY)
    assert scans == [(16 * H, "A", "PU"), (16 * H + IN_TRANSIT_AFTER_S, "A", "IT"), (16 * H + 2 * DAY, "A", "DL")]


def test_exception_then_delivered_a_day_later() -> None:
    cfg = CarrierConfig(pickups=["16:00"], transit_time=DAY, exception_rate=1.0)
    env, net, scans = _network(cfg)
    p: Parcel = net.register("A")
    env.run(until=5 * DAY)
    assert [c for _, _, c in scans] == ["PU", "IT", "EX", "DL"]
    assert scans[2][0] == 16 * H + DAY and scans[3][0] == 16 * H + DAY + REDELIVERY_AFTER_S
    assert p.exception and p.delivered == scans[3][0]


def test_short_transit_scans_in_transit_halfway() -> None:
    cfg = CarrierConfig(pickups=["16:00"], transit_time=4 * H, exception_rate=0)
    env, net, scans = _network(cfg)
    net.register("A")
    env.run(until=DAY)
    assert [(t - 16 * H, c) for t, _, c in scans] == [(0, "PU"), (2 * H, "IT"), (4 * H, "DL")]


def _deliveries(seed: int, n: int = 300, rate: float = 0.1) -> list[tuple[str, float, bool]]:
    cfg = CarrierConfig(transit_time=Lognormal(median=2 * DAY, sigma=0.3), exception_rate=rate)
    env, net, _ = _network(cfg, seed)
    parcels = [net.register(f"P{i}") for i in range(n)]
    env.run(until=20 * DAY)
    return [(p.id, p.transit_s or 0.0, p.exception) for p in parcels]


def test_transit_and_exceptions_are_seed_repeatable() -> None:
    a, b, c = _deliveries(11), _deliveries(11), _deliveries(12)
    assert a == b
    assert a != c
    transits = [t for _, t, _ in _deliveries(11, n=2000, rate=0.1)]
    assert statistics.median(transits) == pytest.approx(2 * DAY, rel=0.05)
    share = sum(ex for _, _, ex in _deliveries(11, n=2000, rate=0.1)) / 2000
    assert 0.07 < share < 0.13


def test_exception_rate_does_not_shift_transit_draws() -> None:
    # Separate streams: changing the exception rate leaves every parcel's transit time unchanged.
    with_ex = [t for _, t, _ in _deliveries(5, rate=0.5)]
    without = [t for _, t, _ in _deliveries(5, rate=0.0)]
    assert with_ex == without


def test_no_pickup_days_means_nothing_moves() -> None:
    cfg = CarrierConfig(pickup_days=[], exception_rate=0)
    env, net, scans = _network(cfg)
    net.register("A")
    env.run(until=10 * DAY)
    assert scans == [] and net.next_pickup(0) is None
