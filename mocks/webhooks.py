"""Webhooks from the mocks to the integration: envelope, HMAC signing, faulted delivery with retries.

Envelope (``docs/internals.md``): ``POST <target>`` with JSON ``{id, type, source, occurred_at, data}``
and headers ``X-Twin-Event-Id``, ``X-Twin-Signature: sha256=<hex HMAC-SHA256 of the raw body>``,
``X-Twin-Timestamp``. A 2xx is delivered; anything else, or a timeout, is retried after
``WebhookPolicy.backoff`` doubling each attempt, up to ``max_attempts``.

``WebhookDeliverer`` is the live transport: a core's ``emit`` is the deliverer's ``enqueue``. Webhook
faults are decided by ``FaultEngine.decide_webhook`` at the event's simulated time. Delays from the
scenario (fault delays, redelivery, backoff) are in scenario seconds and multiplied by
``delay_scale`` to get wall seconds (1.0 by default; ``1 / compression`` runs them on the live clock).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from mocks.core.base import WebhookEvent
from mocks.faults import OK_WEBHOOK, FaultEngine, WebhookDecision
from sim.http11 import Http11Transport
from sim.scenario import WebhookPolicy

log = logging.getLogger(__name__)

DEFAULT_START = "2026-07-06T00:00:00"


# --------------------------------------------------------------------------------------- signing


def sign(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, signature: str | None) -> bool:
    """Constant-time check of an ``X-Twin-Signature`` header against the raw body."""
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, body), signature.strip())


# --------------------------------------------------------------------------------------- envelope


def occurred_at_iso(t: float, start: str = DEFAULT_START) -> str:
    """Simulated seconds since the scenario start -> ISO 8601 UTC with ``Z``."""
    dt = datetime.fromisoformat(start) + timedelta(seconds=t)
    return dt.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def envelope(ev: WebhookEvent, start: str = DEFAULT_START, data: Any = None) -> dict[str, Any]:
    return envelope_at(ev, occurred_at_iso(ev.occurred_at, start), data)


def envelope_at(ev: WebhookEvent, occurred_at: str, data: Any = None) -> dict[str, Any]:
    """The envelope with ``occurred_at`` already rendered (the virtual network caches renderings)."""
    return {
        "id": ev.id,
        "type": ev.type,
        "source": ev.source,
        "occurred_at": occurred_at,
        "data": ev.data if data is None else data,
    }


def encode(env: dict[str, Any]) -> bytes:
    return json.dumps(env, separators=(",", ":"), sort_keys=False).encode()


def malform(body: bytes) -> bytes:
    """Not JSON any more: cut short, as a crashed serialiser would leave it."""
    return body[: max(1, len(body) // 2)]


def headers_for(ev_id: str, body: bytes, secret: str | bytes, timestamp: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-twin-event-id": ev_id,
        "x-twin-signature": sign(secret, body),
        "x-twin-timestamp": timestamp,
    }


# --------------------------------------------------------------------------------------- schedule


def retry_delays(policy: WebhookPolicy) -> list[float]:
    """Delays before attempts 2..max_attempts: backoff, 2*backoff, 4*backoff, ..."""
    return [policy.backoff * 2**i for i in range(policy.max_attempts - 1)]


# --------------------------------------------------------------------------------------- delivery


@dataclass(slots=True)
class DeliveryAttempt:
    event_id: str
    type: str
    source: str
    copy: int  # 0 = the original, 1.. = injected duplicates
    attempt: int  # 1-based
    t: float  # simulated time of the attempt
    status: int | None  # None: no HTTP answer (timeout, connection error) or not sent (dropped)
    outcome: str  # delivered | failed | error | dropped | malformed-sent | no_target
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WebhookDeliverer:
    def __init__(
        self,
        targets: Mapping[str, str] | str,
        secret: str | bytes,
        policy: WebhookPolicy | None = None,
        fault_engine: FaultEngine | None = None,
        client: httpx.AsyncClient | None = None,
        *,
        now: Callable[[], float] | None = None,
        start: str = DEFAULT_START,
        delay_scale: float = 1.0,
        journal_size: int = 10_000,
        max_concurrency: int = 32,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        latency: Callable[[], float] | None = None,
    ) -> None:
        """``targets``: URL per event source (``{"crm": "http://127.0.0.1:8700/webhooks/crm"}``), or
        one base URL to which ``/webhooks/<source>`` is appended. ``now``: simulated time for the
        attempt journal (e.g. ``lambda: env.now``)."""
        self.targets = targets
        self.secret = secret
        self.policy = policy or WebhookPolicy()
        self.fault_engine = fault_engine
        self._client = client
        self._own_client = client is None
        self._now = now
        self.start = start
        self.delay_scale = delay_scale
        self._sleep = sleep
        # Per attempt, wall seconds (not scaled like the scenario delays): a delivery's network time
        # is real time in live mode, as API latency is; the virtual network draws the same stream.
        self._latency = latency
        self._sem = asyncio.Semaphore(max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._backlog: list[WebhookEvent] = []
        self.attempts: deque[DeliveryAttempt] = deque(maxlen=journal_size)
        self.events: deque[dict[str, Any]] = deque(maxlen=journal_size)
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    # ----------------------------------------------------------------- API for cores

    def enqueue(self, ev: WebhookEvent) -> None:
        """The core's ``emit``: never blocks, never raises. Without a running loop (a core driven
        outside the server) events wait until ``flush``/``drain``."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._backlog.append(ev)
            return
        self._spawn(loop, ev)

    __call__ = enqueue

    def _spawn(self, loop: asyncio.AbstractEventLoop, ev: WebhookEvent) -> None:
        task = loop.create_task(self._deliver(ev))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def flush(self) -> None:
        loop = asyncio.get_running_loop()
        backlog, self._backlog = self._backlog, []
        for ev in backlog:
            self._spawn(loop, ev)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued event is delivered or given up; False if ``timeout`` hit first."""
        self.flush()

        async def _wait() -> None:
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

        try:
            await asyncio.wait_for(_wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def pending(self) -> int:
        return len(self._tasks) + len(self._backlog)

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def stats(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed, "dropped": self.dropped, "pending": self.pending}

    # ----------------------------------------------------------------- internals

    def _t(self) -> float:
        return self._now() if self._now is not None else 0.0

    def target_for(self, source: str) -> str | None:
        if isinstance(self.targets, str):
            return self.targets.rstrip("/") + f"/webhooks/{source}"
        return self.targets.get(source)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Plain http:// targets (the SUT on loopback) go through the lean keep-alive transport
            # the reference integration uses for its calls to the mocks: httpx's default one
            # (httpcore, anyio, h11) was most of a delivery's CPU. https and the rest stay on
            # httpx's. That transport does not enforce httpx timeouts: ``_post`` bounds each
            # attempt itself.
            self._client = httpx.AsyncClient(mounts={"http://": Http11Transport()})
        return self._client

    async def _wait(self, scenario_seconds: float) -> None:
        if scenario_seconds > 0 and self.delay_scale > 0:
            await self._sleep(scenario_seconds * self.delay_scale)

    async def _deliver(self, ev: WebhookEvent) -> None:
        fe = self.fault_engine
        d: WebhookDecision = fe.decide_webhook(ev.type, ev.occurred_at) if fe is not None else OK_WEBHOOK
        data = fe.drift(ev.type, ev.data, ev.occurred_at) if fe is not None and fe.has_drift else None
        env = envelope(ev, self.start, data)
        body = encode(env)
        if d.malformed:
            body = malform(body)
        record = {**env, "copies": d.copies, "delay_s": d.extra_delay_s, "malformed": d.malformed, "dropped": d.drop}
        self.events.append(record)
        url = self.target_for(ev.source)
        if url is None:
            self.attempts.append(DeliveryAttempt(ev.id, ev.type, ev.source, 0, 0, self._t(), None, "no_target"))
            record["outcome"] = "no_target"
            return
        try:
            await self._wait(d.extra_delay_s)
            if d.drop:
                self.dropped += 1
                self.attempts.append(DeliveryAttempt(ev.id, ev.type, ev.source, 0, 0, self._t(), None, "dropped"))
                if d.redeliver_after_s is None:
                    record["outcome"] = "dropped"
                    return
                await self._wait(d.redeliver_after_s)
            outcome = "failed"
            for copy in range(d.copies):
                ok = await self._attempts(ev, copy, url, body)
                if ok:
                    outcome = "delivered"
            record["outcome"] = outcome
        except asyncio.CancelledError:
            record["outcome"] = "cancelled"
            raise

    async def _attempts(self, ev: WebhookEvent, copy: int, url: str, body: bytes) -> bool:
        delays = retry_delays(self.policy)
        for attempt in range(1, self.policy.max_attempts + 1):
            status, err = await self._post(ev, url, body)
            ok = status is not None and 200 <= status < 300
            outcome = "delivered" if ok else ("error" if status is None else "failed")
            self.attempts.append(
                DeliveryAttempt(ev.id, ev.type, ev.source, copy, attempt, self._t(), status, outcome, err)
            )
            if ok:
                self.delivered += 1
                return True
            if attempt < self.policy.max_attempts:
                await self._wait(delays[attempt - 1])
        self.failed += 1
        log.info("webhook %s gave up after %d attempts", ev.id, self.policy.max_attempts)
        return False

    async def _post(self, ev: WebhookEvent, url: str, body: bytes) -> tuple[int | None, str | None]:
        if self._latency is not None:
            await self._sleep(self._latency())  # outside the semaphore: latency is not a slot
        headers = headers_for(ev.id, body, self.secret, occurred_at_iso(self._t(), self.start))
        timeout = self.policy.timeout
        async with self._sem:
            try:
                async with asyncio.timeout(timeout):
                    r = await self._http().post(url, content=body, headers=headers, timeout=timeout)
            except httpx.HTTPError as e:
                return None, f"{type(e).__name__}: {e}"[:200]
            except TimeoutError:
                return None, f"TimeoutError: no response within {timeout} s"
        return r.status_code, None
