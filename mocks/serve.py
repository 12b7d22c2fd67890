"""Serve the four mocks live: ``twin mocks serve`` (or ``python -m mocks.serve``).

Each mock hosts its own slice of the world: its own SimPy env advanced by a ``LiveClock``, its own
``FaultEngine`` (scenario profile + fault windows for that system) and ``WebhookDeliverer``. The
system modules (``mocks.<system>.api`` and ``.core``) are imported lazily, so a missing system fails
with a clear message rather than an import error at start-up.

One process (default): several ``uvicorn.Server`` instances in one asyncio loop; signals are handled
once for all of them. Separate (``--separate``): one child process per mock (``python -m mocks.serve
--only <system>``), terminated together on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import simpy
import uvicorn
from fastapi import FastAPI

from mocks.app import configure_app, default_admin_token, make_app
from mocks.core.base import SystemCore
from mocks.faults import FaultEngine
from mocks.gateway import ConnectionDropped
from mocks.webhooks import WebhookDeliverer
from sim.clock import LiveClock
from sim.rng import Streams
from sim.scenario import Scenario, load_scenario

SYSTEMS = ("crm", "erp", "wms", "carrier")
DEFAULT_PORT_BASE = 8701  # crm 8701, erp 8702, wms 8703, carrier 8704
DEFAULT_INTEGRATION = "http://127.0.0.1:8700"
DEFAULT_WEBHOOK_SECRET = "twin-webhook-secret"
GRACEFUL_SHUTDOWN_S = 2  # do not wait for requests hung by an injected timeout


class MockUnavailable(RuntimeError):
    pass


# --------------------------------------------------------------------------------------- building


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and name.startswith(e.name):
            raise MockUnavailable(f"mock system module {name} is not available ({e})") from None
        raise


def core_class(system: str) -> type[SystemCore]:
    mod = _import(f"mocks.{system}.core")
    for obj in vars(mod).values():
        if isinstance(obj, type) and issubclass(obj, SystemCore) and obj is not SystemCore and obj.system == system:
            return obj
    raise MockUnavailable(f"mocks.{system}.core defines no SystemCore subclass with system = {system!r}")


@dataclass
class Mock:
    system: str
    app: FastAPI
    core: SystemCore
    clock: LiveClock
    deliverer: WebhookDeliverer
    engine: FaultEngine


def build_mock(
    system: str,
    scenario: Scenario,
    *,
    webhook_base: str = DEFAULT_INTEGRATION,
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
    admin_token: str | None = None,
    webhook_delay_scale: float = 1.0,
    clock_epoch: float | None = None,
) -> Mock:
    """One mock with its own env, clock, faults and webhook delivery, ready for uvicorn.

    ``clock_epoch`` (Unix seconds): simulated time 0 is that wall instant, the same for every mock
    of a live run (``sim.live``); in the future the world holds at 0 until then (``PUT /_twin/clock``
    can still move it). Without it each mock's clock starts when its server does."""
    from sim.masterdata import generate

    cls = core_class(system)
    api = _import(f"mocks.{system}.api")
    streams = Streams(scenario.seed)
    md = generate(scenario.masterdata, streams)  # same seed: identical master data in every mock
    engine = FaultEngine(system, scenario.systems[system], scenario.faults, streams)
    box: dict[str, SystemCore] = {}
    deliverer = WebhookDeliverer(
        webhook_base,
        webhook_secret,
        scenario.webhooks,
        engine,
        now=lambda: box["core"].env.now,
        start=scenario.start,
        delay_scale=webhook_delay_scale,
        latency=scenario.webhooks.latency.sampler(streams.py(f"webhook.{system}")),
    )

    def new_core() -> SystemCore:
        core = cls(simpy.Environment(), md, scenario, streams, emit=deliverer.enqueue)  # type: ignore[call-arg]
        if system == "erp":
            # Served live, a token must last an hour of *wall* time and say so in wall seconds:
            # clients (the reference runtime, any SUT) time their cache by the wall clock.
            wall_ttl = float(getattr(core, "token_ttl", 3600.0))
            core.token_ttl = wall_ttl * scenario.live.compression  # type: ignore[attr-defined]
            core.token_expires_in = wall_ttl  # type: ignore[attr-defined]
        box["core"] = core
        return core

    core = new_core()
    clock = LiveClock.from_settings(core.env, scenario.live)
    if clock_epoch is not None:
        clock.anchor_epoch(clock_epoch)
    create = getattr(api, "create_app", None)
    app = create(core) if create is not None else make_app(core, api.router)
    configure_app(
        app,
        fault_engine=engine,
        clock=clock,
        deliverer=deliverer,
        admin_token=admin_token or default_admin_token(),
        reset_factory=new_core,
    )
    return Mock(system, app, core, clock, deliverer, engine)


