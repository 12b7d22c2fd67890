"""``twin load``: a Locust load test against the live twin, judged by the ledgers.

One run: start the twin (the four mocks and the reference integration, each a subprocess in its own
process group on free loopback ports) unless told where it already runs; run Locust headless (one
master and N local workers, or a single process) with ``loadtest/locustfile.py`` shaping the
scenario's demand curve into the test duration; let the integration drain; pull every mock's ledger;
reconcile the orders Locust submitted; print a summary and the SLO verdict. Every child is stopped
on success, failure and Ctrl-C.

The run folder holds ``scenario.yaml``, ``schedule.json``, ``locust_stats.csv`` (and the other
Locust CSVs), ``locust.html``, ``ledgers.json``, ``summary.json``, ``orders/`` (ids each Locust
process submitted) and ``logs/`` (every child's output).
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from sim.procs import Children, ProcError, free_port, sigterm_as_interrupt, wait_http
from sim.scenario import Scenario, dump_scenario, load_scenario

if TYPE_CHECKING:
    import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = REPO_ROOT / "loadtest" / "locustfile.py"
SYSTEMS = ("crm", "erp", "wms", "carrier")
ADMIN_HEADER = "X-Twin-Admin-Token"
SUBMIT_NAME = "crm:submit_order"
STOP_TIMEOUT_S = 10  # in-flight iterations finish, so Locust's counts and the CRM ledger agree
ACHIEVED_TOLERANCE = 0.9  # below this share of the offered orders the summary flags the shortfall


class LoadError(Exception):
    """A load run could not be carried out (as opposed to an SLO breach)."""


# --------------------------------------------------------------------------------------- options


@dataclass
class LoadOptions:
    scenario: Path
    overrides: list[str] = field(default_factory=list)
    duration_s: float = 30.0
    peak_rps: float = 5.0
    workers: int = 1
    remote_workers: int = 0
    users: int | None = None
    sut: str | None = None  # integration already running: don't start the reference one
    crm_url: str | None = None  # mocks already running (with erp_url): don't start the mocks
    erp_url: str | None = None
    admin_token: str | None = None
    out: Path | None = None
    master_host: str = "127.0.0.1"
    master_port: int | None = None
    drain_s: float = 10.0
    max_p50_s: float | None = None
    max_p95_s: float | None = None
    max_p99_s: float | None = None
    startup_timeout_s: float = 30.0


# --------------------------------------------------------------------------------------- processes


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes] | None, name: str, children: Children, timeout_s: float
) -> None:
    try:
        wait_http(url, timeout_s, proc)
    except ProcError as e:
        tail = f"; its log says:\n{children.log_tail(name)}" if proc is not None and proc.poll() is not None else ""
        raise LoadError(f"{name} {e}{tail}") from None


def twin_available() -> list[str]:
    """Names of the ``twin`` commands this installation lacks for starting the twin (empty: all there)."""
    from typer.main import get_command

    from sim.cli import app

    cmd = get_command(app)
    have = set(getattr(cmd, "commands", {}))
    missing = []
    for group, sub in (("mocks", "serve"), ("integration", "serve")):
        g = getattr(cmd, "commands", {}).get(group) if group in have else None
        if g is None or sub not in getattr(g, "commands", {}):
            missing.append(f"twin {group} {sub}")
    return missing


# --------------------------------------------------------------------------------------- results


@dataclass
class RequestStats:
    name: str
    method: str
    requests: int
    failures: int
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    rps: float


def _pct(row: dict[str, str], key: str) -> float | None:
    raw = row.get(key, "")
    if raw in ("", "N/A"):
        return None
    return float(raw) / 1000.0


def read_locust_stats(path: Path) -> tuple[list[RequestStats], RequestStats | None]:
    """Locust's ``*_stats.csv``: per-request rows and the Aggregated row (latencies in seconds)."""
    rows: list[RequestStats] = []
    total: RequestStats | None = None
    if not path.exists():
        return rows, None
    with path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            s = RequestStats(
                name=r["Name"],
                method=r.get("Type", ""),
                requests=int(r["Request Count"]),
                failures=int(r["Failure Count"]),
                p50_s=_pct(r, "50%"),
                p95_s=_pct(r, "95%"),
                p99_s=_pct(r, "99%"),
                rps=float(r.get("Requests/s") or 0.0),
            )
            if r["Name"] == "Aggregated":
                total = s
            else:
                rows.append(s)
    return rows, total


