"""Throughput of the mock machinery over real HTTP, printed as ratios.

Three servers (uvicorn, loopback, each in its own process), driven in turn by a multi-process
client (each process an asyncio loop with keep-alive connections on raw streams):

- bare:        a FastAPI endpoint validating a pydantic model and echoing it;
- faults-off:  a mock-like order create through ``dispatch`` + ``Gateway`` + a core + the ledger,
               with no fault engine;
- idle-faults: the same with a FaultEngine holding fault windows that are configured but not active.

Prints req/s for each and the ratios mock/bare and idle-faults/faults-off. Also times
``FaultEngine.decide`` in process (no HTTP) for the idle cases.

    python benchmarks/bench_mock.py [--seconds 3] [--clients 2] [--connections 16] [--rounds 3]

``--seconds`` is per server, split over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import statistics
import time
from typing import Any, ClassVar

from fastapi import Request as HttpRequest
from pydantic import BaseModel

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


def _serve(kind: str, port: int) -> None:
    import uvicorn

    uvicorn.run(build_app(kind), host="127.0.0.1", port=port, log_level="error", access_log=False)


def _client(port: int, seconds: float, connections: int, q: Any) -> None:
    """A minimal keep-alive HTTP/1.1 client on raw asyncio streams: cheap enough that the server,
    not the client, is what gets measured."""
    import json

    payload = json.dumps(BODY).encode()
    request = (
        f"POST /orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload

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
                raise RuntimeError(f"unexpected status {status}")
            done += 1
        writer.close()
        return done

    async def main() -> int:
        deadline = time.perf_counter() + seconds
        return sum(await asyncio.gather(*(worker(deadline) for _ in range(connections))))

    q.put(asyncio.run(main()))


def _wait_ready(port: int) -> None:
    import httpx

    for _ in range(200):
        try:
            httpx.post(f"http://127.0.0.1:{port}/orders", json=BODY, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def _drive(port: int, seconds: float, clients: int, connections: int) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_client, args=(port, seconds, connections, q)) for _ in range(clients)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    total = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    return total / (time.perf_counter() - t0)


def measure(kinds: list[str], seconds: float, clients: int, connections: int, rounds: int) -> dict[str, float]:
    """Median req/s per server over ``rounds`` interleaved rounds: load on a shared machine drifts,
    and interleaving spreads the drift over all three instead of biasing one."""
    ctx = mp.get_context("spawn")
    ports = {k: _free_port() for k in kinds}
    servers = [ctx.Process(target=_serve, args=(k, ports[k]), daemon=True) for k in kinds]
    for sp in servers:
        sp.start()
    try:
        for k in kinds:
            _wait_ready(ports[k])
        samples: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(rounds):
            for k in kinds:
                samples[k].append(_drive(ports[k], seconds / rounds, clients, connections))
        return {k: statistics.median(v) for k, v in samples.items()}
    finally:
        for sp in servers:
            sp.terminate()
            sp.join(5)


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    for label, us in {**decide_cost(), **call_cost()}.items():
        print(f"cpu     {label:28s} {us:6.2f} us/call")
    rates = measure(["bare", "faults-off", "idle-faults"], a.seconds, a.clients, a.connections, a.rounds)
    for k, v in rates.items():
        print(f"http    {k:28s} {v:8.0f} req/s")
    print(f"ratio   mock(faults-off)/bare         {rates['faults-off'] / rates['bare']:.2f}")
    print(f"ratio   idle-faults/faults-off        {rates['idle-faults'] / rates['faults-off']:.2f}")


if __name__ == "__main__":
    main()
