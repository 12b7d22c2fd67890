from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reference_integration.store import EventIds, MemoryStore, SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    clock = iter(float(i) for i in range(1000))
    if request.param == "memory":
        yield MemoryStore(clock=lambda: next(clock))
    else:
        s = SqliteStore(tmp_path / "ri.db", clock=lambda: next(clock))
        yield s
        s.close()


def ev(i: int) -> dict:
    return {"id": f"evt-{i}", "source": "crm", "type": "order.submitted", "data": {"Id": f"801{i}"}}


def test_inbox_dedup_pending_done(store) -> None:
    assert store.accept_event(ev(1)) and store.accept_event(ev(2))
    assert not store.accept_event(ev(1))  # duplicate delivery
    store.mark_done("evt-1")
    pending = store.pending_events()
    assert (
        [e.id for e in pending] == ["evt-2"] and pending[0].source == "crm" and pending[0].body["data"]["Id"] == "8012"
    )


def test_state_and_outbox_together(store) -> None:
    assert store.get_state("o2c:801") is None
    store.put_state(
        "o2c:801", {"step": "erp_created", "so": "SO-1"}, outbox=[("wms.create_fulfillment", {"so": "SO-1"})]
    )
    assert store.get_state("o2c:801") == {"step": "erp_created", "so": "SO-1"}
    [entry] = store.outbox_pending()
    assert entry.topic == "wms.create_fulfillment" and entry.payload == {"so": "SO-1"}
    store.outbox_done(entry.id)
    assert store.outbox_pending() == []
    store.idem_put("so:801", {"SalesOrderNo": "SO-1"})
    assert store.idem_get("so:801") == {"SalesOrderNo": "SO-1"} and store.idem_get("nope") is None


def test_dlq_and_exceptions(store) -> None:
    a = store.dlq_add("technical", "timeout", "o2c", {"order": "801A"}, now=5.0)
    store.dlq_add("business", "price_mismatch", "o2c", {"order": "801B"})
    assert store.dlq_size() == 2 and [e.category for e in store.dlq_list()] == ["technical", "business"]
    taken = store.dlq_take_for_replay(a, now=9.0)
    assert taken is not None and taken.payload == {"order": "801A"} and taken.replayed_at == 9.0
    assert store.dlq_take_for_replay(a) is None  # only once
    assert store.dlq_size() == 1 and len(store.dlq_list(include_replayed=True)) == 2
    store.exceptions_add("credit_hold", "o2c", {"order": "801C"})
    assert [(e.reason, e.payload) for e in store.exceptions_list()] == [("credit_hold", {"order": "801C"})]


def test_sqlite_wal_and_category_check(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "ri.db")
    assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(sqlite3.IntegrityError):
        s.dlq_add("oops", "x", "w", {})  # type: ignore[arg-type]
    assert s.dlq_size() == 0  # the failed transaction rolled back
    with pytest.raises(ValueError):
        SqliteStore(tmp_path / "x.db", synchronous="OFF")


CHILD = textwrap.dedent(
    """
    import sys, time
    from reference_integration.store import SqliteStore
    s = SqliteStore(sys.argv[1])
    for i in range(100000):
        s.accept_event({"id": f"evt-{i}", "source": "crm", "type": "order.submitted", "data": {"n": i}})
        if i % 2 == 0:
            s.mark_done(f"evt-{i}")
        print(i, flush=True)  # the "ack": only after the commit returned
    """
)


def test_acknowledged_events_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "ri.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acked = [int(child.stdout.readline()) for _ in range(200)]
    os.kill(child.pid, signal.SIGKILL)  # mid-stream, no chance to close anything
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    s = SqliteStore(db)
    pending = {e.id for e in s.pending_events()}
    for i in acked:
        if i % 2:
            assert f"evt-{i}" in pending  # acknowledged, unfinished: returned for resumption
        else:
            assert s.event_status(f"evt-{i}") == "done"
    assert not s.accept_event({"id": f"evt-{acked[-1]}", "source": "crm", "type": "x", "data": {}})


def test_sqlite_state_cache_is_write_through_and_hands_out_copies(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "c.db")
    assert s.get_state("order:1") is None  # a cached miss...
    s.put_state("order:1", {"status": "Booked", "lines": [["A", 1]]})  # ...is replaced by the write
    got = s.get_state("order:1")
    got["lines"].append(["B", 2])  # the caller's copy, not the cache's
    assert s.get_state("order:1") == {"status": "Booked", "lines": [["A", 1]]}
    s.put_state("order:1", {"status": "Shipped"}, outbox=[("t", {"x": 1})])
    assert s.get_state("order:1") == {"status": "Shipped"}
    s.close()
    again = SqliteStore(tmp_path / "c.db")  # what was cached is what was committed
    assert again.get_state("order:1") == {"status": "Shipped"} and len(again.outbox_pending()) == 1
    again.close()


