"""Durable state of the reference integration: inbox, workflow state, outbox, idempotency records,
dead-letter queue and business-exception queue.

``MemoryStore`` serves virtual mode (one process, nothing to survive). ``SqliteStore`` serves the
live service: an event is acknowledged to the webhook sender only after ``accept_event`` committed,
so a SIGKILL after the ack loses nothing; on restart ``pending_events()`` returns what was accepted
but not finished, and the service resumes it (workflows are idempotent by construction).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # the integration never imports the harness at run time
    from mocks.coldmap import ColdStore, KeyCodec

Clock = Callable[[], float]
Category = Literal["technical", "business"]


@dataclass(slots=True)
class InboxEvent:
    id: str
    source: str
    type: str
    body: Any
    received_at: float
    status: str = "pending"  # pending | done | failed


@dataclass(slots=True)
class DlqEntry:
    id: int
    category: Category
    reason: str
    workflow: str
    payload: Any
    created_at: float
    replayed_at: float | None = None


@dataclass(slots=True)
class ExceptionEntry:
    id: int
    reason: str
    workflow: str
    payload: Any
    created_at: float


@dataclass(slots=True)
class OutboxEntry:
    id: int
    topic: str
    payload: Any
    created_at: float


def _event_fields(event: Any) -> tuple[str, str, str, Any]:
    """Accept the webhook envelope as a dict ({id, source, type, data}) or any object with those."""
    get = event.get if isinstance(event, dict) else lambda k, d=None: getattr(event, k, d)
    body = event if isinstance(event, dict) else get("data")
    return str(get("id")), str(get("source", "") or ""), str(get("type", "") or ""), body


class Store(Protocol):
    def accept_event(self, event: Any, now: float | None = None) -> bool: ...
    def pending_events(self) -> list[InboxEvent]: ...
    def mark_done(self, event_id: str, status: str = "done") -> None: ...
    def get_state(self, key: str) -> Any: ...
    def put_state(self, key: str, value: Any, outbox: Iterable[tuple[str, Any]] = ()) -> None: ...
    def outbox_pending(self) -> list[OutboxEntry]: ...
    def outbox_done(self, entry_id: int) -> None: ...
    def idem_get(self, key: str) -> Any: ...
    def idem_put(self, key: str, value: Any) -> None: ...
    def dlq_add(
        self, category: Category, reason: str, workflow: str, payload: Any, now: float | None = None
    ) -> int: ...
    def dlq_list(self, include_replayed: bool = False) -> list[DlqEntry]: ...
    def dlq_take_for_replay(self, entry_id: int, now: float | None = None) -> DlqEntry | None: ...
    def dlq_size(self) -> int: ...
    def exceptions_add(self, reason: str, workflow: str, payload: Any, now: float | None = None) -> int: ...
    def exceptions_list(self) -> list[ExceptionEntry]: ...


# --------------------------------------------------------------------------------------- memory

# An order state pages out after two idle spill intervals (``MemoryStore.use_cold``), not one: an
# order's next webhook (ready to ship, the pickup scan) often comes within a day, and reading it
# back from disk and writing it out again cost more CPU than the extra interval's states in memory
# (quarter_end_1m at 8,000: a third fewer loads).
STATE_IDLE_SPILLS = 2


class StateWatcher(Protocol):
    def put(self, key: str, value: Any) -> None: ...
    def due(self, start: float, now: float) -> Any: ...


# The ids the mock cores mint are "<system>-evt-<n:08d>" (``mocks.core.base.SystemCore.new_event``).
_EVT = "-evt-"
_BITMAP_LIMIT = 1 << 26  # n at or above it is kept as a string: a bitmap never exceeds 8 MB


class EventIds:
    """A set of webhook event ids, for dedup. An id of the cores' form is one bit in a bitmap per
    prefix (a quarter's few million webhooks cost a string and a set slot each, ~100 B, before);
    any other id is kept as the string. The form is tested exactly (the id is the formatting of
    its number), so an id is always kept the same way and membership is that of a plain set."""

    def __init__(self) -> None:
        self._bits: dict[str, bytearray] = {}
        self._other: set[str] = set()

    def add(self, eid: str) -> bool:
        """Add ``eid``; False if it was there already."""
        prefix, sep, digits = eid.rpartition(_EVT)
        # ``f"{n:08d}" == digits`` without formatting n: ASCII digits are that exactly when there
        # are eight of them, or more without a leading zero.
        width = len(digits)
        if sep and (width == 8 or (width > 8 and digits[0] != "0")) and digits.isascii() and digits.isdigit():
            n = int(digits)
            if n < _BITMAP_LIMIT:
                bits = self._bits.get(prefix)
                if bits is None:
                    bits = self._bits[prefix] = bytearray()
                i, mask = n >> 3, 1 << (n & 7)
                if i >= len(bits):
                    bits.extend(bytes(max(i + 1, 2 * len(bits)) - len(bits)))
                elif bits[i] & mask:
                    return False
                bits[i] |= mask
                return True
        if eid in self._other:
            return False
        self._other.add(eid)
        return True


def _refs(value: Any) -> int:
    return sys.getrefcount(value)


def _list_alone() -> int:
    # What ``_refs`` says in ``MemoryStore.state_add`` of a list only the state map holds, taken
    # the same way (a local read from a map, passed to ``_refs``): measured, not assumed, because
    # how a frame's locals and arguments count differs between CPython versions.
    state = {"k": [None]}
    ids = state.get("k") or []
    return _refs(ids)


_LIST_ALONE = _list_alone()


class MemoryStore:
    """Virtual-mode store; ``clock`` is usually ``lambda: env.now``.

    ``index`` (optional, e.g. ``reconciliation.DueIndex``) sees every ``put_state`` and answers the
    ``DueOrders`` effect; attach it before the first write or it misses state.

    ``keep_inbox=False`` (virtual runs) remembers only the ids of accepted events, for dedup: the
    envelopes are kept for a restart to resume them, and nothing restarts inside one process. A
    quarter's webhooks are several envelopes per order, the largest thing the integration held."""

    def __init__(self, clock: Clock = lambda: 0.0, index: StateWatcher | None = None, keep_inbox: bool = True) -> None:
        self.clock = clock
        self.index = index
        self.keep_inbox = keep_inbox
        self._seen = EventIds()
        self.inbox: dict[str, InboxEvent] = {}
        self.state: MutableMapping[str, Any] = {}
        self.outbox: dict[int, OutboxEntry] = {}
        self.idem: dict[str, Any] = {}
        self.dlq: dict[int, DlqEntry] = {}
        self.exceptions: list[ExceptionEntry] = []
        self._ids = itertools.count(1)
        # The members of the list at ``_members_of`` (``state_add``); None: no set kept.
        self._members_of: str | None = None
        self._members: set[str] = set()

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    def use_cold(self, store: ColdStore, keys: KeyCodec | None = None) -> None:
        """Virtual runs (``sim.virtual``): page idle values of ``state`` out to ``store``;
        ``keys``, the codec of the order states' keys (``workflows.state_key``), keeps a number
        in their place, not a string and a dict slot per order of the quarter.

        ``state`` is what grows with the orders: one dict per order (``order:<crm id>``, written
        on every step of its workflows, then read only by a late or duplicate webhook or the
        audit sweep) and the sweep's hourly buckets of touched orders (``touched:<hour>``, idle
        once the hour and its look-back have passed). Every write replaces a value (workflows
        ``put`` a fresh dict), so nothing outside edits what the map holds; ``store.alone``
        still refuses a value while an inner list of it is shared with a workflow in flight, and
        an order's ``ship_to`` goes by reference into the context's address table
        (``WorkflowContext.use_cold``). The sweep does not keep idle orders hot: its index
        (``reconciliation.DueIndex``, in memory, packed) names the orders due, and it reads only
        those, each of which it then audits (calls, and an ``audited`` write) anyway.
        What stays: the event ids (a bitmap, not per order), the DLQ and the exception queue
        (per failure, few; their entries are handed out and edited: ``dlq_take_for_replay``), and
        the inbox / outbox / idempotency maps, which virtual runs leave empty."""
        state = store.map(
            "integration_state",
            store.dumps_refs,
            store.loads_refs,
            store.alone,
            idle_spills=STATE_IDLE_SPILLS,
            codec=keys,
        )
        state.update(self.state)
        self.state = state

    def accept_event(self, event: Any, now: float | None = None) -> bool:
        if not self.keep_inbox:
            return self._seen.add(str(event.get("id") if isinstance(event, dict) else getattr(event, "id", None)))
        eid, source, type_, body = _event_fields(event)
        if eid in self.inbox:
            return False
        self.inbox[eid] = InboxEvent(eid, source, type_, body, self._now(now))
        return True

    def pending_events(self) -> list[InboxEvent]:
        return sorted((e for e in self.inbox.values() if e.status == "pending"), key=lambda e: e.received_at)

    def mark_done(self, event_id: str, status: str = "done") -> None:
        if event_id in self.inbox:
            self.inbox[event_id].status = status

    def get_state(self, key: str) -> Any:
        return self.state.get(key)

    def get_states(self, keys: Iterable[str]) -> list[Any]:
        """``get_state`` of each key (the audit sweep reads thousands at once)."""
        return list(map(self.state.get, keys))

    def state_add(self, key: str, member: str) -> bool:
        """The ``StateAdd`` effect: leaves the state ``workflows.save``'s fallback leaves (``StateGet``,
        then ``StatePut`` of the list with ``member`` appended unless it is there), and ``index``
        sees the same write. The hourly bucket of touched orders holds every order of its hour:
        testing membership in the list and copying it made each new order cost as much as the
        orders before it in that hour. So the bucket being filled has a set of its members beside
        it (one bucket at a time: only the current hour's is added to), and the stored list is
        extended in place while nothing but the store holds it: the sweep without an index keeps
        the lists it read across its audits and must see them as read, as it did when every add
        replaced the list."""
        state = self.state
        ids = state.get(key) or []  # a ColdMap reads a paged-out list back and marks it in use
        if type(ids) is not list:  # not a bucket this store wrote: as the fallback, literally
            if member not in ids:
                self.put_state(key, [*ids, member])
            return True
        members = self._members
        if key != self._members_of or len(members) != len(ids):
            # Another bucket, or this one rewritten meanwhile (``put_state`` forgets the set):
            # afresh from the list, once per hour and per rewrite, not once per order.
            members = self._members = set(ids)
            self._members_of = key
        if member in members:
            return True
        members.add(member)
        if _refs(ids) <= _LIST_ALONE:
            ids.append(member)
        else:
            ids = [*ids, member]
        # ``put_state`` without forgetting the set it keeps in step.
        state[key] = ids
        if self.index is not None:
            self.index.put(key, ids)  # the index reads the members past those it has seen
        return True

    def put_state(self, key: str, value: Any, outbox: Iterable[tuple[str, Any]] = ()) -> None:
        self.state[key] = value
        if key == self._members_of:
            self._members_of = None  # rewritten (the sweep drops closed orders): the set is stale
        if self.index is not None:
            self.index.put(key, value)
        for topic, payload in outbox:
            i = next(self._ids)
            self.outbox[i] = OutboxEntry(i, topic, payload, self.clock())

    def outbox_pending(self) -> list[OutboxEntry]:
        return list(self.outbox.values())

    def outbox_done(self, entry_id: int) -> None:
        self.outbox.pop(entry_id, None)

    def idem_get(self, key: str) -> Any:
        return self.idem.get(key)

    def idem_put(self, key: str, value: Any) -> None:
        self.idem[key] = value

    def dlq_add(self, category: Category, reason: str, workflow: str, payload: Any, now: float | None = None) -> int:
        i = next(self._ids)
        self.dlq[i] = DlqEntry(i, category, reason, workflow, payload, self._now(now))
        return i

    def dlq_list(self, include_replayed: bool = False) -> list[DlqEntry]:
        return [e for e in self.dlq.values() if include_replayed or e.replayed_at is None]

    def dlq_take_for_replay(self, entry_id: int, now: float | None = None) -> DlqEntry | None:
        e = self.dlq.get(entry_id)
        if e is None or e.replayed_at is not None:
            return None
        e.replayed_at = self._now(now)
        return e

    def dlq_size(self) -> int:
        return sum(1 for e in self.dlq.values() if e.replayed_at is None)

    def exceptions_add(self, reason: str, workflow: str, payload: Any, now: float | None = None) -> int:
        i = next(self._ids)
        self.exceptions.append(ExceptionEntry(i, reason, workflow, payload, self._now(now)))
        return i

    def exceptions_list(self) -> list[ExceptionEntry]:
        return list(self.exceptions)


# --------------------------------------------------------------------------------------- sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL,
    received_at REAL NOT NULL, status TEXT NOT NULL DEFAULT 'pending');
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox(status, received_at);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS state_members (
    seq INTEGER PRIMARY KEY, key TEXT NOT NULL, member TEXT NOT NULL, UNIQUE (key, member));
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dlq (
    id INTEGER PRIMARY KEY AUTOINCREMENT, category TEXT NOT NULL CHECK (category IN ('technical', 'business')),
    reason TEXT NOT NULL, workflow TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL, replayed_at REAL);
