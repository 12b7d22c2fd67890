"""Effects yielded by integration workflows (sans-I/O).

A workflow is a generator. It yields an effect and receives its result back via ``send`` (or an
exception via ``throw``). The same workflow runs under the SimPy interpreter (virtual mode) and the
asyncio + httpx interpreter (live mode); it never reads a clock or touches a socket itself.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

# Effects are values nobody changes once yielded, but not frozen: several are built per call
# (the Call, the Result, the state reads and writes around it) and a frozen dataclass sets each
# field through ``object.__setattr__``, ~3x the cost of a plain one. ``unsafe_hash`` keeps them
# hashable (by fields) as frozen ones were.


@dataclass(slots=True, unsafe_hash=True)
class Call:
    """One request to a downstream system, by operation name (see each mock's route table)."""

    system: str
    operation: str
    payload: Any = None
    params: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    correlation_id: str | None = None


@dataclass(slots=True, unsafe_hash=True)
class Sleep:
    seconds: float


@dataclass(slots=True, unsafe_hash=True)
class Now:
    """Ask the interpreter for the current time (simulated seconds since scenario start)."""


@dataclass(slots=True, unsafe_hash=True)
class Publish:
    """Emit an internal event (metrics, business-exception queue, follow-up workflow triggers)."""

    topic: str
    event: dict[str, Any]


@dataclass(slots=True, unsafe_hash=True)
class StateGet:
    """Read workflow state by key (durable in the live service); returns the value or None."""

    key: str


@dataclass(slots=True, unsafe_hash=True)
class StateGetMany:
    """Read several keys at one instant; returns their values in order (None where missing).
    Interpreters without it may answer None: ``reconciliation.states`` then falls back to one
    ``StateGet`` per key."""

    keys: tuple[str, ...]


@dataclass(slots=True, unsafe_hash=True)
class DueOrders:
    """The audit sweep's work list from an index kept beside the state (``MemoryStore.index``):
    ``(ids, closed)`` = the open orders of the look-back from ``start`` that may pass the sweep's
    filters at ``now``, in the sweep's walk order, and the closed orders still in its buckets.
    Interpreters or stores without the index answer None: the sweep then walks its buckets."""

    start: float
    now: float


@dataclass(slots=True, unsafe_hash=True)
class StatePut:
    """Write workflow state by key (value: JSON-serialisable)."""

    key: str
    value: Any


@dataclass(slots=True, unsafe_hash=True)
class StateAdd:
    """Add ``member`` to the list stored at ``key`` unless it is already there (a set kept in
    insertion order); answered True. The list can grow large (every order touched in an hour), so
    a store that can add one member without rewriting the list says so by answering; an
    interpreter or store without it answers None, and the workflow then reads the list, appends and
    writes it back (``StateGet`` + ``StatePut``), which leaves the same state."""

    key: str
    member: str


@dataclass(slots=True, unsafe_hash=True)
class Result:
    """What a Call returns to the workflow: the downstream response after policies ran."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 1


Effect = Call | Sleep | Now | Publish | StateGet | StateGetMany | StatePut | StateAdd | DueOrders
Workflow = Generator[Effect, Any, Any]
