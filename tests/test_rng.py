"""Named streams: reproducible, independent of each other and of who else draws."""

from __future__ import annotations

from sim.rng import Streams, derive_seed


def test_same_seed_same_draws() -> None:
    a, b = Streams(1), Streams(1)
    assert [a.py("x").random() for _ in range(5)] == [b.py("x").random() for _ in range(5)]
    assert (a.np("x").random(5) == b.np("x").random(5)).all()


def test_different_seed_or_name_differs() -> None:
    assert Streams(1).py("x").random() != Streams(2).py("x").random()
    s = Streams(1)
    assert s.py("x").random() != s.py("y").random()
    assert derive_seed(1, "x") != derive_seed(1, "y")


def test_adding_a_stream_does_not_change_another() -> None:
    alone = Streams(7)
    expected_py = [alone.py("arrivals").random() for _ in range(10)]
    expected_np = alone.np("arrivals").random(10)

    busy = Streams(7)
    busy.py("fault.erp-brownout").random()  # a new consumer appears first ...
    busy.np("latency.erp").random(1000)
    got_py = []
    for _ in range(10):  # ... and interleaves its draws with ours
        got_py.append(busy.py("arrivals").random())
        busy.py("latency.erp").random()
    assert got_py == expected_py
    assert (busy.np("arrivals").random(10) == expected_np).all()


def test_py_and_np_streams_of_one_name_are_distinct() -> None:
    s = Streams(3)
    assert s.py("x").random() != float(s.np("x").random())


def test_fresh_streams_restart() -> None:
    s = Streams(5)
    first = s.np("order_lines").random(3)
    assert (s.fresh_np("order_lines").random(3) == first).all()
    assert (s.np("order_lines").random(3) != first).all()  # the cached one moved on
    r = s.py("a").random()
    assert s.fresh_py("a").random() == r


def test_streams_are_cached() -> None:
    s = Streams(1)
    assert s.py("a") is s.py("a") and s.np("a") is s.np("a")


def test_child_is_reproducible_and_different() -> None:
    a, b = Streams(1).child("rep1"), Streams(1).child("rep1")
    assert a.seed == b.seed
    assert Streams(1).child("rep2").seed != a.seed
    assert a.py("x").random() != Streams(1).py("x").random()
