"""What every mock system's pure domain core shares.

A core is a plain object living in a SimPy ``env``: it reads time only as ``env.now`` (simulated
seconds since the scenario start), never does I/O, and answers requests synchronously through
``handle(Request) -> Response``. The FastAPI adapter (live mode) and the simulated network
(virtual mode) are both thin callers of ``handle``; latency, faults and idempotency-in-flight
handling wrap it from outside (``mocks.faults`` and ``mocks.core.idempotency``).

Routes are data (``Route``): the FastAPI adapter mounts them, and the live interpreter of the
reference integration turns ``Call(system, operation, ...)`` into HTTP with the same table.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import simpy

from mocks.ledger import Ledger

if TYPE_CHECKING:
    from sim.masterdata import MasterData
    from sim.rng import Streams
    from sim.scenario import Scenario


@dataclass(slots=True)
class Request:
    op: str
    body: Any = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    client_id: str = "anonymous"

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def correlation_id(self) -> str | None:
        return self.headers.get("x-correlation-id")


@dataclass(slots=True)
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def error(status: int, code: str, message: str, field_path: str | None = None) -> Response:
    """The documented error body every mock uses for 4xx it decides itself."""
    body: dict[str, Any] = {"error": code, "message": message}
    if field_path is not None:
        body["field"] = field_path
    return Response(status, body)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # FastAPI style, e.g. "/api/v2/sales-orders/{order_no}"
    mutating: bool = False  # mutating routes honour Idempotency-Key
    scope: str | None = None  # OAuth scope required (ERP)


@dataclass(slots=True)
class WebhookEvent:
    """A webhook a core wants delivered to the integration; delivery (signing, retries, faults) is
    done by the transport of the clock in use."""

    id: str
    type: str
    source: str
    occurred_at: float
    data: dict[str, Any]


Emit = Callable[[WebhookEvent], None]


def _drop(_: WebhookEvent) -> None:
    return None


class SystemCore:
    """Base class: dispatch by operation name to ``op_<name>`` methods."""

    system: ClassVar[str] = ""
    routes: ClassVar[dict[str, Route]] = {}

    def __init__(self, env: simpy.Environment, ledger: Ledger | None = None, emit: Emit | None = None) -> None:
        self.env = env
        self.ledger = ledger if ledger is not None else Ledger(self.system)
        self.emit: Emit = emit or _drop
        self._event_ids = itertools.count(1)
        # op name -> bound ``op_<name>``, looked up once: the name concatenation and attribute
        # lookup per request were ~1 % of a virtual run.
        self._ops: dict[str, Callable[[Request], Response]] = {}

    def handle(self, req: Request) -> Response:
        op = req.op
        fn = self._ops.get(op)
        if fn is None:
            fn = getattr(self, "op_" + op, None)
            if fn is not None:
                self._ops[op] = fn
        if fn is None or op not in self.routes:
            return error(404, "unknown_operation", f"{self.system} has no operation {op!r}")
        return fn(req)

    def record(self, req: Request | None, kind: str, entity: str, ref: str | None = None, **data: Any) -> None:
        if req is None:
            self.ledger.append(self.env.now, kind, entity, ref, None, None, data)
        else:
            h = req.headers
            self.ledger.append(self.env.now, kind, entity, ref, h.get("x-correlation-id"), h.get("idempotency-key"), data)

    def new_event(self, type_: str, data: dict[str, Any]) -> WebhookEvent:
        ev = WebhookEvent(f"{self.system}-evt-{next(self._event_ids):08d}", type_, self.system, self.env.now, data)
        self.emit(ev)
        return ev


class DomainCore(SystemCore):
    """A mock system's core within the simulated world: master data, scenario and random streams
    come in the same way for every system; each sets up its own state in ``setup``."""

    def __init__(
        self,
        env: simpy.Environment,
        md: MasterData,
        scenario: Scenario,
        streams: Streams,
        ledger: Ledger | None = None,
        emit: Emit | None = None,
    ) -> None:
        super().__init__(env, ledger, emit)
        self.md = md
        self.scenario = scenario
        self.streams = streams
        self.setup()

    def setup(self) -> None:
        """Build the system's state from ``self.md``, ``self.scenario`` and ``self.streams``."""
