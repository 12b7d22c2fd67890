"""What the mock cores page their documents out with (``mocks.core.paging``): exact round trips,
shared objects back as themselves, compact reference indexes."""

from __future__ import annotations

import enum
import math
import random
import sys

import numpy as np

from mocks.core.paging import NumberedIds, PrefixedIds, RefIndex, SalesforceIds, Shared, intern, pack, unpack
from sim.masterdata import salesforce_id


def test_pack_round_trips_exactly_and_keeps_types() -> None:
    values = [0, 0.1 + 0.2, -0.0, 1e308, None, True, "é", 2**70, math.inf]
    items = ("a", 2, "b")
    back, back_items = unpack(pack(values, items))
    assert back == values and back_items == items and type(back) is list and type(back_items) is tuple
    assert [type(x) for x in back] == [type(x) for x in values]
    assert math.copysign(1, back[2]) == -1.0
    assert math.isnan(unpack(pack([math.nan]))[0][0])


def test_a_numpy_float_goes_through_pickle_with_its_type() -> None:
    blob = pack(["x"], [1, np.float64(1.5)])
    assert blob[0] == 0x80  # pickle: marshal would have written the float's buffer as bytes
    back = unpack(blob)
    assert back == (["x"], [1, 1.5]) and type(back[1][1]) is np.float64


def test_interned_strings_come_back_as_the_original_object() -> None:
    ref = "".join(["801", "xyz", "000000000123"])  # built at run time: not interned by the compiler
    values = [ref, "other".upper(), None]
    intern(values, (0, 2))
    assert values[0] is ref and values[2] is None
    (back,) = unpack(pack(values))
    assert back[0] is ref  # the ledger's and the map's string, not a copy
    assert back[1] == "OTHER" and back[1] is not values[1]
    assert sys.intern("".join(["801", "xyz", "000000000123"])) is ref


def test_shared_copies_are_numbered_and_come_back_as_themselves() -> None:
    s: Shared[object] = Shared()
    a = ("1 Main St", "Springfield", None)
    a2 = tuple(list(a))
    assert s.share(a) is a and s.share(a2) is a  # one copy per distinct value
    assert s.share(None) is None and s.share("Dock 4") == "Dock 4"
    n = s.number(a2)
    assert s.objects[n] is a and len(s) == 3
    assert s.objects[s.number(None)] is None


def test_ref_index_holds_one_id_or_a_tuple() -> None:
    ix = RefIndex()
    assert ix.get("r") == () and "r" not in ix
    ix.add("r", "SO-1")
    assert ix.get("r") == ("SO-1",) and ix._d["r"] == "SO-1"
    ix.add("r", "SO-2")
    ix.add("r", "SO-3")
    ix.add("q", "SO-4")
    assert ix.get("r") == ("SO-1", "SO-2", "SO-3") and ix.get("q") == ("SO-4",) and len(ix) == 2


class Code(enum.StrEnum):
    A = "a"


def test_anything_not_plainly_built_in_goes_through_pickle() -> None:
    for odd in (np.float64(2.5), np.int64(3), Code.A, bytearray(b"x"), frozenset({1}), [1], (2,), {"k": 1}):
        parts = (["x", 1], ["y", odd])
        blob = pack(*parts)
        assert blob[0] == 0x80, odd
        assert unpack(blob) == parts


def test_salesforce_ids_number_exactly_the_ids_salesforce_id_makes() -> None:
    rng = random.Random(5)
    for instance in ("5g", "aZ", "00"):
        ids = SalesforceIds("801", instance)
        for n in [*range(300), *(rng.randrange(62**9) for _ in range(300))]:
            sid = salesforce_id("801", n, instance)
            assert ids.number(sid) == n and ids.key(n) == sid
            i = rng.randrange(18)
            other = sid[:i] + rng.choice("0aZz-") + sid[i + 1 :]
            got = ids.number(other)  # one char changed: another valid id, or none
            assert got is None or salesforce_id("801", got, instance) == other
    ids = SalesforceIds("801", "5g")
    assert ids.number(salesforce_id("001", 7, "5g")) is None and ids.number(7) is None
    assert ids.number(salesforce_id("801", 7, "5g").lower()) is None


def test_prefixed_ids_number_the_inner_codecs_ids_behind_the_prefix() -> None:
    ids = PrefixedIds("order:", SalesforceIds("801", "5g"))
    sid = salesforce_id("801", 42, "5g")
    assert ids.key(42) == "order:" + sid and ids.number("order:" + sid) == 42
    for odd in (sid, "order:", "order" + sid, "touched:" + sid, "order:" + sid + "x", None, 42):
        assert ids.number(odd) is None


def test_numbered_ids_take_the_padding_into_account() -> None:
    ids = NumberedIds("SO-", 7)
    assert ids.key(12) == "SO-0000012" and ids.number("SO-0000012") == 12
    assert ids.number("SO-12345678") == 12345678 and ids.key(12345678) == "SO-12345678"
    for odd in ("SO-012", "SO-00000012", "SO-+000012", "SO-00001٣2", "so-0000012", "SO-", None, 12):
        assert ids.number(odd) is None


def test_ref_index_with_codecs_keeps_numbers_and_answers_as_without() -> None:
    refs, ids = SalesforceIds("801", "5g"), NumberedIds("SO-", 7)
    rng = random.Random(3)
    plain, packed = RefIndex(), RefIndex(refs, ids)
    for step in range(3000):
        n = rng.randrange(1, 400)
        ref = salesforce_id("801", n, "5g") if rng.random() < 0.95 else f"ext-{n}"
        doc = ids.key(step) if rng.random() < 0.97 else f"odd-{step}"
        if rng.random() < 0.3:
            plain.add(ref, doc)
            packed.add(ref, doc)
        assert packed.get(ref) == plain.get(ref) and (ref in packed) == (ref in plain)
        assert len(packed) == len(plain)
    assert packed._numbered > 0 and len(packed._d) < len(plain._d)
    assert "x" not in packed and packed.get(salesforce_id("801", 10**9, "5g")) == ()
