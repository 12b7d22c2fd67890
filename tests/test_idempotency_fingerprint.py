"""``fingerprint`` takes an orjson fast path; two bodies must still match exactly when their
canonical JSON (sorted keys, ``default=str``) does, as with the plain json encoding."""

from __future__ import annotations

import datetime
import decimal
import enum
import hashlib
import itertools
import uuid

from mocks.core.idempotency import _ENCODE, fingerprint


def _json_fp(op: str, body: object) -> str:
    return hashlib.sha256(_ENCODE([op, body]).encode()).hexdigest()


class _S(enum.StrEnum):
    A = "a"


class _I(enum.IntEnum):
    ONE = 1


class _D(dict):
    pass


_VALUES: list[object] = [
    None, 0, 1, -1, 1.0, -0.0, 0.0, 1.5, float("nan"), float("inf"), -float("inf"), True, False,
    "1", "1.0", "a", "null", "NaN", "Infinity", "é", "\u2028", 2**70, str(2**70), 2**64 - 1, -(2**63),
    _S.A, _I.ONE, uuid.UUID(int=5), str(uuid.UUID(int=5)), datetime.date(2026, 1, 1), "2026-01-01",
    decimal.Decimal("1.5"), "1.5", (1, 2), [1, 2], {"a": 1}, _D(a=1), {1: "a"}, {"1": "a"}, {True: 1},
    {"true": 1}, {"b": 1, "a": 2}, {"a": 2, "b": 1}, {"a": None}, {"a": float("nan")}, 1e16, 10**16,
]  # fmt: skip


def _fp_or_error(op: str, body: object, fp: object) -> object:
    try:
        return fp(op, body)  # type: ignore[operator]
    except Exception as e:  # noqa: BLE001 - the error type is part of what must match
        return type(e)


def test_fingerprint_equality_is_that_of_the_json_encoding() -> None:
    bodies = _VALUES + [[v, w] for v in _VALUES for w in _VALUES[:12]] + [{"k": v} for v in _VALUES]
    new = [_fp_or_error("op", b, fingerprint) for b in bodies]
    old = [_fp_or_error("op", b, _json_fp) for b in bodies]
    for i, j in itertools.combinations(range(len(bodies)), 2):
        assert (new[i] == new[j]) == (old[i] == old[j]), (bodies[i], bodies[j])


def test_fingerprint_of_a_request_body() -> None:
    body = {"ExtRef": "801", "Lines": [{"ItemNo": "SKU-1", "Qty": 5, "UnitPrice": 8.42}], "SoldTo": "C1"}
    same = {"SoldTo": "C1", "Lines": [{"UnitPrice": 8.42, "Qty": 5, "ItemNo": "SKU-1"}], "ExtRef": "801"}
    assert fingerprint("create", body) == fingerprint("create", same)
    assert fingerprint("create", body) != fingerprint("create", {**body, "SoldTo": "C2"})
    assert fingerprint("create", body) != fingerprint("cancel", body)
    assert fingerprint("post", None) == fingerprint("post", None) != fingerprint("post", {})
