"""Resilience policies as pure state machines: time is passed in, randomness comes from a
``random.Random`` passed in, nothing sleeps or does I/O. Both interpreters (SimPy and asyncio) drive
the same objects, which is why these are hand-written rather than taken from a library such as
pybreaker, tenacity or aiolimiter: those read the wall clock / sleep themselves and so cannot run
under SimPy time.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from reference_integration.errors import (
    BusinessError,
    CallFailed,
    CallTimeout,
    ConnectionFailed,
    MalformedResponse,
    RateLimited,
)
from sim.scenario import RetryPolicy, SystemPolicies

# --------------------------------------------------------------------------------------- retry


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """AWS "full jitter": uniform(0, min(cap, base * 2**attempt)); attempt counts from 0."""
    ceiling = min(cap, base * 2.0 ** min(attempt, 62))
    return rng.uniform(0.0, ceiling)


class Backoff:
    """Delay before the next attempt of one call, for one retry policy."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng

    @property
    def max_attempts(self) -> int:
        return self.policy.max_attempts if self.policy.enabled else 1

    def next_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay after failed attempt number ``attempt`` (0-based). A server's Retry-After is a
        floor, not a replacement: waiting max(retry_after, jitter) keeps clients de-synchronised."""
        delay = full_jitter(attempt, self.policy.base, self.policy.cap, self.rng)
        if retry_after is not None and self.policy.honour_retry_after:
            delay = max(delay, retry_after)
        return delay


def backoff_delays(policy: RetryPolicy, rng: random.Random) -> Iterator[float]:
    """The delays between the attempts of one call (max_attempts - 1 of them, none if disabled)."""
    b = Backoff(policy, rng)
    for attempt in range(b.max_attempts - 1):
        yield b.next_delay(attempt)


def should_retry(exc: CallFailed, attempt: int, max_attempts: int) -> bool:
    """Status-aware: only retryable technical failures, and only while attempts remain.
    Business errors are never retried (the same request gets the same answer)."""
    return exc.category != "business" and exc.retryable and attempt < max_attempts


def breaker_failure(exc: CallFailed | None) -> bool:
    """What counts against a circuit breaker: the system being unhealthy (timeouts, resets, 5xx,
    garbage bodies). A 4xx answer, including 429 throttling, proves the system is up and answering;
    throttling is handled by Retry-After, not by cutting the system off."""
    if exc is None or isinstance(exc, BusinessError | RateLimited):
        return False
    if isinstance(exc, CallTimeout | ConnectionFailed | MalformedResponse):
        return True
    return exc.status is not None and exc.status >= 500


def outcome_of(exc: CallFailed | None) -> str:
    """Short label for a call record."""
    if exc is None:
        return "ok"
    if isinstance(exc, BusinessError):
        return "business_error"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, CallTimeout):
        return "timeout"
    if isinstance(exc, ConnectionFailed):
        return "connection_error"
    if isinstance(exc, MalformedResponse):
        return "malformed"
    if exc.reason == "breaker_open":
        return "breaker_open"
    return "server_error" if exc.status and exc.status >= 500 else "error"


def dlq_category(exc: BaseException) -> Literal["technical", "business"]:
    return exc.category if isinstance(exc, CallFailed) else "technical"


# --------------------------------------------------------------------------------------- breaker

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Closed -> (threshold consecutive failures) -> open -> (reset_timeout) -> half-open, which lets
    up to ``half_open_max`` probe calls through: a probe success closes, a probe failure re-opens.
    Hand-written because it must run under SimPy time as well as wall time."""

    def __init__(self, threshold: int = 5, reset_timeout: float = 30.0, half_open_max: int = 1) -> None:
        self.threshold = threshold
        self.reset_timeout = reset_timeout
        self.half_open_max = half_open_max
        self.state: BreakerState = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.probes = 0
        self.opens = 0
        self.transitions: list[tuple[float, BreakerState, BreakerState]] = []

    def _to(self, state: BreakerState, now: float) -> None:
        if state != self.state:
            self.transitions.append((now, self.state, state))
            self.state = state
        if state == "open":
            self.opened_at = now
            self.opens += 1
            self.probes = 0
        elif state == "half_open":
            self.probes = 0
        else:
            self.failures = 0

    def state_at(self, now: float) -> BreakerState:
        if self.state == "open" and now - self.opened_at >= self.reset_timeout:
            return "half_open"
        return self.state

    def retry_in(self, now: float) -> float:
        """Seconds until an open breaker lets a probe through."""
        return max(0.0, self.opened_at + self.reset_timeout - now) if self.state == "open" else 0.0

    def allow(self, now: float) -> bool:
        """May a call go out now? In half-open this reserves a probe slot (record the outcome!)."""
        if self.state == "open":
            if now - self.opened_at < self.reset_timeout:
                return False
            self._to("half_open", now)
        if self.state == "half_open":
            if self.probes >= self.half_open_max:
                return False
            self.probes += 1
        return True

    def record_success(self, now: float) -> None:
        if self.state == "half_open":
            self._to("closed", now)
        self.failures = 0

    def record_failure(self, now: float) -> None:
        if self.state == "half_open":
            self._to("open", now)
            return
        if self.state == "open":  # a straggler from before the opening: already counted
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self._to("open", now)


