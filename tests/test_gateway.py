"""Gateway + make_app in process (httpx.ASGITransport): faults as the HTTP client sees them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import simpy
from test_gateway_support import ADMIN, ORDER, DummyCore, router

from mocks.app import make_app
from mocks.core.base import Request
from mocks.faults import Action, FaultEngine
from mocks.gateway import Admitted, ConnectionDropped, Gateway
from sim.distributions import Fixed
from sim.rng import Streams
from sim.scenario import ApiProfile, FaultWindow, RateLimit


def W(name: str, kind: str, **kw: Any) -> FaultWindow:
    return FaultWindow.model_validate({"name": name, "system": "erp", "kind": kind, "start": 0, "duration": 1e9, **kw})


class Sleeps:
    """Fake asyncio.sleep: records the latency the gateway would wait, yields once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, s: float) -> None:
        self.calls.append(s)
        await asyncio.sleep(0)


def build(
    profile: ApiProfile | None = None, windows: list[FaultWindow] | None = None, sleep: Any = None
) -> tuple[Any, DummyCore, Gateway, Sleeps]:
    core = DummyCore(simpy.Environment())
    fe = FaultEngine("erp", profile or ApiProfile(latency=Fixed(value=0.01)), windows or [], Streams(1))
    sleeps = Sleeps()
    gw = Gateway(core, "honour", fe, sleep=sleep or sleeps, api_time=lambda: core.env.now)
    app = make_app(core, router, gw, admin_token=ADMIN["X-Twin-Admin-Token"])
    return app, core, gw, sleeps


