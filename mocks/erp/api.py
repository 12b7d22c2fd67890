"""FastAPI adapter of the ERP mock: validate input, hand over to the core via ``dispatch``."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, FastAPI, Query
from fastapi import Request as HttpRequest
from fastapi import Response as HttpResponse
from fastapi.responses import JSONResponse

from mocks.app import make_app
from mocks.core.base import SystemCore
from mocks.core.validation import validated
from mocks.erp.core import ErpCore
from mocks.erp.schemas import (
    AtpPublic,
    CustomerPublic,
    ItemPublic,
    PricesPublic,
    SalesOrderCreate,
    SalesOrderPublic,
    TokenPublic,
)
from mocks.fastpath import fast
from mocks.gateway import Gateway
from mocks.http import dispatch
from sim.world.faults import schedule_world_faults
from sim.world.supplier import start_supplier

router = APIRouter()
_SO = "/api/v2/sales-orders"


def _form(raw: bytes, content_type: str) -> dict[str, Any] | None:
    if "json" in content_type:
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    text = raw.decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


@router.post("/oauth/token", summary="OAuth2 client credentials", responses={200: {"model": TokenPublic}})
async def token(request: HttpRequest) -> HttpResponse:
    # Form-encoded per RFC 6749 (parsed by hand: no python-multipart dependency); JSON accepted too.
    form = _form(await request.body(), request.headers.get("content-type", ""))
    if form is None:
        return JSONResponse(
            {"error": "invalid_request", "message": "body must be a form or a JSON object", "field": "(body)"}, 400
        )
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic ") and "client_id" not in form:
        try:
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            form.update(client_id=cid, client_secret=secret)
        except (ValueError, UnicodeDecodeError):
            pass
    return await dispatch(request, "token", form)


@router.get("/api/v2/customers/{CustomerNo}", responses={200: {"model": CustomerPublic}})
@fast
async def get_customer(request: HttpRequest, CustomerNo: str) -> HttpResponse:
    return await dispatch(request, "get_customer", None, {"CustomerNo": CustomerNo})


@router.get("/api/v2/items/{ItemNo}", responses={200: {"model": ItemPublic}})
@fast
async def get_item(request: HttpRequest, ItemNo: str) -> HttpResponse:
    return await dispatch(request, "get_item", None, {"ItemNo": ItemNo})


@router.get("/api/v2/prices", responses={200: {"model": PricesPublic}})
@fast
async def get_prices(
    request: HttpRequest,
    customer: str | None = Query(None, description="CustomerNo"),
    items: str | None = Query(None, description="comma-separated ItemNo list"),
) -> HttpResponse:
    return await dispatch(request, "get_prices", None, {"customer": customer, "items": items})


@router.get("/api/v2/atp", responses={200: {"model": AtpPublic}})
@fast
async def get_atp(
    request: HttpRequest,
    items: str | None = Query(None, description="comma-separated ItemNo list"),
    plant: str | None = Query(None, description="defaults to WH01"),
) -> HttpResponse:
    return await dispatch(request, "get_atp", None, {"items": items, "plant": plant})


@router.post(_SO, status_code=201, responses={201: {"model": SalesOrderPublic}})
@fast
async def create_sales_order(request: HttpRequest, body: SalesOrderCreate = Body(...)) -> HttpResponse:
    # The core would validate the dict again (it must when called directly, in virtual mode):
    # ``validated`` hands it the model FastAPI just built instead.
    return await dispatch(request, "create_sales_order", validated(body))


@router.get(_SO + "/{SalesOrderNo}", responses={200: {"model": SalesOrderPublic}})
@fast
async def get_sales_order(request: HttpRequest, SalesOrderNo: str) -> HttpResponse:
    return await dispatch(request, "get_sales_order", None, {"SalesOrderNo": SalesOrderNo})


@router.get(_SO, summary="Look up sales orders by external reference")
@fast
async def find_sales_orders(request: HttpRequest, ExtRef: str | None = Query(None)) -> HttpResponse:
    return await dispatch(request, "find_sales_orders", None, {"ExtRef": ExtRef})


@router.post(_SO + "/{SalesOrderNo}/cancel", responses={200: {"model": SalesOrderPublic}})
@fast
async def cancel_sales_order(request: HttpRequest, SalesOrderNo: str) -> HttpResponse:
    return await dispatch(request, "cancel_sales_order", None, {"SalesOrderNo": SalesOrderNo})


@router.post(_SO + "/{SalesOrderNo}/goods-issue", status_code=201)
@fast
async def post_goods_issue(request: HttpRequest, SalesOrderNo: str) -> HttpResponse:
    return await dispatch(request, "post_goods_issue", None, {"SalesOrderNo": SalesOrderNo})


@router.post(_SO + "/{SalesOrderNo}/invoice", status_code=201)
@fast
async def post_invoice(request: HttpRequest, SalesOrderNo: str) -> HttpResponse:
    return await dispatch(request, "post_invoice", None, {"SalesOrderNo": SalesOrderNo})


def create_app(core: SystemCore, gateway: Gateway | None = None, *, supplier: bool = True, **kwargs: Any) -> FastAPI:
    """The ERP app; ``kwargs`` go to ``mocks.app.make_app`` (admin_token, fault_engine, clock, ...).

    A live ERP hosts its slice of the world: unless ``supplier=False`` (or one already runs) the
    supplier process is started in the core's env, so backorders get filled on the scaled clock.
    """
    if supplier and isinstance(core, ErpCore) and core.supplier is None:
        start_supplier(core.env, core, core.scenario, core.streams)
        # The world faults the ERP hosts run on its own (scaled) clock, as in a virtual run.
        schedule_world_faults(core.env, core, core.scenario.faults, core.streams)
    return make_app(core, router, gateway, title="Distribution Twin mock ERP", **kwargs)
