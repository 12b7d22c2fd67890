"""Expired idempotency records are dropped by ``purge`` exactly as ``begin`` would ignore them."""

from __future__ import annotations

from mocks.core.base import Response
from mocks.core.idempotency import IdempotencyStore


def _done(s: IdempotencyStore, key: str, now: float) -> None:
    assert s.begin("c", key, "fp", now) is None
    s.complete("c", key, Response(201, {"id": key}))


def test_purge_drops_only_expired_records_and_replays_stay_as_before() -> None:
    s = IdempotencyStore(ttl=100.0)
    _done(s, "a", 0.0)
    _done(s, "b", 50.0)
    assert s.purge(100.0) == 0  # exactly ttl old: still valid (begin uses >)
    assert s.purge(120.0) == 1
    replay = s.begin("c", "b", "fp", 140.0)
    assert replay is not None and replay.status == 201 and replay.headers["idempotent-replayed"] == "true"
    # "a" is gone, as begin would have treated it after its ttl: processed afresh.
    assert s.begin("c", "a", "fp", 140.0) is None


def test_expired_record_recreated_moves_to_the_end_so_purge_stops_at_the_first_live_one() -> None:
    s = IdempotencyStore(ttl=10.0)
    _done(s, "a", 0.0)
    _done(s, "b", 5.0)
    _done(s, "a", 11.0)  # expired at begin: re-created, now the newest
    assert s.purge(16.0) == 1  # "b" (created 5) expired; "a" (created 11) kept
    assert s.begin("c", "a", "fp", 16.0) is not None


class _WalkingPurge(IdempotencyStore):
    """``purge`` as it was: walk the records from the oldest and stop at the first live one."""

    def purge(self, now: float) -> int:
        expired = []
        for k, rec in self._records.items():
            if now - rec.created <= self.ttl:
                break
            expired.append(k)
        for k in expired:
            del self._records[k]
        return len(expired)


def test_purge_from_its_queue_matches_walking_the_records_under_any_mix_of_operations() -> None:
    import random

    for seed in range(30):
        rng = random.Random(seed)
        fast, walk = IdempotencyStore(ttl=20.0, max_keys=12), _WalkingPurge(ttl=20.0, max_keys=12)
        now = 0.0
        for _ in range(400):
            # Mostly forward in time, sometimes back (a caller's clock is not ours to trust).
            now = max(0.0, now + rng.choice([0.0, 0.5, 1.0, 3.0, 7.0, -2.0]))
            key, op = f"k{rng.randrange(25)}", rng.random()
            stores: list[IdempotencyStore] = [fast, walk]
            if op < 0.5:
                fp = rng.choice(["a", "b"])
                got = [s.begin("c", key, fp, now) for s in stores]
                assert [None if r is None else (r.status, r.body) for r in got] == [
                    None if got[1] is None else (got[1].status, got[1].body)
                ] * 2
            elif op < 0.7:
                status = rng.choice([201, 409, 500])
                for s in stores:
                    s.complete("c", key, Response(status, {"id": key}))
            elif op < 0.8:
                for s in stores:
                    s.abandon("c", key)
            elif op < 0.98:
                assert fast.purge(now) == walk.purge(now)
            else:
                for s in stores:
                    s.clear()
            assert list(fast._records.items()) == list(walk._records.items())
