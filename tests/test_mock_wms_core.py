"""WMS core called directly (virtual mode): validation, ledger, milestones and webhooks, ship-confirm."""

from __future__ import annotations

from typing import Any

import pytest
import simpy

from mocks.core.base import Request, WebhookEvent
from mocks.wms import WmsCore
from sim.calendar import Calendar
from sim.distributions import Fixed
from sim.masterdata import Address, MasterData, Sku
from sim.masterdata import Warehouse as Site
from sim.rng import Streams
from sim.scenario import Scenario, Shift

H = 3600.0
DAY = 86400.0


def make_md() -> MasterData:
    skus = [
        Sku("SKU-00001", "Widget", 2.5, 12, "CS", 0.25, "S01", 0.5),
        Sku("SKU-00002", "Gadget", 10.0, 6, "EA", 1.2, "S01", 0.5),
    ]
    site = Site("WH01", "Main DC", Address("Main DC", "1 Dock Rd", "Columbus", "OH", "43004"))
    return MasterData(customers=[], skus=skus, contract_prices={}, suppliers=[], warehouses=[site])


def make_core(**warehouse: Any) -> tuple[simpy.Environment, WmsCore, list[WebhookEvent]]:
    wh = {"pickers": 1, "pick_time": 600, "pack_time": 120, **warehouse}
    scenario = Scenario.model_validate({"name": "t", "warehouse": wh})
    env = simpy.Environment()
    events: list[WebhookEvent] = []
    core = WmsCore(env, make_md(), scenario, Streams(5), emit=events.append)
    return env, core, events


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "client_reference": "801000000000000AAA",
        "erp_order": "SO-0000001",
        "warehouse": "WH01",
        "ship_to": {"name": "Acme", "line1": "5 Main St", "city": "Dayton", "postal_code": "45402", "country": "US"},
        "lines": [{"sku": "SKU-00001", "quantity": 24, "uom": "EA"}, {"sku": "SKU-00002", "quantity": 2, "uom": "EA"}],
    }
    b.update(over)
    return b


def create(core: WmsCore, b: dict[str, Any] | None = None, key: str | None = None) -> Any:
    headers = {"idempotency-key": key} if key else {}
    return core.handle(Request("create_fulfillment", body() if b is None else b, headers=headers))


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("client_reference"), "client_reference"),
        (lambda b: b.update(client_reference=""), "client_reference"),
        (lambda b: b["lines"][1].update(uom="CS"), "lines.1.uom"),
        (lambda b: b["lines"][0].update(sku="NOPE"), "lines.0.sku"),
        (lambda b: b["lines"][0].update(quantity=0), "lines.0.quantity"),
        (lambda b: b.update(lines=[]), "lines"),
        (lambda b: b["ship_to"].pop("postal_code"), "ship_to.postal_code"),
        (lambda b: b.update(surprise=1), "surprise"),
        (lambda b: b.update(warehouse="WH99"), "warehouse"),
    ],
)
def test_create_rejects_bad_input_naming_the_field(mutate: Any, field: str) -> None:
    _, core, _ = make_core()
    b = body()
    mutate(b)
    r = create(core, b)
    assert r.status == 422, r.body
    assert r.body["field"] == field
    assert field in r.body["message"]
    assert len(core.ledger) == 0


def test_non_dict_body_is_422() -> None:
    _, core, _ = make_core()
    r = create(core, ["not", "a", "dict"])  # type: ignore[arg-type]
    assert r.status == 422


def test_create_records_ledger_and_no_dedup() -> None:
    _, core, _ = make_core()
    r1 = core.handle(
        Request("create_fulfillment", body(), headers={"idempotency-key": "fo:1", "x-correlation-id": "c1"})
    )
    r2 = create(core)
    assert r1.status == 201 and r2.status == 201
    assert r1.body == {"fulfillment_id": "FO-000001", "status": "released", "client_reference": "801000000000000AAA"}
    assert r2.body["fulfillment_id"] == "FO-000002"  # the core never dedups by client_reference
    created = core.ledger.of_kind("fulfilment.created")
    assert [e.ref for e in created] == ["801000000000000AAA"] * 2
    e = created[0]
    assert e.entity == "FO-000001" and e.idempotency_key == "fo:1" and e.correlation_id == "c1"
    assert e.data == {
        "fulfillment_id": "FO-000001",
        "erp_order": "SO-0000001",
        "lines": [["SKU-00001", 24], ["SKU-00002", 2]],
    }
    found = core.handle(Request("find_fulfillments", params={"client_reference": "801000000000000AAA"}))
    assert found.status == 200 and found.body["total"] == 2
    assert [i["fulfillment_id"] for i in found.body["items"]] == ["FO-000001", "FO-000002"]
    none = core.handle(Request("find_fulfillments", params={"client_reference": "nobody"}))
    assert none.body == {"items": [], "total": 0}
    missing = core.handle(Request("find_fulfillments"))
    assert missing.status == 422 and missing.body["field"] == "client_reference"


def test_unknown_fulfillment_is_404() -> None:
    _, core, _ = make_core()
    for op, b in (("get_fulfillment", None), ("ship_confirm", {"carrier": "UPS", "tracking_number": "1Z"})):
        r = core.handle(Request(op, b, params={"fulfillment_id": "FO-999999"}))
        assert r.status == 404 and r.body["field"] == "fulfillment_id"


