"""Carrier dialect models (camelCase, ``1Z...`` tracking numbers, pounds, RFC 3339 with offset).

Create models validate input (``extra="forbid"``) for both the FastAPI adapter and the core (virtual
mode calls the core with plain dicts). Public models document response shapes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Service = Literal["GROUND", "2DAY", "NEXT_DAY"]
MAX_PACKAGE_LB = 150.0  # parcel network limit; heavier goes LTL freight


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# ----------------------------------------------------------------------------------- input


class Place(_In):
    postalCode: str = Field(min_length=1, max_length=20)
    countryCode: str | None = Field(None, min_length=2, max_length=3)


class ShipTo(_In):
    name: str | None = Field(None, max_length=200)
    addressLine1: str | None = Field(None, max_length=200)
    addressLine2: str | None = Field(None, max_length=200)
    city: str | None = Field(None, max_length=100)
    stateProvince: str | None = Field(None, max_length=50)
    postalCode: str = Field(min_length=1, max_length=20)
    countryCode: str | None = Field(None, min_length=2, max_length=3)


class Package(_In):
    weightLb: float = Field(gt=0, le=MAX_PACKAGE_LB, allow_inf_nan=False)


class RateRequest(_In):
    shipFrom: Place
    shipTo: Place
    packages: list[Package] = Field(min_length=1, max_length=1000)


class ShipmentCreate(_In):
    shipperReference: str = Field(min_length=1, max_length=64, description="the CRM order id")
    shipFrom: Place | None = Field(None, description="defaults to the first warehouse")
    shipTo: ShipTo
    packages: list[Package] = Field(min_length=1, max_length=1000)
    service: Service = "GROUND"


# ----------------------------------------------------------------------------------- output


class RatePublic(_Out):
    service: str
    amount: float
    currency: str
    transitDays: int


class RatesPublic(_Out):
    rates: list[RatePublic]


class ShipmentCreated(_Out):
    trackingNumber: str
    labelFormat: Literal["ZPL"] = "ZPL"
    label: str
    pickupDate: str | None  # YYYY-MM-DD of the pickup that will collect it


class TrackingEventPublic(_Out):
    eventCode: str  # PU, IT, EX, DL
    description: str
    eventTime: str  # RFC 3339 with offset


class TrackingPublic(_Out):
    trackingNumber: str
    shipperReference: str
    service: str
    status: str  # LABEL_CREATED, PICKED_UP, IN_TRANSIT, EXCEPTION, DELIVERED
    weightLb: float
    pickupDate: str | None
    events: list[TrackingEventPublic]


class TrackingUpdate(_Out):
    """``data`` of the ``tracking.update`` webhook."""

    trackingNumber: str
    shipperReference: str
    eventCode: str
    eventTime: str
