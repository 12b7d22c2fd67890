"""sim.live and its helpers without sockets: the common clock epoch, the live ERP token, the demand
bodies, drain quiescence, metrics parsing, child-process cleanup."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import simpy

from mocks.serve import build_mock
from sim import live
from sim.clock import LiveClock
from sim.procs import Children
from sim.scenario import parse_scenario

ADMIN = {"X-Twin-Admin-Token": "tok"}


def small(**extra: Any) -> Any:
    return parse_scenario(
        {
            "name": "t",
            "seed": 3,
            "horizon": "1d",
            "live": {"compression": 3600},
            "masterdata": {"customers": 5, "skus": 10, "suppliers": 2, "sales_reps": 2},
            "demand": {"orders": 20, "surge": {"weeks": 0, "share": 0, "peak_multiplier": 1}},
            **extra,
        }
    )


def test_clock_epoch_in_the_future_holds_then_runs_on_the_common_origin() -> None:
    wall = [100.0]
    clock = LiveClock(simpy.Environment(), compression=10.0, wall=lambda: wall[0])
    epoch = time.time() + 5.0
    clock.anchor_epoch(epoch)
    assert clock.sync() == 0.0  # before the epoch: the world holds at simulated 0
    wall[0] += 7.0  # 2 wall seconds past the epoch (within the OS clock's precision)
    assert clock.sync() == pytest.approx(20.0, abs=0.05)


def test_live_erp_token_lasts_an_hour_of_wall_time_and_says_so() -> None:
    sc = small()
    m = build_mock("erp", sc, admin_token="tok")
    core: Any = m.core
    assert core.token_ttl == 3600.0 * sc.live.compression  # simulated seconds = one wall hour

    async def go() -> dict[str, Any]:
        t = httpx.ASGITransport(app=m.app)
        async with httpx.AsyncClient(transport=t, base_url="http://erp") as c:
            form = {"grant_type": "client_credentials", "client_id": "x", "client_secret": "twin-secret"}
            r = await c.post("/oauth/token", data={**form, "scope": "orders"})
            assert r.status_code == 200
            return r.json()

    assert asyncio.run(go())["expires_in"] == 3600  # wall seconds, what clients time their cache by


def test_put_clock_sets_the_epoch_only_before_the_world_moved() -> None:
    m = build_mock("crm", small(), admin_token="tok", clock_epoch=time.time() + 3600)

    async def go() -> tuple[int, int, int, int]:
        t = httpx.ASGITransport(app=m.app)
        async with httpx.AsyncClient(transport=t, base_url="http://crm") as c:
            bad = (await c.put("/_twin/clock", json={"epoch": "soon"}, headers=ADMIN)).status_code
            noauth = (await c.put("/_twin/clock", json={"epoch": 1.0})).status_code
            ok = (await c.put("/_twin/clock", json={"epoch": time.time() - 1.0}, headers=ADMIN)).status_code
            m.clock.sync()  # one wall second past the epoch: the world has moved
            late = (await c.put("/_twin/clock", json={"epoch": time.time()}, headers=ADMIN)).status_code
            return bad, noauth, ok, late

    assert asyncio.run(go()) == (422, 401, 200, 409)
    assert m.core.env.now == pytest.approx(3600.0, rel=0.2)


def test_demand_bodies_are_what_the_crm_accepts() -> None:
    sc = small()
    orders, bodies = live.demand(sc)
    assert len(orders) == len(bodies) > 5
    assert [o.t for o in orders] == sorted(o.t for o in orders)
    m = build_mock("crm", sc, admin_token="tok")

    async def go() -> list[int]:
        t = httpx.ASGITransport(app=m.app)
        async with httpx.AsyncClient(transport=t, base_url="http://crm") as c:
            return [(await c.post(live.CRM_ORDER_PATH, json=b)).status_code for b in bodies[:5]]

    assert asyncio.run(go()) == [201] * 5
    subs = [e for e in m.core.ledger if e.kind == "order.submitted"]
    assert [e.data.get("PoNumber", e.ref) for e in subs][:1] and bodies[0]["PoNumber"] == orders[0].key
    assert bodies[0]["OrderItems"][0]["ProductCode"] == orders[0].lines[0].sku


def test_ledger_tail_quiet_means_everything_past_the_warehouse_and_delivered() -> None:
    twin = live.Twin({s: "" for s in live.SYSTEMS}, "", True, Children(Path("/nonexistent")), "t")
    tail = live.LedgerTail(twin)
    assert tail.quiet()
    tail.kinds["wms"].update({"fulfilment.created": 2, "fulfilment.ready_to_ship": 1})
    assert not tail.quiet()
    tail.kinds["wms"]["fulfilment.ready_to_ship"] += 1
    tail.kinds["carrier"].update({"shipment.created": 2, "shipment.delivered": 1})
    assert not tail.quiet()
    tail.kinds["carrier"]["shipment.delivered"] += 1
    assert tail.quiet()


def test_metrics_lines_are_summed_per_counter() -> None:
    lines = [
        'integration_retries_total{system="erp"} 7',
        'integration_retries_total{system="carrier"} 3',
        'integration_breaker_opens_total{system="erp"} 2',
        'integration_call_attempts_total{system="erp"} 99',
    ]
    got = [m.groups() for ln in lines if (m := live._METRIC.match(ln))]
    assert got == [
        ("integration_retries_total", "7"),
        ("integration_retries_total", "3"),
        ("integration_breaker_opens_total", "2"),
    ]


def test_empty_calls_has_the_call_record_columns() -> None:
    df = live.empty_calls()
    assert df.empty
    assert {"system", "operation", "attempt", "outcome", "latency_s", "correlation_id"} <= set(df.columns)


@pytest.mark.live
def test_children_stop_all_kills_the_whole_process_group(tmp_path: Path) -> None:
    kids = Children(tmp_path)
    # A parent that ignores SIGTERM and has a child of its own: both must be gone afterwards.
    code = (
        "import signal,subprocess,sys,time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']); print(p.pid, flush=True);"
        "time.sleep(60)"
    )
    p = kids.start("stubborn", [sys.executable, "-c", code], {})
    deadline = time.monotonic() + 10
    log = tmp_path / "stubborn.log"
    while time.monotonic() < deadline and not log.read_text().strip():
        time.sleep(0.05)
    grandchild = int(log.read_text().split()[0])
    t0 = time.monotonic()
    kids.stop_all(grace_s=0.5)
    assert time.monotonic() - t0 < 5
    assert p.poll() is not None
    out = subprocess.run(["ps", "-o", "stat=", "-p", str(grandchild)], capture_output=True, text=True).stdout
    # Gone, or a zombie waiting for init (``ps`` adds flags such as N for a niced process: "ZN").
    assert out.strip() == "" or out.strip().startswith("Z"), out


@pytest.mark.live
def test_a_child_dying_while_starting_is_explained_with_its_log(tmp_path: Path) -> None:
    kids = Children(tmp_path)
    with pytest.raises(Exception, match="exited with code"):
        kids.start("broken", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], {})
        kids.wait_healthy("broken", "http://127.0.0.1:9/health", 10)
    assert "boom" in kids.log_tail("broken")
    kids.stop_all()


def test_sut_must_be_an_http_url() -> None:
    from typer.testing import CliRunner

    from sim.cli import app

    res = CliRunner().invoke(app, ["run", "scenarios/demo.yaml", "--sut", "ftp://example"])
    assert res.exit_code == 2 and "--sut must be an http(s) URL" in res.output


@pytest.mark.live
def test_unreachable_sut_is_a_clear_error_and_leaves_nothing_running(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sim.cli import app
    from sim.procs import free_port

    fixture = Path(__file__).parent / "fixtures" / "live_small.yaml"
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    args = ["run", str(fixture), "--sut", url, "--port-base", "0", "--out", str(tmp_path / "r"), "-q"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert f"--sut {url}: nothing answers there" in " ".join(res.output.split())
    assert "Traceback" not in res.output
    ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in ps
