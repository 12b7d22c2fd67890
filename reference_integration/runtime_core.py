"""The part of the interpreters both clocks share, written sans-I/O like the workflows themselves.

``Engine.drive(workflow)`` runs a workflow generator and answers its effects. Effects that need no
waiting (``Now``, ``StateGet``/``StatePut``, ``Publish``) are answered here; a ``Call`` goes through
the per-system policy stack (client rate limiter -> bulkhead -> circuit breaker -> attempt with
timeout -> status-aware retry with full-jitter backoff honouring Retry-After; ERP OAuth token
attached and refreshed on 401). Whatever needs waiting or I/O is yielded as one of four *ops*,
which the SimPy and the asyncio interpreter each implement in a few lines:

- ``Wait(seconds)`` -> sleep; returns None
- ``Acquire(system, bulkhead)`` -> return once a slot is held (``try_acquire`` or enqueue a waiter
  that ``Engine.wake`` will be asked to wake)
- ``Send(call, headers, attempt, timeout_s)`` -> one attempt; returns a ``Result`` (any status) or a
  ``CallFailed`` (timeout, reset, malformed body), never raises
- ``FetchToken(system)`` -> ensure ``engine.tokens[system]`` is valid, typically by running
  ``engine.fetch_token(system)`` single-flight; raise ``CallFailed`` if it cannot

So retry, breaker and bulkhead behave identically in virtual and live mode by construction.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, MutableSequence
from dataclasses import dataclass, replace
from typing import Any

from reference_integration.config import IntegrationConfig
from reference_integration.effects import (
    Call,
    DueOrders,
    Now,
    Publish,
    Result,
    Sleep,
    StateAdd,
    StateGet,
    StateGetMany,
    StatePut,
)
from reference_integration.errors import BreakerOpen, CallFailed, from_response
from reference_integration.metrics import CallRecord, CallTable, RuntimeStats, render_prometheus
from reference_integration.policies import (
    Bulkhead,
    SystemGuard,
    TokenCache,
    breaker_failure,
    dlq_category,
    outcome_of,
    should_retry,
)
from reference_integration.store import MemoryStore, Store

# The ops are treated as immutable, but not frozen: one or two are built per call, and a frozen
# dataclass costs ~2x to construct (as ``mocks.faults.Decision``).


@dataclass(slots=True)
class Wait:
    seconds: float


@dataclass(slots=True)
class Acquire:
    system: str
    bulkhead: Bulkhead


@dataclass(slots=True)
class Send:
    call: Call
    headers: dict[str, str]
    attempt: int
    timeout_s: float


@dataclass(slots=True)
class FetchToken:
    system: str


Op = Wait | Acquire | Send | FetchToken
OpGen = Generator[Op, Any, Any]
Subscriber = Callable[[str, dict[str, Any]], None]


class Engine:
    def __init__(
        self,
        config: IntegrationConfig,
        rng: random.Random,
        now: Callable[[], float],
        store: Store | None = None,
        wake: Callable[[Any, Bulkhead], None] | None = None,
    ) -> None:
        self.config = config
        self.rng = rng
        self.now = now
        self.store: Store = store if store is not None else MemoryStore(clock=now)
        self.wake = wake or (lambda waiter, bulkhead: None)
        self.stats = RuntimeStats()
        self.guards: dict[str, SystemGuard] = {}
        self.tokens: dict[str, TokenCache] = {s: TokenCache() for s in config.auth}
        self.busy = 0
        # Timestamps for DLQ / exception rows: simulated time in virtual mode (set by SimRuntime);
        # None = the store's own clock (wall time in the live service).
        self.store_now: Callable[[], float] | None = None
        self.published: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        self.subscribers: dict[str, list[Subscriber]] = {}

    # ------------------------------------------------------------------------------ accessors

    def guard(self, system: str) -> SystemGuard:
        g = self.guards.get(system)
        if g is None:
            g = self.guards[system] = SystemGuard.build(self.config.policies(system), self.rng)
        return g

    @property
    def breakers(self) -> dict[str, Any]:
        return {s: g.breaker for s, g in self.guards.items() if g.breaker is not None}

    def breaker_opens(self) -> dict[str, int]:
        return {s: b.opens for s, b in self.breakers.items()}

    def subscribe(self, topic: str, fn: Subscriber) -> None:
        """``fn(topic, event)`` runs synchronously when a workflow publishes to ``topic`` ("*": all)."""
        self.subscribers.setdefault(topic, []).append(fn)

    # ------------------------------------------------------------------------------ workflows

    def drive(self, workflow: Generator[Any, Any, Any], name: str = "workflow", payload: Any = None) -> OpGen:
        """Run one workflow to completion. A ``CallFailed`` the workflow does not catch is
        dead-lettered (DLQ on) or dropped and counted (DLQ off); other exceptions are bugs and
        propagate."""
        self.busy += 1
        self.stats.workflows_started += 1
        send: Any = None
        throw: BaseException | None = None
        store = self.store
        try:
            while True:
                try:
                    eff = workflow.throw(throw) if throw is not None else workflow.send(send)
                except StopIteration as stop:
                    return stop.value
                except CallFailed as e:
                    self.stats.workflows_failed += 1
                    self._dead_letter(
                        {"category": e.category, "reason": e.reason, "error": e.to_dict(), "payload": payload}, name
                    )
                    return None
                send, throw = None, None
                # Exact-type tests first, by frequency (state reads, writes, calls, Now): an ``is``
                # is far cheaper than a chain of isinstance calls. Subclasses of the effect types
                # still reach the isinstance chain below.
                t = type(eff)
                if t is StateGet:
                    send = store.get_state(eff.key)
                elif t is StatePut:
                    store.put_state(eff.key, eff.value)
                elif t is Call:
                    try:
                        send = yield from self.run_call(eff, name)
                    except CallFailed as e:
                        throw = e
                elif t is Now:
                    send = self.now()
                elif t is StateAdd:
                    # None without store support: the workflow falls back to StateGet + StatePut.
                    add = getattr(store, "state_add", None)
                    send = None if add is None else add(eff.key, eff.member)
                elif t is StateGetMany:
                    many = getattr(store, "get_states", None)
                    send = many(eff.keys) if many is not None else [store.get_state(k) for k in eff.keys]
                elif isinstance(eff, Call):
                    try:
                        send = yield from self.run_call(eff, name)
                    except CallFailed as e:
                        throw = e
                elif isinstance(eff, Sleep):
                    yield Wait(max(0.0, eff.seconds))
                elif isinstance(eff, Now):
                    send = self.now()
                elif isinstance(eff, StateGet):
                    send = store.get_state(eff.key)
                elif isinstance(eff, StatePut):
                    store.put_state(eff.key, eff.value)
                elif isinstance(eff, StateAdd):
                    # None without store support: the workflow falls back to StateGet + StatePut.
                    add = getattr(store, "state_add", None)
                    send = None if add is None else add(eff.key, eff.member)
                elif isinstance(eff, Publish):
                    self.publish(eff.topic, eff.event, name)
                elif isinstance(eff, DueOrders):
                    index = getattr(store, "index", None)
                    send = index.due(eff.start, eff.now) if index is not None else None
                else:
                    throw = TypeError(f"workflow {name!r} yielded {eff!r}, which is not an effect")
        finally:
            self.busy -= 1

    def publish(self, topic: str, event: dict[str, Any], workflow: str = "") -> None:
        """DLQ and exception-queue routing; every topic is also kept in ``published`` and fanned out."""
        if topic == "dlq":
            self._dead_letter(event, workflow)
        elif topic == "exceptions":
            self.store.exceptions_add(
                str(event.get("reason", "")), workflow, event.get("payload", event), now=self._stamp()
            )
        self.published.setdefault(topic, []).append((self.now(), event))
        for fn in (*self.subscribers.get(topic, ()), *self.subscribers.get("*", ())):
            fn(topic, event)

    def _dead_letter(self, event: dict[str, Any], workflow: str) -> None:
        if not self.config.dlq:
            # Naive profile: the failure is logged and the work is lost (what reconciliation finds).
            self.stats.dropped.append((self.now(), workflow, event))
            return
        cat = event.get("category") or dlq_category(event.get("exception", Exception()))
        cat = cat if cat in ("technical", "business") else "technical"
        wf = str(event.get("workflow") or workflow)
        self.store.dlq_add(cat, str(event.get("reason", "")), wf, event.get("payload", event), now=self._stamp())

    def _stamp(self) -> float | None:
        return self.store_now() if self.store_now is not None else None

    # ------------------------------------------------------------------------------ calls

    def headers_for(self, call: Call) -> dict[str, str]:
        h = {"X-Client-Id": self.config.client_id}
        if call.correlation_id:
            h["X-Correlation-Id"] = call.correlation_id
        if call.idempotency_key and self.config.idempotency:
            h["Idempotency-Key"] = call.idempotency_key
        return h

    def needs_auth(self, call: Call) -> bool:
        auth = self.config.auth.get(call.system)
        return auth is not None and call.operation != auth.operation

    def run_call(self, call: Call, workflow: str = "") -> OpGen:
        """The policy stack around one Call; returns a 2xx ``Result`` or raises ``CallFailed``."""
        system = call.system
        g = self.guards.get(system) or self.guard(system)
        max_attempts = g.backoff.max_attempts
        breaker, bulkhead, limiter = g.breaker, g.bulkhead, g.limiter
        now = self.now
        auth = self.needs_auth(call)
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            headers = self.headers_for(call)
            token = None
            if auth:
                cache = self.tokens[system]
                if not cache.valid(now()):
                    yield FetchToken(system)
                token = cache.token
                headers["Authorization"] = f"Bearer {token}"
            if limiter is not None:
                delay = limiter.reserve(now())
                if delay > 0:
                    yield Wait(delay)
            if bulkhead is not None and not bulkhead.try_acquire():
                # Taken here when free (no op, no round trip through the interpreter); else the
                # interpreter tries again, finds it as taken (nothing ran in between) and waits.
                yield Acquire(system, bulkhead)
            try:
                t0 = now()
                if breaker is not None and not breaker.allow(t0):
                    exc: CallFailed | None = BreakerOpen(
                        system, call.operation, retry_after=breaker.retry_in(t0), attempts=attempt
                    )
                    self._record(call, workflow, attempt, t0, t0, None, exc, headers)
                    if attempt >= max_attempts:
                        raise exc
                    # Retry sits outside the breaker (as in resilience4j's default order): nothing is
                    # sent while it is open, and the call waits for half-open within its retry budget
                    # rather than being dead-lettered on the spot. Jitter spreads the probes.
                    self.stats.retries[system] += 1
                    res = None
                else:
                    res = yield Send(call, headers, attempt, g.policies.timeout)
                t1 = now()
            finally:
                if bulkhead is not None:
                    waiter = bulkhead.release()
                    if waiter is not None:
                        self.wake(waiter, bulkhead)
            if res is None:  # refused by the open breaker, slot released: wait for half-open
                assert breaker is not None
                yield Wait(max(breaker.retry_in(now()), g.backoff.next_delay(attempt - 1)))
                continue
            if type(res) is Result or not isinstance(res, CallFailed):
                status = res.status
                exc = None if status < 400 else from_response(system, call.operation, status, res.body, res.headers)
            else:
                exc, status = res, res.status
            self._record(call, workflow, attempt, t0, t1, status, exc, headers)
            if breaker is not None:
                if breaker_failure(exc):
                    breaker.record_failure(t1)
                else:
                    breaker.record_success(t1)
            if exc is None:
                if type(res) is Result:
                    # The transport's own fresh Result says attempts=1 already on a first attempt;
                    # otherwise a plain construction (dataclasses.replace costs ~10x).
                    return res if res.attempts == attempt else Result(res.status, res.body, res.headers, attempt)
                return replace(res, attempts=attempt)
            if status == 401 and token is not None and not refreshed:
                # Expired or revoked token: refresh once, immediately, without spending a retry.
                self.tokens[system].invalidate(token)
                refreshed = True
                max_attempts += 1
                continue
            if should_retry(exc, attempt, max_attempts):
                self.stats.retries[system] += 1
                yield Wait(g.backoff.next_delay(attempt - 1, exc.retry_after))
                continue
            exc.attempts = attempt
            raise exc

    def _record(
        self,
        call: Call,
        workflow: str,
        attempt: int,
        t0: float,
        t1: float,
        status: int | None,
        exc: CallFailed | None,
        headers: dict[str, str],
    ) -> None:
        # Straight into the stats' columns (``metrics.CallTable``): no CallRecord per attempt.
        self.stats.record_call(
            t0,
            t1,
            call.system,
            call.operation,
            attempt,
            status,
            outcome_of(exc),
            call.correlation_id,
            headers.get("Idempotency-Key"),
            workflow,
        )

    # ------------------------------------------------------------------------------ auth

    def token_call(self, system: str) -> Call:
        auth = self.config.auth[system]
        return Call(system, auth.operation, payload=auth.form())

    def fetch_token(self, system: str) -> OpGen:
        """Run the token call through the same policy stack and fill the cache."""
        res = yield from self.run_call(self.token_call(system), "auth")
        body = res.body if isinstance(res.body, dict) else {}
        token = body.get("access_token")
        if not token:
            raise CallFailed(system, "token", res.status, "technical", "token_missing", retryable=False)
        self.tokens[system].set(str(token), float(body.get("expires_in", 3600)), self.now())
        return token


class RuntimeView:
    """What both interpreters expose about their engine (counters, call records, metrics); each
    says only what its clock reads as "now"."""

    engine: Engine
    store: Store

    def _now(self) -> float:  # pragma: no cover - each interpreter defines its clock
        raise NotImplementedError

    def subscribe(self, topic: str, fn: Callable[[str, dict[str, Any]], None]) -> None:
        self.engine.subscribe(topic, fn)

    @property
    def auth(self) -> dict[str, TokenCache]:
        """OAuth token caches by system (ERP); filled and refreshed by the runtime itself."""
        return self.engine.tokens

    @property
    def calls(self) -> MutableSequence[CallRecord] | CallTable:
        return self.engine.stats.calls

    @property
    def retries(self) -> dict[str, int]:
        return dict(self.engine.stats.retries)

    @property
    def breaker_opens(self) -> dict[str, int]:
        return self.engine.breaker_opens()

    @property
    def busy(self) -> int:
        """Workflows in flight (the integration's backlog)."""
        return self.engine.busy

    def metrics_text(self) -> str:
        return render_prometheus(self.engine.stats, self.engine.breakers, self._now(), self.busy, self.store.dlq_size())
