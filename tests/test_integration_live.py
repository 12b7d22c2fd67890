"""The reference integration as a real process between the four mocks (real processes, loopback).

Also the helpers the other live integration tests (``test_crash_live``, ``test_naive_vs_resilient_live``)
and ``benchmarks/bench_integration.py`` share: ``LiveTwin`` starts ``twin mocks serve`` and
``twin integration serve`` each as the leader of its own process group (so a SIGKILL or the final
cleanup reaches whatever they spawned), ``OrderFeed`` makes CRM order payloads from the scenario's
master data, and ``pull_ledgers`` reads every mock's ``/_twin/ledger``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TWIN = [sys.executable, "-c", "from sim.cli import main; main()"]
SYSTEMS = ("crm", "erp", "wms", "carrier")
CRM_ORDER_PATH = "/services/data/v60.0/sobjects/Order"
ADMIN_HEADER = "X-Twin-Admin-Token"
_URL_LINE = re.compile(r"^(crm|erp|wms|carrier)\s+(http://\S+)\s*$")

# Small master data: every process generates it at start-up, and start-up is on the clock.
SMALL_WORLD: dict[str, Any] = {
    "name": "integration-live",
    "seed": 7,
    "masterdata": {"customers": 60, "skus": 120, "suppliers": 5, "sales_reps": 4, "credit_hold_share": 0.0},
    "webhooks": {"max_attempts": 14, "backoff": 30, "timeout": 5},
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_scenario(path: Path, **sections: Any) -> Path:
    """``SMALL_WORLD`` with ``sections`` merged one level deep, as YAML."""
    data: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SMALL_WORLD.items()}
    for k, v in sections.items():
        data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class LiveTwin:
    """Mocks + reference integration as child processes on loopback.

    ``delay_scale`` is the mocks' ``--webhook-delay-scale``: wall seconds per scenario second of
    webhook redelivery backoff, so a 30 s scenario backoff is 0.3 s at 0.01.
    """

    def __init__(
        self,
        workdir: Path,
        scenario: Path,
        *,
        profile: str = "resilient",
        delay_scale: float = 0.01,
        separate: bool = False,
        integration_scenario: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """``integration_scenario``: the integration's scenario when its ``integration`` section
        differs from the mocks' (say, policy overrides only the resilient profile should get)."""
        self.workdir = workdir
        self.scenario = scenario
        self.integration_scenario = integration_scenario or scenario
        self.profile = profile
        self.delay_scale = delay_scale
        self.separate = separate
        self.token = "live-" + secrets.token_hex(6)  # also marks our children in /proc/*/environ
        self.env = {**os.environ, "TWIN_ADMIN_TOKEN": self.token, **(extra_env or {})}
        self.int_port = free_port()
        self.int_url = f"http://127.0.0.1:{self.int_port}"
        self.db = workdir / "integration.db"
        self.urls: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        self.restarts = 0

    @property
    def admin(self) -> dict[str, str]:
        return {ADMIN_HEADER: self.token}

    # -- processes -------------------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        self._logs.append(log)
        p = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killpg reaches its children too
        )
        self.procs[name] = p
        return p

    def log_tail(self, name: str, lines: int = 20) -> str:
        p = self.workdir / f"{name}.log"
        return "\n".join(p.read_text(errors="replace").splitlines()[-lines:]) if p.exists() else ""

    def start_mocks(self, timeout_s: float = 30.0) -> dict[str, str]:
        cmd = [*TWIN, "mocks", "serve", str(self.scenario), "--port-base", "0", "--webhook-base", self.int_url]
        cmd += ["--webhook-delay-scale", str(self.delay_scale)]
        if self.separate:
            cmd.append("--separate")
        p = self._spawn("mocks", cmd)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise RuntimeError(f"mocks exited with {p.returncode}:\n{self.log_tail('mocks')}")
            for line in (self.workdir / "mocks.log").read_text(errors="replace").splitlines():
                m = _URL_LINE.match(line.strip())
                if m:
                    self.urls[m.group(1)] = m.group(2).rstrip("/")
            if len(self.urls) == len(SYSTEMS):
                for s in SYSTEMS:
                    self.wait_healthy(f"{self.urls[s]}/_twin/health", deadline - time.monotonic())
                return self.urls
            time.sleep(0.1)
        raise RuntimeError(f"mocks did not report their URLs in {timeout_s} s:\n{self.log_tail('mocks')}")

    def start_integration(self, wait: bool = True, timeout_s: float = 30.0) -> None:
        cmd = [*TWIN, "integration", "serve", "--port", str(self.int_port), "--profile", self.profile]
        cmd += ["--scenario", str(self.integration_scenario), "--db", str(self.db), "--log-level", "warning"]
        for s in SYSTEMS:
            cmd += [f"--{s}-url", self.urls[s]]
        self._spawn("integration", cmd)
        if wait:
            self.wait_healthy(f"{self.int_url}/health", timeout_s)

    def wait_healthy(self, url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + max(timeout_s, 0.5)
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None and p.returncode != -signal.SIGKILL:
                    raise RuntimeError(f"{name} exited with {p.returncode}:\n{self.log_tail(name)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{url} not healthy after {timeout_s:.1f} s")

    def kill_integration(self) -> None:
        """SIGKILL, no goodbye: whatever was in flight is cut off mid-call."""
        p = self.procs["integration"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)

    def restart_integration(self, wait: bool = False) -> None:
        self.restarts += 1
        self.start_integration(wait=wait)

    def close(self) -> None:
        running = [p for p in self.procs.values() if p.poll() is None]
        for p in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 8
        for p in running:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs.values():  # leaders gone or not, no straggler of their groups survives
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)
        for log in self._logs:
            log.close()

    def __enter__(self) -> LiveTwin:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # -- observation -----------------------------------------------------------------------------
    def ledger(self, system: str, page: int = 20_000, since: int = 0) -> list[dict[str, Any]]:
        """Entries after sequence number ``since`` (all by default), paged."""
        out: list[dict[str, Any]] = []
        with httpx.Client(base_url=self.urls[system], headers=self.admin, timeout=15) as c:
            while True:
                body = c.get("/_twin/ledger", params={"since": since, "limit": page}).raise_for_status().json()
                out += body["entries"]
                if len(body["entries"]) < page:
                    return out
                since = body["next"]

    def ledgers(self) -> dict[str, list[dict[str, Any]]]:
        return {s: self.ledger(s) for s in SYSTEMS}

    def health(self) -> dict[str, Any] | None:
        try:
            return httpx.get(f"{self.int_url}/health", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return None

    def webhook_stats(self, system: str) -> dict[str, Any]:
        r = httpx.get(f"{self.urls[system]}/_twin/webhooks", params={"limit": 1}, headers=self.admin, timeout=5)
        return r.json()["stats"] or {}

    def webhook_attempts(self, system: str, limit: int = 10_000) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.urls[system]}/_twin/webhooks", params={"limit": limit}, headers=self.admin, timeout=10)
        return r.json()["attempts"]

    def exceptions(self) -> list[dict[str, Any]]:
        """The integration's DLQ + business exceptions as ``crm_id, category, reason`` rows (the
        input ``sim.reconcile`` takes to tell "gave up and said so" from "lost")."""
        rows: list[dict[str, Any]] = []
        with httpx.Client(base_url=self.int_url, headers=self.admin, timeout=10) as c:
            for path, params in (("/admin/dlq", {"include_replayed": "true"}), ("/admin/exceptions", {})):
                for item in c.get(path, params=params).raise_for_status().json()["items"]:
                    payload = item.get("payload") or {}
                    crm_id = payload.get("crm_id") if isinstance(payload, dict) else None
                    category = item.get("category") or payload.get("category") or "business"
                    rows.append({"crm_id": crm_id, "category": category, "reason": item.get("reason")})
        return rows

    def fallout(self) -> list[dict[str, Any]]:
        """Exceptions other than the legitimate business outcome credit hold (the world's
        customers can run over their limits)."""
        return [e for e in self.exceptions() if (e["category"], e["reason"]) != ("business", "credit_hold")]

    def drain(self, submitted: set[str], timeout_s: float) -> float:
        """Wait until every submitted order is in the ERP ledger, the CRM mock has no webhook left
        to deliver and the integration nothing in flight; returns the wall seconds it took. (The
        warehouse and the carrier keep working on the live clock, so they are never all idle.)"""
        t0 = time.monotonic()
        # Follow the ERP ledger from where the last poll stopped: re-reading all of it four times a
        # second cost the ERP mock more CPU than its orders once a few thousand were in (the
        # benchmark's burst), and slowed down what this waits for.
        erp: set[str] = set()
        since = 0
        while time.monotonic() - t0 < timeout_s:
            new = self.ledger("erp", since=since)
            since = new[-1]["seq"] if new else since
            erp.update(e["ref"] for e in new if e["kind"] == "sales_order.created")
            if submitted <= erp and self.webhook_stats("crm").get("pending", 0) == 0:
                h = self.health()
                if h is not None and h["in_flight"] == 0:
                    break
            time.sleep(0.25)
        return time.monotonic() - t0

    def quiesce(self, timeout_s: float = 5.0) -> bool:
        """Wait for a moment when the integration has nothing in flight; False if none came."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            h = self.health()
            if h is not None and h["in_flight"] == 0:
                return True
            time.sleep(0.1)
        return False


# --------------------------------------------------------------------------------------- orders


class OrderFeed:
    """CRM order payloads in the scenario's mix, from the same seed as the mocks' master data."""

    def __init__(self, scenario_path: Path, stream: str = "live") -> None:
        from sim.demand import DemandModel
        from sim.masterdata import generate
        from sim.rng import Streams
        from sim.scenario import load_scenario

        sc = load_scenario(str(scenario_path))
        md = generate(sc.masterdata, Streams(sc.seed))
        self._next_round = lambda r: DemandModel(sc, md, Streams(sc.seed).child(f"{stream}.{r}")).orders()
        self._round = 0
        self._orders = self._next_round(0)
        self.n = 0

    def payload(self) -> dict[str, Any]:
        try:
            o = next(self._orders)
        except StopIteration:  # one horizon's demand used up: draw another
            self._round += 1
            self._orders = self._next_round(self._round)
            o = next(self._orders)
        self.n += 1
        return {
            "AccountId": o.crm_account_id,
            "EffectiveDate": "2026-07-06",
            "RequestedDeliveryDate__c": "2026-07-09",
            "PoNumber": f"LIVE-{self.n:06d}",
            "OrderItems": [
                {"ProductCode": ln.sku, "Quantity": ln.quantity, "UnitOfMeasure__c": ln.uom, "UnitPrice": ln.unit_price}
                for ln in o.lines
            ],
        }


async def stream_orders(
    crm_url: str,
    feed: OrderFeed,
    n: int,
    rate: float,
    at: dict[float, Callable[[], None]] | None = None,
    concurrency: int = 32,
) -> list[str]:
    """POST ``n`` orders to the CRM at ``rate`` per second (open model), calling ``at[t]()`` once
    when ``t`` wall seconds have passed; returns the ids the CRM acknowledged (201)."""
    todo = sorted((at or {}).items())
    ids: list[str] = []
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=crm_url, timeout=10) as c:

        async def one(body: dict[str, Any]) -> None:
            async with sem:
                r = await c.post(CRM_ORDER_PATH, json=body)
            if r.status_code == 201:
                ids.append(r.json()["id"])

        t0 = time.monotonic()
        tasks = []
        for i in range(n):
            due = t0 + i / rate
            while todo and todo[0][0] <= due - t0:
                when, fn = todo.pop(0)
                await asyncio.sleep(max(0.0, t0 + when - time.monotonic()))
                fn()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one(feed.payload())))
        await asyncio.gather(*tasks)
        for when, fn in todo:
            await asyncio.sleep(max(0.0, t0 + when - time.monotonic()))
            fn()
    return ids


def creates(ledgers: dict[str, list[dict[str, Any]]]) -> dict[str, Counter[str]]:
    """Per system, how many times each CRM order id was created there."""
    kinds = {"erp": "sales_order.created", "wms": "fulfilment.created", "carrier": "shipment.created"}
    return {s: Counter(e["ref"] for e in ledgers[s] if e["kind"] == k) for s, k in kinds.items()}


@contextlib.contextmanager
def live_twin(tmp: Path, scenario: Path, **kw: Any) -> Iterator[LiveTwin]:
    twin = LiveTwin(tmp, scenario, **kw)
    try:
        twin.start_mocks()
        twin.start_integration()
        yield twin
    finally:
        twin.close()


# --------------------------------------------------------------------------------------- tests


@pytest.mark.live
@pytest.mark.timeout(90)
def test_orders_flow_through_real_processes_and_wait_out_an_integration_outage(tmp_path: Path) -> None:
    """Orders submitted while the integration is not even running are delivered once it is up:
    the CRM mock's WebhookDeliverer retries on its (compressed) backoff schedule."""
    sc = write_scenario(tmp_path / "sc.yaml")
    twin = LiveTwin(tmp_path, sc)
    try:
        twin.start_mocks()
        feed = OrderFeed(sc)
        early = asyncio.run(stream_orders(twin.urls["crm"], feed, 10, rate=50))
        time.sleep(0.5)  # every first delivery attempt failed: nobody listens yet
        twin.start_integration()
        late = asyncio.run(stream_orders(twin.urls["crm"], feed, 10, rate=50))
        assert len(early) == len(late) == 10
        twin.drain(set(early + late), timeout_s=40)
        ledgers = twin.ledgers()
        c = creates(ledgers)
        assert set(c["erp"]) == set(early + late)
        assert max(c["erp"].values()) == 1
        attempts = twin.webhook_attempts("crm")
        retried = {a["event_id"] for a in attempts if a["outcome"] == "error"}
        delivered = {a["event_id"] for a in attempts if a["outcome"] == "delivered"}
        assert len(retried) >= 10 and retried <= delivered  # refused at first, delivered later
        assert twin.fallout() == []
    finally:
        twin.close()
    assert all(p.poll() is not None for p in twin.procs.values())
