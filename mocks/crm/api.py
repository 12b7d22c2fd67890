"""FastAPI adapter of the CRM mock: validate input, hand over to the core via ``dispatch``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, FastAPI
from fastapi import Request as HttpRequest
from fastapi import Response as HttpResponse

from mocks.app import make_app
from mocks.core.base import SystemCore
from mocks.core.validation import validated
from mocks.crm.schemas import (
    AccountPublic,
    ContactListPublic,
    ContactPublic,
    CreatedPublic,
    HistoryPublic,
    OrderCreate,
    OrderPublic,
    OrderUpdate,
)
from mocks.fastpath import fast
from mocks.gateway import Gateway
from mocks.http import dispatch

router = APIRouter()
_API = "/services/data/v60.0/sobjects"


@router.get(_API + "/Account/{Id}", responses={200: {"model": AccountPublic}})
@fast
async def get_account(request: HttpRequest, Id: str) -> HttpResponse:
    return await dispatch(request, "get_account", None, {"Id": Id})


@router.get(_API + "/Account/{Id}/Contacts", responses={200: {"model": ContactListPublic}})
@fast
async def list_contacts(request: HttpRequest, Id: str) -> HttpResponse:
    return await dispatch(request, "list_contacts", None, {"Id": Id})


@router.get(_API + "/Contact/{Id}", responses={200: {"model": ContactPublic}})
@fast
async def get_contact(request: HttpRequest, Id: str) -> HttpResponse:
    return await dispatch(request, "get_contact", None, {"Id": Id})


@router.post(_API + "/Order", status_code=201, responses={201: {"model": CreatedPublic}})
@fast
async def submit_order(request: HttpRequest, body: OrderCreate = Body(...)) -> HttpResponse:
    return await dispatch(request, "submit_order", validated(body))


@router.get(_API + "/Order/{Id}", responses={200: {"model": OrderPublic}})
@fast
async def get_order(request: HttpRequest, Id: str) -> HttpResponse:
    return await dispatch(request, "get_order", None, {"Id": Id})


@router.get(_API + "/Order/{Id}/history", responses={200: {"model": HistoryPublic}})
@fast
async def get_order_history(request: HttpRequest, Id: str) -> HttpResponse:
    return await dispatch(request, "get_order_history", None, {"Id": Id})


@router.patch(_API + "/Order/{Id}", status_code=204)
@fast
async def update_order(request: HttpRequest, Id: str, body: OrderUpdate = Body(...)) -> HttpResponse:
    return await dispatch(request, "update_order", validated(body), {"Id": Id})


def create_app(core: SystemCore, gateway: Gateway | None = None, **kwargs: Any) -> FastAPI:
    """The CRM app; ``kwargs`` go to ``mocks.app.make_app`` (admin_token, fault_engine, clock, ...)."""
    return make_app(core, router, gateway, title="Distribution Twin mock CRM", **kwargs)
