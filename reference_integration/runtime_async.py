"""asyncio + httpx interpreter of integration workflows (live mode).

Same ``Engine`` (and so the same policy objects) as the SimPy interpreter; only the four ops differ:
``Wait`` is ``sleep`` (injectable: tests pass a fake that advances a fake clock), ``Acquire`` parks
an asyncio future in the bulkhead queue, ``Send`` is one HTTP request built from the system's
``Route`` table, ``FetchToken`` runs the ERP client-credentials grant single-flight.

Each client's transport is called directly (the runtime needs none of the client's per-request
machinery); with the live service's ``Http11Transport`` the request goes out as bytes built here,
with any other transport (``httpx.ASGITransport`` in tests) as an ``httpx.Request``.

Policy time (breaker reset, backoff, timeouts, token expiry) is the ``clock`` passed in, by default
wall seconds (``time.monotonic``): in live mode API latency and faults are wall-clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import string
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from mocks.core.base import Route
from reference_integration.config import IntegrationConfig
from reference_integration.effects import Call, Result
from reference_integration.errors import CallFailed, CallTimeout, ConnectionFailed, MalformedResponse
from reference_integration.policies import Bulkhead
from reference_integration.runtime_core import Acquire, Engine, FetchToken, OpGen, RuntimeView, Send, Wait
from reference_integration.store import Store
from sim.http11 import Http11Transport

_BODYLESS = {"GET", "DELETE", "HEAD", "OPTIONS"}
# The service configures this logger (JSON lines); one line per downstream call at INFO.
_log = logging.getLogger("reference_integration")


@lru_cache(maxsize=256)
def _path_fields(template: str) -> tuple[str, ...]:
    return tuple(f for _, f, _, _ in string.Formatter().parse(template) if f)


def path_fields(template: str) -> list[str]:
    return list(_path_fields(template))


class AsyncRuntime(RuntimeView):
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
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}

    # ------------------------------------------------------------------------------ public

    async def run(self, workflow: Generator[Any, Any, Any], name: str = "workflow", payload: Any = None) -> Any:
        """Drive a workflow to completion; returns its return value."""
        return await self._exec(self.engine.drive(workflow, name, payload))

    async def call(self, call: Call, workflow: str = "") -> Result:
        """One Call through the policy stack, outside any workflow (admin tools, reconciliation)."""
        return await self._exec(self.engine.run_call(call, workflow))

    async def token(self, system: str = "erp") -> str:
        await self._token(system)
        return str(self.engine.tokens[system].token)

    def _now(self) -> float:
        return float(self.clock())

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

    def _endpoint(self, system: str, operation: str) -> _Endpoint | None:
        ep = self._endpoints.get((system, operation))
        if ep is None:
            client = self.clients.get(system)
            route = self.routes.get(system, {}).get(operation)
            if client is None or route is None:
                return None
            auth = self.config.auth.get(system)
            # The client's own transport, called directly: the client's per-request work (merging
            # URLs, cookies, auth and redirect handling, event hooks) was a third of the time spent
            # in httpx, and the runtime uses none of it.
            transport = getattr(client, "_transport", None)
            base = client.base_url
            raw = transport if isinstance(transport, Http11Transport) and base.scheme == "http" else None
            ep = self._endpoints[(system, operation)] = _Endpoint(
                base=str(base).rstrip("/"),
                transport=transport,
                client=client,
                method=route.method.upper(),
                template=route.path,
                names=tuple(path_fields(route.path)),
                form=auth is not None and operation == auth.operation,
                raw=raw,
                host=base.host,
                port=base.port or 80,
                prefix=base.raw_path.decode("ascii").rstrip("/"),
                host_header=f"Host: {base.netloc.decode('ascii')}\r\n",
            )
        return ep

    def _target(self, ep: _Endpoint, call: Call, headers: dict[str, str]) -> tuple[str, dict[str, str], bytes]:
        """(path and query, headers, body) of one attempt: what ``build_request`` describes."""
        params = call.params
        if ep.names:
            missing = [n for n in ep.names if n not in params]
            if missing:
                raise ValueError(f"{call.system}.{call.operation} needs params {missing} for {ep.template}")
            path = ep.template.format(**{n: quote(str(params[n]), safe="") for n in ep.names})
            rest = [(k, v) for k, v in params.items() if k not in ep.names]
        else:
            path = ep.template
            rest = list(params.items())
        if rest:
            path += "?" + urlencode(rest, doseq=True, quote_via=quote)
        content = b""
        if call.payload is not None and ep.method not in _BODYLESS:
            headers = dict(headers)
            if ep.form:  # OAuth token endpoint: form-encoded
                content = urlencode(call.payload, doseq=True).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                # As httpx's ``json=`` encodes it.
                content = json.dumps(call.payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
                headers["Content-Type"] = "application/json"
        return path, headers, content

    @staticmethod
    def _head(ep: _Endpoint, path: str, headers: dict[str, str], content: bytes) -> bytes | None:
        """The serialised request for ``Http11Transport.exchange``; None when a header value
        could smuggle a line break (ids come from webhook payloads): the httpx path refuses it."""
        lines = [ep.method, " ", ep.prefix, path, " HTTP/1.1\r\n", ep.host_header]
        for k, v in headers.items():
            if "\r" in v or "\n" in v:
                return None
            lines += (k, ": ", v, "\r\n")
        if content or ep.method not in _BODYLESS:
            lines += ("Content-Length: ", str(len(content)), "\r\n")
        lines.append("\r\n")
        try:
            return "".join(lines).encode("ascii") + content
        except UnicodeEncodeError:
            return None

    async def _send(self, op: Send) -> Result | CallFailed:
        call = op.call
        ep = self._endpoint(call.system, call.operation)
        if ep is None:
            return CallFailed(call.system, call.operation, None, "technical", "unknown_operation", retryable=False)
        path, headers, content = self._target(ep, call, op.headers)
        data = self._head(ep, path, headers, content) if ep.raw is not None else None
        try:
            async with asyncio.timeout(op.timeout_s):  # total deadline, incl. a dribbled body
                if data is not None:
                    assert ep.raw is not None
                    status, raw_headers, content = await ep.raw.exchange(ep.host, ep.port, data)
                    resp_headers = _header_dict(raw_headers)
                else:
                    request = httpx.Request(ep.method, ep.base + path, headers=headers, content=content)
                    if ep.transport is not None:
                        resp = await ep.transport.handle_async_request(request)
                        try:
                            await resp.aread()
                        finally:
                            await resp.aclose()
                    else:  # a client without a transport attribute: let it do everything
                        resp = await ep.client.send(request)
                    status, content, resp_headers = resp.status_code, resp.content, dict(resp.headers)
        except (TimeoutError, httpx.TimeoutException):
            return CallTimeout(call.system, call.operation)
        except self.connection_errors as e:
            return ConnectionFailed(call.system, call.operation, reason=f"connection_error:{type(e).__name__}")
        if _log.isEnabledFor(logging.INFO):
            _log.info(
                "downstream call",
                extra={
                    "correlation_id": call.correlation_id,
                    "method": ep.method,
                    "url": ep.base + path,
                    "status": status,
                    "idempotency_key": op.headers.get("Idempotency-Key"),
                },
            )
        body: Any = None
        if content:
            try:
                body = json.loads(content)
            except ValueError:
                if "json" in resp_headers.get("content-type", "json"):
                    return MalformedResponse(call.system, call.operation, status)
                body = content.decode("utf-8", errors="replace")
        return Result(status, body, resp_headers)


def _header_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Response headers as ``dict(httpx.Headers)`` gives them: lower-case names, repeats joined."""
    out: dict[str, str] = {}
    for k, v in raw:
        name, value = k.decode("latin-1").lower(), v.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """What every call of one (system, operation) shares, worked out once."""

    base: str
    transport: httpx.AsyncBaseTransport | None
    client: httpx.AsyncClient
    method: str
    template: str
    names: tuple[str, ...]
    form: bool
    raw: Http11Transport | None  # set when the lean transport serves this system: no httpx objects
    host: str
    port: int
    prefix: str  # the base URL's own path, if any
    host_header: str