def fetch_ledger(base_url: str, token: str, page: int = 5000, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    since = 0
    with httpx.Client(base_url=base_url, headers={ADMIN_HEADER: token}, timeout=timeout_s) as c:
        while True:
            r = c.get("/_twin/ledger", params={"since": since, "limit": page})
            if r.status_code == 401:
                raise LoadError(f"{base_url}/_twin/ledger refused the admin token (set --admin-token)")
            r.raise_for_status()
            body = r.json()
            entries = body.get("entries", [])
            out.extend(entries)
            if len(entries) < page:
                return out
            since = int(body.get("next", entries[-1]["seq"]))


def fetch_integration_exceptions(url: str, token: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """The integration's DLQ and business exceptions as ``crm_id, category, reason`` rows, so that
    reconciliation can tell "gave up and said so" from "lost". A black-box SUT without the
    reference admin API simply has none."""
    rows: list[dict[str, Any]] = []
    try:
        with httpx.Client(base_url=url, headers={ADMIN_HEADER: token}, timeout=timeout_s) as c:
            for path, params in (("/admin/dlq", {"include_replayed": "true"}), ("/admin/exceptions", {})):
                r = c.get(path, params=params)
                if r.status_code != 200:
                    continue
                for item in r.json().get("items", []):
                    payload = item.get("payload") or {}
                    if isinstance(payload, str):
                        try:
                            payload = json.loads(payload)
                        except ValueError:
                            payload = {}
                    crm_id = payload.get("crm_id") if isinstance(payload, dict) else None
                    if crm_id:
                        category = item.get("category") or payload.get("category") or "business"
                        rows.append({"crm_id": crm_id, "category": category, "reason": item.get("reason")})
    except (httpx.HTTPError, ValueError):
        return rows
    return rows


@dataclass
class OrderCounts:
    """The ledgers' view of the orders this load test submitted."""

    submitted: int  # CRM order.submitted entries of this run
    acknowledged: int  # ids Locust recorded (201 with an id)
    in_erp: int  # orders with at least one ERP sales_order.created
    duplicated: int  # orders created more than once in any system
    lost_or_stuck: int  # submitted but never reached ERP
    unacknowledged: int  # in the CRM ledger but Locust saw no 201 (failed or timed out after commit)
    missing_in_crm: int  # Locust got an id the CRM ledger does not have
    outcomes: dict[str, int] = field(default_factory=dict)
    kpis: dict[str, Any] = field(default_factory=dict)


def _is_ours(entry: dict[str, Any], prefix: str, ids: set[str]) -> bool:
    if entry.get("ref") in ids or entry.get("entity") in ids:
        return True
    data = entry.get("data") or {}
    key = data.get("key") or data.get("PoNumber") or data.get("po_number") if isinstance(data, dict) else None
    return isinstance(key, str) and key.startswith(prefix)


def count_orders(ledgers: dict[str, list[dict[str, Any]]], run_prefix: str, recorded: Sequence[str]) -> OrderCounts:
    """Join this run's CRM submissions to the other ledgers by ``ref`` (the CRM order id).

    Only orders of this run count (PoNumber prefix or an id Locust recorded): the twin's own
    demand, if it generates any, is not the load test's business.
    """
    ids = set(recorded)
    crm = [e for e in ledgers.get("crm", []) if e.get("kind") == "order.submitted" and _is_ours(e, run_prefix, ids)]
    ours = {str(e.get("ref") or e.get("entity")) for e in crm}
    creates: Counter[tuple[str, str]] = Counter()
    for system, kind in (
        ("erp", "sales_order.created"),
        ("wms", "fulfilment.created"),
        ("carrier", "shipment.created"),
    ):
        for e in ledgers.get(system, []):
            if e.get("kind") == kind and e.get("ref") in ours:
                creates[(system, str(e["ref"]))] += 1
    in_erp = {ref for (s, ref) in creates if s == "erp"}
    dup = {ref for (s, ref), n in creates.items() if n > 1}
    return OrderCounts(
        submitted=len(ours),
        acknowledged=len(ids),
        in_erp=len(in_erp),
        duplicated=len(dup),
        lost_or_stuck=len(ours - in_erp),
        unacknowledged=len(ours - ids),
        missing_in_crm=len(ids - ours),
    )


def reconcile_orders(
    ledgers: dict[str, list[dict[str, Any]]],
    counts: OrderCounts,
    run_prefix: str,
    recorded: Sequence[str],
    compression: float = 1.0,
    exceptions: Sequence[dict[str, Any]] = (),
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Outcomes and KPIs from ``sim.reconcile`` / ``sim.kpis`` for this run's orders (in place);
    returns the orders and ledger-entries frames (None when the ledgers are empty).

    Ledger times are simulated seconds on the live clock (``compression`` per wall second), so
    latencies are in model time as in a live run (``sim.modeltime``): getting an order into ERP is
    API work, counted in wall seconds, the unit it has in a virtual run and the one its SLO means.
    """
    import pandas as pd

    from sim.kpis import compute_kpis
    from sim.modeltime import model_latencies
    from sim.reconcile import demand_log, entries_frame, exceptions_frame, outcome_counts, reconcile

    ids = set(recorded)
    cols = ("seq", "t", "system", "kind", "entity", "ref", "correlation_id", "idempotency_key", "data")

    def full(e: dict[str, Any]) -> dict[str, Any]:
        return {c: e.get(c) for c in cols}

    flat = [full(e) for s in SYSTEMS for e in ledgers.get(s, [])]
    if not flat:
        return None
    entries = entries_frame(flat)
    crm = entries_frame([full(e) for e in ledgers.get("crm", []) if _is_ours(e, run_prefix, ids)])
    demand = demand_log(crm)
    orders = reconcile(entries, demand, exceptions_frame(exceptions))
    orders = pd.concat([orders, model_latencies(orders, entries, compression)], axis=1)
    counts.outcomes = outcome_counts(orders)
    counts.kpis = compute_kpis(orders)
    return orders, entries


# --------------------------------------------------------------------------------------- verdict


@dataclass
class Verdict:
    breaches: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.breaches


def judge(
    scenario: Scenario,
    opts: LoadOptions,
    total: RequestStats | None,
    submits: RequestStats | None,
    counts: OrderCounts | None,
    offered: float,
) -> Verdict:
    """SLO breaches (each naming the limit) and warnings (shortfalls that are not SLOs)."""
    breaches: list[str] = []
    warnings: list[str] = []
    slo = scenario.slo
    if total is None or total.requests == 0:
        breaches.append("no requests completed: Locust recorded nothing (see logs/locust-master.log)")
        return Verdict(breaches, warnings)
    ratio = total.failures / total.requests
    if slo.failure_ratio is not None and ratio > slo.failure_ratio:
        breaches.append(f"slo.failure_ratio: {ratio:.4g} of requests failed > limit {slo.failure_ratio:g}")
    for label, limit, got in (
        ("p50", opts.max_p50_s, total.p50_s),
        ("p95", opts.max_p95_s, total.p95_s),
        ("p99", opts.max_p99_s, total.p99_s),
    ):
        if limit is not None and got is not None and got > limit:
            breaches.append(f"request latency {label}: {got:.4g} s > limit {limit:g} s")
    if counts is not None:
        if counts.kpis:
            from sim.kpis import check_slo

            # Reconciled outcomes judged as a virtual run judges them, except two things a load
            # test stops in the middle of by design: ``stuck`` orders are not judged, and the
            # fallout rate counts lost, duplicated, mismatched and dead-lettered orders only.
            k = counts.kpis
            rest = slo.model_copy(update={"failure_ratio": None, "stuck": None, "fallout_rate": None})
            breaches.extend(f"slo.{b}" for b in check_slo(k, rest))
            fallout = sum(int(k.get(n) or 0) for n in ("lost", "duplicates", "mismatches", "dlq"))
        else:
            # Without reconciliation: the ledgers' own counts (never reached ERP counts as lost).
            for name, got in (("duplicates", counts.duplicated), ("lost", counts.lost_or_stuck)):
                limit = getattr(slo, name)
                if limit is not None and got > limit:
                    breaches.append(f"slo.{name}: {got} > limit {limit}")
            fallout = counts.duplicated + counts.lost_or_stuck
        if slo.fallout_rate is not None and counts.submitted:
            rate = fallout / counts.submitted
            if rate > slo.fallout_rate:
                breaches.append(f"slo.fallout_rate: {rate:.4g} > limit {slo.fallout_rate:g}")
        if counts.missing_in_crm:
            breaches.append(f"{counts.missing_in_crm} orders acknowledged with 201 are missing from the CRM ledger")
    if submits is not None and offered > 0 and submits.requests < ACHIEVED_TOLERANCE * offered:
        warnings.append(
            f"offered rate not achieved: {submits.requests} order submits of {offered:.0f} offered "
            f"({submits.requests / offered:.0%}); more users (--users) or workers, or a faster SUT"
        )
    return Verdict(breaches, warnings)


# --------------------------------------------------------------------------------------- run


@dataclass
class LoadResult:
    run_dir: Path
    exit_code: int
    verdict: Verdict
    requests: list[RequestStats]
    total: RequestStats | None
    counts: OrderCounts | None
    offered: float
    pacing: dict[str, int]


def default_run_dir(scenario: Scenario) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"load-{scenario.name}-{stamp}"


def _locust_cmd(opts: LoadOptions, run_dir: Path, host: str, role: str, master_port: int) -> list[str]:
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    if role == "worker":
        connect = "127.0.0.1" if opts.master_host in ("0.0.0.0", "*", "") else opts.master_host
        return [*base, "--worker", "--master-host", connect, "--master-port", str(master_port), "--loglevel", "WARNING"]
    cmd = [
        *base,
        "--headless",
        "--host",
        host,
        "--csv",
        str(run_dir / "locust"),
        "--html",
        str(run_dir / "locust.html"),
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",  # failed requests are judged against the SLO here, not by Locust's exit code
    ]
    n = opts.workers + opts.remote_workers
    if n > 0:
        cmd += [
            "--master",
            "--master-bind-host",
            opts.master_host,
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(n),
            "--expect-workers-max-wait",
            str(int(opts.startup_timeout_s)),
        ]
    return cmd


TWIN = [sys.executable, "-c", "from sim.cli import main; main()"]
_URL_LINE = re.compile(r"^(crm|erp|wms|carrier)\s+(http://\S+)\s*$")


def _start_mocks(opts: LoadOptions, children: Children, env: dict[str, str], integration_url: str) -> dict[str, str]:
    """``twin mocks serve`` on free ports (it prints where each mock listens); their URLs."""
    cmd = [*TWIN, "mocks", "serve", str(opts.scenario), "--host", "127.0.0.1", "--port-base", "0"]
    cmd += ["--webhook-base", integration_url]
    for o in opts.overrides:
        cmd += ["--set", o]
    proc = children.start("mocks", cmd, env)
    log = children.log_dir / "mocks.log"
    deadline = time.monotonic() + opts.startup_timeout_s
    urls: dict[str, str] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LoadError(f"twin mocks serve exited with code {proc.returncode}:\n{children.log_tail('mocks')}")
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        for line in text.splitlines():
            m = _URL_LINE.match(line.strip())
            if m:
                urls[m.group(1)] = m.group(2).rstrip("/")
        if all(s in urls for s in SYSTEMS):
            for s in SYSTEMS:
                wait_healthy(f"{urls[s]}/_twin/health", proc, "mocks", children, opts.startup_timeout_s)
            return urls
        time.sleep(0.2)
    raise LoadError(f"twin mocks serve did not report its URLs within {opts.startup_timeout_s:g} s")


def _start_integration(
    opts: LoadOptions, children: Children, env: dict[str, str], port: int, urls: dict[str, str], run_dir: Path
) -> str:
    cmd = [*TWIN, "integration", "serve", "--host", "127.0.0.1", "--port", str(port), "--scenario", str(opts.scenario)]
    for o in opts.overrides:
        cmd += ["--set", o]
    for s in SYSTEMS:
        cmd += [f"--{s}-url", urls[s]]
    cmd += ["--db", str((run_dir / "integration.db").resolve()), "--log-level", "warning"]
    proc = children.start("integration", cmd, env)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(f"{url}/health", proc, "integration", children, opts.startup_timeout_s)
    return url


def _shape() -> Any:
    # ``loadtest`` sits next to ``sim`` but is not an installed package (locust loads it by path).
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import loadtest.shape

    return loadtest.shape


def _pacing(out: Path) -> dict[str, int]:
    total: dict[str, int] = {}
    for f in sorted(out.glob("pacing-*.json")):
        for k, v in json.loads(f.read_text(encoding="utf-8")).items():
            total[k] = total.get(k, 0) + int(v)
    return total


def _recorded_ids(out: Path) -> list[str]:
    ids: list[str] = []
    for f in sorted(out.glob("orders-*.tsv")):
        ids += [ln.split("\t", 1)[0] for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return ids


def _pull(urls: dict[str, str], token: str) -> dict[str, list[dict[str, Any]]]:
    return {s: fetch_ledger(u, token) for s, u in urls.items()}


def run_load(opts: LoadOptions, echo: Any = print) -> LoadResult:
    """Run one load test; raise ``LoadError`` when it cannot be run, else return the verdict."""
    scenario = load_scenario(opts.scenario, opts.overrides)
    schedule = _shape().schedule_for(scenario, opts.duration_s, opts.peak_rps, users=opts.users)
    run_dir = Path(opts.out or default_run_dir(scenario))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "scenario.yaml").write_text(dump_scenario(scenario), encoding="utf-8")
    (run_dir / "schedule.json").write_text(json.dumps(schedule.to_dict(), indent=1), encoding="utf-8")
    orders_dir = run_dir / "orders"
    if orders_dir.exists():
        shutil.rmtree(orders_dir)
    run_id = "LT" + secrets.token_hex(3).upper()  # PoNumber prefix: tells this run's orders apart
    token = opts.admin_token or os.environ.get("TWIN_ADMIN_TOKEN") or secrets.token_urlsafe(16)
    children = Children(run_dir / "logs")
    echo(
        f"load: {scenario.name}: {schedule.duration_s:g} s, peak {schedule.peak_rps:g} orders/s, "
        f"mean {schedule.mean_rps:.3g}/s, {schedule.total_offered:.0f} orders offered, "
        f"up to {max(g.users for g in schedule.stages())} users, shape from {schedule.source}"
    )
    started = time.monotonic()
    with sigterm_as_interrupt():
        try:
            integration_url = opts.sut.rstrip("/") if opts.sut else None
            if opts.crm_url:
                urls = {"crm": opts.crm_url.rstrip("/")}
                if opts.erp_url:
                    urls["erp"] = opts.erp_url.rstrip("/")
            else:
                missing = twin_available()
                if missing:
                    raise LoadError(
                        f"cannot start the twin: {' and '.join(missing)} not available in this installation; "
                        "start the mocks yourself and pass --crm-url/--erp-url"
                    )
                port = free_port()
                integration_url = (opts.sut or f"http://127.0.0.1:{port}").rstrip("/")
                env = {**os.environ, "TWIN_ADMIN_TOKEN": token, "PYTHONUNBUFFERED": "1"}
                urls = _start_mocks(opts, children, env, integration_url)
                if opts.sut is None:
                    _start_integration(opts, children, env, port, urls, run_dir)
                echo(f"load: twin up (crm {urls['crm']}, erp {urls['erp']}, integration {integration_url})")
            _run_locust(opts, schedule, run_dir, urls, run_id, children)
            counts, ledgers, frames = _settle(
                urls, token, run_id, orders_dir, opts.drain_s, scenario.live.compression, integration_url
            )
        finally:
            children.stop_all()
    (run_dir / "ledgers.json").write_text(json.dumps(ledgers, default=str), encoding="utf-8")
    requests, total = read_locust_stats(run_dir / "locust_stats.csv")
    submits = next((r for r in requests if r.name == SUBMIT_NAME), None)
    verdict = judge(scenario, opts, total, submits, counts, schedule.total_offered)
    pacing = _pacing(orders_dir) if orders_dir.exists() else {}
    if pacing.get("missed"):
        verdict.warnings.append(f"{pacing['missed']} order slots missed because every user was busy (raise --users)")
    result = LoadResult(
        run_dir, 0 if verdict.ok else 1, verdict, requests, total, counts, schedule.total_offered, pacing
    )
    summary = {
        "scenario": scenario.name,
        "run_id": run_id,
        "wall_s": time.monotonic() - started,
        "offered": schedule.total_offered,
        "requests": [asdict(r) for r in requests],
        "total": asdict(total) if total else None,
        "orders": asdict(counts) if counts else None,
        "pacing": pacing,
        "breaches": verdict.breaches,
        "warnings": verdict.warnings,
        "exit_code": result.exit_code,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    if frames is not None:
        _write_run_files(run_dir, scenario, frames, counts, summary)
    return result


def _write_run_files(
    run_dir: Path,
    scenario: Scenario,
    frames: tuple[pd.DataFrame, pd.DataFrame],
    counts: OrderCounts,
    summary: dict[str, Any],
) -> None:
    """The run-folder files every run has (DESIGN.md "Run results"), so `sim.results`, the notebooks
    and `twin compare` read a load test like any other run. No calls.parquet rows: Locust drives the
    CRM only, and the ledgers are the record."""
    from sim.live import empty_calls
    from sim.runfolder import events_frame, make_meta, write_run

    orders, entries = frames
    kpis = {**counts.kpis, "wall_s": summary["wall_s"], "breaches": summary["breaches"]}
    meta = make_meta(scenario, mode="load", run_id=summary["run_id"], compression=scenario.live.compression)
    write_run(
        run_dir,
        scenario=scenario,
        orders=orders,
        events=events_frame(entries),
        calls=empty_calls(),
        kpis=kpis,
        meta=meta,
        breaches=summary["breaches"],
    )


def _run_locust(
    opts: LoadOptions, schedule: Any, run_dir: Path, urls: dict[str, str], run_id: str, children: Children
) -> None:
    # The locustfile reads its whole configuration from TWIN_* variables: start from a clean slate
    # so a variable left in the shell cannot make the workers pace a different schedule.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("TWIN_LOAD_", "TWIN_SCENARIO", "TWIN_PEAK"))}
    inherited.pop("TWIN_ERP_URL", None)
    env = {
        **inherited,
        "TWIN_SCENARIO": str(Path(opts.scenario).resolve()),
        "TWIN_SCENARIO_SET": "\n".join(opts.overrides),
        "TWIN_LOAD_DURATION": str(opts.duration_s),
        "TWIN_PEAK_RPS": str(opts.peak_rps),
        "TWIN_LOAD_OUT": str((run_dir / "orders").resolve()),
        "TWIN_LOAD_RUN_ID": run_id,
        "PYTHONUNBUFFERED": "1",
    }
    if opts.users is not None:
        env["TWIN_LOAD_USERS"] = str(opts.users)
    if "erp" in urls:
        env["TWIN_ERP_URL"] = urls["erp"]
    master_port = opts.master_port or free_port()
    master = children.start("locust-master", _locust_cmd(opts, run_dir, urls["crm"], "master", master_port), env)
    for i in range(opts.workers):
        children.start(f"locust-worker-{i + 1}", _locust_cmd(opts, run_dir, urls["crm"], "worker", master_port), env)
    limit = schedule.duration_s + STOP_TIMEOUT_S + opts.startup_timeout_s + 30
    try:
        code = master.wait(limit)
    except subprocess.TimeoutExpired:
        raise LoadError(f"Locust did not finish within {limit:g} s; see {children.log_dir}/locust-master.log") from None
    if code not in (0, 1) or not (run_dir / "locust_stats.csv").exists():
        raise LoadError(f"Locust failed (exit code {code}); its log says:\n{children.log_tail('locust-master')}")
    for i in range(opts.workers):  # workers quit when the master does; give them a moment
        children.stop(f"locust-worker-{i + 1}", grace_s=5.0)


def _settle(
    urls: dict[str, str],
    token: str,
    run_id: str,
    orders_dir: Path,
    drain_s: float,
    compression: float,
    integration_url: str | None,
) -> tuple[OrderCounts, dict[str, list[dict[str, Any]]], tuple[pd.DataFrame, pd.DataFrame] | None]:
    """Let the integration drain (until every submitted order is in ERP, or ``drain_s``), then
    pull every ledger and count; also the reconciled (orders, entries) frames when there are any."""
    recorded = _recorded_ids(orders_dir) if orders_dir.exists() else []
    deadline = time.monotonic() + drain_s
    while True:
        ledgers = _pull(urls, token)
        counts = count_orders(ledgers, run_id, recorded)
        if "erp" not in urls or counts.in_erp >= counts.submitted or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    frames = None
    try:
        exceptions = fetch_integration_exceptions(integration_url, token) if integration_url else []
        frames = reconcile_orders(ledgers, counts, run_id, recorded, compression, exceptions)
    except (ImportError, KeyError, ValueError) as e:  # reconciliation is extra detail, counts stand alone
        counts.outcomes = {"error": 1}
        counts.kpis = {}
        print(f"load: reconciliation skipped: {e}", file=sys.stderr)
    return counts, ledgers, frames


def format_summary(r: LoadResult) -> str:
    lines = [f"run folder: {r.run_dir}"]
    lines.append(f"{'request':<34}{'count':>8}{'fail':>7}{'p50 s':>9}{'p95 s':>9}{'p99 s':>9}{'req/s':>8}")

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    for s in [*r.requests, *([r.total] if r.total else [])]:
        name = f"{s.method} {s.name}".strip() if s.name != "Aggregated" else "all requests"
        lines.append(
            f"{name[:34]:<34}{s.requests:>8}{s.failures:>7}{fmt(s.p50_s):>9}{fmt(s.p95_s):>9}{fmt(s.p99_s):>9}{s.rps:>8.1f}"
        )
    c = r.counts
    if c is not None:
        lines.append(
            f"orders: offered {r.offered:.0f}, submitted (CRM ledger) {c.submitted}, acknowledged {c.acknowledged}, "
            f"in ERP {c.in_erp}, duplicated {c.duplicated}, lost or stuck {c.lost_or_stuck}"
        )
        if c.unacknowledged:
            lines.append(f"  {c.unacknowledged} in the CRM ledger without a 201 seen by Locust (failed after commit)")
        erp = c.kpis.get("latency_s", {}).get("erp_accepted") or {}
        if erp.get("n"):
            lines.append(
                f"  submit -> ERP sales order (wall s): p50 {fmt(erp['p50'])}, p95 {fmt(erp['p95'])}, "
                f"p99 {fmt(erp['p99'])}, max {fmt(erp['max'])}"
            )
        shown = {k: v for k, v in c.outcomes.items() if v}
        if shown:
            lines.append("  outcomes: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    if r.pacing:
        lines.append(
            f"pacing: {r.pacing.get('late', 0)} iterations started late, {r.pacing.get('missed', 0)} slots missed"
        )
    for w in r.verdict.warnings:
        lines.append(f"warning: {w}")
    if r.verdict.ok:
        lines.append("SLO: met")
    else:
        lines += [f"SLO breached: {b}" for b in r.verdict.breaches]
    return "\n".join(lines)
