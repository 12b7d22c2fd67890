"""The path every request to a mock takes, in either clock: admission (idempotency, and the fault
machinery added by ``mocks.faults``), then the core's synchronous ``handle``.

Split in two steps so that the time between them (injected latency) counts as "in flight" for
Idempotency-Key conflicts, under SimPy time and wall time alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from mocks.core.base import Request, Response, SystemCore
from mocks.core.idempotency import IdempotencyStore, fingerprint


@dataclass(slots=True)
class Admitted:
    """A request allowed through to the core; ``key`` set when it holds an idempotency record."""

    req: Request
    key: str | None


class Gateway:
    def __init__(self, core: SystemCore, idempotency: str = "honour") -> None:
        self.core = core
        self.idempotency = idempotency  # "honour" or "ignore" (legacy system)
        self.store = IdempotencyStore()

    def admit(self, req: Request) -> Admitted | Response:
        route = self.core.routes.get(req.op)
        key = req.idempotency_key
        if route is None or not route.mutating or key is None or self.idempotency == "ignore":
            return Admitted(req, None)
        answer = self.store.begin(req.client_id, key, fingerprint(req.op, req.body), self.core.env.now)
        return answer if answer is not None else Admitted(req, key)

    def execute(self, adm: Admitted) -> Response:
        resp = self.core.handle(adm.req)
        if adm.key is not None:
            self.store.complete(adm.req.client_id, adm.key, resp)
        return resp

    def fail(self, adm: Admitted) -> None:
        """The request failed before the core processed it (injected error, outage, reset)."""
        if adm.key is not None:
            self.store.abandon(adm.req.client_id, adm.key)

    def serve(self, req: Request) -> Response:
        """Admit and execute at once (no latency between): for tests and in-process use."""
        adm = self.admit(req)
        return adm if isinstance(adm, Response) else self.execute(adm)
