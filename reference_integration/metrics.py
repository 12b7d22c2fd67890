"""Call records and counters shared by both interpreters, rendered as Prometheus text.

Hand-written exposition (format 0.0.4) rather than prometheus_client: the numbers already live in
the runtime (call records, breaker objects, store), the virtual run needs them without a global
registry, and the text format is a dozen lines.
"""

from __future__ import annotations

import bisect
import math
import os
import pickle
import sys
import tempfile
from array import array
from collections import Counter, deque
from collections.abc import Iterator, MutableSequence, Sequence
from dataclasses import astuple, dataclass, field, fields
from typing import Any, overload

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
_NO_STATUS = -(2**31)  # ``status`` None in the int32 status column

# Records per spilled segment (``CallTable.spill_to``); read when spilling starts (tests shrink it).
SEGMENT = 1 << 16


class CallTable(Sequence[CallRecord]):
    """Every call record of a run, kept by column rather than as one ``CallRecord`` per attempt.

    A quarter makes ~18 attempts per order, millions in all; as objects they were the largest
    single holder of a virtual run's memory (~200 B each with their floats). Here an attempt costs
    ~50 B: times in ``array('d')``, attempt and status in ``array('i')``, the four low-cardinality
    names (system, operation, outcome, workflow) as codes into one shared table, the two ids as
    references. ``latency_s`` is not stored: it is ``t_end - t_start``, the same float operation
    that made it. Reading gives ``CallRecord``s equal to the ones appended (``add`` or ``append``);
    ``column(name)`` gives one column as the list of the values appended.

    ``spill_to(directory)`` takes the columns out of memory as the table grows (a large virtual
    run): every ``SEGMENT`` records they are pickled to a segment file and started afresh. Reads
    give the same as before, reading segments back; ``blocks()`` hands them to an exporter.
    """

    __slots__ = (
        "_t0", "_t1", "_attempt", "_status", "_names", "_code", "_sys", "_op", "_out", "_wf", "_corr", "_idem", "_odd",
        "_spill_dir", "_spill_at", "_segments", "_seg_ends", "_spilled", "_cache",
    )  # fmt: skip
    columns = CALL_COLUMNS

    def __init__(self) -> None:
        self._spill_dir: str | None = None
        self._spill_at = sys.maxsize  # records in memory that start a new segment
        self._segments: list[tuple[str, SegmentInfo]] = []  # segment files, oldest first
        self._seg_ends: list[int] = []  # index after each segment's last record
        self._spilled = 0  # records in segments (they come before the in-memory columns)
        self._cache: tuple[int, CallBlock] | None = None  # the segment read last
        self._new_columns()

    def _new_columns(self) -> None:
        self._t0 = array("d")
        self._t1 = array("d")
        self._attempt = array("i")
        self._status = array("i")
        self._names: list[Any] = []  # code -> name (system, operation, outcome or workflow)
        self._code: dict[Any, int] = {}
        self._sys = array("I")
        self._op = array("I")
        self._out = array("I")
        self._wf = array("I")
        self._corr: list[str | None] = []
        self._idem: list[str | None] = []
        # Records whose values the typed columns cannot hold exactly (a time that is not a float,
        # an attempt or status that is not a small int): index -> the record's original values.
        self._odd: dict[int, tuple[Any, ...]] = {}

    def _name(self, name: Any) -> int:
        c = self._code.get(name)
        if c is None:
            c = self._code[name] = len(self._names)
            self._names.append(name)
        return c

    def add(
        self,
        t_start: float,
        t_end: float,
        system: str,
        operation: str,
        attempt: int,
        status: int | None,
        outcome: str,
        correlation_id: str | None,
        idempotency_key: str | None,
        workflow: str = "",
    ) -> None:
        """Append one record (``latency_s`` = ``t_end - t_start``)."""
        if (
            type(t_start) is not float
            or type(t_end) is not float
            or type(attempt) is not int
            or not (status is None or (type(status) is int and _NO_STATUS < status < 2**31))
            or not 0 <= attempt < 2**31
        ):
            self._odd[len(self._t0)] = (t_start, t_end, attempt, status)
            t_start, t_end, attempt, status = 0.0, 0.0, 0, None
        code = self._code
        self._t1.append(t_end)
        self._sys.append(code[system] if system in code else self._name(system))
        self._op.append(code[operation] if operation in code else self._name(operation))
        self._attempt.append(attempt)
        self._status.append(_NO_STATUS if status is None else status)
        self._out.append(code[outcome] if outcome in code else self._name(outcome))
        self._corr.append(correlation_id)
        self._idem.append(idempotency_key)
        self._wf.append(code[workflow] if workflow in code else self._name(workflow))
        self._t0.append(t_start)  # last: the length is len(_t0), so no reader sees half a record
        if len(self._t0) >= self._spill_at:
            self._spill()

    def append(self, rec: CallRecord) -> None:
        if rec.latency_s != rec.t_end - rec.t_start or type(rec.latency_s) is not type(rec.t_end - rec.t_start):
            self._append_odd_latency(rec)
            return
        self.add(
            rec.t_start,
            rec.t_end,
            rec.system,
            rec.operation,
            rec.attempt,
            rec.status,
            rec.outcome,
            rec.correlation_id,
            rec.idempotency_key,
            rec.workflow,
        )

    def _append_odd_latency(self, rec: CallRecord) -> None:
        # A latency that is not the difference of the times (never from the engine): keep it. The
        # record goes in without its spill check, so its index stays in the in-memory columns.
        at, self._spill_at = self._spill_at, sys.maxsize
        try:
            i = len(self._t0)
            self.add(*astuple(rec)[:7], rec.correlation_id, rec.idempotency_key, rec.workflow)
            odd = self._odd.get(i, (rec.t_start, rec.t_end, rec.attempt, rec.status))
            self._odd[i] = (*odd[:4], rec.latency_s)
        finally:
            self._spill_at = at
        if len(self._t0) >= self._spill_at:
            self._spill()

    # ------------------------------------------------------------------------------ spilling

    def spill_to(self, directory: str, segment: int | None = None) -> None:
        """From now on keep at most ``segment`` (default ``SEGMENT``) records in memory: the rest
        go to segment files in ``directory``, which the caller owns and removes."""
        n = SEGMENT if segment is None else segment
        if n < 1:
            raise ValueError(f"segment must hold at least one record, not {n}")
        self._spill_dir, self._spill_at = directory, n
        if len(self._t0) >= n:
            self._spill()

    def flush(self) -> None:
        """Write the in-memory records of a spilling table as a (short) segment."""
        if self._spill_dir is not None and len(self._t0):
            self._spill()

    def _spill(self) -> None:
        assert self._spill_dir is not None
        blk = self._memory()
        fd, path = tempfile.mkstemp(prefix="calls-", suffix=".seg", dir=self._spill_dir)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(blk.columns(), f, pickle.HIGHEST_PROTOCOL)
        self._spilled += len(blk.t0)
        self._segments.append((path, blk.info()))
        self._seg_ends.append(self._spilled)
        self._new_columns_keep_names()

    def _new_columns_keep_names(self) -> None:
        names, code = self._names, self._code
        self._new_columns()
        self._names, self._code = names, code

    def _segment(self, k: int) -> CallBlock:
        if self._cache is not None and self._cache[0] == k:
            return self._cache[1]
        with open(self._segments[k][0], "rb") as f:
            blk = CallBlock(self._seg_ends[k - 1] if k else 0, *pickle.load(f))
        self._cache = (k, blk)
        return blk

    def _memory(self) -> CallBlock:
        return CallBlock(
            self._spilled, self._t0, self._t1, self._attempt, self._status,
            self._sys, self._op, self._out, self._wf, self._corr, self._idem, self._odd,
        )  # fmt: skip

    def blocks(self) -> Iterator[CallBlock]:
        """The records' columns, oldest first, one segment (or the in-memory part) at a time."""
        for k in range(len(self._segments)):
            yield self._segment(k)
        if len(self._t0):
            yield self._memory()

    def infos(self) -> list[SegmentInfo]:
        """What each block of ``blocks()`` holds (without reading a segment back)."""
        out = [info for _, info in self._segments]
        if len(self._t0):
            out.append(self._memory().info())
        return out

    @property
    def names(self) -> list[Any]:
        """Name code -> name (system, operation, outcome and workflow codes of ``blocks()``)."""
        return self._names

    def __getstate__(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in self.__slots__}
        state["_cache"] = None  # a segment read back is not part of the table
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    # ------------------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return self._spilled + len(self._t0)

    def _block_of(self, i: int) -> CallBlock:
        if i >= self._spilled:
            return self._memory()
        return self._segment(bisect.bisect_right(self._seg_ends, i))

    def _record(self, i: int, blk: CallBlock | None = None) -> CallRecord:
        if blk is None:
            blk = self._block_of(i)
        i -= blk.start
        names = self._names
        t0, t1, attempt, status = blk.t0[i], blk.t1[i], blk.attempt[i], blk.status[i]
        latency: Any = None
        odd = blk.odd.get(i) if blk.odd else None
        if odd is not None:
            t0, t1, attempt, status = odd[:4]
            if len(odd) > 4:
                latency = odd[4]
        elif status == _NO_STATUS:
            status = None
        return CallRecord(
            t0,
            t1,
            names[blk.sys[i]],
            names[blk.op[i]],
            attempt,
            status,
            names[blk.out[i]],
            t1 - t0 if latency is None else latency,
            blk.corr[i],
            blk.idem[i],
            names[blk.wf[i]],
        )

    @overload
    def __getitem__(self, i: int) -> CallRecord: ...
    @overload
    def __getitem__(self, i: slice) -> list[CallRecord]: ...
    def __getitem__(self, i: int | slice) -> CallRecord | list[CallRecord]:
        if isinstance(i, slice):
            return [self._record(j) for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("call record index out of range")
        return self._record(i)

    def __iter__(self) -> Iterator[CallRecord]:
        for blk in self.blocks():
            for i in range(blk.start, blk.start + len(blk.t0)):
                yield self._record(i, blk)

    def column(self, name: str) -> list[Any]:
        """One column (a ``CALL_COLUMNS`` name) as the list of the values appended, in order."""
        out: list[Any] = []
        for blk in self.blocks():
            out += blk.column(name, self._names)
        return out

    def floats(self, name: str) -> array[float] | None:
        """``t_start`` / ``t_end`` as the float array itself (no copy; a spilled table's a new
        array), or None when some value is not a float (read ``column`` then)."""
        if not self._segments:
            return None if self._odd else {"t_start": self._t0, "t_end": self._t1}[name]
        out = array("d")
        for blk in self.blocks():
            if blk.odd:
                return None
            out += blk.t0 if name == "t_start" else blk.t1
        return out


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What a block of call records holds, known without reading it back: whether any ``status``
    is None and any id is present (they decide the calls.parquet column types)."""

    n: int
    status_none: bool
    corr_any: bool
    idem_any: bool
    odd: bool


class CallBlock:
    """A run of a ``CallTable``'s records as columns: a segment read back, or the in-memory part.
    ``start`` is the index of its first record; names are codes into ``CallTable.names``."""

    __slots__ = ("start", "t0", "t1", "attempt", "status", "sys", "op", "out", "wf", "corr", "idem", "odd")

    def __init__(
        self,
        start: int,
        t0: array[float],
        t1: array[float],
        attempt: array[int],
        status: array[int],
        sys_: array[int],
        op: array[int],
        out: array[int],
        wf: array[int],
        corr: list[str | None],
        idem: list[str | None],
        odd: dict[int, tuple[Any, ...]],
    ) -> None:
        self.start, self.t0, self.t1, self.attempt, self.status = start, t0, t1, attempt, status
        self.sys, self.op, self.out, self.wf, self.corr, self.idem, self.odd = sys_, op, out, wf, corr, idem, odd

    def columns(self) -> tuple[Any, ...]:
        return (self.t0, self.t1, self.attempt, self.status, self.sys, self.op, self.out, self.wf, self.corr, self.idem, self.odd)  # fmt: skip

    def info(self) -> SegmentInfo:
        return SegmentInfo(
            len(self.t0),
            _NO_STATUS in self.status,
            any(c is not None for c in self.corr),
            any(c is not None for c in self.idem),
            bool(self.odd),
        )

    def column(self, name: str, names: list[Any]) -> list[Any]:
        """One column of this block as the list of the values appended."""
        if name in ("system", "operation", "outcome", "workflow"):
            codes = {"system": self.sys, "operation": self.op, "outcome": self.out, "workflow": self.wf}[name]
            return [names[c] for c in codes]
        if name == "correlation_id":
            return list(self.corr)
        if name == "idempotency_key":
            return list(self.idem)
        if name == "latency_s":
            out: list[Any] = [b - a for a, b in zip(self.t0, self.t1, strict=True)]
        elif name == "status":
            out = [None if s == _NO_STATUS else s for s in self.status]
        else:
            out = {"t_start": self.t0, "t_end": self.t1, "attempt": self.attempt}[name].tolist()
        if self.odd:
            k = ("t_start", "t_end", "attempt", "status", "latency_s").index(name)
            for i, odd in self.odd.items():
                if k < 4:
                    out[i] = odd[k]
                elif len(odd) > 4:
                    out[i] = odd[4]
                else:
                    out[i] = odd[1] - odd[0]
        return out


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

    # A ``CallTable`` by default; the live service swaps in a bounded deque or a ``CallLog``.
    calls: MutableSequence[CallRecord] | CallTable = field(default_factory=CallTable)
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
        self._count(rec.system, rec.outcome, rec.latency_s)

    def record_call(
        self,
        t_start: float,
        t_end: float,
        system: str,
        operation: str,
        attempt: int,
        status: int | None,
        outcome: str,
        correlation_id: str | None,
        idempotency_key: str | None,
        workflow: str = "",
    ) -> None:
        """``record`` without a ``CallRecord`` when the calls are a ``CallTable`` (the common case).
        The parameters repeat ``CallTable.add``'s on purpose: named and typed for the caller, and
        passed on as they are, where packing them into a row and unpacking it again was a good part
        of recording (once per attempt). Counting goes through ``_count``: ~0.1 us a call."""
        calls = self.calls
        if type(calls) is CallTable:
            calls.add(
                t_start, t_end, system, operation, attempt, status, outcome, correlation_id, idempotency_key, workflow
            )
        else:
            calls.append(
                CallRecord(
                    t_start,
                    t_end,
                    system,
                    operation,
                    attempt,
                    status,
                    outcome,
                    t_end - t_start,
                    correlation_id,
                    idempotency_key,
                    workflow,
                )
            )
        self._count(system, outcome, t_end - t_start)

    def _count(self, system: str, outcome: str, latency_s: float) -> None:
        self.attempts[system] += 1
        if outcome != "ok":
            self.failures[system] += 1
        if outcome != "breaker_open":
            h = self.latency.get(system)
            if h is None:
                h = self.latency[system] = Histogram()
            h.observe(latency_s)


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
