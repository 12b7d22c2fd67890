"""Live mode: the four mocks and the integration as real processes on loopback, driven over HTTP.

``run_live(scenario)`` starts one ``python -m mocks.serve --only <system>`` per mock and, unless a
``sut_url`` is given, the reference integration (``twin integration serve``, a fresh SQLite db in the
run folder); the mocks' webhooks go to ``<integration>/webhooks/<source>``. Then it submits the demand
to the CRM at its compressed arrival times, applies ``kill_integration`` windows (SIGKILL, restart
after the duration), drains, pulls every ledger over ``/_twin/ledger`` and reconciles exactly as
virtual mode does: the same ``RunResult`` and run folder.

One clock for all: each mock runs its own SimPy env on a ``LiveClock``. They are started with a
``--clock-epoch`` an hour away, so they hold at simulated 0 however long the processes take to start;
once all answer, the harness ``PUT``s one common epoch (a moment just ahead) to every mock's
``/_twin/clock``. From then on simulated time = (wall - epoch) x compression in every process, and the
harness uses the same formula to time submissions and kills. Fault windows are in simulated seconds on
those clocks, so all mocks agree on when a window opens.

Timing (by design): API latency, the integration's backoffs and timeouts are wall time, so at
compression C a 50 ms call spans C x 0.05 simulated seconds of ledger time. Milestone latencies are
therefore reported in model time (``sim.modeltime``): HTTP segments in wall seconds, world segments
on the compressed clock, comparable with a virtual run. The reference integration's call log
(``--calls-log``) becomes calls.parquet, its times moved onto the simulated clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from sim import scratch
from sim.kpis import check_slo, compute_kpis
from sim.modeltime import model_latencies
from sim.procs import TWIN, Children, ProcError, free_port, sigterm_as_interrupt
from sim.reconcile import demand_log, entries_frame, exceptions_frame, reconcile
from sim.runfolder import calls_frame, events_frame, make_meta, now_iso
from sim.scenario import FaultKind, Scenario, dump_scenario
from sim.virtual import Progress, RunResult, resolve

SYSTEMS = ("crm", "erp", "wms", "carrier")
ADMIN_HEADER = "X-Twin-Admin-Token"
CLIENT_ID = "twin-harness"
CRM_ORDER_PATH = "/services/data/v60.0/sobjects/Order"
HOLD_S = 3600.0  # mocks start holding at simulated 0 until the harness sets the common epoch
EPOCH_LEAD_S = 0.5  # wall seconds between setting the epoch and simulated 0
SUBMIT_CONCURRENCY = 32
SUBMIT_ATTEMPTS = 6
POLL_S = 0.5  # drain: wall seconds between quiescence checks
QUIET_POLLS = 3  # consecutive quiet, unchanged polls that end the drain
CALLS_LOG = "calls.jsonl"  # the reference integration's call records, read back as calls.parquet
SUT_WAIT_S = 10.0  # an external SUT should already be running: do not wait long for it


class LiveError(RuntimeError):
    """The live twin could not be started or driven (message names the part and why)."""


@dataclass
class Twin:
    """Where the running parts listen."""

    mocks: dict[str, str]
    integration: str
    reference: bool  # our integration (admin API, /metrics, kill/restart) or an external SUT
    children: Children
    token: str
    restarts: int = 0


@dataclass
class DriveStats:
    submitted: int = 0
    failed: int = 0
    retries: int = 0
    max_submit_lag_s: float = 0.0  # wall seconds a submission ran behind its compressed arrival
    kills: int = 0
    drained_quiet: bool = False
    drain_polls: int = 0
    errors: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------- start


def _env(token: str, secret: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"TWIN_ADMIN_TOKEN": token, "TWIN_WEBHOOK_SECRET": secret, "PYTHONUNBUFFERED": "1"})
    return env


def mock_ports(port_base: int | None) -> dict[str, int]:
    """crm on ``port_base``, erp +1, wms +2, carrier +3 (the SUT contract's layout); None or 0: any free."""
    if not port_base:
        return {s: free_port() for s in SYSTEMS}
    return {s: port_base + i for i, s in enumerate(SYSTEMS)}


def start_twin(
    scenario: Scenario,
    scenario_file: Path,
    work: Path,
    *,
    sut_url: str | None,
    startup_timeout_s: float,
    port_base: int | None = None,
) -> Twin:
    """Start the mocks (held at simulated 0) and the reference integration; wait until all answer.
    With ``sut_url`` the integration is the user's, already running (it found the mocks through
    ``TWIN_*_URL``: pass the ``port_base`` it was given)."""
    token = os.environ.get("TWIN_ADMIN_TOKEN", "twin-admin")
    secret = os.environ.get("TWIN_WEBHOOK_SECRET", "twin-webhook-secret")
    env = _env(token, secret)
    children = Children(work / "logs")
    ports = mock_ports(port_base)
    mocks = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
    integration = sut_url.rstrip("/") if sut_url else f"http://127.0.0.1:{free_port()}"
    twin = Twin(mocks, integration, sut_url is None, children, token)
    scale = 1.0 / scenario.live.compression
    hold = time.time() + HOLD_S
    try:
        for s in SYSTEMS:
            cmd = ["-m", "mocks.serve", str(scenario_file), "--only", s, "--exact-port", str(ports[s])]
            cmd += ["--webhook-base", integration, "--webhook-delay-scale", repr(scale), "--clock-epoch", repr(hold)]
            children.start(s, [TWIN[0], *cmd], env)
        if twin.reference:
            port = integration.rsplit(":", 1)[1]
            cmd = [*TWIN, "integration", "serve", "--host", "127.0.0.1", "--port", port]
            cmd += ["--scenario", str(scenario_file), "--db", str(work / "integration.db"), "--log-level", "warning"]
            cmd += ["--calls-log", str(work / CALLS_LOG)]
            for s in SYSTEMS:
                cmd += [f"--{s}-url", mocks[s]]
            children.start("integration", cmd, env)
        for s in SYSTEMS:
            children.wait_healthy(s, f"{mocks[s]}/_twin/health", startup_timeout_s)
        if twin.reference:
            children.wait_healthy("integration", f"{integration}/health", startup_timeout_s)
        else:
            _reachable(integration, min(startup_timeout_s, SUT_WAIT_S))
    except BaseException:
        children.stop_all()
        raise
    return twin


def _reachable(url: str, timeout_s: float) -> None:
    """Any HTTP answer from the SUT will do (the contract prescribes no health route)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url + "/", timeout=2.0)
            return
        except httpx.HTTPError as e:
            if time.monotonic() >= deadline:
                raise LiveError(f"--sut {url}: nothing answers there ({type(e).__name__}); start it first") from None
        time.sleep(0.2)


def set_epoch(twin: Twin, epoch: float) -> None:
    with httpx.Client(headers={ADMIN_HEADER: twin.token}, timeout=5.0) as c:
        for s, url in twin.mocks.items():
            r = c.put(f"{url}/_twin/clock", json={"epoch": epoch})
            if r.status_code != 200:
                raise LiveError(f"{s} mock refused the common clock epoch: HTTP {r.status_code} {r.text[:200]}")


# --------------------------------------------------------------------------------------- drive


def order_body(order: Any, md: Any, calendar: Any) -> dict[str, Any]:
    """A demand order as a sales rep submits it to the CRM (what ``CrmCore.submit`` builds)."""
    body: dict[str, Any] = {
        "AccountId": order.crm_account_id,
        "EffectiveDate": calendar.iso_date(order.t),
        "RequestedDeliveryDate__c": calendar.iso_date(order.requested_t),
        "PoNumber": order.key,
        "OrderItems": [
            {"ProductCode": ln.sku, "Quantity": ln.quantity, "UnitOfMeasure__c": ln.uom, "UnitPrice": ln.unit_price}
            for ln in order.lines
        ],
    }
    cust = md.by_account_id.get(order.crm_account_id)
    if cust is not None and cust.ship_to:
        a = cust.ship_to[min(max(order.ship_to_index, 0), len(cust.ship_to) - 1)]
        body["ShippingAddress"] = {
            "street": a.line1,
            "city": a.city,
            "state": a.region,
            "postalCode": a.postal_code,
            "country": a.country,
        }
        body["ShipToName__c"] = a.name
    return body


def demand(scenario: Scenario) -> tuple[list[Any], list[dict[str, Any]]]:
    """The scenario's demand orders (the same seed as the mocks' master data) and their CRM bodies."""
    from sim.calendar import Calendar
    from sim.demand import DemandModel
    from sim.masterdata import generate
    from sim.rng import Streams

    streams = Streams(scenario.seed)
    md = generate(scenario.masterdata, streams)
    orders = list(DemandModel(scenario, md, streams).orders())
    cal = Calendar.from_scenario(scenario)
    return orders, [order_body(o, md, cal) for o in orders]


async def _sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _submit(c: httpx.AsyncClient, url: str, key: str, body: dict[str, Any], stats: DriveStats) -> None:
    headers = {"Idempotency-Key": f"demand:{key}", "X-Client-Id": CLIENT_ID, "X-Correlation-Id": key}
    last = ""
    for attempt in range(SUBMIT_ATTEMPTS):
        if attempt:
            stats.retries += 1
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        try:
            r = await c.post(url + CRM_ORDER_PATH, json=body, headers=headers)
        except httpx.HTTPError as e:
            last = type(e).__name__
            continue
        if r.status_code < 300:
            stats.submitted += 1
            return
        last = f"HTTP {r.status_code} {r.text[:120]}"
        if r.status_code < 500 and r.status_code != 429:
            break  # the CRM rejected the order itself: retrying will not help
    stats.failed += 1
    if len(stats.errors) < 20:
        stats.errors.append(f"order {key}: {last}")


async def _kill_window(twin: Twin, w: Any, epoch: float, c: float, stats: DriveStats, timeout_s: float) -> None:
    await _sleep_until(epoch + float(w.start) / c)
    twin.children.kill("integration")
    stats.kills += 1
    await _sleep_until(epoch + float(w.end) / c)
    twin.children.restart("integration")
    twin.restarts += 1
    await asyncio.to_thread(twin.children.wait_healthy, "integration", f"{twin.integration}/health", timeout_s)


class LedgerTail:
    """Every mock's ledger, pulled incrementally (``/_twin/ledger?since=``, paged)."""

    def __init__(self, twin: Twin, page: int = 5000) -> None:
        self.twin = twin
        self.page = page
        self.entries: dict[str, list[dict[str, Any]]] = {s: [] for s in SYSTEMS}
        self.kinds: dict[str, Counter[str]] = {s: Counter() for s in SYSTEMS}
        self._since = dict.fromkeys(SYSTEMS, 0)

    async def pull(self, c: httpx.AsyncClient) -> int:
        """Fetch what is new; returns how many entries arrived."""
        new = 0
        for s, url in self.twin.mocks.items():
            while True:
                r = await c.get(f"{url}/_twin/ledger", params={"since": self._since[s], "limit": self.page})
                if r.status_code != 200:
                    raise LiveError(f"{s} mock: GET /_twin/ledger answered HTTP {r.status_code}")
                got = r.json().get("entries", [])
                for e in got:
                    self.kinds[s][e["kind"]] += 1
                self.entries[s].extend(got)
                new += len(got)
                if got:
                    self._since[s] = int(got[-1]["seq"])
                if len(got) < self.page:
                    break
        return new

    def quiet(self) -> bool:
        """Every fulfilment past the warehouse and every parcel delivered (as ``sim.virtual``)."""
        wms, car = self.kinds["wms"], self.kinds["carrier"]
        return (
            wms["fulfilment.created"] <= wms["fulfilment.ready_to_ship"]
            and car["shipment.created"] <= car["shipment.delivered"]
        )

    def all(self) -> list[dict[str, Any]]:
        return [e for s in SYSTEMS for e in self.entries[s]]


