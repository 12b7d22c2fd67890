"""A pure-ASGI fast path for the mocks' business routes, ahead of FastAPI's router.

FastAPI's per-request machinery (matching ~25 routes one regex at a time, the dependency solver,
body parsing through ``json.loads`` and then pydantic) costs about as much as a mock's own work on
the order-create path. This middleware answers the requests it can prove equivalent and lets
everything else through to FastAPI, which keeps every route registered (``/docs``,
``/openapi.json``, ``/_twin``, 404, 405, 422s):

- its table is compiled once, when the app is built, from the FastAPI routes whose endpoint is
  marked ``@fast`` and the core's ``routes`` (exact method + path template); a route is only fast
  when no route registered before it could match the same method and path (Starlette's first
  match wins);
- a body is parsed with the route's pydantic model straight from the bytes
  (``model_validate_json``) and handed to the core as ``validated(model)``, what the endpoints
  pass too;
- anything it would answer differently from FastAPI falls through with the body replayed: a
  validation failure (so 422s are FastAPI's own ``{"detail": [...]}``), a non-JSON content type,
  an empty body, query parameters FastAPI would reject, a ``root_path``.

A marked endpoint must do nothing but ``dispatch(request, op, validated(body), path and query
params)``; ``tests/test_fastpath.py`` checks byte-identical answers both ways on every route.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.dependencies.utils import request_params_to_args
from fastapi.params import Form
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ValidationError
from starlette.datastructures import QueryParams
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mocks.core.base import Route as CoreRoute
from mocks.core.validation import validated
from mocks.http import run_op, send_response

F = TypeVar("F", bound=Callable[..., Any])

_FAST_ATTR = "__twin_fast__"


def fast(endpoint: F) -> F:
    """Mark a FastAPI endpoint whose whole behaviour is ``dispatch(request, op, validated(body),
    {path and query params})``, so the fast path may serve its route without FastAPI."""
    setattr(endpoint, _FAST_ATTR, True)
    return endpoint


@dataclass(frozen=True, slots=True)
class Entry:
    op: str
    method: str
    template: str
    segments: tuple[str | None, ...]  # literal segment, or None for a path parameter
    names: tuple[str, ...]  # path parameter names, in order
    model: type[BaseModel] | None  # the body model, if the route takes a body
    query: tuple[Any, ...]  # FastAPI ModelFields of the query parameters


def _segments(template: str) -> tuple[str | None, ...] | None:
    """``/a/{x}/b`` -> ("", "a", None, "b"); None for what the table does not model (convertors,
    parameters inside a segment): such a route is treated as matching anything."""
    out: list[str | None] = []
    for seg in template.split("/"):
        if "{" in seg or "}" in seg:
            if not (seg.startswith("{") and seg.endswith("}") and ":" not in seg and seg.count("{") == 1):
                return None
            out.append(None)
        else:
            out.append(seg)
    return tuple(out)


def _overlap(a: tuple[str | None, ...] | None, b: tuple[str | None, ...]) -> bool:
    """Could one path match both templates? A parameter matches any non-empty segment."""
    if a is None:
        return True
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x is None and y is None:
            continue
        if x is None or y is None:
            if (y if x is None else x) == "":
                return False
            continue
        if x != y:
            return False
    return True


def _json_type(content_type: str) -> bool:
    # FastAPI's own test (routing.get_request_handler): application/json or application/*+json.
    m = email.message.Message()
    m["content-type"] = content_type
    if m.get_content_maintype() != "application":
        return False
    sub = m.get_content_subtype()
    return sub == "json" or sub.endswith("+json")


def _entry(route: Any, op: str, method: str) -> Entry:
    d = route.dependant
    where = f"fast endpoint {route.endpoint.__name__} ({method} {route.path})"
    if d.dependencies or d.header_params or d.cookie_params:
        raise TypeError(f"{where}: dependencies, header and cookie parameters are not supported")
    for p in d.path_params:
        if p.field_info.annotation is not str:
            raise TypeError(f"{where}: path parameter {p.name} must be a str")
    model = None
    if d.body_params:
        if len(d.body_params) != 1:
            raise TypeError(f"{where}: at most one body parameter")
        fi = d.body_params[0].field_info
        ann = fi.annotation
        if (
            getattr(fi, "embed", False)
            or isinstance(fi, Form)
            or not (isinstance(ann, type) and issubclass(ann, BaseModel))
        ):
            raise TypeError(f"{where}: the body must be one pydantic model, not embedded")
        model = ann
    segs = _segments(route.path)
    assert segs is not None  # a marked route's template is checked against the core's
    return Entry(
        op=op,
        method=method,
        template=route.path,
        segments=segs,
        names=tuple(p.name for p in d.path_params),
        model=model,
        query=tuple(d.query_params),
    )


class Table:
    """The fast routes of one app: exact paths in a dict, templates by (method, segment count)."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = tuple(entries)
        self._exact: dict[tuple[str, str], Entry] = {}
        self._templated: dict[tuple[str, int], list[Entry]] = {}
        for e in entries:
            if e.names:
                self._templated.setdefault((e.method, len(e.segments)), []).append(e)
            else:
                self._exact[(e.method, e.template)] = e

    def match(self, method: str, path: str) -> tuple[Entry, tuple[str, ...]] | None:
        e = self._exact.get((method, path))
        if e is not None:
            return e, ()
        cands = self._templated.get((method, path.count("/") + 1))
        if not cands:
            return None
        parts = path.split("/")
        for e in cands:  # no two entries overlap (see compile_table): the first match is the match
            values = []
            for seg, part in zip(e.segments, parts, strict=True):
                if seg is None:
                    if not part:
                        break
                    values.append(part)
                elif seg != part:
                    break
            else:
                return e, tuple(values)
        return None

    @property
    def ops(self) -> set[str]:
        return {e.op for e in self.entries}


