"""FastAPI adapter of the WMS: validate the dialect, then hand the request to the core."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Query
from fastapi import Request as HttpRequest
from fastapi import Response as HttpResponse

from mocks.app import make_app
from mocks.core.base import SystemCore
from mocks.core.validation import validated
from mocks.fastpath import fast
from mocks.gateway import Gateway
from mocks.http import dispatch
from mocks.wms.schemas import (
    FulfillmentCreate,
    FulfillmentCreated,
    FulfillmentList,
    FulfillmentPublic,
    ShipConfirm,
)

router = APIRouter(prefix="/v1/fulfillment-orders", tags=["fulfillment-orders"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"description": "unknown fulfillment order"},
    409: {"description": "not ready to ship / already shipped"},
    422: {"description": "invalid body: the error names the field path and the reason"},
}


@router.post("", status_code=201, response_model=FulfillmentCreated, responses=_ERRORS)
@fast
async def create_fulfillment(request: HttpRequest, body: FulfillmentCreate) -> HttpResponse:
    return await dispatch(request, "create_fulfillment", validated(body))


@router.get("", response_model=FulfillmentList, responses=_ERRORS)
@fast
async def find_fulfillments(request: HttpRequest, client_reference: str = Query(min_length=1)) -> HttpResponse:
    return await dispatch(request, "find_fulfillments", params={"client_reference": client_reference})


@router.get("/{fulfillment_id}", response_model=FulfillmentPublic, responses=_ERRORS)
@fast
async def get_fulfillment(request: HttpRequest, fulfillment_id: str) -> HttpResponse:
    return await dispatch(request, "get_fulfillment", params={"fulfillment_id": fulfillment_id})


@router.post("/{fulfillment_id}/ship-confirm", response_model=FulfillmentPublic, responses=_ERRORS)
@fast
async def ship_confirm(request: HttpRequest, fulfillment_id: str, body: ShipConfirm) -> HttpResponse:
    return await dispatch(request, "ship_confirm", validated(body), {"fulfillment_id": fulfillment_id})


def create_app(core: SystemCore, gateway: Gateway | None = None, **kwargs: Any) -> FastAPI:
    """The WMS app; ``kwargs`` go to ``mocks.app.make_app`` (admin_token, fault_engine, clock, ...).
    The warehouse / carrier world lives inside the core, so it runs on whatever clock drives its env."""
    return make_app(core, router, gateway, title="Distribution Twin mock WMS", **kwargs)
