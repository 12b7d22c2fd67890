"""FastAPI side of a mock: turn an HTTP request into a core ``Request`` and back, plus the ASGI
middleware every mock app wears (request journal, dropped connections)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from fastapi import Request as HttpRequest
from fastapi import Response as HttpResponse
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mocks.core.base import Request, Response
from mocks.gateway import ConnectionDropped, Dribble


def client_id(request: HttpRequest) -> str:
    return _client_id(request.headers, request.scope)


def _client_id(headers: Mapping[str, str], scope: Scope) -> str:
    cid = headers.get("x-client-id")
    if cid:
        return cid
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return "token:" + auth[7:][:16]
    client = scope.get("client")
    return client[0] if client else "anonymous"


def _headers(scope: Scope) -> dict[str, str]:
    # Straight from the ASGI scope: Starlette's ``Headers`` view costs a second decoding pass.
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _json(body: Any) -> bytes | None:
    """Compact UTF-8 JSON, byte for byte what Starlette's ``JSONResponse`` renders for the cores'
    plain dicts, via orjson (several times cheaper than ``json.dumps``). None for what orjson
    refuses (integers beyond 64 bits, non-string keys): those take the ``JSONResponse`` path. One
    difference remains: a NaN/inf float renders as null where ``JSONResponse`` would fail (500);
    the cores never produce one."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return None


async def _dribble(d: Dribble) -> AsyncIterator[bytes]:
    n = max(1, min(d.chunks, len(d.data)))
    size = -(-len(d.data) // n) if d.data else 0
    pause = d.duration_s / n
    for i in range(n):
        await asyncio.sleep(pause)
        yield d.data[i * size : (i + 1) * size]


async def run_op(state: Any, scope: Scope, op: str, body: Any = None, params: dict[str, Any] | None = None) -> Response:
    """Run operation ``op`` through the app's gateway (``state.gateway``): the one way into a core
    from HTTP, for FastAPI's endpoints (``dispatch``) and the fast path (``mocks.fastpath``) alike."""
    headers = _headers(scope)
    req = Request(
        op=op,
        body=body,
        params={k: str(v) for k, v in params.items() if v is not None} if params else {},
        headers=headers,
        client_id=_client_id(headers, scope),
    )
    info = scope.get("twin")
    if info is not None:
        info["op"] = op
        info["client"] = req.client_id
    gateway = state.gateway
    call = getattr(gateway, "call", None)
    return await call(req, info) if call is not None else gateway.serve(req)


def render(resp: Response) -> HttpResponse:
    """A core ``Response`` as the Starlette response FastAPI's endpoints return."""
    if isinstance(resp.body, Dribble):
        return StreamingResponse(
            _dribble(resp.body), status_code=resp.status, headers=resp.headers, media_type="application/json"
        )
    if isinstance(resp.body, bytes):
        return HttpResponse(resp.body, status_code=resp.status, headers=resp.headers, media_type="application/json")
    if resp.status == 204 or resp.body is None:
        return HttpResponse(status_code=resp.status, headers=resp.headers)
    raw = _json(resp.body)
    if raw is None:
        return JSONResponse(resp.body, status_code=resp.status, headers=resp.headers)
    return HttpResponse(raw, status_code=resp.status, headers=resp.headers, media_type="application/json")


_JSON_CT = (b"content-type", b"application/json")


async def send_response(resp: Response, scope: Scope, receive: Receive, send: Send) -> None:
    """Send ``resp`` exactly as ``render(resp)`` would (same status, header order, bytes), without
    building a Starlette response object for the common case: a JSON dict body. The header list
    follows ``starlette.responses.Response.init_headers``."""
    body = resp.body
    status = resp.status
    if type(body) is dict and status >= 200 and status not in (204, 304):
        raw = _json(body)
        if raw is not None:
            if resp.headers:
                headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()]
                names = {k for k, _ in headers}
                if b"content-length" not in names:
                    headers.append((b"content-length", str(len(raw)).encode()))
                if b"content-type" not in names:
                    headers.append(_JSON_CT)
            else:
                headers = [(b"content-length", str(len(raw)).encode()), _JSON_CT]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": raw})
            return
    await render(resp)(scope, receive, send)


async def dispatch(
    request: HttpRequest, op: str, body: Any = None, params: dict[str, Any] | None = None
) -> HttpResponse:
    """Run operation ``op`` through the app's gateway (``app.state.gateway``) and render the result."""
    return render(await run_op(request.app.state, request.scope, op, body, params))


class RequestJournal:
    """Bounded journal of the requests a mock served (``GET /_twin/requests``)."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = 0

    def add(self, entry: dict[str, Any]) -> None:
        self._seq += 1
        entry["seq"] = self._seq
        self._entries.append(entry)

    def since(self, seq: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        out = [e for e in self._entries if e["seq"] > seq]
        return out if limit is None else out[:limit]

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


class TwinMiddleware:
    """Pure ASGI middleware: journals every business request and turns ``ConnectionDropped`` into a
    connection closed mid-response.

    Why mid-response: uvicorn answers 500 when an app fails *before* starting a response, but closes
    the transport when it fails *after*. So a reset sends the status line with a Content-Length it
    never honours and re-raises: a real client sees the peer close the connection without a complete
    message (httpx ``RemoteProtocolError``); an in-process ``httpx.ASGITransport`` client sees the
    ``ConnectionDropped`` exception. A true TCP RST is not reachable through ASGI.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_twin"):
            await self.app(scope, receive, send)
            return
        info: dict[str, Any] = {}
        scope["twin"] = info
        state: dict[str, Any] = {"status": None, "started": False}
        t0 = time.perf_counter()

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, receive, _send)
        except ConnectionDropped:
            state["status"] = "reset"
            if not state["started"]:
                await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
            raise
        finally:
            self._record(scope, info, state["status"], time.perf_counter() - t0)

    @staticmethod
    def _record(scope: Scope, info: dict[str, Any], status: Any, elapsed: float) -> None:
        app = scope.get("app")
        journal: RequestJournal | None = getattr(getattr(app, "state", None), "journal", None)
        if journal is None:
            return
        idem = corr = None
        for k, v in scope.get("headers", ()):  # two headers wanted: no dict of them all
            k = k.lower()
            if k == b"idempotency-key":
                idem = v.decode("latin-1")
            elif k == b"x-correlation-id":
                corr = v.decode("latin-1")
        core = getattr(app.state, "core", None)
        journal.add(
            {
                "t": core.env.now if core is not None else None,
                "method": scope["method"],
                "path": scope["path"],
                "op": info.get("op"),
                "status": status,
                "latency_s": round(elapsed, 6),
                "client": info.get("client"),
                "idempotency_key": idem,
                "correlation_id": corr,
                "fault": info.get("fault"),
                "window": info.get("window"),
            }
        )
