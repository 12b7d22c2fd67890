"""mocks.serve: building the real systems' mocks with faults, clock and webhooks wired in."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from mocks.serve import SYSTEMS, MockUnavailable, bind, build_mock, core_class, ports_for
from sim.scenario import parse_scenario

ADMIN = {"X-Twin-Admin-Token": "tok"}


def small() -> Any:
    return parse_scenario(
        {
            "name": "t",
            "masterdata": {"customers": 5, "skus": 10, "suppliers": 2, "sales_reps": 2},
            "faults": [{"name": "erp-down", "system": "erp", "kind": "outage", "start": 0, "duration": "1h"}],
        }
    )


def test_missing_system_module_is_a_clear_error() -> None:
    with pytest.raises(MockUnavailable, match="mocks.nosuch.core"):
        core_class("nosuch")


def test_default_ports_and_any() -> None:
    assert ports_for(SYSTEMS, 8701) == {"crm": 8701, "erp": 8702, "wms": 8703, "carrier": 8704}
    assert set(ports_for(["erp"], 0).values()) == {0}


@pytest.mark.live
def test_taken_port_falls_back_to_a_free_one() -> None:
    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        s = bind("127.0.0.1", port)
        assert s.getsockname()[1] not in (0, port)
        s.close()
    finally:
        taken.close()
    assert isinstance(taken, socket.socket)


@pytest.mark.parametrize("system", SYSTEMS)
def test_build_mock_wires_faults_clock_and_control(system: str) -> None:
    m = build_mock(system, small(), admin_token="tok")
    assert m.app.state.gateway.fault_engine is m.engine and m.app.state.clock is m.clock
    assert m.core.emit == m.deliverer.enqueue

    async def go() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=m.app), base_url="http://mock") as c:
            assert (await c.get("/_twin/faults")).status_code == 401
            faults = (await c.get("/_twin/faults", headers=ADMIN)).json()
            assert (await c.post("/_twin/reset", headers=ADMIN)).status_code == 200
            return faults

    faults = asyncio.run(go())
    assert [w["name"] for w in faults["windows"]] == (["erp-down"] if system == "erp" else [])


def test_erp_outage_window_answers_503_over_http() -> None:
    m = build_mock("erp", small(), admin_token="tok")

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=m.app), base_url="http://erp") as c:
            return await c.post(
                "/oauth/token", data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"}
            )

    r = asyncio.run(go())
    assert r.status_code == 503 and r.json()["error"] == "service_unavailable"