def compile_table(routes: Sequence[BaseRoute], core_routes: dict[str, CoreRoute]) -> Table:
    """Entries for the ``@fast`` endpoints among ``routes`` (an app's routes, in registration
    order), each matched to its core operation by method and path template."""
    ops = {(r.method.upper(), r.path): op for op, r in core_routes.items()}
    earlier: list[tuple[set[str] | None, tuple[str | None, ...] | None]] = []
    entries: list[Entry] = []
    # FastAPI keeps included routers as such; ``iter_route_contexts`` (what its OpenAPI generator
    # walks) yields the effective routes in matching order, with full paths and dependencies.
    for route in iter_route_contexts(routes):
        original = route.original_route
        if isinstance(original, WebSocketRoute):
            continue  # never sees an http scope
        if not isinstance(original, Route):
            earlier.append((None, None))  # a Mount or Host: assume it may match anything
            continue
        methods = set(route.methods) if route.methods else None
        segs = _segments(route.path)
        if getattr(route.endpoint, _FAST_ATTR, False):
            core_methods = [m for m in (methods or ()) if (m, route.path) in ops]
            if len(core_methods) != 1 or segs is None:
                raise ValueError(
                    f"fast endpoint {route.endpoint.__name__} ({sorted(methods or ())} {route.path}) "
                    "matches no single operation in the core's routes"
                )
            method = core_methods[0]
            shadowed = any((m is None or method in m) and _overlap(s, segs) for m, s in earlier)
            if not shadowed:
                entries.append(_entry(route, ops[(method, route.path)], method))
        earlier.append((methods, segs))
    return Table(entries)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k.lower() == name:
            return v.decode("latin-1")
    return None


class FastPath:
    """ASGI middleware serving an app's ``Table`` and passing everything else to FastAPI."""

    def __init__(self, app: ASGIApp, table: Table) -> None:
        self.app = app
        self.table = table
        self._json_types: dict[str, bool] = {}

    def _is_json(self, content_type: str | None) -> bool:
        if content_type is None:
            return False  # FastAPI (strict content type) would not parse it as JSON
        known = self._json_types.get(content_type)
        if known is None:
            known = _json_type(content_type)
            if len(self._json_types) < 256:  # bounded: clients choose these strings
                self._json_types[content_type] = known
        return known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = self.table.match(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if hit is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        entry, values = hit
        params: dict[str, Any] = dict(zip(entry.names, values, strict=True))
        if entry.query:
            qvalues, errors = request_params_to_args(entry.query, QueryParams(scope["query_string"].decode("latin-1")))
            if errors:
                await self.app(scope, receive, send)  # FastAPI renders its 422
                return
            params.update(qvalues)
        body = None
        if entry.model is not None:
            if not self._is_json(_header(scope, b"content-type")):
                await self.app(scope, receive, send)
                return
            messages: list[Message] = []
            chunks: list[bytes] = []
            while True:
                m = await receive()
                messages.append(m)
                if m["type"] != "http.request":
                    break  # a disconnect: FastAPI deals with it as it does today
                chunks.append(m.get("body", b""))
                if not m.get("more_body", False):
                    break
            raw = b"".join(chunks) if len(chunks) != 1 else chunks[0]
            model = None
            if raw and messages[-1]["type"] == "http.request":
                try:
                    model = entry.model.model_validate_json(raw)
                except ValidationError:
                    model = None
            if model is None:
                await self.app(scope, _replay(messages, receive), send)
                return
            body = validated(model)
        resp = await run_op(scope["app"].state, scope, entry.op, body, params)
        await send_response(resp, scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out what the fast path already read, then the real one."""
    pending = list(messages)

    async def again() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return again
