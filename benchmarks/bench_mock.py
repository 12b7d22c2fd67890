"""Throughput of one mock process over real HTTP, as CPU per request and ratios to bare FastAPI.

Four servers, each in its own process and served like ``twin mocks serve`` serves (uvicorn in a
uvloop loop, one write per response), driven by a separate client process (asyncio streams,
keep-alive connections):

- bare:            a FastAPI endpoint validating the ERP's own ``SalesOrderCreate`` and echoing it;
- bare-uvicorn:    the same served with uvicorn's own protocol (head and body written separately),
                   i.e. plain FastAPI + uvicorn, the ceiling before the mocks' server changes;
- erp:             the real ERP mock (``mocks.serve.build_mock``) on ``POST /api/v2/sales-orders``,
                   latency 0, fault engine detached (faults off);
- erp-idle-faults: the same with its fault engine and five fault windows configured but not active.

On a shared 2-core machine wall-clock req/s mostly measures who else is running, so each burst also
reads the server process's CPU time from ``/proc/<pid>/stat`` (utime + stime): **CPU per request is
the figure to trust**, req/s per core = 1e6 / CPU us. Rounds are interleaved (bare, erp, idle,
bare, ...) and medians reported; ratios are to the bare ceiling measured in the same run. The ERP
is reset before each of its bursts so every round takes the same code path (stock, credit).

Also times ``FaultEngine.decide`` and ``await Gateway.call`` in process (toy core, no HTTP).

    python benchmarks/bench_mock.py [--seconds 4] [--rounds 5] [--clients 1] [--connections 16]

``build_app("bare")`` (toy ``OrderIn`` on ``/orders``) is also used by ``bench_integration.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing as mp
import os
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from fastapi import Request as HttpRequest
from pydantic import BaseModel

# Module level: FastAPI resolves the endpoints' (string) annotations in the module's globals.
from mocks.erp.schemas import SalesOrderCreate

BODY = {"ExtRef": "801000000000000001", "SoldTo": "C000001", "Lines": [{"ItemNo": "SKU-00001", "Qty": 2, "UoM": "EA"}]}


class Line(BaseModel):
    ItemNo: str
    Qty: int
    UoM: str = "EA"


class OrderIn(BaseModel):
    ExtRef: str
    SoldTo: str
    Lines: list[Line]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_app(kind: str) -> Any:
    import simpy
    from fastapi import FastAPI

    from mocks.app import make_app
    from mocks.core.base import Request, Response, Route, SystemCore
    from mocks.faults import FaultEngine
    from mocks.gateway import Gateway
    from mocks.http import dispatch
    from sim.distributions import Fixed
    from sim.rng import Streams
    from sim.scenario import ApiProfile, FaultWindow

    if kind == "bare":
        app = FastAPI()

        @app.post("/orders", status_code=201)
        async def create(body: OrderIn) -> dict[str, Any]:
            return {"SalesOrderNo": "SO-0000001", **body.model_dump()}

        return app

    class BenchCore(SystemCore):
        system = "erp"
        routes: ClassVar[dict[str, Route]] = {"create_order": Route("POST", "/orders", mutating=True)}

        def op_create_order(self, req: Request) -> Response:
            no = f"SO-{len(self.ledger) + 1:07d}"
            self.record(req, "sales_order.created", no, ref=req.body["ExtRef"], lines=req.body["Lines"])
            return Response(201, {"SalesOrderNo": no, **req.body})

    from fastapi import APIRouter

    router = APIRouter()

    @router.post("/orders")
    async def create_order(request: HttpRequest, body: OrderIn) -> Any:
        return await dispatch(request, "create_order", body.model_dump())

    from mocks.ledger import Ledger

    core = BenchCore(simpy.Environment(), Ledger("erp", max_entries=100_000))
    fe = None
    if kind == "idle-faults":
        windows = [
            FaultWindow(name=f"w{i}", system="erp", kind=k, start=1e6 + i, duration=60, probability=0.5, status=503)
            for i, k in enumerate(["error", "outage", "timeout", "reset", "truncate"])
        ]
        fe = FaultEngine("erp", ApiProfile(latency=Fixed(value=0)), windows, Streams(1))
    gw = Gateway(core, "honour", fe)
    return make_app(core, router, gw)


# --------------------------------------------------------------------------------------- servers

ERP_PATH = "/api/v2/sales-orders"


def _bench_scenario() -> Any:
    """Default world, ERP latency 0 (we measure the machinery, not an injected sleep)."""
    from sim.scenario import parse_scenario

    return parse_scenario({"name": "bench-mock", "systems": {"erp": {"latency": {"kind": "fixed", "value": 0}}}})


def erp_body() -> bytes:
    """A valid order create for the bench scenario's master data (prices must match the ERP's)."""
    import json

    from sim.masterdata import generate
    from sim.rng import Streams

    scen = _bench_scenario()
    md = generate(scen.masterdata, Streams(scen.seed))
    cust = md.customers[0].customer_no
    lines = [{"ItemNo": k.sku, "Qty": 1, "UoM": "EA", "UnitPrice": md.price(cust, k.sku)} for k in md.skus[:2]]
    return json.dumps(
        {"ExtRef": "801BENCH", "SoldTo": cust, "Plant": "WH01", "RequestedDate": "20260710", "Lines": lines}
    ).encode()


def build_server_app(kind: str) -> Any:
    """The apps the HTTP comparison serves.

    - ``bare``: a FastAPI endpoint taking the ERP's own ``SalesOrderCreate`` model and echoing it
      (the ceiling: uvicorn + FastAPI + the same pydantic validation, nothing else);
    - ``erp``: the real ERP mock as ``twin mocks serve`` builds it (core, ledger, journal, live
      clock, webhook deliverer, ``/_twin`` routes), fault engine detached (faults off);
    - ``erp-idle-faults``: the same with its fault engine and five fault windows of different kinds,
      configured but not active (they start in a year).
    """
    if kind == "bare":
        from fastapi import FastAPI

        app = FastAPI()

        @app.post(ERP_PATH, status_code=201)
        async def create(body: SalesOrderCreate) -> dict[str, Any]:
            return {"SalesOrderNo": "SO-0000001", **body.model_dump(mode="json", exclude_none=True)}

        return app

    from mocks.serve import build_mock
    from sim.scenario import FaultWindow

    mock = build_mock("erp", _bench_scenario())
    if kind == "erp":
        mock.app.state.gateway.fault_engine = None
    else:
        mock.engine.set_windows(
            [
                FaultWindow(name=f"w{i}", system="erp", kind=k, start=3.2e7 + i, duration=60, probability=0.5)
                for i, k in enumerate(["error", "outage", "timeout", "reset", "truncate"])
            ]
        )
    return mock.app


def _serve_erp(kind: str, port: int) -> None:
    """Serve like ``mocks.serve`` does (``uvicorn.Server`` in a uvloop loop, one write per
    response), so bare and mock pay the same server costs; ``bare-uvicorn`` with uvicorn's own
    protocol (two writes per response), the ceiling as plain FastAPI + uvicorn serve it."""
    import asyncio

    from mocks.serve import _loop_factory, _tcp_socket, serve_apps

    app = build_server_app("bare" if kind == "bare-uvicorn" else kind)
    gc.collect()
    gc.freeze()  # as mocks.serve does once the mocks are built
    sock = _tcp_socket()
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve_apps({kind: app}, {kind: sock}, log_level="error", coalesce_writes=kind != "bare-uvicorn"))


# --------------------------------------------------------------------------------------- load


def _client(port: int, request: bytes, seconds: float, connections: int, q: Any) -> None:
    """A minimal keep-alive HTTP/1.1 client on raw asyncio streams (uvloop when present): cheap
    enough that the server, not the client, is what gets measured."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def worker(deadline: float) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done = 0
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status != 201:
                raise RuntimeError(f"unexpected status {status}: {head[:200]!r}")
            done += 1
        writer.close()
        return done

    async def main() -> int:
        deadline = time.perf_counter() + seconds
        return sum(await asyncio.gather(*(worker(deadline) for _ in range(connections))))

    try:
        q.put(asyncio.run(main()))
    except Exception as e:  # the parent waits on the queue: a silent death would hang it
        q.put(repr(e))
        raise


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used: on a shared box CPU per request is the
    figure that holds still while wall-clock rates follow whoever else is running."""
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / _TICK


_TICK = os.sysconf("SC_CLK_TCK")


def _wait_ready(port: int, path: str = "/orders", body: bytes | None = None) -> None:
    import httpx

    for _ in range(400):
        try:
            httpx.post(
                f"http://127.0.0.1:{port}{path}",
                content=body or json.dumps(BODY).encode(),
                headers={"content-type": "application/json"},
                timeout=1,
            )
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def _drive(pid: int, port: int, request: bytes, seconds: float, clients: int, connections: int) -> tuple[float, float]:
    """(requests per wall second, server CPU microseconds per request) for one load burst."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_client, args=(port, request, seconds, connections, q)) for _ in range(clients)]
    for p in procs:
        p.start()
    # Client start-up (spawn + imports) costs the server nothing; the window is the run itself.
    c0, t0 = proc_cpu(pid), time.perf_counter()
    got = [q.get() for _ in procs]
    wall, cpu = time.perf_counter() - t0, proc_cpu(pid) - c0
    for p in procs:
        p.join()
    bad = [g for g in got if not isinstance(g, int)]
    if bad:
        raise RuntimeError(f"client failed: {bad[0]}")
    total = sum(got)
    return total / wall, cpu / max(total, 1) * 1e6


