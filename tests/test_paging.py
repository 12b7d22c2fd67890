"""What the mock cores page their documents out with (``mocks.core.paging``): exact round trips,
shared objects back as themselves, compact reference indexes."""

from __future__ import annotations

import enum
import math
import sys

import numpy as np

from mocks.core.paging import RefIndex, Shared, intern, pack, unpack


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
