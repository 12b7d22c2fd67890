"""The simulated network of virtual mode: integration -> mock calls, and mock -> integration webhooks.

Both directions take simulated time and faults from ``mocks.faults`` (through each system's
``mocks.gateway.Gateway``), so a virtual run sees the same latency and fault semantics as a live one:

- a call is decided (``gateway.decide``), admitted (idempotency), then executed by the core when it
  *arrives*, ``latency_s`` later. The client waits at most its attempt timeout: if the server is
  slower, the client sees a timeout at its deadline while the server still processes the request at
  arrival -- which is exactly how a naive integration creates duplicates;
- ``error`` / ``rate_limited``: answered without processing (429 carries Retry-After);
- ``timeout``: processed first when ``after_commit``, then no answer: the client times out;
- ``reset``: processed first when ``after_commit``, then a connection error;
- ``truncate``: processed, the body cannot be decoded; ``dribble``: processed, the body takes
  ``hang_s`` longer to arrive.

Transport contract for the SimPy interpreter: ``network.send(call, headers, timeout_s)`` is a SimPy
generator (``result = yield from network.send(...)`` inside a process) returning a
``reference_integration.effects.Result`` (any status) or a ``CallFailed`` (timeout, connection error,
malformed body). It never raises for network conditions.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import simpy

from mocks.core.base import Request, Response, WebhookEvent
from mocks.faults import Action, Decision, WebhookDecision, fault_response
from reference_integration.effects import Call, Result
from reference_integration.errors import CallFailed, CallTimeout, ConnectionFailed, MalformedResponse
from sim.rng import Streams
from sim.scenario import Scenario, WebhookPolicy

SimGen = Generator[simpy.Event, Any, Any]
Dispatch = Callable[[dict[str, Any]], bool | None]
_LOWER: dict[tuple[str, ...], tuple[str, ...]] = {}  # header names -> lower case (a handful of sets)
_OK = Action.ok


def _result(resp: Response) -> Result:
    return Result(resp.status, resp.body, dict(resp.headers))


@dataclass(slots=True)
class NetStats:
    calls: int = 0
    timeouts: int = 0
    resets: int = 0
    truncated: int = 0
    late_commits: int = 0  # processed after the client had given up (the duplicate factory)
    webhooks: int = 0
    webhook_deliveries: int = 0
    webhook_dropped: int = 0
    webhook_lost: int = 0
    webhook_retries: int = 0


class SimNetwork:
    """Calls from the integration to the four mocks, in simulated time."""

    def __init__(
        self,
        env: simpy.Environment,
        gateways: Mapping[str, Any],
        scenario: Scenario | None = None,
        streams: Streams | None = None,
        *,
        copy_bodies: bool = False,
    ) -> None:
        self.env = env
        self.gateways = dict(gateways)
        self.copy_bodies = copy_bodies  # isolate core state from callers that mutate bodies
        self.stats = NetStats()
        # Gateways without a fault engine (plain ``decide`` missing) get the profile latency only.
        streams = streams or Streams(scenario.seed if scenario else 0)
        self._plain: dict[str, Callable[[], float]] = {}
        if scenario is not None:
            for s, prof in scenario.systems.items():
                self._plain[str(s)] = prof.latency.sampler(streams.py(f"latency.{s}"))

    # ----------------------------------------------------------------- requests

    def request(self, call: Call, headers: Mapping[str, str]) -> Request:
        # The interpreter sends the same few header names on every call: lower-case each set of
        # names once, then pair them with the values (a later duplicate name wins, as before; for
        # three or four headers a comprehension beats dict(zip(..., map(str, ...)))).
        names = tuple(headers)
        lower = _LOWER.get(names)
        if lower is None:
            lower = _LOWER[names] = tuple(k.lower() for k in names)
        h = {k: str(v) for k, v in zip(lower, headers.values(), strict=True)}
        if call.idempotency_key and "idempotency-key" not in h:
            h["idempotency-key"] = call.idempotency_key
        if call.correlation_id and "x-correlation-id" not in h:
            h["x-correlation-id"] = call.correlation_id
        client = h.get("x-client-id")
        if not client:
            auth = h.get("authorization", "")
            client = "token:" + auth[7:][:16] if auth.lower().startswith("bearer ") else "integration"
        body = copy.deepcopy(call.payload) if self.copy_bodies else call.payload
        params = call.params
        return Request(call.operation, body, {k: str(v) for k, v in params.items()} if params else {}, h, client)

    def decide(self, system: str, gw: Any, req: Request) -> Decision:
        decide = getattr(gw, "decide", None)
        if decide is not None:
            d = decide(req)
            if d.latency_s == 0.0 and getattr(gw, "fault_engine", None) is None and system in self._plain:
                return Decision(self._plain[system]())
            return d
        lat = self._plain.get(system)
        return Decision(lat() if lat else 0.0)

    def __call__(self, call: Call, *args: Any) -> SimGen:
        """Transport for ``SimRuntime`` in either argument order it has used:
        ``(call, headers, timeout_s)`` or ``(call, attempt, timeout_s, headers)``."""
        headers = next((a for a in args if isinstance(a, Mapping)), {})
        numbers = [a for a in args if isinstance(a, int | float) and not isinstance(a, bool)]
        return self.send(call, headers, float(numbers[-1]) if numbers else 30.0)

    def send(self, call: Call, headers: Mapping[str, str], timeout_s: float) -> SimGen:
        """One attempt of ``call``; returns ``Result`` or ``CallFailed`` (see module docstring)."""
        env = self.env
        system, op = call.system, call.operation
        self.stats.calls += 1
        gw = self.gateways.get(system)
        if gw is None:
            return ConnectionFailed(system, op, reason=f"no such system {system!r}")
        req = self.request(call, headers)
        d = self.decide(system, gw, req)
        lat = max(0.0, d.latency_s)
        action = d.action
        if action is _OK and lat <= timeout_s:
            # The common case, the last branch below without its fault tests: answered in time.
            adm = gw.admit(req)
            yield env.timeout(lat)
            resp = adm if isinstance(adm, Response) else gw.execute(adm)  # as ``_execute``
            if self.copy_bodies and resp.body is not None:
                return Result(resp.status, copy.deepcopy(resp.body), dict(resp.headers))
            return Result(resp.status, resp.body, dict(resp.headers))  # as ``_result``
        deadline = env.now + timeout_s

        if action is not _OK and not d.processes:
            if action in (Action.error, Action.rate_limited):
                if lat >= timeout_s:
                    yield env.timeout(timeout_s)
                    return self._timeout(system, op)
                yield env.timeout(lat)
                return _result(fault_response(d))
            # timeout / reset before commit: nothing reaches the core
            if action is Action.reset and lat < timeout_s:
                yield env.timeout(lat)
                self.stats.resets += 1
                return ConnectionFailed(system, op, reason="connection_reset")
            yield env.timeout(timeout_s)
            return self._timeout(system, op)

        adm = gw.admit(req)
        answered_at = lat + (d.hang_s if action is Action.dribble else 0.0)
        client_gives_up = action is Action.timeout or answered_at > timeout_s
        if client_gives_up:
            if lat > timeout_s:
                # The server keeps going after the client hung up: schedule the commit at arrival.
                ev = env.timeout(lat)
                ev.callbacks.append(lambda _e, adm=adm: self._late(gw, adm))
            else:
                yield env.timeout(lat)
                self._execute(gw, adm)
            wait = deadline - env.now
            if wait > 0:
                yield env.timeout(wait)
            return self._timeout(system, op)

        yield env.timeout(lat)
        resp = adm if isinstance(adm, Response) else gw.execute(adm)  # as ``_execute``
        if action is not _OK:
            if action is Action.reset:
                self.stats.resets += 1
                return ConnectionFailed(system, op, reason="connection_reset")
            if action is Action.truncate:
                self.stats.truncated += 1
                return MalformedResponse(system, op, resp.status, reason="truncated_body")
            if action is Action.dribble and d.hang_s > 0:
                yield env.timeout(d.hang_s)
        if self.copy_bodies and resp.body is not None:
            return Result(resp.status, copy.deepcopy(resp.body), dict(resp.headers))
        return Result(resp.status, resp.body, dict(resp.headers))  # as ``_result``

    # ``SimRuntime`` runs this inline in the workflow's process: ``send`` always answers by
    # ``timeout_s`` (at the deadline with a CallTimeout when the server is slower).
    send_within_deadline = send

    def _timeout(self, system: str, op: str) -> CallFailed:
        self.stats.timeouts += 1
        return CallTimeout(system, op)

    def _execute(self, gw: Any, adm: Any) -> Response:
        if isinstance(adm, Response):
            return adm  # idempotency replay / 409 in flight / 422 key reuse
        return gw.execute(adm)

    def _late(self, gw: Any, adm: Any) -> None:
        if not isinstance(adm, Response):
            self.stats.late_commits += 1
            gw.execute(adm)


# --------------------------------------------------------------------------------------- webhooks


def envelope(ev: WebhookEvent, start: str | None = None, data: Any = None) -> dict[str, Any]:
    """The webhook envelope of docs/internals.md, as the live sender builds it (``occurred_at`` ISO
    8601 from the scenario start): ``mocks.webhooks.envelope``, with the start parsed once per
    run instead of per event (``tests/test_network.py`` holds the two equal)."""
    at = _WEBHOOKS
    if not at:
        # Lazily (mocks.webhooks imports httpx), once: an import statement here, run per webhook,
        # was ~1 % of a run's simulate phase.
        from mocks.webhooks import DEFAULT_START, envelope_at

        at[:] = (DEFAULT_START, envelope_at)
    default_start, envelope_at = at
    return envelope_at(ev, _occurred_at(ev.occurred_at, default_start if start is None else start), data)


_WEBHOOKS: list[Any] = []  # mocks.webhooks' (DEFAULT_START, envelope_at), once imported


@functools.lru_cache(maxsize=8)
def _naive_start(start: str) -> datetime:
    return datetime.fromisoformat(start).replace(tzinfo=None)


def _occurred_at(t: float, start: str) -> str:
    # = mocks.webhooks.occurred_at_iso: wall-clock arithmetic on the start as written, then "Z"
    # (an aware start + timedelta is naive arithmetic, so dropping the offset first is the same).
    # Events come in bursts at one instant (a pickup scans every parcel): remember the last one.
    last = _LAST_OCCURRED
    if last[0] == t and last[1] == start:
        return last[2]
    text = (_naive_start(start) + timedelta(seconds=t)).isoformat(timespec="milliseconds") + "Z"
    last[:] = (t, start, text)
    return text


_LAST_OCCURRED: list[Any] = [None, None, ""]


class WebhookNetwork:
    """Delivers core webhooks to the integration after a network latency, applying webhook faults.

    ``emit_for(system)`` is the ``emit`` callback to hand to a core. ``dispatch(envelope)`` is the
    integration's receiver: returning False (or raising) means "not accepted" and is redelivered
    with exponential backoff up to ``policy.max_attempts``, like the live sender does.
    """

    def __init__(
        self,
        env: simpy.Environment,
        dispatch: Dispatch | None,
        streams: Streams,
        *,
        engines: Mapping[str, Any] | None = None,
        policy: WebhookPolicy | None = None,
        latency: Mapping[str, Callable[[], float]] | None = None,
        start: str | None = None,
    ) -> None:
        self.env = env
        self.start = start
        self.dispatch = dispatch
        self.streams = streams
        self.engines = dict(engines or {})
        self.policy = policy or WebhookPolicy()
        self.latency = dict(latency or {})
        self.stats = NetStats()
        self.in_flight = 0

    def _lat(self, system: str) -> float:
        f = self.latency.get(system)
        if f is None:
            f = self.latency[system] = self.policy.latency.sampler(self.streams.py(f"webhook.{system}"))
        return f()

    def emit_for(self, system: str) -> Callable[[WebhookEvent], None]:
        return lambda ev: self.emit(system, ev)

    def emit(self, system: str, ev: WebhookEvent) -> None:
        self.stats.webhooks += 1
        engine = self.engines.get(system)
        decide = getattr(engine, "decide_webhook", None)
        wd: WebhookDecision = decide(ev.type, self.env.now) if decide is not None else WebhookDecision()
        drifted = engine.drift(ev.type, ev.data, ev.occurred_at) if getattr(engine, "has_drift", False) else None
        env_ = envelope(ev, self.start, drifted)
        for copy_no in range(max(1, wd.copies)):
            delay = self._lat(system) + wd.extra_delay_s
            if wd.drop and copy_no == 0:
                self.stats.webhook_dropped += 1
                if wd.redeliver_after_s is None:
                    self.stats.webhook_lost += 1
                    continue
                delay += wd.redeliver_after_s
            # Malformed: every copy and every retry carries the same broken bytes (as live does).
            self._schedule(system, env_, delay, 1, wd.malformed)

    def _schedule(self, system: str, env_: dict[str, Any], delay: float, attempt: int, fail: bool = False) -> None:
        self.in_flight += 1
        ev = self.env.timeout(delay)
        ev.callbacks.append(lambda _e: self._deliver(system, env_, attempt, fail))

    def _deliver(self, system: str, env_: dict[str, Any], attempt: int, fail: bool) -> None:
        self.in_flight -= 1
        self.stats.webhook_deliveries += 1
        ok = False
        if not fail and self.dispatch is not None:
            try:
                ok = self.dispatch(env_) is not False
            except Exception:  # the receiver's 500: the sender retries, as in live mode
                ok = False
        if ok:
            return
        if attempt >= self.policy.max_attempts:
            self.stats.webhook_lost += 1
            return
        self.stats.webhook_retries += 1
        backoff = self.policy.backoff * (2 ** (attempt - 1))
        self._schedule(system, env_, backoff + self._lat(system), attempt + 1, fail)
