"""The mocks' pure-ASGI fast path answers byte for byte what FastAPI answers, on every route.

Each test builds two copies of a mock from the same seed, one with the fast path and one with an
empty fast-path table (FastAPI serves everything), sends both the same requests (good, bad,
malformed, unknown paths and methods, idempotency replays and conflicts) and compares status,
raw headers and body. Every request also says whether the fast path should have served it, and
the fast app counts what fell through to FastAPI, so a fast path that quietly never matched fails.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import simpy

import mocks.app
from mocks.core.base import Response, SystemCore
from mocks.core.validation import Validated, parse, validated
from mocks.fastpath import FastPath, Table, compile_table, fast
from mocks.http import render, send_response
from mocks.serve import _CoalescingTransport, _import, core_class
from sim.distributions import Fixed
from sim.masterdata import MasterData, generate
from sim.rng import Streams
from sim.scenario import ApiProfile, FaultWindow, MasterDataSizes, RateLimit, Scenario

ERP_SO = "/api/v2/sales-orders"
CRM = "/services/data/v60.0/sobjects"
FO = "/v1/fulfillment-orders"
JSON = {"content-type": "application/json"}


def _scenario() -> Scenario:
    return Scenario(name="fastpath", masterdata=MasterDataSizes(customers=6, skus=8, credit_hold_share=0))


@dataclass
class Step:
    method: str
    path: str
    body: Any = None  # dict/list -> JSON; bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    fast: bool = True  # served by the fast path (False: falls through to FastAPI)


Action = Callable[[SystemCore], None]  # applied to both cores between requests (e.g. run the env)


class Pair:
    """The same mock twice: with the fast path and without it."""

    def __init__(self, system: str, monkeypatch: pytest.MonkeyPatch, **app_kw: Any) -> None:
        self.system = system
        scen = _scenario()
        self.md: MasterData = generate(scen.masterdata, Streams(scen.seed))
        self.fast_app, self.fast_core = self._build(scen, app_kw)
        with monkeypatch.context() as m:
            m.setattr(mocks.app, "compile_table", lambda routes, core_routes: Table([]))
            self.slow_app, self.slow_core = self._build(scen, app_kw)
        self.fell_through = 0

    def _build(self, scen: Scenario, app_kw: dict[str, Any]) -> tuple[Any, SystemCore]:
        cls = core_class(self.system)
        core = cls(simpy.Environment(), self.md, scen, Streams(scen.seed))  # type: ignore[call-arg]
        api = _import(f"mocks.{self.system}.api")
        kw = {"supplier": False} if self.system == "erp" else {}
        gateway = app_kw.get("gateway_factory", lambda c: None)(core)
        return api.create_app(core, gateway, **kw), core

    def _count_fall_through(self) -> None:
        node = self.fast_app.middleware_stack
        while node is not None and not isinstance(node, FastPath):
            node = getattr(node, "app", None)
        assert isinstance(node, FastPath), "no FastPath in the app's middleware stack"
        inner = node.app

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            self.fell_through += 1
            await inner(scope, receive, send)

        node.app = counting

    async def run(self, steps: list[Step | Action]) -> list[httpx.Response]:
        out = []
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=self.fast_app), base_url="http://m") as f,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=self.slow_app), base_url="http://m") as s,
        ):
            await f.get("/_twin/health")  # builds the middleware stack
            self._count_fall_through()
            for step in steps:
                if not isinstance(step, Step):
                    step(self.fast_core)
                    step(self.slow_core)
                    continue
                content = step.body
                if isinstance(content, dict | list):
                    content = json.dumps(content).encode()
                before = self.fell_through
                rf = await f.request(step.method, step.path, content=content, headers=step.headers)
                rs = await s.request(step.method, step.path, content=content, headers=step.headers)
                where = f"{step.method} {step.path} {step.body!r:.80}"
                assert (rf.status_code, rf.headers.raw, rf.content) == (rs.status_code, rs.headers.raw, rs.content), (
                    where
                )
                assert (self.fell_through == before) == step.fast, f"{where}: fast path expected {step.fast}"
                out.append(rf)
        self._same_journal()
        return out

    def _same_journal(self) -> None:
        def strip(app: Any) -> list[dict[str, Any]]:
            return [{k: v for k, v in e.items() if k != "latency_s"} for e in app.state.journal.since(0)]

        assert strip(self.fast_app) == strip(self.slow_app)
        assert self.fast_core.ledger.since(0) == self.slow_core.ledger.since(0)


def _run(pair: Pair, steps: list[Step | Action]) -> list[httpx.Response]:
    return asyncio.run(pair.run(steps))


def _common_bad(path: str, good: dict[str, Any], headers: dict[str, str]) -> list[Step | Action]:
    """Malformed bodies FastAPI rejects: each falls through and gets FastAPI's own 422."""
    h = {**JSON, **headers}
    first_list = next(k for k, v in good.items() if isinstance(v, list))
    return [
        Step("POST", path, b'{"oops": ', h, fast=False),  # JSON syntax error
        Step("POST", path, b"", h, fast=False),  # empty body
        Step("POST", path, b"[1, 2]", h, fast=False),  # not an object
        Step("POST", path, {**good, "Bogus": 1}, h, fast=False),  # extra field
        Step("POST", path, {k: v for k, v in good.items() if k != first_list}, h, fast=False),  # missing
        Step("POST", path, {**good, first_list: []}, h, fast=False),  # too short
        Step("POST", path, {**good, first_list: "x"}, h, fast=False),  # wrong type
        Step("POST", path, json.dumps(good).encode(), headers, fast=False),  # no content type
        Step("POST", path, json.dumps(good).encode(), {**headers, "content-type": "text/plain"}, fast=False),
        Step("POST", path + "/", good, h, fast=False),  # trailing slash: FastAPI redirects
        Step("DELETE", path, None, headers, fast=False),  # 405
        Step("PUT", path + "/nope/deeper", good, h, fast=False),  # 404
    ]


