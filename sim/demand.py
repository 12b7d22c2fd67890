"""Customer demand: non-stationary arrivals (thinning) with intraday, weekday, week-of-month and
quarter-end profiles; order lines and quantities drawn from the master data.

Intensity. With ``process: nhpp`` the arrival rate is piecewise constant on local clock hours::

    lambda(t) = c(t) * intraday[hour] * weekday[dow] * month_weeks[part of month]

``part of month`` splits each month into ``len(month_weeks)`` equal slices (``Calendar.month_part``).
The constant ``c`` takes one value before and one inside the surge window (the last
``surge.weeks`` weeks of the horizon), chosen so that ``(1 - share) * orders`` arrive before the
window and ``share * orders`` in it; the window's intensity is then multiplied by
``peak_multiplier``, so the expected total is ``orders * (1 - share + share * peak_multiplier)``.
If the profile has no weight on one side of the window boundary, the other side takes all of
``orders``. The surge start is a bin edge, so the boundary is exact; profile keys are read at the
middle of each hour. ``process: poisson`` is the constant rate ``orders / horizon`` (no profiles,
no surge): the arrival process for queueing-theory checks.

Arrivals. Thinning (Lewis & Shedler, 1979) against a piecewise-constant majorant, vectorised: the
horizon is cut into blocks of 24 bins (about a day); in each block candidates are a homogeneous
Poisson process at the block's peak rate ``M`` (a Poisson count, then uniform positions), and a
candidate at ``t`` is kept with probability ``lambda(t) / M``. This is exact for any intensity
bounded by its block peak and wastes only the block's peak-to-mean ratio in candidates; a million
orders over 13 weeks take well under a second.

Orders. Contents come from stream ``order_lines`` in fixed-size chunks, so the k-th order's customer
and lines depend only on the seed and k, not on how many orders arrive (common random numbers
across arrival variants). Arrival times come from stream ``arrivals``. Both are drawn from fresh
generators (``Streams.fresh_np``), so iterating ``orders()`` twice replays the same orders.
``orders()`` builds frozen dataclasses (~8 us per order: a million take ~9 s); ``frames()`` is the
vectorised path (~3 s per million) for analyses that do not need the objects.

Usage in a SimPy world: ``env.process(model.process(env, submit))``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.calendar import Calendar, surge_window
from sim.masterdata import ContractPrices, MasterData
from sim.rng import Streams
from sim.scenario import Scenario


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


TIER_WEIGHT = {"A": 4.0, "B": 2.0, "C": 1.0}  # relative order frequency of a customer by tier
CHUNK = 16_384  # orders drawn per chunk of ``order_lines`` (fixed: see module docstring)
_BLOCK_BINS = 24


class DemandError(ValueError):
    """The demand section cannot produce a rate (e.g. every profile weight in the horizon is 0)."""


def order_key(i: int) -> str:
    """Harness key of the i-th order (0-based): D0000001, ..."""
    return f"D{i + 1:07d}"


def intensity(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """The piecewise-constant arrival rate: bin ``edges`` (n+1, seconds) and ``rates`` (n, orders/s).

    Raises DemandError when orders are expected but the profile is zero over the whole horizon."""
    d = scenario.demand
    h = float(scenario.horizon)
    if d.process == "poisson":
        return np.array([0.0, h]), np.array([d.orders / h])
    cal = Calendar.from_scenario(scenario)
    off = cal._local_epoch_s % 3600.0
    first = 3600.0 - off if off else 3600.0
    s0, _ = surge_window(scenario)
    inner = [np.arange(first, h, 3600.0)]
    if 0 < s0 < h:
        inner.append(np.array([s0]))
    edges = np.unique(np.concatenate([[0.0], *inner, [h]]))
    mids = (edges[:-1] + edges[1:]) / 2
    lens = np.diff(edges)
    shape = (
        np.asarray(d.intraday)[cal.hour(mids)]
        * np.asarray(d.weekday)[cal.weekday(mids)]
        * np.asarray(d.month_weeks)[cal.month_part(mids, len(d.month_weeks))]
    )
    in_s = edges[:-1] >= s0
    mass_n = float((shape * lens)[~in_s].sum())
    mass_s = float((shape * lens)[in_s].sum())
    if mass_n <= 0 and mass_s <= 0:
        if d.orders == 0:
            return edges, np.zeros_like(mids)
        raise DemandError(
            "demand: intraday x weekday x month_weeks is zero over the whole horizon, so no order can arrive"
        )
    # A side of the surge boundary with no profile weight cannot hold its share: the other takes all.
    share_s = d.surge.share if mass_n > 0 and mass_s > 0 else (1.0 if mass_s > 0 else 0.0)
    c_n = d.orders * (1 - share_s) / mass_n if mass_n > 0 else 0.0
    c_s = d.orders * share_s / mass_s * d.surge.peak_multiplier if mass_s > 0 else 0.0
    return edges, shape * np.where(in_s, c_s, c_n)


class DemandModel:
    def __init__(self, scenario: Scenario, md: MasterData, streams: Streams) -> None:
        self.scenario = scenario
        self.md = md
        self.streams = streams
        self.calendar = Calendar.from_scenario(scenario)
        self.horizon = float(scenario.horizon)
        self.edges, self.rates = intensity(scenario)
        self._cum = np.concatenate([[0.0], np.cumsum(self.rates * np.diff(self.edges))])
        self._arrivals: np.ndarray | None = None
        self._static = _Static.of(md)

    def rate(self, t: float) -> float:
        """Orders per simulated second at ``t`` (0 outside [0, horizon))."""
        if not 0 <= t < self.horizon:
            return 0.0
        return float(self.rates[np.searchsorted(self.edges, t, side="right") - 1])

    def rates_at(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        i = np.clip(np.searchsorted(self.edges, t, side="right") - 1, 0, len(self.rates) - 1)
        return np.where((t >= 0) & (t < self.horizon), self.rates[i], 0.0)

    def _cumulative(self, t: float) -> float:
        t = min(max(t, 0.0), self.horizon)
        i = min(int(np.searchsorted(self.edges, t, side="right")) - 1, len(self.rates) - 1)
        return float(self._cum[i] + self.rates[i] * (t - self.edges[i]))

    def expected_count(self, t0: float, t1: float) -> float:
        """Expected arrivals in [t0, t1) (the integral of the rate)."""
        return max(0.0, self._cumulative(t1) - self._cumulative(t0))

    @property
    def expected_total(self) -> float:
        return float(self._cum[-1])

    # -- arrivals -----------------------------------------------------------------------------
    def arrival_times(self) -> np.ndarray:
        """Sorted arrival times over [0, horizon) (cached; stream ``arrivals``)."""
        if self._arrivals is None:
            self._arrivals = self._thin(self.streams.fresh_np("arrivals"))
        return self._arrivals

    def _thin(self, g: np.random.Generator) -> np.ndarray:
        n_bins = len(self.rates)
        starts = np.arange(0, n_bins, _BLOCK_BINS)
        b0 = self.edges[starts]
        b1 = self.edges[np.minimum(starts + _BLOCK_BINS, n_bins)]
        peak = np.maximum.reduceat(self.rates, starts)
        counts = g.poisson(peak * (b1 - b0))
        total = int(counts.sum())
        lo = np.repeat(b0, counts)
        cand = lo + g.random(total) * np.repeat(b1 - b0, counts)
        keep = g.random(total) * np.repeat(peak, counts) < self.rates_at(cand)
        return np.sort(cand[keep])

    # -- orders -------------------------------------------------------------------------------
    def _chunks(self) -> Iterator[_Chunk]:
        times = self.arrival_times()
        g = self.streams.fresh_np("order_lines")  # fresh: every iteration yields the same orders
        for c0 in range(0, len(times), CHUNK):
            yield _draw_chunk(g, self._static, self.scenario.demand, times[c0 : c0 + CHUNK], c0)

    def orders(self) -> Iterator[DemandOrder]:
        """Every order over the horizon in time order, keys D0000001, D0000002, ...

        Building the Python objects costs ~8 us per order (frozen dataclasses); ``frames()`` gives
        the same demand as DataFrames about three times faster, for volume analyses."""
        lead = float(self.scenario.demand.requested_lead)
        customers = self.md.customers
        codes = [s.sku for s in self.md.skus]
        uoms = [s.sales_uom for s in self.md.skus]
        for ch in self._chunks():
            all_lines = [
                DemandLine(codes[si], qi, uoms[si], ci / 100)
                for si, qi, ci in zip(ch.sku.tolist(), ch.qty.tolist(), ch.cents.tolist(), strict=True)
            ]
            t_l, c_l, sh_l, ends_l = ch.times.tolist(), ch.cust.tolist(), ch.ship.tolist(), ch.ends.tolist()
            j = 0
            for i in range(len(t_l)):
                c = customers[c_l[i]]
                k = ends_l[i]
                t = t_l[i]
                yield DemandOrder(
                    f"D{ch.first + i + 1:07d}",  # order_key, inlined: this loop runs a million times
                    t,
                    c.customer_no,
                    c.crm_account_id,
                    sh_l[i],
                    tuple(all_lines[j:k]),
                    t + lead,
                )
                j = k

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The same demand as ``orders()``, vectorised: (orders, lines) DataFrames.

        orders: key, t, customer_no, crm_account_id, ship_to_index, n_lines, requested_t;
        lines: key, line_no, sku, quantity, uom, unit_price, qty_each."""
        chunks = list(self._chunks())
        cat = np.concatenate
        z = np.zeros(0, dtype=np.int64)
        times = cat([c.times for c in chunks]) if chunks else np.zeros(0)
        cust = cat([c.cust for c in chunks]) if chunks else z
        n_lines = cat([c.n_lines for c in chunks]) if chunks else z
        sku = cat([c.sku for c in chunks]) if chunks else z
        qty = cat([c.qty for c in chunks]) if chunks else z
        cents = cat([c.cents for c in chunks]) if chunks else z
        md = self.md
        # One categories index of keys shared by both frames: a million strings are built once.
        key_index = pd.Index([order_key(i) for i in range(len(times))], dtype=object)
        owner = np.repeat(np.arange(len(times)), n_lines)
        cust_nos = [c.customer_no for c in md.customers]
        acct = [c.crm_account_id for c in md.customers]
        codes = [s.sku for s in md.skus]
        orders = pd.DataFrame(
            {
                "key": pd.Categorical.from_codes(np.arange(len(times)), categories=key_index) if len(times) else [],
                "t": times,
                "customer_no": pd.Categorical.from_codes(cust, categories=cust_nos) if len(cust) else [],
                "crm_account_id": pd.Categorical.from_codes(cust, categories=acct) if len(cust) else [],
                "ship_to_index": cat([c.ship for c in chunks]) if chunks else z,
                "n_lines": n_lines,
                "requested_t": times + float(self.scenario.demand.requested_lead),
            }
        )
        first_line = np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
        pack = self._static.per_uom
        uom_cs = np.array([s.sales_uom == "CS" for s in md.skus], dtype=np.int8)
        lines = pd.DataFrame(
            {
                "key": pd.Categorical.from_codes(owner, categories=key_index) if len(owner) else [],
                "line_no": np.arange(len(owner)) - first_line,
                "sku": pd.Categorical.from_codes(sku, categories=codes) if len(sku) else [],
                "quantity": qty,
                "uom": pd.Categorical.from_codes(uom_cs[sku], categories=["EA", "CS"]) if len(sku) else [],
                "unit_price": cents / 100,
                "qty_each": qty * pack[sku] if len(sku) else z,
            }
        )
        return orders, lines

    def process(self, env: Any, submit: Callable[[DemandOrder], object]) -> Generator[Any, Any, None]:
        """SimPy process function: ``env.process(model.process(env, submit))`` calls ``submit(order)``
        at each order's time (orders already due when it starts are submitted at once)."""
        for o in self.orders():
            if o.t > env.now:
                yield env.timeout(o.t - env.now)
            submit(o)