# --------------------------------------------------------------------------------------- bulkhead


class Bulkhead:
    """At most ``max_concurrent`` calls in flight to one system. Waiting is the interpreter's job:
    it enqueues a waiter object (a SimPy event or an asyncio future) and wakes the one ``release``
    hands the slot to (FIFO, so a waiting call is never overtaken)."""

    def __init__(self, max_concurrent: int) -> None:
        self.max_concurrent = max_concurrent
        self.in_flight = 0
        self.max_in_flight = 0
        self.waiters: deque[Any] = deque()

    def try_acquire(self) -> bool:
        if self.in_flight < self.max_concurrent and not self.waiters:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return True
        return False

    def enqueue(self, waiter: Any) -> None:
        self.waiters.append(waiter)

    def cancel(self, waiter: Any) -> None:
        try:
            self.waiters.remove(waiter)
        except ValueError:
            pass

    def release(self) -> Any | None:
        """Free a slot; if someone waits, the slot passes straight to them and they are returned
        for the interpreter to wake (in_flight stays the same)."""
        if self.waiters:
            return self.waiters.popleft()
        self.in_flight -= 1
        return None


# --------------------------------------------------------------------------------------- rate limit


class TokenBucketLimiter:
    """Client-side token bucket: ``requests`` per ``per`` seconds, burst of ``requests``.
    ``reserve(now)`` takes a token (possibly borrowed from the future) and returns how long the
    caller must wait before sending; reservations queue, so callers end up evenly spaced."""

    def __init__(self, requests: int, per: float, burst: int | None = None) -> None:
        self.rate = requests / per
        self.burst = float(burst if burst is not None else requests)
        self.tokens = self.burst
        self.updated = 0.0
        self._started = False

    def reserve(self, now: float) -> float:
        if not self._started:
            self.updated, self._started = now, True
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


# --------------------------------------------------------------------------------------- dedup


class DedupSet:
    """Bounded LRU of seen event ids (webhook redelivery makes duplicates normal)."""

    def __init__(self, max_size: int = 100_000) -> None:
        self.max_size = max_size
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.duplicates = 0

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, event_id: str) -> bool:
        """True if ``event_id`` was seen before (a duplicate); records it either way."""
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            self.duplicates += 1
            return True
        self._seen[event_id] = None
        if len(self._seen) > self.max_size:
            self._seen.popitem(last=False)
        return False


# --------------------------------------------------------------------------------------- auth


@dataclass
class TokenCache:
    """OAuth client-credentials token for one system; refreshed ``margin`` s before expiry."""

    token: str | None = None
    expires_at: float = 0.0
    margin: float = 60.0
    fetches: int = 0

    def valid(self, now: float) -> bool:
        return self.token is not None and now < self.expires_at - self.margin

    def set(self, token: str, expires_in: float, now: float) -> None:
        self.token = token
        self.expires_at = now + expires_in
        self.margin = min(self.margin, expires_in / 10)
        self.fetches += 1

    def invalidate(self, token: str | None = None) -> None:
        # Only drop the token the 401 was for: another call may already have refreshed it.
        if token is None or token == self.token:
            self.token = None


# --------------------------------------------------------------------------------------- per system


@dataclass
class SystemGuard:
    """The policy objects guarding calls to one system, built from its ``SystemPolicies``."""

    policies: SystemPolicies
    backoff: Backoff
    breaker: CircuitBreaker | None = None
    bulkhead: Bulkhead | None = None
    limiter: TokenBucketLimiter | None = None
    retries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, policies: SystemPolicies, rng: random.Random) -> SystemGuard:
        b, h, r = policies.breaker, policies.bulkhead, policies.rate_limit
        return cls(
            policies=policies,
            backoff=Backoff(policies.retry, rng),
            breaker=CircuitBreaker(b.failure_threshold, b.reset_timeout, b.half_open_max) if b.enabled else None,
            bulkhead=Bulkhead(h.max_concurrent) if h.enabled else None,
            limiter=TokenBucketLimiter(r.requests, r.per) if r.enabled else None,
        )