# --------------------------------------------------------------------------------------- ERP


def _erp_steps(md: MasterData) -> list[Step | Action]:
    cust = md.customers[0].customer_no
    skus = [k.sku for k in md.skus[:2]]
    lines = [{"ItemNo": s, "Qty": 1, "UoM": "EA", "UnitPrice": md.price(cust, s)} for s in skus]
    good = {"ExtRef": "801FAST000000000001", "SoldTo": cust, "RequestedDate": "20260710", "Lines": lines}
    token = {"content-type": "application/x-www-form-urlencoded"}
    form = b"grant_type=client_credentials&client_id=fp&client_secret=twin-secret"
    # Tokens are deterministic (seeded): both apps hand out the same first token.
    tok = {"authorization": "Bearer " + _erp_token(md)}
    h = {**JSON, **tok}
    idem = {**h, "idempotency-key": "k1", "x-correlation-id": "corr-1"}
    other = {**good, "ExtRef": "801FAST000000000002"}
    return [
        Step("POST", "/oauth/token", form, token, fast=False),  # not a fast route: its own form parsing
        Step("POST", ERP_SO, good, idem),  # 201
        Step("POST", ERP_SO, good, idem),  # idempotent replay
        Step("POST", ERP_SO, other, idem),  # same key, other payload: 422
        Step("POST", ERP_SO, {**good, "ExtRef": " 801FAST000000000003 "}, h),  # stripped, 201
        Step("POST", ERP_SO, other, {**tok, "content-type": "application/json; charset=utf-8"}),
        Step("POST", ERP_SO, other, {**tok, "content-type": "application/vnd.twin+json"}),
        Step("POST", ERP_SO, {**good, "Lines": [{**lines[0], "UnitPrice": 999.0}]}, h),  # price_mismatch 422
        Step("POST", ERP_SO, {**good, "SoldTo": "C999999"}, h),  # unknown customer
        Step("POST", ERP_SO, good, JSON),  # no token: 401
        Step("POST", ERP_SO, good, {**JSON, "authorization": "Bearer nope"}),  # 401 invalid_token
        Step("POST", ERP_SO, {**good, "RequestedDate": "2026-07-10"}, h, fast=False),  # validator: 422
        Step("POST", ERP_SO, {**good, "Lines": [{**lines[0], "Qty": 0}]}, h, fast=False),
        Step("POST", ERP_SO, {**good, "Lines": [{**lines[0], "UoM": "BX"}]}, h, fast=False),
        *_common_bad(ERP_SO, good, tok),
        Step("GET", ERP_SO + "/SO-0000001", None, tok),
        Step("GET", ERP_SO + "/SO-9999999", None, tok),  # 404
        Step("GET", ERP_SO + "?ExtRef=801FAST000000000001", None, tok),
        Step("GET", ERP_SO + "?ExtRef=a&ExtRef=801FAST000000000002", None, tok),  # last value wins
        Step("GET", ERP_SO, None, tok),  # no ExtRef
        Step("GET", f"/api/v2/customers/{cust}", None, tok),  # scope: credit in the default token
        Step("GET", "/api/v2/customers/C999999", None, tok),
        Step("GET", f"/api/v2/items/{skus[0]}", None, tok),
        Step("GET", f"/api/v2/prices?customer={cust}&items={','.join(skus)}", None, tok),
        Step("GET", f"/api/v2/prices?items={skus[0]}", None, tok),  # missing customer
        Step("GET", f"/api/v2/atp?items={','.join(skus)}&plant=WH01", None, tok),
        Step("GET", "/api/v2/atp?items=", None, tok),
        Step("HEAD", f"/api/v2/items/{skus[0]}", None, tok, fast=False),
        Step("POST", ERP_SO + "/SO-0000001/goods-issue", None, {**tok, "idempotency-key": "gi1"}),
        Step("POST", ERP_SO + "/SO-0000001/goods-issue", None, {**tok, "idempotency-key": "gi1"}),  # replay
        Step("POST", ERP_SO + "/SO-0000001/invoice", None, tok),
        Step("POST", ERP_SO + "/SO-0000001/cancel", None, tok),  # 409 invalid_state
        Step("POST", ERP_SO + "/SO-0000002/cancel", b"ignored", tok),
        Step("POST", ERP_SO + "/SO-9999999/invoice", None, tok),
        Step("GET", ERP_SO + "/SO-0000001/nope", None, tok, fast=False),
    ]


