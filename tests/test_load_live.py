"""``twin load`` end to end on loopback: the real twin (mocks + reference integration) under a few
seconds of tiny load, Locust's counts against the CRM ledger, SLO verdicts, and no orphans.

Falls back to ``loadtest.standin`` (the real CRM and ERP cores without the live twin) when this
installation cannot start the twin, so the harness itself stays tested.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "baseline.yaml"
TWIN = [sys.executable, "-c", "from sim.cli import main; main()"]


def _twin_startable() -> bool:
    from sim.loadrun import twin_available

    return not twin_available() and SCENARIO.exists()


def _free_port() -> int:
    from sim.loadrun import free_port

    return free_port()


def _processes_with(marker: str) -> list[int]:
    """Pids whose environment mentions ``marker`` (a token only this test's children carry)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if marker.encode() in (d / "environ").read_bytes():
                found.append(int(d.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def standin() -> Any:
    """CRM + ERP stand-in, only when the real twin cannot be started."""
    if _twin_startable():
        yield None
        return
    crm, erp, token = _free_port(), _free_port(), "standin-" + secrets.token_hex(4)
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtest.standin",
            "--crm-port",
            str(crm),
            "--erp-port",
            str(erp),
            "--admin-token",
            token,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{crm}/_twin/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield ["--crm-url", f"http://127.0.0.1:{crm}", "--erp-url", f"http://127.0.0.1:{erp}", "--admin-token", token]
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(10)


def _scenario(tmp: Path) -> Path:
    if SCENARIO.exists():
        return SCENARIO
    s = tmp / "load.yaml"
    s.write_text("name: load-live\n")
    return s


@pytest.fixture(scope="module")
def breached_run(tmp_path_factory: pytest.TempPathFactory, standin: list[str] | None) -> dict[str, Any]:
    """One short run with two impossible limits: a 0.1 ms median and no failed request at all,
    while half the status polls fail (an injected CRM error window on ``get_order`` only, so the
    order submits the ledger check counts are untouched)."""
    out = tmp_path_factory.mktemp("load") / "run"
    token = "loadtest-" + secrets.token_hex(6)
    cmd = [*TWIN, "load", str(_scenario(out.parent)), "--duration", "6s", "--peak-rps", "2", "--workers", "1"]
    cmd += ["--out", str(out), "--drain", "2s", "--p50", "0.0001", "--set", "slo.failure_ratio=0"]
    if standin is None:
        fault = "{name: crm-errors, system: crm, kind: error, endpoint: get_order, probability: 0.5, start: 0, duration: 13w}"
        cmd += ["--set", f"faults=[{fault}]", "--admin-token", token]
    else:
        cmd += standin
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=150)
    return {
        "rc": p.returncode,
        "stdout": p.stdout,
        "stderr": p.stderr,
        "summary": json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None,
        "out": out,
        "token": token,
        "standin": standin is not None,
    }


def test_locust_submits_match_the_crm_ledger(breached_run: dict[str, Any]) -> None:
    s = breached_run["summary"]
    assert s is not None, breached_run["stderr"]
    submits = next(r for r in s["requests"] if r["name"] == "crm:submit_order")
    assert submits["requests"] > 0
    assert submits["failures"] == 0
    # every order Locust submitted is in the CRM ledger exactly once, and nothing else of this run is
    assert s["orders"]["submitted"] == submits["requests"]
    assert s["orders"]["acknowledged"] == submits["requests"]
    assert s["orders"]["missing_in_crm"] == 0
    assert (breached_run["out"] / "locust.html").exists()
    assert (breached_run["out"] / "locust_stats.csv").exists()
    if not breached_run["standin"]:
        assert s["orders"]["in_erp"] > 0  # the reference integration carried orders into ERP
        # The same run-folder files as any run: analysts load a load test like a live run.
        from sim.runfolder import load_run

        run = load_run(breached_run["out"])
        assert run.meta["mode"] == "load" and len(run.orders) == s["orders"]["submitted"]
        assert run.kpis["orders_submitted"] == s["orders"]["submitted"]
        assert (run.orders["erp_orders"] >= 1).sum() == s["orders"]["in_erp"]
        # Model time: ERP acceptance in wall seconds, not compression x wall seconds.
        assert 0 < run.kpis["latency_s"]["erp_accepted"]["p50"] < 5.0


def test_impossible_slo_exits_1_naming_the_limit(breached_run: dict[str, Any]) -> None:
    assert breached_run["rc"] == 1, breached_run["stdout"] + breached_run["stderr"]
    out = breached_run["stdout"]
    assert "SLO breached: request latency p50" in out
    if not breached_run["standin"]:
        assert "SLO breached: slo.failure_ratio" in out
        polls = next(r for r in breached_run["summary"]["requests"] if r["name"] == "crm:get_order")
        assert polls["failures"] > 0  # content/status checks marked the injected errors


def test_no_children_survive_a_finished_run(breached_run: dict[str, Any]) -> None:
    m = re.search(r"twin up \(crm (http://\S+),", breached_run["stdout"])
    if m:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{m.group(1)}/_twin/health", timeout=1)
    assert _processes_with(str(breached_run["out"])) == []  # Locust master and workers
    if not breached_run["standin"]:
        assert _processes_with(breached_run["token"]) == []  # mocks and integration


@pytest.mark.skipif(not _twin_startable(), reason="needs `twin mocks serve` and `twin integration serve`")
def test_ctrl_c_stops_every_child(tmp_path: Path) -> None:
    token = "loadtest-int-" + secrets.token_hex(6)
    cmd = [*TWIN, "load", str(SCENARIO), "--duration", "60s", "--peak-rps", "1", "--workers", "1"]
    cmd += ["--out", str(tmp_path / "run"), "--admin-token", token]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert p.stdout is not None
        crm = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and crm is None:
            line = p.stdout.readline()
            if not line:
                break
            m = re.search(r"twin up \(crm (http://\S+),", line)
            crm = m.group(1) if m else None
        assert crm, "the twin never came up"
        time.sleep(3)  # Locust master and worker are running now
        assert len(_processes_with(token)) >= 2  # mocks and integration
        assert len(_processes_with(str(tmp_path / "run"))) >= 2  # Locust master and worker
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 130
    finally:
        if p.poll() is None:
            p.kill()
    time.sleep(0.5)
    assert _processes_with(token) == []
    assert _processes_with(str(tmp_path / "run")) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{crm}/_twin/health", timeout=1)
