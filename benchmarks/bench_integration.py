"""What the live reference integration costs, measured through real processes on loopback.

The four mocks (``twin mocks serve --separate``: one process each) and the integration
(``twin integration serve --profile resilient``) run as child processes; orders are POSTed to the
CRM mock and followed through the ledgers.

(a) overhead: at a moderate, paced load (default 50 orders/s for 10 s), each order's end-to-end time
    from the CRM accepting it to the ERP creating its sales order, minus the time the mocks
    themselves spent serving the calls the workflow made on the way (their request journals,
    ``/_twin/requests``, fixed injected latency included). What remains is the integration's own
    cost: webhook intake (HMAC, JSON, SQLite commit), scheduling, policies, HTTP client, plus the
    CRM mock's webhook delivery. Target: p99 <= 15 ms.
(b) throughput: orders submitted as fast as the CRM takes them for a bounded time, and the rate at
    which they come out in ERP. Target: >= 300 orders/s.

Ledger times are simulated seconds on each mock's own live clock; each mock's ``/_twin/clock`` is
read next to ``time.time()`` to turn them back into wall time (error: half a loopback round trip).

    python benchmarks/bench_integration.py [--rate 50] [--seconds 10] [--burst-seconds 10] [--latency 0.002]
        [--bulkhead N] [--skip mock|overhead|throughput]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_integration_live import (  # noqa: E402
    CRM_ORDER_PATH,
    SYSTEMS,
    TWIN,
    LiveTwin,
    OrderFeed,
    free_port,
    write_scenario,
)


def cpu_seconds(twin: LiveTwin) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each child process group, mocks split per system
    (Linux ``/proc``). CPU per order is what a shared machine cannot distort much: wall-clock rates
    depend on who else is running, CPU per order hardly does."""
    tick = os.sysconf("SC_CLK_TCK")
    groups = {p.pid: name for name, p in twin.procs.items()}
    out: dict[str, float] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        name = groups.get(int(rest[2]))  # process group id
        if name is None:
            continue
        if "--only " in cmd:
            name = cmd.split("--only ", 1)[1].split()[0]
        out[name] = out.get(name, 0.0) + (int(rest[11]) + int(rest[12])) / tick
    return out


def cpu_per_order(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    return {k: (after[k] - before.get(k, 0.0)) / max(n, 1) * 1e3 for k in after if after[k] - before.get(k, 0.0) > 0}


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def wall_mapping(twin: LiveTwin) -> dict[str, tuple[float, float]]:
    """Per mock (compression, wall epoch of simulated t = 0): wall(t) = epoch + t / compression."""
    out = {}
    for s in SYSTEMS:
        best: tuple[float, float, float] | None = None
        for _ in range(5):  # the fastest round trip bounds the error best
            t0 = time.time()
            st = httpx.get(f"{twin.urls[s]}/_twin/clock", headers=twin.admin, timeout=5).json()
            t1 = time.time()
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, (t0 + t1) / 2 - st["target"] / st["compression"], st["compression"])
        assert best is not None
        out[s] = (best[2], best[1])
    return out


def journal(twin: LiveTwin, system: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{twin.urls[system]}/_twin/requests", params={"limit": 1_000_000}, headers=twin.admin, timeout=30
    ).raise_for_status()
    return r.json()["requests"]


def overhead(twin: LiveTwin, ids: list[str]) -> dict[str, Any]:
    """Per order: end-to-end (CRM submitted -> ERP created) and the mocks' share of it."""
    clocks = wall_mapping(twin)

    def wall(system: str, t: float) -> float:
        comp, epoch = clocks[system]
        return epoch + t / comp

    want = set(ids)
    submitted = {e["ref"]: wall("crm", e["t"]) for e in twin.ledger("crm") if e["kind"] == "order.submitted"}
    created = {
        e["ref"]: wall("erp", e["t"])
        for e in twin.ledger("erp")
        if e["kind"] == "sales_order.created" and e["ref"] in want
    }
    # The calls each order's workflow made before its sales order existed, as the mocks timed them.
    mock_s: dict[str, float] = {}
    calls: dict[str, int] = {}
    for s in SYSTEMS:
        for r in journal(twin, s):
            cid = r.get("correlation_id")
            if cid not in created or r.get("op") == "submit_order":
                continue
            if wall(s, r["t"]) <= created[cid] + 0.0005:
                mock_s[cid] = mock_s.get(cid, 0.0) + r["latency_s"]
                calls[cid] = calls.get(cid, 0) + 1
    e2e = [created[c] - submitted[c] for c in created if c in submitted]
    over = [created[c] - submitted[c] - mock_s.get(c, 0.0) for c in created if c in submitted]
    return {
        "orders": len(ids),
        "reached_erp": len(created),
        "e2e_ms": {q: pct(e2e, q) * 1e3 for q in (50, 95, 99)},
        "mock_ms": {q: pct(list(mock_s.values()), q) * 1e3 for q in (50, 95, 99)},
        "overhead_ms": {q: pct(over, q) * 1e3 for q in (50, 95, 99)},
        "calls_per_order": statistics.mean(calls.values()) if calls else 0.0,
    }