# --------------------------------------------------------------------------------------- sockets


def _tcp_socket() -> socket.socket:
    # IPPROTO_TCP must be explicit: asyncio only sets TCP_NODELAY on accepted connections when the
    # listening socket says so, and without it keep-alive requests wait ~40 ms on delayed ACKs.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return s


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``port``, or on any free port when it is taken (or 0)."""
    for p in (port, 0) if port else (0,):
        s = _tcp_socket()
        try:
            s.bind((host, p))
        except OSError as e:
            s.close()
            if e.errno == errno.EADDRINUSE and p:
                continue
            raise
        s.listen(2048)
        s.set_inheritable(True)
        return s
    raise OSError(f"no free port on {host}")  # pragma: no cover


def ports_for(systems: Sequence[str], port_base: int) -> dict[str, int]:
    if port_base == 0:
        return dict.fromkeys(systems, 0)
    return {s: port_base + SYSTEMS.index(s) for s in systems}


# --------------------------------------------------------------------------------------- serving


class _Server(uvicorn.Server):
    # Several servers share one loop: signals are handled once, by ``serve_apps``.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _QuietDrops(logging.Filter):
    """An injected reset is not a server error: keep it out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


class _CoalescingTransport:
    """Holds what uvicorn writes during one event-loop step and writes it in one piece at the end
    of the step (or at ``close``): uvicorn writes a response's head and body separately, each a
    ``send`` syscall through loopback TCP, and one of them was ~15 % of a mock's CPU per request.
    Everything else goes straight to the real transport."""

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        pending = self._pending
        if pending:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _http_protocol() -> Any:
    """uvicorn's httptools protocol writing through ``_CoalescingTransport``; "auto" without
    httptools (uvicorn then picks h11, which is slower anyway)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn without extras
        return "auto"

    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    return CoalescingHttpToolsProtocol


async def serve_apps(
    apps: dict[str, FastAPI],
    sockets: dict[str, socket.socket],
    *,
    log_level: str = "warning",
    ready: Any = None,
    stop: asyncio.Event | None = None,
    coalesce_writes: bool = True,
) -> None:
    """Run one uvicorn server per app in this loop until SIGINT/SIGTERM or ``stop`` is set.
    ``coalesce_writes=False``: uvicorn's own protocol (benchmarks compare the two)."""
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    servers = {
        name: _Server(
            uvicorn.Config(
                app,
                log_level=log_level,
                lifespan="on",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                access_log=False,
                http=_http_protocol() if coalesce_writes else "auto",
            )
        )
        for name, app in apps.items()
    }
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    async def _stopper() -> None:
        await stop.wait()
        for s in servers.values():
            s.should_exit = True

    async def _announce() -> None:
        while not all(s.started for s in servers.values()):
            if any(t.done() for t in tasks):
                return
            await asyncio.sleep(0.02)
        if ready is not None:
            ready({n: sockets[n].getsockname()[1] for n in servers})

    tasks = [asyncio.create_task(s.serve(sockets=[sockets[n]])) for n, s in servers.items()]
    helpers = [asyncio.create_task(_stopper()), asyncio.create_task(_announce())]
    try:
        await asyncio.gather(*tasks)
    finally:
        for h in helpers:
            h.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