def erp_request(port: int, body: bytes, reset: bool = True) -> bytes:
    """A fresh token and the raw order-create request carrying it (bench_integration uses it too).
    ``reset`` first, so every round starts from the same stock and credit (otherwise later rounds
    take other code paths: backorders, credit holds)."""
    import httpx

    base = f"http://127.0.0.1:{port}"
    if reset:
        hdr = {"X-Twin-Admin-Token": _admin_token()}
        httpx.post(f"{base}/_twin/reset", headers=hdr).raise_for_status()
    tok = httpx.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "bench",
            "client_secret": "twin-secret",
            "scope": "orders",
        },
    ).json()["access_token"]
    return (
        f"POST {ERP_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {tok}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _admin_token() -> str:
    from mocks.app import default_admin_token

    return default_admin_token()


@dataclass
class Sample:
    rps: float
    cpu_us: float


def measure(kinds: list[str], seconds: float, clients: int, connections: int, rounds: int) -> dict[str, list[Sample]]:
    """Interleaved rounds (bare, erp, erp-idle-faults, bare, ...): load on a shared machine drifts,
    and interleaving spreads the drift over all servers instead of biasing one."""
    ctx = mp.get_context("spawn")
    ports = {k: _free_port() for k in kinds}
    servers = {k: ctx.Process(target=_serve_erp, args=(k, ports[k]), daemon=True) for k in kinds}
    for sp in servers.values():
        sp.start()
    body = erp_body()
    try:
        for k in kinds:
            _wait_ready(ports[k], ERP_PATH, body)
        samples: dict[str, list[Sample]] = {k: [] for k in kinds}
        for r in range(rounds):
            # Rotate who goes first too: a server right after another one's burst can pay for it
            # (caches, the other engineers' jobs waking up), which must not always be the same one.
            for k in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
                if k.startswith("bare"):
                    request = (
                        f"POST {ERP_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{ports[k]}\r\n"
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                    ).encode() + body
                else:
                    request = erp_request(ports[k], body)
                pid = servers[k].pid
                assert pid is not None
                rps, cpu = _drive(pid, ports[k], request, seconds, clients, connections)
                samples[k].append(Sample(rps, cpu))
        return samples
    finally:
        for sp in servers.values():
            sp.terminate()
            sp.join(5)


def asgi_cost(kinds: list[str], n: int = 2000, rounds: int = 7) -> dict[str, float]:
    """CPU microseconds per order create calling each app's ASGI callable directly (no sockets, no
    uvicorn, no client): the app's own cost, steady even on a busy machine. Interleaved rounds,
    best of each (other load only ever adds time)."""
    body = erp_body()

    async def one(kind: str, app: Any) -> float:
        headers = [(b"host", b"x"), (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if kind != "bare":
            import httpx

            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
                # Same stock and credit every round: no backorders, releases or webhooks later on.
                admin = {"X-Twin-Admin-Token": _admin_token()}
                (await c.post("/_twin/reset", headers=admin)).raise_for_status()
                form = {"grant_type": "client_credentials", "client_id": "b", "client_secret": "twin-secret"}
                tok = (await c.post("/oauth/token", data={**form, "scope": "orders"})).json()["access_token"]
            headers.append((b"authorization", b"Bearer " + tok.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": ERP_PATH,
            "raw_path": ERP_PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        statuses: set[int] = set()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(m: dict[str, Any]) -> None:
            if m["type"] == "http.response.start":
                statuses.add(m["status"])

        t0 = time.process_time()
        for _ in range(n):
            await app(dict(scope), receive, send)
        if statuses != {201}:
            raise RuntimeError(f"{kind}: statuses {statuses}")
        return (time.process_time() - t0) / n * 1e6

    async def main() -> dict[str, float]:
        apps = {k: build_server_app(k) for k in kinds}
        clocks = [c for a in apps.values() if (c := getattr(a.state, "clock", None)) is not None]
        for c in clocks:
            c.start()  # what the lifespan does: the live clock runs during requests
        gc.collect()
        gc.freeze()
        best: dict[str, float] = {}
        for _ in range(rounds):
            for k, app in apps.items():
                us = await one(k, app)
                best[k] = min(us, best.get(k, us))
        for c in clocks:
            await c.stop()
        return best

    return asyncio.run(main())


def decide_cost(n: int = 200_000) -> dict[str, float]:
    from mocks.faults import FaultEngine
    from mocks.gateway import Gateway
    from sim.distributions import Fixed
    from sim.rng import Streams
    from sim.scenario import ApiProfile, FaultWindow

    windows = [
        FaultWindow(name=f"w{i}", system="erp", kind="error", start=1e6 + i, duration=60, probability=0.5)
        for i in range(10)
    ]
    out = {}
    for label, fe in (
        ("engine, no windows", FaultEngine("erp", ApiProfile(latency=Fixed(value=0)), [], Streams(1))),
        ("engine, 10 idle windows", FaultEngine("erp", ApiProfile(latency=Fixed(value=0)), windows, Streams(1))),
    ):
        t0 = time.perf_counter()
        for i in range(n):
            fe.decide("create_order", "c", float(i % 1000), 0, 0.0)
        out[label] = (time.perf_counter() - t0) / n * 1e6
    gw = Gateway.__new__(Gateway)
    gw.fault_engine = None
    t0 = time.perf_counter()
    for _ in range(n):
        gw.decide(None)  # type: ignore[arg-type]
    out["gateway.decide, no engine"] = (time.perf_counter() - t0) / n * 1e6
    return out


def call_cost(n: int = 20_000, rounds: int = 4) -> dict[str, float]:
    """``await Gateway.call`` end to end in process (core + ledger, no HTTP): faults off vs idle.
    Interleaved rounds on fresh apps, best of each (the machine's other load only adds time)."""
    import gc

    from mocks.core.base import Request

    best: dict[str, float] = {}
    for _ in range(rounds):
        for kind in ("faults-off", "idle-faults"):
            gw = build_app(kind).state.gateway
            req = Request("create_order", {**BODY}, {}, {"x-correlation-id": "c"}, "bench")

            async def loop(gw: Any = gw, req: Request = req) -> float:
                t0 = time.perf_counter()
                for _ in range(n):
                    await gw.call(req)
                return time.perf_counter() - t0

            us = asyncio.run(loop()) / n * 1e6
            best[f"gateway.call, {kind}"] = min(us, best.get(f"gateway.call, {kind}", us))
            del gw
            gc.collect()
    return best


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="per server per round")
    ap.add_argument("--clients", type=int, default=1, help="client processes")
    ap.add_argument("--connections", type=int, default=16, help="keep-alive connections per client")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-in-process", action="store_true", help="skip the in-process gateway timings")
    ap.add_argument("--no-plain-bare", action="store_true", help="skip bare-uvicorn (uvicorn's own protocol)")
    a = ap.parse_args()
    if not a.no_in_process:
        for label, us in {**decide_cost(), **call_cost()}.items():
            print(f"cpu     {label:28s} {us:6.2f} us/call")
    kinds = ["bare", "erp", "erp-idle-faults"]
    app_us = asgi_cost(kinds)
    for k in kinds:
        print(f"asgi    {k:28s} {app_us[k]:6.1f} us/request in process (no sockets)")
    print(f"ratio   erp/bare in process        {app_us['bare'] / app_us['erp']:.2f}")
    http_kinds = kinds if a.no_plain_bare else ["bare", "bare-uvicorn", "erp", "erp-idle-faults"]
    samples = measure(http_kinds, a.seconds, a.clients, a.connections, a.rounds)
    cpu = {k: _median([s.cpu_us for s in v]) for k, v in samples.items()}
    rps = {k: _median([s.rps for s in v]) for k, v in samples.items()}
    print(
        f"http    {'server':28s} {'req/s wall':>10s} {'CPU us/req':>10s} {'req/s/core':>10s}  (medians of {a.rounds})"
    )
    for k in http_kinds:
        spread = ", ".join(f"{s.cpu_us:.0f}" for s in samples[k])
        print(f"http    {k:28s} {rps[k]:10.0f} {cpu[k]:10.0f} {1e6 / cpu[k]:10.0f}  CPU per round: {spread}")
    print(f"ratio   erp/bare by CPU                {cpu['bare'] / cpu['erp']:.2f}   (target >= 0.65)")
    if "bare-uvicorn" in cpu:
        print(f"ratio   erp/bare-uvicorn by CPU        {cpu['bare-uvicorn'] / cpu['erp']:.2f}")
    print(f"ratio   erp/bare by wall req/s         {rps['erp'] / rps['bare']:.2f}")
    print(f"ratio   idle-faults cost by CPU        {cpu['erp-idle-faults'] / cpu['erp'] - 1:+.1%}   (target <= +10 %)")
    print(f"ratio   erp req/s per core / 5,000     {1e6 / cpu['erp'] / 5000:.2f}")
    per_round = [b.cpu_us / m.cpu_us for b, m in zip(samples["bare"], samples["erp"], strict=True)]
    print("ratio   erp/bare by CPU, per round     " + ", ".join(f"{r:.2f}" for r in per_round))


if __name__ == "__main__":
    main()
