"""FastAPI adapter of the carrier: validate the dialect, then hand the request to the core.

Rate limiting (429 + Retry-After) is applied by the gateway from the scenario's ApiProfile, not here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi import Request as HttpRequest
from fastapi import Response as HttpResponse

from mocks.app import make_app
from mocks.carrier.schemas import RateRequest, RatesPublic, ShipmentCreate, ShipmentCreated, TrackingPublic
from mocks.core.base import SystemCore
from mocks.core.validation import validated
from mocks.fastpath import fast
from mocks.gateway import Gateway
from mocks.http import dispatch

router = APIRouter(prefix="/v1", tags=["carrier"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"description": "unknown tracking number"},
    422: {"description": "invalid body: the error names the field path and the reason"},
    429: {"description": "rate limited; see Retry-After"},
}


@router.post("/rates", response_model=RatesPublic, responses=_ERRORS)
@fast
async def get_rates(request: HttpRequest, body: RateRequest) -> HttpResponse:
    return await dispatch(request, "get_rates", validated(body))


@router.post("/shipments", status_code=201, response_model=ShipmentCreated, responses=_ERRORS)
@fast
async def create_shipment(request: HttpRequest, body: ShipmentCreate) -> HttpResponse:
    return await dispatch(request, "create_shipment", validated(body))


@router.get("/tracking/{trackingNumber}", response_model=TrackingPublic, responses=_ERRORS)
@fast
async def get_tracking(request: HttpRequest, trackingNumber: str) -> HttpResponse:  # noqa: N803 - dialect name
    return await dispatch(request, "get_tracking", params={"trackingNumber": trackingNumber})


def create_app(core: SystemCore, gateway: Gateway | None = None, **kwargs: Any) -> FastAPI:
    """The carrier app; ``kwargs`` go to ``mocks.app.make_app`` (admin_token, fault_engine, clock, ...).
    The warehouse / carrier world lives inside the core, so it runs on whatever clock drives its env."""
    return make_app(core, router, gateway, title="Distribution Twin mock carrier", **kwargs)