class CrmSubmitter:
    """POSTs CRM orders over ``sim.http11`` (pooled keep-alive connections, each request serialised
    to bytes before the clock starts).

    The benchmark's own client must cost little next to the twin it measures: with an
    ``httpx.AsyncClient`` of 64 connections the load generator burnt ~8 ms of CPU per submit
    (httpcore scans its pool and polls every idle connection before each request), more than the
    whole twin per order, on the same two cores. That, not the CRM, capped the burst at ~80-90
    submits/s. This costs well under 0.1 ms per submit."""

    def __init__(self, crm_url: str, feed: OrderFeed) -> None:
        from urllib.parse import urlsplit

        from sim.http11 import Http11Transport

        u = urlsplit(crm_url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.feed = feed
        self.transport = Http11Transport(max_idle=1024)
        self._head = (
            f"POST {CRM_ORDER_PATH} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-type: application/json\r\n"
        ).encode()
        self.errors = 0

    def request(self) -> bytes:
        body = json.dumps(self.feed.payload(), separators=(",", ":")).encode()
        return self._head + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body

    async def submit(self, data: bytes) -> str | None:
        """The order id the CRM answered 201 with; None (and counted) for anything else: an
        overloaded mock closing a connection is a failed submit, not a reason to abort."""
        try:
            status, _, body = await self.transport.exchange(self.host, self.port, data)
        except (httpx.TransportError, OSError):
            self.errors += 1
            return None
        if status != 201:
            self.errors += 1
            return None
        return str(json.loads(body)["id"])

    async def paced(self, n: int, rate: float, concurrency: int = 256) -> list[str]:
        """``n`` orders at ``rate`` per second (open model, at most ``concurrency`` in flight)."""
        reqs = [self.request() for _ in range(n)]
        sem = asyncio.Semaphore(concurrency)
        ids: list[str] = []

        async def one(data: bytes) -> None:
            async with sem:
                got = await self.submit(data)
            if got is not None:
                ids.append(got)

        t0 = time.monotonic()
        tasks = []
        for i, data in enumerate(reqs):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(data)))
        await asyncio.gather(*tasks)
        await self.transport.aclose()
        return ids

    async def burst(self, seconds: float, concurrency: int) -> tuple[list[str], float]:
        """As fast as the CRM answers, ``concurrency`` requests at a time, for ``seconds``.
        Returns (accepted ids, wall start)."""
        reqs = iter([self.request() for _ in range(int(seconds * 3000))])  # off the clock
        ids: list[str] = []
        t0 = time.time()
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                data = next(reqs, None)
                if data is None:
                    return
                got = await self.submit(data)
                if got is not None:
                    ids.append(got)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await self.transport.aclose()
        return ids, t0


def run_client(coro: Any) -> tuple[Any, float]:
    """Run the load generator on uvloop (as the services run); returns (result, its CPU seconds)."""
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        factory = None
    c0 = time.process_time()
    with asyncio.Runner(loop_factory=factory) as runner:
        out = runner.run(coro)
    return out, time.process_time() - c0


def throughput(twin: LiveTwin, ids: list[str], t0: float, drain_s: float) -> dict[str, Any]:
    twin.drain(set(ids), timeout_s=drain_s)
    clocks = wall_mapping(twin)
    comp, epoch = clocks["erp"]
    want = set(ids)
    times = sorted(
        epoch + e["t"] / comp for e in twin.ledger("erp") if e["kind"] == "sales_order.created" and e["ref"] in want
    )
    comp_c, epoch_c = clocks["crm"]
    sub = sorted(
        epoch_c + e["t"] / comp_c for e in twin.ledger("crm") if e["kind"] == "order.submitted" and e["ref"] in want
    )
    span = (times[-1] - sub[0]) if times and sub else float("nan")
    booked = booking_flow(twin, want, clocks)
    return {
        **booked,
        "submitted": len(ids),
        "submit_per_s": len(ids) / (sub[-1] - sub[0]) if len(sub) > 1 else float("nan"),
        "reached_erp": len(times),
        "erp_per_s": len(times) / span if span == span and span > 0 else float("nan"),
        "span_s": span,
    }


