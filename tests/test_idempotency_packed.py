"""Completed idempotency records are packed (marshalled when marshal gives the response back
exactly): a replay must still answer exactly what the first request got."""

from __future__ import annotations

import array
import datetime
import decimal
import enum
import math
import struct
from typing import Any

import pytest
from pydantic import BaseModel

from mocks.core.base import Response
from mocks.core.idempotency import IdempotencyStore, fingerprint


class _S(enum.StrEnum):
    A = "a"


class _Model(BaseModel):
    id: str
    qty: int


def _replay(body: Any, headers: dict[str, str] | None = None, status: int = 201) -> tuple[Response, Response]:
    s = IdempotencyStore()
    fp = fingerprint("op", {"x": 1})
    first = Response(status, body, dict(headers or {}))
    assert s.begin("c", "k", fp, 0.0) is None
    s.complete("c", "k", first)
    again = s.begin("c", "k", fp, 1.0)
    assert again is not None and s.replays == 1
    return first, again


def _same(a: Any, b: Any) -> None:
    """Equal, of the same types all the way down, dicts in the same key order, floats bit for bit."""
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b)
    else:
        assert a == b


_PLAIN: list[Any] = [
    {"b": 1, "a": [1, 2.5, -0.0, True, None, "é"], "c": {"z": {}, "y": []}},
    [{"sku": "S1", "qty": 3}, {"sku": "S2", "qty": 0}],
    {"t": (1, "x"), "nan": float("nan"), "inf": -math.inf, "one": 1, "yes": True},
    None,
    "text",
]


@pytest.mark.parametrize("body", _PLAIN)
def test_plain_bodies_replay_equal_with_their_types_key_order_and_float_bits(body: Any) -> None:
    first, again = _replay(body, {"location": "/x/1"})
    assert again.status == first.status
    _same(first.body, again.body)
    if isinstance(body, dict | list):
        assert again.body is not first.body  # packed, and a new body per replay
    assert again.headers == {"location": "/x/1", "idempotent-replayed": "true"}
    assert list(again.headers) == ["location", "idempotent-replayed"]


_OBJECTS: list[Any] = [
    {"status": _S.A},  # a str subclass: marshal refuses it
    {"at": datetime.date(2026, 1, 1), "amount": decimal.Decimal("1.50")},
    {"buf": bytearray(b"ab")},  # marshal would give bytes back
    {"arr": array.array("d", [1.0]), "view": memoryview(b"ab")},
    {"tags": {"a", "b"}},  # a rebuilt set need not iterate in the same order
    _Model(id="SO-1", qty=2),
    {"big": 2**80, "raw": b"\x00"},  # beyond what orjson takes: kept, to be safe
    {1: "int key", (1, "t"): "tuple key"},
]


@pytest.mark.parametrize("body", _OBJECTS)
def test_bodies_marshal_would_not_give_back_exactly_are_replayed_as_the_objects(body: Any) -> None:
    first, again = _replay(body)
    assert again.body is first.body  # kept as before: the stored object itself
    assert again.headers == {"idempotent-replayed": "true"}


def test_shared_parts_replay_equal_and_a_cycle_is_kept_as_the_object() -> None:
    part = [{"sku": "S"}] * 3
    first, again = _replay({"a": part, "b": part})
    _same(first.body, again.body)
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    first, again = _replay(cyclic)  # the check's walk must end
    assert again.body is first.body


def test_a_replayed_body_aliases_nothing_stored() -> None:
    s = IdempotencyStore()
    fp = fingerprint("op", None)
    first = Response(201, {"lines": [{"qty": 1}]}, {"location": "/o/1"})
    s.begin("c", "k", fp, 0.0)
    s.complete("c", "k", first)
    first.body["lines"][0]["qty"] = 99  # the first caller edits what it got
    r1 = s.begin("c", "k", fp, 1.0)
    assert r1 is not None
    r1.body["lines"].append({"qty": 2})
    r1.headers["location"] = "/elsewhere"
    r2 = s.begin("c", "k", fp, 2.0)
    assert r2 is not None and r2.body == {"lines": [{"qty": 1}]} and r2.body is not r1.body
    assert r2.headers == {"location": "/o/1", "idempotent-replayed": "true"}


