"""ColdMap: a dict whose idle values page out to SQLite must behave exactly like a dict."""

from __future__ import annotations

import gc
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from mocks.coldmap import COLD, ColdMap, ColdStore
from mocks.core.paging import NumberedIds


@dataclass
class Doc:
    no: int
    status: str = "open"
    lines: list[int] = field(default_factory=list)


def test_idle_values_page_out_and_come_back_equal() -> None:
    with ColdStore() as store:
        m = store.map("docs")
        for i in range(10):
            m[f"o{i}"] = Doc(i, lines=[i, i + 1])
        assert store.spill() == 0  # everything was just written: touched
        assert store.spill() == 10
        assert m.hot() == 0 and all(v is COLD for v in m._d.values())
        assert m["o3"] == Doc(3, lines=[3, 4])
        assert m.get("o4").lines == [4, 5]
        assert m.get("missing", "dflt") == "dflt"
        assert m.stats.loaded == 2 and m.hot() == 2


def test_mutations_through_a_read_value_are_kept_across_spills() -> None:
    with ColdStore() as store:
        m = store.map("docs")
        m["a"] = Doc(1)
        store.spill(), store.spill()
        d = m["a"]
        d.status = "shipped"
        d.lines.append(7)
        del d
        store.spill()  # touched in this interval: stays
        assert m._d["a"] is not COLD
        store.spill()  # idle now: written again, with the mutation
        assert m._d["a"] is COLD
        assert m["a"] == Doc(1, "shipped", [7])


def test_a_value_something_else_holds_is_never_paged_out() -> None:
    with ColdStore() as store:
        m = store.map("docs")
        queue = []
        m["held"] = Doc(1)
        m["free"] = Doc(2)
        queue.append(m["held"])
        store.spill(), store.spill()
        assert m._d["held"] is not COLD and m._d["free"] is COLD
        assert m.stats.kept == 1
        queue[0].status = "released"  # the holder mutates the live object: the map sees it
        assert m["held"].status == "released"
        queue.clear()
        store.spill(), store.spill()
        assert m._d["held"] is COLD and m["held"].status == "released"


def test_order_len_contains_delete_and_int_keys() -> None:
    with ColdStore() as store:
        m = store.map("outbox")
        for i in (5, 1, 9, 3):
            m[i] = {"n": i}
        store.spill(), store.spill()
        assert list(m) == [5, 1, 9, 3] and len(m) == 4 and 9 in m and 7 not in m
        m[1] = {"n": 100}  # replacing keeps the key's place, as in a dict
        del m[9]
        assert list(m) == [5, 1, 3]
        assert dict(m.items()) == {5: {"n": 5}, 1: {"n": 100}, 3: {"n": 3}}
        with pytest.raises(KeyError):
            m[9]
        m[9] = {"n": 9}  # back at the end, like a dict
        assert list(m) == [5, 1, 3, 9]


def _read_delete_or_spill(
    op: float,
    k: str,
    m: ColdMap[str, Doc],
    ref: dict[str, Doc],
    store: ColdStore,
    step: int,
    *,
    read_below: float,
    touch: Callable[[], bool] = lambda: True,
    delete: bool = True,
) -> None:
    """One random operation other than a write, on the map and on the dict it must match."""
    if op < read_below:
        a, b = ref.get(k), m.get(k)
        assert a == b
        if a is not None and touch():  # a value changed in place must be spilled changed
            a.lines.append(step)
            b.lines.append(step)
    elif op < 0.78 and k in ref and delete:
        del ref[k]
        del m[k]
    elif op < 0.85:
        assert (k in m) == (k in ref)
    else:
        store.spill()


def test_random_operations_match_a_plain_dict() -> None:
    rng = random.Random(7)
    with ColdStore() as store:
        m = store.map("m")
        ref: dict[str, Doc] = {}
        for step in range(5000):
            op = rng.random()
            k = f"k{rng.randrange(300)}"
            if op < 0.35:
                ref[k] = Doc(step)
                m[k] = Doc(step)
            else:
                _read_delete_or_spill(op, k, m, ref, store, step, read_below=0.7, touch=lambda: rng.random() < 0.5)
            if step % 997 == 0:
                assert list(m) == list(ref) and len(m) == len(ref)
        assert list(m.items()) == list(ref.items())
        assert m.stats.spilled > 0 and m.stats.loaded > 0


