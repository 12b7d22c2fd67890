"""Supplier replenishment: reorder point / order-up-to, lead times, delay multiplier, repeatability."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import pytest
import simpy

from mocks.core.base import Request, WebhookEvent
from mocks.erp.core import ErpCore
from sim.masterdata import generate
from sim.rng import Streams
from sim.scenario import Fixed, MasterDataSizes, Scenario, Supplier
from sim.world.supplier import (
    LINE_FLOORS,
    Replenishment,
    SupplierControl,
    expected_daily_demand,
    mean_line_each,
    supplier_process,
)

DAY = 86400.0


def make(seed: int = 3, skus: int = 15, **supplier: Any) -> tuple[simpy.Environment, ErpCore, Scenario, Streams]:
    sc = Scenario(
        name="sup",
        seed=seed,
        horizon=28 * DAY,
        masterdata=MasterDataSizes(customers=5, skus=skus, credit_hold_share=0),
        supplier=Supplier(**supplier),
    )
    streams = Streams(seed)
    md = generate(sc.masterdata, streams)
    for c in md.customers:
        c.credit_limit = 1e12
    env = simpy.Environment()
    return env, ErpCore(env, md, sc, streams), sc, streams


def consumer(env: simpy.Environment, erp: ErpCore, streams: Streams) -> Generator[simpy.Event, Any, None]:
    """Orders about the expected daily demand twice a day and ships whatever is fully reserved."""
    creds = {"grant_type": "client_credentials", "client_id": "t", "client_secret": "twin-secret"}
    rng = streams.py("test.consumer")
    cust = erp.md.customers[0].customer_no
    n = 0
    while True:
        yield env.timeout(DAY / 2)
        # Tokens live one simulated hour: fetch a fresh one per round.
        auth = {"authorization": "Bearer " + erp.handle(Request("token", creds)).body["access_token"]}
        lines = []
        for s in erp.md.skus:
            qty = int(rng.expovariate(1.0) * erp.daily_demand[s.sku] / 2) + 1
            lines.append({"ItemNo": s.sku, "Qty": qty, "UoM": "EA", "UnitPrice": erp.md.price(cust, s.sku)})
        n += 1
        body = {"ExtRef": f"801T{n:014d}", "SoldTo": cust, "Lines": lines}
        r = erp.handle(Request("create_sales_order", body, headers=auth))
        assert r.status == 201, r.body
        for no, o in list(erp.orders.items()):
            if o.status == "OPEN":
                assert erp.handle(Request("post_goods_issue", params={"SalesOrderNo": no}, headers=auth)).status == 201


def run(seed: int = 3, days: float = 40, multiplier: float = 1.0) -> tuple[ErpCore, Replenishment]:
    env, erp, sc, streams = make(seed)
    events: list[WebhookEvent] = []
    erp.emit = events.append
    rep = Replenishment(env, erp, sc, streams, SupplierControl(multiplier))
    env.process(rep.run())
    env.process(consumer(env, erp, streams))
    env.run(until=days * DAY)
    return erp, rep


def test_expected_daily_demand_scales() -> None:
    env, erp, sc, _ = make()
    d = expected_daily_demand(erp.md, sc)
    assert set(d) == set(erp.md.by_sku) and all(v >= 0 for v in d.values())
    more = sc.model_copy(update={"demand": sc.demand.model_copy(update={"orders": sc.demand.orders * 2})})
    d2 = expected_daily_demand(erp.md, more)
    assert all(d2[k] == pytest.approx(2 * v) for k, v in d.items())
    s = erp.md.skus[0]
    per = s.case_pack if s.sales_uom == "CS" else 1
    lines, qty = sc.demand.lines.mean(), sc.demand.quantity.mean()
    assert d[s.sku] == pytest.approx(sc.demand.orders / 28 * s.popularity * lines * qty * per)


def test_reorder_point_and_order_up_to() -> None:
    env, erp, sc, streams = make(lead_time=Fixed(value=2 * DAY))
    rep = Replenishment(env, erp, sc, streams)
    assert rep.review() == []  # initial stock covers more than the reorder point
    s = max(erp.md.skus, key=lambda x: erp.daily_demand[x.sku])  # a fast mover: the day rules bind
    daily = erp.daily_demand[s.sku]
    assert rep.reorder_point[s.sku] == pytest.approx(7 * daily)
    assert rep.order_up_to[s.sku] == pytest.approx(21 * daily)
    erp.on_hand[s.sku] = int(daily * 3)
    erp._changed.add(s.sku)
    (po,) = rep.review()
    gap = 21 * daily - int(daily * 3)
    assert po.sku == s.sku and po.qty % s.case_pack == 0 and gap <= po.qty < gap + s.case_pack
    assert rep.position(s.sku) >= 21 * daily
    assert rep.review() == []  # nothing changed since
    env.run(until=2 * DAY + 1)
    assert po.received_t == 2 * DAY and rep.on_order[s.sku] == 0
    (rec,) = erp.ledger.of_kind("stock.received")
    assert rec.data["qty"] == po.qty and rec.data["po_no"] == po.po_no and rec.t == 2 * DAY


def test_slow_movers_keep_a_floor_of_order_lines() -> None:
    env, erp, sc, streams = make()
    rep = Replenishment(env, erp, sc, streams)
    line = mean_line_each(erp.md, sc)
    for s in erp.md.skus:
        assert rep.reorder_point[s.sku] >= LINE_FLOORS[1] * line[s.sku]
        assert rep.order_up_to[s.sku] > rep.reorder_point[s.sku]
        assert erp.on_hand[s.sku] >= round(LINE_FLOORS[0] * line[s.sku])


def test_replenishes_over_simulated_days_and_releases_backorders() -> None:
    erp, rep = run()
    assert len(rep.purchase_orders) > 10
    assert len(erp.ledger.of_kind("stock.received")) > 5
    assert erp.ledger.of_kind("sales_order.released"), "received stock should release backorders"
    issued = len(erp.ledger.of_kind("goods_issue.posted"))
    assert issued > 0.7 * len(erp.ledger.of_kind("sales_order.created"))
    assert all(po.received_t is None or po.received_t >= po.ordered_t for po in rep.purchase_orders)


def test_seeded_repeatability() -> None:
    def trace(seed: int) -> list[tuple[Any, ...]]:
        erp, rep = run(seed, days=20)
        return [(e.t, e.kind, e.entity, repr(e.data)) for e in erp.ledger] + [
            (po.po_no, po.sku, po.qty, po.due_t) for po in rep.purchase_orders
        ]

    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_delay_multiplier_stretches_lead_time() -> None:
    _, normal = run(days=20)
    _, slow = run(days=20, multiplier=3.0)
    first_n, first_s = normal.purchase_orders[0], slow.purchase_orders[0]
    assert first_n.sku == first_s.sku and first_n.ordered_t == first_s.ordered_t
    assert first_s.due_t - first_s.ordered_t == pytest.approx(3 * (first_n.due_t - first_n.ordered_t))


def test_control_is_live_and_process_helper() -> None:
    env, erp, sc, streams = make(lead_time=Fixed(value=DAY))
    control = SupplierControl()
    env.process(supplier_process(env, erp, sc, streams, control))
    s = erp.md.skus[0].sku
    env.run(until=1)
    control.multiplier = 4.0  # the supplier_delay fault window opens
    erp.on_hand[s] = 0
    erp._changed.add(s)
    env.run(until=DAY + 2)  # next review at DAY orders with a 4-day lead time
    assert not erp.ledger.of_kind("stock.received")
    env.run(until=5 * DAY + 2)
    assert [e.data["sku"] for e in erp.ledger.of_kind("stock.received")] == [s]


def test_large_catalogue_review_is_cheap() -> None:
    env, erp, sc, streams = make(skus=5000)
    rep = Replenishment(env, erp, sc, streams)
    env.process(rep.run())
    t0 = time.perf_counter()
    env.run(until=60 * DAY)
    assert time.perf_counter() - t0 < 2.0
    assert rep.purchase_orders == []  # no demand: nothing changed after the first review
