"""Carrier core (virtual mode) and its HTTP adapter: rates, labels, tracking, validation, ledger."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
import simpy

from mocks.carrier import CarrierCore
from mocks.carrier.api import create_app
from mocks.carrier.core import SERVICE_CODES, SHIPPER_ACCOUNT, TrackingNumbers, check_digit, zone
from mocks.core.base import Request, WebhookEvent
from sim.masterdata import Address, MasterData
from sim.masterdata import Warehouse as Site
from sim.rng import Streams
from sim.scenario import Scenario

H = 3600.0
DAY = 86400.0


def make_core(**carrier: Any) -> tuple[simpy.Environment, CarrierCore, list[WebhookEvent]]:
    site = Site("WH01", "Main DC", Address("Main DC", "1 Dock Rd", "Columbus", "OH", "43004"))
    md = MasterData(customers=[], skus=[], contract_prices={}, suppliers=[], warehouses=[site])
    scenario = Scenario.model_validate({"name": "t", "carrier": {"exception_rate": 0, **carrier}})
    env = simpy.Environment()
    events: list[WebhookEvent] = []
    return env, CarrierCore(env, md, scenario, Streams(9), emit=events.append), events


def shipment(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "shipperReference": "801000000000000AAA",
        "shipTo": {"name": "Acme", "addressLine1": "5 Main St", "city": "Dayton", "postalCode": "45402"},
        "packages": [{"weightLb": 18.5}],
        "service": "GROUND",
    }
    b.update(over)
    return b


def test_rates_are_deterministic_and_grow_with_weight_and_distance() -> None:
    _, core, _ = make_core()

    def rates(to: str, lb: float) -> dict[str, Any]:
        req = {"shipFrom": {"postalCode": "43004"}, "shipTo": {"postalCode": to}, "packages": [{"weightLb": lb}]}
        r = core.handle(Request("get_rates", req))
        assert r.status == 200
        return {x["service"]: x for x in r.body["rates"]}

    near, far, heavy = rates("43215", 10), rates("94105", 10), rates("94105", 40)
    assert near == rates("43215", 10)
    assert set(near) == {"GROUND", "2DAY", "NEXT_DAY"}
    assert near["GROUND"]["amount"] < far["GROUND"]["amount"] < heavy["GROUND"]["amount"]
    assert near["GROUND"]["amount"] < near["2DAY"]["amount"] < near["NEXT_DAY"]["amount"]
    assert near["GROUND"]["transitDays"] == 1 and far["GROUND"]["transitDays"] == 5
    assert all(x["currency"] == "USD" for x in near.values())
    assert zone("43004", "43215") == 2 and zone("43004", "94105") == 7
    assert zone("SW1A 1AA", "43004") == zone("SW1A 1AA", "43004")  # non-US codes: stable hash


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("shipperReference"), "shipperReference"),
        (lambda b: b.update(shipperReference=""), "shipperReference"),
        (lambda b: b.update(packages=[{"weightLb": 0}]), "packages.0.weightLb"),
        (lambda b: b.update(packages=[{"weightLb": 2}, {"weightLb": -3}]), "packages.1.weightLb"),
        (lambda b: b.update(packages=[{"weightLb": 151}]), "packages.0.weightLb"),
        (lambda b: b.update(packages=[{"weightKg": 2}]), "packages.0.weightLb"),
        (lambda b: b.update(packages=[]), "packages"),
        (lambda b: b["shipTo"].pop("postalCode"), "shipTo.postalCode"),
        (lambda b: b.update(service="TELEPORT"), "service"),
    ],
)
def test_create_shipment_rejects_bad_input_naming_the_field(mutate: Any, field: str) -> None:
    _, core, _ = make_core()
    b = shipment()
    mutate(b)
    r = core.handle(Request("create_shipment", b))
    assert r.status == 422, r.body
    assert r.body["field"] == field and field in r.body["message"]
    assert len(core.ledger) == 0 and not core.network.waiting


def test_create_shipment_label_ledger_and_no_dedup() -> None:
    env, core, _ = make_core()
    env.run(until=10 * H)  # Monday 10:00
    r1 = core.handle(Request("create_shipment", shipment(), headers={"idempotency-key": "sh:1"}))
    r2 = core.handle(Request("create_shipment", shipment(packages=[{"weightLb": 2}, {"weightLb": 3.25}])))
    assert r1.status == 201 and r2.status == 201
    tn1, tn2 = r1.body["trackingNumber"], r2.body["trackingNumber"]
    assert tn1 != tn2
    for tn in (tn1, tn2):
        assert re.fullmatch(r"1Z[0-9A-Z]{16}", tn)
        assert tn[-1] == check_digit(tn[2:-1])
    assert tn1 == "1ZTW4X7A030000001" + check_digit("TW4X7A030000001")  # deterministic sequence
    assert r1.body["labelFormat"] == "ZPL" and tn1 in r1.body["label"]
    assert r1.body["pickupDate"] == "2026-07-06"  # before today's 16:00 pickup
    created = core.ledger.of_kind("shipment.created")
    assert [e.ref for e in created] == ["801000000000000AAA"] * 2  # no dedup by reference
    assert created[0].entity == tn1 and created[0].idempotency_key == "sh:1"
    assert created[0].data["tracking_number"] == tn1 and created[0].data["weight_lb"] == 18.5
    assert created[1].data["weight_lb"] == 5.25

    env.run(until=17 * H)
    late = core.handle(Request("create_shipment", shipment()))
    assert late.body["pickupDate"] == "2026-07-07"  # missed Monday's pickup


def test_tracking_events_so_far_and_404() -> None:
    env, core, events = make_core(transit_time=2 * DAY)
    tn = core.handle(Request("create_shipment", shipment())).body["trackingNumber"]
    t0 = core.handle(Request("get_tracking", params={"trackingNumber": tn})).body
    assert t0["status"] == "LABEL_CREATED" and t0["events"] == []
    env.run(until=17 * H)
    t1 = core.handle(Request("get_tracking", params={"trackingNumber": tn})).body
    assert t1["status"] == "PICKED_UP"
    assert t1["events"][0]["eventCode"] == "PU"
    assert t1["events"][0]["eventTime"] == "2026-07-06T11:00:00-05:00"  # 16:00Z in the carrier's offset
    env.run(until=5 * DAY)
    t2 = core.handle(Request("get_tracking", params={"trackingNumber": tn})).body
    assert t2["status"] == "DELIVERED" and [e["eventCode"] for e in t2["events"]] == ["PU", "IT", "DL"]
    assert [e.data["eventCode"] for e in events] == ["PU", "IT", "DL"]
    assert events[0].type == "tracking.update" and events[0].source == "carrier"
    assert events[0].data == {
        "trackingNumber": tn,
        "shipperReference": "801000000000000AAA",
        "eventCode": "PU",
        "eventTime": "2026-07-06T11:00:00-05:00",
    }
    kinds = [e.kind for e in core.ledger]
    assert kinds == ["shipment.created", "shipment.picked_up", "shipment.in_transit", "shipment.delivered"]
    dl = core.ledger.of_kind("shipment.delivered")[0]
    assert dl.t == 16 * H + 2 * DAY and dl.data["transit_s"] == 2 * DAY and dl.ref == "801000000000000AAA"

    missing = core.handle(Request("get_tracking", params={"trackingNumber": "1ZNOPE"}))
    assert missing.status == 404 and missing.body["field"] == "trackingNumber"


async def _http(app: Any, core: CarrierCore) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://carrier") as c:
        r = await c.post(
            "/v1/rates",
            json={
                "shipFrom": {"postalCode": "43004"},
                "shipTo": {"postalCode": "45402"},
                "packages": [{"weightLb": 3}],
            },
        )
        assert r.status_code == 200 and len(r.json()["rates"]) == 3
        r = await c.post("/v1/shipments", json=shipment(), headers={"Idempotency-Key": "sh:A"})
        assert r.status_code == 201
        tn = r.json()["trackingNumber"]
        r2 = await c.post("/v1/shipments", json=shipment(), headers={"Idempotency-Key": "sh:A"})
        assert r2.json()["trackingNumber"] == tn and len(core.ledger.of_kind("shipment.created")) == 1
        r = await c.get(f"/v1/tracking/{tn}")
        assert r.status_code == 200 and r.json()["trackingNumber"] == tn
        r = await c.get("/v1/tracking/1ZUNKNOWN")
        assert r.status_code == 404
        r = await c.post("/v1/shipments", json=shipment(packages=[{"weightLb": 0}]))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "packages", 0, "weightLb"]
        b = shipment()
        del b["shipperReference"]
        r = await c.post("/v1/shipments", json=b)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "shipperReference"]
        r = await c.post(
            "/v1/rates", json={"shipFrom": {}, "shipTo": {"postalCode": "1"}, "packages": [{"weightLb": 1}]}
        )
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "shipFrom", "postalCode"]


def test_http_adapter() -> None:
    _, core, _ = make_core()
    app = create_app(core)
    asyncio.run(_http(app, core))
    paths = app.openapi()["paths"]
    for route in core.routes.values():
        assert route.method.lower() in paths.get(route.path, {}), route


def _old_tracking(n: int, service: str) -> str:
    """How tracking numbers were minted before they had a codec."""
    stem = SHIPPER_ACCOUNT + SERVICE_CODES[service] + f"{n:07d}"[-7:]
    return "1Z" + stem + check_digit(stem)


def test_tracking_numbers_are_minted_as_before_and_numbered_exactly() -> None:
    codec = TrackingNumbers()
    services = list(SERVICE_CODES)
    minted = [codec.mint(n, services[n % 3]) for n in range(1, 200)]
    assert minted == [_old_tracking(n, services[n % 3]) for n in range(1, 200)]
    for n, tn in enumerate(minted, 1):
        assert codec.number(tn) == n and codec.key(n) == tn
    other = _old_tracking(5, services[(5 + 1) % 3])  # shipment 5's digits, another service
    bad_check = minted[4][:-1] + str((int(minted[4][-1]) + 1) % 10)
    for odd in (other, bad_check, _old_tracking(200, "GROUND"), _old_tracking(0, "GROUND"), "1Z", None):
        assert codec.number(odd) is None
    # Past 10^7 shipments the digits wrap: the number names the earlier shipment with the same key.
    wrapped = codec.mint(10**7 + 5, services[5 % 3])
    assert wrapped == minted[4] and codec.number(wrapped) == 5
