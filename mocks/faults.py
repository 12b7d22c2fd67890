"""Fault decisions shared by both clocks: what happens to one request or one webhook.

``FaultEngine`` is pure decision logic. The caller passes in the time (``now``: simulated seconds,
which decide whether a fault window is active; ``api_now``: the clock rate limits are counted in,
wall seconds in live mode, simulated seconds in virtual mode) and the engine draws randomness only
from named streams: ``latency.<system>``, ``errors.<system>`` and ``fault.<window name>``. Every
source that is switched on draws on every decision whether or not an earlier source already
decided the outcome, so a seeded run repeats draw for draw, and adding a window leaves the draws of
every other source unchanged.

The virtual network (``sim/network.py``) and the live gateway (``mocks.gateway.Gateway.call``)
both act on the returned ``Decision``; ``docs/fault-catalogue.md`` describes every fault kind.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

from mocks.core.base import Response, error
from mocks.ratelimit import ClientBuckets
from sim.rng import Streams
from sim.scenario import ApiProfile, FaultKind, FaultWindow


class Action(StrEnum):
    ok = "ok"
    error = "error"  # answer ``status`` without processing
    rate_limited = "rate_limited"  # 429 + Retry-After without processing
    timeout = "timeout"  # hang for ``hang_s`` (processed first when ``after_commit``)
    reset = "reset"  # connection dropped without a response (processed first when ``after_commit``)
    truncate = "truncate"  # processed; body cut in half
    dribble = "dribble"  # processed; body sent in small chunks over ``hang_s``


@dataclass(slots=True)
class Decision:
    """Treat as immutable (not frozen only because frozen construction costs ~3x on the hot path)."""

    latency_s: float = 0.0
    action: Action = Action.ok
    status: int | None = None
    retry_after: float | None = None  # seconds; rendered as an integer Retry-After header (ceil)
    after_commit: bool = False  # timeout/reset: the core processed the request before the failure
    hang_s: float = 0.0  # timeout: how long to hang; dribble: how long the body takes
    window: str | None = None  # fault window (or "profile") that caused a non-ok action

    @property
    def processes(self) -> bool:
        """Whether the core handles the request at all."""
        if self.action in (Action.error, Action.rate_limited):
            return False
        if self.action in (Action.timeout, Action.reset):
            return self.after_commit
        return True

    @property
    def retry_after_s(self) -> float | None:
        return self.retry_after


@dataclass(frozen=True, slots=True)
class WebhookDecision:
    copies: int = 1  # > 1: the same event (same id) delivered again
    extra_delay_s: float = 0.0  # held back before the first attempt (delay, out-of-order)
    drop: bool = False  # first delivery silently lost
    redeliver_after_s: float | None = None  # dropped: redelivered this much later; None = never
    malformed: bool = False  # body is not valid JSON (still signed)


OK_WEBHOOK = WebhookDecision()

_API_KINDS = {
    FaultKind.latency,
    FaultKind.brownout,
    FaultKind.error,
    FaultKind.outage,
    FaultKind.rate_limit,
    FaultKind.concurrency,
    FaultKind.timeout,
    FaultKind.reset,
    FaultKind.truncate,
    FaultKind.dribble,
}
_WEBHOOK_KINDS = {
    FaultKind.webhook_duplicate,
    FaultKind.webhook_out_of_order,
    FaultKind.webhook_delay,
    FaultKind.webhook_drop,
    FaultKind.webhook_malformed,
}
# Kinds decided by one uniform draw against ``probability`` (None = always).
_DRAWN = {FaultKind.error, FaultKind.outage, FaultKind.timeout, FaultKind.reset, FaultKind.truncate, FaultKind.dribble}

DEFAULT_HANG_S = 30.0  # timeout: past any sane client deadline
DEFAULT_DRIBBLE_S = 2.0
DEFAULT_WEBHOOK_DELAY_S = 60.0
DEFAULT_OUT_OF_ORDER_MAX_S = 60.0


def _active(w: FaultWindow, now: float) -> bool:
    return w.start <= now < w.start + w.duration


class FaultEngine:
    """Decides latency and faults for one system from its ``ApiProfile`` and its fault windows."""

    def __init__(
        self,
        system: str,
        profile: ApiProfile | None = None,
        windows: Iterable[FaultWindow] = (),
        streams: Streams | None = None,
        *,
        hang_s: float = DEFAULT_HANG_S,
    ) -> None:
        self.system = str(system)
        self.streams = streams if streams is not None else Streams(0)
        self.hang_s = hang_s
        self._windows: dict[str, FaultWindow] = {}
        self._buckets: dict[str, ClientBuckets] = {}
        self._samplers: dict[str, Callable[[], float]] = {}
        self.set_profile(profile or ApiProfile())
        self.set_windows(windows)

    # ----------------------------------------------------------------- runtime control

    @property
    def profile(self) -> ApiProfile:
        return self._profile

    @property
    def windows(self) -> list[FaultWindow]:
        return list(self._windows.values())

    def set_profile(self, profile: ApiProfile) -> None:
        self._profile = profile
        self._latency = profile.latency.sampler(self.streams.py(f"latency.{self.system}"))
        self._errors = self.streams.py(f"errors.{self.system}")
        rl = profile.rate_limit
        self._profile_bucket = ClientBuckets(rl.requests, rl.requests / rl.per) if rl else None
        self._update_idle()

    def add_window(self, w: FaultWindow) -> None:
        """Add a window, replacing one of the same name. Windows of other systems are refused."""
        if w.system is not None and str(w.system) != self.system:
            raise ValueError(f"window {w.name!r} is for system {w.system}, this engine is {self.system}")
        self._windows[w.name] = w
        self._buckets.pop(w.name, None)
        self._samplers.pop(w.name, None)
        if w.kind == FaultKind.rate_limit:
            assert w.limit is not None
            self._buckets[w.name] = ClientBuckets(w.limit, w.limit / w.per)
        self._rebuild()

    def remove_window(self, name: str) -> bool:
        found = self._windows.pop(name, None) is not None
        self._buckets.pop(name, None)
        self._samplers.pop(name, None)
        self._rebuild()
        return found

    def set_windows(self, windows: Iterable[FaultWindow]) -> None:
        """Replace all windows; windows for other systems (or system-less ones) are ignored."""
        self._windows.clear()
        self._buckets.clear()
        self._samplers.clear()
        for w in windows:
            if w.system is not None and str(w.system) == self.system:
                self.add_window(w)
        self._rebuild()

    def active(self, now: float) -> list[str]:
        return [w.name for w in self._windows.values() if _active(w, now)]

    def _rebuild(self) -> None:
        ws = self._windows.values()
        self._api = [w for w in ws if w.kind in _API_KINDS]
        self._hooks = [w for w in ws if w.kind in _WEBHOOK_KINDS]
        self._drifts = [w for w in ws if w.kind == FaultKind.contract_drift]
        self._refreshed_at = math.inf  # force a refresh on the next decision
        self._next_change = -math.inf
        self._active_api: list[FaultWindow] = []
        self._by_op: dict[str, list[FaultWindow]] = {}
        self._update_idle()

    def _update_idle(self) -> None:
        p = self._profile
        self._profile_idle = p.error_rate == 0 and p.rate_limit is None and p.concurrency_limit is None
        self._idle = self._profile_idle and not getattr(self, "_api", None)

    def _rng(self, w: FaultWindow) -> random.Random:
        return self.streams.py(f"fault.{w.name}")

    def _sample(self, w: FaultWindow) -> float:
        s = self._samplers.get(w.name)
        if s is None:
            assert w.latency is not None
            s = self._samplers[w.name] = w.latency.sampler(self._rng(w))
        return s()

    def _refresh(self, now: float) -> None:
        # The active set only changes at window boundaries: recompute it then, not per request.
        self._active_api = [w for w in self._api if _active(w, now)]
        edges = [w.start for w in self._api if w.start > now] + [w.start + w.duration for w in self._active_api]
        self._next_change = min(edges, default=math.inf)
        self._refreshed_at = now
        self._by_op = {}

    def _matching(self, op: str) -> list[FaultWindow]:
        m = self._by_op.get(op)
        if m is None:
            m = self._by_op[op] = [w for w in self._active_api if fnmatchcase(op, w.endpoint)]
        return m

    # ----------------------------------------------------------------- API requests

    def decide(
        self, op: str, client_id: str = "anonymous", now: float = 0.0, in_flight: int = 0, api_now: float | None = None
    ) -> Decision:
        latency = self._latency()
        if self._idle:
            return Decision(latency)
        if now >= self._next_change or now < self._refreshed_at:
            self._refresh(now)
        if self._profile_idle and not self._active_api:
            return Decision(latency)
        t_api = now if api_now is None else api_now
        p = self._profile
        verdict: Decision | None = None

        # Profile sources first (their streams are drawn on every decision while switched on).
        if p.concurrency_limit is not None and in_flight >= p.concurrency_limit:
            verdict = Decision(latency, Action.error, 429, 1.0, window="profile")
        if verdict is None and self._profile_bucket is not None:
            ok, wait = self._profile_bucket.take(client_id, t_api)
            if not ok:
                verdict = Decision(latency, Action.rate_limited, 429, wait, window="profile")
        if p.error_rate > 0:
            u = self._errors.random()
            if verdict is None and u < p.error_rate:
                statuses = p.error_status
                status = statuses[min(int(u / p.error_rate * len(statuses)), len(statuses) - 1)]
                verdict = Decision(latency, Action.error, status, window="profile")

        windows = self._matching(op) if self._active_api else ()
        if not windows:
            return verdict or Decision(latency)

        # Latency shaping applies to every outcome, so resolve it before the fault verdicts.
        for w in windows:
            if w.kind == FaultKind.latency:
                latency = self._sample(w)
        for w in windows:
            if w.kind == FaultKind.brownout:
                assert w.multiplier is not None
                latency *= w.multiplier

        best: tuple[int, Decision] | None = None
        for w in windows:
            k = w.kind
            d: Decision | None = None
            if k in _DRAWN:
                u = self._rng(w).random()
                if u >= (w.probability if w.probability is not None else 1.0):
                    continue
                if k == FaultKind.outage:
                    d = Decision(latency, Action.error, w.status or 503, w.retry_after, window=w.name)
                elif k == FaultKind.error:
                    d = Decision(latency, Action.error, w.status or 500, w.retry_after, window=w.name)
                elif k == FaultKind.timeout:
                    hang = self._sample(w) if w.latency is not None else self.hang_s
                    d = Decision(latency, Action.timeout, None, None, w.after_commit, hang, w.name)
                elif k == FaultKind.reset:
                    d = Decision(latency, Action.reset, None, None, w.after_commit, window=w.name)
                elif k == FaultKind.truncate:
                    d = Decision(latency, Action.truncate, window=w.name)
                else:
                    hang = self._sample(w) if w.latency is not None else DEFAULT_DRIBBLE_S
                    d = Decision(latency, Action.dribble, None, None, True, hang, w.name)
            elif k == FaultKind.concurrency:
                assert w.limit is not None
                if in_flight >= w.limit:
                    status = w.status or 429
                    ra = w.retry_after if w.retry_after is not None else 1.0
                    d = Decision(
                        latency, Action.rate_limited if status == 429 else Action.error, status, ra, window=w.name
                    )
            elif k == FaultKind.rate_limit and verdict is None and (best is None or best[0] > _RANK[k]):
                # Only a request that would otherwise get through spends a token.
                ok, wait = self._buckets[w.name].take(client_id, t_api)
                if not ok:
                    ra = w.retry_after if w.retry_after is not None else wait
                    d = Decision(latency, Action.rate_limited, w.status or 429, ra, window=w.name)
            if d is not None and (best is None or _RANK[k] < best[0]):
                best = (_RANK[k], d)

        if verdict is not None:
            # Profile rejections rank with the windows' admission faults; an outage still wins.
            if best is None or best[0] > _RANK[FaultKind.outage]:
                return Decision(latency, verdict.action, verdict.status, verdict.retry_after, window=verdict.window)
        if best is not None:
            return best[1]
        return Decision(latency)

    # ----------------------------------------------------------------- webhooks

    def decide_webhook(self, event_type: str, now: float) -> WebhookDecision:
        if not self._hooks:
            return OK_WEBHOOK
        copies, delay, drop, redeliver, malformed = 1, 0.0, False, None, False
        for w in self._hooks:
            if not _active(w, now) or not fnmatchcase(event_type, w.endpoint):
                continue
            rng = self._rng(w)
            if rng.random() >= (w.probability if w.probability is not None else 1.0):
                continue
            k = w.kind
            if k == FaultKind.webhook_duplicate:
                copies += 1
            elif k == FaultKind.webhook_out_of_order:
                # Held back by a random delay, so events emitted after it overtake it.
                delay += self._sample(w) if w.latency is not None else rng.uniform(0, DEFAULT_OUT_OF_ORDER_MAX_S)
            elif k == FaultKind.webhook_delay:
                delay += self._sample(w) if w.latency is not None else DEFAULT_WEBHOOK_DELAY_S
            elif k == FaultKind.webhook_drop:
                drop, redeliver = True, w.redeliver_after
            elif k == FaultKind.webhook_malformed:
                malformed = True
        if copies == 1 and not delay and not drop and not malformed:
            return OK_WEBHOOK
        return WebhookDecision(copies, delay, drop, redeliver, malformed)

    # ----------------------------------------------------------------- contract drift

    @property
    def has_drift(self) -> bool:
        return bool(self._drifts)

    def drift(self, op: str, body: Any, now: float) -> Any:
        """``body`` with drifted field names for operation (or webhook type) ``op`` at ``now``.

        Never mutates ``body``: cores hand out their own stored objects.
        """
        for w in self._drifts:
            if _active(w, now) and fnmatchcase(op, w.endpoint):
                assert w.field is not None and w.rename_to is not None
                body = rename_field(body, w.field.split("."), w.rename_to)
        return body


# Lower rank wins when several faults hit one request.
_RANK = {
    FaultKind.outage: 0,
    FaultKind.concurrency: 1,
    FaultKind.rate_limit: 2,
    FaultKind.error: 3,
    FaultKind.timeout: 4,
    FaultKind.reset: 5,
    FaultKind.truncate: 6,
    FaultKind.dribble: 7,
}


def rename_field(body: Any, path: list[str], new: str) -> Any:
    """Copy of ``body`` with the dotted ``path``'s last key renamed to ``new``; lists are mapped."""
    if isinstance(body, list):
        return [rename_field(x, path, new) for x in body]
    if not isinstance(body, dict) or not path:
        return body
    head, rest = path[0], path[1:]
    if head not in body:
        return body
    if not rest:
        return {(new if k == head else k): v for k, v in body.items()}
    return {**body, head: rename_field(body[head], rest, new)}


_CODES = {
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def retry_after_header(seconds: float) -> str:
    """HTTP wants whole seconds; round up so a client honouring it never comes back too early."""
    return str(max(1, math.ceil(seconds - 1e-9)))


def fault_response(d: Decision) -> Response:
    """The response for a decision that rejects a request before processing (error, rate_limited)."""
    status = d.status or 503
    resp = error(status, _CODES.get(status, "injected_error"), f"injected fault ({d.window or 'profile'})")
    if d.retry_after is not None:
        resp.headers["retry-after"] = retry_after_header(d.retry_after)
    return resp