def run(app: Any, fn: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://erp") as c:
            return await fn(c)

    return asyncio.run(main())


def test_two_argument_make_app_still_serves_without_faults() -> None:
    core = DummyCore(simpy.Environment())
    app = make_app(core, router)
    r = run(app, lambda c: c.post("/orders", json=ORDER))
    assert r.status_code == 201 and r.json()["SalesOrderNo"] == "SO-0000001"
    assert app.state.gateway.decide(Request("create_order")).action is Action.ok
    assert len(core.ledger) == 1


def test_latency_from_the_decision_is_slept() -> None:
    app, _, _, sleeps = build(ApiProfile(latency=Fixed(value=0.25)))
    assert run(app, lambda c: c.post("/orders", json=ORDER)).status_code == 201
    assert sleeps.calls == [0.25]


def test_error_window_fails_before_processing() -> None:
    app, core, gw, _ = build(windows=[W("err", "error", probability=1, status=502, endpoint="create_*")])
    r = run(app, lambda c: c.post("/orders", json=ORDER, headers={"Idempotency-Key": "k1"}))
    assert r.status_code == 502 and r.json()["error"] == "bad_gateway"
    assert len(core.ledger) == 0 and gw.in_flight == 0


def test_rate_limited_has_retry_after_from_the_bucket() -> None:
    app, core, _, _ = build(ApiProfile(latency=Fixed(value=0), rate_limit=RateLimit(requests=2, per=10)))

    async def go(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [await c.get("/orders/SO-1", headers={"X-Client-Id": "a"}) for _ in range(3)]

    rs = run(app, go)
    assert [r.status_code for r in rs] == [404, 404, 429]
    assert rs[2].headers["retry-after"] == "5"  # 2 tokens / 10 s: one back in 5 s


def test_outage_via_profile_error_rate_one() -> None:
    app, core, _, _ = build(ApiProfile(latency=Fixed(value=0), error_rate=1.0, error_status=[503]))
    assert run(app, lambda c: c.post("/orders", json=ORDER)).status_code == 503
    assert len(core.ledger) == 0


@pytest.mark.parametrize("after_commit", [True, False])
def test_timeout_processes_when_after_commit_then_hangs(after_commit: bool) -> None:
    app, core, gw, sleeps = build(windows=[W("to", "timeout", after_commit=after_commit)])
    r = run(app, lambda c: c.post("/orders", json=ORDER, headers={"Idempotency-Key": "k"}))
    assert r.status_code == 504 and sleeps.calls[-1] == 30.0
    assert len(core.ledger) == (1 if after_commit else 0)
    assert gw.in_flight == 0


@pytest.mark.parametrize("after_commit", [True, False])
def test_reset_drops_the_connection(after_commit: bool) -> None:
    app, core, gw, _ = build(windows=[W("rs", "reset", after_commit=after_commit)])
    with pytest.raises(ConnectionDropped):
        run(app, lambda c: c.post("/orders", json=ORDER, headers={"Idempotency-Key": "k"}))
    assert len(core.ledger) == (1 if after_commit else 0)
    # Without commit the key was abandoned: a retry is processed, not a 409.
    gw.fault_engine.set_windows([])  # type: ignore[union-attr]
    r = run(app, lambda c: c.post("/orders", json=ORDER, headers={"Idempotency-Key": "k"}))
    assert r.status_code == 201
    assert r.headers.get("idempotent-replayed") == ("true" if after_commit else None)
    assert len(core.ledger) == 1


def test_truncate_returns_half_a_json_body() -> None:
    app, core, _, _ = build(windows=[W("tr", "truncate")])
    r = run(app, lambda c: c.post("/orders", json=ORDER))
    assert r.status_code == 201 and len(core.ledger) == 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    full = json.dumps(core.orders["SO-0000001"], separators=(",", ":")).encode()
    assert r.content == full[: len(full) // 2]


def test_dribble_streams_the_whole_body_slowly() -> None:
    app, core, _, _ = build(windows=[W("dr", "dribble", latency=Fixed(value=0.1))])

    async def go(c: httpx.AsyncClient) -> tuple[list[bytes], float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with c.stream("POST", "/orders", json=ORDER) as r:
            assert r.status_code == 201
            chunks = [ch async for ch in r.aiter_raw()]
        return chunks, loop.time() - t0

    chunks, took = run(app, go)
    assert json.loads(b"".join(chunks)) == core.orders["SO-0000001"]
    assert took >= 0.09


def test_idempotency_409_and_422_unaffected_by_configured_faults() -> None:
    app, core, gw, _ = build(
        ApiProfile(latency=Fixed(value=0.05)),
        windows=[W("other", "error", probability=1, endpoint="get_*")],
        sleep=asyncio.sleep,
    )
    h = {"Idempotency-Key": "so:1"}

    async def go(c: httpx.AsyncClient) -> list[int]:
        first = asyncio.create_task(c.post("/orders", json=ORDER, headers=h))
        await asyncio.sleep(0.01)  # the first is inside its latency: in flight
        second = await c.post("/orders", json=ORDER, headers=h)
        other = await c.post("/orders", json={**ORDER, "ExtRef": "x"}, headers=h)
        replay = await c.post("/orders", json=ORDER, headers=h)
        return [(await first).status_code, second.status_code, other.status_code, replay.status_code]

    assert run(app, go) == [201, 409, 422, 201]
    assert len(core.ledger) == 1


def test_contract_drift_renames_response_field_after_start() -> None:
    core = DummyCore(simpy.Environment())
    drift = FaultWindow(
        name="d",
        system="erp",
        kind="contract_drift",
        endpoint="create_*",
        start=100,
        duration=1e9,
        field="ExtRef",
        rename_to="ExternalRef",
    )
    gw = Gateway(core, "honour", FaultEngine("erp", ApiProfile(latency=Fixed(value=0)), [drift], Streams(1)))
    assert "ExtRef" in gw.serve(Request("create_order", ORDER)).body
    core.env.run(until=100)
    body = gw.serve(Request("create_order", ORDER)).body
    assert "ExternalRef" in body and "ExtRef" not in body
    assert core.orders["SO-0000002"]["ExtRef"] == ORDER["ExtRef"]  # core state untouched


def test_virtual_mode_steps_decide_admit_execute() -> None:
    core = DummyCore(simpy.Environment())
    gw = Gateway(core, ApiProfile(latency=Fixed(value=0.2), concurrency_limit=1))
    r = Request("create_order", ORDER)
    d = gw.decide(r)
    assert d.action is Action.ok and d.latency_s == 0.2
    adm = gw.admit(r)
    assert isinstance(adm, Admitted) and gw.in_flight == 1
    assert gw.decide(r).status == 429  # concurrency limit sees the in-flight request
    assert gw.execute(adm).status == 201 and gw.in_flight == 0


def test_request_journal_records_op_status_and_fault() -> None:
    app, _, _, _ = build(windows=[W("err", "error", probability=1, endpoint="get_*")])

    async def go(c: httpx.AsyncClient) -> Any:
        await c.post(
            "/orders", json=ORDER, headers={"Idempotency-Key": "k", "X-Correlation-Id": "corr-1", "X-Client-Id": "me"}
        )
        await c.get("/orders/SO-0000001")
        return (await c.get("/_twin/requests", headers=ADMIN)).json()["requests"]

    j = run(app, go)
    assert [(e["op"], e["status"], e["fault"]) for e in j] == [("create_order", 201, None), ("get_order", 500, "error")]
    assert j[0]["idempotency_key"] == "k" and j[0]["correlation_id"] == "corr-1" and j[0]["client"] == "me"
    assert j[1]["window"] == "err" and j[0]["latency_s"] >= 0