def test_store_validates_names_and_removes_its_file() -> None:
    store = ColdStore()
    store.map("ok_1")
    with pytest.raises(ValueError, match="'ok_1'"):
        store.map("ok_1")
    with pytest.raises(ValueError, match="bad-name"):
        store.map("bad-name")
    d = store.dir
    assert store.path.exists()
    store.close()
    assert not d.exists()
    del store
    gc.collect()


def test_reading_after_close_is_a_clear_error() -> None:
    store = ColdStore()
    m = store.map("m")
    m["a"] = Doc(1)
    store.spill(), store.spill()
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        m["a"]


def test_spill_looks_only_at_values_in_memory() -> None:
    """A spill costs what is in memory, not the size of the map: cold values are not visited."""
    looked: list[str] = []

    def can_spill(value: Doc) -> bool:
        looked.append(value.status)
        return value.status != "held"

    with ColdStore() as store:
        m = store.map("docs", can_spill=can_spill)
        for i in range(100):
            m[f"o{i}"] = Doc(i)
        m["h"] = Doc(-1, "held")
        store.spill()
        assert looked == []  # all touched
        assert store.spill() == 100 and len(looked) == 101
        looked.clear()
        assert store.spill() == 0 and looked == ["held"]  # the kept one is looked at again ...
        m["o7"].lines.append(1)
        del m["o8"]
        m["o9"] = Doc(9, "new")
        looked.clear()
        store.spill()
        assert looked == ["held"]  # ... the touched ones wait an interval ...
        looked.clear()
        assert store.spill() == 2 and sorted(looked) == ["held", "new", "open"]  # ... the rest are cold
        assert m["o7"].lines == [1] and "o8" not in m and m["o9"].status == "new"
        assert m.stats.kept == 4  # once a spill since it went idle


def test_clear_forgets_keys_and_values() -> None:
    with ColdStore() as store:
        m = store.map("docs")
        for i in range(5):
            m[i] = Doc(i)
        store.spill(), store.spill()
        m[1]  # one back in memory
        m.clear()
        assert len(m) == 0 and list(m) == [] and m.get(1) is None
        assert store.spill() == 0
        m[3] = Doc(30)
        store.spill(), store.spill()
        assert m[3] == Doc(30) and list(m) == [3]


def test_shared_fields_come_back_as_the_same_object() -> None:
    with ColdStore() as store:
        table: dict[tuple[str, ...], dict[str, str]] = {}
        store.share(table)
        m = store.map("states", store.dumps_refs, store.loads_refs, store.alone)
        home = table.setdefault(("Main St", "Springfield"), {"line1": "Main St", "city": "Springfield"})
        elsewhere = {"line1": "Main St", "city": "Springfield"}  # equal, but not the table's object
        m["a"] = {"id": "a", "ship_to": home, "lines": [["SKU-1", 2]], "t": 1.5}
        m["b"] = {"id": "b", "ship_to": home, "n": None}
        m["c"] = {"id": "c", "ship_to": elsewhere, "done": True}
        m["d"] = ["not", "a", "dict"]
        del elsewhere
        store.spill(), store.spill()
        assert m.hot() == 0
        a, b, c = m["a"], m["b"], m["c"]
        assert a["ship_to"] is home and b["ship_to"] is home  # shared again, not copies
        assert list(a) == ["id", "ship_to", "lines", "t"] and a["lines"] == [["SKU-1", 2]] and a["t"] == 1.5
        assert c["ship_to"] == home and c["ship_to"] is not home  # never shared: a value like any
        assert m["d"] == ["not", "a", "dict"]


def test_alone_refuses_values_whose_inner_objects_are_held_elsewhere() -> None:
    with ColdStore() as store:
        table: dict[tuple[str, ...], dict[str, str]] = {}
        store.share(table)
        m = store.map("states", store.dumps_refs, store.loads_refs, store.alone)
        home = table.setdefault(("x",), {"k": "x"})
        lines = [["SKU-1", 2]]
        pair = ["SKU-2", 3]
        shared_tuple = (["mutable"],)
        m["shares_a_list"] = {"lines": lines}  # a workflow's copy of the state holds the list too
        m["shares_a_pair"] = {"lines": [pair]}
        m["tuple_held_outside"] = {"x": shared_tuple}
        m["nested_table_object"] = {"deep": [home]}  # only top-level fields go by reference
        m["odd_type"] = {"doc": Doc(1)}
        m["free"] = {"lines": [["SKU-3", 4]], "ship_to": home, "t": (1, "a"), "s": {1, 2}}
        store.spill(), store.spill()
        assert {k for k, v in m._d.items() if v is COLD} == {"free"}
        assert m.stats.kept == 5
        assert m["free"]["ship_to"] is home
        del lines, pair, shared_tuple
        store.spill(), store.spill()
        assert m._d["free"] is COLD and m.stats.loaded == 1
        assert all(v is COLD for k, v in m._d.items() if k not in ("nested_table_object", "odd_type"))


