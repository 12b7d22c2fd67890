"""SimPy interpreter of integration workflows (virtual mode).

The transport is the simulated network (``sim/network.py``): a callable

    transport(call: Call, attempt: int, timeout_s: float, headers: dict[str, str])
        -> SimPy generator (or Event) whose value is a ``Result`` (any HTTP status) or a
           ``CallFailed`` (``CallTimeout``, ``ConnectionFailed``, ``MalformedResponse``); raising
           the ``CallFailed`` instead is accepted too

(wrap ``sim.network.SimNetwork.send(call, headers, timeout_s)`` as ``sim.virtual`` does.)

``headers`` carries what the live interpreter would send: ``X-Client-Id``, ``X-Correlation-Id``,
``Idempotency-Key`` (only when the profile uses keys), ``Authorization: Bearer`` for ERP.
The runtime enforces ``timeout_s`` itself too: if the transport has not answered by then the
attempt is a ``CallTimeout`` and the transport process is left to finish on its own (the request
may still be processed downstream, as in real life). A transport that guarantees an answer by
the deadline itself exposes ``send_within_deadline(call, headers, timeout_s)`` (``SimNetwork``
does): it then runs inside the workflow's process, with no extra process, timer or condition.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from reference_integration.config import IntegrationConfig
from reference_integration.effects import Call, Result
from reference_integration.errors import CallFailed, CallTimeout
from reference_integration.policies import Bulkhead
from reference_integration.runtime_core import Acquire, Engine, FetchToken, OpGen, RuntimeView, Send, Wait
from reference_integration.store import MemoryStore, Store
from sim.rng import Streams

Transport = Callable[[Call, int, float, dict[str, str]], Any]


class SimRuntime(RuntimeView):
    def __init__(
        self,
        env: simpy.Environment,
        config: IntegrationConfig,
        transport: Transport,
        streams: Streams,
        store: Store | None = None,
    ) -> None:
        self.env = env
        self.config = config
        self.transport = transport
        if store is None:
            # The due-time index lets the audit sweep skip the open orders it would only read and
            # pass over (``reconciliation.DueIndex``): same audits, cost linear in the orders.
            from reference_integration.reconciliation import DueIndex

            store = MemoryStore(clock=lambda: env.now, index=DueIndex(), keep_inbox=False)
        self.store: Store = store
        self.engine = Engine(config, streams.py("integration.jitter"), lambda: env.now, self.store, wake=self._wake)
        self.engine.store_now = lambda: env.now
        self._token_fetch: dict[str, simpy.Event] = {}

    # ------------------------------------------------------------------------------ public

    def spawn(self, workflow: Generator[Any, Any, Any], name: str = "workflow", payload: Any = None) -> simpy.Process:
        """Start a workflow; the process's value is the workflow's return value."""
        return self.env.process(self._exec(self.engine.drive(workflow, name, payload)))

    def _now(self) -> float:
        return float(self.env.now)

    # ------------------------------------------------------------------------------ ops

    @property
    def transport(self) -> Transport:
        return self._transport

    @transport.setter
    def transport(self, transport: Transport) -> None:
        # Looked up once, not per attempt (see ``_send``).
        self._transport = transport
        self._inline = getattr(transport, "send_within_deadline", None)

    def _exec(self, gen: OpGen) -> Generator[simpy.Event, Any, Any]:
        send: Any = None
        throw: BaseException | None = None
        env = self.env
        while True:
            try:
                op = gen.throw(throw) if throw is not None else gen.send(send)
            except StopIteration as stop:
                return stop.value
            send, throw = None, None
            t = type(op)  # exact types first: the ops are final dataclasses
            if t is Send or isinstance(op, Send):
                inline = self._inline
                if inline is not None:
                    # The simulated network answers by the deadline itself (a CallTimeout at the
                    # latest, the server finishing on its own): run it in this process, one SimPy
                    # event per attempt instead of a process, a timer and a condition.
                    send = yield from inline(op.call, op.headers, op.timeout_s)
                else:
                    send = yield from self._send(op)
            elif t is Wait or isinstance(op, Wait):
                if op.seconds > 0:
                    yield env.timeout(op.seconds)
            elif t is Acquire or isinstance(op, Acquire):
                if not op.bulkhead.try_acquire():
                    ev = env.event()
                    op.bulkhead.enqueue(ev)
                    yield ev  # the slot is handed over by release() -> _wake
            elif isinstance(op, FetchToken):
                try:
                    yield from self._token(op.system)
                except CallFailed as e:
                    throw = e
            else:  # pragma: no cover - Engine only yields the four ops
                throw = TypeError(f"unknown op {op!r}")

    def _wake(self, waiter: Any, bulkhead: Bulkhead) -> None:
        waiter.succeed()

    def _attempt(self, op: Send) -> Generator[Any, Any, Result | CallFailed]:
        try:
            out = self.transport(op.call, op.attempt, op.timeout_s, op.headers)
            if isinstance(out, simpy.Event):
                out = yield out
            elif isinstance(out, Generator):
                out = yield from out
            return out
        except CallFailed as e:
            return e

    def _send(self, op: Send) -> Generator[simpy.Event, Any, Result | CallFailed]:
        inline = self._inline
        if inline is not None:  # see ``_exec``
            return (yield from inline(op.call, op.headers, op.timeout_s))
        proc = self.env.process(self._attempt(op))
        timer = self.env.timeout(op.timeout_s)
        yield proc | timer
        if proc.triggered:
            return proc.value
        return CallTimeout(op.call.system, op.call.operation)

    def _token(self, system: str) -> Generator[simpy.Event, Any, None]:
        """Single-flight: one token request at a time per system; the others wait for it."""
        cache = self.engine.tokens[system]
        while not cache.valid(self.env.now):
            pending = self._token_fetch.get(system)
            if pending is not None:
                yield pending
                continue
            done = self._token_fetch[system] = self.env.event()
            try:
                yield from self._exec(self.engine.fetch_token(system))
            finally:
                del self._token_fetch[system]
                done.succeed()
