"""Idempotency records of a virtual run page out to the run's cold file after an hour: a store
that pages must answer every request exactly as one that keeps everything in memory."""

from __future__ import annotations

import enum
import random
from typing import Any

from mocks.coldmap import ColdStore
from mocks.core.base import Response
from mocks.core.idempotency import IdempotencyStore, fingerprint


class _S(enum.StrEnum):
    A = "a"


def _answer(r: Response | None) -> Any:
    return None if r is None else (r.status, r.body, r.headers)


def _counters(s: IdempotencyStore) -> tuple[int, int, int, int]:
    return s.replays, s.conflicts, s.mismatches, len(s)


def test_a_paging_store_answers_as_one_in_memory_under_random_operations() -> None:
    rng = random.Random(7)
    fps = [fingerprint("op", {"a": i}) for i in range(3)]
    bodies: list[Any] = [{"id": 1, "lines": [{"qty": 2}]}, {"n": 2.5}, None, {"s": _S.A}]  # _S.A: kept as objects
    statuses = [201, 200, 404, 409, 500, 429]
    for _run in range(12):
        ttl = rng.choice([600.0, 3600.0, 86400.0])
        max_keys = rng.choice([40, 1_000_000])
        plain = IdempotencyStore(ttl=ttl, max_keys=max_keys)
        with ColdStore() as cold_store:
            paged = IdempotencyStore(ttl=ttl, max_keys=max_keys)
            paged.use_cold(cold_store, "idempotency_x")
            now = 0.0
            for _ in range(1500):
                now += rng.expovariate(1 / 60.0)
                k = f"k{rng.randrange(80)}"
                c = rng.choice(["c1", "c2"])
                op = rng.random()
                if op < 0.5:
                    fp = rng.choice(fps)
                    assert _answer(plain.begin(c, k, fp, now)) == _answer(paged.begin(c, k, fp, now))
                elif op < 0.8:
                    resp = Response(rng.choice(statuses), rng.choice(bodies), {"x": "1"})
                    plain.complete(c, k, resp)
                    paged.complete(c, k, resp)
                elif op < 0.85:
                    plain.abandon(c, k)
                    paged.abandon(c, k)
                elif op < 0.9:
                    assert plain.purge(now) == paged.purge(now)
                elif op < 0.97:
                    cold_store.spill()  # the run's hourly spill, at any moment here
                assert _counters(plain) == _counters(paged)
            part = paged._cold
            assert part is not None and part.stats.spilled > 0 and part.stats.loaded > 0
            assert cold_store.stats()["idempotency_x"]["spilled"] == part.stats.spilled


def test_records_page_out_after_a_spill_interval_and_replay_from_the_file() -> None:
    with ColdStore() as cold_store:
        s = IdempotencyStore()
        s.use_cold(cold_store, "idempotency_erp")
        fp = fingerprint("op", {"a": 1})
        assert s.begin("c", "k1", fp, 0.0) is None
        s.complete("c", "k1", Response(201, {"id": "SO-1"}, {"location": "/so/1"}))
        assert s.begin("c", "k2", fp, 10.0) is None  # in flight across the spills
        assert cold_store.spill() == 0  # made since no spill yet: an interval has not passed
        assert s.begin("c", "k3", fp, 3600.0) is None
        assert cold_store.spill() == 2  # k1, k2: there at the previous spill; k3 stays
        assert list(s._records) == [("c", "k3")] and len(s) == 3
        again = s.begin("c", "k1", fp, 3700.0)
        assert _answer(again) == (201, {"id": "SO-1"}, {"location": "/so/1", "idempotent-replayed": "true"})
        busy = s.begin("c", "k2", fp, 3700.0)
        assert busy is not None and busy.status == 409
        s.complete("c", "k2", Response(201, {"id": "SO-2"}))  # completed in the file, in place
        s.complete("c", "k1", Response(201, {"s": _S.A}))  # a response kept as objects, out there too
        assert _answer(s.begin("c", "k2", fp, 3800.0))[1] == {"id": "SO-2"}
        assert s.begin("c", "k1", fp, 3800.0).body == {"s": _S.A}  # type: ignore[union-attr]
        assert s.purge(86400.0 + 15.0) == 2  # k1 (0) and k2 (10): expired; k3 (3600) is not
        assert len(s) == 1 and s.begin("c", "k1", fp, 86400.0 + 16.0) is None