# --------------------------------------------------------------------------------------- drawing


@dataclass(slots=True)
class _Chunk:
    first: int  # 0-based index of the chunk's first order
    times: np.ndarray  # per order
    cust: np.ndarray  # customer index
    ship: np.ndarray  # ship-to index within the customer
    n_lines: np.ndarray
    ends: np.ndarray  # cumulative line count (end of each order's lines)
    sku: np.ndarray  # per line: SKU index
    qty: np.ndarray  # quantity in the SKU's sales UoM
    cents: np.ndarray  # unit price per sales UoM in cents


@dataclass(frozen=True, slots=True)
class _Static:
    """Per-master-data arrays the chunks need, computed once."""

    md: MasterData
    cust_cdf: np.ndarray  # tier-weighted customer choice
    n_ship: np.ndarray
    sku_p: np.ndarray  # popularity, normalised
    list_cents: np.ndarray
    per_uom: np.ndarray  # EA per sales UoM (case pack for CS, else 1)

    @classmethod
    def of(cls, md: MasterData) -> _Static:
        if not md.customers or not md.skus:
            raise DemandError("demand: master data needs at least one customer and one SKU")
        w = np.array([TIER_WEIGHT.get(c.tier, 1.0) for c in md.customers])
        cdf = np.cumsum(w / w.sum())
        cdf[-1] = 1.0
        pop = np.array([s.popularity for s in md.skus], dtype=float)
        if pop.sum() <= 0:
            pop = np.ones_like(pop)
        return cls(
            md=md,
            cust_cdf=cdf,
            n_ship=np.array([max(1, len(c.ship_to)) for c in md.customers], dtype=np.int64),
            sku_p=pop / pop.sum(),
            list_cents=np.array([round(s.list_price * 100) for s in md.skus], dtype=np.int64),
            per_uom=np.array([s.case_pack if s.sales_uom == "CS" else 1 for s in md.skus], dtype=np.int64),
        )


