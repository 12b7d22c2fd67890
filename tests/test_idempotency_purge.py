"""Expired idempotency records are dropped by ``purge`` exactly as ``begin`` would ignore them."""

from __future__ import annotations

from mocks.core.base import Response
from mocks.core.idempotency import IdempotencyStore


def _done(s: IdempotencyStore, key: str, now: float) -> None:
    assert s.begin("c", key, b"fp", now) is None
    s.complete("c", key, Response(201, {"id": key}))


def test_purge_drops_only_expired_records_and_replays_stay_as_before() -> None:
    s = IdempotencyStore(ttl=100.0)
    _done(s, "a", 0.0)
    _done(s, "b", 50.0)
    assert s.purge(100.0) == 0  # exactly ttl old: still valid (begin uses >)
    assert s.purge(120.0) == 1
    replay = s.begin("c", "b", b"fp", 140.0)
    assert replay is not None and replay.status == 201 and replay.headers["idempotent-replayed"] == "true"
    # "a" is gone, as begin would have treated it after its ttl: processed afresh.
    assert s.begin("c", "a", b"fp", 140.0) is None


def test_expired_record_recreated_moves_to_the_end_so_purge_stops_at_the_first_live_one() -> None:
    s = IdempotencyStore(ttl=10.0)
    _done(s, "a", 0.0)
    _done(s, "b", 5.0)
    _done(s, "a", 11.0)  # expired at begin: re-created, now the newest
    assert s.purge(16.0) == 1  # "b" (created 5) expired; "a" (created 11) kept
    assert s.begin("c", "a", b"fp", 16.0) is not None
