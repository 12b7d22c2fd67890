"""The live reference integration: a FastAPI service between the four mocks (or real systems).

- ``POST /webhooks/{crm,erp,wms,carrier}``: HMAC-verified (``X-Twin-Signature: sha256=<hex>`` over the
  raw body; 401 otherwise), envelope-validated (400 not JSON, 422 naming the field), written to the
  durable inbox FIRST, answered 202, then processed asynchronously by ``AsyncRuntime``. Duplicate
  event ids are acknowledged (200) and not processed again when ``config.dedup``. Events accepted
  but not finished (a crash) are resumed on startup.
- admin (header ``X-Twin-Admin-Token``): ``GET /admin/dlq``, ``POST /admin/dlq/{id}/replay``,
  ``GET /admin/exceptions``, ``POST /admin/pause``, ``POST /admin/resume``, ``POST /admin/reconcile``.
- ``GET /health`` (open), ``GET /metrics`` (Prometheus text).
- every downstream request is logged (level INFO) as one JSON line carrying the correlation id
  (= CRM order id).

Settings come from the environment once (``TWIN_CRM_URL``... see ``Settings`` and docs/sut-contract.md).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, is_dataclass, replace
from hashlib import sha256
from pathlib import Path
from typing import Any, Literal

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from reference_integration.calllog import CallLog
from reference_integration.config import IntegrationConfig
from reference_integration.reconciliation import sweep
from reference_integration.runtime_async import AsyncRuntime
from reference_integration.store import MemoryStore, SqliteStore, Store
from reference_integration.workflows import WorkflowContext, crm_id_of, handle_event, replay, workflow_name
from sim import http11

log = logging.getLogger("reference_integration")

SOURCES = ("crm", "erp", "wms", "carrier")
ADMIN_HEADER = "X-Twin-Admin-Token"
SIGNATURE_HEADER = "X-Twin-Signature"
CALL_RECORDS_KEPT = 10_000


class Settings(BaseSettings):
    """Environment of the service (prefix ``TWIN_``), read once at startup."""

    model_config = SettingsConfigDict(env_prefix="TWIN_", extra="ignore")

    crm_url: str = "http://127.0.0.1:8701"
    erp_url: str = "http://127.0.0.1:8702"
    wms_url: str = "http://127.0.0.1:8703"
    carrier_url: str = "http://127.0.0.1:8704"
    webhook_secret: str = "twin-webhook-secret"
    admin_token: str = "twin-admin"
    db: str = Field("integration.db", description='SQLite file; ":memory:" keeps everything in memory')
    profile: Literal["naive", "resilient"] = "resilient"
    reconciliation_interval: float | None = Field(None, description="seconds; default from the profile, 0 = off")
    max_concurrency: int = Field(64, ge=1, description="workflows processed at once")
    calls_log: str | None = Field(None, description="append every downstream call attempt to this JSON-lines file")

    def url(self, system: str) -> str:
        return str(getattr(self, f"{system}_url"))


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    source: Literal["crm", "erp", "wms", "carrier"]
    occurred_at: str
    data: dict[str, Any]


# --------------------------------------------------------------------------------------- logging


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and any ``extra={...}`` fields."""

    _std = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in self._std})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


# --------------------------------------------------------------------------------------- service


def default_routes() -> dict[str, dict[str, Any]]:
    """The dialects' route tables (operation -> method + path), shared with the mocks."""
    from mocks.carrier.core import CarrierCore
    from mocks.crm.core import CrmCore
    from mocks.erp.core import ErpCore
    from mocks.wms.core import WmsCore

    return {"crm": CrmCore.routes, "erp": ErpCore.routes, "wms": WmsCore.routes, "carrier": CarrierCore.routes}


def resolve_config(settings: Settings) -> IntegrationConfig:
    config = IntegrationConfig.naive() if settings.profile == "naive" else IntegrationConfig.resilient()
    if settings.reconciliation_interval is not None:
        config = replace(config, reconciliation_interval=settings.reconciliation_interval or None)
    return config


