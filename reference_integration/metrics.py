"""Call records and counters shared by both interpreters, rendered as Prometheus text.

Hand-written exposition (format 0.0.4) rather than prometheus_client: the numbers already live in
the runtime (call records, breaker objects, store), the virtual run needs them without a global
registry, and the text format is a dozen lines.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, deque
from collections.abc import MutableSequence
from dataclasses import astuple, dataclass, field, fields
from typing import Any

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(slots=True)
class CallRecord:
    """One attempt of one Call (or one local refusal: outcome ``breaker_open``). -> calls.parquet"""

    t_start: float
    t_end: float
    system: str
    operation: str
    attempt: int
    status: int | None
    outcome: str  # ok | business_error | server_error | rate_limited | timeout | connection_error | malformed | breaker_open | error
    latency_s: float
    correlation_id: str | None
    idempotency_key: str | None
    workflow: str = ""

    def as_tuple(self) -> tuple[Any, ...]:
        return astuple(self)


CALL_COLUMNS = tuple(f.name for f in fields(CallRecord))


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * len(self.buckets)

    def observe(self, v: float) -> None:
        counts = self.counts
        i = bisect.bisect_left(self.buckets, v)
        if i < len(counts):
            counts[i] += 1
        self.total += v
        self.n += 1


@dataclass
class RuntimeStats:
    """What an interpreter counts while it runs."""

    calls: MutableSequence[CallRecord] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    latency: dict[str, Histogram] = field(default_factory=dict)
    workflows_started: int = 0
    workflows_failed: int = 0
    dropped: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)  # lost when DLQ is off

    def keep_last(self, n: int) -> None:
        """Keep only the last ``n`` call records from now on; counters and histograms still count
        every call. For a long-running service, where an ever-growing list is memory and GC time."""
        self.calls = deque(self.calls, maxlen=n)

    def record(self, rec: CallRecord) -> None:
        self.calls.append(rec)
        system, outcome = rec.system, rec.outcome
        self.attempts[system] += 1
        if outcome != "ok":
            self.failures[system] += 1
            if outcome == "breaker_open":
                return
        h = self.latency.get(system)
        if h is None:  # not ``setdefault``: that built a Histogram per call only to drop it
            h = self.latency[system] = Histogram()
        h.observe(rec.latency_s)


def _fmt(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def _labels(**kv: str) -> str:
    if not kv:
        return ""
    inner = ",".join(
        f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in kv.items()
    )
    return "{" + inner + "}"


BREAKER_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}


def render_prometheus(
    stats: RuntimeStats,
    breakers: dict[str, Any] | None = None,
    now: float = 0.0,
    backlog: int = 0,
    dlq_size: int = 0,
    extra_gauges: dict[str, float] | None = None,
) -> str:
    """Prometheus text exposition of one runtime. ``breakers``: system -> CircuitBreaker."""
    out: list[str] = []

    def family(name: str, kind: str, help_: str) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")

    family("integration_call_attempts_total", "counter", "Call attempts sent or refused, per system.")
    for s, v in sorted(stats.attempts.items()):
        out.append(f"integration_call_attempts_total{_labels(system=s)} {v}")
    family("integration_call_failures_total", "counter", "Call attempts that did not succeed, per system.")
    for s, v in sorted(stats.failures.items()):
        out.append(f"integration_call_failures_total{_labels(system=s)} {v}")
    family("integration_retries_total", "counter", "Retries after a retryable failure, per system.")
    for s, v in sorted(stats.retries.items()):
        out.append(f"integration_retries_total{_labels(system=s)} {v}")
    family("integration_breaker_state", "gauge", "Circuit breaker state: 0 closed, 1 half-open, 2 open.")
    for s, b in sorted((breakers or {}).items()):
        out.append(f"integration_breaker_state{_labels(system=s)} {BREAKER_STATE_VALUE[b.state_at(now)]}")
    family("integration_breaker_opens_total", "counter", "Times the circuit breaker opened, per system.")
    for s, b in sorted((breakers or {}).items()):
        out.append(f"integration_breaker_opens_total{_labels(system=s)} {b.opens}")
    family("integration_backlog", "gauge", "Workflows in flight.")
    out.append(f"integration_backlog {backlog}")
    family("integration_dlq_size", "gauge", "Dead-letter entries not yet replayed.")
    out.append(f"integration_dlq_size {dlq_size}")
    family("integration_call_latency_seconds", "histogram", "Latency of call attempts, per system.")
    for s, h in sorted(stats.latency.items()):
        cum = 0
        for le, c in zip(h.buckets, h.counts, strict=True):
            cum += c
            out.append(f"integration_call_latency_seconds_bucket{_labels(system=s, le=_fmt(le))} {cum}")
        out.append(f"integration_call_latency_seconds_bucket{_labels(system=s, le='+Inf')} {h.n}")
        out.append(f"integration_call_latency_seconds_sum{_labels(system=s)} {_fmt(h.total)}")
        out.append(f"integration_call_latency_seconds_count{_labels(system=s)} {h.n}")
    for name, v in sorted((extra_gauges or {}).items()):
        family(name, "gauge", name.replace("_", " ") + ".")
        out.append(f"{name} {_fmt(v)}")
    return "\n".join(out) + "\n"