def test_milestones_ledger_and_webhook_payloads() -> None:
    env, core, events = make_core()
    cal = Calendar.of(core.scenario.start)
    env.run(until=9 * H)
    fid = create(core).body["fulfillment_id"]
    env.run(until=10 * H)
    kinds = [e.kind for e in core.ledger]
    assert kinds == ["fulfilment.created", "fulfilment.picked", "fulfilment.packed", "fulfilment.ready_to_ship"]
    picked = core.ledger.of_kind("fulfilment.picked")[0]
    assert picked.t == 9 * H + 600 and picked.ref == "801000000000000AAA"
    assert picked.data == {"fulfillment_id": fid, "wait_s": 0.0, "pick_s": 600.0}
    assert core.ledger.of_kind("fulfilment.packed")[0].data["pack_s"] == 120.0
    ready = core.ledger.of_kind("fulfilment.ready_to_ship")[0]
    assert ready.t == 9 * H + 720
    assert ready.data["ship_day"] == 0 and ready.data["ship_date"] == "2026-07-06"

    assert [e.type for e in events] == ["fulfillment.picked", "fulfillment.packed", "fulfillment.ready_to_ship"]
    assert all(e.source == "wms" for e in events) and len({e.id for e in events}) == 3
    ev = events[2]
    assert ev.occurred_at == 9 * H + 720
    assert ev.data == {
        "fulfillment_id": fid,
        "client_reference": "801000000000000AAA",
        "erp_order": "SO-0000001",
        "status": "ready_to_ship",
        "packages": [{"weight_kg": 8.4}],  # 24 x 0.25 + 2 x 1.2
        "event_time_ms": cal.epoch_ms(9 * H + 720),
    }
    assert ev.data["event_time_ms"] == 1783329120000  # 2026-07-06T09:12:00Z

    got = core.handle(Request("get_fulfillment", params={"fulfillment_id": fid})).body
    assert got["status"] == "ready_to_ship" and got["planned_ship_date"] == "2026-07-06"
    assert got["picked_at_ms"] == cal.epoch_ms(9 * H + 600) and got["shipped_at_ms"] is None


def test_after_cutoff_ships_next_pickup_day() -> None:
    env, core, _ = make_core(cutoff="15:00")
    env.run(until=4 * DAY + 15 * H)  # Friday 15:00
    create(core)
    env.run(until=5 * DAY)
    ready = core.ledger.of_kind("fulfilment.ready_to_ship")[0]
    assert ready.data["ship_day"] == 7 and ready.data["ship_date"] == "2026-07-13"  # the Monday after


def test_shifts_hold_orders_until_the_shift_starts() -> None:
    env, core, _ = make_core(shifts=[Shift(start=8 * H, end=16 * H, pickers=2).model_dump()])
    env.run(until=20 * H)
    create(core)
    env.run(until=2 * DAY)
    picked = core.ledger.of_kind("fulfilment.picked")[0]
    assert picked.t == DAY + 8 * H + 600
    assert picked.data["wait_s"] == 12 * H


def test_ship_confirm_flow() -> None:
    env, core, _ = make_core()
    fid = create(core).body["fulfillment_id"]
    sc = {"carrier": "UPS", "tracking_number": "1ZTW4X7A030000001X"}
    early = core.handle(Request("ship_confirm", sc, params={"fulfillment_id": fid}))
    assert early.status == 409 and early.body["error"] == "not_ready"
    bad = core.handle(Request("ship_confirm", {"carrier": "UPS"}, params={"fulfillment_id": fid}))
    assert bad.status == 422 and bad.body["field"] == "tracking_number"
    env.run(until=H)
    ok = core.handle(Request("ship_confirm", sc, params={"fulfillment_id": fid}))
    assert ok.status == 200 and ok.body["status"] == "shipped" and ok.body["tracking_number"] == sc["tracking_number"]
    again = core.handle(Request("ship_confirm", sc, params={"fulfillment_id": fid}))
    assert again.status == 200
    other = core.handle(Request("ship_confirm", {**sc, "tracking_number": "1ZOTHER"}, params={"fulfillment_id": fid}))
    assert other.status == 409 and other.body["error"] == "already_shipped"
    shipped = core.ledger.of_kind("fulfilment.shipped")
    assert len(shipped) == 1
    assert shipped[0].data == {"fulfillment_id": fid, "carrier": "UPS", "tracking_number": sc["tracking_number"]}


def test_queue_and_stats_through_the_core() -> None:
    env, core, _ = make_core(pack_time=Fixed(value=0).model_dump())
    for _ in range(3):
        create(core)
    env.run(until=H)
    waits = [e.data["wait_s"] for e in core.ledger.of_kind("fulfilment.picked")]
    assert waits == [0.0, 600.0, 1200.0]
    s = core.warehouse.stats()
    assert s["completed"] == 3 and s["mean_wait"] == 600.0


def test_heavy_orders_are_split_into_parcel_sized_cartons() -> None:
    from mocks.wms.core import MAX_CARTON_KG, cartons

    assert cartons(8.4) == [{"weight_kg": 8.4}]
    assert cartons(30.0) == [{"weight_kg": 30.0}]
    heavy = cartons(207.78)
    assert len(heavy) == 7 and all(p["weight_kg"] <= MAX_CARTON_KG for p in heavy)
    assert sum(p["weight_kg"] for p in heavy) == pytest.approx(207.78, abs=0.01)
    assert cartons(0.0) == [{"weight_kg": 0.1}]  # never a zero-weight parcel
