"""Assemble one mock system's FastAPI app from its core and its router."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from mocks.core.base import SystemCore
from mocks.gateway import Gateway


def make_app(core: SystemCore, router: APIRouter, gateway: Gateway | None = None, title: str | None = None) -> FastAPI:
    app = FastAPI(title=title or f"Distribution Twin mock {core.system.upper()}")
    app.include_router(router)
    app.state.core = core
    app.state.gateway = gateway or Gateway(core)
    return app
