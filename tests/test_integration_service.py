"""The live reference integration in-process: webhooks, admin API, DLQ replay, and the happy path
against the four mocks through ``httpx.ASGITransport`` (no sockets)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any

import httpx
import simpy

from reference_integration.app import Settings, create_app
from reference_integration.config import IntegrationConfig
from reference_integration.store import MemoryStore

SECRET = "test-secret"
ADMIN = {"X-Twin-Admin-Token": "test-admin"}
CRM_ID = "801000000000000001"


def settings(**kw: Any) -> Settings:
    return Settings(webhook_secret=SECRET, admin_token="test-admin", db=":memory:", **kw)


def signed(env: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(env).encode()
    sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Twin-Signature": sig, "X-Twin-Event-Id": env["id"], "Content-Type": "application/json"}


def envelope(source: str, type_: str, data: dict[str, Any], id_: str = "evt-1") -> dict[str, Any]:
    return {"id": id_, "type": type_, "source": source, "occurred_at": "2026-07-06T09:00:00Z", "data": data}


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://integration")


# --------------------------------------------------------------------------------------- a fake downstream


class Fake:
    """One handler for all four systems: canned answers by (host, method, path prefix)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.fail_sales_orders = 0

    def transports(self) -> dict[str, httpx.AsyncBaseTransport]:
        return {s: httpx.MockTransport(self.handle) for s in ("crm", "erp", "wms", "carrier")}

    def handle(self, req: httpx.Request) -> httpx.Response:
        self.requests.append(req)
        p = req.url.path
        if p == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
        if p.startswith("/api/v2/customers/"):
            return httpx.Response(200, json={"CustomerNo": "C000001", "Name": "Acme", "CreditHold": False})
        if p.startswith("/api/v2/items/"):
            return httpx.Response(200, json={"ItemNo": p.rsplit("/", 1)[1], "BaseUoM": "EA", "CasePack": 12})
        if p == "/api/v2/prices":
            return httpx.Response(200, json={"Prices": [{"ItemNo": "SKU-00001", "UnitPrice": 10.0, "PriceUoM": "EA"}]})
        if p == "/api/v2/atp":
            return httpx.Response(200, json={"Items": [{"ItemNo": "SKU-00001", "Available": 100}]})
        if p == "/api/v2/sales-orders" and req.method == "POST":
            if self.fail_sales_orders > 0:
                self.fail_sales_orders -= 1
                return httpx.Response(503, json={"error": "unavailable"})
            return httpx.Response(201, json={"SalesOrderNo": "SO-0000001", "ExtRef": CRM_ID, "Status": "BACKORDERED"})
        if p.startswith("/services/data/v60.0/sobjects/Order/") and req.method == "PATCH":
            return httpx.Response(204)
        return httpx.Response(404, json={"error": "not_found"})

    def ops(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests if r.url.path != "/oauth/token"]


