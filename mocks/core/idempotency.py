"""Idempotency-Key handling after the IETF draft (draft-ietf-httpapi-idempotency-key-header).

- first request with a key: processed, its response stored;
- the same key and the same payload again: the stored response is replayed;
- the same key while the first request is still in flight: 409 Conflict;
- the same key with a different payload: 422 Unprocessable Content.

Pure: time comes in as an argument, so the store works under SimPy time and wall time alike.
Keys are scoped per client, as the draft recommends.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import struct
from typing import TYPE_CHECKING, Any

import orjson

from mocks.coldmap import ColdStats
from mocks.core.base import Response, error

if TYPE_CHECKING:
    from mocks.coldmap import ColdStore

# One encoder for every request: ``json.dumps`` with options builds a new one per call.
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode
_FAST = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _refuse(_: Any) -> Any:
    raise TypeError


class _NonFinite(Exception):
    pass


def _non_finite(_: str) -> Any:
    raise _NonFinite


def fingerprint(op: str, body: Any) -> bytes:
    """Equal for two requests exactly when their canonical JSON (sorted keys, ``default=str``) is
    equal; only ever compared with another fingerprint, so it need not be that text's hash.

    It is ``G(canonical JSON)`` with ``G(text)`` = ``b"o"`` + the sha256 digest of orjson's sorted
    encoding of ``json.loads(text)`` when that parses without NaN/Infinity and encodes without
    ``null``, else ``b"j"`` + the digest of the text (33 bytes: the store keeps it for the ttl);
    ``G`` is one-to-one, so equality is exactly as before. The fast path encodes the body with
    orjson directly (several times cheaper than the json module): for bodies of JSON types (their
    subclasses, tuples, UUIDs) without None, NaN or infinities, that is the same bytes as ``G``'s.
    Whatever else (``default`` needed: datetimes, dataclasses, non-str keys, big ints, other
    objects; or ``null`` in the output) takes the exact route through the text. Not covered: a
    plain ``Enum`` member (no str/int mixin) in a body, which orjson writes as its value and json
    as ``str(member)``; no JSON request body can hold one."""
    if body is None:  # bodiless posts (goods issue, invoice): ``G`` is the text's hash
        return b"j" + hashlib.sha256(_ENCODE([op, None]).encode()).digest()
    try:
        raw = orjson.dumps([op, body], default=_refuse, option=_FAST)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        raw = b"null"
    if b"null" not in raw:
        return b"o" + hashlib.sha256(raw).digest()
    text = _ENCODE([op, body])  # raises exactly where the json fingerprint always did
    try:
        raw = orjson.dumps(json.loads(text, parse_constant=_non_finite), default=_refuse, option=_FAST)
    except (TypeError, _NonFinite):
        raw = b"null"
    if b"null" not in raw:
        return b"o" + hashlib.sha256(raw).digest()
    return b"j" + hashlib.sha256(text.encode()).digest()


# A record is one ``bytes``: the creation time (a double), the fingerprint's length and the
# fingerprint (the head); then, once complete, ``marshal`` of (status, body, headers). A response
# marshal might not give back exactly is kept as the object, in a tuple (head, response). A surge
# holds thousands of records for the 24 h ttl: ~0.5 KB each so, ~1.6 KB as a slotted record, a
# ``Response``, its body's dicts and strings and a hex fingerprint (docs/benchmarks.md).
_CREATED = struct.Struct("<d")
_FP_AT = _CREATED.size + 1
# What marshal does not give back as it was: a buffer (bytearray, array, memoryview) comes back as
# bytes, a set iterates in its rebuilt table's order. orjson without ``default`` and with subclasses
# passed through refuses both (and other types, and cycles), so a response it encodes has only
# exact str, int, float, bool, None, dict, list and tuple, and types marshal then refuses (an Enum,
# a UUID). Either refusal keeps the response as objects, which is always exact. ~5x faster than a
# walk over the parts in Python.
_EXACT_ONLY = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_Record = bytes | tuple[bytes, Response]


def _head(fp: bytes, now: float) -> bytes:
    return _CREATED.pack(now) + bytes((len(fp),)) + fp


def _pack(head: bytes, resp: Response) -> _Record:
    what = (resp.status, resp.body, resp.headers)
    try:
        orjson.dumps(what, option=_EXACT_ONLY)
        return head + marshal.dumps(what)
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError; marshal: ValueError
        return head, resp


def _created(rec: _Record) -> float:
    return _CREATED.unpack_from(rec if type(rec) is bytes else rec[0])[0]  # type: ignore[no-any-return]


class _ColdRecords:
    """The records of an ``IdempotencyStore`` that went a whole spill interval (an hour of a
    virtual run) since they were made, in a table of the run's cold file (``use_cold``).

    A surge holds every keyed request of the last 24 h: ~0.5 records per order of a quarter at
    its peak, ~0.6 KB each in memory (record, key tuple, dict slot). A retry or a duplicate comes
    within minutes, so an hour-old record is seldom read again, yet it must stay until the ttl.
    Order is kept exactly: records are made in time order, the oldest go out first and keep their
    sequence here, so the store's oldest record is this table's first while it has any."""

    def __init__(self, owner: IdempotencyStore, store: ColdStore, name: str) -> None:
        self.owner = owner
        self.stats = ColdStats()
        self.n = 0  # rows
        self._seq = 0
        self._mark = float("-inf")  # the newest record in memory at the previous spill
        # Records completed out here with a response kept as objects (``_pack``; the cores' never
        # are): kept as they are, their rows holding their place.
        self.objects: dict[tuple[str, str], _Record] = {}
        db = self.db = store.attach(name, self)
        db.execute(
            f"CREATE TABLE {name} (client TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL,"
            " created REAL NOT NULL, rec BLOB NOT NULL, PRIMARY KEY (client, key))"
            " WITHOUT ROWID"
        )
        db.execute(f"CREATE INDEX {name}_seq ON {name} (seq)")
        db.execute(f"CREATE INDEX {name}_created ON {name} (created)")
        self._get = f"SELECT rec FROM {name} WHERE client = ? AND key = ?"
        self._del = f"DELETE FROM {name} WHERE client = ? AND key = ?"
        self._put = f"UPDATE {name} SET rec = ? WHERE client = ? AND key = ?"
        self._add = f"INSERT INTO {name} (client, key, seq, created, rec) VALUES (?, ?, ?, ?, ?)"
        self._oldest = f"SELECT client, key FROM {name} ORDER BY seq LIMIT 1"
        # The index narrows to rows made before ``?1``; the ttl test is the store's own expression.
        self._purge = f"DELETE FROM {name} WHERE created < ?1 AND ?2 - created > ?3"
        self._clear = f"DELETE FROM {name}"

    def get(self, k: tuple[str, str]) -> _Record | None:
        row = self.db.execute(self._get, k).fetchone()
        if row is None:
            return None
        self.stats.loaded += 1
        return self.objects.get(k) or bytes(row[0])

    def delete(self, k: tuple[str, str]) -> None:
        self.objects.pop(k, None)
        self.n -= self.db.execute(self._del, k).rowcount

    def put(self, k: tuple[str, str], rec: _Record) -> None:
        """Replace a record, keeping its place."""
        if type(rec) is bytes:
            self.objects.pop(k, None)
            self.db.execute(self._put, (rec, *k))
        else:
            self.objects[k] = rec

    def pop_oldest(self) -> None:
        row = self.db.execute(self._oldest).fetchone()
        if row is not None:
            self.delete((row[0], row[1]))

    def purge(self, now: float, ttl: float) -> int:
        for k, rec in list(self.objects.items()):
            if now - _created(rec) > ttl:  # its row goes below: the same creation time
                del self.objects[k]
        gone = self.db.execute(self._purge, (now - ttl + 1.0, now, ttl)).rowcount
        self.n -= gone
        return int(gone)

    def clear(self) -> None:
        self.db.execute(self._clear)
        self.objects.clear()
        self.n = 0

    def spill(self) -> int:
        """Write out the records made before the previous spill: the front of the owner's dict."""
        records, mark = self.owner._records, self._mark
        rows = []
        for k, rec in records.items():
            # A record kept as objects stays, and so do all after it (order): a copy of its
            # objects could differ from them (a set rebuilt), and the cores' responses all pack.
            if type(rec) is not bytes:
                break
            created = _created(rec)
            if created > mark:
                break
            self._seq += 1
            rows.append((*k, self._seq, created, rec))
        if records:
            self._mark = _created(next(reversed(records.values())))
        if rows:
            self.db.execute("BEGIN")
            self.db.executemany(self._add, rows)
            self.db.execute("COMMIT")
            for row in rows:
                del records[(row[0], row[1])]
            self.n += len(rows)
            self.stats.spilled += len(rows)
            self.stats.bytes += sum(len(row[4]) for row in rows)
        return len(rows)