def booking_flow(
    twin: LiveTwin, want: set[str], clocks: dict[str, tuple[float, float]], settle_s: float = 60.0
) -> dict[str, Any]:
    """How far the burst's orders got past ERP: the integration's booking flow ends at a WMS
    fulfilment, or at ERP for an order ERP backordered or put on credit hold (it waits there, by
    design). Waits up to ``settle_s`` for the WMS creates, then counts each kind."""
    held_kinds = ("sales_order.backordered", "sales_order.credit_hold")
    deadline = time.monotonic() + settle_s
    while True:
        held = {e["ref"]: e["t"] for e in twin.ledger("erp") if e["kind"] in held_kinds and e["ref"] in want}
        wms = {e["ref"]: e["t"] for e in twin.ledger("wms") if e["kind"] == "fulfilment.created" and e["ref"] in want}
        if len(held.keys() | wms.keys()) >= len(want) or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    comp_w, epoch_w = clocks["wms"]
    comp_e, epoch_e = clocks["erp"]
    ends = [epoch_w + t / comp_w for t in wms.values()]
    ends += [epoch_e + t / comp_e for r, t in held.items() if r not in wms]
    comp_c, epoch_c = clocks["crm"]
    first = min((epoch_c + e["t"] / comp_c for e in twin.ledger("crm") if e["kind"] == "order.submitted"
                 and e["ref"] in want), default=float("nan"))  # fmt: skip
    span = max(ends) - first if ends else float("nan")
    return {
        "to_wms": len(wms),
        "held_in_erp": len(held.keys() - wms.keys()),
        "booked_per_s": len(ends) / span if span == span and span > 0 else float("nan"),
        "booked_span_s": span,
    }


# --------------------------------------------------------------------------------------- (c) one mock


def _raw_client(port: int, head: bytes, seconds: float, connections: int, q: Any) -> None:
    """Keep-alive HTTP/1.1 on raw asyncio streams (cheap, so the server is what gets measured)."""

    async def worker(deadline: float) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done = 0
        while time.perf_counter() < deadline:
            writer.write(head)
            h = await reader.readuntil(b"\r\n\r\n")
            n = next(
                (int(x.split(b":", 1)[1]) for x in h.split(b"\r\n") if x.lower().startswith(b"content-length:")), 0
            )
            await reader.readexactly(n)
            if h[9:12] != b"201":
                raise RuntimeError(f"unexpected status {h[9:12]!r}")
            done += 1
        writer.close()
        return done

    async def run() -> int:
        deadline = time.perf_counter() + seconds
        return sum(await asyncio.gather(*(worker(deadline) for _ in range(connections))))

    q.put(asyncio.run(run()))


def _proc_cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def _serve_bare(port: int) -> None:
    import uvicorn

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_mock import build_app

    uvicorn.run(build_app("bare"), host="127.0.0.1", port=port, log_level="error", access_log=False)