async def _idle(c: httpx.AsyncClient, twin: Twin) -> bool:
    """No webhook pending at any mock and (reference integration) no workflow in flight."""
    for url in twin.mocks.values():
        r = await c.get(f"{url}/_twin/webhooks", params={"limit": 1})
        stats = r.json().get("stats") if r.status_code == 200 else None
        if stats and stats.get("pending"):
            return False
    try:
        r = await c.get(f"{twin.integration}/health")
    except httpx.HTTPError:
        return not twin.reference  # ours is restarting; a black-box SUT: the ledgers are all we see
    if r.status_code != 200:
        return not twin.reference
    try:
        return not r.json().get("in_flight")
    except (ValueError, AttributeError):
        return True


async def drive(
    twin: Twin,
    scenario: Scenario,
    bodies: list[tuple[float, str, dict[str, Any]]],
    epoch: float,
    tail: LedgerTail,
    tick: Callable[[str, float, int], None],
    startup_timeout_s: float,
) -> DriveStats:
    """Submit the demand on the compressed clock, run the kill windows, then drain."""
    c = scenario.live.compression
    horizon, drain_end = float(scenario.horizon), float(scenario.horizon) + float(scenario.drain_limit)
    stats = DriveStats()
    sim_now: Callable[[], float] = lambda: max(0.0, (time.time() - epoch) * c)  # noqa: E731
    limits = httpx.Limits(max_connections=SUBMIT_CONCURRENCY * 2)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
        admin = httpx.AsyncClient(timeout=10.0, headers={ADMIN_HEADER: twin.token})
        side: list[asyncio.Task[None]] = []
        if twin.reference:
            for w in scenario.faults:
                if w.kind == FaultKind.kill_integration:
                    side.append(asyncio.create_task(_kill_window(twin, w, epoch, c, stats, startup_timeout_s)))
        try:
            slots = asyncio.Semaphore(SUBMIT_CONCURRENCY)
            pending: set[asyncio.Task[None]] = set()
            crm = twin.mocks["crm"]
            next_tick = time.time()

            async def one(key: str, body: dict[str, Any]) -> None:
                try:
                    await _submit(client, crm, key, body, stats)
                finally:
                    slots.release()

            for t, key, body in bodies:
                due = epoch + t / c
                await _sleep_until(due)
                await slots.acquire()
                stats.max_submit_lag_s = max(stats.max_submit_lag_s, time.time() - due)
                task = asyncio.create_task(one(key, body))
                pending.add(task)
                task.add_done_callback(pending.discard)
                if time.time() >= next_tick:
                    tick("run", sim_now(), stats.submitted)
                    next_tick = time.time() + 0.25
            if pending:
                await asyncio.gather(*pending)
            while sim_now() < horizon:  # the world runs to the horizon, as in virtual mode
                tick("run", sim_now(), stats.submitted)
                await asyncio.sleep(min(0.25, (horizon - sim_now()) / c + 0.01))
            # Drain: no new orders; stop when nothing is pending and the ledgers stand still.
            quiet_polls = 0
            while sim_now() < drain_end:
                new = await tail.pull(admin)
                stats.drain_polls += 1
                busy = any(not t.done() for t in side)
                if new == 0 and not busy and tail.quiet() and await _idle(admin, twin):
                    quiet_polls += 1
                    if quiet_polls >= QUIET_POLLS:
                        stats.drained_quiet = True
                        break
                else:
                    quiet_polls = 0
                tick("drain", sim_now(), stats.submitted)
                await asyncio.sleep(POLL_S)
            for t in side:
                if t.done() and t.exception() is not None:
                    raise LiveError(f"kill_integration window failed: {t.exception()}")
        finally:
            for t in side:
                t.cancel()
            await asyncio.gather(*side, return_exceptions=True)
            await admin.aclose()
    return stats