def crm_order() -> dict[str, Any]:
    return {
        "Id": CRM_ID,
        "AccountId": "001000000000000001",
        "Account": {"Id": "001000000000000001", "ErpCustomerNo__c": "C000001"},
        "Status": "Submitted",
        "EffectiveDate": "2026-07-06",
        "RequestedDeliveryDate__c": "2026-07-09",
        "ShippingAddress": {"street": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"},
        "OrderItems": [{"ProductCode": "SKU-00001", "Quantity": 2, "UnitOfMeasure__c": "CS", "UnitPrice": 120.0}],
    }


def test_webhook_checks_signature_and_envelope_then_accepts_once():
    async def go() -> None:
        app = create_app(settings(), transports=Fake().transports())
        svc = app.state.service
        svc.running.clear()  # paused: accept only, process nothing
        async with client(app) as c:
            ev = envelope("crm", "order.submitted", crm_order())
            raw, h = signed(ev)
            r = await c.post("/webhooks/crm", content=raw, headers={**h, "X-Twin-Signature": "sha256=00"})
            assert r.status_code == 401 and r.json()["error"] == "bad_signature"
            raw2, h2 = signed(ev, "wrong")
            assert (await c.post("/webhooks/crm", content=raw, headers=h2)).status_code == 401
            bad = b"{not json"
            r = await c.post("/webhooks/crm", content=bad, headers=signed_headers(bad))
            assert r.status_code == 400
            no_data = json.dumps({k: v for k, v in ev.items() if k != "data"}).encode()
            r = await c.post("/webhooks/crm", content=no_data, headers=signed_headers(no_data))
            assert r.status_code == 422 and r.json()["field"] == "data"
            r = await c.post("/webhooks/wms", content=raw, headers=h)
            assert r.status_code == 422 and r.json()["field"] == "source"
            r = await c.post("/webhooks/crm", content=raw, headers=h)
            assert r.status_code == 202 and r.json() == {"status": "accepted", "id": "evt-1"}
            r = await c.post("/webhooks/crm", content=raw, headers=h)
            assert r.status_code == 200 and r.json()["status"] == "duplicate"
            assert [e.id for e in svc.store.pending_events()] == ["evt-1"]
            m = (await c.get("/metrics")).text
            assert 'integration_webhooks_total{source="crm",outcome="duplicate"} 1' in m
            assert "integration_paused 1" in m
        await svc.stop()

    asyncio.run(go())


def signed_headers(raw: bytes) -> dict[str, str]:
    return {"X-Twin-Signature": "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()}


def test_admin_requires_token_pause_resume_and_health():
    async def go() -> None:
        fake = Fake()
        app = create_app(settings(), transports=fake.transports())
        svc = app.state.service
        async with client(app) as c:
            assert (await c.get("/admin/dlq")).status_code == 401
            assert (await c.get("/admin/dlq", headers={"X-Twin-Admin-Token": "nope"})).status_code == 401
            assert (await c.post("/admin/pause", headers=ADMIN)).json() == {"paused": True}
            assert (await c.get("/health")).json()["paused"] is True
            raw, h = signed(envelope("crm", "order.submitted", crm_order()))
            assert (await c.post("/webhooks/crm", content=raw, headers=h)).status_code == 202
            await asyncio.sleep(0.01)
            assert fake.requests == []  # paused: accepted, not processed
            await c.post("/admin/resume", headers=ADMIN)
            await svc.drain()
            assert "POST /api/v2/sales-orders" in fake.ops()
            assert svc.store.pending_events() == []
            r = await c.get("/admin/exceptions", headers=ADMIN)
            assert r.status_code == 200 and r.json()["total"] == 0
        # The correlation id and the idempotency key travel on every downstream request.
        so = next(r for r in fake.requests if r.url.path == "/api/v2/sales-orders")
        assert so.headers["x-correlation-id"] == CRM_ID and so.headers["idempotency-key"] == f"so:{CRM_ID}"
        assert json.loads(so.content)["ExtRef"] == CRM_ID
        await svc.stop()

    asyncio.run(go())


def test_technical_failure_goes_to_dlq_and_admin_replay_completes_it():
    async def go() -> None:
        fake = Fake()
        fake.fail_sales_orders = 1
        config = replace(
            IntegrationConfig.naive(), profile="resilient-no-retry", idempotency=True, dedup=True, dlq=True
        )
        app = create_app(settings(), config=config, transports=fake.transports())
        svc = app.state.service
        async with client(app) as c:
            raw, h = signed(envelope("crm", "order.submitted", crm_order()))
            await c.post("/webhooks/crm", content=raw, headers=h)
            await svc.drain()
            items = (await c.get("/admin/dlq", headers=ADMIN)).json()["items"]
            assert len(items) == 1 and items[0]["category"] == "technical" and items[0]["workflow"] == "order_submitted"
            r = await c.post(f"/admin/dlq/{items[0]['id']}/replay", headers=ADMIN)
            assert r.status_code == 200 and r.json()["result"]["outcome"] == "backordered"
            assert (await c.get("/admin/dlq", headers=ADMIN)).json()["total"] == 0
            assert (await c.post("/admin/dlq/999/replay", headers=ADMIN)).status_code == 404
        patch = [r for r in fake.requests if r.method == "PATCH"]
        assert [json.loads(r.content)["Status"] for r in patch] == ["Backordered"]
        await svc.stop()

    asyncio.run(go())


def test_pending_events_resume_on_start():
    async def go() -> None:
        fake = Fake()
        store = MemoryStore()
        store.accept_event(envelope("crm", "order.submitted", crm_order()))
        app = create_app(settings(), store=store, transports=fake.transports())
        svc = app.state.service
        await svc.start()
        await svc.drain()
        assert "POST /api/v2/sales-orders" in fake.ops() and store.pending_events() == []
        await svc.stop()

    asyncio.run(go())


# --------------------------------------------------------------------------------------- the real mocks


def mock_world() -> tuple[simpy.Environment, dict[str, Any], dict[str, Any], list[Any], Any]:
    from mocks.carrier.api import create_app as carrier_app
    from mocks.carrier.core import CarrierCore
    from mocks.crm.api import create_app as crm_app
    from mocks.crm.core import CrmCore
    from mocks.erp.api import create_app as erp_app
    from mocks.erp.core import ErpCore
    from mocks.wms.api import create_app as wms_app
    from mocks.wms.core import WmsCore
    from sim.masterdata import generate
    from sim.rng import Streams
    from sim.scenario import Scenario

    scenario = Scenario.model_validate(
        {"name": "live-test", "masterdata": {"customers": 5, "skus": 10, "suppliers": 2, "credit_hold_share": 0}}
    )
    streams = Streams(3)
    md = generate(scenario.masterdata, streams)
    env = simpy.Environment()
    events: list[Any] = []
    kinds = {"crm": CrmCore, "erp": ErpCore, "wms": WmsCore, "carrier": CarrierCore}
    cores = {s: cls(env, md, scenario, streams, emit=events.append) for s, cls in kinds.items()}
    # Days of simulated time pass here in milliseconds of wall time, so an ERP token would expire
    # (simulated TTL) while the integration's cache (wall TTL) still trusts it.
    cores["erp"].token_ttl = 30 * 86400.0
    apps = {
        "crm": crm_app(cores["crm"]),
        "erp": erp_app(cores["erp"]),
        "wms": wms_app(cores["wms"]),
        "carrier": carrier_app(cores["carrier"]),
    }
    return env, cores, apps, events, md


def test_live_happy_path_against_the_four_mocks():
    env, cores, apps, events, md = mock_world()
    transports = {s: httpx.ASGITransport(app=a) for s, a in apps.items()}
    app = create_app(settings(reconciliation_interval=0), transports=transports)
    svc = app.state.service

    async def deliver(c: httpx.AsyncClient) -> list[str]:
        sent = []
        while events:
            ev = events.pop(0)
            body = {
                "id": ev.id,
                "type": ev.type,
                "source": ev.source,
                "occurred_at": "2026-07-06T09:00:00Z",
                "data": ev.data,
            }
            raw, h = signed(body)
            r = await c.post(f"/webhooks/{ev.source}", content=raw, headers=h)
            assert r.status_code == 202, r.text
            sent.append(ev.type)
            await svc.drain()
        return sent

    async def go() -> None:
        cust = md.customers[0]
        sku = md.skus[0]
        async with client(app) as c, httpx.AsyncClient(transport=transports["crm"], base_url="http://crm") as crm:
            order = {
                "AccountId": cust.crm_account_id,
                "EffectiveDate": "2026-07-06",
                "RequestedDeliveryDate__c": "2026-07-10",
                "PoNumber": "PO-LIVE-1",
                "OrderItems": [{"ProductCode": sku.sku, "Quantity": 1, "UnitOfMeasure__c": "EA"}],
            }
            r = await crm.post("/services/data/v60.0/sobjects/Order", json=order)
            assert r.status_code == 201, r.text
            crm_id = r.json()["id"]
            seen = await deliver(c)
            for _ in range(12):  # let the warehouse and the carrier work, half a day at a time
                env.run(until=env.now + 43200)
                seen += await deliver(c)
            assert "order.submitted" in seen and "tracking.update" in seen
            r = await crm.get(f"/services/data/v60.0/sobjects/Order/{crm_id}")
            got = r.json()
            assert got["Status"] == "Delivered", (got, seen, svc.store.exceptions_list())
            assert got["ExternalOrderNo__c"].startswith("SO-") and got["TrackingNumber__c"]
            r = await c.post("/admin/reconcile", headers=ADMIN)
            assert r.status_code == 200 and r.json() == {"repairs": 0, "audited": 0, "errors": 0}
            assert len(svc._order_locks) == 0
        # Every system holds exactly one document carrying the CRM order id (external-reference rule).
        erp = cores["erp"].ledger.of_kind("sales_order.created")
        wms = cores["wms"].ledger.of_kind("fulfilment.created")
        car = cores["carrier"].ledger.of_kind("shipment.created")
        assert [e.ref for e in erp] == [e.ref for e in wms] == [e.ref for e in car] == [crm_id]
        assert len(cores["erp"].ledger.of_kind("invoice.posted")) == 1
        assert all(e.correlation_id == crm_id for e in erp + wms + car)
        await svc.stop()

    asyncio.run(go())
