"""Suppliers: periodic-review, order-up-to replenishment of the ERP's stock.

Every ``review_interval`` the buyer looks at each SKU whose inventory position changed since the
last review (position = available + on order - backordered, in EA). Below ``reorder_point_days``
of expected cover it orders up to ``order_up_to_days`` of cover, rounded up to whole cases. Each
purchase order arrives after a lead time drawn from stream ``supplier.lead_time``, stretched by
``SupplierControl.multiplier`` (the ``supplier_delay`` fault sets it), and is received into the ERP.

Slow movers are lumpy: one order line (mean ~30 EA) can exceed weeks of their average demand, so
every level has a floor in order lines (``LINE_FLOORS``): without it most slow-moving SKUs would be
backordered on most hits, and a baseline run would backorder a large share of its orders.

Only changed SKUs are reviewed: with static reorder points, an untouched SKU cannot have crossed
its reorder point, so this is exact and keeps 5,000-SKU catalogues cheap.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import simpy

from sim.masterdata import MasterData
from sim.rng import Streams
from sim.scenario import Scenario

if TYPE_CHECKING:  # the ERP core imports this module for expected_daily_demand
    from mocks.erp.core import ErpCore

DAY = 86400.0


def expected_daily_demand(md: MasterData, scenario: Scenario) -> dict[str, float]:
    """Expected EA per calendar day per SKU, averaged over the horizon (surge included).

    orders per day x popularity x mean lines per order x mean quantity per line in EA. Approximate
    (lines are drawn with replacement, no clipping), which is all stock sizing needs.
    """
    d = scenario.demand
    surge_factor = 1.0 + d.surge.share * (d.surge.peak_multiplier - 1.0)
    orders_per_day = d.orders * surge_factor / max(scenario.horizon / DAY, 1e-9)
    lines_per_order = max(d.lines.mean(), 1.0)
    qty_per_line = max(d.quantity.mean(), 1.0)
    base = orders_per_day * lines_per_order * qty_per_line
    return {s.sku: base * s.popularity * (s.case_pack if s.sales_uom == "CS" else 1) for s in md.skus}


# Floors in mean order lines of the SKU: initial stock, reorder point, order-up-to level.
LINE_FLOORS = (3.0, 2.0, 4.0)


def mean_line_each(md: MasterData, scenario: Scenario) -> dict[str, float]:
    """Mean EA per order line of each SKU (the demand quantity is in the SKU's sales UoM)."""
    q = max(scenario.demand.quantity.mean(), 1.0)
    return {s.sku: q * (s.case_pack if s.sales_uom == "CS" else 1) for s in md.skus}


def initial_stock(md: MasterData, scenario: Scenario, daily: dict[str, float] | None = None) -> dict[str, int]:
    """On hand at start: ``initial_stock_days`` of expected demand, at least ``LINE_FLOORS[0]`` lines."""
    daily = daily if daily is not None else expected_daily_demand(md, scenario)
    line = mean_line_each(md, scenario)
    days = scenario.supplier.initial_stock_days
    return {
        sku: int(round(max(days * d, LINE_FLOORS[0] * line[sku]))) if d > 0 and days > 0 else 0
        for sku, d in daily.items()
    }


@dataclass(slots=True)
class SupplierControl:
    """Knobs the fault injector turns at run time."""

    multiplier: float = 1.0  # lead time multiplier (supplier_delay fault)


@dataclass(slots=True)
class PurchaseOrder:
    po_no: str
    sku: str
    qty: int
    ordered_t: float
    due_t: float
    received_t: float | None = None
    generation: int = 0


class Replenishment:
    """Buyer + supplier fleet for one plant of one ERP."""

    def __init__(
        self,
        env: simpy.Environment,
        erp: ErpCore,
        scenario: Scenario,
        streams: Streams,
        control: SupplierControl | None = None,
    ) -> None:
        self.env = env
        self.erp = erp
        self.cfg = scenario.supplier
        self.control = control or SupplierControl()
        self.daily = erp.daily_demand
        line = mean_line_each(erp.md, scenario)
        self.reorder_point = {
            k: max(self.cfg.reorder_point_days * d, LINE_FLOORS[1] * line[k]) for k, d in self.daily.items()
        }
        self.order_up_to = {
            k: max(self.cfg.order_up_to_days * d, LINE_FLOORS[2] * line[k], self.reorder_point[k] + 1)
            for k, d in self.daily.items()
        }
        self._lead = self.cfg.lead_time.sampler(streams.py("supplier.lead_time"))
        self.on_order: dict[str, int] = {}
        self.purchase_orders: list[PurchaseOrder] = []
        self.generation = 0

    def reset(self) -> None:
        """Forget open purchase orders (the ERP was reset): deliveries still in transit are dropped."""
        self.generation += 1
        self.on_order.clear()
        self.purchase_orders.clear()

    def position(self, sku: str) -> int:
        return self.erp.available(sku) + self.on_order.get(sku, 0) - self.erp.backordered(sku)

    def review(self) -> list[PurchaseOrder]:
        """One periodic review: place purchase orders for changed SKUs below their reorder point."""
        placed = []
        # Sorted: set order depends on string hashing, and draws must not.
        for sku in sorted(self.erp.take_changed()):
            if self.daily.get(sku, 0.0) <= 0:
                continue
            pos = self.position(sku)
            if pos >= self.reorder_point[sku]:
                continue
            need = self.order_up_to[sku] - pos
            pack = self.erp.md.by_sku[sku].case_pack or 1
            qty = max(1, math.ceil(need / pack)) * pack
            lead = self._lead() * self.control.multiplier
            po_no = f"PO-{len(self.purchase_orders) + 1:07d}"
            po = PurchaseOrder(po_no, sku, qty, self.env.now, self.env.now + lead, generation=self.generation)
            self.purchase_orders.append(po)
            self.on_order[sku] = self.on_order.get(sku, 0) + qty
            self.env.process(self._deliver(po, lead))
            placed.append(po)
        return placed

    def _deliver(self, po: PurchaseOrder, lead: float) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(lead)
        if po.generation != self.generation:
            return
        self.on_order[po.sku] -= po.qty
        po.received_t = self.env.now
        self.erp.receive_stock(po.sku, po.qty, ref=po.po_no)

    def run(self) -> Generator[simpy.Event, Any, None]:
        while True:
            self.review()
            yield self.env.timeout(self.cfg.review_interval)


def supplier_process(
    env: simpy.Environment,
    erp: ErpCore,
    scenario: Scenario,
    streams: Streams,
    control: SupplierControl | None = None,
) -> Generator[simpy.Event, Any, None]:
    """The SimPy process: ``env.process(supplier_process(...))``. Pass ``control`` to steer delays."""
    return Replenishment(env, erp, scenario, streams, control).run()


def start_supplier(env: simpy.Environment, erp: ErpCore, scenario: Scenario, streams: Streams) -> Replenishment:
    """Start replenishment and hand back its state (``.control.multiplier``, ``.purchase_orders``).
    Also registers it as ``erp.supplier`` so the ERP's reset and app know it runs."""
    rep = Replenishment(env, erp, scenario, streams)
    erp.supplier = rep
    env.process(rep.run())
    return rep