def _draw_chunk(g: np.random.Generator, st: _Static, d: Any, times: np.ndarray, first: int) -> _Chunk:
    """Draw contents for a full ``CHUNK`` of orders (always the same amount, for common random
    numbers), then keep the first ``len(times)``."""
    n = CHUNK
    cust = np.searchsorted(st.cust_cdf, g.random(n), side="right").clip(0, len(st.cust_cdf) - 1)
    u_ship = g.random(n)
    available = int((st.sku_p > 0).sum())
    n_lines = np.clip(np.rint(d.lines.sample_np(g, n)), 1, available).astype(np.int64)
    skus = _skus_without_repeats(g, st.sku_p, n_lines)
    qty = np.maximum(1, np.rint(d.quantity.sample_np(g, int(n_lines.sum())))).astype(np.int64)

    m = len(times)
    ends = np.cumsum(n_lines[:m])
    used = int(ends[-1]) if m else 0
    cust = cust[:m]
    ship = np.minimum((u_ship[:m] * st.n_ship[cust]).astype(np.int64), st.n_ship[cust] - 1)
    cust_of_line = np.repeat(cust, n_lines[:m])
    cents = _line_cents(st, cust_of_line, skus[:used])
    return _Chunk(first, times, cust, ship, n_lines[:m], ends, skus[:used], qty[:used], cents)