def test_idle_spills_keeps_values_used_again_soon() -> None:
    with ColdStore() as store:
        m = store.map("m", idle_spills=2)
        m["a"], m["b"] = Doc(1), Doc(2)
        assert store.spill() == 0  # touched in this interval
        assert store.spill() == 0  # and in the one before: not idle through two yet
        m["a"]  # used again: its two idle intervals start over
        assert store.spill() == 1 and m._d["b"] is COLD and m._d["a"] is not COLD
        assert store.spill() == 0  # idle through one interval only
        assert store.spill() == 1 and m._d["a"] is COLD
        del m["a"]
        assert list(m) == ["b"] and m.hot() == 0
        with pytest.raises(ValueError, match="idle_spills"):
            store.map("bad", idle_spills=0)


def test_dicts_page_out_by_shape_and_share_their_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    import mocks.coldmap as coldmap

    monkeypatch.setattr(coldmap, "MAX_SHAPES", 2)
    with ColdStore() as store:
        m = store.map("m", store.dumps_refs, store.loads_refs, store.alone)
        m["a"] = {"id": "a", "status": "open", "t": 1.5}
        m["b"] = {"id": "b", "status": "done", "t": -0.0}
        # A spill walks its values in hash order (random per process): page a and b out first so
        # their shape is the one registered before the limit, whatever the order.
        store.spill(), store.spill()
        m["c"] = {"status": "x", "id": "c"}  # the same keys in another order: another shape
        m["d"] = {"z": 1}  # a third shape: over the limit, pickled whole
        m["e"] = {1: "int keys", 2: None}  # not str keys: pickled whole
        m["f"] = {}
        store.spill(), store.spill()
        assert m.hot() == 0
        a, b, c = m["a"], m["b"], m["c"]
        assert a == {"id": "a", "status": "open", "t": 1.5} and b == {"id": "b", "status": "done", "t": -0.0}
        assert all(ka is kb for ka, kb in zip(a, b, strict=True))  # one key string per shape
        assert list(c) == ["status", "id"] and c == {"status": "x", "id": "c"}
        assert m["d"] == {"z": 1} and m["e"] == {1: "int keys", 2: None} and m["f"] == {}
        assert len(store._shapes) == 2


def test_a_map_with_a_codec_keeps_numbers_while_keys_come_in_sequence() -> None:
    ids = NumberedIds("SO-", 7)
    with ColdStore() as store:
        m = store.map("orders", codec=ids)
        for n in range(1, 6):
            m[ids.key(n)] = Doc(n)
        assert m._vals is not None and m._d == {}  # no key strings held
        store.spill(), store.spill()
        assert all(v is COLD for v in m._vals)
        assert m["SO-0000003"] == Doc(3) and m.get("SO-0000004").no == 4
        assert "SO-0000005" in m and "SO-0000006" not in m and "SO-03" not in m and m.get("SO-3") is None
        with pytest.raises(KeyError):
            m["SO-0000000"]
        assert list(m) == [ids.key(n) for n in range(1, 6)] and len(m) == 5
        m["SO-0000002"] = Doc(20)  # replacing keeps the place
        m["SO-0000006"] = Doc(6)  # the next number: still dense
        assert m._vals is not None and list(m)[1] == "SO-0000002" and m["SO-0000002"] == Doc(20)
        m["other"] = Doc(0)  # a key of another form goes beside the numbers
        m["SO-0000004"] = Doc(40)  # replaced: keeps its place
        m["SO-0000010"] = Doc(10)  # a gap: holes, no key strings
        m["SO-0000008"] = Doc(8)  # below the last: insertion order is kept from now on
        assert m._vals is not None and m._d == {"other": Doc(0)} and len(m) == 9
        order = [*(ids.key(n) for n in range(1, 7)), "other", "SO-0000010", "SO-0000008"]
        assert list(m) == order and "SO-0000007" not in m and m.get("SO-0000009") is None
        store.spill(), store.spill()
        assert all(v is COLD for v in m._d.values()) and m["other"] == Doc(0)
        m["SO-0000003"]  # one in memory, touched, when the map turns into a dict
        del m["SO-0000005"]  # a delete: a dict from now on, the same contents and order
        assert m._vals is None and list(m) == [k for k in order if k != "SO-0000005"]
        assert store.spill() == 0  # both touched in this interval: the idleness went across
        assert store.spill() == 2
        expect = {ids.key(n): Doc(n) for n in (1, 3, 6, 8, 10)}
        expect |= {"SO-0000002": Doc(20), "SO-0000004": Doc(40), "other": Doc(0)}
        assert dict(m.items()) == expect
        m.clear()
        assert m._vals == [] and len(m) == 0
        m["SO-0000009"] = Doc(9)  # a cleared map starts numbered again, from any number
        assert m._vals == [Doc(9)] and list(m) == ["SO-0000009"]


