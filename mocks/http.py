"""FastAPI side of a mock: turn an HTTP request into a core ``Request`` and back."""

from __future__ import annotations

from typing import Any

from fastapi import Request as HttpRequest
from fastapi import Response as HttpResponse
from fastapi.responses import JSONResponse

from mocks.core.base import Request


def client_id(request: HttpRequest) -> str:
    cid = request.headers.get("x-client-id")
    if cid:
        return cid
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return "token:" + auth[7:][:16]
    return request.client.host if request.client else "anonymous"


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
    gateway = request.app.state.gateway
    call = getattr(gateway, "call", None)
    resp = await call(req) if call is not None else gateway.serve(req)
    if resp.status == 204 or resp.body is None:
        return HttpResponse(status_code=resp.status, headers=resp.headers)
    return JSONResponse(resp.body, status_code=resp.status, headers=resp.headers)