def _skus_without_repeats(g: np.random.Generator, p: np.ndarray, n_lines: np.ndarray) -> np.ndarray:
    """SKU indices by popularity, no SKU twice in an order.

    Draw with replacement, then redraw the repeated positions until none repeat: a redraw given the
    order's other SKUs is a draw from the popularity restricted to the rest, as sequential sampling
    without replacement would do. Orders still repeating after a few rounds (tiny, skewed
    catalogues) fall back to ``Generator.choice(replace=False)``."""
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    total = int(n_lines.sum())
    owner = np.repeat(np.arange(len(n_lines), dtype=np.int64), n_lines)
    skus = np.searchsorted(cdf, g.random(total), side="right")
    # Only lines of multi-line orders can repeat; each round re-checks only the orders just redrawn.
    idx = np.flatnonzero(n_lines[owner] > 1)
    for _ in range(30):
        dup = idx[_repeats(owner[idx] * len(p) + skus[idx])]
        if not len(dup):
            return skus
        skus[dup] = np.searchsorted(cdf, g.random(len(dup)), side="right")
        redrawn = np.zeros(len(n_lines), dtype=bool)
        redrawn[owner[dup]] = True
        idx = idx[redrawn[owner[idx]]]
    starts = np.concatenate([[0], np.cumsum(n_lines)[:-1]])
    for o in np.unique(owner[idx[_repeats(owner[idx] * len(p) + skus[idx])]]):
        a, k = int(starts[o]), int(n_lines[o])
        skus[a : a + k] = g.choice(len(p), size=k, replace=False, p=p)
    return skus


