"""The integration's canonical model: one neutral shape every dialect maps into and out of.

Quantities are always in the base unit (EA) and prices per EA, so a mapping mistake (a CS quantity
sent as EA) can only happen at a dialect edge, in ``mappings.py``, where it is tested.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Canonical(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderStatus(StrEnum):
    """Order status as the CRM shows it (values are the CRM picklist values)."""

    SUBMITTED = "Submitted"
    BOOKED = "Booked"
    BACKORDERED = "Backordered"
    CREDIT_HOLD = "Credit Hold"
    IN_FULFILMENT = "In Fulfilment"
    SHIPPED = "Shipped"
    DELIVERED = "Delivered"
    EXCEPTION = "Exception"
    CANCELLED = "Cancelled"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def terminal(self) -> bool:
        return self in (OrderStatus.DELIVERED, OrderStatus.CANCELLED)

    def advances_from(self, current: OrderStatus | str | None) -> bool:
        """True if moving from ``current`` to this status is progress, False for a duplicate, an
        out-of-order event (IT after DL) or anything after a terminal status.

        Exception and Cancelled are special: they can interrupt any open order. From Exception any
        later real milestone is accepted, since an exception is a flag for people, not a position
        in the flow (a carrier exception is usually followed by delivery)."""
        return status_advances(self, current)


# Booked, Backordered and Credit Hold are alternatives at the same step, not a progression.
_RANK: dict[OrderStatus, int] = {
    OrderStatus.SUBMITTED: 0,
    OrderStatus.BOOKED: 1,
    OrderStatus.BACKORDERED: 1,
    OrderStatus.CREDIT_HOLD: 1,
    OrderStatus.IN_FULFILMENT: 2,
    OrderStatus.SHIPPED: 3,
    OrderStatus.DELIVERED: 4,
    OrderStatus.EXCEPTION: 5,
    OrderStatus.CANCELLED: 6,
}
# The same ranks by plain value. A StrEnum member hashes and compares as its value, so one dict
# answers for members and for the status strings stored in order states; it spares the workflows
# an ``OrderStatus(...)`` construction (an enum lookup by value, ~1 us) per comparison.
_RANK_OF: dict[str, int] = {s.value: r for s, r in _RANK.items()}
_R_EXCEPTION = _RANK[OrderStatus.EXCEPTION]
_R_SUBMITTED = _RANK[OrderStatus.SUBMITTED]
_R_TERMINAL = frozenset(_RANK[s] for s in OrderStatus if s.terminal)
_R_INTERRUPTS = frozenset({_RANK[OrderStatus.EXCEPTION], _RANK[OrderStatus.CANCELLED]})


def _rank_of(status: OrderStatus | str) -> int:
    try:
        return _RANK_OF[status]
    except (KeyError, TypeError):
        return OrderStatus(status).rank  # not a status: the ValueError ``OrderStatus(...)`` raises


def status_advances(new: OrderStatus | str, current: OrderStatus | str | None) -> bool:
    """``OrderStatus(new).advances_from(current)`` on status values or members alike, without
    building the enum members (both are validated the same way: a ValueError for a non-status).
    Every rank is distinct except Booked / Backordered / Credit Hold, which are not equal to one
    another and are not terminal, so comparing ranks and values decides as the members did."""
    r_new = _rank_of(new)
    if current is None:
        return True
    r_cur = _rank_of(current)
    if current == new or r_cur in _R_TERMINAL:
        return False
    if r_new in _R_INTERRUPTS:
        return True
    if r_cur == _R_EXCEPTION:
        return r_new > _R_SUBMITTED
    return r_new > r_cur


class Address(Canonical):
    name: str
    line1: str
    city: str
    postal_code: str
    country: str = "US"
    region: str | None = None


class Customer(Canonical):
    customer_no: str
    name: str
    credit_hold: bool = False
    credit_limit: float | None = None
    exposure: float | None = None
    terms: str | None = None
    currency: str = "USD"


class Product(Canonical):
    sku: str
    description: str = ""
    case_pack: int = Field(1, ge=1)
    list_price_each: float | None = None


class OrderLine(Canonical):
    sku: str
    quantity_each: int = Field(ge=1)
    unit_price_each: float | None = Field(None, ge=0)  # None: take the ERP contract price


class Order(Canonical):
    crm_id: str
    order_number: str | None = None
    po_number: str | None = None
    customer_no: str
    account_id: str | None = None
    ship_to: Address | None = None
    requested_date: dt.date | None = None
    lines: tuple[OrderLine, ...]


class Package(Canonical):
    weight_kg: float = Field(ge=0)


class Shipment(Canonical):
    crm_id: str
    fulfillment_id: str
    erp_order: str | None = None
    ship_to: Address | None = None
    packages: tuple[Package, ...] = ()
    tracking_number: str | None = None


class Invoice(Canonical):
    crm_id: str
    invoice_no: str
    amount: float
    currency: str = "USD"