def test_a_numbered_map_grows_both_ways_and_bounds_its_gaps() -> None:
    ids = NumberedIds("k", 1)
    with ColdStore() as store:
        m = store.map("m", codec=ids)
        m["k100"], m["k98"], m["k1"] = Doc(100), Doc(98), Doc(1)  # below the first: holes in front
        assert m._vals is not None and m._first == 1 and list(m) == ["k100", "k98", "k1"]
        store.spill()
        assert m["k98"] == Doc(98) and m.get("k2") is None and len(m) == 3
        m[ids.key(1 << 20)] = Doc(0)  # a gap out of proportion: a dict, the same map
        assert m._vals is None and list(m) == ["k100", "k98", "k1", ids.key(1 << 20)]
        assert m["k100"] == Doc(100) and m["k1"] == Doc(1)  # read back by number from a dict
        m2 = store.map("m2", codec=ids)
        m2["k5"], m2[7] = Doc(5), Doc(7)  # a key that is not a str: a dict too
        assert m2._vals is None and dict(m2) == {"k5": Doc(5), 7: Doc(7)}


def test_a_map_with_a_codec_behaves_as_a_dict_under_random_operations() -> None:
    rng = random.Random(11)
    ids = NumberedIds("k", 3)
    stayed_dense = 0
    for run in range(20):
        # Every fourth run sees only keys in sequence; the next, keys out of sequence and of
        # another form too. Without deletes both stay numbered throughout.
        odd = 0.0 if run % 4 == 0 else 0.02 + 0.01 * run
        deletes = run % 4 > 1
        with ColdStore() as store:
            m = store.map("m", codec=ids)
            ref: dict[str, Doc] = {}
            nxt = 1
            for step in range(400):
                op = rng.random()
                if op < 0.4:  # mostly the next id, now and then one out of sequence or of another form
                    r = rng.random()
                    k = ids.key(nxt) if r >= odd else rng.choice([ids.key(rng.randrange(nxt + 3)), f"x{step}"])
                    nxt += k == ids.key(nxt)
                    ref[k] = Doc(step)
                    m[k] = Doc(step)
                else:
                    k = ids.key(rng.randrange(1, nxt + 2)) if rng.random() < 0.9 else "k01"
                    _read_delete_or_spill(op, k, m, ref, store, step, read_below=0.75, delete=deletes)
                if step % 37 == 0:
                    assert list(m) == list(ref) and len(m) == len(ref)
            assert list(m.items()) == list(ref.items())
            assert m.stats.spilled > 0 and m.stats.loaded > 0
            stayed_dense += m._vals is not None
            assert run % 4 != 1 or m._order is not None  # the interleaved order was kept
    assert stayed_dense == 10


def test_iterating_a_dense_map_while_it_grows_is_refused_like_a_dict() -> None:
    ids = NumberedIds("k", 1)
    with ColdStore() as store:
        m = store.map("m", codec=ids)
        m["k1"] = Doc(1)
        with pytest.raises(RuntimeError, match="changed size"):
            for n, _ in enumerate(m, 2):
                m[ids.key(n)] = Doc(n)
