"""The integration's audit sweep, and ship-to fallbacks, driven by the hand interpreter."""

from __future__ import annotations

from test_workflows import CRM_ID, Driver, erp_script, resilient, submitted

from reference_integration.effects import Result
from reference_integration.errors import CallFailed
from reference_integration.reconciliation import AWAIT_DELIVERY_S, PARKED_REAUDIT_S, sweep
from reference_integration.workflows import handle_event


class Later(Driver):
    """A driver whose clock is ``quiet`` (default an hour) past the saved ``touched``: the orders
    have settled, and those waiting on something slow are still within its usual time."""

    def __init__(self, *a, quiet: float = 3600.0, **kw):
        super().__init__(*a, **kw)
        self.now = 1000.0 + quiet


def state(**over):
    st = {"crm_id": CRM_ID, "erp_order": "SO-0000001", "status": "Booked", "touched": 1000.0}
    st.update(over)
    return {f"order:{CRM_ID}": st, "touched:0": [CRM_ID]}


SHIP_TO = {"name": "Acme", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def test_booked_order_without_fulfilment_gets_one_with_the_same_key():
    script = {
        ("erp", "get_sales_order"): Result(200, {"SalesOrderNo": "SO-0000001", "Status": "OPEN", "Lines": []}),
        ("wms", "find_fulfillments"): Result(200, {"items": [], "total": 0}),
        ("wms", "create_fulfillment"): Result(201, {"fulfillment_id": "FO-000009"}),
        ("wms", "get_fulfillment"): Result(200, {"fulfillment_id": "FO-000009", "status": "released"}),
        ("crm", "get_order"): Result(200, {"Id": CRM_ID, "Status": "In Fulfilment"}),
    }
    d = Later(script, state(lines=[["SKU-00001", 24]], ship_to=SHIP_TO))
    out = d.run(sweep(resilient(), since=0))
    assert out == {"repairs": 1, "audited": 1, "errors": 0}
    fo = next(c for c in d.calls if c.operation == "create_fulfillment")
    assert fo.idempotency_key == f"fo:{CRM_ID}"
    assert d.crm_statuses() == ["In Fulfilment"]
    assert d.published("metrics") == [{"repairs": 1, "audited": 1, "errors": 0}]


def test_lost_delivery_webhook_is_repaired_from_carrier_tracking():
    script = {
        ("erp", "get_sales_order"): Result(200, {"SalesOrderNo": "SO-0000001", "Status": "GOODS_ISSUED"}),
        ("carrier", "get_tracking"): Result(
            200, {"events": [{"eventCode": "PU"}, {"eventCode": "IT"}, {"eventCode": "DL"}]}
        ),
        ("crm", "get_order"): Result(200, {"Id": CRM_ID, "Status": "Delivered"}),
    }
    st = state(status="Shipped", fulfillment_id="FO-1", tracking_number="1Z1", gi_doc="GI-1")
    d = Later(script, st, quiet=AWAIT_DELIVERY_S - 60.0)
    # In transit for less than a usual transit: no delivery scan is due yet, nothing is polled.
    assert d.run(sweep(resilient(), since=0))["audited"] == 0 and d.calls == []
    d.now += 60.0
    out = d.run(sweep(resilient(), since=0))
    assert out["repairs"] == 1
    assert [o for o in d.ops() if o not in ("erp.get_sales_order", "carrier.get_tracking")] == [
        "erp.post_invoice",
        "crm.update_order",
        "crm.get_order",  # the final check finds CRM in step now
    ]
    assert d.crm_statuses() == ["Delivered"]


def test_crm_status_left_behind_is_pushed_again():
    script = {
        ("erp", "get_sales_order"): Result(200, {"SalesOrderNo": "SO-0000001", "Status": "OPEN"}),
        ("wms", "get_fulfillment"): Result(200, {"fulfillment_id": "FO-1", "status": "picked"}),
        ("crm", "get_order"): Result(200, {"Id": CRM_ID, "Status": "Submitted"}),
    }
    d = Later(script, state(status="In Fulfilment", fulfillment_id="FO-1"))
    assert d.run(sweep(resilient(), since=0))["repairs"] == 1
    assert d.calls[-1].payload["Status"] == "In Fulfilment"


def test_consistent_order_needs_no_repair_and_errors_do_not_stop_the_sweep():
    script = {
        ("erp", "get_sales_order"): Result(200, {"SalesOrderNo": "SO-0000001", "Status": "BACKORDERED"}),
        ("crm", "get_order"): Result(200, {"Id": CRM_ID, "Status": "Backordered"}),
    }
    d = Later(script, state(status="Backordered"), quiet=PARKED_REAUDIT_S)
    assert d.run(sweep(resilient(), since=0)) == {"repairs": 0, "audited": 1, "errors": 0}
    d = Later({("erp", "get_sales_order"): CallFailed("erp", "get_sales_order", 503)}, state())
    assert d.run(sweep(resilient(), since=0)) == {"repairs": 0, "audited": 0, "errors": 1}


def test_terminal_old_settling_and_recently_audited_orders_are_skipped():
    d = Later({}, state(status="Delivered"))
    assert d.run(sweep(resilient(), since=0))["audited"] == 0 and d.calls == []
    d = Later({}, state())
    d.now = 10 * 3600.0
    assert d.run(sweep(resilient(), since=5 * 3600.0))["audited"] == 0
    d = Driver({}, state())  # touched just now: a workflow may still be running
    assert d.run(sweep(resilient(), since=0))["audited"] == 0 and d.calls == []
    script = {
        ("erp", "get_sales_order"): Result(200, {"SalesOrderNo": "SO-0000001", "Status": "BACKORDERED"}),
        ("crm", "get_order"): Result(200, {"Id": CRM_ID, "Status": "Backordered"}),
    }
    d = Later(script, state(status="Backordered"))
    assert d.run(sweep(resilient(), since=0))["audited"] == 0  # parked: waits on stock, a day is usual
    d.now = 1000.0 + PARKED_REAUDIT_S
    assert d.run(sweep(resilient(), since=0))["audited"] == 1
    assert d.run(sweep(resilient(), since=0))["audited"] == 0  # audited a moment ago
    # Still quiet: looked at again once it has been quiet as long again (a day), then two days.
    d.now += PARKED_REAUDIT_S - 60.0
    assert d.run(sweep(resilient(), since=0))["audited"] == 0
    d.now += 60.0
    assert d.run(sweep(resilient(), since=0))["audited"] == 1
    d.now += 2 * PARKED_REAUDIT_S - 60.0
    assert d.run(sweep(resilient(), since=0))["audited"] == 0
    d.now += 60.0
    assert d.run(sweep(resilient(), since=0))["audited"] == 1
    d = Later({}, state(status="Exception", erp_order=None))
    assert d.run(sweep(resilient(), since=0))["audited"] == 0 and d.calls == []


def test_flagged_order_gets_no_creates_but_shipment_lost_in_state_is_adopted():
    script = {
        ("erp", "get_sales_order"): Result(200, {"SalesOrderNo": "SO-0000001", "Status": "OPEN"}),
        ("crm", "get_order"): Result(200, {"Id": CRM_ID, "Status": "Exception"}),
    }
    d = Later(script, state(status="Exception"), quiet=PARKED_REAUDIT_S)
    assert d.run(sweep(resilient(), since=0))["repairs"] == 0
    assert d.ops() == ["erp.get_sales_order", "crm.get_order"]
    script = {
        ("wms", "get_fulfillment"): Result(
            200, {"fulfillment_id": "FO-1", "status": "shipped", "tracking_number": "1Z9"}
        ),
        ("carrier", "get_tracking"): Result(200, {"events": [{"eventCode": "PU"}]}),
        ("crm", "get_order"): Result(200, {"Id": CRM_ID, "Status": "Shipped"}),
    }
    d = Later(script, state(status="In Fulfilment", fulfillment_id="FO-1"))
    out = d.run(sweep(resilient(), since=0))
    assert out["repairs"] == 1
    assert d.ops() == [
        "wms.get_fulfillment",
        "carrier.get_tracking",
        "erp.post_goods_issue",
        "crm.update_order",
        "crm.get_order",
    ]
    assert d.state[f"order:{CRM_ID}"]["tracking_number"] == "1Z9"


def test_ship_to_from_crm_account_when_order_has_none():
    ev = submitted()
    del ev["data"]["ShippingAddress"]
    script = erp_script()
    account = {
        "Id": "001000000000000001",
        "Name": "Acme",
        "ShippingAddress": {"street": "9 Elm", "city": "X", "postalCode": "9"},
    }
    script[("crm", "get_account")] = Result(200, account)
    d = Later(script)
    assert d.run(handle_event(resilient(), ev))["outcome"] == "booked"
    fo = next(c for c in d.calls if c.operation == "create_fulfillment")
    assert fo.payload["ship_to"] == {"name": "Acme", "line1": "9 Elm", "city": "X", "postal_code": "9", "country": "US"}


def test_no_ship_to_anywhere_is_a_mapping_exception_before_any_create():
    ev = submitted()
    del ev["data"]["ShippingAddress"]
    script = erp_script()
    script[("crm", "get_account")] = Result(200, {"Id": "001000000000000001", "Name": "Acme"})
    d = Later(script)
    out = d.run(handle_event(resilient(), ev))
    assert out["category"] == "mapping" and out["field"] == "ShippingAddress"
    assert "erp.create_sales_order" not in d.ops()