def _erp_token(md: MasterData) -> str:
    """The first token a fresh ERP of this scenario issues."""
    from mocks.core.base import Request
    from mocks.erp.core import ErpCore

    scen = _scenario()
    core = ErpCore(simpy.Environment(), md, scen, Streams(scen.seed))
    body = {"grant_type": "client_credentials", "client_id": "fp", "client_secret": "twin-secret"}
    return core.handle(Request("token", body)).body["access_token"]


def test_erp_fast_path_matches_fastapi(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = Pair("erp", monkeypatch)
    for c in (pair.fast_core, pair.slow_core):
        c.credit_limits[pair.md.customers[0].customer_no] = 1e9  # type: ignore[attr-defined]
    rs = _run(pair, _erp_steps(pair.md))
    statuses = [r.status_code for r in rs]
    # The script exercises what it claims: creates, replay, reuse, auth, validation, 404/405.
    assert {201, 200, 401, 404, 405, 409, 422, 307} <= set(statuses)
    assert rs[2].headers.get("idempotent-replayed") == "true"
    assert rs[3].json()["error"] == "idempotency_key_reused"
    body_422 = next(r.json() for r in rs if r.status_code == 422 and "detail" in r.json())
    assert {"loc", "msg", "type"} <= set(body_422["detail"][0])
    assert pair.fast_core.ledger.since(0)  # orders were created


# --------------------------------------------------------------------------------------- CRM


def test_crm_fast_path_matches_fastapi(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = Pair("crm", monkeypatch)
    md = pair.md
    acct = md.customers[1].crm_account_id
    good = {
        "AccountId": acct,
        "EffectiveDate": "2026-07-06",
        "RequestedDeliveryDate__c": "2026-07-09",
        "PoNumber": "D0000001",
        "ShippingAddress": {"street": "1 Main St", "city": "Dayton", "postalCode": "45402"},
        "OrderItems": [{"ProductCode": md.skus[0].sku, "Quantity": 5, "UnitOfMeasure__c": "EA", "UnitPrice": 2.5}],
    }
    idem = {**JSON, "idempotency-key": "o1", "x-correlation-id": "c-1"}
    oid_holder: dict[str, str] = {}

    async def script() -> None:
        first = await pair.run([Step("POST", CRM + "/Order", good, idem)])
        oid_holder["id"] = first[0].json()["id"]

    asyncio.run(script())
    oid = oid_holder["id"]
    steps: list[Step | Action] = [
        Step("POST", CRM + "/Order", good, idem),  # replay
        Step("POST", CRM + "/Order", {**good, "PoNumber": "other"}, idem),  # 422 reused key
        Step("POST", CRM + "/Order", {**good, "EffectiveDate": "07/06/2026"}, JSON, fast=False),
        Step("POST", CRM + "/Order", {**good, "AccountId": "001000000000000ZZZ"}, JSON),  # unknown account
        *_common_bad(CRM + "/Order", good, {}),
        Step("GET", f"{CRM}/Account/{acct}"),
        Step("GET", f"{CRM}/Account/{acct}/Contacts"),
        Step("GET", f"{CRM}/Account/001000000000000ZZZ"),
        Step("GET", f"{CRM}/Order/{oid}"),
        Step("PATCH", f"{CRM}/Order/{oid}", {"Status": "Booked", "ExternalOrderNo__c": "SO-1"}, JSON),  # 204
        Step("PATCH", f"{CRM}/Order/{oid}", {"Status": "Booked"}, JSON),  # unchanged
        Step("PATCH", f"{CRM}/Order/{oid}", {"Status": "Lost"}, JSON, fast=False),  # 422 literal
        Step("PATCH", f"{CRM}/Order/801000000000000ZZZ", {"Status": "Booked"}, JSON),  # 404
        Step("GET", f"{CRM}/Order/{oid}/history"),
        Step("DELETE", f"{CRM}/Order/{oid}", None, {}, fast=False),  # 405
    ]
    contact = None
    rs = _run(pair, steps)
    contacts = rs[[i for i, s in enumerate(steps) if isinstance(s, Step) and s.path.endswith("/Contacts")][0]]
    contact = contacts.json()["records"][0]["Id"]
    _run(pair, [Step("GET", f"{CRM}/Contact/{contact}")])
    assert rs[0].headers.get("idempotent-replayed") == "true"
    assert {200, 201, 204, 404, 405, 422} <= {r.status_code for r in rs}


# --------------------------------------------------------------------------------------- WMS


def test_wms_fast_path_matches_fastapi(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = Pair("wms", monkeypatch)
    md = pair.md
    good = {
        "client_reference": "801000000000000AAA",
        "erp_order": "SO-0000001",
        "ship_to": {"name": "Acme", "line1": "5 Main St", "city": "Dayton", "postal_code": "45402", "country": "US"},
        "lines": [{"sku": md.skus[0].sku, "quantity": 3, "uom": "EA"}],
    }
    idem = {**JSON, "idempotency-key": "f1"}

    def advance(core: SystemCore) -> None:
        core.env.run(until=core.env.now + 3 * 86400)

    steps: list[Step | Action] = [
        Step("POST", FO, good, idem),
        Step("POST", FO, good, idem),
        Step("POST", FO, {**good, "lines": [{"sku": md.skus[0].sku, "quantity": 1, "uom": "CS"}]}, JSON),  # core 422
        Step("POST", FO, {**good, "ship_to": {**good["ship_to"], "country": "U"}}, JSON, fast=False),
        *_common_bad(FO, good, {}),
        Step("GET", FO + "?client_reference=801000000000000AAA"),
        Step("GET", FO + "?client_reference=", fast=False),  # min_length: FastAPI's 422
        Step("GET", FO, fast=False),  # required query parameter missing
        Step("GET", FO + "/FO-000001"),
        Step("GET", FO + "/FO-999999"),
        Step("POST", FO + "/FO-000001/ship-confirm", {"carrier": "UPS", "tracking_number": "1Z1"}, JSON),  # 409
        advance,
        Step("POST", FO + "/FO-000001/ship-confirm", {"carrier": "UPS", "tracking_number": "1Z1"}, JSON),
        Step("POST", FO + "/FO-000001/ship-confirm", {"carrier": "UPS", "tracking_number": "1Z2"}, JSON),  # 409
        Step("POST", FO + "/FO-000001/ship-confirm", {"carrier": "UPS"}, JSON, fast=False),
        Step("GET", FO + "/FO-000001"),
    ]
    rs = _run(pair, steps)
    assert {200, 201, 404, 409, 422} <= {r.status_code for r in rs}


# --------------------------------------------------------------------------------------- carrier


def _shipment() -> dict[str, Any]:
    return {
        "shipperReference": "801000000000000AAA",
        "shipTo": {"name": "Acme", "addressLine1": "5 Main St", "city": "Dayton", "postalCode": "45402"},
        "packages": [{"weightLb": 18.5}],
        "service": "GROUND",
    }


def test_carrier_fast_path_matches_fastapi(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = Pair("carrier", monkeypatch)
    good = _shipment()
    rates = {"shipFrom": {"postalCode": "43004"}, "shipTo": {"postalCode": "45402"}, "packages": [{"weightLb": 3}]}
    steps: list[Step | Action] = [
        Step("POST", "/v1/rates", rates, JSON),
        Step("POST", "/v1/rates", {**rates, "packages": [{"weightLb": 151}]}, JSON, fast=False),
        Step("POST", "/v1/shipments", good, {**JSON, "idempotency-key": "s1"}),
        Step("POST", "/v1/shipments", good, {**JSON, "idempotency-key": "s1"}),
        Step("POST", "/v1/shipments", {**good, "service": "SLOW"}, JSON, fast=False),
        *_common_bad("/v1/shipments", good, {}),
        Step("GET", "/v1/tracking/1Z0000000000000000"),
    ]
    rs = _run(pair, steps)
    tracking = rs[2].json()["trackingNumber"]
    _run(pair, [Step("GET", f"/v1/tracking/{tracking}"), Step("GET", f"/v1/tracking/{tracking}/x", fast=False)])
    assert {200, 201, 404, 405, 422} <= {r.status_code for r in rs}


def test_rate_limits_and_injected_faults_on_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway is the same object on both paths: a 429 with Retry-After and an injected error
    window come out identical (and journalled with their fault)."""
    profile = ApiProfile(latency=Fixed(value=0), rate_limit=RateLimit(requests=2, per=10))

    def gateway(core: SystemCore) -> Any:
        from mocks.gateway import Gateway

        gw = Gateway(core, profile)
        assert gw.fault_engine is not None
        gw.fault_engine.add_window(
            FaultWindow(name="boom", system="carrier", kind="error", start=0, duration=60, probability=1.0)
        )
        return gw

    pair = Pair("carrier", monkeypatch, gateway_factory=gateway)
    rs = _run(pair, [Step("POST", "/v1/shipments", _shipment(), JSON) for _ in range(4)])
    assert [r.status_code for r in rs][2:] == [429, 429]
    assert "retry-after" in rs[2].headers
    assert rs[0].status_code >= 500
    faults = [e["fault"] for e in pair.fast_app.state.journal.since(0) if e["op"] == "create_shipment"]
    assert faults == ["error", "error", "rate_limited", "rate_limited"]


# --------------------------------------------------------------------------------------- table


def test_every_core_route_but_the_token_is_fast() -> None:
    scen = _scenario()
    md = generate(scen.masterdata, Streams(scen.seed))
    for system in ("erp", "crm", "wms", "carrier"):
        cls = core_class(system)
        core = cls(simpy.Environment(), md, scen, Streams(1))  # type: ignore[call-arg]
        app = _import(f"mocks.{system}.api").create_app(core, **({"supplier": False} if system == "erp" else {}))
        table = compile_table(app.router.routes, core.routes)
        assert table.ops == set(core.routes) - {"token"}, system
        assert app.openapi()["paths"]  # the FastAPI routes stay registered for the docs


def test_a_route_shadowed_by_an_earlier_one_is_left_to_fastapi() -> None:
    from fastapi import APIRouter, FastAPI
    from fastapi import Request as HttpRequest

    from mocks.core.base import Route

    router = APIRouter()

    @router.get("/things/special")
    async def special() -> dict[str, str]:
        return {"special": "yes"}

    @router.get("/things/{Id}")
    @fast
    async def get_thing(request: HttpRequest, Id: str) -> Any:
        raise AssertionError("not called")

    @router.get("/other/{Id}")
    @fast
    async def get_other(request: HttpRequest, Id: str) -> Any:
        raise AssertionError("not called")

    app = FastAPI()
    app.include_router(router)
    routes = {"get_thing": Route("GET", "/things/{Id}"), "get_other": Route("GET", "/other/{Id}")}
    table = compile_table(app.router.routes, routes)
    assert table.ops == {"get_other"}
    assert table.match("GET", "/other/x") is not None
    assert table.match("GET", "/other/") is None
    assert table.match("POST", "/other/x") is None


def test_a_fast_endpoint_without_a_core_operation_is_a_build_error() -> None:
    from fastapi import APIRouter, FastAPI
    from fastapi import Request as HttpRequest

    router = APIRouter()

    @router.get("/nowhere")
    @fast
    async def nowhere(request: HttpRequest) -> Any:
        raise AssertionError("not called")

    app = FastAPI()
    app.include_router(router)
    with pytest.raises(ValueError, match="nowhere"):
        compile_table(app.router.routes, {})


# --------------------------------------------------------------------------------------- Validated


def _create_models() -> list[tuple[type[Any], dict[str, Any]]]:
    from mocks.carrier.schemas import RateRequest, ShipmentCreate
    from mocks.crm.schemas import OrderCreate, OrderUpdate
    from mocks.erp.schemas import SalesOrderCreate
    from mocks.wms.schemas import FulfillmentCreate, ShipConfirm

    return [
        (
            SalesOrderCreate,
            {
                "ExtRef": " 801X ",
                "SoldTo": "C000001",
                "RequestedDate": "20260710",
                "PoNumber": None,
                "Lines": [{"ItemNo": "SKU-1 ", "Qty": 2.0, "UnitPrice": 1}],
            },
        ),
        (
            OrderCreate,
            {
                "AccountId": "001000000000000AAA",
                "EffectiveDate": "2026-07-06",
                "ShippingAddress": {"street": " 1 Main ", "city": "X", "postalCode": "1"},
                "OrderItems": [{"ProductCode": "S", "Quantity": 1, "UnitPrice": None}],
            },
        ),
        (OrderUpdate, {"Status": "Booked", "StatusReason__c": " r "}),
        (
            FulfillmentCreate,
            {
                "client_reference": "801",
                "erp_order": "SO-1",
                "ship_to": {"name": "a", "line1": "b", "city": "c", "postal_code": "d", "country": "US"},
                "lines": [{"sku": "S", "quantity": 1}],
                "requested_ship_date_ms": None,
            },
        ),
        (ShipConfirm, {"carrier": " UPS ", "tracking_number": "1Z"}),
        (RateRequest, {"shipFrom": {"postalCode": "1"}, "shipTo": {"postalCode": "2"}, "packages": [{"weightLb": 1}]}),
        (ShipmentCreate, {"shipperReference": "801", "shipTo": {"postalCode": "2"}, "packages": [{"weightLb": 1.5}]}),
    ]


@pytest.mark.parametrize("model,raw", _create_models(), ids=lambda x: getattr(x, "__name__", ""))
def test_validated_bodies_are_what_the_core_would_validate(model: type[Any], raw: dict[str, Any]) -> None:
    """``Validated`` lets a core skip validating again; sound only if validating the dumped dict
    gives the same model (idempotent validators) and ``parse`` hands back that model."""
    m = model.model_validate(raw)
    v = validated(m)
    assert isinstance(v, Validated)
    again = model.model_validate(dict(v))
    assert again == m
    assert again.model_dump() == m.model_dump()
    assert parse(model, v) is m
    assert parse(model, dict(v)) == m


# --------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize(
    "resp",
    [
        Response(201, {"a": 1, "é": "ü"}, {"location": "/x/1"}),
        Response(200, {"a": [1.5, None, True]}),
        Response(422, {"error": "e"}, {"Content-Type": "application/problem+json"}),
        Response(200, {"a": 1}, {"content-length": "7"}),
        Response(204, None, {"x-a": "b"}),
        Response(304, {"a": 1}),
        Response(200, None),
        Response(200, [1, 2]),
        Response(502, b'{"trunc', {"retry-after": "3"}),
        Response(200, {"big": 1 << 70}),  # orjson refuses: JSONResponse's rendering
    ],
    ids=lambda r: f"{r.status}-{type(r.body).__name__}",
)
def test_send_response_writes_what_render_writes(resp: Response) -> None:
    async def collect(fn: Callable[..., Any]) -> list[Any]:
        out: list[Any] = []

        async def send(m: Any) -> None:
            out.append(m)

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        await fn({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
        return out

    async def direct(scope: Any, receive: Any, send: Any) -> None:
        await send_response(resp, scope, receive, send)

    fast_msgs = asyncio.run(collect(direct))
    slow_msgs = asyncio.run(collect(render(resp)))
    assert fast_msgs == slow_msgs


class _FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_coalescing_transport_writes_once_per_loop_step_and_flushes_on_close() -> None:
    async def main() -> None:
        real = _FakeTransport()
        t = _CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"body")
        assert real.writes == []  # held until the end of this step
        await asyncio.sleep(0)
        assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        t.write(b"one")
        await asyncio.sleep(0)
        assert real.writes[-1] == b"one"
        t.write(b"last")
        t.close()  # e.g. Connection: close, or a reset fault after the head
        assert real.writes[-1] == b"last" and real.closed
        assert t.get_extra_info("peername") == "info:peername"
        await asyncio.sleep(0)
        assert len(real.writes) == 3  # the scheduled flush found nothing left

    asyncio.run(main())
