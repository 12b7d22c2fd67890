"""The path every request to a mock takes, in either clock: a fault decision, admission
(idempotency), then the core's synchronous ``handle``.

Split in steps so that the time between them (injected latency) counts as "in flight" for
Idempotency-Key conflicts and concurrency limits, under SimPy time and wall time alike:

- virtual mode (``sim/network.py``): ``d = gateway.decide(req)``; if ``d.processes`` is false answer
  ``fault_response(d)`` (error, rate limited) or nothing (timeout/reset) after ``d.latency_s``;
  otherwise ``adm = gateway.admit(req)``, wait ``d.latency_s``, then ``gateway.execute(adm)``
  (``gateway.fail(adm)`` when the request dies before the core sees it);
- live mode: ``await gateway.call(req)`` does all of that with asyncio and the live clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mocks.core.base import Request, Response, SystemCore
from mocks.core.idempotency import IdempotencyStore, fingerprint
from mocks.faults import Action, Decision, FaultEngine, fault_response
from sim.scenario import ApiProfile

_NO_FAULTS = Decision(0.0)


class ConnectionDropped(Exception):  # noqa: N818 - it is what the client experiences
    """Raised by ``Gateway.call`` for a ``reset`` fault; the app's middleware turns it into a
    connection closed without a (complete) response."""


@dataclass(slots=True)
class Admitted:
    """A request allowed through to the core; ``key`` set when it holds an idempotency record."""

    req: Request
    key: str | None


@dataclass(slots=True)
class Dribble:
    """A response body to be sent slowly: ``data`` in ``chunks`` pieces over ``duration_s``."""

    data: bytes
    duration_s: float
    chunks: int = 20


class Gateway:
    def __init__(
        self,
        core: SystemCore,
        idempotency: str | ApiProfile = "honour",
        fault_engine: FaultEngine | None = None,
        clock: Any = None,
        *,
        api_time: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        """``idempotency``: "honour"/"ignore", or an ``ApiProfile`` (its ``idempotency`` is used and,
        without an explicit ``fault_engine``, a ``FaultEngine`` is built from it). ``clock``: a
        ``sim.clock.LiveClock`` synced before each live request. ``api_time``: the clock rate limits
        count in (default: the live clock's wall time, else ``core.env.now``)."""
        self.core = core
        if isinstance(idempotency, ApiProfile):
            profile = idempotency
            self.idempotency = profile.idempotency
            if fault_engine is None:
                fault_engine = FaultEngine(core.system, profile, (), getattr(core, "streams", None))
        else:
            self.idempotency = idempotency  # "honour" or "ignore" (legacy system)
        self.fault_engine = fault_engine
        self.clock = clock
        self._api_time = api_time
        self._sleep = sleep
        self.store = IdempotencyStore()
        self.in_flight = 0

    # ----------------------------------------------------------------- steps (both clocks)

    def api_now(self) -> float:
        if self._api_time is not None:
            return self._api_time()
        if self.clock is not None:
            return self.clock.wall_now()
        return self.core.env.now

    def decide(self, req: Request) -> Decision:
        """The fault decision for ``req`` now; a shared constant when no engine is configured."""
        fe = self.fault_engine
        if fe is None:
            return _NO_FAULTS
        now = self.core.env.now
        # ``api_now()`` inlined (once per request)
        if self._api_time is not None:
            api_now = self._api_time()
        elif self.clock is not None:
            api_now = self.clock.wall_now()
        else:
            api_now = now
        return fe.decide(req.op, req.client_id, now, self.in_flight, api_now)

    def admit(self, req: Request) -> Admitted | Response:
        route = self.core.routes.get(req.op)
        key = req.headers.get("idempotency-key")  # ``req.idempotency_key``
        if route is None or not route.mutating or key is None or self.idempotency == "ignore":
            self.in_flight += 1
            return Admitted(req, None)
        answer = self.store.begin(req.client_id, key, fingerprint(req.op, req.body), self.core.env.now)
        if answer is not None:
            return answer
        self.in_flight += 1
        return Admitted(req, key)

    def execute(self, adm: Admitted) -> Response:
        self.in_flight -= 1
        req = adm.req
        resp = self.core.handle(req)
        if adm.key is not None:
            self.store.complete(req.client_id, adm.key, resp)
        fe = self.fault_engine
        if fe is not None and fe.has_drift and resp.body is not None:
            resp = Response(resp.status, fe.drift(req.op, resp.body, self.core.env.now), resp.headers)
        return resp

    def fail(self, adm: Admitted) -> None:
        """The request failed before the core processed it (injected error, outage, reset)."""
        self.in_flight -= 1
        if adm.key is not None:
            self.store.abandon(adm.req.client_id, adm.key)

    def serve(self, req: Request) -> Response:
        """Admit and execute at once (no latency, no faults): for tests and in-process use."""
        adm = self.admit(req)
        return adm if isinstance(adm, Response) else self.execute(adm)

    def reset(self) -> None:
        """Forget idempotency records (the control API's reset)."""
        self.store.clear()

    # ----------------------------------------------------------------- live

    def _sync(self) -> None:
        if self.clock is not None:
            self.clock.sync()

    async def call(self, req: Request, info: dict[str, Any] | None = None) -> Response:
        """Serve one live request: latency and faults in wall time, the core at the synced sim time.

        ``info`` (optional) receives ``fault`` (the action taken when not ok) and ``window``, for the
        request journal.
        """
        self._sync()
        d = self.decide(req)
        if d.action is not Action.ok and info is not None:
            info["fault"] = d.action.value
            info["window"] = d.window
        if d.action in (Action.error, Action.rate_limited):
            if d.latency_s > 0:
                await self._sleep(d.latency_s)
            return fault_response(d)
        adm = self.admit(req)
        if d.latency_s > 0:
            try:
                await self._sleep(d.latency_s)
            except BaseException:
                # Client gone / server shutting down during the latency: the core never saw it.
                if isinstance(adm, Admitted):
                    self.fail(adm)
                raise
        if isinstance(adm, Response):
            return adm  # idempotency replay, 409 in flight or 422 reused key
        if d.latency_s > 0:
            # Only a latency sleep lets the world move on; without one the sync above is current
            # (and a sync runs the env: a second one per request was ~5 % of a mock's CPU).
            self._sync()
        if d.action is Action.ok:
            return self.execute(adm)
        if d.action in (Action.timeout, Action.reset):
            if d.after_commit:
                self.execute(adm)
            else:
                self.fail(adm)
            if d.action is Action.reset:
                raise ConnectionDropped(f"injected reset ({d.window})")
            # Hang past the client's deadline. A client that gave up has closed the connection;
            # uvicorn keeps this task until it finishes, so servers use a short graceful-shutdown
            # timeout (mocks.serve) rather than wait for hung requests.
            await self._sleep(d.hang_s)
            return Response(504, {"error": "gateway_timeout", "message": f"injected timeout ({d.window})"})
        resp = self.execute(adm)
        raw = b"" if resp.body is None else json.dumps(resp.body, separators=(",", ":")).encode()
        if d.action is Action.truncate:
            return Response(resp.status if resp.ok else 200, raw[: len(raw) // 2], resp.headers)
        return Response(resp.status, Dribble(raw, d.hang_s), resp.headers)  # after the latency, as virtual
