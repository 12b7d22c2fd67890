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


def test_sync_runs_the_env_only_when_an_event_is_due(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing due before the present: time just moves, without ``env.run``. An event due runs as
    before, and one exactly at the present waits, as under ``env.run(until=present)``."""
    env = simpy.Environment()
    fired: list[float] = []

    def proc() -> Generator[simpy.Event, None, None]:
        yield env.timeout(3600)
        fired.append(env.now)
        yield env.timeout(3600)
        fired.append(env.now)

    env.process(proc())
    runs: list[float] = []
    real_run = env.run

    def counting_run(until: float | None = None) -> None:
        runs.append(float(until or 0))
        real_run(until=until)

    monkeypatch.setattr(env, "run", counting_run)
    wall = [0.0]
    clock = LiveClock(env, compression=3600, max_lag=0.5, wall=lambda: wall[0])
    assert clock.sync() == 0 and runs == []  # no time passed
    wall[0] = 0.5
    assert clock.sync() == 1800 and len(runs) == 1  # the process start (an event at 0) was due
    wall[0] = 0.75
    assert clock.sync() == 2700 and len(runs) == 1 and fired == []  # nothing due: no run
    wall[0] = 1.0
    assert clock.sync() == 3600 and len(runs) == 1 and fired == []  # due exactly now: waits, as under run
    wall[0] = 1.5
    assert clock.sync() == 5400 and fired == [3600] and len(runs) == 2
    wall[0] = 1.75  # the stop event env.run leaves behind (SimPy 4.1) does not count as due
    assert clock.sync() == 6300 and len(runs) == 2 and clock.lag == 0.0
    wall[0] = 3.0
    assert clock.sync() == 10800 and fired == [3600, 7200]


def test_sync_sees_what_env_run_sees() -> None:
    """Against plain ``env.run(until=target)`` on a twin env: the same events at the same times,
    with many syncs between events, events exactly at sync times, and zero-delay chains."""
    import random

    def world(env: simpy.Environment, log: list[tuple[float, str]]) -> None:
        def worker(name: str, rng: random.Random) -> Generator[simpy.Event, None, None]:
            for _ in range(40):
                yield env.timeout(rng.choice([0, 0.5, 1, 7, 60, 3600]))
                log.append((env.now, name))

        for i in range(4):
            env.process(worker(f"w{i}", random.Random(i)))

    a_log: list[tuple[float, str]] = []
    b_log: list[tuple[float, str]] = []
    a, b = simpy.Environment(), simpy.Environment()
    world(a, a_log)
    world(b, b_log)
    wall = [0.0]
    clock = LiveClock(a, compression=1.0, max_lag=1e9, wall=lambda: wall[0])
    clock.sync()  # anchors simulated 0 at wall 0
    rng = random.Random(42)
    for _ in range(3000):
        wall[0] += rng.choice([0.0, 0.25, 0.5, 1.0, 3.0, 100.0])
        clock.sync()
        if wall[0] > b.now:
            b.run(until=wall[0])
        assert (a.now, a_log) == (b.now, b_log)
    assert len(a_log) == 160


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
