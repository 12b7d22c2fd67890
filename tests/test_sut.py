"""``--sut``: the harness drives an external integration it cannot see inside and reports exactly
the fallout that integration causes (tests/fixtures/faulty_sut.py drops every 20th order)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sim import live
from sim.scenario import load_scenario

FIXTURES = Path(__file__).parent / "fixtures"


def _free_base(n: int = 4) -> int:
    """A port p with p .. p+n-1 all free on loopback (the SUT contract's crm/erp/wms/carrier layout)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        try:
            socks = []
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


@pytest.mark.live
@pytest.mark.slow
def test_harness_reports_exactly_the_orders_the_sut_dropped(tmp_path: Path) -> None:
    sc = load_scenario(FIXTURES / "live_small.yaml").model_copy(update={"faults": []})
    base = _free_base()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        sut_port = s.getsockname()[1]
    env = dict(os.environ)
    for i, name in enumerate(live.SYSTEMS):
        env[f"TWIN_{name.upper()}_URL"] = f"http://127.0.0.1:{base + i}"
    log = (tmp_path / "sut.log").open("wb")
    sut = subprocess.Popen(
        [sys.executable, str(FIXTURES / "faulty_sut.py"), "--port", str(sut_port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{sut_port}"
    try:
        r = live.run_live(sc, out=tmp_path / "run", sut_url=url, port_base=base)
        stats = httpx.get(f"{url}/faulty/stats", timeout=5).json()
    finally:
        os.killpg(sut.pid, signal.SIGTERM)
        try:
            sut.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(sut.pid, signal.SIGKILL)
            sut.wait(5)
        log.close()

    seen, dropped = stats["seen"], stats["dropped"]
    assert len(seen) == r.kpis["orders_submitted"] > 40  # it saw every order the harness submitted
    assert len(dropped) == len(seen) // 20 >= 2
    lost = set(r.orders.loc[r.orders.outcome == "lost", "crm_id"])
    assert r.kpis["lost"] == len(dropped) and lost == set(dropped)
    assert r.kpis["duplicates"] == r.kpis["mismatches"] == 0
    assert r.kpis["completed"] == len(seen) - len(dropped)
    assert r.meta["integration"] == url and r.meta["integration_restarts"] == 0
