"""Warehouse floor behaviour: FIFO, milestones, shifts (no picking off shift) and the cut-off."""

from __future__ import annotations

import simpy

from sim.distributions import Fixed
from sim.rng import Streams
from sim.scenario import Shift
from sim.scenario import Warehouse as WarehouseConfig
from sim.world.warehouse import DAY, DayClock, Job, Warehouse, shift_capacity, ship_day

H = 3600.0


def _floor(cfg: WarehouseConfig, start: str = "2026-07-06T00:00:00") -> tuple[simpy.Environment, Warehouse, list]:
    env = simpy.Environment()
    seen: list[tuple[float, str, str]] = []

    def observe(job: Job, milestone: str) -> None:
        seen.append((env.now, job.id, milestone))

    wh = Warehouse(env, cfg, Streams(1), clock=DayClock.of(start), observer=observe)
    return env, wh, seen


def _at(env: simpy.Environment, wh: Warehouse, t: float, job_id: str) -> None:
    def go():  # type: ignore[no-untyped-def]
        yield env.timeout(t - env.now)
        wh.submit(job_id)

    env.process(go())


def test_milestones_in_order_fifo_and_wait_recorded() -> None:
    cfg = WarehouseConfig(pickers=1, pick_time=Fixed(value=600), pack_time=Fixed(value=120))
    env, wh, seen = _floor(cfg)
    _at(env, wh, 8 * H, "A")
    _at(env, wh, 8 * H + 60, "B")
    env.run(until=DAY)
    assert seen == [
        (8 * H + 600, "A", "picked"),
        (8 * H + 720, "A", "packed"),
        (8 * H + 720, "A", "ready_to_ship"),
        (8 * H + 1320, "B", "picked"),  # B waited for the only picker to pick and pack A
        (8 * H + 1440, "B", "packed"),
        (8 * H + 1440, "B", "ready_to_ship"),
    ]
    assert list(wh.waits) == [0.0, 660.0]
    assert list(wh.services) == [720.0, 720.0]


def test_shift_capacity_overlap_and_overnight() -> None:
    day = Shift(start=6 * H, end=14 * H, pickers=3)
    late = Shift(start=12 * H, end=20 * H, pickers=2)
    night = Shift(start=22 * H, end=6 * H, pickers=1, days=[4])  # Friday night into Saturday
    shifts = [day, late, night]
    assert shift_capacity(shifts, 0, 5 * H) == 0
    assert shift_capacity(shifts, 0, 6 * H) == 3
    assert shift_capacity(shifts, 0, 13 * H) == 5
    assert shift_capacity(shifts, 0, 14 * H) == 2
    assert shift_capacity(shifts, 5, 13 * H) == 0  # Saturday: no day shifts
    assert shift_capacity(shifts, 4, 23 * H) == 1
    assert shift_capacity(shifts, 5, 2 * H) == 1  # the Friday night shift runs into Saturday
    assert shift_capacity(shifts, 6, 2 * H) == 0


def test_no_picking_starts_outside_shift_hours() -> None:
    shift = Shift(start=8 * H, end=16 * H, pickers=2)  # Mon-Fri
    cfg = WarehouseConfig(shifts=[shift], pick_time=Fixed(value=1800), pack_time=Fixed(value=0))
    env, wh, seen = _floor(cfg)
    started: dict[str, float] = {}
    # Orders all week, including nights and the weekend (day 5 = Saturday).
    times = [2 * H, 9 * H, 9 * H, 9 * H, 15.9 * H, 20 * H, DAY + 3 * H, 5 * DAY + 10 * H, 6 * DAY + 23 * H]
    for i, t in enumerate(times):
        _at(env, wh, t, f"O{i}")
    env.run(until=10 * DAY)
    for t_done, jid, m in seen:
        if m == "picked":
            started[jid] = t_done - 1800
    assert len(started) == len(times)
    for jid, t in started.items():
        tod, wd = t % DAY, int(t // DAY) % 7
        assert wd < 5 and 8 * H <= tod < 16 * H, (jid, t / H)
    assert started["O0"] == 8 * H  # queued overnight, first pick at shift start
    assert started["O3"] == 9.5 * H  # third order at 09:00 waits for one of the two pickers
    assert started["O5"] == DAY + 8 * H  # after-hours order starts next morning
    assert started["O7"] == 7 * DAY + 8 * H  # Saturday order waits for Monday
    assert wh.capacity == 0  # day 10 00:00 is off shift


def test_capacity_drop_lets_busy_pickers_finish() -> None:
    shift = Shift(start=8 * H, end=9 * H, pickers=1)
    cfg = WarehouseConfig(shifts=[shift], pick_time=Fixed(value=2400), pack_time=Fixed(value=0))
    env, wh, seen = _floor(cfg)
    _at(env, wh, 8.5 * H, "A")
    _at(env, wh, 8.6 * H, "B")
    env.run(until=DAY + 12 * H)
    picked = {jid: t for t, jid, m in seen if m == "picked"}
    assert picked["A"] == 8.5 * H + 2400  # finished after 09:00 (overtime for one order)
    assert picked["B"] == DAY + 8 * H + 2400  # B did not start after the shift ended


def test_ship_day_cutoff_and_weekend() -> None:
    clock = DayClock()
    days = (0, 1, 2, 3, 4)
    cutoff = 15 * H
    assert ship_day(clock, 14 * H, cutoff, days) == 0
    assert ship_day(clock, 15 * H, cutoff, days) == 0  # exactly at the cut-off still ships
    assert ship_day(clock, 15 * H + 1, cutoff, days) == 1
    assert ship_day(clock, 4 * DAY + 16 * H, cutoff, days) == 7  # Friday late -> Monday
    assert ship_day(clock, 5 * DAY + 9 * H, cutoff, days) == 7  # Saturday -> Monday
    assert ship_day(clock, 0, cutoff, ()) is None


def test_ship_day_recorded_on_ready_to_ship() -> None:
    cfg = WarehouseConfig(pickers=1, pick_time=Fixed(value=1800), pack_time=Fixed(value=600), cutoff=15 * H)
    env, wh, _ = _floor(cfg)
    early = late = None

    def go():  # type: ignore[no-untyped-def]
        nonlocal early, late
        yield env.timeout(13 * H)
        early = wh.submit("early")  # ready 13:40 -> same day
        yield env.timeout(1.5 * H)
        late = wh.submit("late")  # starts 14:30, ready 15:10 -> next day

    env.process(go())
    env.run(until=2 * DAY)
    assert early is not None and late is not None
    assert early.ship_day == 0 and late.ship_day == 1


def test_day_clock_follows_a_non_monday_start() -> None:
    clock = DayClock.of("2026-07-08T06:00:00")  # a Wednesday, 06:00
    assert clock.weekday(0) == 2 and clock.tod(0) == 6 * H
    assert clock.day(18 * H) == 1 and clock.weekday(18 * H) == 3
    assert clock.at(1, 8 * H) == 26 * H
