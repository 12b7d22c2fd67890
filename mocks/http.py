"""FastAPI side of a mock: turn an HTTP request into a core ``Request`` and back, plus the ASGI
middleware every mock app wears (request journal, dropped connections)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request as HttpRequest
from fastapi import Response as HttpResponse
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mocks.core.base import Request
from mocks.gateway import ConnectionDropped, Dribble


def client_id(request: HttpRequest) -> str:
    cid = request.headers.get("x-client-id")
    if cid:
        return cid
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return "token:" + auth[7:][:16]
    return request.client.host if request.client else "anonymous"


async def _dribble(d: Dribble) -> AsyncIterator[bytes]:
    n = max(1, min(d.chunks, len(d.data)))
    size = -(-len(d.data) // n) if d.data else 0
    pause = d.duration_s / n
    for i in range(n):
        await asyncio.sleep(pause)
        yield d.data[i * size : (i + 1) * size]


async def dispatch(
    request: HttpRequest, op: str, body: Any = None, params: dict[str, Any] | None = None
) -> HttpResponse:
    """Run operation ``op`` through the app's gateway (``app.state.gateway``) and render the result."""
    req = Request(
        op=op,
        body=body,
        params={k: str(v) for k, v in (params or {}).items() if v is not None},
        headers={k.lower(): v for k, v in request.headers.items()},
        client_id=client_id(request),
    )
    info = request.scope.get("twin")
    if info is not None:
        info["op"] = op
        info["client"] = req.client_id
    gateway = request.app.state.gateway
    call = getattr(gateway, "call", None)
    resp = await call(req, info) if call is not None else gateway.serve(req)
    if isinstance(resp.body, Dribble):
        return StreamingResponse(
            _dribble(resp.body), status_code=resp.status, headers=resp.headers, media_type="application/json"
        )
    if isinstance(resp.body, bytes):
        return HttpResponse(resp.body, status_code=resp.status, headers=resp.headers, media_type="application/json")
    if resp.status == 204 or resp.body is None:
        return HttpResponse(status_code=resp.status, headers=resp.headers)
    return JSONResponse(resp.body, status_code=resp.status, headers=resp.headers)


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
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
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
                "idempotency_key": headers.get("idempotency-key"),
                "correlation_id": headers.get("x-correlation-id"),
                "fault": info.get("fault"),
                "window": info.get("window"),
            }
        )
