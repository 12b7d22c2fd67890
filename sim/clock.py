"""The live clock: an asyncio task that advances a SimPy ``env`` in scaled wall time.

This is the edge of the system: the only place that reads the wall clock (``time.monotonic``).
Simulated time runs ``compression`` times faster than the wall (3600: one simulated hour per wall
second). A background task advances the env every ``step_s`` wall seconds so business processes
(picking, transit, webhooks) happen without requests; ``sync()`` brings the env up to the present
before a request acts, so a request never sees a stale world.

Lag is how far (in wall seconds) the env is behind where it should be. It grows when the event loop
is starved (a blocking handler, a burst of simulated events); ``max_lag_seen`` keeps the worst, and
``lag_exceeded`` flags a run whose live timings can no longer be trusted against the scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable

import simpy

log = logging.getLogger(__name__)


def wall_time() -> float:
    """Monotonic wall seconds: the clock rate limits and webhook timings use in live mode."""
    return time.monotonic()


def _nothing_due(env: simpy.Environment, target: float) -> bool:
    """True when ``env.run(until=target)`` would process no event with an effect.

    Events it would process that have no callbacks are processed here (marked as ``step`` marks
    them): SimPy 4.1 leaves one such behind after every ``run(until=...)`` (the stop event,
    rescheduled at priority -1), so without this every sync would find "something due". Ordering
    as ``run``'s: before ``target``, or at ``target`` ahead of its URGENT stop event. Reads SimPy's
    queue (``_queue``, stable through 4.x); without one it answers False (run as before).
    """
    queue = getattr(env, "_queue", None)
    if queue is None:
        return False
    while queue:
        t, prio, _, event = queue[0]
        if t > target or (t == target and prio > 0):
            return True
        if event.callbacks or not event._ok:
            return False  # real work (or a failure to raise): let env.run do it
        heapq.heappop(queue)
        event.callbacks = None
    return True


class LiveClock:
    def __init__(
        self,
        env: simpy.Environment,
        compression: float = 3600.0,
        max_lag: float = 0.5,
        *,
        step_s: float = 0.02,
        wall: Callable[[], float] = wall_time,
    ) -> None:
        if compression <= 0 or max_lag <= 0 or step_s <= 0:
            raise ValueError("compression, max_lag and step_s must be > 0")
        self.env = env
        self.compression = compression
        self.max_lag = max_lag
        self.step_s = step_s
        self._wall = wall
        self._origin_wall: float | None = None
        self._origin_sim = env.now
        self.lag = 0.0
        self.max_lag_seen = 0.0
        self.lag_exceeded = False
        self.failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, env: simpy.Environment, live: object) -> LiveClock:
        """From a scenario's ``LiveSettings`` (``compression``, ``max_clock_lag_s``)."""
        return cls(env, live.compression, live.max_clock_lag_s)  # type: ignore[attr-defined]

    # ----------------------------------------------------------------- time

    def _anchor(self) -> None:
        if self._origin_wall is None:
            self._origin_wall = self._wall()
            self._origin_sim = self.env.now

    def rebind(self, env: simpy.Environment) -> None:
        """Follow a fresh env (the control API's reset rebuilt the core); re-anchors time."""
        self.env = env
        self._origin_wall = None
        self._origin_sim = env.now
        self.failure = None
        self._anchor()

    def anchor_epoch(self, epoch: float) -> None:
        """Put simulated ``env.now`` at the Unix time ``epoch`` (may be in the future: the env holds
        until then). Live runs give every mock process the same epoch, so their simulated clocks
        agree to within the OS clock's precision instead of each starting at its own lifespan."""
        self._origin_wall = self._wall() + (epoch - time.time())
        self._origin_sim = self.env.now

    def wall_now(self) -> float:
        """Wall seconds since the clock was anchored (first ``start`` or ``sync``)."""
        self._anchor()
        assert self._origin_wall is not None
        return self._wall() - self._origin_wall

    def target(self) -> float:
        """Where simulated time should be now."""
        return self._origin_sim + self.wall_now() * self.compression

    @property
    def now(self) -> float:
        return self.env.now

    def _measure(self) -> float:
        lag = max(0.0, (self.target() - self.env.now) / self.compression)
        self._note_lag(lag)
        return lag

    def sync(self) -> float:
        """Advance the env to the present; returns ``env.now``. Cheap when already there, and when
        no event is due before the present: then simulated time just moves (``env.run`` would
        schedule a stop event and unwind with an exception to do the same, ~10 us a request)."""
        if self.failure is not None:
            raise RuntimeError("the simulation failed; see LiveClock.failure") from self.failure
        env = self.env
        target = self.target()
        now = env.now
        if target > now:
            self._note_lag((target - now) / self.compression)
            if _nothing_due(env, target):
                env._now = target  # what ``env.run(until=target)`` would leave; SimPy has no setter
            else:
                try:
                    env.run(until=target)
                except BaseException as e:
                    self.failure = e
                    raise
        # What remains is the time the run itself took: the lag the next request would see.
        self.lag = self._measure()
        return env.now

    def _note_lag(self, lag: float) -> None:
        if lag > self.max_lag_seen:
            self.max_lag_seen = lag
        if lag > self.max_lag:
            self.lag_exceeded = True

    def status(self) -> dict[str, float | bool | str | None]:
        return {
            "now": self.env.now,
            "target": self.target(),
            "compression": self.compression,
            "lag_s": self.lag,
            "max_lag_seen_s": self.max_lag_seen,
            "max_lag_s": self.max_lag,
            "lag_exceeded": self.lag_exceeded,
            "running": self.running,
            "failure": repr(self.failure) if self.failure else None,
        }

    # ----------------------------------------------------------------- background task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start advancing in the running event loop (idempotent)."""
        if self.running:
            return
        self._anchor()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="twin-live-clock")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                self.sync()
            except Exception:
                log.exception("live clock stopped: the simulation raised")
                return
            await asyncio.sleep(self.step_s)
