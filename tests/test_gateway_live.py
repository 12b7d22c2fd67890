"""Over real loopback sockets: an injected reset is a dropped connection, not a 500."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import simpy
from test_gateway_support import ORDER, DummyCore, router

from mocks.app import make_app
from mocks.faults import FaultEngine
from mocks.gateway import Gateway
from mocks.serve import bind, serve_apps
from sim.clock import LiveClock
from sim.distributions import Fixed
from sim.rng import Streams
from sim.scenario import ApiProfile, FaultWindow

pytestmark = pytest.mark.live


def test_reset_and_errors_over_uvicorn() -> None:
    env = simpy.Environment()
    core = DummyCore(env)
    reset = FaultWindow(name="rs", system="erp", kind="reset", endpoint="get_*", start=0, duration=1e9)
    fe = FaultEngine("erp", ApiProfile(latency=Fixed(value=0.001)), [reset], Streams(1))
    clock = LiveClock(env, compression=10)
    app = make_app(core, router, Gateway(core, "honour", fe, clock), clock=clock)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]

    async def main() -> None:
        stop = asyncio.Event()
        ready = asyncio.Event()
        server = asyncio.create_task(serve_apps({"erp": app}, {"erp": sock}, ready=lambda _: ready.set(), stop=stop))
        await asyncio.wait_for(ready.wait(), 5)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
                r = await c.post("/orders", json=ORDER)
                assert r.status_code == 201
                with pytest.raises(httpx.RemoteProtocolError):
                    await c.get("/orders/SO-0000001")
                r = await c.get("/_twin/health")
                assert r.status_code == 200 and r.json()["now"] > 0  # the clock task is running
        finally:
            stop.set()
            await asyncio.wait_for(server, 10)

    try:
        asyncio.run(main())
    finally:
        sock.close()
    assert not clock.running