def test_in_flight_conflict_and_reused_key_mismatch_are_unchanged() -> None:
    s = IdempotencyStore()
    fp, other = fingerprint("op", {"a": 1}), fingerprint("op", {"a": 2})
    assert s.begin("c", "k", fp, 0.0) is None
    busy = s.begin("c", "k", fp, 1.0)
    assert busy is not None and busy.status == 409 and busy.body["error"] == "request_in_progress"
    wrong = s.begin("c", "k", other, 1.0)
    assert wrong is not None and wrong.status == 422 and wrong.body["field"] == "Idempotency-Key"
    s.complete("c", "k", Response(201, {"id": 1}))
    wrong = s.begin("c", "k", other, 2.0)
    assert wrong is not None and wrong.status == 422
    assert (s.conflicts, s.mismatches, s.replays) == (1, 2, 0)
    # Another client's same key is another record.
    assert s.begin("d", "k", other, 2.0) is None


def test_failures_not_stored_and_abandon_frees_the_key() -> None:
    s = IdempotencyStore()
    fp = fingerprint("op", {"a": 1})
    for status in (500, 503, 401, 403, 408, 409, 429):
        assert s.begin("c", "k", fp, 0.0) is None
        s.complete("c", "k", Response(status, {"error": "x"}))
    assert s.begin("c", "k", fp, 0.0) is None
    s.abandon("c", "k")
    assert s.begin("c", "k", fp, 0.0) is None
    s.complete("c", "k", Response(404, {"error": "not_found"}))  # an outcome: stored
    again = s.begin("c", "k", fp, 1.0)
    assert again is not None and again.status == 404 and again.body == {"error": "not_found"}


@pytest.mark.parametrize("first_body", [{"n": 1}, {"n": _S.A}])
def test_completing_a_completed_record_replaces_its_response_in_place(first_body: dict[str, Any]) -> None:
    # A request that outlives the ttl while a new one with its key is processed: both complete.
    s = IdempotencyStore(ttl=10.0)
    fp = fingerprint("op", {"a": 1})
    assert s.begin("c", "old", fp, 0.0) is None
    assert s.begin("c", "k", fp, 0.0) is None
    assert s.begin("c", "k", fp, 20.0) is None  # expired in flight: re-created at the end
    s.complete("c", "k", Response(201, first_body))
    s.complete("c", "k", Response(200, {"n": 2}))
    again = s.begin("c", "k", fp, 21.0)
    assert again is not None and (again.status, again.body) == (200, {"n": 2})
    assert s.purge(25.0) == 1  # "old" only: "k" keeps its creation time 20
    assert s.begin("c", "k", fp, 31.0) is None  # expired after its own ttl


def test_purge_and_ttl_over_packed_and_object_records() -> None:
    s = IdempotencyStore(ttl=100.0)
    fp = fingerprint("op", {"a": 1})
    for i, body in enumerate([{"i": 0}, {"i": _S.A}, {"i": 2}, {"i": _S.A}]):
        assert s.begin("c", f"k{i}", fp, float(i * 10)) is None
        s.complete("c", f"k{i}", Response(201, body))
    assert s.purge(100.0) == 0
    assert s.purge(120.5) == 3  # created 0, 10, 20
    assert s.begin("c", "k2", fp, 121.0) is None  # purged: processed afresh
    kept = s.begin("c", "k3", fp, 121.0)
    assert kept is not None and kept.body == {"i": _S.A}
    assert s.begin("c", "k3", fp, 130.5) is None  # 100.5 after its creation: expired at begin


def test_evicts_the_oldest_at_max_keys() -> None:
    s = IdempotencyStore(max_keys=2)
    fp = fingerprint("op", None)
    for k in ("a", "b", "c"):
        assert s.begin("c", k, fp, 0.0) is None
        s.complete("c", k, Response(201, {"k": k}))
    assert s.begin("c", "a", fp, 1.0) is None  # evicted
    again = s.begin("c", "c", fp, 1.0)
    assert again is not None and again.body == {"k": "c"}


def test_fingerprints_are_33_byte_digests() -> None:
    assert len(fingerprint("op", {"a": 1})) == len(fingerprint("op", None)) == 33
    assert fingerprint("op", {"a": 1})[:1] == b"o" and fingerprint("op", None)[:1] == b"j"
