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
from typing import Any

import orjson

from mocks.core.base import Response, error

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


class IdempotencyStore:
    def __init__(self, ttl: float = 86400.0, max_keys: int = 1_000_000) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self._records: dict[tuple[str, str], _Record] = {}
        self.replays = 0
        self.conflicts = 0
        self.mismatches = 0

    def begin(self, client: str, key: str, fp: bytes, now: float) -> Response | None:
        """None: go ahead and process (then ``complete`` or ``abandon``). Otherwise the answer.
        ``fp``: the request's ``fingerprint`` (any bytes shorter than 256)."""
        rec = self._records.get((client, key))
        if rec is not None:
            head = rec if type(rec) is bytes else rec[0]
            if now - _CREATED.unpack_from(head)[0] > self.ttl:
                del self._records[(client, key)]
                rec = None
        if rec is None:
            if len(self._records) >= self.max_keys:
                # Evict the oldest (dicts keep insertion order): bounded memory in long live runs.
                self._records.pop(next(iter(self._records)))
            self._records[(client, key)] = _head(fp, now)
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
        rec = self._records.get((client, key))
        if rec is None:
            return
        if resp.status >= 500 or resp.status in (401, 403, 408, 409, 429):
            # Failures that are not the outcome of processing (auth, overload, conflicts) are not
            # stored: the client may retry, e.g. with a refreshed token.
            del self._records[(client, key)]
        else:
            # Completing a completed record (a request that outlived the ttl while a new one took
            # its key) replaces its response, as it always did; the record keeps its place.
            head = rec if type(rec) is bytes else rec[0]
            self._records[(client, key)] = _pack(head[: _FP_AT + head[_CREATED.size]], resp)

    def abandon(self, client: str, key: str) -> None:
        self._records.pop((client, key), None)

    def purge(self, now: float) -> int:
        """Drop the records older than ``ttl`` at ``now`` (``begin`` would treat them as absent
        anyway); returns how many. Records sit in creation order (an expired one is re-created at
        the end), so the expired ones are a prefix. Without it every key of a long run is kept with
        its response, for nothing."""
        expired = []
        for k, rec in self._records.items():
            if now - _CREATED.unpack_from(rec if type(rec) is bytes else rec[0])[0] <= self.ttl:
                break
            expired.append(k)
        for k in expired:
            del self._records[k]
        return len(expired)

    def clear(self) -> None:
        self._records.clear()
