"""CRM dialect models (Salesforce-like: PascalCase, ``__c`` custom fields, dates YYYY-MM-DD).

Create/Update models validate input (``extra="forbid"``) for both the FastAPI adapter and the core,
which re-validates dict bodies with them (virtual mode bypasses FastAPI). Public models document the
response shapes.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mocks.core.validation import parse, validation_error

__all__ = ["parse", "validation_error"]

Status = Literal[
    "Submitted",
    "Booked",
    "Credit Hold",
    "Backordered",
    "In Fulfilment",
    "Shipped",
    "Delivered",
    "Exception",
    "Cancelled",
]
STATUSES: tuple[str, ...] = get_args(Status)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


def _iso_date(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        date.fromisoformat(v)
    except ValueError:
        raise ValueError(f"must be a date YYYY-MM-DD, got {v!r}") from None
    if len(v) != 10:
        raise ValueError(f"must be a date YYYY-MM-DD, got {v!r}")
    return v


# ----------------------------------------------------------------------------------- input


class OrderItemCreate(_In):
    ProductCode: str = Field(min_length=1)
    Quantity: int = Field(gt=0, le=10_000_000)
    UnitOfMeasure__c: Literal["EA", "CS"] = "EA"
    UnitPrice: float | None = Field(None, ge=0, allow_inf_nan=False, description="per UnitOfMeasure__c")


class AddressIn(_In):
    """Salesforce compound address (lower camelCase keys, as the REST API spells them)."""

    street: str = Field(min_length=1, max_length=255)
    city: str = Field(min_length=1, max_length=40)
    state: str | None = Field(None, max_length=80)
    postalCode: str = Field(min_length=1, max_length=20)
    country: str = Field("US", min_length=1, max_length=80)


class OrderCreate(_In):
    AccountId: str = Field(min_length=15, max_length=18)
    EffectiveDate: str
    RequestedDeliveryDate__c: str | None = None
    PoNumber: str | None = Field(None, max_length=80)
    ShippingAddress: AddressIn | None = Field(None, description="defaults to the account's shipping address")
    ShipToName__c: str | None = Field(None, max_length=255)
    OrderItems: list[OrderItemCreate] = Field(min_length=1, max_length=1000)

    @field_validator("EffectiveDate", "RequestedDeliveryDate__c")
    @classmethod
    def _dates(cls, v: str | None) -> str | None:
        return _iso_date(v)


class OrderUpdate(_In):
    Status: Status
    ExternalOrderNo__c: str | None = Field(None, max_length=80)
    TrackingNumber__c: str | None = Field(None, max_length=80)
    StatusReason__c: str | None = Field(None, max_length=255)


# ----------------------------------------------------------------------------------- output


class CreatedPublic(_Out):
    id: str
    success: bool = True
    errors: list[Any] = Field(default_factory=list)


class AccountPublic(_Out):
    Id: str
    Name: str
    ErpCustomerNo__c: str
    Territory__c: str
    Tier__c: str
    ShippingAddress: dict[str, Any]
    BillingAddress: dict[str, Any]


class ContactPublic(_Out):
    Id: str
    AccountId: str
    FirstName: str
    LastName: str
    Title: str
    Email: str
    Phone: str


class ContactListPublic(_Out):
    totalSize: int
    done: bool = True
    records: list[ContactPublic]


class OrderAccountPublic(_Out):
    Id: str
    ErpCustomerNo__c: str


class OrderPublic(_Out):
    Id: str
    OrderNumber: str
    AccountId: str
    Account: OrderAccountPublic
    Status: str
    EffectiveDate: str
    RequestedDeliveryDate__c: str | None = None
    PoNumber: str | None = None
    ShippingAddress: dict[str, Any] | None = None
    ShipToName__c: str | None = None
    OrderItems: list[dict[str, Any]]
    CreatedDate: str
    LastModifiedDate: str
    ExternalOrderNo__c: str | None = None
    TrackingNumber__c: str | None = None
    StatusReason__c: str | None = None


class HistoryEntryPublic(_Out):
    Field: str  # "Status"
    OldValue: str | None
    NewValue: str
    Reason: str | None = None
    CreatedDate: str


class HistoryPublic(_Out):
    OrderId: str
    totalSize: int
    records: list[HistoryEntryPublic]
