"""The /_twin control API: auth, faults CRUD with validation, profile, reset, ledger, journal, clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import simpy
from test_gateway_support import ADMIN, ORDER, DummyCore, router

from mocks.app import make_app
from mocks.faults import FaultEngine
from mocks.gateway import Gateway
from sim.clock import LiveClock
from sim.distributions import Fixed
from sim.rng import Streams
from sim.scenario import ApiProfile

OUTAGE = {"name": "down", "kind": "outage", "start": 0, "duration": "1h"}


def app_with(core: DummyCore | None = None, **kw: Any) -> Any:
    core = core or DummyCore(simpy.Environment())
    fe = FaultEngine("erp", ApiProfile(latency=Fixed(value=0)), [], Streams(1))
    return make_app(core, router, Gateway(core, "honour", fe), admin_token=ADMIN["X-Twin-Admin-Token"], **kw)


def run(app: Any, fn: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://erp") as c:
            return await fn(c)

    return asyncio.run(main())


def test_admin_token_required_except_health() -> None:
    async def go(c: httpx.AsyncClient) -> list[int]:
        return [
            (await c.get("/_twin/faults")).status_code,
            (await c.get("/_twin/faults", headers={"X-Twin-Admin-Token": "wrong"})).status_code,
            (await c.post("/_twin/reset")).status_code,
            (await c.get("/_twin/ledger")).status_code,
            (await c.get("/_twin/faults", headers=ADMIN)).status_code,
            (await c.get("/_twin/health")).status_code,
        ]

    assert run(app_with(), go) == [401, 401, 401, 401, 200, 200]


def test_fault_crud_takes_effect_on_requests() -> None:
    async def go(c: httpx.AsyncClient) -> None:
        r = await c.put("/_twin/faults", json=OUTAGE, headers=ADMIN)
        assert r.status_code == 200 and r.json()["active"] is True
        assert r.json()["window"]["system"] == "erp"  # defaults to this mock
        assert (await c.post("/orders", json=ORDER)).status_code == 503
        listed = (await c.get("/_twin/faults", headers=ADMIN)).json()
        assert [w["name"] for w in listed["windows"]] == ["down"] and listed["active"] == ["down"]
        assert (await c.delete("/_twin/faults/down", headers=ADMIN)).status_code == 200
        assert (await c.delete("/_twin/faults/down", headers=ADMIN)).status_code == 404
        assert (await c.post("/orders", json=ORDER)).status_code == 201
        # A list replaces all windows; DELETE without a name clears them.
        two = [{**OUTAGE, "name": "a"}, {**OUTAGE, "name": "b", "start": "2h"}]
        r = await c.put("/_twin/faults", json=two, headers=ADMIN)
        assert r.json()["active"] == ["a"]
        assert (await c.delete("/_twin/faults", headers=ADMIN)).json()["removed"] == ["a", "b"]

    run(app_with(), go)


def test_bad_window_is_422_naming_the_field() -> None:
    async def go(c: httpx.AsyncClient) -> list[dict[str, Any]]:
        out = []
        for body in (
            {"name": "rl", "kind": "rate_limit", "start": 0, "duration": 60},  # needs limit
            {"name": "x", "kind": "outage", "start": 0, "duration": "soon"},
            {"name": "x", "kind": "no_such_kind", "start": 0, "duration": 1},
            {**OUTAGE, "system": "crm"},
        ):
            r = await c.put("/_twin/faults", json=body, headers=ADMIN)
            assert r.status_code == 422
            out.append(r.json())
        return out

    a, b, c, d = run(app_with(), go)
    assert "needs limit" in a["problems"][0]
    assert b["problems"][0].startswith("fault: duration:")
    assert c["problems"][0].startswith("fault: kind:")
    assert d["problems"][0].startswith("fault: system:")


def test_relative_start_counts_from_now() -> None:
    core = DummyCore(simpy.Environment())
    core.env.run(until=500)

    async def go(c: httpx.AsyncClient) -> Any:
        return (await c.put("/_twin/faults?relative=true", json={**OUTAGE, "start": 60}, headers=ADMIN)).json()

    out = run(app_with(core), go)
    assert out["window"]["start"] == 560 and out["active"] is False


def test_profile_get_put_and_422() -> None:
    async def go(c: httpx.AsyncClient) -> None:
        assert (await c.get("/_twin/profile", headers=ADMIN)).json()["error_rate"] == 0
        r = await c.put("/_twin/profile", json={"latency": 0, "error_rate": 1, "error_status": [502]}, headers=ADMIN)
        assert r.status_code == 200
        assert (await c.post("/orders", json=ORDER)).status_code == 502
        r = await c.put("/_twin/profile", json={"error_rate": 2}, headers=ADMIN)
        assert r.status_code == 422 and r.json()["problems"][0].startswith("profile: error_rate:")

    run(app_with(), go)


def test_reset_via_core_reset_clears_state_ledger_and_idempotency() -> None:
    app = app_with()
    core = app.state.core

    async def go(c: httpx.AsyncClient) -> None:
        await c.post("/orders", json=ORDER, headers={"Idempotency-Key": "k"})
        assert (await c.post("/_twin/reset", headers=ADMIN)).json()["reset"] is True
        assert core.orders == {} and len(core.ledger) == 0
        r = await c.post("/orders", json=ORDER, headers={"Idempotency-Key": "k"})
        assert r.status_code == 201 and "idempotent-replayed" not in r.headers
        assert len((await c.get("/_twin/requests", headers=ADMIN)).json()["requests"]) == 1

    run(app, go)


class NoResetCore(DummyCore):
    reset = None  # type: ignore[assignment]  # a core without reset(): rebuilt by the factory


def test_reset_via_factory_when_the_core_has_no_reset() -> None:
    made: list[DummyCore] = []

    def factory() -> DummyCore:
        made.append(NoResetCore(simpy.Environment()))
        return made[-1]

    app = app_with(NoResetCore(simpy.Environment()), reset_factory=factory)

    async def go(c: httpx.AsyncClient) -> None:
        await c.post("/orders", json=ORDER)
        assert (await c.post("/_twin/reset", headers=ADMIN)).status_code == 200
        assert app.state.core is made[0] and app.state.gateway.core is made[0]
        assert (await c.post("/orders", json=ORDER)).json()["SalesOrderNo"] == "SO-0000001"

    run(app, go)


def test_ledger_paging_and_ndjson_export() -> None:
    app = app_with()

    async def go(c: httpx.AsyncClient) -> None:
        for i in range(5):
            await c.post("/orders", json={**ORDER, "ExtRef": f"r{i}"})
        page = (await c.get("/_twin/ledger?since=1&limit=2", headers=ADMIN)).json()
        assert [e["seq"] for e in page["entries"]] == [2, 3] and page["next"] == 3
        assert page["entries"][0]["ref"] == "r1" and page["entries"][0]["kind"] == "sales_order.created"
        r = await c.get("/_twin/ledger.ndjson", headers=ADMIN)
        lines = [json.loads(x) for x in r.text.splitlines()]
        assert r.headers["content-type"].startswith("application/x-ndjson") and len(lines) == 5

    run(app, go)


def test_clock_endpoint_with_and_without_live_clock() -> None:
    async def go(c: httpx.AsyncClient) -> Any:
        return (await c.get("/_twin/clock", headers=ADMIN)).json()

    assert run(app_with(), go)["lag_exceeded"] is False
    env = simpy.Environment()
    wall = [0.0]
    clock = LiveClock(env, compression=100, max_lag=1, wall=lambda: wall[0])
    app = app_with(DummyCore(env), clock=clock)
    clock.sync()
    wall[0] = 2.0

    async def go2(c: httpx.AsyncClient) -> Any:
        await c.post("/orders", json=ORDER)  # syncs the clock
        return (await c.get("/_twin/clock", headers=ADMIN)).json()

    st = run(app, go2)
    assert st["now"] == 200 and st["compression"] == 100 and st["max_lag_seen_s"] == 2.0 and st["lag_exceeded"]


def test_webhooks_endpoint_reports_deliveries() -> None:
    from mocks.webhooks import WebhookDeliverer

    d = WebhookDeliverer({}, "s")
    core = DummyCore(simpy.Environment(), emit=d.enqueue)
    app = app_with(core, deliverer=d)

    async def go(c: httpx.AsyncClient) -> Any:
        await c.post("/orders", json=ORDER)
        await d.drain(timeout=1)
        return (await c.get("/_twin/webhooks", headers=ADMIN)).json()

    out = run(app, go)
    assert out["events"][0]["type"] == "SalesOrder.Created" and out["attempts"][0]["outcome"] == "no_target"
    assert out["stats"]["pending"] == 0


def test_observation_and_reset_run_on_the_loop_that_owns_the_core() -> None:
    """Ledger, journal and webhook reads and resets happen on the event loop's thread: the loop
    appends to those structures between awaits, so a read from a worker thread could meet a
    deque mutated mid-iteration (a 500 in a live run under load) and a reset race requests."""
    import threading

    core = DummyCore(simpy.Environment())
    app = app_with(core)
    threads: set[int] = set()
    led = core.ledger
    since, clear = led.since, led.clear

    def spy_since(*a: Any, **kw: Any) -> Any:
        threads.add(threading.get_ident())
        return since(*a, **kw)

    def spy_clear() -> None:
        threads.add(threading.get_ident())
        clear()

    led.since, led.clear = spy_since, spy_clear  # type: ignore[method-assign]

    async def go(c: httpx.AsyncClient) -> int:
        assert (await c.post("/orders", json=ORDER)).status_code in (200, 201)
        for path in ("/_twin/ledger", "/_twin/ledger.ndjson", "/_twin/requests", "/_twin/webhooks", "/_twin/clock"):
            assert (await c.get(path, headers=ADMIN)).status_code == 200, path
        assert (await c.post("/_twin/reset", headers=ADMIN)).status_code in (200, 409)
        return threading.get_ident()

    loop_thread = run(app, go)
    assert threads == {loop_thread}