# --------------------------------------------------------------------------------------- collect


def _clocks(twin: Twin) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with httpx.Client(headers={ADMIN_HEADER: twin.token}, timeout=5.0) as c:
        for s, url in twin.mocks.items():
            r = c.get(f"{url}/_twin/clock")
            out[s] = r.json() if r.status_code == 200 else {}
    return out


def _exceptions(twin: Twin) -> pd.DataFrame:
    """The integration's DLQ and business exceptions as ``crm_id, category, reason, t`` (reference only;
    an external SUT may expose the same admin API, else it has none)."""
    from reference_integration.workflows import crm_id_of

    rows: list[dict[str, Any]] = []
    with (
        contextlib.suppress(httpx.HTTPError, ValueError),
        httpx.Client(base_url=twin.integration, headers={ADMIN_HEADER: twin.token}, timeout=5.0) as c,
    ):
        for path, params in (("/admin/dlq", {"include_replayed": "true"}), ("/admin/exceptions", {})):
            r = c.get(path, params=params)
            if r.status_code != 200:
                continue
            for item in r.json().get("items", []):
                p = item.get("payload")
                if isinstance(p, str):
                    with contextlib.suppress(ValueError):
                        p = json.loads(p)
                p = p if isinstance(p, dict) else {}
                crm_id = p.get("crm_id")
                if crm_id is None and isinstance(p.get("event"), dict):
                    crm_id = crm_id_of(p["event"])
                category = "business" if path == "/admin/exceptions" else item.get("category")
                rows.append(
                    {"crm_id": crm_id, "category": category, "reason": item.get("reason"), "t": item.get("created_at")}
                )
    return exceptions_frame([r for r in rows if r["crm_id"] is not None])


