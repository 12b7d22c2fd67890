"""Assemble one mock system's FastAPI app from its core and its router.

``make_app(core, router)`` is all a system's ``create_app`` needs; the live server (``mocks.serve``)
then wires faults, the live clock and webhooks in with ``configure_app``. Every app serves the
control API under ``/_twin`` and journals its requests.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from mocks import control
from mocks.core.base import SystemCore
from mocks.fastpath import FastPath, compile_table
from mocks.faults import FaultEngine
from mocks.gateway import Gateway
from mocks.http import RequestJournal, TwinMiddleware
from sim.scenario import ApiProfile

DEFAULT_ADMIN_TOKEN = "twin-admin"


def default_admin_token() -> str:
    return os.environ.get("TWIN_ADMIN_TOKEN") or DEFAULT_ADMIN_TOKEN


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    st = app.state
    clock = getattr(st, "clock", None)
    if clock is not None:
        clock.start()
    deliverer = getattr(st, "deliverer", None)
    if deliverer is not None:
        deliverer.flush()
    try:
        yield
    finally:
        if clock is not None:
            await clock.stop()
        deliverer = getattr(st, "deliverer", None)
        if deliverer is not None:
            await deliverer.aclose()


def make_app(
    core: SystemCore,
    router: APIRouter,
    gateway: Gateway | None = None,
    title: str | None = None,
    *,
    admin_token: str | None = None,
    profile: ApiProfile | None = None,
    fault_engine: FaultEngine | None = None,
    clock: Any = None,
    deliverer: Any = None,
    reset_factory: Callable[[], SystemCore] | None = None,
    journal_size: int = 10_000,
) -> FastAPI:
    app = FastAPI(title=title or f"Distribution Twin mock {core.system.upper()}", lifespan=_lifespan)
    app.include_router(router)
    app.include_router(control.public)
    app.include_router(control.router)
    # Added first, so it runs inside TwinMiddleware: fast requests are journalled like the rest.
    app.add_middleware(FastPath, table=compile_table(app.router.routes, core.routes))
    app.add_middleware(TwinMiddleware)
    app.state.core = core
    app.state.journal = RequestJournal(journal_size)
    app.state.admin_token = admin_token or default_admin_token()
    app.state.reset_factory = reset_factory
    app.state.clock = None
    app.state.deliverer = None
    app.state.gateway = gateway or Gateway(core, profile or "honour", fault_engine, clock)
    configure_app(app, fault_engine=fault_engine, clock=clock, deliverer=deliverer)
    return app


def configure_app(
    app: FastAPI,
    *,
    fault_engine: FaultEngine | None = None,
    clock: Any = None,
    deliverer: Any = None,
    admin_token: str | None = None,
    reset_factory: Callable[[], SystemCore] | None = None,
) -> FastAPI:
    """Wire live-mode parts into an app built by ``make_app`` (e.g. by a system's ``create_app``)."""
    st = app.state
    gw: Gateway = st.gateway
    if fault_engine is not None:
        gw.fault_engine = fault_engine
        gw.idempotency = fault_engine.profile.idempotency
    if clock is not None:
        gw.clock = clock
        st.clock = clock
    if deliverer is not None:
        st.deliverer = deliverer
    if admin_token is not None:
        st.admin_token = admin_token
    if reset_factory is not None:
        st.reset_factory = reset_factory
    return app