CREATE TABLE IF NOT EXISTS exceptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reason TEXT NOT NULL, workflow TEXT NOT NULL, payload TEXT NOT NULL,
    created_at REAL NOT NULL);
"""


_PUT_STATE = (
    "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)"
    " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)


STATE_CACHE_SIZE = 50_000
_MISSING: Any = object()


def _dump(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), default=str)


class SqliteStore:
    """Live-mode store in one SQLite file.

    WAL mode: readers (admin endpoints, /metrics) never block the writer. ``synchronous=NORMAL``
    by default: in WAL mode a commit is durable against a process crash (SIGKILL, which is the
    failure the harness injects) because the WAL frames are in the OS page cache before COMMIT
    returns; only an OS crash or power loss can drop the last commits. ``FULL`` adds an fsync per
    commit for that case at a large throughput cost; pass ``synchronous="FULL"`` to get it.
    One connection guarded by a lock: calls are short and the service is single-process.
    State rows are cached write-through (this store is their only writer).
    Single-statement writes run in autocommit (SQLite makes each statement its own transaction,
    same durability, half the statements); several statements that must land together use
    ``BEGIN IMMEDIATE ... COMMIT``.
    """

    def __init__(self, path: str | Path, clock: Clock = time.time, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in {"NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        # Write-through cache of state rows as stored (JSON text). This store is the table's only
        # writer (one connection, one process), so the cache cannot go stale; it saves the SELECT
        # of the many state reads a workflow makes (load, merge on save, status re-check).
        self._state: dict[str, str | None] = {}
        # Keys whose list value has members added one at a time (``state_add``) in state_members.
        self._member_keys: set[str] = {r[0] for r in self._db.execute("SELECT DISTINCT key FROM state_members")}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    def _tx(self) -> _Tx:
        return _Tx(self)

    def accept_event(self, event: Any, now: float | None = None) -> bool:
        eid, source, type_, body = _event_fields(event)
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO inbox (id, source, type, body, received_at) VALUES (?, ?, ?, ?, ?)",
                (eid, source, type_, _dump(body), self._now(now)),
            )
            return cur.rowcount == 1

    def pending_events(self) -> list[InboxEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, source, type, body, received_at, status FROM inbox WHERE status = 'pending'"
                " ORDER BY received_at, rowid"
            ).fetchall()
        return [InboxEvent(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def event_status(self, event_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT status FROM inbox WHERE id = ?", (event_id,)).fetchone()
        return row[0] if row else None

    def mark_done(self, event_id: str, status: str = "done") -> None:
        with self._lock:
            self._db.execute("UPDATE inbox SET status = ? WHERE id = ?", (status, event_id))

    def get_state(self, key: str) -> Any:
        if key in self._member_keys:
            return self._members(key)
        return self._get_state(key)

    def _get_state(self, key: str) -> Any:
        text = self._state.get(key, _MISSING)
        if text is _MISSING:
            with self._lock:
                row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
            text = row[0] if row else None
            self._remember(key, text)
        # Parsed afresh on every read: callers own (and mutate) what they get back.
        return json.loads(text) if text is not None else None

    def _remember(self, key: str, text: str | None) -> None:
        if len(self._state) >= STATE_CACHE_SIZE:
            self._state.clear()  # crude but bounded; a re-read costs one SELECT
        self._state[key] = text

    def _members(self, key: str) -> list[Any]:
        """The list at ``key``: its stored value, then the members added since, each once."""
        base = self._get_state(key)
        with self._lock:
            rows = self._db.execute("SELECT member FROM state_members WHERE key = ? ORDER BY seq", (key,)).fetchall()
        return list(dict.fromkeys([*(base if isinstance(base, list) else []), *(r[0] for r in rows)]))

    def state_add(self, key: str, member: str) -> bool:
        """Add ``member`` to the list at ``key`` unless it is there (the ``StateAdd`` effect). One
        INSERT into an index, whatever the size of the list: the hourly buckets of touched orders
        hold every order of the hour, and rewriting one as JSON on every new order made each order
        cost as much as all the orders before it in that hour. Durable on return (autocommit)."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO state_members (key, member) VALUES (?, ?)", (key, member))
        self._member_keys.add(key)
        return True

    def put_state(self, key: str, value: Any, outbox: Iterable[tuple[str, Any]] = ()) -> None:
        """State change and the downstream effects it implies commit together (transactional
        outbox): after a crash either both exist or neither, so nothing is sent twice or never.
        A put replaces the whole value, members added with ``state_add`` included."""
        now = self.clock()
        row = (key, _dump(value), now)
        outbox = list(outbox)
        members = key in self._member_keys
        if not outbox and not members:  # one statement: autocommit makes it its own transaction
            with self._lock:
                self._db.execute(_PUT_STATE, row)
        else:
            with self._tx() as db:
                if members:
                    db.execute("DELETE FROM state_members WHERE key = ?", (key,))
                db.execute(_PUT_STATE, row)
                for topic, payload in outbox:
                    db.execute(
                        "INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)",
                        (topic, _dump(payload), now),
                    )
        self._remember(key, row[1])  # only once committed
        self._member_keys.discard(key)

    def outbox_pending(self) -> list[OutboxEntry]:
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload, created_at FROM outbox ORDER BY id").fetchall()
        return [OutboxEntry(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def outbox_done(self, entry_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (entry_id,))

    def idem_get(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM idempotency WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def idem_put(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO idempotency (key, value, created_at) VALUES (?, ?, ?)",
                (key, _dump(value), self.clock()),
            )

    def dlq_add(self, category: Category, reason: str, workflow: str, payload: Any, now: float | None = None) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO dlq (category, reason, workflow, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                (category, reason, workflow, _dump(payload), self._now(now)),
            )
            return int(cur.lastrowid or 0)

    def _dlq_rows(self, where: str, args: tuple[Any, ...] = ()) -> list[DlqEntry]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, category, reason, workflow, payload, created_at, replayed_at FROM dlq {where} ORDER BY id",
                args,
            ).fetchall()
        return [DlqEntry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    def dlq_list(self, include_replayed: bool = False) -> list[DlqEntry]:
        return self._dlq_rows("" if include_replayed else "WHERE replayed_at IS NULL")

    def dlq_take_for_replay(self, entry_id: int, now: float | None = None) -> DlqEntry | None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE dlq SET replayed_at = ? WHERE id = ? AND replayed_at IS NULL", (self._now(now), entry_id)
            )
            if cur.rowcount != 1:
                return None
        rows = self._dlq_rows("WHERE id = ?", (entry_id,))
        return rows[0] if rows else None

    def dlq_size(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM dlq WHERE replayed_at IS NULL").fetchone()[0])

    def exceptions_add(self, reason: str, workflow: str, payload: Any, now: float | None = None) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO exceptions (reason, workflow, payload, created_at) VALUES (?, ?, ?, ?)",
                (reason, workflow, _dump(payload), self._now(now)),
            )
            return int(cur.lastrowid or 0)

    def exceptions_list(self) -> list[ExceptionEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, reason, workflow, payload, created_at FROM exceptions ORDER BY id"
            ).fetchall()
        return [ExceptionEntry(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT under the store lock (explicit, since autocommit is on)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        self.store._db.execute("BEGIN IMMEDIATE")
        return self.store._db

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store._lock.release()


def as_dict(entry: InboxEvent | DlqEntry | ExceptionEntry | OutboxEntry) -> dict[str, Any]:
    return asdict(entry)
