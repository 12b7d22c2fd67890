"""Seeded master data (Faker): customers with addresses and credit, SKUs with prices and units,
contract prices, suppliers, warehouses. Same seed, identical data.

The dataclasses here are the interface every system core reads; ``generate`` builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.rng import Streams
from sim.scenario import MasterDataSizes


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    line1: str
    city: str
    region: str
    postal_code: str
    country: str = "US"


@dataclass(slots=True)
class Customer:
    customer_no: str  # ERP id, e.g. C000123
    crm_account_id: str  # CRM id, 18 chars starting with 001
    name: str
    sold_to: Address
    bill_to: Address
    ship_to: list[Address]
    credit_limit: float
    terms: str  # NET30, NET60, ...
    tier: str  # A / B / C
    territory: str
    credit_hold: bool = False
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class Sku:
    sku: str  # SKU-00001 (same code in every system)
    description: str
    list_price: float  # per EA
    case_pack: int  # EA per CS
    sales_uom: str  # what CRM sells in: EA or CS
    weight_kg: float  # per EA
    supplier_id: str
    popularity: float  # relative demand weight (sums to 1 over the catalogue)


@dataclass(frozen=True, slots=True)
class Supplier:
    supplier_id: str
    name: str
    address: Address


@dataclass(frozen=True, slots=True)
class Warehouse:
    code: str  # WH01
    name: str
    address: Address


@dataclass(slots=True)
class MasterData:
    customers: list[Customer]
    skus: list[Sku]
    contract_prices: dict[tuple[str, str], float]  # (customer_no, sku) -> price per EA
    suppliers: list[Supplier]
    warehouses: list[Warehouse]
    by_customer_no: dict[str, Customer] = field(default_factory=dict)
    by_account_id: dict[str, Customer] = field(default_factory=dict)
    by_sku: dict[str, Sku] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_customer_no = {c.customer_no: c for c in self.customers}
        self.by_account_id = {c.crm_account_id: c for c in self.customers}
        self.by_sku = {s.sku: s for s in self.skus}

    def price(self, customer_no: str, sku: str) -> float:
        """The price a customer pays per EA: contract price if any, else list price."""
        p = self.contract_prices.get((customer_no, sku))
        return p if p is not None else self.by_sku[sku].list_price


def generate(sizes: MasterDataSizes, streams: Streams) -> MasterData:
    raise NotImplementedError("filled in by the foundation work")
