"""Workflows driven by hand: a tiny interpreter feeds scripted results and records the effects."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from reference_integration.config import IntegrationConfig
from reference_integration.effects import Call, Now, Publish, Result, StateGet, StatePut
from reference_integration.errors import BreakerOpen, BusinessError, CallFailed
from reference_integration.workflows import WorkflowContext, handle_event, replay

CRM_ID = "801000000000000001"

Reply = Result | BaseException | Callable[[Call], Any]


class Driver:
    """Answers Calls from ``script[(system, op)]`` (a list consumed in order, or one reply reused;
    default 200 {}), keeps state in a dict, and records every effect."""

    def __init__(self, script: dict[tuple[str, str], Any] | None = None, state: dict[str, Any] | None = None):
        self.script = dict(script or {})
        self.state: dict[str, Any] = state if state is not None else {}
        self.effects: list[Any] = []
        self.now = 1000.0

    def reply(self, call: Call) -> Any:
        r = self.script.get((call.system, call.operation), Result(200, {}))
        if isinstance(r, list):
            r = r.pop(0) if len(r) > 1 else r[0]
        return r(call) if callable(r) and not isinstance(r, BaseException) else r

    def run(self, wf) -> Any:
        value: Any = None
        exc: BaseException | None = None
        while True:
            try:
                eff = wf.throw(exc) if exc is not None else wf.send(value)
            except StopIteration as stop:
                return stop.value
            self.effects.append(eff)
            value, exc = None, None
            if isinstance(eff, Call):
                r = self.reply(eff)
                if isinstance(r, BaseException):
                    exc = r
                else:
                    value = r
            elif isinstance(eff, StateGet):
                value = copy.deepcopy(self.state.get(eff.key))
            elif isinstance(eff, StatePut):
                self.state[eff.key] = copy.deepcopy(eff.value)
            elif isinstance(eff, Now):
                value = self.now

    @property
    def calls(self) -> list[Call]:
        return [e for e in self.effects if isinstance(e, Call)]

    def ops(self) -> list[str]:
        return [f"{c.system}.{c.operation}" for c in self.calls]

    def published(self, topic: str) -> list[dict[str, Any]]:
        return [e.event for e in self.effects if isinstance(e, Publish) and e.topic == topic]

    def crm_statuses(self) -> list[str]:
        return [c.payload["Status"] for c in self.calls if c.operation == "update_order"]


def resilient() -> WorkflowContext:
    return WorkflowContext(config=IntegrationConfig.resilient())


def naive() -> WorkflowContext:
    return WorkflowContext(config=IntegrationConfig.naive())


def envelope(source: str, type_: str, data: dict[str, Any], id_: str = "evt-1") -> dict[str, Any]:
    return {"id": id_, "type": type_, "source": source, "occurred_at": "2026-03-02T09:00:00Z", "data": data}


def submitted() -> dict[str, Any]:
    return envelope(
        "crm",
        "order.submitted",
        {
            "Id": CRM_ID,
            "OrderNumber": "00000101",
            "AccountId": "001000000000000001",
            "Account": {"Id": "001000000000000001", "ErpCustomerNo__c": "C000001", "Name": "Acme"},
            "Status": "Submitted",
            "EffectiveDate": "2026-03-02",
            "RequestedDeliveryDate__c": "2026-03-09",
            "ShippingAddress": {"street": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"},
            "OrderItems": [{"ProductCode": "SKU-00001", "Quantity": 2, "UnitOfMeasure__c": "CS", "UnitPrice": 120.0}],
        },
    )


def erp_script(so_status: str = "OPEN") -> dict[tuple[str, str], Any]:
    return {
        ("erp", "get_customer"): Result(200, {"CustomerNo": "C000001", "Name": "Acme", "CreditHold": False}),
        ("erp", "get_item"): Result(200, {"ItemNo": "SKU-00001", "BaseUoM": "EA", "CasePack": 12, "ListPrice": 10}),
        ("erp", "get_prices"): Result(
            200, {"Customer": "C000001", "Prices": [{"ItemNo": "SKU-00001", "UnitPrice": 10.0}]}
        ),
        ("erp", "get_atp"): Result(200, {"Plant": "WH01", "Items": [{"ItemNo": "SKU-00001", "Available": 100}]}),
        ("erp", "create_sales_order"): Result(
            201, {"SalesOrderNo": "SO-0000001", "ExtRef": CRM_ID, "Status": so_status}
        ),
        ("crm", "update_order"): Result(204),
        ("wms", "create_fulfillment"): Result(201, {"fulfillment_id": "FO-000001", "status": "released"}),
    }


ENRICH = ["erp.get_customer", "erp.get_item", "erp.get_prices", "erp.get_atp", "erp.create_sales_order"]


def test_happy_path_order_submitted():
    d = Driver(erp_script())
    out = d.run(handle_event(resilient(), submitted()))
    assert out["outcome"] == "booked"
    assert d.ops() == [*ENRICH, "crm.update_order", "wms.create_fulfillment", "crm.update_order"]
    assert d.crm_statuses() == ["Booked", "In Fulfilment"]
    so = d.calls[4]
    assert so.payload["ExtRef"] == CRM_ID
    assert so.payload["Lines"] == [{"ItemNo": "SKU-00001", "Qty": 24, "UoM": "EA", "UnitPrice": 10.0}]
    assert so.idempotency_key == f"so:{CRM_ID}"
    fo = d.calls[6]
    assert fo.payload["client_reference"] == CRM_ID and fo.payload["lines"][0]["quantity"] == 24
    assert fo.idempotency_key == f"fo:{CRM_ID}"
    assert all(c.correlation_id == CRM_ID for c in d.calls)
    assert d.calls[5].payload == {"Status": "Booked", "ExternalOrderNo__c": "SO-0000001"}
    st = d.state[f"order:{CRM_ID}"]
    assert (st["erp_order"], st["fulfillment_id"], st["status"]) == ("SO-0000001", "FO-000001", "In Fulfilment")
    assert d.state["touched:0"] == [CRM_ID]


def test_case_pack_is_cached_across_orders():
    ctx = resilient()
    Driver(erp_script()).run(handle_event(ctx, submitted()))
    d = Driver(erp_script())
    d.run(handle_event(ctx, submitted()))
    assert "erp.get_item" not in d.ops()


def test_credit_hold_goes_to_exception_queue_and_crm_credit_hold():
    d = Driver(erp_script("CREDIT_HOLD"))
    out = d.run(handle_event(resilient(), submitted()))
    assert out["outcome"] == "credit_hold"
    assert d.ops() == [*ENRICH, "crm.update_order"]
    assert d.calls[-1].payload["Status"] == "Credit Hold"
    assert d.calls[-1].payload["StatusReason__c"] == "credit_hold"
    [exc] = d.published("exceptions")
    assert exc["crm_id"] == CRM_ID and exc["reason"] == "credit_hold" and exc["category"] == "business"


def test_price_mismatch_is_a_business_exception():
    script = erp_script()
    body = {"error": "price_mismatch", "message": "...", "field": "Lines.0.UnitPrice"}
    script[("erp", "create_sales_order")] = BusinessError("erp", "create_sales_order", 422, "price_mismatch", body=body)
    d = Driver(script)
    out = d.run(handle_event(resilient(), submitted()))
    assert out == {"outcome": "exception", "category": "business", "reason": "price_mismatch"}
    [exc] = d.published("exceptions")
    assert exc["reason"] == "price_mismatch" and exc["field"] == "Lines.0.UnitPrice"
    assert d.ops()[-1] == "crm.update_order"
    assert d.calls[-1].payload == {"Status": "Exception", "StatusReason__c": "price_mismatch: Lines.0.UnitPrice"}
    assert not d.published("dlq")


def test_error_result_from_interpreter_is_classified_too():
    script = erp_script()
    script[("erp", "create_sales_order")] = Result(422, {"error": "price_mismatch", "field": "Lines.0.UnitPrice"})
    d = Driver(script)
    assert d.run(handle_event(resilient(), submitted()))["reason"] == "price_mismatch"


def test_mapping_error_is_a_categorised_exception():
    ev = submitted()
    ev["data"]["OrderItems"][0]["UnitOfMeasure__c"] = "PAL"
    d = Driver(erp_script())
    out = d.run(handle_event(resilient(), ev))
    assert out["category"] == "mapping" and out["field"] == "OrderItems.0.UnitOfMeasure__c"
    [exc] = d.published("exceptions")
    assert exc["category"] == "mapping"
    assert "erp.create_sales_order" not in d.ops()
    assert d.crm_statuses() == ["Exception"]


def test_backorder_sets_crm_backordered_and_creates_no_fulfilment():
    d = Driver(erp_script("BACKORDERED"))
    out = d.run(handle_event(resilient(), submitted()))
    assert out["outcome"] == "backordered"
    assert d.ops() == [*ENRICH, "crm.update_order"]
    assert d.crm_statuses() == ["Backordered"]


def test_release_creates_fulfilment_from_saved_state():
    d = Driver(erp_script("BACKORDERED"))
    d.run(handle_event(resilient(), submitted()))
    d.effects.clear()
    released = envelope("erp", "SalesOrder.Released", {"SalesOrderNo": "SO-0000001", "ExtRef": CRM_ID}, "evt-2")
    out = d.run(handle_event(resilient(), released))
    assert out["outcome"] == "released"
    assert d.ops() == ["wms.create_fulfillment", "crm.update_order"]
    assert d.calls[0].payload["lines"] == [{"sku": "SKU-00001", "quantity": 24, "uom": "EA"}]
    assert d.crm_statuses() == ["In Fulfilment"]


def test_release_without_state_reads_erp_and_crm():
    script = erp_script()
    script[("erp", "get_sales_order")] = Result(
        200,
        {
            "SalesOrderNo": "SO-0000001",
            "Status": "OPEN",
            "RequestedDate": "20260309",
            "Lines": [{"ItemNo": "SKU-00001", "QtyOrdered": 24, "UoM": "CS", "Qty": 2}],
        },
    )
    script[("crm", "get_order")] = Result(200, submitted()["data"])
    d = Driver(script)
    released = envelope("erp", "SalesOrder.Released", {"SalesOrderNo": "SO-0000001", "ExtRef": CRM_ID})
    d.run(handle_event(resilient(), released))
    assert d.ops() == ["erp.get_sales_order", "crm.get_order", "wms.create_fulfillment", "crm.update_order"]
    assert d.calls[2].payload["ship_to"]["city"] == "Springfield"


def ready_event() -> dict[str, Any]:
    return envelope(
        "wms",
        "fulfillment.ready_to_ship",
        {
            "fulfillment_id": "FO-000001",
            "client_reference": CRM_ID,
            "erp_order": "SO-0000001",
            "status": "ready_to_ship",
            "packages": [{"weight_kg": 10}],
            "event_time_ms": 0,
        },
    )


def test_ready_to_ship_books_carrier_and_confirms_to_wms():
    d = Driver(erp_script())
    d.run(handle_event(resilient(), submitted()))
    d.effects.clear()
    d.script[("carrier", "create_shipment")] = Result(201, {"trackingNumber": "1Z0001"})
    out = d.run(handle_event(resilient(), ready_event()))
    assert out == {"outcome": "shipment_booked", "tracking_number": "1Z0001"}
    assert d.ops() == ["carrier.create_shipment", "wms.ship_confirm"]
    sh, sc = d.calls
    assert sh.payload["shipperReference"] == CRM_ID and sh.payload["packages"] == [{"weightLb": 22.05}]
    assert sh.idempotency_key == f"sh:{CRM_ID}"
    assert sc.params == {"fulfillment_id": "FO-000001"} and sc.payload["tracking_number"] == "1Z0001"
    # A duplicate ready_to_ship books nothing new when idempotency is on.
    d.effects.clear()
    d.run(handle_event(resilient(), ready_event()))
    assert d.ops() == []


def tracking(code: str, id_: str = "evt-t") -> dict[str, Any]:
    data = {
        "trackingNumber": "1Z0001",
        "shipperReference": CRM_ID,
        "eventCode": code,
        "eventTime": "2026-03-03T10:00:00-05:00",
    }
    return envelope("carrier", "tracking.update", data, id_)


def shipped_state() -> dict[str, Any]:
    return {
        f"order:{CRM_ID}": {
            "crm_id": CRM_ID,
            "erp_order": "SO-0000001",
            "fulfillment_id": "FO-000001",
            "tracking_number": "1Z0001",
            "status": "In Fulfilment",
            "touched": 1000.0,
        }
    }


def test_tracking_pu_dl_then_duplicates_and_late_events_ignored():
    script = {
        ("erp", "post_goods_issue"): Result(201, {"DocNo": "GI-1"}),
        ("erp", "post_invoice"): Result(201, {"InvoiceNo": "INV-1"}),
    }
    d = Driver(script, shipped_state())
    ctx = resilient()
    d.run(handle_event(ctx, tracking("PU")))
    assert d.ops() == ["erp.post_goods_issue", "crm.update_order"]
    assert d.calls[0].idempotency_key == f"gi:{CRM_ID}" and d.calls[0].params == {"SalesOrderNo": "SO-0000001"}
    assert d.calls[1].payload == {
        "Status": "Shipped",
        "ExternalOrderNo__c": "SO-0000001",
        "TrackingNumber__c": "1Z0001",
    }
    d.effects.clear()
    assert d.run(handle_event(ctx, tracking("PU")))["outcome"] == "ignored"  # duplicate
    assert d.run(handle_event(ctx, tracking("IT")))["outcome"] == "ignored"  # still Shipped
    assert d.ops() == []
    d.run(handle_event(ctx, tracking("DL")))
    assert d.ops() == ["erp.post_invoice", "crm.update_order"]
    assert d.calls[0].idempotency_key == f"inv:{CRM_ID}"
    d.effects.clear()
    for late in ("IT", "PU", "DL", "EX"):
        assert d.run(handle_event(ctx, tracking(late)))["outcome"] == "ignored"
    assert d.ops() == [] and d.published("exceptions") == []
    assert d.state[f"order:{CRM_ID}"]["status"] == "Delivered"


def test_delivered_without_pickup_posts_goods_issue_then_invoice():
    d = Driver({}, shipped_state())
    d.run(handle_event(resilient(), tracking("DL")))
    assert d.ops() == ["erp.post_goods_issue", "erp.post_invoice", "crm.update_order"]
    assert d.crm_statuses() == ["Delivered"]


def test_goods_issue_already_posted_counts_as_done():
    script = {("erp", "post_goods_issue"): BusinessError("erp", "post_goods_issue", 409, "invalid_state")}
    d = Driver(script, shipped_state())
    out = d.run(handle_event(resilient(), tracking("PU")))
    assert out["outcome"] == "updated" and d.crm_statuses() == ["Shipped"]


def test_carrier_exception_reported():
    d = Driver({}, shipped_state())
    d.run(handle_event(resilient(), tracking("EX")))
    assert d.crm_statuses() == ["Exception"]
    assert d.published("exceptions")[0]["reason"] == "carrier_exception"


@pytest.mark.parametrize(
    "failure",
    [
        CallFailed("erp", "create_sales_order", 503, "technical", "http_503"),
        BreakerOpen("erp", "create_sales_order"),
    ],
)
def test_technical_failure_dead_lettered_when_enabled(failure):
    script = erp_script()
    script[("erp", "create_sales_order")] = failure
    d = Driver(script)
    out = d.run(handle_event(resilient(), submitted()))
    assert out["outcome"] == "dead_lettered"
    [entry] = d.published("dlq")
    assert entry["category"] == "technical" and entry["workflow"] == "order_submitted"
    assert entry["event"]["data"]["Id"] == CRM_ID and entry["reason"] == failure.reason
    assert not d.published("exceptions") and d.crm_statuses() == []


def test_technical_failure_lost_when_naive():
    script = erp_script()
    script[("erp", "create_sales_order")] = CallFailed("erp", "create_sales_order", 503, "technical", "http_503")
    d = Driver(script)
    out = d.run(handle_event(naive(), submitted()))
    assert out["outcome"] == "lost"
    assert [e for e in d.effects if isinstance(e, Publish)] == []


def test_replay_after_outage_completes_with_same_keys():
    script = erp_script()
    script[("wms", "create_fulfillment")] = [
        CallFailed("wms", "create_fulfillment", None, "technical", "timeout"),
        Result(201, {"fulfillment_id": "FO-000001"}),
    ]
    d = Driver(script)
    ctx = resilient()
    assert d.run(handle_event(ctx, submitted()))["outcome"] == "dead_lettered"
    [entry] = d.published("dlq")
    assert d.crm_statuses() == ["Booked"]
    d.effects.clear()
    out = d.run(replay(ctx, entry))
    assert out["outcome"] == "booked"
    # The sales order is not created twice: state says it exists; the retry uses the same key.
    assert d.ops() == [
        "erp.get_customer",
        "erp.get_prices",
        "erp.get_atp",
        "wms.create_fulfillment",
        "crm.update_order",
    ]
    assert d.calls[3].idempotency_key == f"fo:{CRM_ID}"
    assert d.crm_statuses() == ["In Fulfilment"]


def test_replay_accepts_store_dlq_entry_objects():
    class Entry:
        payload = {"event": submitted()}

    d = Driver(erp_script())
    assert d.run(replay(resilient(), Entry()))["outcome"] == "booked"


def test_idempotency_keys_only_when_enabled():
    d = Driver(erp_script())
    d.run(handle_event(resilient(), submitted()))
    assert {c.idempotency_key for c in d.calls if c.operation in ("create_sales_order", "create_fulfillment")} == {
        f"so:{CRM_ID}",
        f"fo:{CRM_ID}",
    }
    d = Driver(erp_script())
    d.run(handle_event(naive(), submitted()))
    assert all(c.idempotency_key is None for c in d.calls)


def test_naive_duplicate_webhook_creates_twice():
    d = Driver(erp_script())
    ctx = naive()
    d.run(handle_event(ctx, submitted()))
    d.run(handle_event(ctx, submitted()))
    assert d.ops().count("erp.create_sales_order") == 2
    assert d.crm_statuses() == ["Booked", "In Fulfilment"]  # but CRM status still never regresses


def test_acknowledged_only_events():
    d = Driver()
    out = d.run(handle_event(resilient(), envelope("wms", "fulfillment.picked", {"fulfillment_id": "FO-1"})))
    assert out["outcome"] == "ignored" and d.effects == []


def test_concurrent_pickup_does_not_regress_a_delivery_saved_meanwhile():
    shared = shipped_state()
    ctx = resilient()
    inner = Driver({("erp", "post_invoice"): Result(201, {"InvoiceNo": "INV-1"})}, shared)

    def gi_while_delivery_completes(call: Call) -> Result:
        # The DL event is processed completely while the PU workflow waits on its goods issue.
        inner.run(handle_event(ctx, tracking("DL", "evt-dl")))
        return Result(201, {"DocNo": "GI-1"})

    outer = Driver({("erp", "post_goods_issue"): gi_while_delivery_completes}, shared)
    out = outer.run(handle_event(ctx, tracking("PU", "evt-pu")))
    assert inner.crm_statuses() == ["Delivered"]
    assert outer.crm_statuses() == []  # PU found Delivered saved and wrote nothing
    assert out["outcome"] == "updated"
    assert shared[f"order:{CRM_ID}"]["status"] == "Delivered"
    assert shared[f"order:{CRM_ID}"]["invoice_no"] == "INV-1"


def test_auth_failure_is_technical_not_a_business_exception():
    d = Driver(
        {("erp", "post_goods_issue"): BusinessError("erp", "post_goods_issue", 401, "invalid_token")}, shipped_state()
    )
    out = d.run(handle_event(resilient(), tracking("PU")))
    assert out["outcome"] == "dead_lettered"
    assert d.published("exceptions") == [] and d.crm_statuses() == []


def test_touched_buckets_take_one_member_per_order_from_a_store_that_adds(tmp_path) -> None:
    """Through the interpreters' engine and the live SQLite store, a new order's save adds itself to
    the hour's bucket with StateAdd: the bucket is never read or written whole (it grows with every
    order of the hour), and ends up the same as the StateGet + StatePut path leaves it."""
    import random

    from reference_integration.effects import StateAdd
    from reference_integration.runtime_core import Engine
    from reference_integration.store import MemoryStore, SqliteStore
    from reference_integration.workflows import save

    def run(store: Any) -> list[Any]:
        eng = Engine(IntegrationConfig.resilient(), random.Random(0), lambda: 1000.0, store)
        seen: list[Any] = []

        def wf(i: int):
            def spy(gen):  # the effects the workflow yields, passed through
                value = None
                while True:
                    try:
                        eff = gen.send(value)
                    except StopIteration as stop:
                        return stop.value
                    seen.append(eff)
                    value = yield eff

            return spy(save({"crm_id": f"801{i:03d}", "status": "Booked"}))

        for i in (*range(50), 7):  # order 7 saved again: already in the bucket
            for _ in eng.drive(wf(i), "save"):
                raise AssertionError("save makes no calls")
        return seen

    sq = SqliteStore(tmp_path / "ri.db")
    effects = run(sq)
    bucket = [e for e in effects if getattr(e, "key", None) == "touched:0"]
    assert bucket and all(isinstance(e, StateAdd) for e in bucket)
    mem = MemoryStore()
    assert all(isinstance(e, StateAdd) for e in run(mem) if getattr(e, "key", None) == "touched:0")

    class NoAdd(MemoryStore):
        state_add = None  # type: ignore[assignment]  # a store without it: the engine answers None

    plain = NoAdd()
    plain_effects = run(plain)  # the fallback reads and rewrites the list
    assert any(isinstance(e, StatePut) and e.key == "touched:0" for e in plain_effects)
    expected = [f"801{i:03d}" for i in range(50)]
    assert sq.get_state("touched:0") == mem.get_state("touched:0") == plain.get_state("touched:0") == expected
    sq.close()
