"""ERP mock: core rules (credit, pricing, ATP, backorders, states) and the HTTP adapter in-process."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import simpy

from mocks.core.base import Request, Response, WebhookEvent
from mocks.erp.api import create_app
from mocks.erp.core import ErpCore
from mocks.gateway import Gateway
from sim.masterdata import generate
from sim.rng import Streams
from sim.scenario import MasterDataSizes, Scenario
from sim.world.supplier import LINE_FLOORS, mean_line_each


def scenario() -> Scenario:
    return Scenario(name="erp-test", masterdata=MasterDataSizes(customers=20, skus=30, credit_hold_share=0))


class World:
    def __init__(self) -> None:
        self.env = simpy.Environment()
        self.scenario = scenario()
        self.md = generate(self.scenario.masterdata, Streams(self.scenario.seed))
        self.events: list[WebhookEvent] = []
        self.erp = ErpCore(self.env, self.md, self.scenario, Streams(1), emit=self.events.append)
        self.gw = Gateway(self.erp)
        self.cust = self.md.customers[0].customer_no
        # Plenty of credit unless a test says otherwise.
        self.erp.credit_limits[self.cust] = 1e9
        self.token = self.get_token()

    def get_token(self, scope: str | None = None) -> str:
        body: dict[str, Any] = {"grant_type": "client_credentials", "client_id": "it", "client_secret": "twin-secret"}
        if scope:
            body["scope"] = scope
        r = self.erp.handle(Request("token", body))
        assert r.status == 200, r.body
        return r.body["access_token"]

    def call(
        self, op: str, body: Any = None, key: str | None = None, token: str | None = None, **params: str
    ) -> Response:
        headers = {"authorization": f"Bearer {token or self.token}"}
        if key:
            headers["idempotency-key"] = key
        return self.gw.serve(Request(op, body, params, headers, client_id="it"))

    def line(self, sku: str, qty: int, uom: str = "EA", factor: float = 1.0) -> dict[str, Any]:
        per = self.md.by_sku[sku].case_pack if uom == "CS" else 1
        return {
            "ItemNo": sku,
            "Qty": qty,
            "UoM": uom,
            "UnitPrice": round(self.md.price(self.cust, sku) * per * factor, 4),
        }

    def order(self, *lines: dict[str, Any], ext: str = "801TEST0000000001") -> dict[str, Any]:
        return {"ExtRef": ext, "SoldTo": self.cust, "Plant": "WH01", "RequestedDate": "20260709", "Lines": list(lines)}


@pytest.fixture
def w() -> World:
    return World()


def sku(w: World, i: int = 0) -> str:
    return w.md.skus[i].sku


# ------------------------------------------------------------------------------------ OAuth


def test_oauth_missing_unknown_expired_and_scope(w: World) -> None:
    r = w.erp.handle(Request("get_customer", params={"CustomerNo": w.cust}))
    assert r.status == 401 and r.body["field"] == "Authorization"
    assert w.call("get_customer", token="nope", CustomerNo=w.cust).status == 401
    pricing_only = w.get_token("pricing")
    r = w.call("get_customer", token=pricing_only, CustomerNo=w.cust)
    assert r.status == 403 and r.body["error"] == "insufficient_scope"
    assert w.call("get_prices", token=pricing_only, customer=w.cust, items=sku(w)).status == 200
    w.env.run(until=3600)
    r = w.call("get_customer", CustomerNo=w.cust)
    assert r.status == 401 and "expired" in r.body["message"]


def test_token_bad_secret_and_scope(w: World) -> None:
    bad = {"grant_type": "client_credentials", "client_id": "x", "client_secret": "wrong"}
    assert w.erp.handle(Request("token", bad)).status == 401
    r = w.erp.handle(Request("token", {**bad, "client_secret": "twin-secret", "scope": "orders admin"}))
    assert r.status == 400 and r.body["error"] == "invalid_scope"
    r = w.erp.handle(Request("token", {"client_id": "x", "client_secret": "twin-secret"}))
    assert r.status == 422 and r.body["field"] == "grant_type"
    # Deterministic per seed: a fresh core issues the same first token.
    other = ErpCore(simpy.Environment(), w.md, w.scenario, Streams(1))
    creds = {"grant_type": "client_credentials", "client_id": "a", "client_secret": "twin-secret"}
    assert other.handle(Request("token", creds)).body["access_token"] == w.token != w.get_token()


# ------------------------------------------------------------------------------------ master data


def test_customer_item_prices_atp(w: World) -> None:
    c = w.call("get_customer", CustomerNo=w.cust).body
    assert c["CustomerNo"] == w.cust and c["CreditHold"] is False and c["Exposure"] == w.md.customers[0].open_balance
    s = w.md.skus[0]
    it = w.call("get_item", ItemNo=s.sku).body
    assert it == {
        "ItemNo": s.sku,
        "Description": s.description,
        "BaseUoM": "EA",
        "CasePack": s.case_pack,
        "ListPrice": s.list_price,
    }
    p = w.call("get_prices", customer=w.cust, items=f"{s.sku},{sku(w, 1)}").body
    assert p["Prices"][0] == {"ItemNo": s.sku, "UnitPrice": w.md.price(w.cust, s.sku), "PriceUoM": "EA"}
    w.erp.on_hand[s.sku] = 50
    atp = w.call("get_atp", items=s.sku, plant="WH01").body
    assert atp == {"Plant": "WH01", "Items": [{"ItemNo": s.sku, "Available": 50}]}


def test_unknown_ids_404_and_missing_params_422(w: World) -> None:
    assert w.call("get_customer", CustomerNo="C999999").status == 404
    assert w.call("get_item", ItemNo="SKU-99999").status == 404
    assert w.call("get_sales_order", SalesOrderNo="SO-9999999").status == 404
    assert w.call("post_invoice", SalesOrderNo="SO-9999999").status == 404
    assert w.call("get_prices", customer="C999999", items=sku(w)).status == 404
    r = w.call("get_prices", customer=w.cust)
    assert r.status == 422 and r.body["field"] == "items"
    assert w.call("get_atp", items=sku(w), plant="XX99").status == 404
    r = w.call("find_sales_orders")
    assert r.status == 422 and r.body["field"] == "ExtRef"


def test_initial_stock_from_expected_demand(w: World) -> None:
    days = w.scenario.supplier.initial_stock_days
    line = mean_line_each(w.md, w.scenario)
    for s in w.md.skus:
        want = max(days * w.erp.daily_demand[s.sku], LINE_FLOORS[0] * line[s.sku])
        assert w.erp.on_hand[s.sku] == round(want)
    assert sum(w.erp.on_hand.values()) > 0


# ------------------------------------------------------------------------------------ sales orders


def test_create_reserves_converts_cases_and_ledgers(w: World) -> None:
    s = w.md.skus[0]
    w.erp.on_hand[s.sku] = 1000
    r = w.call("create_sales_order", w.order(w.line(s.sku, 2, "CS"), w.line(s.sku, 3)))
    assert r.status == 201, r.body
    so = r.body
    assert so["Status"] == "OPEN" and so["SalesOrderNo"] == "SO-0000001" and so["ExtRef"] == "801TEST0000000001"
    assert [ln["QtyOrdered"] for ln in so["Lines"]] == [2 * s.case_pack, 3]
    assert w.erp.available(s.sku) == 1000 - 2 * s.case_pack - 3
    (e,) = w.erp.ledger.of_kind("sales_order.created")
    price = w.md.price(w.cust, s.sku)
    assert e.ref == "801TEST0000000001" and e.data["status"] == "OPEN"
    assert e.data["lines"][1] == [s.sku, 3, pytest.approx(price)]
    assert e.data["lines"][0][:2] == [s.sku, 2 * s.case_pack]
    assert w.call("get_sales_order", SalesOrderNo=so["SalesOrderNo"]).body == so
    assert w.call("find_sales_orders", ExtRef="801TEST0000000001").body["SalesOrders"] == [so]
    c = w.call("get_customer", CustomerNo=w.cust).body
    assert c["Exposure"] == pytest.approx(w.md.customers[0].open_balance + so["NetValue"], abs=0.01)


def test_price_mismatch_names_the_line(w: World) -> None:
    ok, off = w.line(sku(w, 0), 1), w.line(sku(w, 1), 1, "CS", factor=1.05)
    r = w.call("create_sales_order", w.order(ok, off))
    assert r.status == 422 and r.body["error"] == "price_mismatch" and r.body["field"] == "Lines.1.UnitPrice"
    # An EA price on a CS line is a mismatch too (unless the case pack is 1).
    s = next(x for x in w.md.skus if x.case_pack > 1)
    bad = {**w.line(s.sku, 1), "UoM": "CS"}
    assert w.call("create_sales_order", w.order(bad)).body["field"] == "Lines.0.UnitPrice"
    # Within 1 %: accepted.
    assert w.call("create_sales_order", w.order(w.line(s.sku, 1, factor=1.009))).status == 201
    assert len(w.erp.ledger.of_kind("sales_order.created")) == 1


def test_validation_errors_name_the_field(w: World) -> None:
    cases = [
        ({**w.order(w.line(sku(w), 1)), "ExtRef": ""}, "ExtRef"),
        ({k: v for k, v in w.order(w.line(sku(w), 1)).items() if k != "SoldTo"}, "SoldTo"),
        (w.order({**w.line(sku(w), 1), "Qty": 0}), "Lines.0.Qty"),
        (w.order({**w.line(sku(w), 1), "UoM": "PAL"}), "Lines.0.UoM"),
        (w.order({**w.line(sku(w), 1), "Colour": "red"}), "Lines.0.Colour"),
        (w.order(w.line(sku(w), 1), {**w.line(sku(w), 1), "ItemNo": "SKU-99999"}), "Lines.1.ItemNo"),
        ({**w.order(w.line(sku(w), 1)), "SoldTo": "C999999"}, "SoldTo"),
        ({**w.order(w.line(sku(w), 1)), "Plant": "XX99"}, "Plant"),
        ({**w.order(w.line(sku(w), 1)), "RequestedDate": "2026-07-09"}, "RequestedDate"),
        ({**w.order(), "Lines": []}, "Lines"),
        ("not an object", "(body)"),
    ]
    for body, field in cases:
        r = w.call("create_sales_order", body)
        assert r.status == 422 and r.body["field"] == field, (field, r.body)
    assert len(w.erp.ledger) == 0


def test_credit_hold_master_runtime_and_limit(w: World) -> None:
    w.erp.set_credit_hold(w.cust, True)
    r = w.call("create_sales_order", w.order(w.line(sku(w), 1)))
    assert r.status == 201 and r.body["Status"] == "CREDIT_HOLD"
    assert r.body["Lines"][0]["QtyReserved"] == 0
    assert w.erp.ledger.of_kind("sales_order.credit_hold")[0].data["reason"] == "customer on credit hold"
    assert w.call("get_customer", CustomerNo=w.cust).body["CreditHold"] is True
    w.erp.set_credit_hold(w.cust, False)
    w.erp.credit_limits[w.cust] = w.md.customers[0].open_balance + 1.0
    r = w.call("create_sales_order", w.order(w.line(sku(w), 5)))
    assert r.body["Status"] == "CREDIT_HOLD"
    assert w.erp.ledger.of_kind("sales_order.credit_hold")[1].data["reason"] == "credit limit exceeded"
    with pytest.raises(KeyError):
        w.erp.set_credit_hold("C999999", True)


def test_backorder_then_release_on_receipt(w: World) -> None:
    s = sku(w)
    w.erp.on_hand[s] = 4
    first = w.call("create_sales_order", w.order(w.line(s, 10), ext="801A")).body
    second = w.call("create_sales_order", w.order(w.line(s, 3), ext="801B")).body
    assert first["Status"] == second["Status"] == "BACKORDERED"
    assert first["Lines"][0]["QtyReserved"] == 4 and first["Lines"][0]["QtyBackordered"] == 6
    assert w.erp.backordered(s) == 9 and w.erp.available(s) == 0
    assert w.call("post_goods_issue", SalesOrderNo=first["SalesOrderNo"]).status == 409
    w.env.run(until=100)
    w.erp.receive_stock(s, 7)  # fills the first (FIFO), one EA towards the second
    assert [e.type for e in w.events] == ["SalesOrder.Released"]
    assert w.events[0].data == {"SalesOrderNo": first["SalesOrderNo"], "ExtRef": "801A"}
    assert w.call("get_sales_order", SalesOrderNo=second["SalesOrderNo"]).body["Lines"][0]["QtyReserved"] == 1
    w.erp.receive_stock(s, 10)
    assert [e.data["ExtRef"] for e in w.events] == ["801A", "801B"]
    assert w.erp.available(s) == 8 and w.erp.backordered(s) == 0
    rel = w.erp.ledger.of_kind("sales_order.released")
    assert [(e.ref, e.t) for e in rel] == [("801A", 100), ("801B", 100)]
    assert len(w.erp.ledger.of_kind("stock.received")) == 2


def test_cancel_releases_reservation_to_backorders(w: World) -> None:
    s = sku(w)
    w.erp.on_hand[s] = 5
    a = w.call("create_sales_order", w.order(w.line(s, 5), ext="801A")).body
    b = w.call("create_sales_order", w.order(w.line(s, 5), ext="801B")).body
    assert (a["Status"], b["Status"]) == ("OPEN", "BACKORDERED")
    r = w.call("cancel_sales_order", SalesOrderNo=a["SalesOrderNo"])
    assert r.status == 200 and r.body["Status"] == "CANCELLED"
    assert w.call("get_sales_order", SalesOrderNo=b["SalesOrderNo"]).body["Status"] == "OPEN"
    assert w.call("cancel_sales_order", SalesOrderNo=a["SalesOrderNo"]).status == 409
    assert w.erp.ledger.of_kind("sales_order.cancelled")[0].ref == "801A"


def test_goods_issue_then_invoice_states(w: World) -> None:
    s = sku(w)
    w.erp.on_hand[s] = 10
    so = w.call("create_sales_order", w.order(w.line(s, 4))).body
    no = so["SalesOrderNo"]
    r = w.call("post_invoice", SalesOrderNo=no)
    assert r.status == 409 and r.body["error"] == "invalid_state"
    gi = w.call("post_goods_issue", SalesOrderNo=no)
    assert gi.status == 201 and gi.body["DocNo"] == "GI-0000001"
    assert w.erp.on_hand[s] == 6 and w.erp.available(s) == 6
    assert w.call("post_goods_issue", SalesOrderNo=no).status == 409
    inv = w.call("post_invoice", SalesOrderNo=no)
    assert inv.status == 201 and inv.body["Amount"] == so["NetValue"] and inv.body["Currency"] == "USD"
    assert w.call("cancel_sales_order", SalesOrderNo=no).status == 409
    (e,) = w.erp.ledger.of_kind("invoice.posted")
    assert e.ref == "801TEST0000000001" and e.data["amount"] == so["NetValue"]
    assert w.erp.ledger.of_kind("goods_issue.posted")[0].data["lines"] == [[s, 4]]
    assert w.call("get_customer", CustomerNo=w.cust).body["Exposure"] == pytest.approx(w.md.customers[0].open_balance)


# ------------------------------------------------------------------------------------ idempotency


def test_idempotent_replay_one_ledger_entry(w: World) -> None:
    body = w.order(w.line(sku(w), 1))
    r1 = w.call("create_sales_order", body, key="so:801TEST0000000001")
    r2 = w.call("create_sales_order", body, key="so:801TEST0000000001")
    assert r1.body["SalesOrderNo"] == r2.body["SalesOrderNo"] and r2.headers.get("idempotent-replayed") == "true"
    assert len(w.erp.ledger.of_kind("sales_order.created")) == 1
    r3 = w.call("create_sales_order", w.order(w.line(sku(w), 2)), key="so:801TEST0000000001")
    assert r3.status == 422 and r3.body["field"] == "Idempotency-Key"


def test_idempotency_conflict_while_in_flight(w: World) -> None:
    headers = {"authorization": f"Bearer {w.token}", "idempotency-key": "k1"}
    req = Request("create_sales_order", w.order(w.line(sku(w), 1)), {}, headers, "it")
    first = w.gw.admit(req)
    second = w.gw.admit(req)
    assert isinstance(second, Response) and second.status == 409
    assert not isinstance(first, Response) and w.gw.execute(first).status == 201
    assert w.gw.serve(req).headers.get("idempotent-replayed") == "true"


def test_legacy_ignore_mode_duplicates_and_no_dedup_on_extref(w: World) -> None:
    w.gw = Gateway(w.erp, idempotency="ignore")
    body = w.order(w.line(sku(w), 1))
    a = w.call("create_sales_order", body, key="so:801TEST0000000001").body
    b = w.call("create_sales_order", body, key="so:801TEST0000000001").body
    assert a["SalesOrderNo"] != b["SalesOrderNo"]
    created = w.erp.ledger.of_kind("sales_order.created")
    assert [e.ref for e in created] == ["801TEST0000000001"] * 2
    assert len(w.call("find_sales_orders", ExtRef="801TEST0000000001").body["SalesOrders"]) == 2


# ------------------------------------------------------------------------------------ HTTP


def _http(w: World, fn: Any) -> Any:
    async def run() -> Any:
        app = create_app(w.erp, w.gw)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://erp") as c:
            return await fn(c)

    return asyncio.run(run())


def test_http_token_form_and_order_flow(w: World) -> None:
    s = sku(w)
    w.erp.on_hand[s] = 100

    async def flow(c: httpx.AsyncClient) -> None:
        r = await c.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "it",
                "client_secret": "twin-secret",
                "scope": "orders credit",
            },
        )
        assert r.status_code == 200 and r.json()["token_type"] == "Bearer" and r.json()["expires_in"] == 3600
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert (await c.get(f"/api/v2/customers/{w.cust}")).status_code == 401
        assert (await c.get(f"/api/v2/customers/{w.cust}", headers=h)).json()["CustomerNo"] == w.cust
        assert (await c.get("/api/v2/prices", params={"customer": w.cust, "items": s}, headers=h)).status_code == 403
        body = w.order(w.line(s, 2))
        r = await c.post("/api/v2/sales-orders", json=body, headers={**h, "Idempotency-Key": "so:1"})
        assert r.status_code == 201 and r.json()["Status"] == "OPEN"
        r2 = await c.post("/api/v2/sales-orders", json=body, headers={**h, "Idempotency-Key": "so:1"})
        assert r2.json()["SalesOrderNo"] == r.json()["SalesOrderNo"]
        no = r.json()["SalesOrderNo"]
        assert (await c.get(f"/api/v2/sales-orders/{no}", headers=h)).json()["SalesOrderNo"] == no
        found = await c.get("/api/v2/sales-orders", params={"ExtRef": body["ExtRef"]}, headers=h)
        assert [o["SalesOrderNo"] for o in found.json()["SalesOrders"]] == [no]
        assert (await c.post(f"/api/v2/sales-orders/{no}/invoice", headers=h)).status_code == 409
        assert (await c.post(f"/api/v2/sales-orders/{no}/goods-issue", headers=h)).json()["DocNo"].startswith("GI-")
        assert (await c.post(f"/api/v2/sales-orders/{no}/invoice", headers=h)).json()["InvoiceNo"].startswith("INV-")
        assert (await c.get("/api/v2/sales-orders/SO-9999999", headers=h)).status_code == 404
        r = await c.post(
            "/api/v2/sales-orders", json={**body, "Lines": [{**body["Lines"][0], "Qty": "many"}]}, headers=h
        )
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "Lines", 0, "Qty"]
        r = await c.post("/api/v2/sales-orders", json=w.order(w.line(s, 1, factor=2)), headers=h)
        assert r.status_code == 422 and r.json()["field"] == "Lines.0.UnitPrice"

    _http(w, flow)
    assert len(w.erp.ledger.of_kind("sales_order.created")) == 1


def test_http_bad_token_requests(w: World) -> None:
    async def flow(c: httpx.AsyncClient) -> None:
        r = await c.post("/oauth/token", content=b"[1,2]", headers={"content-type": "application/json"})
        assert r.status_code == 400
        r = await c.post("/oauth/token", data={"grant_type": "password", "client_id": "a", "client_secret": "b"})
        assert r.status_code == 422 and r.json()["field"] == "grant_type"
        r = await c.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("it", "twin-secret"))
        assert r.status_code == 200

    _http(w, flow)


def test_po_number_ship_to_and_nan_price(w: World) -> None:
    s = sku(w)
    r = w.call("create_sales_order", {**w.order(w.line(s, 1)), "PoNumber": "D0000001"})
    assert r.status == 201 and r.body["PoNumber"] == "D0000001"
    ship = w.md.customers[0].ship_to[0]
    assert w.call("get_customer", CustomerNo=w.cust).body["ShipTo"]["PostalCode"] == ship.postal_code
    r = w.call("create_sales_order", w.order({**w.line(s, 1), "UnitPrice": float("nan")}))
    assert r.status == 422 and r.body["field"] == "Lines.0.UnitPrice"


def test_reset_keeps_tokens_and_restocks(w: World) -> None:
    s = sku(w)
    initial = w.erp.on_hand[s]
    w.call("create_sales_order", w.order(w.line(s, 1)))
    w.erp.set_credit_hold(w.cust, True)
    w.erp.reset()
    assert w.erp.orders == {} and w.erp.on_hand[s] == initial and w.erp.holds[w.cust] is False
    r = w.call("create_sales_order", w.order(w.line(s, 1)))
    assert r.status == 201 and r.body["SalesOrderNo"] == "SO-0000001"


def test_create_app_starts_the_supplier_once(w: World) -> None:
    app = create_app(w.erp, w.gw)
    assert w.erp.supplier is not None and app.state.core is w.erp
    first = w.erp.supplier
    create_app(w.erp, w.gw)
    assert w.erp.supplier is first
    w.erp.reset()
    assert first.generation == 1
