"""sim.isolate: a function run in a forked child hands back its result, its messages and its
failures; its memory stays in the child. And a virtual run simulated in a child is the same run."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest

from sim import isolate
from sim.isolate import ChildFailed, call_in_child

pytestmark = pytest.mark.skipif(not isolate.available(), reason="needs os.fork")

ROOT = Path(__file__).resolve().parent.parent


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_result_and_messages_come_back_in_order() -> None:
    got: list[object] = []

    def work(send):  # type: ignore[no-untyped-def]
        for i in range(5):
            send(("step", i))
        return {"pid": os.getpid(), "answer": 42}

    out = call_in_child(work, got.append)
    assert out["answer"] == 42 and out["pid"] != os.getpid()
    assert got == [("step", i) for i in range(5)]


def test_long_lists_cross_in_chunks_exactly_and_shared_ones_once() -> None:
    n = isolate._CHUNK * 2 + 17  # three chunks, the last one short
    base = [f"id-{i}" for i in range(1000)]

    def make() -> list[object]:
        return [base[i % 1000] if i % 3 else float(i) / 7 for i in range(n)]

    def work(send):  # type: ignore[no-untyped-def]
        big = make()
        return {"a": big, "b": big, "small": [1, 2, 3], "none": None}

    out = call_in_child(work)
    assert out["a"] is out["b"]  # one list held twice stays one list
    assert out["a"] == make()
    assert out["small"] == [1, 2, 3] and out["none"] is None


def test_an_exception_in_the_child_is_raised_in_the_parent() -> None:
    def work(send):  # type: ignore[no-untyped-def]
        raise ValueError("demand.orders: -3 is not a count")

    with pytest.raises(ValueError, match="demand.orders: -3"):
        call_in_child(work)


def test_a_killed_child_is_a_clear_error_and_leaves_nothing_behind() -> None:
    before = set(os.listdir(tempfile.gettempdir()))

    def work(send):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(ChildFailed, match="killed by signal 9 -- out of memory"):
        call_in_child(work)
    left = {f for f in set(os.listdir(tempfile.gettempdir())) - before if f.startswith("twin-sim-")}
    assert not left
    with pytest.raises(ChildProcessError):  # reaped: no zombie waits for us
        os.waitpid(-1, os.WNOHANG)


def test_an_unpicklable_result_says_so() -> None:
    with pytest.raises(ChildFailed, match="could not be sent back"):
        call_in_child(lambda send: (lambda: None))


def test_the_childs_memory_is_not_the_parents() -> None:
    def work(send):  # type: ignore[no-untyped-def]
        hog = [str(i) for i in range(3_000_000)]  # ~200 MB of small objects
        return hog[::1000]  # a few survivors: in-process they would pin every arena of the hog

    before = _rss_mib()
    kept = call_in_child(work)
    assert len(kept) == 3000 and kept[-1] == "2999000"
    # Through the child the parent's resident memory does not move (a tenth of the child's).
    assert _rss_mib() - before < 20


def test_a_virtual_run_simulated_in_a_child_is_the_same_run() -> None:
    from sim.kpis import strip_wall
    from sim.scenario import load_scenario
    from sim.virtual import run_virtual

    sc = load_scenario(ROOT / "scenarios" / "quarter_end_surge.yaml", ["demand.orders=300"])
    seen: dict[bool, list[str]] = {True: [], False: []}
    runs = {
        iso: run_virtual(sc, seed=11, report=False, isolate=iso, progress=lambda p, iso=iso: seen[iso].append(p.phase))
        for iso in (False, True)
    }
    a, b = runs[False], runs[True]
    assert strip_wall(a.kpis) == strip_wall(b.kpis)
    for name in ("orders", "events", "calls", "exceptions"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert a.sim_events == b.sim_events > 0
    assert [e.category for e in a.dlq] == [e.category for e in b.dlq]
    assert seen[True] == seen[False] and seen[True][-1] == "reconcile"


def test_a_cold_run_whose_child_is_killed_leaves_no_scratch_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's cold-store file lives in the run's spill directory, which the parent removes
    whatever became of the child: a SIGKILLed child (the OOM killer) leaves nothing in TMPDIR."""
    import sim.virtual as virtual
    from sim.scenario import load_scenario

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def killed_after_build(world, *args):  # type: ignore[no-untyped-def]
        assert world.cold is not None  # its file is made by now
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(virtual, "_run", killed_after_build)
    sc = load_scenario(ROOT / "scenarios" / "quarter_end_surge.yaml", ["demand.orders=50"])
    with pytest.raises(ChildFailed, match="killed by signal 9"):
        virtual.run_virtual(sc, seed=3, report=False, isolate=True, spill=True, cold=True)
    assert list(tmp_path.iterdir()) == []
