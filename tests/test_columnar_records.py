"""The column stores behind the ledgers and the call log read back exactly what was appended."""

from __future__ import annotations

import pandas as pd
import pytest

import sim.runfolder as runfolder
from mocks.ledger import Entry, Ledger
from reference_integration.metrics import CallRecord, CallTable, RuntimeStats
from sim.reconcile import entries_frame


def _entries(led: Ledger) -> list[tuple]:
    return [(e.seq, e.t, e.system, e.kind, e.entity, e.ref, e.correlation_id, e.idempotency_key, e.data) for e in led]


def test_ledger_reads_back_every_field_and_key_order():
    led = Ledger("erp")
    lines = [["SKU-1", 24, 1.25]]
    seq = led.append(1.5, "sales_order.created", "SO-1", ref="801A", idempotency_key="so:801A", data={"z": 1, "a": lines})
    led.append(2.0, "sales_order.released", "SO-1", correlation_id="c-1")
    led.append(3.0, "stock.received", "PO-1", data={})
    assert seq == 1 and led.since(0)[0] == Entry(1, 1.5, "erp", "sales_order.created", "SO-1", "801A", None, "so:801A", {"z": 1, "a": lines})
    got = _entries(led)
    assert got[0][8] == {"z": 1, "a": lines} and list(got[0][8]) == ["z", "a"]
    assert got[0][8]["a"] == lines and got[0][8]["a"] is not lines  # lists are kept marshalled: equal copies
    assert got[1] == (2, 2.0, "erp", "sales_order.released", "SO-1", None, "c-1", None, {})
    assert got[2][8] == {} and len(led) == 3
    assert [x.seq for x in led.of_kind("sales_order.released")] == [2]
    assert led.since(0)[0].to_dict()["data"] == {"z": 1, "a": [["SKU-1", 24, 1.25]]}


def test_ledger_keeps_times_that_are_not_floats():
    led = Ledger("crm")
    led.append(600, "order.submitted", "801A", ref="801A")
    led.append(601.5, "order.submitted", "801B", ref="801B")
    assert [type(e.t) for e in led] == [int, float]
    assert led.times() is None and runfolder.ledgers_events_frame([led]) is None  # the entry path then


def test_ledger_since_and_max_entries_paging():
    led = Ledger("wms", max_entries=5)
    for i in range(3000):
        led.append(float(i), "fulfilment.created", f"FO-{i}", data={"i": i})
    assert len(led) == 5 and led.dropped == 2995 and led.first_seq == 2996
    assert [e.seq for e in led] == [2996, 2997, 2998, 2999, 3000]
    assert [e.data["i"] for e in led.since(2998)] == [2998, 2999]
    assert [e.seq for e in led.since(0, limit=2)] == [2996, 2997]
    assert [e.seq for e in led.since(0, limit=0)] == [2996]  # as the deque version did
    assert led.since(3000) == []
    led.clear()
    assert len(led) == 0 and led.dropped == 0
    assert led.append(1.0, "k", "x") == 1


def test_events_frame_from_columns_equals_the_entry_path(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(runfolder, "_CHUNK", 7)  # several chunks
    crm, erp, wms = Ledger("crm"), Ledger("erp"), Ledger("wms")
    for i in range(40):
        crm.append(float(i), "order.submitted", f"801{i}", ref=f"801{i}", data={"lines": [["S", i]], "key": f"D{i}"})
        erp.append(float(40 - i), "sales_order.created", 7 if i == 3 else f"SO{i}", correlation_id="c" if i % 2 else None)
        wms.append(float(i // 3), "fulfilment.created", f"FO{i}", data={"é": "ü", "n": None})
    for leds in ([crm, erp, wms], [wms], [crm, Ledger("carrier")]):
        old = runfolder.events_frame(entries_frame([e for led in leds for e in led]))
        pd.testing.assert_frame_equal(runfolder.ledgers_events_frame(leds), old, check_exact=True)


def test_call_table_reads_back_records_and_columns():
    stats = RuntimeStats()
    assert isinstance(stats.calls, CallTable)
    stats.record_call(1.0, 1.25, "erp", "get_customer", 1, 200, "ok", "801A", None, "order_submitted")
    stats.record_call(2.0, 2.5, "erp", "create_sales_order", 2, None, "timeout", None, "so:801A", "order_submitted")
    stats.record(CallRecord(3, 4, "crm", "update_order", 1, 204, "ok", 9.0, "801A", None))  # odd: ints, latency
    calls = stats.calls
    assert len(calls) == 3 and calls[-1] == CallRecord(3, 4, "crm", "update_order", 1, 204, "ok", 9.0, "801A", None)
    assert calls[0] == CallRecord(1.0, 1.25, "erp", "get_customer", 1, 200, "ok", 0.25, "801A", None, "order_submitted")
    assert calls[1].status is None and calls[1].latency_s == 0.5
    assert [c.operation for c in calls] == ["get_customer", "create_sales_order", "update_order"]
    assert calls.column("latency_s") == [0.25, 0.5, 9.0] and calls.column("t_start") == [1.0, 2.0, 3]
    assert calls.column("status") == [200, None, 204] and calls.floats("t_start") is None
    assert stats.attempts["erp"] == 2 and stats.failures["erp"] == 1 and stats.latency["crm"].n == 1
    frame = runfolder.calls_frame(calls)
    pd.testing.assert_frame_equal(frame, runfolder.calls_frame(list(calls)), check_exact=True)
    stats.keep_last(2)
    assert [c.operation for c in stats.calls] == ["create_sales_order", "update_order"]


def test_call_table_frame_from_float_columns_equals_the_record_path():
    table = CallTable()
    for i in range(50):
        table.add(i * 0.1, i * 0.1 + 1 / 3, "wms", "ship_confirm", 1 + i % 3, 200 if i % 7 else 409, "ok", f"c{i}", None)
    assert table.floats("t_end") is not None
    pd.testing.assert_frame_equal(
        runfolder.calls_frame(table), runfolder.calls_frame(list(table)), check_exact=True
    )


def test_ledger_counts_kinds_across_shapes_and_drops():
    led = Ledger("wms", max_entries=3)
    led.append(1.0, "fulfilment.created", "FO-1", ref="801A", data={"lines": [["SKU-1", 1]]})
    led.append(2.0, "fulfilment.created", "FO-2")  # another shape of the same kind
    led.append(3.0, "fulfilment.ready_to_ship", "FO-1", ref="801A")
    led.append(4.0, "fulfilment.created", "FO-3", correlation_id="c-3")  # drops the oldest
    assert len(led) == 3 and led.dropped == 1
    assert led.kinds() == {"fulfilment.created": 3, "fulfilment.ready_to_ship": 1}
    led.clear()
    assert led.kinds() == {}
