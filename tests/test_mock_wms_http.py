"""WMS over HTTP in-process (httpx ASGITransport): routes, dialect validation, 404s, idempotency."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import simpy

from mocks.wms import WmsCore
from mocks.wms.api import create_app
from sim.masterdata import Address, MasterData, Sku
from sim.masterdata import Warehouse as Site
from sim.rng import Streams
from sim.scenario import Scenario


def make_md() -> MasterData:
    skus = [
        Sku("SKU-00001", "Widget", 2.5, 12, "CS", 0.25, "S01", 0.5),
        Sku("SKU-00002", "Gadget", 10.0, 6, "EA", 1.2, "S01", 0.5),
    ]
    site = Site("WH01", "Main DC", Address("Main DC", "1 Dock Rd", "Columbus", "OH", "43004"))
    return MasterData(customers=[], skus=skus, contract_prices={}, suppliers=[], warehouses=[site])


def body() -> dict[str, Any]:
    return {
        "client_reference": "801000000000000AAA",
        "erp_order": "SO-0000001",
        "ship_to": {"name": "Acme", "line1": "5 Main St", "city": "Dayton", "postal_code": "45402", "country": "US"},
        "lines": [{"sku": "SKU-00001", "quantity": 24, "uom": "EA"}, {"sku": "SKU-00002", "quantity": 2, "uom": "EA"}],
    }


def _app() -> tuple[simpy.Environment, WmsCore, Any]:
    env = simpy.Environment()
    scenario = Scenario.model_validate({"name": "t", "warehouse": {"pickers": 1, "pick_time": 600, "pack_time": 60}})
    core = WmsCore(env, make_md(), scenario, Streams(1))
    return env, core, create_app(core)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _session(app: Any, env: simpy.Environment, core: WmsCore) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wms") as c:
        r = await c.post("/v1/fulfillment-orders", json=body(), headers={"Idempotency-Key": "fo:A"})
        assert r.status_code == 201, r.text
        fid = r.json()["fulfillment_id"]
        # Same key, same body: the gateway replays, the ledger does not grow.
        r2 = await c.post("/v1/fulfillment-orders", json=body(), headers={"Idempotency-Key": "fo:A"})
        assert r2.status_code == 201 and r2.json()["fulfillment_id"] == fid
        assert len(core.ledger.of_kind("fulfilment.created")) == 1

        r = await c.get(f"/v1/fulfillment-orders/{fid}")
        assert r.status_code == 200 and r.json()["status"] == "released"
        assert r.json()["lines"][0] == {"sku": "SKU-00001", "quantity": 24, "uom": "EA"}

        r = await c.get("/v1/fulfillment-orders", params={"client_reference": body()["client_reference"]})
        assert r.status_code == 200 and r.json()["total"] == 1

        sc = {"carrier": "UPS", "tracking_number": "1ZTEST"}
        r = await c.post(f"/v1/fulfillment-orders/{fid}/ship-confirm", json=sc)
        assert r.status_code == 409

        env.run(until=3600)
        r = await c.post(f"/v1/fulfillment-orders/{fid}/ship-confirm", json=sc)
        assert r.status_code == 200 and r.json()["status"] == "shipped"

        for path in ("/v1/fulfillment-orders/FO-999999",):
            r = await c.get(path)
            assert r.status_code == 404 and r.json()["error"] == "not_found"
        r = await c.post("/v1/fulfillment-orders/FO-999999/ship-confirm", json=sc)
        assert r.status_code == 404


def test_http_happy_path() -> None:
    env, core, app = _app()
    _run(_session(app, env, core))


async def _bad(app: Any) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wms") as c:
        # Schema problems: FastAPI 422 naming the location.
        b = body()
        del b["client_reference"]
        r = await c.post("/v1/fulfillment-orders", json=b)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "client_reference"]
        b = body()
        b["lines"][0]["quantity"] = -1
        r = await c.post("/v1/fulfillment-orders", json=b)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "lines", 0, "quantity"]
        r = await c.post("/v1/fulfillment-orders", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        # Business rule in the core: eaches only.
        b = body()
        b["lines"][1]["uom"] = "CS"
        r = await c.post("/v1/fulfillment-orders", json=b)
        assert r.status_code == 422 and r.json()["field"] == "lines.1.uom"
        b = body()
        b["lines"][0]["sku"] = "SKU-99999"
        r = await c.post("/v1/fulfillment-orders", json=b)
        assert r.status_code == 422 and r.json()["field"] == "lines.0.sku"
        r = await c.get("/v1/fulfillment-orders")
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "client_reference"]
        r = await c.post("/v1/fulfillment-orders/FO-000001/ship-confirm", json={"carrier": "UPS"})
        assert r.status_code == 422


def test_http_validation_errors() -> None:
    _, core, app = _app()
    _run(_bad(app))
    assert len(core.ledger) == 0


def test_routes_match_the_core_table() -> None:
    _, core, app = _app()
    paths = app.openapi()["paths"]
    for route in core.routes.values():
        assert route.method.lower() in paths.get(route.path, {}), route
