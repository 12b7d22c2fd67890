"""Seeded master data (Faker): customers with addresses and credit, SKUs with prices and units,
contract prices, suppliers, warehouses, sales reps. Same seed, identical data.

The dataclasses here are the interface every system core reads; ``generate`` builds them.

Speed: Faker costs 50-100 us per call, so it only fills small pools of names, streets and
city/state/ZIP triples; numpy draws (named streams ``masterdata.*``) combine the pools. 10,000
customers x 5,000 SKUs generate in well under a second.

Contract prices are *implicit*: whether a (customer, SKU) pair has one, and its discount, is a
keyed hash of the pair (see ``ContractPrices``). A 10,000 x 5,000 catalogue at a 30 % share has
15 million contract prices; storing them would take gigabytes, hashing takes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from faker import Faker

from sim.rng import Streams, derive_seed
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
    ship_to: list[Address]  # 1-3; ship_to[0] is the sold-to location
    credit_limit: float
    terms: str  # NET30, NET45, NET60
    tier: str  # A / B / C
    territory: str
    credit_hold: bool = False
    currency: str = "USD"
    sales_rep: str = ""  # rep_id of the territory's rep
    open_balance: float = 0.0  # receivables open at start (ERP exposure seed)


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
    category: str = ""


@dataclass(frozen=True, slots=True)
class Supplier:
    supplier_id: str  # SUP-0001
    name: str
    address: Address


@dataclass(frozen=True, slots=True)
class Warehouse:
    code: str  # WH01
    name: str
    address: Address


@dataclass(frozen=True, slots=True)
class SalesRep:
    rep_id: str  # REP001
    name: str
    territory: str
    email: str


# --------------------------------------------------------------------------------------- contract prices

_M64 = (1 << 64) - 1
_C1, _C2, _C3 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
DISCOUNT_STEPS_PERMILLE = tuple(range(30, 151, 5))  # 3.0 % .. 15.0 % in half-percent steps


def _mix(x: int) -> int:
    """splitmix64 finaliser on Python ints (must equal ``_mix_np`` bit for bit)."""
    x = (x + _C1) & _M64
    x = ((x ^ (x >> 30)) * _C2) & _M64
    x = ((x ^ (x >> 27)) * _C3) & _M64
    return x ^ (x >> 31)


def _mix_np(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) + np.uint64(_C1)  # uint64 arithmetic wraps, which is what we want
    x = (x ^ (x >> np.uint64(30))) * np.uint64(_C2)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(_C3)
    return x ^ (x >> np.uint64(31))


class ContractPrices(Mapping[tuple[str, str], float]):
    """``(customer_no, sku) -> contract price per EA`` for a ``share`` of all pairs, never stored.

    A pair has a contract iff ``hash(salt, customer, sku) < share``; the discount (3-15 % in
    half-percent steps) comes from other bits of the same hash. Prices are whole cents computed in
    integers, so the scalar path (``__getitem__``) and the vectorised one (``lookup``) agree exactly.
    """

    def __init__(self, customers: list[str], skus: list[str], list_cents: np.ndarray, share: float, salt: int) -> None:
        self._cidx = {c: i for i, c in enumerate(customers)}
        self._sidx = {s: i for i, s in enumerate(skus)}
        self._customers = customers
        self._skus = skus
        self._list_cents = np.asarray(list_cents, dtype=np.int64)
        self._list_cents_py = [int(c) for c in self._list_cents]
        self.share = share
        self._salt = salt & _M64
        # Compare the top 53 bits of the hash with this threshold (share=1 selects everything).
        self._threshold = int(round(share * (1 << 53)))
        self._len: int | None = None

    # -- scalar -------------------------------------------------------------------------------
    def _hash(self, ci: int, si: int) -> int:
        return _mix(((ci << 32) | si) ^ self._salt)

    def get(self, key: tuple[str, str], default: float | None = None) -> float | None:  # type: ignore[override]
        # The hot path (every price check of every order): no exceptions for the common no-contract case.
        try:
            ci, si = self._cidx.get(key[0]), self._sidx.get(key[1])
        except (TypeError, IndexError):
            return default
        if ci is None or si is None:
            return default
        h = self._hash(ci, si)
        if (h >> 11) >= self._threshold:
            return default
        dpm = DISCOUNT_STEPS_PERMILLE[(h & 0xFFFF) % len(DISCOUNT_STEPS_PERMILLE)]
        return ((self._list_cents_py[si] * (1000 - dpm) + 500) // 1000) / 100

    def __getitem__(self, key: tuple[str, str]) -> float:
        p = self.get(key)
        if p is None:
            raise KeyError(key)
        return p

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    # -- vectorised ---------------------------------------------------------------------------
    def lookup(self, cust_idx: np.ndarray, sku_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For index arrays: (has_contract bool array, contract price per EA in cents)."""
        ci = np.asarray(cust_idx, dtype=np.uint64)
        si = np.asarray(sku_idx, dtype=np.uint64)
        h = _mix_np(((ci << np.uint64(32)) | si) ^ np.uint64(self._salt))
        has = (h >> np.uint64(11)) < np.uint64(self._threshold)
        steps = np.asarray(DISCOUNT_STEPS_PERMILLE, dtype=np.int64)
        dpm = steps[((h & np.uint64(0xFFFF)) % np.uint64(len(steps))).astype(np.int64)]
        cents = (self._list_cents[np.asarray(sku_idx, dtype=np.int64)] * (1000 - dpm) + 500) // 1000
        return has, cents

    def customer_index(self, customer_no: str) -> int:
        return self._cidx[customer_no]

    def sku_index(self, sku: str) -> int:
        return self._sidx[sku]

    def _rows(self, chunk: int = 1_000_000) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """All contract pairs as (customer idx, sku idx, cents) arrays, customer-major, in chunks."""
        n_s = len(self._skus)
        if not n_s or not self._customers or self._threshold == 0:
            return
        per = max(1, chunk // n_s)
        s_all = np.arange(n_s, dtype=np.uint64)
        for c0 in range(0, len(self._customers), per):
            c1 = min(len(self._customers), c0 + per)
            ci = np.repeat(np.arange(c0, c1, dtype=np.uint64), n_s)
            si = np.tile(s_all, c1 - c0)
            has, cents = self.lookup(ci, si)
            yield ci[has].astype(np.int64), si[has].astype(np.int64), cents[has]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for ci, si, _ in self._rows():
            for c, s in zip(ci.tolist(), si.tolist(), strict=True):
                yield self._customers[c], self._skus[s]

    def __len__(self) -> int:
        if self._len is None:
            self._len = sum(len(ci) for ci, _, _ in self._rows())
        return self._len

    def frame(self) -> pd.DataFrame:
        cs, ss, ps = [], [], []
        for ci, si, cents in self._rows():
            cs.append(ci)
            ss.append(si)
            ps.append(cents)
        ci = np.concatenate(cs) if cs else np.zeros(0, dtype=np.int64)
        si = np.concatenate(ss) if ss else np.zeros(0, dtype=np.int64)
        cents = np.concatenate(ps) if ps else np.zeros(0, dtype=np.int64)
        return pd.DataFrame(
            {
                # Categoricals: 15 M rows of repeated codes cost codes, not strings.
                "customer_no": pd.Categorical.from_codes(ci, categories=self._customers),
                "sku": pd.Categorical.from_codes(si, categories=self._skus),
                "price_ea": cents / 100,
            }
        )


# --------------------------------------------------------------------------------------- master data


@dataclass(slots=True)
class MasterData:
    customers: list[Customer]
    skus: list[Sku]
    contract_prices: Mapping[tuple[str, str], float]  # (customer_no, sku) -> price per EA
    suppliers: list[Supplier]
    warehouses: list[Warehouse]
    by_customer_no: dict[str, Customer] = field(default_factory=dict)
    by_account_id: dict[str, Customer] = field(default_factory=dict)
    by_sku: dict[str, Sku] = field(default_factory=dict)
    sales_reps: list[SalesRep] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_customer_no = {c.customer_no: c for c in self.customers}
        self.by_account_id = {c.crm_account_id: c for c in self.customers}
        self.by_sku = {s.sku: s for s in self.skus}

    def price(self, customer_no: str, sku: str) -> float:
        """The price a customer pays per EA: contract price if any, else list price."""
        p = self.contract_prices.get((customer_no, sku))
        return p if p is not None else self.by_sku[sku].list_price

    def price_per_uom(self, customer_no: str, sku: str, uom: str) -> float:
        """Price per ``uom`` (EA or CS), rounded to cents, as the CRM quotes it."""
        p = self.price(customer_no, sku)
        return round(p * self.by_sku[sku].case_pack, 2) if uom == "CS" else p


# --------------------------------------------------------------------------------------- ids

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SF_CHECK = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _base62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    if n:
        raise ValueError(f"{n} does not fit in {width} base-62 digits")
    return "".join(reversed(out))


def salesforce_id(prefix: str, number: int, instance: str = "5g") -> str:
    """An 18-char Salesforce-style id: 3-char key prefix (``001`` Account, ``801`` Order), 2-char
    instance, ``0``, 9 base-62 digits of ``number``, then the real 3-char case-safety checksum."""
    if len(prefix) != 3 or len(instance) != 2:
        raise ValueError("prefix must be 3 chars and instance 2 chars")
    id15 = prefix + instance + "0" + _base62(number, 9)
    check = ""
    for i in range(3):
        chunk = id15[i * 5 : i * 5 + 5]
        bits = sum(1 << j for j, ch in enumerate(chunk) if ch.isupper())
        check += _SF_CHECK[bits]
    return id15 + check


# --------------------------------------------------------------------------------------- vocabulary

_REGION_OF_STATE = {
    **dict.fromkeys("CT ME MA NH RI VT NJ NY PA DE MD DC".split(), "Northeast"),
    **dict.fromkeys("AL FL GA KY MS NC SC TN VA WV AR LA".split(), "Southeast"),
    **dict.fromkeys("IL IN MI OH WI IA KS MN MO NE ND SD".split(), "Midwest"),
    **dict.fromkeys("AZ NM OK TX".split(), "Southwest"),
    **dict.fromkeys("CO ID MT NV UT WY AK CA HI OR WA".split(), "West"),
}
TERRITORIES = ("Northeast", "Southeast", "Midwest", "Southwest", "West")
_TRADES = (
    "Plumbing Supply",
    "Electric",
    "HVAC",
    "Industrial",
    "Janitorial",
    "Hardware",
    "Building Supply",
    "Mechanical",
    "Facilities",
    "Contractors",
    "Maintenance",
    "Safety",
)
_SUFFIXES = ("Inc", "LLC", "Co", "Corp", "Group", "& Sons")
_CATEGORIES = {
    "Fasteners": ("Hex Bolt", "Lag Screw", "Wood Screw", "Anchor", "Washer", "Hex Nut"),
    "Safety": ("Nitrile Gloves", "Safety Glasses", "Ear Plugs", "Hi-Vis Vest", "Hard Hat", "Respirator"),
    "Janitorial": ("Shop Towels", "Trash Liners", "Hand Soap", "Degreaser", "Floor Cleaner", "Wipes"),
    "Electrical": ("Cable Ties", "Wire Nuts", "Electrical Tape", "Extension Cord", "LED Bulb", "Conduit Strap"),
    "Plumbing": ("PVC Elbow", "Ball Valve", "Teflon Tape", "Pipe Clamp", "Coupling", "P-Trap"),
    "Packaging": ("Duct Tape", "Stretch Wrap", "Corrugated Box", "Packing Tape", "Bubble Wrap", "Labels"),
}
_SIZES = ("Small", "Medium", "Large", "XL", '1/4"', '3/8"', '1/2"', '3/4"', '1"', "2 in", "3 in", "4 in")
_GRADES = ("Standard", "Heavy Duty", "Pro", "Economy", "Premium", "Industrial")
_WH_CITIES = ("Dallas", "Columbus", "Reno", "Atlanta", "Harrisburg", "Kansas City", "Phoenix", "Memphis")

_TIERS = np.array(["A", "B", "C"])
_TIER_P = (0.1, 0.3, 0.6)
_TIER_LIMIT_MEDIAN = {"A": 250_000.0, "B": 75_000.0, "C": 20_000.0}
_TERMS = np.array(["NET30", "NET45", "NET60"])
_TERMS_P = (0.6, 0.25, 0.15)
_CASE_PACKS = np.array([6, 12, 24, 48])
_CASE_PACK_P = (0.2, 0.4, 0.3, 0.1)
CS_SHARE = 0.4  # share of SKUs the CRM sells by the case
ZIPF_S = 1.0  # popularity ~ 1/rank^s: with 500 SKUs the top fifth carries ~76 % of volume


@dataclass(slots=True)
class _Pools:
    last_names: list[str]
    streets: list[str]
    places: list[tuple[str, str, str]]  # city, state, zip
    people: list[str]


def _pools(fake: Faker, n: int) -> _Pools:
    # Pool sizes scale with the data but are capped: beyond ~1,000 Faker adds cost, not variety.
    k = max(8, min(n, 1000))
    places = []
    for _ in range(k):
        st = fake.state_abbr(include_territories=False, include_freely_associated_states=False)
        places.append((fake.city(), st, fake.zipcode_in_state(st)))
    return _Pools(
        last_names=[fake.last_name() for _ in range(k)],
        streets=[fake.street_name() for _ in range(k)],
        places=places,
        people=[fake.name() for _ in range(max(8, min(n, 300)))],
    )


def _addresses(g: np.random.Generator, pools: _Pools, names: list[str]) -> list[Address]:
    n = len(names)
    bldg = g.integers(1, 9999, size=n)
    street = g.integers(0, len(pools.streets), size=n)
    place = g.integers(0, len(pools.places), size=n)
    suite = np.where(g.random(n) < 0.25, g.integers(100, 999, size=n), 0)
    out = []
    for i in range(n):
        city, st, zp = pools.places[place[i]]
        line1 = f"{bldg[i]} {pools.streets[street[i]]}" + (f" Suite {suite[i]}" if suite[i] else "")
        out.append(Address(names[i], line1, city, st, zp))
    return out


def _company_names(g: np.random.Generator, pools: _Pools, n: int) -> list[str]:
    ln = pools.last_names
    a, b, c = (g.integers(0, len(ln), size=n) for _ in range(3))
    trade = g.integers(0, len(_TRADES), size=n)
    suf = g.integers(0, len(_SUFFIXES), size=n)
    pattern = g.choice(4, size=n, p=(0.45, 0.25, 0.2, 0.1))
    names = []
    for i in range(n):
        p = pattern[i]
        if p == 0:
            names.append(f"{ln[a[i]]} {_TRADES[trade[i]]} {_SUFFIXES[suf[i]]}")
        elif p == 1:
            names.append(f"{ln[a[i]]}-{ln[b[i]]} {_SUFFIXES[suf[i]]}")
        elif p == 2:
            names.append(f"{ln[a[i]]} {_TRADES[trade[i]]}")
        else:
            names.append(f"{ln[a[i]]}, {ln[b[i]]} and {ln[c[i]]}")
    return names


def _faker(streams: Streams, name: str) -> Faker:
    fake = Faker("en_US")
    fake.seed_instance(derive_seed(streams.seed, name))  # per instance: never the global Faker.seed
    return fake


# --------------------------------------------------------------------------------------- generate


def generate(sizes: MasterDataSizes, streams: Streams) -> MasterData:
    """Build the master data for ``sizes`` from the ``masterdata.*`` streams of ``streams``.

    Fresh generators (``Streams.fresh_np``): calling it twice with one ``Streams`` gives the same data."""
    fake = _faker(streams, "masterdata.faker")
    pools = _pools(fake, max(sizes.customers, sizes.skus // 4))

    suppliers = _suppliers(sizes.suppliers, streams.fresh_np("masterdata.suppliers"), pools)
    warehouses = _warehouses(sizes.warehouses, streams.fresh_np("masterdata.warehouses"), pools)
    reps = _sales_reps(sizes.sales_reps, streams.fresh_np("masterdata.reps"), pools)
    customers = _customers(sizes, streams.fresh_np("masterdata.customers"), pools, reps)
    skus = _skus(sizes.skus, streams.fresh_np("masterdata.skus"), suppliers)

    list_cents = np.array([round(s.list_price * 100) for s in skus], dtype=np.int64)
    salt = int(streams.fresh_np("masterdata.contracts").integers(0, 2**63))
    contracts = ContractPrices(
        [c.customer_no for c in customers], [s.sku for s in skus], list_cents, sizes.contract_price_share, salt
    )
    return MasterData(customers, skus, contracts, suppliers, warehouses, sales_reps=reps)


def _suppliers(n: int, g: np.random.Generator, pools: _Pools) -> list[Supplier]:
    names = [f"{x} Manufacturing" for x in _company_names(g, pools, n)]
    addrs = _addresses(g, pools, names)
    return [Supplier(f"SUP-{i + 1:04d}", names[i], addrs[i]) for i in range(n)]


def _warehouses(n: int, g: np.random.Generator, pools: _Pools) -> list[Warehouse]:
    out = []
    for i in range(n):
        city = _WH_CITIES[i % len(_WH_CITIES)] + ("" if i < len(_WH_CITIES) else f" {i // len(_WH_CITIES) + 1}")
        name = f"{city} Distribution Center"
        addr = _addresses(g, pools, [name])[0]
        out.append(Warehouse(f"WH{i + 1:02d}", name, addr))
    return out


def _sales_reps(n: int, g: np.random.Generator, pools: _Pools) -> list[SalesRep]:
    picks = g.integers(0, len(pools.people), size=n)
    reps = []
    for i in range(n):
        name = pools.people[picks[i]]
        email = ".".join(name.lower().replace("'", "").split()[:2]) + f"{i + 1}@example.com"
        reps.append(SalesRep(f"REP{i + 1:03d}", name, TERRITORIES[i % len(TERRITORIES)], email))
    return reps


def _customers(sizes: MasterDataSizes, g: np.random.Generator, pools: _Pools, reps: list[SalesRep]) -> list[Customer]:
    n = sizes.customers
    names = _company_names(g, pools, n)
    sold = _addresses(g, pools, names)
    n_ship = g.choice([1, 2, 3], size=n, p=(0.5, 0.3, 0.2))
    extra_total = int((n_ship - 1).sum())
    extra_names = [""] * extra_total
    extra = _addresses(g, pools, extra_names)
    bill_same = g.random(n) < 0.7
    bill_other = _addresses(g, pools, [f"{nm} Accounts Payable" for nm in names])
    tiers = g.choice(_TIERS, size=n, p=_TIER_P)
    terms = g.choice(_TERMS, size=n, p=_TERMS_P)
    z = g.standard_normal(n)
    medians = np.array([_TIER_LIMIT_MEDIAN[t] for t in tiers])
    limits = np.maximum(1000.0, np.round(medians * np.exp(0.5 * z) / 1000.0) * 1000.0)
    hold = np.zeros(n, dtype=bool)
    n_hold = int(round(sizes.credit_hold_share * n))
    if n_hold:
        hold[g.choice(n, size=n_hold, replace=False)] = True
    # Customers on hold are over their limit; the rest carry some open receivables.
    bal_frac = np.where(hold, g.uniform(1.0, 1.3, size=n), g.uniform(0.0, 0.6, size=n))
    balances = np.round(limits * bal_frac, 2)
    instance = _base62(int(g.integers(0, 62**2)), 2)
    first_id = int(g.integers(10**6, 10**9))
    reps_by_terr: dict[str, list[SalesRep]] = {}
    for r in reps:
        reps_by_terr.setdefault(r.territory, []).append(r)
    rep_pick = g.integers(0, 1 << 30, size=n)

    out = []
    k = 0
    for i in range(n):
        territory = _REGION_OF_STATE.get(sold[i].region, "Southwest")
        ship = [sold[i]]
        for _ in range(int(n_ship[i]) - 1):
            a = extra[k]
            k += 1
            ship.append(Address(f"{names[i]} - {a.city}", a.line1, a.city, a.region, a.postal_code))
        terr_reps = reps_by_terr.get(territory) or reps
        out.append(
            Customer(
                customer_no=f"C{i + 1:06d}",
                crm_account_id=salesforce_id("001", first_id + i, instance),
                name=names[i],
                sold_to=sold[i],
                bill_to=sold[i] if bill_same[i] else bill_other[i],
                ship_to=ship,
                credit_limit=float(limits[i]),
                terms=str(terms[i]),
                tier=str(tiers[i]),
                territory=territory,
                credit_hold=bool(hold[i]),
                sales_rep=terr_reps[int(rep_pick[i]) % len(terr_reps)].rep_id,
                open_balance=float(balances[i]),
            )
        )
    return out


def _skus(n: int, g: np.random.Generator, suppliers: list[Supplier]) -> list[Sku]:
    cats = list(_CATEGORIES)
    cat = g.integers(0, len(cats), size=n)
    noun = g.integers(0, 6, size=n)
    size = g.integers(0, len(_SIZES), size=n)
    grade = g.integers(0, len(_GRADES), size=n)
    prices = np.maximum(0.5, np.round(np.exp(np.log(25.0) + 1.0 * g.standard_normal(n)), 2))
    packs = g.choice(_CASE_PACKS, size=n, p=_CASE_PACK_P)
    uom_cs = g.random(n) < CS_SHARE
    weights = np.maximum(0.01, np.round(np.exp(np.log(0.5) + 0.8 * g.standard_normal(n)), 3))
    supplier = g.integers(0, len(suppliers), size=n)
    # Zipf popularity over a random ranking, so SKU-00001 is not automatically the best seller.
    ranks = g.permutation(n) + 1
    pop = 1.0 / ranks.astype(float) ** ZIPF_S
    pop /= pop.sum()
    out = []
    for i in range(n):
        c = cats[cat[i]]
        out.append(
            Sku(
                sku=f"SKU-{i + 1:05d}",
                description=f"{_CATEGORIES[c][noun[i]]} {_SIZES[size[i]]} {_GRADES[grade[i]]}",
                list_price=float(prices[i]),
                case_pack=int(packs[i]),
                sales_uom="CS" if uom_cs[i] else "EA",
                weight_kg=float(weights[i]),
                supplier_id=suppliers[supplier[i]].supplier_id,
                popularity=float(pop[i]),
                category=c,
            )
        )
    return out


# --------------------------------------------------------------------------------------- export


def _addr_cols(prefix: str, addrs: list[Address]) -> dict[str, list[str]]:
    return {f"{prefix}{f}": [getattr(a, f) for a in addrs] for f in Address.__slots__}


def to_frames(md: MasterData) -> dict[str, pd.DataFrame]:
    """One DataFrame per entity: customers, ship_tos, skus, contract_prices, suppliers, warehouses, sales_reps."""
    cs = md.customers
    customers = pd.DataFrame(
        {
            "customer_no": [c.customer_no for c in cs],
            "crm_account_id": [c.crm_account_id for c in cs],
            "name": [c.name for c in cs],
            "credit_limit": [c.credit_limit for c in cs],
            "open_balance": [c.open_balance for c in cs],
            "terms": [c.terms for c in cs],
            "tier": [c.tier for c in cs],
            "territory": [c.territory for c in cs],
            "sales_rep": [c.sales_rep for c in cs],
            "credit_hold": [c.credit_hold for c in cs],
            "currency": [c.currency for c in cs],
            **_addr_cols("sold_to_", [c.sold_to for c in cs]),
            **_addr_cols("bill_to_", [c.bill_to for c in cs]),
        }
    )
    ship_rows = [(c.customer_no, i, a) for c in cs for i, a in enumerate(c.ship_to)]
    ship_tos = pd.DataFrame(
        {
            "customer_no": [r[0] for r in ship_rows],
            "ship_to_index": [r[1] for r in ship_rows],
            **_addr_cols("", [r[2] for r in ship_rows]),
        }
    )
    skus = pd.DataFrame([{f: getattr(s, f) for f in Sku.__slots__} for s in md.skus], columns=list(Sku.__slots__))
    cp = md.contract_prices
    if isinstance(cp, ContractPrices):
        contracts = cp.frame()
    else:
        contracts = pd.DataFrame(
            {"customer_no": [k[0] for k in cp], "sku": [k[1] for k in cp], "price_ea": list(cp.values())}
        )
    suppliers = pd.DataFrame(
        {
            "supplier_id": [s.supplier_id for s in md.suppliers],
            "name": [s.name for s in md.suppliers],
            **_addr_cols("", [s.address for s in md.suppliers]),
        }
    )
    warehouses = pd.DataFrame(
        {
            "code": [w.code for w in md.warehouses],
            "name": [w.name for w in md.warehouses],
            **_addr_cols("address_", [w.address for w in md.warehouses]),
        }
    )
    reps = pd.DataFrame(
        [{f: getattr(r, f) for f in SalesRep.__slots__} for r in md.sales_reps], columns=list(SalesRep.__slots__)
    )
    return {
        "customers": customers,
        "ship_tos": ship_tos,
        "skus": skus,
        "contract_prices": contracts,
        "suppliers": suppliers,
        "warehouses": warehouses,
        "sales_reps": reps,
    }


def write(md: MasterData, out_dir: str | Path, fmt: Literal["csv", "parquet"] = "csv") -> list[Path]:
    """Write every frame of ``to_frames`` as ``<out_dir>/<name>.<fmt>``; returns the paths."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be csv or parquet, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in to_frames(md).items():
        p = out / f"{name}.{fmt}"
        if fmt == "csv":
            df.to_csv(p, index=False)
        else:
            df.to_parquet(p, index=False)
        paths.append(p)
    return paths
