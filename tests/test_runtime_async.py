"""The asyncio interpreter against a tiny in-process FastAPI app (httpx.ASGITransport, no sockets).
Backoff sleeps go to a fake clock, so nothing waits in wall time."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from mocks.core.base import Route
from reference_integration.config import IntegrationConfig
from reference_integration.effects import Call
from reference_integration.errors import BusinessError, CallFailed, ConnectionFailed
from reference_integration.runtime_async import AsyncRuntime
from reference_integration.store import MemoryStore
from sim.scenario import Integration

ROUTES = {
    "erp": {
        "token": Route("POST", "/oauth/token"),
        "get_customer": Route("GET", "/api/v2/customers/{CustomerNo}", scope="credit"),
        "get_atp": Route("GET", "/api/v2/atp", scope="orders"),
        "create_sales_order": Route("POST", "/api/v2/sales-orders", mutating=True, scope="orders"),
    }
}


class Erp:
    """Scripted fake ERP: per op a list of canned failures served before the normal answer."""

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.seen: list[tuple[str, dict[str, str], Any]] = []
        self.tokens = 0
        self.app = FastAPI()
        app = self.app

        @app.post("/oauth/token")
        async def token(request: Request) -> Any:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            self.seen.append(("token", dict(request.headers), form))
            if form.get("client_secret") != "twin-secret":
                return JSONResponse({"error": "invalid_client"}, 401)
            self.tokens += 1
            return {"access_token": f"tok{self.tokens}", "token_type": "Bearer", "expires_in": 3600}

        @app.get("/api/v2/customers/{no}")
        async def customer(no: str, request: Request) -> Any:
            return self.answer("get_customer", request, {"CustomerNo": no})

        @app.get("/api/v2/atp")
        async def atp(request: Request) -> Any:
            return self.answer("get_atp", request, {"Items": [], "query": dict(request.query_params)})

        @app.post("/api/v2/sales-orders")
        async def create(request: Request) -> Any:
            body = await request.json()
            return self.answer("create_sales_order", request, {"SalesOrderNo": "SO-1", "ExtRef": body["ExtRef"]}, 201)

    def answer(self, op: str, request: Request, ok: Any, status: int = 200) -> Any:
        self.seen.append((op, dict(request.headers), None))
        if request.headers.get("authorization", "") != f"Bearer tok{self.tokens}" or not self.tokens:
            return JSONResponse({"error": "invalid_token"}, 401)
        script = self.script.get(op) or []
        if script:
            item = script.pop(0)
            if isinstance(item, BaseException):
                raise item
            if item == "truncated":
                return Response(b'{"Items": [{"ItemNo": "SKU-1", "Avail', media_type="application/json")
            status_, headers = item if isinstance(item, tuple) else (item, {})
            return JSONResponse({"error": f"e{status_}"}, status_, headers=headers)
        return JSONResponse(ok, status)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


class Dropped(Exception):
    pass


def make(erp: Erp, profile: str = "resilient") -> tuple[AsyncRuntime, FakeClock]:
    clock = FakeClock()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=erp.app), base_url="http://erp")
    cfg = IntegrationConfig.from_scenario(Integration(profile=profile))
    rt = AsyncRuntime(
        cfg,
        {"erp": client},
        ROUTES,
        MemoryStore(clock=clock),
        clock=clock,
        sleep=clock.sleep,
        connection_errors=(Dropped,),
    )
    return rt, clock


def wf(call: Call, out: list):
    try:
        out.append((yield call))
    except CallFailed as e:
        out.append(e)


def run(rt: AsyncRuntime, *calls: Call) -> list:
    out: list = []

    async def main() -> None:
        for c in calls:
            await rt.run(wf(c, out), "test")

    asyncio.run(main())
    return out


def test_retry_on_503_with_retry_after_then_success() -> None:
    erp = Erp()
    erp.script["get_customer"] = [(503, {"Retry-After": "7"}), 503]
    rt, clock = make(erp)
    [res] = run(rt, Call("erp", "get_customer", params={"CustomerNo": "C000123"}, correlation_id="c-1"))
    assert res.status == 200 and res.body == {"CustomerNo": "C000123"} and res.attempts == 3
    assert clock.sleeps[0] >= 7 and len(clock.sleeps) == 2 and rt.retries == {"erp": 2}
    assert [r.outcome for r in rt.calls if r.operation == "get_customer"] == ["server_error", "server_error", "ok"]
    headers = [h for op, h, _ in erp.seen if op == "get_customer"][0]
    assert headers["x-correlation-id"] == "c-1" and headers["x-client-id"] == "reference-integration"


def test_token_fetched_once_and_reused_form_encoded() -> None:
    erp = Erp()
    rt, _ = make(erp)
    calls = [Call("erp", "get_customer", params={"CustomerNo": f"C{i}"}) for i in range(3)]
    out = run(rt, *calls)
    assert [r.status for r in out] == [200] * 3 and erp.tokens == 1
    [(_, headers, form)] = [s for s in erp.seen if s[0] == "token"]
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "reference-integration",
        "client_secret": "twin-secret",
        "scope": "orders pricing credit",
    }
    assert rt.auth["erp"].token == "tok1"


def test_concurrent_workflows_share_one_token_fetch() -> None:
    erp = Erp()
    rt, _ = make(erp)
    out: list = []

    async def main() -> None:
        await asyncio.gather(
            *(rt.run(wf(Call("erp", "get_customer", params={"CustomerNo": f"C{i}"}), out)) for i in range(5))
        )

    asyncio.run(main())
    assert erp.tokens == 1 and [r.status for r in out] == [200] * 5


def test_token_refreshed_on_401() -> None:
    erp = Erp()
    rt, _ = make(erp)
    run(rt, Call("erp", "get_customer", params={"CustomerNo": "C1"}))
    erp.tokens += 1  # the server rotated its token: ours (tok1) is now rejected
    [res] = run(rt, Call("erp", "get_customer", params={"CustomerNo": "C1"}))
    assert res.status == 200 and rt.auth["erp"].token == "tok3"


def test_truncated_json_is_retryable_technical_failure() -> None:
    erp = Erp()
    erp.script["get_atp"] = ["truncated"]
    rt, _ = make(erp)
    [res] = run(rt, Call("erp", "get_atp", params={"items": "SKU-1,SKU-2", "plant": "WH01"}))
    assert res.status == 200 and res.body["query"] == {"items": "SKU-1,SKU-2", "plant": "WH01"}
    assert [r.outcome for r in rt.calls if r.operation == "get_atp"] == ["malformed", "ok"]


def test_connection_drop_retried_and_business_error_not() -> None:
    erp = Erp()
    erp.script["create_sales_order"] = [Dropped(), 422]
    rt, _ = make(erp)
    so = Call("erp", "create_sales_order", {"ExtRef": "801A"}, idempotency_key="so:801A")
    [err] = run(rt, so)
    assert isinstance(err, BusinessError) and err.status == 422 and err.attempts == 2
    assert [r.outcome for r in rt.calls if r.operation == "create_sales_order"] == [
        "connection_error",
        "business_error",
    ]
    keys = [h.get("idempotency-key") for op, h, _ in erp.seen if op == "create_sales_order"]
    assert keys == ["so:801A", "so:801A"]  # same key on the retry


def test_naive_no_retry_no_key() -> None:
    erp = Erp()
    erp.script["create_sales_order"] = [503]
    rt, _ = make(erp, "naive")
    [err] = run(rt, Call("erp", "create_sales_order", {"ExtRef": "801A"}, idempotency_key="so:801A"))
    assert isinstance(err, CallFailed) and err.status == 503 and err.attempts == 1
    assert all("idempotency-key" not in h for op, h, _ in erp.seen if op == "create_sales_order")


def test_transport_error_maps_to_connection_failed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    clock = FakeClock()
    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url="http://erp")
    cfg = IntegrationConfig.from_scenario(
        Integration.model_validate({"systems": {"erp": {"retry": {"max_attempts": 2}}}})
    )
    rt = AsyncRuntime(cfg, {"erp": client}, ROUTES, clock=clock, sleep=clock.sleep)
    out = run(rt, Call("erp", "token", rt.engine.token_call("erp").payload))
    assert isinstance(out[0], ConnectionFailed) and out[0].attempts == 2
    assert "integration_retries_total" in rt.metrics_text()


def test_per_attempt_timeout() -> None:
    app = FastAPI()

    @app.get("/api/v2/atp")
    async def slow() -> Any:
        await asyncio.sleep(5)
        return {}

    clock = FakeClock()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://erp")
    cfg = IntegrationConfig.from_scenario(
        Integration.model_validate({"systems": {"erp": {"timeout": 0.05, "retry": {"max_attempts": 2}}}})
    )
    rt = AsyncRuntime(cfg, {"erp": client}, ROUTES, clock=clock, sleep=clock.sleep)
    rt.auth["erp"].set("tok", 3600, 0.0)  # skip the token endpoint this app does not have
    [err] = run(rt, Call("erp", "get_atp"))
    assert type(err).__name__ == "CallTimeout" and err.attempts == 2


def test_against_the_real_erp_mock_in_process() -> None:
    """Contract check: route table, form-encoded OAuth grant and scopes of the actual ERP mock."""
    import simpy

    from mocks.erp.api import create_app
    from mocks.erp.core import ErpCore
    from sim.masterdata import generate
    from sim.rng import Streams
    from sim.scenario import MasterDataSizes, Scenario

    sc = Scenario(name="t", masterdata=MasterDataSizes(customers=3, skus=3, credit_hold_share=0))
    md = generate(sc.masterdata, Streams(1))
    app = create_app(ErpCore(simpy.Environment(), md, sc, Streams(1)))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://erp")
    rt = AsyncRuntime(IntegrationConfig.resilient(), {"erp": client}, {"erp": ErpCore.routes})
    cust = md.customers[0].customer_no

    async def main() -> tuple[Any, Any]:
        a = await rt.call(Call("erp", "get_customer", params={"CustomerNo": cust}))
        b = await rt.call(Call("erp", "get_atp", params={"items": "SKU-00001", "plant": "WH01"}))
        return a, b

    a, b = asyncio.run(main())
    assert a.body["CustomerNo"] == cust and b.body["Plant"] == "WH01"
    assert [(c.operation, c.outcome) for c in rt.calls] == [("token", "ok"), ("get_customer", "ok"), ("get_atp", "ok")]
