"""Reconciliation on hand-built ledgers: one order per outcome category."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mocks.ledger import Ledger
from sim.reconcile import (
    ENTRY_COLUMNS,
    _demand_of,
    demand_log,
    entries_frame,
    exceptions_frame,
    orphan_creates,
    outcome_counts,
    reconcile,
)
from sim.runfolder import events_frame
from sim.tables import TableFile

LINES = [["SKU-1", 12], ["SKU-2", 5]]


class World:
    def __init__(self) -> None:
        self.led = {s: Ledger(s) for s in ("crm", "erp", "wms", "carrier")}

    def submit(self, cid: str, t: float = 0.0, lines: list | None = None) -> None:
        self.led["crm"].append(
            t,
            "order.submitted",
            cid,
            ref=cid,
            data={"key": "D" + cid, "customer_no": "C1", "requested_t": t + 3 * 86400, "lines": lines or LINES},
        )

    def status(self, cid: str, t: float, status: str) -> None:
        self.led["crm"].append(t, "order.status_changed", cid, ref=cid, data={"status": status})

    def erp(self, cid: str, t: float, lines: list | None = None, **data) -> None:
        ln = [[s, q, 1.0] for s, q in (lines or LINES)]
        self.led["erp"].append(t, "sales_order.created", "SO-1", ref=cid, data={"lines": ln, **data})

    def wms(self, cid: str, t: float, lines: list | None = None) -> None:
        self.led["wms"].append(t, "fulfilment.created", "FO-1", ref=cid, data={"lines": lines or LINES})

    def full(self, cid: str, t0: float = 0.0) -> None:
        self.submit(cid, t0)
        self.erp(cid, t0 + 10)
        self.status(cid, t0 + 11, "Booked")
        self.wms(cid, t0 + 12)
        self.status(cid, t0 + 13, "In Fulfilment")
        self.led["wms"].append(t0 + 600, "fulfilment.ready_to_ship", "FO-1", ref=cid)
        self.led["carrier"].append(t0 + 610, "shipment.created", "1Z1", ref=cid)
        self.led["carrier"].append(t0 + 3600, "shipment.picked_up", "1Z1", ref=cid)
        self.status(cid, t0 + 3601, "Shipped")
        self.led["carrier"].append(t0 + 86400, "shipment.delivered", "1Z1", ref=cid)
        self.status(cid, t0 + 86401, "Delivered")

    def frame(self) -> pd.DataFrame:
        return entries_frame(e for led in self.led.values() for e in led)


def _outcome(w: World, exc=None) -> dict[str, str]:
    orders = reconcile(w.frame(), exceptions=exceptions_frame(exc or []), end=10 * 86400)
    return dict(zip(orders["crm_id"], orders["outcome"], strict=True))


def test_completed_with_milestones():
    w = World()
    w.full("A", t0=100)
    orders = reconcile(w.frame(), end=10 * 86400)
    row = orders.iloc[0]
    assert row.outcome == "completed"
    assert (row.t_submitted, row.t_erp_accepted, row.t_ready_to_ship) == (100, 110, 700)
    assert (row.t_delivered, row.t_crm_closed) == (86500, 86501)
    assert (row.erp_orders, row.wms_fulfilments, row.carrier_shipments) == (1, 1, 1)
    assert row.lines_match and row.qty_ordered == 17 and row.qty_reserved == 17
    assert row.t_settled == 700


def test_lost_when_nothing_downstream():
    w = World()
    w.submit("L")
    assert _outcome(w) == {"L": "lost"}


@pytest.mark.parametrize("system", ["erp", "wms", "carrier"])
def test_duplicate_in_any_system(system):
    w = World()
    w.full("D")
    if system == "erp":
        w.erp("D", 20)
    elif system == "wms":
        w.wms("D", 20)
    else:
        w.led["carrier"].append(700, "shipment.created", "1Z2", ref="D")
    assert _outcome(w) == {"D": "duplicate"}


def test_stuck_when_progress_but_unfinished():
    w = World()
    w.submit("S")
    w.erp("S", 10)
    w.status("S", 11, "Booked")
    assert _outcome(w) == {"S": "stuck"}


def test_stuck_when_delivered_but_crm_never_closed():
    w = World()
    w.full("S")
    w.led["crm"] = Ledger("crm")
    w.submit("S")
    w.status("S", 3601, "Shipped")
    assert _outcome(w) == {"S": "stuck"}


def _booked_with_carrier(w: World, cid: str, picked_up: bool, crm_shipped: bool) -> None:
    w.submit(cid)
    w.erp(cid, 10)
    w.status(cid, 11, "Booked")
    w.wms(cid, 12)
    w.led["wms"].append(600, "fulfilment.ready_to_ship", "FO-1", ref=cid)
    w.status(cid, 601, "In Fulfilment")
    w.led["carrier"].append(610, "shipment.created", "1Z1", ref=cid)
    if picked_up:
        w.led["carrier"].append(3600, "shipment.picked_up", "1Z1", ref=cid)
    if crm_shipped:
        w.status(cid, 3601, "Shipped")


def test_in_transit_when_the_world_still_has_it_at_the_end():
    w = World()
    _booked_with_carrier(w, "P", picked_up=False, crm_shipped=False)  # waiting for Monday's pickup
    _booked_with_carrier(w, "T", picked_up=True, crm_shipped=True)  # on the truck
    orders = reconcile(w.frame(), end=10 * 86400)
    assert dict(zip(orders.crm_id, orders.outcome, strict=True)) == {"P": "in_transit", "T": "in_transit"}
    assert outcome_counts(orders)["in_transit"] == 2 and (orders.t_settled == 600).all()


def test_stuck_not_in_transit_when_crm_missed_the_pickup_or_the_carrier_booking_twice():
    w = World()
    _booked_with_carrier(w, "L", picked_up=True, crm_shipped=False)  # the picked-up webhook was lost
    _booked_with_carrier(w, "B", picked_up=False, crm_shipped=False)
    w.led["crm"].append(602, "order.status_changed", "B", ref="B", data={"status": "Booked"})  # regressed
    w.submit("N")
    w.erp("N", 10)
    w.wms("N", 12)
    w.status("N", 13, "In Fulfilment")  # never booked with the carrier
    assert _outcome(w) == {"L": "stuck", "B": "mismatched", "N": "stuck"}


def test_mismatched_lines_uom_mistake():
    w = World()
    w.full("M")
    w.led["erp"] = Ledger("erp")
    w.erp("M", 10, lines=[["SKU-1", 1], ["SKU-2", 5]])  # 1 case sent where 12 EA were meant
    assert _outcome(w) == {"M": "mismatched"}


def test_mismatched_when_crm_status_regresses():
    w = World()
    w.full("R")
    w.status("R", 90000, "Shipped")  # out-of-order PU processed after DL
    assert _outcome(w) == {"R": "mismatched"}


def test_dead_lettered_business_and_technical():
    w = World()
    w.submit("B")
    w.submit("T")
    w.submit("X")
    exc = [
        {"crm_id": "B", "category": "business", "reason": "price_mismatch"},
        {"crm_id": "T", "category": "technical", "reason": "erp 503 after 8 attempts"},
        {"crm_id": "X", "category": "technical", "reason": "timeout"},
        {"crm_id": "X", "category": "business", "reason": "unknown customer"},
    ]
    out = _outcome(w, exc)
    assert out == {"B": "dead_lettered_business", "T": "dead_lettered_technical", "X": "dead_lettered_business"}


def test_completed_wins_over_stale_dlq_entry():
    w = World()
    w.full("A")
    assert _outcome(w, [{"crm_id": "A", "category": "technical", "reason": "replayed later"}]) == {"A": "completed"}


def test_backordered_and_released():
    w = World()
    for cid in ("W", "RL"):
        w.submit(cid)
        w.erp(cid, 10, backordered=[["SKU-1", 12]])
        w.led["erp"].append(11, "sales_order.backordered", "SO-1", ref=cid)
        w.status(cid, 12, "Backordered")
    w.led["erp"].append(5000, "sales_order.released", "SO-1", ref="RL")
    orders = reconcile(w.frame(), end=10 * 86400).set_index("crm_id")
    assert orders.loc["W", "outcome"] == "backordered"
    assert orders.loc["RL", "outcome"] == "stuck"  # released but never sent to the warehouse
    assert orders.loc["W", "qty_reserved"] == 5 and orders.loc["W", "backordered"]
    assert orders.loc["W", "t_settled"] == 11


def test_credit_hold_is_legitimate():
    w = World()
    w.submit("H")
    w.erp("H", 10)
    w.led["erp"].append(10, "sales_order.credit_hold", "SO-1", ref="H")
    w.status("H", 12, "Credit Hold")
    assert _outcome(w) == {"H": "credit_hold"}


def test_precedence_duplicate_over_mismatch_and_counts():
    w = World()
    w.full("A")
    w.full("B", t0=50)
    w.erp("B", 70, lines=[["SKU-9", 1]])
    w.submit("L")
    orders = reconcile(w.frame(), end=10 * 86400)
    counts = outcome_counts(orders)
    assert counts["completed"] == 1 and counts["duplicate"] == 1 and counts["lost"] == 1
    assert sum(counts.values()) == 3


def test_entries_after_end_are_ignored_and_orphans_counted():
    w = World()
    w.full("A")
    w.erp("nobody", 5)
    entries = w.frame()
    orders = reconcile(entries, end=50_000)  # before delivery: still with the carrier
    assert orders.iloc[0].outcome == "in_transit"
    assert reconcile(entries, end=605).iloc[0].outcome == "stuck"  # ready, not yet booked
    assert orders.attrs["orphans"] == 1
    assert orphan_creates(entries, demand_log(entries)) == 1


def test_data_as_json_strings_like_events_parquet():
    w = World()
    w.full("A")
    entries = w.frame()
    entries["data"] = [json.dumps(d) for d in entries["data"]]
    assert reconcile(entries).iloc[0].outcome == "completed"


def test_empty_inputs():
    orders = reconcile(entries_frame([]))
    assert orders.empty and "outcome" in orders.columns


def test_settle_times_for_backlog():
    w = World()
    w.submit("L")
    w.submit("S", t=5)
    w.erp("S", 10)
    w.submit("T", t=7)
    orders = reconcile(w.frame(), exceptions=exceptions_frame([
        {"crm_id": "T", "category": "technical", "reason": "x", "t": 99.0}
    ])).set_index("crm_id")  # fmt: skip
    assert pd.isna(orders.loc["L", "t_settled"]) and pd.isna(orders.loc["S", "t_settled"])
    assert orders.loc["T", "t_settled"] == 99.0


def _every_kind_of_order() -> World:
    w = World()
    w.full("A")
    w.full("D", t0=50)
    w.erp("D", 70, lines=[["SKU-9", 1]])  # duplicated, and with other lines
    w.full("M", t0=80)
    w.wms("M", 90, lines=[["SKU-1", 1]])  # a second WMS create: only the first one's lines count
    w.submit("N", t=3, lines=[["SKU-1", 12], ["SKU-1", 1]])  # one SKU on two lines
    w.erp("N", 20, lines=[["SKU-1", 13]], qty_reserved=4)
    w.status("N", 21, "Booked")
    w.status("N", 22, "Weird")  # a status outside the ranks
    w.submit("W", t=9)
    w.erp("W", 10, backordered=[["SKU-1", 12]])
    w.led["erp"].append(11, "sales_order.backordered", "SO-1", ref="W")
    w.submit("H")
    w.erp("H", 10, status="CREDIT_HOLD")
    w.led["erp"].append(10, "sales_order.credit_hold", "SO-1", ref="H")
    w.led["erp"].append(12, "sales_order.cancelled", "SO-1", ref="H")
    w.submit("L")
    w.submit("X", t=4)
    w.led["crm"].append(30, "order.status_changed", "X", ref="X", data={"status": None})
    w.erp("nobody", 5)
    return w


def test_demand_read_into_columns_equals_the_demand_frame_path():
    """Given no demand, reconciliation reads the demand into its own columns; the result is
    exactly what the ``demand_log`` frame gives, JSON text or dicts, any end."""
    entries = _every_kind_of_order().frame()
    exc = exceptions_frame([{"crm_id": "L", "category": "technical", "reason": "x", "t": 40.0}])
    assert _demand_of(entries) is not None  # the column path
    for data in ("dicts", "json"):
        if data == "json":
            entries["data"] = [json.dumps(d) for d in entries["data"]]
        for end in (15.0, 10 * 86400):
            got = reconcile(entries, exceptions=exc, end=end)
            want = reconcile(entries, demand_log(entries), exc, end=end)
            pd.testing.assert_frame_equal(got, want, check_exact=True)
            assert got.attrs == want.attrs == {"orphans": 1}
    assert set(outcome_counts(got)) >= {"duplicate", "mismatched", "completed", "backordered", "credit_hold"}


def test_an_order_the_demand_gives_twice_compares_each_rows_lines():
    w = World()
    w.full("A")
    entries = w.frame()
    demand = demand_log(entries)
    other = demand.assign(lines=[[["SKU-1", 1]]], key=["other"])
    orders = reconcile(entries, pd.concat([demand, other, demand], ignore_index=True), end=10 * 86400)
    assert list(orders["key"]) == ["DA", "other", "DA"]
    assert list(orders["lines_match"]) == [True, False, True]
    assert list(orders["outcome"]) == ["completed", "mismatched", "completed"]
    assert list(orders["qty_ordered"]) == [17.0, 1.0, 17.0]


@pytest.mark.parametrize("odd", ["submitted twice", "requested_t a str", "key an int"])
def test_a_demand_the_columns_do_not_cover_takes_the_frame_path(odd: str):
    w = _every_kind_of_order()
    if odd == "submitted twice":
        w.submit("A", t=1, lines=[["SKU-1", 1]])
    else:
        data = {"key": 7 if odd == "key an int" else "K", "customer_no": "C1", "requested_t": "5" if odd == "requested_t a str" else 5.0, "lines": LINES}
        w.led["crm"].append(2.0, "order.submitted", "Z", ref="Z", data=data)
    entries = w.frame()
    assert _demand_of(entries) is None
    got = reconcile(entries, end=10 * 86400)
    pd.testing.assert_frame_equal(got, reconcile(entries, demand_log(entries), end=10 * 86400), check_exact=True)


@pytest.mark.parametrize("odd", [None, "submitted twice"])
def test_an_events_file_read_a_few_rows_at_a_time_gives_what_the_frame_gives(tmp_path, monkeypatch, odd):
    """A virtual run reconciles from events.parquet (``TableFile``): CRM submits picked in Arrow,
    refs located per distinct value, only the JSON the scan reads decoded. Row groups and batches
    of a few rows cut every order's entries apart; an entry without a ref, an orphan create and
    entries after ``end`` behave as in the frame."""
    w = _every_kind_of_order()
    w.led["wms"].append(15, "fulfilment.created", "FO-9")  # no ref
    w.led["carrier"].append(16, "shipment.created", "1Z9", ref="nobody")  # an orphan
    if odd:
        w.submit("A", t=1, lines=[["SKU-1", 1]])
    frame = events_frame(w.frame())  # data as JSON text, as events.parquet holds it
    path = tmp_path / "events.parquet"
    frame.to_parquet(path, index=False, row_group_size=4)
    entries = TableFile(path, len(frame), ENTRY_COLUMNS)
    batches = TableFile.batches
    monkeypatch.setattr(TableFile, "batches", lambda self, columns=None, rows=0: batches(self, columns, 3))
    assert len(list(entries.batches(("t",)))) == -(-len(frame) // 3)
    exc = exceptions_frame([{"crm_id": "L", "category": "technical", "reason": "x", "t": 40.0}])
    for end in (15.0, 605.0, 10 * 86400):
        got = reconcile(entries, exceptions=exc, end=end)
        want = reconcile(frame, exceptions=exc, end=end)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert got.attrs == want.attrs == {"orphans": 2 if end > 15 else 1}
    assert (_demand_of(entries) is None) == bool(odd)
