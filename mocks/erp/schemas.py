"""ERP dialect models (PascalCase, base UoM EA, dates YYYYMMDD).

Create models validate input (``extra="forbid"``) for both the FastAPI adapter and the core: the core
re-validates dict bodies with the same models because in virtual mode nothing sits in front of it.
Public models document the response shapes (the core builds plain dicts of the same shape).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


_VALID_DATES: set[str] = set()  # strptime is slow and an order book uses few distinct dates


def _yyyymmdd(v: str | None) -> str | None:
    if v is None or v in _VALID_DATES:
        return v
    try:
        datetime.strptime(v, "%Y%m%d")
    except ValueError:
        raise ValueError(f"must be a date YYYYMMDD, got {v!r}") from None
    if len(v) != 8:
        raise ValueError(f"must be a date YYYYMMDD, got {v!r}")
    if len(_VALID_DATES) < 100_000:
        _VALID_DATES.add(v)
    return v


# ----------------------------------------------------------------------------------- input


class TokenRequest(_In):
    grant_type: Literal["client_credentials"]
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    scope: str | None = None


class SalesOrderLineCreate(_In):
    ItemNo: str = Field(min_length=1)
    Qty: int = Field(gt=0, le=10_000_000)
    UoM: Literal["EA", "CS"] = "EA"
    UnitPrice: float = Field(ge=0, allow_inf_nan=False, description="price per the line's UoM")


class SalesOrderCreate(_In):
    ExtRef: str = Field(min_length=1, max_length=64, description="the CRM order id")
    SoldTo: str = Field(min_length=1)
    Plant: str | None = Field(None, description="defaults to the first warehouse (WH01)")
    RequestedDate: str | None = None
    PoNumber: str | None = Field(None, max_length=80, description="customer purchase order number")
    Lines: list[SalesOrderLineCreate] = Field(min_length=1, max_length=1000)

    @field_validator("RequestedDate")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        return _yyyymmdd(v)


# ----------------------------------------------------------------------------------- output


class TokenPublic(_Out):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str


class AddressPublic(_Out):
    Name: str
    Street: str
    City: str
    State: str
    PostalCode: str
    Country: str


class CustomerPublic(_Out):
    CustomerNo: str
    Name: str
    CreditLimit: float
    Exposure: float
    CreditHold: bool
    Terms: str
    Currency: str
    ShipTo: AddressPublic  # the default (first) ship-to


class ItemPublic(_Out):
    ItemNo: str
    Description: str
    BaseUoM: Literal["EA"] = "EA"
    CasePack: int
    ListPrice: float


class PricePublic(_Out):
    ItemNo: str
    UnitPrice: float
    PriceUoM: Literal["EA"] = "EA"


class PricesPublic(_Out):
    Customer: str
    Prices: list[PricePublic]


class AtpItemPublic(_Out):
    ItemNo: str
    Available: int


class AtpPublic(_Out):
    Plant: str
    Items: list[AtpItemPublic]


class SalesOrderLinePublic(_Out):
    LineNo: int
    ItemNo: str
    QtyOrdered: int  # EA
    QtyReserved: int
    QtyBackordered: int
    UoM: str  # as ordered
    Qty: int  # as ordered, in UoM
    UnitPrice: float  # per EA


class SalesOrderPublic(_Out):
    SalesOrderNo: str
    ExtRef: str
    SoldTo: str
    Plant: str
    RequestedDate: str | None = None
    PoNumber: str | None = None
    Status: str  # OPEN, BACKORDERED, CREDIT_HOLD, GOODS_ISSUED, INVOICED, CANCELLED
    NetValue: float
    Currency: str
    Lines: list[SalesOrderLinePublic]
