"""WMS dialect models (snake_case, ``FO-000123`` ids, epoch-millisecond timestamps, quantities EA).

Create models validate input (``extra="forbid"``) for both the FastAPI adapter and the core: the core
re-validates dict bodies with the same models because in virtual mode nothing sits in front of it.
``uom`` is a plain string on purpose: the core rejects anything but EA with a message saying the
integration must convert, rather than a generic enum error. Public models document response shapes
(the core builds plain dicts of the same shape).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# ----------------------------------------------------------------------------------- input


class ShipToCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=3)
    region: str | None = Field(None, max_length=50, description="optional state / province")


class FulfillmentLineCreate(_In):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=10_000_000, description="eaches")
    uom: str = Field("EA", description="must be EA: the WMS counts eaches only")


class FulfillmentCreate(_In):
    client_reference: str = Field(min_length=1, max_length=64, description="the CRM order id")
    erp_order: str = Field(min_length=1, max_length=64, description="the ERP SalesOrderNo")
    warehouse: str = Field("WH01", min_length=1, max_length=16)
    ship_to: ShipToCreate
    lines: list[FulfillmentLineCreate] = Field(min_length=1, max_length=1000)
    requested_ship_date_ms: int | None = Field(None, ge=0)


class ShipConfirm(_In):
    carrier: str = Field(min_length=1, max_length=64)
    tracking_number: str = Field(min_length=1, max_length=64)


# ----------------------------------------------------------------------------------- output


class FulfillmentCreated(_Out):
    fulfillment_id: str
    status: str
    client_reference: str


class PackagePublic(_Out):
    weight_kg: float


class FulfillmentLinePublic(_Out):
    sku: str
    quantity: int
    uom: str = "EA"


class FulfillmentPublic(_Out):
    fulfillment_id: str
    client_reference: str
    erp_order: str
    warehouse: str
    status: str  # released, picked, packed, ready_to_ship, shipped
    ship_to: dict[str, Any]
    lines: list[FulfillmentLinePublic]
    packages: list[PackagePublic]
    requested_ship_date_ms: int | None = None
    created_at_ms: int
    picked_at_ms: int | None = None
    packed_at_ms: int | None = None
    ready_to_ship_at_ms: int | None = None
    shipped_at_ms: int | None = None
    planned_ship_date: str | None = None  # YYYY-MM-DD the carrier collects it (cut-off applied)
    carrier: str | None = None
    tracking_number: str | None = None


class FulfillmentList(_Out):
    items: list[FulfillmentPublic]
    total: int


class MilestoneEvent(_Out):
    """``data`` of the fulfillment.picked / .packed / .ready_to_ship webhooks."""

    fulfillment_id: str
    client_reference: str
    erp_order: str
    status: str
    packages: list[PackagePublic]
    event_time_ms: int
