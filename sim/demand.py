"""Customer demand: non-stationary arrivals (thinning) with intraday, weekday, week-of-month and
quarter-end profiles; order lines and quantities drawn from the master data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DemandLine:
    sku: str
    quantity: int  # in ``uom``
    uom: str  # the SKU's sales UoM (EA or CS)
    unit_price: float  # price per ``uom`` the customer expects (contract or list)


@dataclass(frozen=True, slots=True)
class DemandOrder:
    key: str  # harness id, D0000001 (becomes the CRM PoNumber)
    t: float  # simulated seconds since start
    customer_no: str
    crm_account_id: str
    ship_to_index: int
    lines: tuple[DemandLine, ...]
    requested_t: float  # requested delivery time