def _drive_server(
    pid: int, port: int, head: bytes, seconds: float, clients: int, connections: int
) -> tuple[float, float]:
    """(requests per wall second, server CPU microseconds per request)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_raw_client, args=(port, head, seconds, connections, q)) for _ in range(clients)]
    c0, t0 = _proc_cpu(pid), time.perf_counter()
    for p in procs:
        p.start()
    n = sum(q.get() for _ in procs)
    wall, cpu = time.perf_counter() - t0, _proc_cpu(pid) - c0
    for p in procs:
        p.join()
    return n / wall, cpu / max(n, 1) * 1e6


def mock_ceiling(seconds: float, clients: int, connections: int) -> dict[str, tuple[float, float]]:
    """The real ERP mock (``twin mocks serve --only erp``, latency 0, fault engine idle) on
    ``create_sales_order`` vs a bare FastAPI endpoint validating and echoing a model."""
    import json
    import multiprocessing as mp

    from sim.masterdata import generate
    from sim.rng import Streams
    from sim.scenario import load_scenario

    out: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mock-") as d:
        tmp = Path(d)
        sc = write_scenario(tmp / "erp.yaml", systems={"erp": {"latency": {"kind": "fixed", "value": 0}}})
        scen = load_scenario(str(sc))
        md = generate(scen.masterdata, Streams(scen.seed))
        cust = md.customers[0].customer_no
        lines = [{"ItemNo": k.sku, "Qty": 1, "UoM": "EA", "UnitPrice": md.price(cust, k.sku)} for k in md.skus[:2]]
        body = json.dumps(
            {"ExtRef": "801BENCH", "SoldTo": cust, "Plant": "WH01", "RequestedDate": "20260710", "Lines": lines}
        ).encode()
        twin = LiveTwin(tmp, sc)
        try:
            cmd = [*TWIN, "mocks", "serve", str(sc), "--only", "erp", "--port-base", "0"]
            p = twin._spawn("mocks", cmd)
            twin.urls = {}
            deadline = time.monotonic() + 30
            while "erp" not in twin.urls and time.monotonic() < deadline:
                for line in (tmp / "mocks.log").read_text().splitlines():
                    if line.startswith("erp"):
                        twin.urls["erp"] = line.split()[1]
                time.sleep(0.1)
            twin.wait_healthy(f"{twin.urls['erp']}/_twin/health", 20)
            port = int(twin.urls["erp"].rsplit(":", 1)[1])
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from bench_mock import erp_request

            head = erp_request(port, body, reset=False)
            out["erp mock, create_sales_order"] = _drive_server(p.pid, port, head, seconds, clients, connections)
        finally:
            twin.close()
    ctx = mp.get_context("spawn")
    port = free_port()
    srv = ctx.Process(target=_serve_bare, args=(port,), daemon=True)
    srv.start()
    try:
        bare = json.dumps(
            {"ExtRef": "801BENCH", "SoldTo": "C000001", "Lines": [{"ItemNo": "SKU-00001", "Qty": 2, "UoM": "EA"}]}
        ).encode()
        for _ in range(200):
            try:
                httpx.post(
                    f"http://127.0.0.1:{port}/orders", content=bare, headers={"content-type": "application/json"}
                )
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        head = (
            f"POST /orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(bare)}\r\n\r\n"
        ).encode() + bare
        assert srv.pid is not None
        out["bare FastAPI"] = _drive_server(srv.pid, port, head, seconds, clients, connections)
    finally:
        srv.terminate()
        srv.join(5)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=50.0, help="orders/s for the overhead measurement")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the paced stream")
    ap.add_argument("--burst-seconds", type=float, default=10.0, help="length of the as-fast-as-possible stream")
    ap.add_argument("--concurrency", type=int, default=64, help="requests in flight during the burst")
    ap.add_argument("--latency", type=float, default=0.002, help="fixed latency every mock injects, seconds")
    ap.add_argument(
        "--bulkhead",
        type=int,
        default=None,
        help="the integration's bulkhead per system (default: the resilient profile's, 10 calls in flight)",
    )
    ap.add_argument("--one-process", action="store_true", help="all mocks in one process instead of one each")
    ap.add_argument("--skip", choices=("overhead", "throughput", "mock"), action="append", default=[])
    ap.add_argument("--mock-seconds", type=float, default=5.0, help="per server, for (c)")
    a = ap.parse_args()
    import platform

    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, {os.cpu_count()} CPUs,"
        f" load average {os.getloadavg()[0]:.1f}, Python {platform.python_version()}"
    )

    if "mock" not in a.skip:
        res = mock_ceiling(a.mock_seconds, clients=2, connections=16)
        print(
            "(c) one mock process vs bare FastAPI (wall req/s depends on the machine's other load; CPU per request hardly)"
        )
        for k, (rps, us) in res.items():
            print(f"    {k:30s} {rps:7.0f} req/s   {us:6.0f} us CPU/request = {1e6 / us:6.0f} req/s per free core")
        (m_rps, m_us), (b_rps, b_us) = res["erp mock, create_sales_order"], res["bare FastAPI"]
        print(f"    ratio mock/bare: wall {m_rps / b_rps:.2f}, by CPU {b_us / m_us:.2f} (target >= 0.65)")
        print(f"    ratio mock/5000 req/s: wall {m_rps / 5000:.2f}, per free core {1e6 / m_us / 5000:.2f}")
    if a.skip and {"overhead", "throughput"} <= set(a.skip):
        return
    lat = {"latency": {"kind": "fixed", "value": a.latency}}
    with tempfile.TemporaryDirectory(prefix="bench-integration-") as d:
        tmp = Path(d)
        sc = write_scenario(
            tmp / "bench.yaml",
            systems={s: lat for s in SYSTEMS},
            # No injected webhook latency: it would count as the integration's overhead in (a).
            webhooks={"max_attempts": 14, "backoff": 30, "timeout": 10, "latency": {"kind": "fixed", "value": 0}},
            # Years of stock: a burst of thousands of orders would otherwise empty the shelves in
            # seconds and send nearly every order down the (shorter) backorder path, skipping WMS.
            supplier={"initial_stock_days": 3650},
            # ... and enough customers that their credit limits do not put the burst on credit hold.
            masterdata={"customers": 3000},
            # Left alone, the resilient profile's bulkheads (10 calls in flight per system) apply.
            # Near 300 orders/s the ERP's is almost always full (about 4 ERP calls per order), so
            # ``--bulkhead`` sizes them explicitly, still a resilient profile with bulkheads on.
            **(
                {"integration": {"systems": {s: {"bulkhead": {"max_concurrent": a.bulkhead}} for s in SYSTEMS}}}
                if a.bulkhead
                else {}
            ),
        )
        twin = LiveTwin(tmp, sc, delay_scale=0.01, separate=not a.one_process)
        try:
            twin.start_mocks()
            twin.start_integration()
            feed = OrderFeed(sc, stream="bench")
            run_client(CrmSubmitter(twin.urls["crm"], feed).paced(40, 40.0))  # warm caches and connections
            twin.quiesce(10)
            if "overhead" not in a.skip:
                n = int(a.rate * a.seconds)
                c0 = cpu_seconds(twin)
                load0 = os.getloadavg()[0]
                ids, client_s = run_client(CrmSubmitter(twin.urls["crm"], feed).paced(n, a.rate))
                twin.drain(set(ids), timeout_s=120)
                cpu = cpu_per_order(c0, cpu_seconds(twin), len(ids))
                o = overhead(twin, ids)
                print(f"(a) overhead at {a.rate:g} orders/s for {a.seconds:g} s, mock latency {a.latency * 1e3:g} ms")
                print(
                    f"    orders {o['orders']}, reached ERP {o['reached_erp']}, {o['calls_per_order']:.1f} calls/order"
                )
                for k in ("e2e_ms", "mock_ms", "overhead_ms"):
                    v = o[k]
                    print(f"    {k:12s} p50 {v[50]:7.2f}  p95 {v[95]:7.2f}  p99 {v[99]:7.2f}")
                print(f"    ratio overhead p99 / target 15 ms: {o['overhead_ms'][99] / 15:.2f}")
                print("    CPU ms/order: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items())))
                print(
                    f"    load generator {client_s * 1e3 / max(1, len(ids)):.2f} ms CPU/order (not in the twin's);"
                    f" load average {load0:.1f} before, {os.getloadavg()[0]:.1f} after"
                )
                total = sum(cpu.values())
                print(
                    f"    CPU-bound ceiling: {1e3 / cpu.get('integration', float('nan')):.0f} orders/s per core for the"
                    f" integration alone, {1e3 / total:.0f} orders/s per core for the whole twin ({total:.1f} ms/order)"
                )
                twin.quiesce(10)
            if "throughput" not in a.skip:
                c0 = cpu_seconds(twin)
                load0 = os.getloadavg()[0]
                sub = CrmSubmitter(twin.urls["crm"], feed)
                (ids, t0), client_s = run_client(sub.burst(a.burst_seconds, a.concurrency))
                errors = sub.errors
                t = throughput(twin, ids, t0, drain_s=180)
                cpu = cpu_per_order(c0, cpu_seconds(twin), len(ids))
                bh = f"bulkhead {a.bulkhead} per system" if a.bulkhead else "profile's bulkheads"
                print(f"(b) throughput, {a.burst_seconds:g} s as fast as possible, concurrency {a.concurrency}, {bh}")
                print(
                    f"    submitted {t['submitted']} ({t['submit_per_s']:.0f}/s at the CRM), reached ERP"
                    f" {t['reached_erp']} in {t['span_s']:.1f} s: {t['erp_per_s']:.0f} orders/s end to end"
                    f" ({errors} submits failed at the CRM)"
                )
                print(f"    ratio orders/s / target 300: {t['erp_per_s'] / 300:.2f}")
                print(
                    f"    booking flow done (WMS fulfilment, or held by ERP: backorder/credit hold): "
                    f"{t['to_wms']} to WMS + {t['held_in_erp']} held in {t['booked_span_s']:.1f} s: "
                    f"{t['booked_per_s']:.0f} orders/s"
                )
                print("    CPU ms/order: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items())))
                print(
                    f"    load generator {client_s * 1e3 / max(1, len(ids)):.2f} ms CPU/order (not in the twin's);"
                    f" load average {load0:.1f} before, {os.getloadavg()[0]:.1f} after"
                )
        finally:
            twin.close()


if __name__ == "__main__":
    main()