_METRIC = re.compile(r"^(integration_retries_total|integration_breaker_opens_total)\{[^}]*\}\s+([0-9.eE+-]+)$")


def _metrics(twin: Twin) -> dict[str, int]:
    """Retries and breaker opens from the integration's /metrics (since its last restart)."""
    out = {"retries": 0, "breaker_opens": 0}
    if not twin.reference:
        return out
    try:
        text = httpx.get(f"{twin.integration}/metrics", timeout=5.0).text
    except httpx.HTTPError:
        return out
    for line in text.splitlines():
        m = _METRIC.match(line.strip())
        if m:
            key = "retries" if m.group(1) == "integration_retries_total" else "breaker_opens"
            out[key] += int(float(m.group(2)))
    return out


def live_calls(path: Path, epoch: float, compression: float) -> pd.DataFrame:
    """The reference integration's call log as calls.parquet: ``t_start``/``t_end`` moved from Unix
    seconds onto the run's simulated clock (the mocks' common epoch); ``latency_s`` stays wall seconds,
    the call's real duration."""
    from reference_integration.calllog import read_call_log

    rows = list(read_call_log(path))
    if not rows:
        return empty_calls()
    df = calls_frame(rows)
    for col in ("t_start", "t_end"):
        df[col] = (df[col].astype(float) - epoch) * compression
    return df.sort_values(["t_start", "t_end"], kind="stable").reset_index(drop=True)