class KeyedLocks:
    """asyncio locks by key, dropped when nobody holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class IntegrationService:
    """Inbox -> workflows -> downstream calls, with pause/resume, resume-on-start and the sweep."""

    def __init__(
        self,
        settings: Settings,
        *,
        config: IntegrationConfig | None = None,
        store: Store | None = None,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        connection_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.settings = settings
        self._secret = settings.webhook_secret.encode()
        self.config = config or resolve_config(settings)
        if store is None:
            store = MemoryStore(clock=time.time) if settings.db == ":memory:" else SqliteStore(Path(settings.db))
        self.store = store
        # One client per system, reused for the service's lifetime; the runtime calls its
        # transport directly. Without a test transport that is the lean keep-alive HTTP/1.1
        # transport (sim/http11.py); every downstream call is logged by the
        # runtime at INFO.
        self.clients = {
            s: httpx.AsyncClient(
                base_url=settings.url(s), transport=(transports or {}).get(s) or http11.transport(settings.url(s))
            )
            for s in SOURCES
        }
        self.runtime = AsyncRuntime(
            self.config,
            self.clients,
            default_routes(),
            store=self.store,
            clock=time.time,  # wall epoch seconds: state timestamps survive a restart
            connection_errors=connection_errors,
        )
        # Nobody reads the live service's call records back (the mocks' journals are the record
        # of a live run): keep the recent ones for debugging, not every call since start.
        self.runtime.engine.stats.keep_last(CALL_RECORDS_KEPT)
        self.call_log: CallLog | None = None
        if settings.calls_log:
            # The harness reads it back as the live run's calls.parquet.
            self.call_log = CallLog(settings.calls_log, CALL_RECORDS_KEPT)
            self.runtime.engine.stats.calls = self.call_log
        self._flusher: asyncio.Task[None] | None = None
        self.ctx = WorkflowContext(config=self.config)
        self.running = asyncio.Event()
        self.running.set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.counts: Counter[tuple[str, str]] = Counter()
        self._slots: asyncio.Semaphore | None = None
        self._order_locks = KeyedLocks()
        self._sweeper: asyncio.Task[Any] | None = None
        self.last_sweep: dict[str, Any] | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume what was accepted but not finished, then start the periodic sweep."""
        for ev in self.store.pending_events():
            body = ev.body if isinstance(ev.body, dict) else {}
            self.schedule(body)
        interval = self.config.reconciliation_interval
        if interval:
            self._sweeper = asyncio.create_task(self._sweep_loop(interval))
        if self.call_log is not None:
            self._flusher = asyncio.create_task(self.call_log.flush_every())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._flusher is not None:
            self._flusher.cancel()
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, *([self._sweeper] if self._sweeper else []), return_exceptions=True)
        for c in self.clients.values():
            await c.aclose()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()
        if self.call_log is not None:
            self.call_log.close()

    async def drain(self) -> None:
        """Wait until every scheduled workflow finished (tests, graceful shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    # -- events ----------------------------------------------------------------------------------
    def intake(self, source: str, raw: bytes, signature: str) -> tuple[int, dict[str, Any]]:
        """One webhook delivery: (HTTP status, JSON body of the answer). Verify, validate, accept
        durably, schedule; see the module docstring for the statuses."""
        if source not in SOURCES:
            return 404, {"error": "unknown_source", "field": "source"}
        expected = "sha256=" + hmac.new(self._secret, raw, sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
            return 401, {"error": "bad_signature", "field": SIGNATURE_HEADER}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": "malformed_json", "field": "body"}
        try:
            env = Envelope.model_validate(body)
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "body"
            return 422, {"error": "invalid_envelope", "field": field, "message": first["msg"]}
        if env.source != source:
            msg = f"source {env.source!r} posted to /webhooks/{source}"
            return 422, {"error": "invalid_envelope", "field": "source", "message": msg}
        data = env.model_dump()
        if not self.accept(data):
            return 200, {"status": "duplicate", "id": env.id}
        self.schedule(data)
        return 202, {"status": "accepted", "id": env.id}

    def accept(self, env: dict[str, Any]) -> bool:
        """Durably accept a webhook. Returns False for a duplicate that must not be processed."""
        fresh = self.store.accept_event(env)
        self.counts[(env["source"], "accepted" if fresh else "duplicate")] += 1
        return fresh or not self.config.dedup

    def schedule(self, env: dict[str, Any]) -> None:
        task = asyncio.create_task(self._process(env))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _process(self, env: dict[str, Any]) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.max_concurrency)
        await self.running.wait()
        # One workflow per order at a time (a PU and a DL arriving together), many orders at once.
        crm_id = crm_id_of(env)
        async with self._order_locks.hold(crm_id), self._slots:
            name = workflow_name(env) or "ignored"
            status = "done"
            try:
                out = await self.runtime.run(handle_event(self.ctx, env), name=name, payload=env)
                if log.isEnabledFor(logging.INFO):  # the extra dict is not free; most runs log warnings only
                    log.info(
                        "event processed",
                        extra={"event_id": env.get("id"), "workflow": name, "correlation_id": crm_id, "outcome": out},
                    )
            except Exception:
                status = "failed"
                log.exception("workflow crashed", extra={"event_id": env.get("id"), "workflow": name})
            if env.get("id"):
                self.store.mark_done(str(env["id"]), status)

    async def replay(self, entry_id: int) -> dict[str, Any] | None:
        entry = self.store.dlq_take_for_replay(entry_id)
        if entry is None:
            return None
        out = await self.runtime.run(replay(self.ctx, entry), name=f"replay:{entry.workflow}", payload=entry.payload)
        return {"id": entry_id, "workflow": entry.workflow, "result": out}

    async def reconcile(self, since: float | None = None) -> dict[str, Any]:
        """One audit sweep now (``since``: epoch seconds; default: the sweep's own look-back)."""
        self.last_sweep = await self.runtime.run(sweep(self.ctx, since), name="reconciliation")
        return self.last_sweep or {}

    async def _sweep_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if not self.running.is_set():
                continue
            try:
                await self.reconcile()
            except Exception:
                log.exception("reconciliation sweep crashed")

    def metrics_text(self) -> str:
        lines = [self.runtime.metrics_text().rstrip("\n")]
        lines.append("# HELP integration_webhooks_total Webhooks received, per source and outcome.")
        lines.append("# TYPE integration_webhooks_total counter")
        for (source, outcome), n in sorted(self.counts.items()):
            lines.append(f'integration_webhooks_total{{source="{source}",outcome="{outcome}"}} {n}')
        lines.append("# HELP integration_paused 1 while processing is paused by an operator.")
        lines.append("# TYPE integration_paused gauge")
        lines.append(f"integration_paused {0 if self.running.is_set() else 1}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------- HTTP


class WebhookFastPath:
    """Answers ``POST /webhooks/{source}`` as plain ASGI, ahead of FastAPI's routing.

    Webhooks are the service's hot path (several per order); FastAPI's router, exception and
    exit-stack middlewares and dependency solving cost about as much as the work itself
    (HMAC, JSON, envelope, SQLite commit). Same handler (``IntegrationService.intake``) and the
    same answers as the documented FastAPI route, which sees everything else."""

    def __init__(self, app: Any, service: IntegrationService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        source = path[10:] if path.startswith("/webhooks/") and scope["method"] == "POST" else ""
        if not source or "/" in source:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        signature = ""
        for name, value in scope["headers"]:
            if name == b"x-twin-signature":
                signature = value.decode("latin-1")
                break
        status, out = self.service.intake(source, b"".join(chunks), signature)
        payload = json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _row(x: Any) -> Any:
    return asdict(x) if is_dataclass(x) and not isinstance(x, type) else x


def create_app(
    settings: Settings | None = None,
    *,
    config: IntegrationConfig | None = None,
    store: Store | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    connection_errors: tuple[type[BaseException], ...] = (),
) -> FastAPI:
    """The live service. ``transports`` (system -> httpx transport) lets tests call the mocks
    in-process through ``httpx.ASGITransport``; without them the mocks' base URLs are used."""
    settings = settings or Settings()
    service = IntegrationService(
        settings, config=config, store=store, transports=transports, connection_errors=connection_errors
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="Distribution Twin reference integration", lifespan=lifespan)
    app.state.service = service
    app.add_middleware(WebhookFastPath, service=service)

    def admin(request: Request) -> None:
        given = request.headers.get(ADMIN_HEADER, "")
        if not given or not hmac.compare_digest(given.encode(), settings.admin_token.encode()):
            raise HTTPException(401, detail=f"missing or wrong {ADMIN_HEADER}")

    @app.post("/webhooks/{source}", status_code=202)
    async def webhook(source: str, request: Request) -> Any:
        # Documents the route (/docs); requests are answered by WebhookFastPath before routing.
        status, out = service.intake(source, await request.body(), request.headers.get(SIGNATURE_HEADER, ""))
        return JSONResponse(out, status_code=status)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "profile": service.config.profile,
            "paused": not service.running.is_set(),
            "in_flight": len(service.tasks),
            "dlq": service.store.dlq_size(),
        }

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(service.metrics_text(), media_type="text/plain; version=0.0.4")

    @app.get("/admin/dlq", dependencies=[Depends(admin)])
    async def dlq(include_replayed: bool = False) -> dict[str, Any]:
        items = [_row(e) for e in service.store.dlq_list(include_replayed)]
        return {"items": items, "total": len(items)}

    @app.post("/admin/dlq/{entry_id}/replay", dependencies=[Depends(admin)])
    async def dlq_replay(entry_id: int) -> Any:
        out = await service.replay(entry_id)
        if out is None:
            return JSONResponse({"error": "not_found", "field": "id"}, status_code=404)
        return out

    @app.get("/admin/exceptions", dependencies=[Depends(admin)])
    async def exceptions() -> dict[str, Any]:
        items = [_row(e) for e in service.store.exceptions_list()]
        return {"items": items, "total": len(items)}

    @app.post("/admin/pause", dependencies=[Depends(admin)])
    async def pause() -> dict[str, Any]:
        service.running.clear()
        return {"paused": True}

    @app.post("/admin/resume", dependencies=[Depends(admin)])
    async def resume() -> dict[str, Any]:
        service.running.set()
        return {"paused": False}

    @app.post("/admin/reconcile", dependencies=[Depends(admin)])
    async def reconcile() -> dict[str, Any]:
        return await service.reconcile()

    return app
