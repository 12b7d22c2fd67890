"""CRM mock: accounts, contacts, order submission (webhook + ledger), status history, HTTP adapter."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import simpy

from mocks.core.base import Request, Response, WebhookEvent
from mocks.crm.api import create_app
from mocks.crm.core import CrmCore
from mocks.gateway import Gateway
from sim.demand import DemandLine, DemandOrder
from sim.masterdata import generate
from sim.rng import Streams
from sim.scenario import MasterDataSizes, Scenario

API = "/services/data/v60.0/sobjects"


class World:
    def __init__(self) -> None:
        self.env = simpy.Environment()
        self.scenario = Scenario(name="crm-test", masterdata=MasterDataSizes(customers=10, skus=20))
        self.md = generate(self.scenario.masterdata, Streams(self.scenario.seed))
        self.events: list[WebhookEvent] = []
        self.crm = CrmCore(self.env, self.md, self.scenario, Streams(7), emit=self.events.append)
        self.gw = Gateway(self.crm)
        self.cust = self.md.customers[1]
        self.cs = next(s for s in self.md.skus if s.case_pack > 1)

    def call(self, op: str, body: Any = None, key: str | None = None, **params: str) -> Response:
        headers = {"idempotency-key": key} if key else {}
        return self.gw.serve(Request(op, body, params, headers, client_id="it"))

    def body(self, **over: Any) -> dict[str, Any]:
        b = {
            "AccountId": self.cust.crm_account_id,
            "EffectiveDate": "2026-07-06",
            "RequestedDeliveryDate__c": "2026-07-09",
            "PoNumber": "D0000001",
            "OrderItems": [
                {"ProductCode": self.cs.sku, "Quantity": 2, "UnitOfMeasure__c": "CS", "UnitPrice": 10.0},
                {"ProductCode": self.md.skus[0].sku, "Quantity": 5, "UnitOfMeasure__c": "EA"},
            ],
        }
        b.update(over)
        return b


@pytest.fixture
def w() -> World:
    return World()


def test_account_and_contacts(w: World) -> None:
    a = w.call("get_account", Id=w.cust.crm_account_id).body
    assert a == {
        "Id": w.cust.crm_account_id,
        "Name": w.cust.name,
        "ErpCustomerNo__c": w.cust.customer_no,
        "Territory__c": w.cust.territory,
        "Tier__c": w.cust.tier,
        "ShippingAddress": a["ShippingAddress"],
        "BillingAddress": a["BillingAddress"],
    }
    ship = w.cust.ship_to[0]
    assert a["ShippingAddress"] == {
        "street": ship.line1,
        "city": ship.city,
        "state": ship.region,
        "postalCode": ship.postal_code,
        "country": ship.country,
    }
    lst = w.call("list_contacts", Id=w.cust.crm_account_id).body
    assert lst["totalSize"] == 2 and lst["done"] is True
    for c in lst["records"]:
        assert len(c["Id"]) == 18 and c["Id"].startswith("003") and c["AccountId"] == w.cust.crm_account_id
        assert w.call("get_contact", Id=c["Id"]).body == c
    # Deterministic per seed.
    again = CrmCore(simpy.Environment(), w.md, w.scenario, Streams(7))
    assert again.handle(Request("list_contacts", params={"Id": w.cust.crm_account_id})).body == lst


def test_unknown_ids_404(w: World) -> None:
    assert w.call("get_account", Id="001XX0000000000AAA").status == 404
    assert w.call("list_contacts", Id="nope").status == 404
    assert w.call("get_contact", Id="003XX0000000000AAA").status == 404
    assert w.call("get_contact", Id="003!").status == 404
    assert w.call("get_order", Id="801XX0000000000AAA").status == 404
    assert w.call("get_order_history", Id="801XX0000000000AAA").status == 404
    r = w.call("update_order", {"Status": "Booked"}, Id="801XX0000000000AAA")
    assert r.status == 404 and r.body["field"] == "Id"


def test_submit_emits_webhook_and_ledger(w: World) -> None:
    w.env.run(until=9 * 3600 + 30 * 60)
    r = w.call("submit_order", w.body())
    assert r.status == 201 and r.body["success"] is True
    oid = r.body["id"]
    assert len(oid) == 18 and oid.startswith("801")
    (ev,) = w.events
    assert ev.type == "order.submitted" and ev.source == "crm"
    d = ev.data
    assert d["Id"] == oid and d["OrderNumber"] == "00000001" and d["Status"] == "Submitted"
    assert d["Account"] == {"Id": w.cust.crm_account_id, "Name": w.cust.name, "ErpCustomerNo__c": w.cust.customer_no}
    assert d["CreatedDate"] == "2026-07-06T09:30:00.000Z" and d["RequestedDeliveryDate__c"] == "2026-07-09"
    assert d["OrderItems"][0] == {"ProductCode": w.cs.sku, "Quantity": 2, "UnitOfMeasure__c": "CS", "UnitPrice": 10.0}
    (e,) = w.crm.ledger.of_kind("order.submitted")
    assert e.ref == oid and e.t == 9 * 3600 + 30 * 60
    assert e.data["lines"] == [[w.cs.sku, 2 * w.cs.case_pack], [w.md.skus[0].sku, 5]]
    assert e.data["po_number"] == "D0000001" and e.data["customer_no"] == w.cust.customer_no
    assert e.data["requested_t"] == 3 * 86400 and e.data["order_number"] == "00000001"
    got = w.call("get_order", Id=oid).body
    assert got == {**d, "LastModifiedDate": got["LastModifiedDate"]}
    second = w.call("submit_order", w.body())
    assert w.call("get_order", Id=second.body["id"]).body["OrderNumber"] == "00000002"


def test_submit_demand_order_direct(w: World) -> None:
    order = DemandOrder(
        key="D0000042",
        t=0.0,
        customer_no=w.cust.customer_no,
        crm_account_id=w.cust.crm_account_id,
        ship_to_index=0,
        lines=(DemandLine(w.cs.sku, 3, "CS", 12.5),),
        requested_t=3 * 86400 + 3600.0,
    )
    w.env.run(until=100)
    oid = w.crm.submit(order)
    (e,) = w.crm.ledger.of_kind("order.submitted")
    assert e.ref == oid and e.data["po_number"] == "D0000042" and e.data["requested_t"] == 3 * 86400 + 3600.0
    assert e.data["lines"] == [[w.cs.sku, 3 * w.cs.case_pack]]
    assert w.events[0].data["PoNumber"] == "D0000042"
    ship = w.cust.ship_to[0]
    assert w.events[0].data["ShippingAddress"]["postalCode"] == ship.postal_code
    assert w.events[0].data["ShipToName__c"] == ship.name
    bad = DemandOrder("D1", 0.0, "C0", "001XX0000000000AAA", 0, order.lines, 0.0)
    with pytest.raises(ValueError, match="AccountId"):
        w.crm.submit(bad)


def test_submit_validation_names_the_field(w: World) -> None:
    items = w.body()["OrderItems"]
    cases = [
        (w.body(AccountId="001XX0000000000AAA"), "AccountId"),
        (w.body(EffectiveDate="07/06/2026"), "EffectiveDate"),
        (w.body(OrderItems=[]), "OrderItems"),
        (w.body(OrderItems=[items[0], {**items[1], "ProductCode": "SKU-99999"}]), "OrderItems.1.ProductCode"),
        (w.body(OrderItems=[{**items[0], "Quantity": -1}]), "OrderItems.0.Quantity"),
        (w.body(OrderItems=[{**items[0], "UnitOfMeasure__c": "BOX"}]), "OrderItems.0.UnitOfMeasure__c"),
        (w.body(Colour="red"), "Colour"),
        (w.body(ShippingAddress={"street": "1 Main St", "postalCode": "75001"}), "ShippingAddress.city"),
        ({k: v for k, v in w.body().items() if k != "AccountId"}, "AccountId"),
        ([1, 2], "(body)"),
    ]
    for body, field in cases:
        r = w.call("submit_order", body)
        assert r.status == 422 and r.body["field"] == field, (field, r.body)
    assert not w.events and len(w.crm.ledger) == 0


def test_status_updates_history_and_regressions_kept(w: World) -> None:
    oid = w.call("submit_order", w.body()).body["id"]
    steps = [
        ("Booked", None),
        ("In Fulfilment", None),
        ("Shipped", None),
        ("Delivered", None),
        ("In Fulfilment", "late webhook"),
    ]
    for i, (status, reason) in enumerate(steps):
        w.env.run(until=(i + 1) * 60)
        body = {"Status": status, **({"StatusReason__c": reason} if reason else {})}
        assert w.call("update_order", body, Id=oid).status == 204
    # Same status again: not a change.
    assert w.call("update_order", {"Status": "In Fulfilment"}, Id=oid).status == 204
    h = w.call("get_order_history", Id=oid).body
    assert [(r["OldValue"], r["NewValue"]) for r in h["records"]] == [
        (None, "Submitted"),
        ("Submitted", "Booked"),
        ("Booked", "In Fulfilment"),
        ("In Fulfilment", "Shipped"),
        ("Shipped", "Delivered"),
        ("Delivered", "In Fulfilment"),
    ]
    assert h["records"][-1]["Reason"] == "late webhook"
    changes = w.crm.ledger.of_kind("order.status_changed")
    assert [(e.data["previous"], e.data["status"]) for e in changes][-1] == ("Delivered", "In Fulfilment")
    assert [e.t for e in changes] == [60, 120, 180, 240, 300] and all(e.ref == oid for e in changes)


def test_update_fields_and_bad_status(w: World) -> None:
    oid = w.call("submit_order", w.body()).body["id"]
    r = w.call("update_order", {"Status": "Teleported"}, Id=oid)
    assert r.status == 422 and r.body["field"] == "Status"
    r = w.call("update_order", {"ExternalOrderNo__c": "SO-0000001"}, Id=oid)
    assert r.status == 422 and r.body["field"] == "Status"
    body = {"Status": "Booked", "ExternalOrderNo__c": "SO-0000001", "TrackingNumber__c": "1Z999"}
    assert w.call("update_order", body, Id=oid).status == 204
    o = w.call("get_order", Id=oid).body
    assert (o["Status"], o["ExternalOrderNo__c"], o["TrackingNumber__c"]) == ("Booked", "SO-0000001", "1Z999")
    (upd,) = w.crm.ledger.of_kind("order.updated")
    assert upd.data["fields"] == {"ExternalOrderNo__c": "SO-0000001", "TrackingNumber__c": "1Z999"}


def test_submit_idempotent_replay_and_legacy(w: World) -> None:
    a = w.call("submit_order", w.body(), key="k1")
    b = w.call("submit_order", w.body(), key="k1")
    assert a.body == b.body and len(w.crm.ledger.of_kind("order.submitted")) == 1 and len(w.events) == 1
    w.gw = Gateway(w.crm, idempotency="ignore")
    w.call("submit_order", w.body(), key="k2")
    w.call("submit_order", w.body(), key="k2")
    assert len(w.crm.ledger.of_kind("order.submitted")) == 3


def test_http_flow(w: World) -> None:
    async def flow(c: httpx.AsyncClient) -> None:
        r = await c.post(f"{API}/Order", json=w.body())
        assert r.status_code == 201
        oid = r.json()["id"]
        assert (await c.get(f"{API}/Order/{oid}")).json()["Status"] == "Submitted"
        r = await c.patch(f"{API}/Order/{oid}", json={"Status": "Booked", "ExternalOrderNo__c": "SO-1"})
        assert r.status_code == 204 and r.content == b""
        h = (await c.get(f"{API}/Order/{oid}/history")).json()
        assert [x["NewValue"] for x in h["records"]] == ["Submitted", "Booked"]
        r = await c.patch(f"{API}/Order/{oid}", json={"Status": "Nope"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "Status"]
        r = await c.post(f"{API}/Order", json=w.body(AccountId="001XX0000000000AAA"))
        assert r.status_code == 422 and r.json()["field"] == "AccountId"
        r = await c.post(f"{API}/Order", json={**w.body(), "OrderItems": [{"ProductCode": "X", "Quantity": "lots"}]})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "OrderItems", 0, "Quantity"]
        assert (await c.get(f"{API}/Account/{w.cust.crm_account_id}")).json()["ErpCustomerNo__c"] == w.cust.customer_no
        cs = (await c.get(f"{API}/Account/{w.cust.crm_account_id}/Contacts")).json()["records"]
        assert (await c.get(f"{API}/Contact/{cs[0]['Id']}")).json() == cs[0]
        assert (await c.get(f"{API}/Order/801XX0000000000AAA")).status_code == 404

    async def run() -> None:
        app = create_app(w.crm, w.gw)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm") as c:
            await flow(c)

    asyncio.run(run())
    assert len(w.crm.ledger.of_kind("order.submitted")) == 1


def test_reset_forgets_orders(w: World) -> None:
    oid = w.call("submit_order", w.body()).body["id"]
    w.crm.reset()
    assert w.call("get_order", Id=oid).status == 404
    assert w.call("submit_order", w.body()).body["id"] == oid  # numbering starts over