def empty_calls() -> pd.DataFrame:
    """calls.parquet of a run whose integration does not expose its call records: right columns, no rows."""
    from reference_integration.metrics import CallRecord

    return pd.DataFrame({f.name: pd.Series(dtype=object) for f in fields(CallRecord)})


# --------------------------------------------------------------------------------------- run


def _warn(warn: Callable[[str], None] | None, message: str) -> None:
    if warn is not None:
        warn(message)
    else:
        print(f"warning: {message}", file=sys.stderr)


def run_live(
    scenario: Scenario,
    profile: str | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    *,
    sut_url: str | None = None,
    port_base: int | None = None,
    report: bool = True,
    startup_timeout_s: float = 60.0,
    warn: Callable[[str], None] | None = None,
) -> RunResult:
    """Run one scenario live; write the run folder to ``out`` when given (logs and the integration's db
    go to ``out/live/``; without ``out`` to a temporary folder removed afterwards)."""
    scenario = resolve(scenario, profile, seed)
    wall_start = now_iso()
    t0 = time.perf_counter()
    temp = out is None
    if temp:
        scratch.sweep_stale()  # what killed runs left behind
    work = scratch.make("live") if temp else Path(out) / "live"  # type: ignore[arg-type]
    work.mkdir(parents=True, exist_ok=True)
    for stale in [*work.glob("integration.db*"), work / CALLS_LOG]:  # a re-used folder: start empty
        stale.unlink(missing_ok=True)
    scenario_file = work / "scenario.yaml"
    scenario_file.write_text(dump_scenario(scenario), encoding="utf-8")
    orders, bodies = demand(scenario)
    timed = [(float(o.t), o.key, b) for o, b in zip(orders, bodies, strict=True)]
    c = scenario.live.compression

    def tick(phase: str, sim_s: float, n: int) -> None:
        if progress is not None:
            until = float(scenario.horizon) + (float(scenario.drain_limit) if phase == "drain" else 0.0)
            progress(Progress(phase, sim_s, until, n, time.perf_counter() - t0))

    try:
        with sigterm_as_interrupt():
            twin = start_twin(
                scenario, scenario_file, work, sut_url=sut_url, startup_timeout_s=startup_timeout_s, port_base=port_base
            )
            try:
                epoch = time.time() + EPOCH_LEAD_S
                set_epoch(twin, epoch)
                tail = LedgerTail(twin)
                stats = asyncio.run(drive(twin, scenario, timed, epoch, tail, tick, startup_timeout_s))
                if twin.reference and not twin.children.alive("integration"):
                    # Not a kill window (those restart it): the integration crashed on its own.
                    code = twin.children.procs["integration"].returncode
                    stats.errors.append(f"the integration exited (code {code}) during the run")
                    _warn(warn, f"the integration exited with code {code} during the run; see {work / 'logs'}")
                clocks = _clocks(twin)
                sim_s = max(float(v.get("now") or 0.0) for v in clocks.values())
                tick("reconcile", sim_s, stats.submitted)

                async def final() -> None:
                    async with httpx.AsyncClient(timeout=30.0, headers={ADMIN_HEADER: twin.token}) as a:
                        await tail.pull(a)

                asyncio.run(final())
                exc = _exceptions(twin)
                counters: dict[str, Any] = _metrics(twin)
            finally:
                twin.children.stop_all()
    except ProcError as e:
        raise LiveError(str(e)) from None
    finally:
        if temp:
            shutil.rmtree(work, ignore_errors=True)

    entries = entries_frame(tail.all())
    events = events_frame(entries)
    recon = reconcile(entries, demand_log(entries), exc, end=sim_s)
    recon = pd.concat([recon, model_latencies(recon, entries, c)], axis=1)
    calls = live_calls(work / CALLS_LOG, epoch, c) if twin.reference else empty_calls()
    if len(calls):
        counters.pop("retries", None)  # the log has every attempt; /metrics only since the last restart
    wall_s = time.perf_counter() - t0
    lag = max(float(v.get("max_lag_seen_s") or 0.0) for v in clocks.values())
    exceeded = any(bool(v.get("lag_exceeded")) for v in clocks.values()) or lag > scenario.live.max_clock_lag_s
    counters.update(
        {
            "harness_submitted": stats.submitted,
            "harness_submit_failures": stats.failed,
            "harness_submit_retries": stats.retries,
            "integration_restarts": twin.restarts,
            "dlq_size": int((exc["category"] != "business").sum()) if len(exc) else 0,
        }
    )
    kpis = compute_kpis(recon, calls=calls, faults=scenario.faults, sim_s=sim_s, wall_s=wall_s, counters=counters)
    kpis["max_clock_lag_s"] = lag
    kpis["clock_lag_exceeded"] = exceeded
    kpis["max_submit_lag_s"] = stats.max_submit_lag_s
    breaches = check_slo(kpis, scenario.slo)
    if exceeded:
        _warn(
            warn,
            f"live clock lag reached {lag:.2f} s (limit max_clock_lag_s = {scenario.live.max_clock_lag_s:g} s): "
            "timings of this run are not trustworthy; lower live.compression",
        )
    meta = make_meta(
        scenario,
        mode="live",
        wall_start=wall_start,
        horizon_s=float(scenario.horizon),
        drained_s=sim_s - float(scenario.horizon),
        drained_quiet=stats.drained_quiet,
        compression=c,
        clock_lag_exceeded=exceeded,
        max_clock_lag_s=lag,
        max_clock_lag_allowed_s=scenario.live.max_clock_lag_s,
        clocks=clocks,
        integration="reference" if sut_url is None else sut_url,
        integration_restarts=twin.restarts,
        harness={
            "submitted": stats.submitted,
            "failed": stats.failed,
            "retries": stats.retries,
            "max_submit_lag_s": stats.max_submit_lag_s,
            "errors": stats.errors,
        },
    )
    result = RunResult(scenario, meta, kpis, recon, events, calls, exc, breaches)
    if out is not None:
        result.write(out, report)
    return result