def _loop_factory() -> Any:
    """uvloop when installed (uvicorn[standard] brings it): ``uvicorn.run`` picks it by itself, but
    the mocks drive ``Server.serve`` in a loop of their own, which would otherwise be the plain
    asyncio loop; uvloop serves the same requests with noticeably less CPU."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn without extras
        return None
    return uvloop.new_event_loop


def print_urls(host: str, ports: dict[str, int]) -> None:
    for name, port in ports.items():
        print(f"{name:8s} http://{host}:{port}", flush=True)


def run_one_process(
    scenario: Scenario,
    *,
    systems: Sequence[str] = SYSTEMS,
    host: str = "127.0.0.1",
    port_base: int = DEFAULT_PORT_BASE,
    exact_ports: dict[str, int] | None = None,
    **build_kw: Any,
) -> None:
    mocks = {s: build_mock(s, scenario, **build_kw) for s in systems}
    # Master data and modules live as long as the process: out of the collector's sight, the full
    # collections that request garbage triggers no longer walk them (~100k objects per mock).
    gc.collect()
    gc.freeze()
    wanted = exact_ports or ports_for(systems, port_base)
    sockets = {}
    for s in systems:
        if exact_ports:  # a child of --separate: the parent chose the port
            sock = _tcp_socket()
            sock.bind((host, wanted[s]))
            sock.listen(2048)
            sockets[s] = sock
        else:
            sockets[s] = bind(host, wanted[s])
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(
                serve_apps({s: m.app for s, m in mocks.items()}, sockets, ready=lambda ports: print_urls(host, ports))
            )
    finally:
        for sock in sockets.values():
            sock.close()


def run_separate(
    scenario_path: str | None,
    overrides: Sequence[str] = (),
    *,
    systems: Sequence[str] = SYSTEMS,
    host: str = "127.0.0.1",
    port_base: int = DEFAULT_PORT_BASE,
    **build_kw: Any,
) -> int:
    wanted = ports_for(systems, port_base)
    ports = {}
    for s in systems:  # choose now, release, let the child bind: a small race, reported if lost
        sock = bind(host, wanted[s])
        ports[s] = sock.getsockname()[1]
        sock.close()
    procs: list[subprocess.Popen[bytes]] = []
    env = dict(os.environ)
    secret = build_kw.pop("webhook_secret", None)
    if secret:
        env["TWIN_WEBHOOK_SECRET"] = secret  # not on a command line other users can read
    for s in systems:
        cmd = [sys.executable, "-m", "mocks.serve", "--only", s, "--host", host, "--exact-port", str(ports[s])]
        if scenario_path:
            cmd.append(scenario_path)
        for o in overrides:
            cmd += ["--set", o]
        for k, v in build_kw.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        procs.append(subprocess.Popen(cmd, env=env))
    try:
        while all(p.poll() is None for p in procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                procs[0].wait(timeout=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=GRACEFUL_SHUTDOWN_S + 3)
            except subprocess.TimeoutExpired:
                p.kill()
    return max((p.returncode or 0) for p in procs)


def load(scenario_path: str | None, overrides: Sequence[str] = ()) -> Scenario:
    if scenario_path is None:
        from sim.scenario import apply_set, parse_scenario

        data: dict[str, Any] = {"name": "default"}
        for o in overrides:
            data = apply_set(data, o)
        return parse_scenario(data)
    return load_scenario(scenario_path, list(overrides))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mocks.serve", description=__doc__.split("\n")[0])
    ap.add_argument("scenario", nargs="?")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--only", action="append", choices=SYSTEMS)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    ap.add_argument("--exact-port", type=int)
    ap.add_argument("--separate", action="store_true")
    ap.add_argument("--webhook-base", default=os.environ.get("TWIN_INTEGRATION_URL", DEFAULT_INTEGRATION))
    ap.add_argument("--webhook-secret", default=os.environ.get("TWIN_WEBHOOK_SECRET", DEFAULT_WEBHOOK_SECRET))
    ap.add_argument("--webhook-delay-scale", type=float, default=1.0)
    ap.add_argument("--clock-epoch", type=float, help="Unix seconds at which simulated time 0 starts")
    a = ap.parse_args(argv)
    systems = tuple(a.only or SYSTEMS)
    kw = {
        "webhook_base": a.webhook_base,
        "webhook_secret": a.webhook_secret,
        "webhook_delay_scale": a.webhook_delay_scale,
    }
    if a.clock_epoch is not None:
        kw["clock_epoch"] = a.clock_epoch
    scenario = load(a.scenario, a.overrides)
    try:
        if a.separate:
            for s in systems:  # fail early, in the parent, on a missing system
                core_class(s)
            return run_separate(a.scenario, a.overrides, systems=systems, host=a.host, port_base=a.port_base, **kw)
        exact = {systems[0]: a.exact_port} if a.exact_port and len(systems) == 1 else None
        run_one_process(scenario, systems=systems, host=a.host, port_base=a.port_base, exact_ports=exact, **kw)
    except MockUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
