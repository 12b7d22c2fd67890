"""Spilled ledgers and call records read back exactly; the streamed events/calls tables equal the
frames built in memory; a spilled run (in-process or forked) is the same run; no file is left."""

from __future__ import annotations

import gc
import os
import pickle
import shutil
import signal
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import mocks.ledger as ledger_mod
import reference_integration.metrics as metrics_mod
import sim.stream as stream
import sim.virtual as virtual
from mocks.ledger import Ledger
from reference_integration.metrics import CallRecord, CallTable
from sim import isolate
from sim.kpis import strip_wall
from sim.reconcile import demand_log, entries_frame
from sim.runfolder import calls_frame, events_frame, ledgers_events_frame
from sim.scenario import load_scenario
from sim.tables import TableFile

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tmpdir_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TMPDIR of this test's own (the machine's /tmp is shared), watched for leftovers."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def _fill(*leds: Ledger, n: int = 300) -> None:
    for i in range(n):
        for led in leds:
            t = float(i // 4)  # ties inside a ledger and across ledgers
            data = {"lines": [["S", i, 1.5]], "n": i} if i % 3 else ({} if i % 2 else {"x": None})
            led.append(t, f"k{i % 5}", f"E{i}", f"R{i}" if i % 2 else None, "c" if i % 7 else None, None, data)


def test_a_spilled_ledger_reads_back_the_same(tmpdir_private: Path) -> None:
    plain, spilled = Ledger("erp"), Ledger("erp")
    spilled.spill_to(str(tmpdir_private), 16)
    _fill(plain, spilled)
    assert len(spilled._segments) == 300 // 16 and len(spilled._t) == 300 % 16
    assert list(spilled) == list(plain) and len(spilled) == len(plain) == 300
    assert spilled.since(40, 50) == plain.since(40, 50) and spilled.since(299) == plain.since(299)
    assert spilled.of_kind("k3") == plain.of_kind("k3") and spilled.kinds() == plain.kinds()
    rows = [0, 299, 17, 16, 15, 150]
    for name in ("kind", "entity", "ref", "correlation_id", "idempotency_key", "data"):
        assert spilled.pick(name, rows) == plain.pick(name, rows), name
    assert spilled.times() == plain.times() and spilled.first_seq == plain.first_seq
    spilled.flush()
    back = pickle.loads(pickle.dumps(spilled))  # the hand-over: paths and small tables only
    assert len(pickle.dumps(spilled)) < 4000 and list(back) == list(plain)
    assert spilled.append(9e9, "late", "X") == plain.append(9e9, "late", "X") == 301
    assert list(spilled) == list(plain)
    spilled.clear()
    assert len(spilled) == 0 and not os.listdir(tmpdir_private)
    with pytest.raises(ValueError):
        Ledger("wms", max_entries=5).spill_to(str(tmpdir_private))


def test_a_spilled_call_table_reads_back_the_same(tmpdir_private: Path) -> None:
    plain, spilled = CallTable(), CallTable()
    spilled.spill_to(str(tmpdir_private), 7)
    for i in range(100):
        for table in (plain, spilled):
            if i == 40:  # odd: ints and a latency that is not the difference
                table.append(CallRecord(3, 4, "crm", "update_order", 1, 204, "ok", 9.0, "801A", None))
            else:
                status = None if i % 3 == 0 else 200
                table.add(i * 0.1, i * 0.1 + 1 / 3, f"s{i % 2}", "op", 1 + i % 2, status, "ok", f"c{i}", None, "wf")
    assert len(spilled._segments) == 100 // 7 and len(spilled) == len(plain) == 100
    assert list(spilled) == list(plain) and spilled[40] == plain[40] and spilled[-3:] == plain[-3:]
    for name in spilled.columns:
        assert spilled.column(name) == plain.column(name), name
    assert spilled.floats("t_start") is None and plain.floats("t_start") is None
    spilled.flush()
    assert list(pickle.loads(pickle.dumps(spilled))) == list(plain)
    pd.testing.assert_frame_equal(calls_frame(spilled), calls_frame(plain), check_exact=True)


@pytest.mark.parametrize("segment", [5, 64, 1 << 16])
def test_streamed_events_equal_the_frame_and_its_parquet(
    segment: int, tmpdir_private: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "_BLOCK", 3)  # several blocks per segment too
    leds = [Ledger(s) for s in ("wms", "crm", "erp")]  # not in name order: ranks decide
    for led in leds:
        led.spill_to(str(tmpdir_private), segment)
    _fill(*leds)
    leds[1].append(1e6, "last", "Z")  # ledgers of different lengths
    got = tmpdir_private / "events.parquet"
    assert stream.write_events(leds, got) == sum(len(led) for led in leds)
    frame = events_frame(entries_frame([e for led in leds for e in led]))  # the entry path
    pd.testing.assert_frame_equal(pd.read_parquet(got), frame, check_exact=True)
    pd.testing.assert_frame_equal(ledgers_events_frame(leds), frame, check_exact=True)
    want = tmpdir_private / "want.parquet"
    frame.to_parquet(want, index=False, row_group_size=stream._ROW_GROUP)
    assert pq.read_table(got).equals(pq.read_table(want))
    assert pq.read_schema(got).equals(pq.read_schema(want), check_metadata=True)


def test_what_the_stream_cannot_reproduce_takes_the_frame_path(tmpdir_private: Path) -> None:
    odd = Ledger("crm")
    odd.append(600, "order.submitted", "801A", ref="801A")  # an int time
    with pytest.raises(stream.Unstreamable):
        stream.write_events([odd], tmpdir_private / "e.parquet")
    unsorted = Ledger("erp")
    unsorted.append(2.0, "a", "x")
    unsorted.append(1.0, "b", "y")
    with pytest.raises(stream.Unstreamable):
        stream.write_events([unsorted], tmpdir_private / "e.parquet")
    table = virtual._events_table([odd], tmpdir_private / "e.parquet", None)
    assert isinstance(table, pd.DataFrame) and table["t"].tolist() == [600]
    assert not (tmpdir_private / "e.parquet").exists()
    with pytest.raises(stream.Unstreamable):
        stream.write_calls(CallTable(), tmpdir_private / "c.parquet")


def _scenario(orders: int = 300):  # type: ignore[no-untyped-def]
    return load_scenario(ROOT / "scenarios" / "quarter_end_surge.yaml", [f"demand.orders={orders}"])


def _tiny_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_mod, "SEGMENT", 97)
    monkeypatch.setattr(metrics_mod, "SEGMENT", 131)


