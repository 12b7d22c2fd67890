"""asyncio + httpx interpreter of integration workflows (live mode).

Same ``Engine`` (and so the same policy objects) as the SimPy interpreter; only the four ops differ:
``Wait`` is ``sleep`` (injectable: tests pass a fake that advances a fake clock), ``Acquire`` parks
an asyncio future in the bulkhead queue, ``Send`` is one HTTP request built from the system's
``Route`` table, ``FetchToken`` runs the ERP client-credentials grant single-flight.

Policy time (breaker reset, backoff, timeouts, token expiry) is the ``clock`` passed in, by default
wall seconds (``time.monotonic``): in live mode API latency and faults are wall-clock.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any
from urllib.parse import quote

import httpx

from mocks.core.base import Route
from reference_integration.config import IntegrationConfig
from reference_integration.effects import Call, Result
from reference_integration.errors import CallFailed, CallTimeout, ConnectionFailed, MalformedResponse
from reference_integration.metrics import CallRecord, render_prometheus
from reference_integration.policies import Bulkhead, TokenCache
from reference_integration.runtime_core import Acquire, Engine, FetchToken, OpGen, Send, Wait
from reference_integration.store import Store

_BODYLESS = {"GET", "DELETE", "HEAD", "OPTIONS"}


def path_fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


class AsyncRuntime:
    def __init__(
        self,
        config: IntegrationConfig,
        clients: dict[str, httpx.AsyncClient],
        routes: dict[str, dict[str, Route]],
        store: Store | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        connection_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        """``connection_errors``: extra exception types meaning "connection dropped" (in-process
        tests pass the mocks' ``ConnectionDropped``, which ``httpx.ASGITransport`` re-raises)."""
        self.config = config
        self.clients = clients
        self.routes = routes
        self.clock = clock
        self.sleep = sleep
        self.connection_errors = (httpx.TransportError, OSError, *connection_errors)
        self.engine = Engine(config, rng or random.Random(0), clock, store, wake=self._wake)
        self.store = self.engine.store
        self._token_fetch: dict[str, asyncio.Event] = {}

    # ------------------------------------------------------------------------------ public

    async def run(self, workflow: Generator[Any, Any, Any], name: str = "workflow", payload: Any = None) -> Any:
        """Drive a workflow to completion; returns its return value."""
        return await self._exec(self.engine.drive(workflow, name, payload))

    async def call(self, call: Call, workflow: str = "") -> Result:
        """One Call through the policy stack, outside any workflow (admin tools, reconciliation)."""
        return await self._exec(self.engine.run_call(call, workflow))

    @property
    def auth(self) -> dict[str, TokenCache]:
        """OAuth token caches by system (ERP); filled and refreshed by the runtime itself."""
        return self.engine.tokens

    async def token(self, system: str = "erp") -> str:
        await self._token(system)
        return str(self.engine.tokens[system].token)

    def subscribe(self, topic: str, fn: Callable[[str, dict[str, Any]], None]) -> None:
        self.engine.subscribe(topic, fn)

    @property
    def calls(self) -> list[CallRecord]:
        return self.engine.stats.calls

    @property
    def retries(self) -> dict[str, int]:
        return dict(self.engine.stats.retries)

    @property
    def breaker_opens(self) -> dict[str, int]:
        return self.engine.breaker_opens()

    @property
    def busy(self) -> int:
        return self.engine.busy

    def metrics_text(self) -> str:
        return render_prometheus(
            self.engine.stats, self.engine.breakers, self.clock(), self.busy, self.store.dlq_size()
        )

    # ------------------------------------------------------------------------------ ops

    async def _exec(self, gen: OpGen) -> Any:
        send: Any = None
        throw: BaseException | None = None
        try:
            while True:
                try:
                    op = gen.throw(throw) if throw is not None else gen.send(send)
                except StopIteration as stop:
                    return stop.value
                send, throw = None, None
                if isinstance(op, Send):
                    send = await self._send(op)
                elif isinstance(op, Wait):
                    if op.seconds > 0:
                        await self.sleep(op.seconds)
                elif isinstance(op, Acquire):
                    await self._acquire(op.bulkhead)
                elif isinstance(op, FetchToken):
                    try:
                        await self._token(op.system)
                    except CallFailed as e:
                        throw = e
                else:  # pragma: no cover
                    throw = TypeError(f"unknown op {op!r}")
        finally:
            # On cancellation, unwind the engine so bulkhead slots and the busy count are returned.
            gen.close()

    async def _acquire(self, bulkhead: Bulkhead) -> None:
        if bulkhead.try_acquire():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        bulkhead.enqueue(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # the slot was handed to us just before
                self._pass_on(bulkhead)
            else:
                bulkhead.cancel(fut)
            raise

    def _pass_on(self, bulkhead: Bulkhead) -> None:
        waiter = bulkhead.release()
        if waiter is not None:
            self._wake(waiter, bulkhead)

    def _wake(self, waiter: Any, bulkhead: Bulkhead) -> None:
        if waiter.done():  # its task was cancelled meanwhile: hand the slot on
            self._pass_on(bulkhead)
        else:
            waiter.set_result(None)

    async def _token(self, system: str) -> None:
        """Single-flight: one token request per system at a time; the others wait for it."""
        cache = self.engine.tokens[system]
        while not cache.valid(self.clock()):
            pending = self._token_fetch.get(system)
            if pending is not None:
                await pending.wait()
                continue
            done = self._token_fetch[system] = asyncio.Event()
            try:
                await self._exec(self.engine.fetch_token(system))
            finally:
                del self._token_fetch[system]
                done.set()

    def build_request(self, call: Call, headers: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
        """(method, url path, httpx keyword arguments) for a Call, from the system's route table."""
        route = self.routes[call.system][call.operation]
        names = path_fields(route.path)
        missing = [n for n in names if n not in call.params]
        if missing:
            raise ValueError(f"{call.system}.{call.operation} needs params {missing} for {route.path}")
        path = route.path.format(**{n: quote(str(call.params[n]), safe="") for n in names})
        rest = {k: v for k, v in call.params.items() if k not in names}
        method = route.method.upper()
        kw: dict[str, Any] = {"headers": headers}
        if rest:
            kw["params"] = rest
        auth = self.config.auth.get(call.system)
        if method not in _BODYLESS and call.payload is not None:
            if auth is not None and call.operation == auth.operation:
                kw["data"] = call.payload  # OAuth token endpoint: form-encoded
            else:
                kw["json"] = call.payload
        return method, path, kw

    async def _send(self, op: Send) -> Result | CallFailed:
        call = op.call
        client = self.clients.get(call.system)
        if client is None or call.operation not in self.routes.get(call.system, {}):
            return CallFailed(call.system, call.operation, None, "technical", "unknown_operation", retryable=False)
        method, path, kw = self.build_request(call, op.headers)
        try:
            async with asyncio.timeout(op.timeout_s):  # total deadline, incl. a dribbled body
                resp = await client.request(method, path, timeout=op.timeout_s, **kw)
        except (TimeoutError, httpx.TimeoutException):
            return CallTimeout(call.system, call.operation)
        except self.connection_errors as e:
            return ConnectionFailed(call.system, call.operation, reason=f"connection_error:{type(e).__name__}")
        body: Any = None
        if resp.content:
            try:
                body = json.loads(resp.content)
            except ValueError:
                if "json" in resp.headers.get("content-type", "json"):
                    return MalformedResponse(call.system, call.operation, resp.status_code)
                body = resp.text
        return Result(resp.status_code, body, dict(resp.headers))
