"""LiveClock: advances the env in scaled wall time, syncs on demand, reports lag."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator

import pytest
import simpy

from sim.clock import LiveClock


def test_sync_follows_a_fake_wall_clock_and_runs_due_processes() -> None:
    env = simpy.Environment()
    fired: list[float] = []

    def proc() -> Generator[simpy.Event, None, None]:
        yield env.timeout(3600)
        fired.append(env.now)

    env.process(proc())
    wall = [100.0]
    clock = LiveClock(env, compression=3600, max_lag=0.5, wall=lambda: wall[0])
    assert clock.sync() == 0
    wall[0] = 100.5
    assert clock.sync() == 1800 and fired == []
    wall[0] = 101.25
    assert clock.sync() == 4500 and fired == [3600]
    assert clock.sync() == 4500  # no time passed: no-op


def test_lag_is_measured_in_wall_seconds_and_flagged() -> None:
    env = simpy.Environment()
    wall = [0.0]
    clock = LiveClock(env, compression=10, max_lag=0.5, wall=lambda: wall[0])
    clock.sync()
    wall[0] = 0.3
    clock.sync()
    assert clock.max_lag_seen == pytest.approx(0.3) and not clock.lag_exceeded
    wall[0] = 1.3  # nobody synced for a wall second
    clock.sync()
    assert clock.max_lag_seen == pytest.approx(1.0) and clock.lag_exceeded
    assert clock.lag == 0.0  # caught up again
    assert clock.status()["lag_exceeded"] is True


def test_a_failing_simulation_is_reported() -> None:
    env = simpy.Environment()

    def boom() -> Generator[simpy.Event, None, None]:
        yield env.timeout(1)
        raise RuntimeError("boom")

    env.process(boom())
    wall = [0.0]
    clock = LiveClock(env, compression=10, wall=lambda: wall[0])
    clock.sync()
    wall[0] = 1
    with pytest.raises(RuntimeError, match="boom"):
        clock.sync()
    with pytest.raises(RuntimeError, match="simulation failed"):
        clock.sync()


def test_background_task_advances_at_the_compressed_rate() -> None:
    async def main() -> tuple[float, float, LiveClock]:
        env = simpy.Environment()
        clock = LiveClock(env, compression=1000, max_lag=0.5, step_s=0.01)
        clock.start()
        t0 = time.monotonic()
        await asyncio.sleep(0.3)
        sim, wall = env.now, time.monotonic() - t0
        await clock.stop()
        return sim, wall, clock

    sim, wall, clock = asyncio.run(main())
    ratio = sim / (wall * 1000)
    assert 0.8 < ratio <= 1.05, ratio
    assert not clock.running and not clock.lag_exceeded


def test_a_blocked_event_loop_shows_as_lag() -> None:
    async def main() -> LiveClock:
        clock = LiveClock(simpy.Environment(), compression=100, max_lag=0.1, step_s=0.01)
        clock.start()
        await asyncio.sleep(0.03)
        time.sleep(0.2)  # a blocking handler starves the clock task
        await asyncio.sleep(0.03)
        await clock.stop()
        return clock

    clock = asyncio.run(main())
    assert clock.max_lag_seen >= 0.15 and clock.lag_exceeded