def test_memory_store_without_inbox_keeps_ids_for_dedup_only() -> None:
    s = MemoryStore(keep_inbox=False)
    ev = {"id": "evt-1", "source": "wms", "type": "fulfillment.picked", "data": {"big": "x" * 1000}}
    assert s.accept_event(ev, 1.0) is True
    assert s.accept_event(dict(ev), 2.0) is False  # a redelivery is still a duplicate
    assert s.accept_event({**ev, "id": "evt-2"}, 3.0) is True
    assert s.inbox == {} and s.pending_events() == []  # no envelope kept


def test_event_ids_are_a_set_whatever_the_form_of_the_ids() -> None:
    import random

    rng = random.Random(5)
    tricky = [
        "crm-evt-00000000",
        "crm-evt-00000001",
        "crm-evt-1",  # not the cores' formatting: a string, never the bit of crm-evt-00000001
        "crm-evt-000000001",
        "crm-evt-100000000",
        "crm-evt-0100000000",
        "crm-evt-\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff11",  # fullwidth digits
        "crm-evt-+0000001",
        "crm-evt-",
        "-evt-00000001",
        "evt-00000001",
        "a-evt-b-evt-00000002",
        f"wms-evt-{1 << 26:08d}",
        f"wms-evt-{(1 << 26) - 1:08d}",
        "None",
    ]
    ids = tricky + [
        f"{rng.choice(['crm', 'wms', 'x'])}-evt-{rng.randrange(3000):0{rng.choice([7, 8, 9])}d}" for _ in range(4000)
    ]
    rng.shuffle(ids)
    seen, plain = EventIds(), set()
    for eid in ids + tricky:
        assert seen.add(eid) is (eid not in plain), eid
        plain.add(eid)


def test_sqlite_state_add_is_one_insert_and_a_put_replaces_the_members(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "m.db")
    s.put_state("touched:0", ["a", "b"])  # a list written whole (as a sweep prunes it)
    statements: list[str] = []
    s._db.set_trace_callback(statements.append)
    for m in ("c", "a", "d", "c"):
        assert s.state_add("touched:0", m) is True
    # However long the list, an add is one INSERT: the list is never read back or rewritten.
    assert len(statements) == 4 and all(q.startswith("INSERT OR IGNORE INTO state_members") for q in statements)
    s._db.set_trace_callback(None)
    assert s.get_state("touched:0") == ["a", "b", "c", "d"]  # each member once, in order of addition
    got = s.get_state("touched:0")
    got.append("x")  # the caller's copy
    assert s.get_state("touched:0") == ["a", "b", "c", "d"]
    s.state_add("touched:1", "z")  # a key never put
    assert s.get_state("touched:1") == ["z"]
    s.close()
    again = SqliteStore(tmp_path / "m.db")  # every add was durable on return
    assert again.get_state("touched:0") == ["a", "b", "c", "d"] and again.get_state("touched:1") == ["z"]
    again.put_state("touched:0", ["b", "d"])  # a put replaces the whole list, added members included
    assert again.get_state("touched:0") == ["b", "d"]
    again.state_add("touched:0", "e")
    again.close()
    third = SqliteStore(tmp_path / "m.db")
    assert third.get_state("touched:0") == ["b", "d", "e"]
    third.close()


def test_memory_state_add_leaves_what_the_read_and_rewrite_fallback_leaves() -> None:
    """``MemoryStore.state_add`` (a member set beside the bucket, the list extended in place when
    nobody else holds it) against ``workflows.save``'s fallback, with the sweep's rewrites in
    between and lists held across adds: the same lists, the same index, and a held list never
    changes under its holder."""
    import random

    from reference_integration.reconciliation import DueIndex

    def fallback(s: MemoryStore, key: str, member: str) -> None:
        ids = s.get_state(key) or []
        if member not in ids:
            s.put_state(key, [*ids, member])

    for seed in range(20):
        rng = random.Random(seed)
        fast, slow = MemoryStore(index=DueIndex()), MemoryStore(index=DueIndex())
        held: list[tuple[list[str], list[str]]] = []
        for _ in range(300):
            key, member, op = f"touched:{rng.randrange(3)}", f"o{rng.randrange(40)}", rng.random()
            if op < 0.7:
                assert fast.state_add(key, member) is True
                fallback(slow, key, member)
            elif op < 0.85:  # the sweep drops closed orders from a bucket
                gone = {f"o{rng.randrange(40)}" for _ in range(3)}
                for s in (fast, slow):
                    s.put_state(key, [c for c in (s.get_state(key) or []) if c not in gone])
            elif op < 0.95:  # a reader keeps the list it read (the sweep without an index)
                got = fast.get_state(key)
                if got is not None:
                    held.append((got, list(got)))
            else:
                held.clear()
            assert fast.state == slow.state
            assert all(lst == snapshot for lst, snapshot in held)
        fi, si = fast.index, slow.index
        assert isinstance(fi, DueIndex) and isinstance(si, DueIndex)
        assert (fi._buckets, fi._bucket_len, fi._closed, fi._seq) == (si._buckets, si._bucket_len, si._closed, si._seq)