@pytest.mark.parametrize(
    "isolated",
    [False, pytest.param(True, marks=pytest.mark.skipif(not isolate.available(), reason="needs os.fork"))],
)
def test_a_spilled_run_is_the_same_run(
    isolated: bool, tmp_path: Path, tmpdir_private: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tiny_segments(monkeypatch)
    handed: list[int] = []
    analyse = virtual.analyse

    def watch(scenario, sim, *a, **k):  # type: ignore[no-untyped-def]
        handed.append(sum(len(led._segments) for led in sim.ledgers) + len(sim.calls._segments))
        return analyse(scenario, sim, *a, **k)

    monkeypatch.setattr(virtual, "analyse", watch)
    sc = _scenario()
    base = virtual.run_virtual(sc, seed=5, out=tmp_path / "a", report=False, isolate=False, spill=False)
    run = virtual.run_virtual(sc, seed=5, out=tmp_path / "b", report=False, isolate=isolated, spill=True)
    assert handed[0] == 0 and handed[1] > 50  # the second one went through segment files
    assert strip_wall(run.kpis) == strip_wall(base.kpis)
    for name in ("orders", "events", "calls", "exceptions"):
        pd.testing.assert_frame_equal(getattr(run, name), getattr(base, name), check_exact=True)
    for name in ("events.parquet", "calls.parquet", "orders.parquet"):
        a, b = tmp_path / "a" / name, tmp_path / "b" / name
        assert pq.read_table(a).equals(pq.read_table(b)), name
        assert pq.read_schema(a).equals(pq.read_schema(b), check_metadata=True), name
    assert [d for d in os.listdir(tmpdir_private) if not d.startswith("twin-run-")] == []  # no spill left
    del base, run
    gc.collect()
    assert not os.listdir(tmpdir_private)  # and the results' own tables went with them


def test_tables_equal_the_frames_built_in_memory(tmpdir_private: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = virtual.resolve(_scenario(200), seed=3)
    sim = virtual.simulate(sc)
    events, calls = ledgers_events_frame(sim.ledgers), calls_frame(sim.calls)
    r = virtual.analyse(sc, sim, 0.0, "", report=False)
    fields = type(r).__dict__
    assert isinstance(fields["events"].source(r), TableFile) and isinstance(fields["calls"].source(r), TableFile)
    pd.testing.assert_frame_equal(r.events, events, check_exact=True)
    pd.testing.assert_frame_equal(r.calls, calls, check_exact=True)
    assert r.kpis["calls"] == len(calls) and r.kpis["failed_calls"] == int((calls["outcome"] != "ok").sum())


def test_a_result_without_a_folder_owns_its_files_until_it_goes(tmp_path: Path, tmpdir_private: Path) -> None:
    r = virtual.run_virtual(_scenario(120), seed=2, report=False, spill=True)
    (home,) = os.listdir(tmpdir_private)
    assert home.startswith("twin-run-")
    assert sorted(os.listdir(tmpdir_private / home)) == ["calls.parquet", "events.parquet"]
    r.write(tmp_path / "out", report=False)  # linked, not encoded again
    for name in ("events.parquet", "calls.parquet"):
        assert (tmp_path / "out" / name).samefile(tmpdir_private / home / name)
    shutil.rmtree(tmp_path / "out")  # the result's tables do not depend on the run folder
    events = r.events
    assert r.events is events and len(events) > 0  # loaded once
    del r, events
    gc.collect()
    assert not os.listdir(tmpdir_private)


def test_a_failed_or_killed_run_leaves_nothing(tmpdir_private: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("analysis failed")

    with monkeypatch.context() as m:
        m.setattr(virtual, "_finish", boom)
        with pytest.raises(RuntimeError, match="analysis failed"):
            virtual.run_virtual(_scenario(60), seed=1, report=False, spill=True, isolate=False)
    gc.collect()
    assert not os.listdir(tmpdir_private)
    if not isolate.available():
        return
    _tiny_segments(monkeypatch)
    simulate = virtual.simulate

    def killed(*a, **k):  # type: ignore[no-untyped-def]
        simulate(*a, **k)  # segments written, then the child dies before handing anything over
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(virtual, "simulate", killed)
    with pytest.raises(isolate.ChildFailed):
        virtual.run_virtual(_scenario(60), seed=1, report=False, spill=True, isolate=True)
    assert not os.listdir(tmpdir_private)


def test_a_result_built_from_frames_still_works(tmp_path: Path) -> None:
    sc = _scenario(40)
    frame = pd.DataFrame({"system": ["erp"], "attempt": [1]})
    r = virtual.RunResult(sc, {}, {}, pd.DataFrame(), pd.DataFrame({"t": [1.0]}), frame, pd.DataFrame())
    assert r.calls is frame and r.events["t"].tolist() == [1.0]
    r.calls = frame.iloc[:0]
    assert r.calls.empty


def test_a_streamed_run_reconciles_as_the_demand_frame_does(
    tmpdir_private: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analysis reads the demand into reconciliation's own columns from events.parquet; the
    orders are exactly what the whole events frame and ``demand_log``'s frame give."""
    _tiny_segments(monkeypatch)
    seen: list[tuple[object, dict]] = []
    reconcile = virtual.reconcile

    def watch(entries, *a, **k):  # type: ignore[no-untyped-def]
        seen.append((entries, k))
        return reconcile(entries, *a, **k)

    monkeypatch.setattr(virtual, "reconcile", watch)
    run = virtual.run_virtual(_scenario(), seed=7, report=False, isolate=False, spill=True)
    (entries, kw), = seen
    assert isinstance(entries, TableFile) and "demand" not in kw
    events = run.events
    again = reconcile(events, demand_log(events), run.exceptions, end=kw["end"])
    pd.testing.assert_frame_equal(run.orders, again, check_exact=True)
    assert run.orders.attrs == again.attrs