class IdempotencyStore:
    def __init__(self, ttl: float = 86400.0, max_keys: int = 1_000_000) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        # In the order they were made (so in creation time): the oldest first.
        self._records: dict[tuple[str, str], _Record] = {}
        self._cold: _ColdRecords | None = None
        self.replays = 0
        self.conflicts = 0
        self.mismatches = 0

    def use_cold(self, store: ColdStore, name: str) -> None:
        """Virtual runs: records an hour old page out to ``store`` (``_ColdRecords``), table ``name``."""
        self._cold = _ColdRecords(self, store, name)

    def __len__(self) -> int:
        return len(self._records) + (self._cold.n if self._cold is not None else 0)

    def _find(self, k: tuple[str, str]) -> tuple[_Record | None, bool]:
        """The record of ``k`` and whether it is in the cold table."""
        rec = self._records.get(k)
        cold = self._cold
        if rec is None and cold is not None and cold.n:
            rec = cold.get(k)
            return rec, rec is not None
        return rec, False

    def _drop(self, k: tuple[str, str], in_cold: bool) -> None:
        if in_cold:
            self._cold.delete(k)  # type: ignore[union-attr]
        else:
            del self._records[k]

    def begin(self, client: str, key: str, fp: bytes, now: float) -> Response | None:
        """None: go ahead and process (then ``complete`` or ``abandon``). Otherwise the answer.
        ``fp``: the request's ``fingerprint`` (any bytes shorter than 256)."""
        k = (client, key)
        rec, in_cold = self._find(k)
        if rec is not None:
            head = rec if type(rec) is bytes else rec[0]
            if now - _CREATED.unpack_from(head)[0] > self.ttl:
                self._drop(k, in_cold)
                rec = None
        if rec is None:
            if len(self) >= self.max_keys:
                # Evict the oldest (dicts keep insertion order): bounded memory in long live runs.
                cold = self._cold
                if cold is not None and cold.n:
                    cold.pop_oldest()
                else:
                    self._records.pop(next(iter(self._records)))
            self._records[k] = _head(fp, now)
            return None
        end = _FP_AT + head[_CREATED.size]
        if head[_FP_AT:end] != fp:
            self.mismatches += 1
            return error(
                422,
                "idempotency_key_reused",
                f"Idempotency-Key {key!r} was used with a different payload",
                "Idempotency-Key",
            )
        if type(rec) is bytes:
            if len(rec) == end:
                self.conflicts += 1
                return error(
                    409, "request_in_progress", f"a request with Idempotency-Key {key!r} is still being processed"
                )
            self.replays += 1
            # A new body per replay: nothing handed out aliases what is stored.
            status, body, headers = marshal.loads(memoryview(rec)[end:])
            return Response(status, body, {**headers, "idempotent-replayed": "true"})
        self.replays += 1
        r = rec[1]
        return Response(r.status, r.body, {**r.headers, "idempotent-replayed": "true"})

    def complete(self, client: str, key: str, resp: Response) -> None:
        k = (client, key)
        rec, in_cold = self._find(k)
        if rec is None:
            return
        if resp.status >= 500 or resp.status in (401, 403, 408, 409, 429):
            # Failures that are not the outcome of processing (auth, overload, conflicts) are not
            # stored: the client may retry, e.g. with a refreshed token.
            self._drop(k, in_cold)
        else:
            # Completing a completed record (a request that outlived the ttl while a new one took
            # its key) replaces its response, as it always did; the record keeps its place.
            head = rec if type(rec) is bytes else rec[0]
            done = _pack(head[: _FP_AT + head[_CREATED.size]], resp)
            if in_cold:
                self._cold.put(k, done)  # type: ignore[union-attr]
            else:
                self._records[k] = done

    def abandon(self, client: str, key: str) -> None:
        k = (client, key)
        if self._records.pop(k, None) is None and self._cold is not None and self._cold.n:
            self._cold.delete(k)

    def purge(self, now: float) -> int:
        """Drop the records older than ``ttl`` at ``now`` (``begin`` would treat them as absent
        anyway); returns how many. Records sit in creation order (an expired one is re-created at
        the end), so the expired ones are a prefix. Without it every key of a long run is kept with
        its response, for nothing."""
        expired = []
        for k, rec in self._records.items():
            if now - _created(rec) <= self.ttl:
                break
            expired.append(k)
        for k in expired:
            del self._records[k]
        cold = self._cold
        return len(expired) + (cold.purge(now, self.ttl) if cold is not None and cold.n else 0)

    def clear(self) -> None:
        self._records.clear()
        if self._cold is not None:
            self._cold.clear()