def _repeats(keys: np.ndarray) -> np.ndarray:
    """Mask of positions whose key (order * n_skus + sku) already occurred at an earlier position."""
    order = np.argsort(keys, kind="stable")  # stable: equal keys keep position order
    same = keys[order][1:] == keys[order][:-1]
    dup = np.zeros(len(keys), dtype=bool)
    dup[order[1:][same]] = True
    return dup


def _line_cents(st: _Static, cust: np.ndarray, sku: np.ndarray) -> np.ndarray:
    """Price per sales UoM in cents: contract (else list) price per EA, times case pack for CS."""
    md, list_cents = st.md, st.list_cents
    cp = md.contract_prices
    if isinstance(cp, ContractPrices):
        has, contract = cp.lookup(cust, sku)
        ea = np.where(has, contract, list_cents[sku])
    else:
        cs, ss = md.customers, md.skus
        ea = np.array([round(md.price(cs[c].customer_no, ss[s].sku) * 100) for c, s in zip(cust, sku, strict=True)])
    return ea.astype(np.int64) * st.per_uom[sku]


# --------------------------------------------------------------------------------------- demand log


def orders_frame(orders: list[DemandOrder]) -> pd.DataFrame:
    """One row per order (the demand log reconciliation joins to the ledgers)."""
    return pd.DataFrame(
        {
            "key": [o.key for o in orders],
            "t": [o.t for o in orders],
            "customer_no": [o.customer_no for o in orders],
            "crm_account_id": [o.crm_account_id for o in orders],
            "ship_to_index": [o.ship_to_index for o in orders],
            "n_lines": [len(o.lines) for o in orders],
            "value": [round(sum(ln.quantity * ln.unit_price for ln in o.lines), 2) for o in orders],
            "requested_t": [o.requested_t for o in orders],
        }
    )


def lines_frame(orders: list[DemandOrder], md: MasterData | None = None) -> pd.DataFrame:
    """One row per order line; with ``md``, also the quantity in EA (``qty_each``)."""
    rows = [(o.key, i, ln.sku, ln.quantity, ln.uom, ln.unit_price) for o in orders for i, ln in enumerate(o.lines)]
    df = pd.DataFrame(rows, columns=["key", "line_no", "sku", "quantity", "uom", "unit_price"])
    if md is not None:
        pack = df["sku"].map(lambda s: md.by_sku[s].case_pack)
        df["qty_each"] = np.where(df["uom"] == "CS", df["quantity"] * pack, df["quantity"])
    return df
