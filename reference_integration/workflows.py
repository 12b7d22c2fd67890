"""Order-to-cash and friends as effect generators (see docs/internals.md, "Order-to-cash").

One code base for both clocks: each workflow yields ``Call``/``StateGet``/``StatePut``/``Publish``/
``Now`` and gets results back from whichever interpreter runs it. Nothing here reads a clock or
does I/O.

Entry points take the webhook envelope ``{id, type, source, occurred_at, data}``:
``handle_event(ctx, event)`` dispatches by (source, type) and wraps the workflow in the failure
routing below; ``replay(ctx, dlq_entry)`` re-runs a dead-lettered event.

Failure routing (``_guarded``):
- business (ERP 422 price_mismatch, 404 unknown customer, ``MappingError``): ``Publish("exceptions")``
  and CRM status ``Exception`` with ``StatusReason__c``; credit hold is reported the same way but
  the CRM status is ``Credit Hold``;
- technical after the runtime's retries (``CallFailed`` technical, ``BreakerOpen``...):
  ``Publish("dlq")`` when ``config.dlq``, else the event is lost, as a naive integration loses it.

Per-order state lives under ``order:<crm id>``. Idempotency keys (``so:``, ``fo:``, ``sh:``, ``sc:``,
``gi:``, ``inv:`` + crm id) are sent only when ``config.idempotency``; with it the workflows also skip
creates the saved state shows as done (an idempotent consumer). CRM status never regresses: every
write is checked against the saved status rank, so duplicates and late events are ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reference_integration import mappings as m
from reference_integration.canonical import Address, OrderStatus, Product, status_advances
from reference_integration.config import IntegrationConfig
from reference_integration.effects import Call, Effect, Now, Publish, Result, StateAdd, StateGet, StatePut, Workflow
from reference_integration.errors import CallFailed, from_response
from reference_integration.mappings import MappingError

if TYPE_CHECKING:  # the integration never imports the harness at run time
    from mocks.coldmap import ColdStore

Gen = Generator[Effect, Any, Any]

# Path-parameter names of the mock route tables (mocks/*/core.py); one place to keep them in step.
P_CRM_ORDER = "Id"
P_CRM_ACCOUNT = "Id"
P_ERP_CUSTOMER = "CustomerNo"
P_ERP_ITEM = "ItemNo"
P_ERP_ORDER = "SalesOrderNo"
P_WMS_FULFILMENT = "fulfillment_id"
P_CARRIER_TRACKING = "trackingNumber"

TOUCH_BUCKET_S = 3600.0
# 401/403 that survive the runtime's token refresh are plumbing (credentials, scopes), not a
# business decision about the order: dead-letter them for replay instead of flagging the order.
AUTH_STATUS = frozenset({401, 403})


@dataclass
class WorkflowContext:
    """What every workflow may read besides the event: configuration and caches of master data
    (case packs, CRM accounts).

    The cache is plain memory: losing it (restart) only costs a few ``get_item`` calls."""

    config: IntegrationConfig = field(default_factory=IntegrationConfig)
    plant: str = "WH01"
    carrier_name: str = "TWIN-PARCEL"
    service: str = "GROUND"
    products: dict[str, Product] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The ``ship_to`` dicts of order states, one per distinct address (``ship_to_state``).
    addresses: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)

    def key(self, prefix: str, crm_id: str) -> str | None:
        return f"{prefix}:{crm_id}" if self.config.idempotency else None

    def use_cold(self, store: ColdStore) -> None:
        """Virtual runs (``sim.virtual``): nothing here grows with the orders (products, accounts
        and addresses are master data), but order states hold the ``addresses`` dicts: register
        them as shared, so a paged-out state comes back holding the very same dict."""
        store.share(self.addresses)


# --------------------------------------------------------------------------------------- small steps


def call(
    ctx: WorkflowContext,
    system: str,
    op: str,
    payload: Any = None,
    params: Mapping[str, str] | None = None,
    *,
    key: str | None = None,
    corr: str | None = None,
) -> Generator[Effect, Any, Result]:
    """Yield one Call. Interpreters throw ``CallFailed`` for non-2xx; one that hands back an error
    ``Result`` instead gets it classified the same way, so workflows only ever see 2xx here."""
    res = yield Call(system, op, payload, dict(params or {}), key, corr)
    if isinstance(res, Result) and res.status >= 400:
        raise from_response(system, op, res.status, res.body, res.headers)
    if not isinstance(res, Result):  # an interpreter that returns the body alone
        res = Result(200, res)
    return res


def state_key(crm_id: str) -> str:
    return f"order:{crm_id}"


def load(crm_id: str) -> Generator[Effect, Any, dict[str, Any]]:
    st = yield StateGet(state_key(crm_id))
    return dict(st) if st else {"crm_id": crm_id}


def save(st: dict[str, Any]) -> Gen:
    """Write the order state, merged with what is stored: another workflow for the same order may
    have saved meanwhile (a PU and a DL processed concurrently). Fields only the other one knows
    are kept, and the status keeps whichever is further along."""
    key = state_key(st["crm_id"])
    stored = yield StateGet(key)
    if stored:
        get = st.get
        for k, v in stored.items():
            if get(k) is None:
                st[k] = v
        if stored.get("status") and st.get("status") != stored["status"]:
            if not status_advances(st["status"], stored["status"]):
                st["status"] = stored["status"]
    now = yield Now()
    fresh = "touched" not in st or int(st["touched"] // TOUCH_BUCKET_S) != int(now // TOUCH_BUCKET_S)
    st["touched"] = now
    yield StatePut(key, dict(st))
    if fresh:
        # Hourly buckets of touched orders: what the reconciliation sweep walks.
        bucket = f"touched:{int(now // TOUCH_BUCKET_S)}"
        # One member added where the store can (the live SQLite store: one INSERT); rewriting the
        # whole list made every new order cost as much as the orders before it in that hour.
        if (yield StateAdd(bucket, st["crm_id"])) is None:
            ids = (yield StateGet(bucket)) or []
            if st["crm_id"] not in ids:
                yield StatePut(bucket, [*ids, st["crm_id"]])


def set_status(
    ctx: WorkflowContext,
    st: dict[str, Any],
    status: OrderStatus,
    *,
    reason: str | None = None,
) -> Generator[Effect, Any, bool]:
    """Write a CRM status if it is progress over the saved one; returns whether it wrote. The saved
    status is re-read first so that a concurrent workflow's later milestone is not overwritten."""
    latest = yield StateGet(state_key(st["crm_id"]))
    if latest and latest.get("status") and (not st.get("status") or st["status"] != latest["status"]):
        if not st.get("status") or status_advances(latest["status"], st["status"]):
            st["status"] = latest["status"]
    if not status.advances_from(st.get("status")):
        return False
    crm_id = st["crm_id"]
    body = m.crm_status_update(
        status, reason=reason, erp_order=st.get("erp_order"), tracking_number=st.get("tracking_number")
    )
    yield from call(ctx, "crm", "update_order", body, {P_CRM_ORDER: crm_id}, corr=crm_id)
    st["status"] = status.value
    yield from save(st)
    return True


def report_exception(
    ctx: WorkflowContext, crm_id: str | None, workflow: str, reason: str, category: str, **detail: Any
) -> Gen:
    yield Publish(
        "exceptions", {"crm_id": crm_id, "reason": reason, "category": category, "workflow": workflow, **detail}
    )


def _products(ctx: WorkflowContext, skus: list[str], corr: str) -> Generator[Effect, Any, dict[str, Product]]:
    for sku in skus:
        if sku not in ctx.products:
            res = yield from call(ctx, "erp", "get_item", params={P_ERP_ITEM: sku}, corr=corr)
            ctx.products[sku] = m.erp_item_to_product(res.body)
    return {s: ctx.products[s] for s in skus}


def _default_ship_to(
    ctx: WorkflowContext, data: Mapping[str, Any], customer: Any, crm_id: str
) -> Generator[Effect, Any, Address]:
    """An order without its own ship-to ships to the account's shipping address (CRM account, else
    the ERP customer's ``ShipTo``). No address anywhere is a mapping error, raised before anything
    is created: a fulfilment without an address would only fail later, in the warehouse."""
    account_id = data.get("AccountId") or (data.get("Account") or {}).get("Id")
    if account_id:
        if account_id not in ctx.accounts:
            res = yield from call(ctx, "crm", "get_account", params={P_CRM_ACCOUNT: account_id}, corr=crm_id)
            ctx.accounts[account_id] = res.body if isinstance(res.body, dict) else {}
        addr = m.crm_ship_to({"AccountName": ctx.accounts[account_id].get("Name"), **ctx.accounts[account_id]})
        if addr is not None:
            return addr
    if isinstance(customer, Mapping) and customer.get("ShipTo"):
        return m.pascal_address(customer["ShipTo"], "ShipTo", str(customer.get("Name") or ""))
    raise MappingError("ShippingAddress", None, "no ship-to on the CRM order, the CRM account or the ERP customer")


def ship_to_state(ctx: WorkflowContext, addr: Address) -> dict[str, Any]:
    """``addr.model_dump()`` for an order state, the same dict for every order shipping there: a
    dict per order was the largest part of an order's state, and nothing edits a state's
    ``ship_to`` in place (workflows replace it; ``_address_from`` only reads it)."""
    d = addr.model_dump()
    return ctx.addresses.setdefault(address_key(d), d)


def address_key(ship_to: dict[str, Any]) -> tuple[Any, ...]:
    """The key of a ``ship_to`` dict in ``WorkflowContext.addresses``."""
    return tuple(ship_to.values())


def _address_from(st: Mapping[str, Any]) -> Address | None:
    a = st.get("ship_to")
    return Address.model_validate(a) if a else None


# --------------------------------------------------------------------------------------- workflows


def order_submitted(ctx: WorkflowContext, event: Mapping[str, Any]) -> Workflow:
    """CRM ``order.submitted``: enrich and validate against ERP, create the sales order, write the
    CRM status back, and create the WMS fulfilment when booked."""
    data = event["data"]
    crm_id = m.required(data, "Id", "Id")
    skus = m.crm_order_skus(data)
    customer_no = m.crm_customer_no(data)

    cust = yield from call(ctx, "erp", "get_customer", params={P_ERP_CUSTOMER: customer_no}, corr=crm_id)
    products = yield from _products(ctx, skus, crm_id)
    order = m.crm_order_to_canonical(data, products)
    prices = yield from call(
        ctx, "erp", "get_prices", params={"customer": customer_no, "items": ",".join(skus)}, corr=crm_id
    )
    order = m.with_prices(order, m.erp_prices(prices.body))
    # ATP is informational: the ERP decides reservation and backorder on create.
    yield from call(ctx, "erp", "get_atp", params={"items": ",".join(skus), "plant": ctx.plant}, corr=crm_id)

    ship_to = order.ship_to or (yield from _default_ship_to(ctx, data, cust.body, crm_id))

    st = yield from load(crm_id)
    st.update(
        customer_no=order.customer_no,
        ship_to=ship_to_state(ctx, ship_to),
        lines=[list(x) for x in m.order_lines_each(order)],
        requested_date=None if order.requested_date is None else order.requested_date.isoformat(),
    )
    if ctx.config.idempotency and st.get("erp_order") and st.get("erp_status"):
        erp_order, erp_status = st["erp_order"], st["erp_status"]
    else:
        so = yield from call(
            ctx,
            "erp",
            "create_sales_order",
            m.canonical_to_erp_sales_order(order, ctx.plant),
            key=ctx.key("so", crm_id),
            corr=crm_id,
        )
        erp_order = m.required(so.body, "SalesOrderNo", "SalesOrderNo")
        erp_status = m.required(so.body, "Status", "Status")
        st.update(erp_order=erp_order, erp_status=erp_status)
        yield from save(st)

    status = m.erp_status_to_crm(erp_status)
    if status == OrderStatus.CREDIT_HOLD:
        yield from report_exception(ctx, crm_id, "order_submitted", "credit_hold", "business", erp_order=erp_order)
        yield from set_status(ctx, st, status, reason="credit_hold")
        return {"outcome": "credit_hold", "erp_order": erp_order}
    if status == OrderStatus.BACKORDERED:
        yield from set_status(ctx, st, status)
        return {"outcome": "backordered", "erp_order": erp_order}
    yield from set_status(ctx, st, OrderStatus.BOOKED)
    yield from _create_fulfilment(ctx, st)
    return {"outcome": "booked", "erp_order": erp_order, "fulfillment_id": st.get("fulfillment_id")}


def _create_fulfilment(ctx: WorkflowContext, st: dict[str, Any]) -> Gen:
    crm_id = st["crm_id"]
    if not (ctx.config.idempotency and st.get("fulfillment_id")):
        body = m.canonical_to_wms_fulfillment(
            crm_id,
            st["erp_order"],
            _address_from(st),
            [(sku, int(q)) for sku, q in st.get("lines") or []],
            _date(st.get("requested_date")),
            ctx.plant,
        )
        res = yield from call(ctx, "wms", "create_fulfillment", body, key=ctx.key("fo", crm_id), corr=crm_id)
        st["fulfillment_id"] = m.required(res.body, "fulfillment_id", "fulfillment_id")
        yield from save(st)
    yield from set_status(ctx, st, OrderStatus.IN_FULFILMENT)


def _date(v: str | None) -> dt.date | None:
    return None if not v else dt.date.fromisoformat(v)


def order_released(ctx: WorkflowContext, event: Mapping[str, Any]) -> Workflow:
    """ERP ``SalesOrder.Released`` (backorder filled, or credit released): create the fulfilment."""
    data = event["data"]
    crm_id = m.required(data, "ExtRef", "ExtRef")
    st = yield from load(crm_id)
    st["erp_order"] = m.required(data, "SalesOrderNo", "SalesOrderNo")
    st["erp_status"] = "RELEASED"
    if not st.get("lines"):
        so = yield from call(ctx, "erp", "get_sales_order", params={P_ERP_ORDER: st["erp_order"]}, corr=crm_id)
        st["lines"] = [list(x) for x in m.erp_order_lines(so.body)]
        st.setdefault("customer_no", so.body.get("SoldTo"))
        if so.body.get("RequestedDate"):
            st["requested_date"] = m.parse_erp_date(so.body["RequestedDate"]).isoformat()
    if not st.get("ship_to"):
        order = yield from call(ctx, "crm", "get_order", params={P_CRM_ORDER: crm_id}, corr=crm_id)
        addr = m.crm_ship_to(order.body)
        st["ship_to"] = None if addr is None else ship_to_state(ctx, addr)
    yield from _create_fulfilment(ctx, st)
    return {"outcome": "released", "fulfillment_id": st.get("fulfillment_id")}


def fulfillment_ready(ctx: WorkflowContext, event: Mapping[str, Any]) -> Workflow:
    """WMS ``fulfillment.ready_to_ship``: book the carrier shipment, then confirm it to the WMS."""
    data = event["data"]
    crm_id = m.required(data, "client_reference", "client_reference")
    fid = m.required(data, "fulfillment_id", "fulfillment_id")
    st = yield from load(crm_id)
    st.setdefault("fulfillment_id", fid)
    if data.get("erp_order"):
        st.setdefault("erp_order", data["erp_order"])
    tracking = st.get("tracking_number") if ctx.config.idempotency else None
    if not tracking:
        ship_to = _address_from(st)
        if ship_to is None:
            f = yield from call(ctx, "wms", "get_fulfillment", params={P_WMS_FULFILMENT: fid}, corr=crm_id)
            ship_to = m.wms_address(m.required(f.body, "ship_to", "ship_to"))
            st["ship_to"] = ship_to_state(ctx, ship_to)
        req = m.wms_ready_to_carrier_shipment(data, ship_to, ctx.service)
        res = yield from call(ctx, "carrier", "create_shipment", req, key=ctx.key("sh", crm_id), corr=crm_id)
        tracking = m.required(res.body, "trackingNumber", "trackingNumber")
        st["tracking_number"] = tracking
        yield from save(st)
    if not (ctx.config.idempotency and st.get("ship_confirmed")):
        yield from call(
            ctx,
            "wms",
            "ship_confirm",
            {"carrier": ctx.carrier_name, "tracking_number": tracking},
            {P_WMS_FULFILMENT: fid},
            key=ctx.key("sc", crm_id),
            corr=crm_id,
        )
        st["ship_confirmed"] = True
        yield from save(st)
    return {"outcome": "shipment_booked", "tracking_number": tracking}


def tracking_update(ctx: WorkflowContext, event: Mapping[str, Any]) -> Workflow:
    """Carrier ``tracking.update``: PU/IT -> Shipped + goods issue; DL -> Delivered + invoice;
    EX -> Exception. Duplicates and late events (IT after DL) change nothing."""
    crm_id, tracking, status = m.carrier_tracking_event(event["data"])
    st = yield from load(crm_id)
    st.setdefault("tracking_number", tracking)
    shipped = status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED)
    need_gi = shipped and not st.get("gi_doc")
    need_inv = status == OrderStatus.DELIVERED and not st.get("invoice_no")
    if not status.advances_from(st.get("status")) and not (ctx.config.idempotency and (need_gi or need_inv)):
        return {"outcome": "ignored", "status": status.value, "current": st.get("status")}

    if need_gi or need_inv:
        erp_order = st.get("erp_order") or (yield from _find_erp_order(ctx, crm_id))
        st["erp_order"] = erp_order
        p = {P_ERP_ORDER: erp_order}
        if need_gi:
            gi = yield from _post_once(ctx, "post_goods_issue", p, ctx.key("gi", crm_id), crm_id)
            st["gi_doc"] = gi.get("DocNo") or True
            yield from save(st)
        if need_inv:
            inv = yield from _post_once(ctx, "post_invoice", p, ctx.key("inv", crm_id), crm_id)
            st["invoice_no"] = inv.get("InvoiceNo") or True
            yield from save(st)
    if status == OrderStatus.EXCEPTION:
        yield from report_exception(ctx, crm_id, "tracking_update", "carrier_exception", "business")
        yield from set_status(ctx, st, status, reason="carrier_exception")
    else:
        yield from set_status(ctx, st, status)
    return {"outcome": "updated", "status": status.value}


def _post_once(
    ctx: WorkflowContext, op: str, params: dict[str, str], key: str | None, crm_id: str
) -> Generator[Effect, Any, dict[str, Any]]:
    """Post a goods issue / invoice. The ERP answers 409 invalid_state when the order is already
    past that step (posted by an earlier attempt whose answer was lost): that is success here."""
    try:
        res = yield from call(ctx, "erp", op, None, params, key=key, corr=crm_id)
    except CallFailed as e:
        if e.status == 409 and e.reason == "invalid_state":
            return {}
        raise
    return res.body if isinstance(res.body, dict) else {}


def _find_erp_order(ctx: WorkflowContext, crm_id: str) -> Generator[Effect, Any, str]:
    res = yield from call(ctx, "erp", "find_sales_orders", params={"ExtRef": crm_id}, corr=crm_id)
    rows = res.body.get("SalesOrders", res.body.get("items", [])) if isinstance(res.body, Mapping) else res.body
    if not rows:
        raise MappingError("ExtRef", crm_id, "no ERP sales order for this CRM order")
    return m.required(rows[0], "SalesOrderNo", "SalesOrderNo")


# --------------------------------------------------------------------------------------- dispatch

WorkflowFn = Callable[[WorkflowContext, Mapping[str, Any]], Workflow]

WORKFLOWS: dict[str, WorkflowFn] = {
    "order_submitted": order_submitted,
    "order_released": order_released,
    "fulfillment_ready": fulfillment_ready,
    "tracking_update": tracking_update,
}

ROUTES: dict[tuple[str, str], str] = {
    ("crm", "order.submitted"): "order_submitted",
    ("erp", "SalesOrder.Released"): "order_released",
    ("wms", "fulfillment.ready_to_ship"): "fulfillment_ready",
    ("carrier", "tracking.update"): "tracking_update",
}


def workflow_name(event: Mapping[str, Any]) -> str | None:
    """Which workflow handles this envelope; None for events the integration only acknowledges
    (``fulfillment.picked`` / ``packed``) or does not know."""
    return ROUTES.get((str(event.get("source", "")), str(event.get("type", ""))))


def crm_id_of(event: Mapping[str, Any]) -> str | None:
    """The correlation id of an event: the CRM order id, wherever its dialect carries it."""
    data = event.get("data")
    if type(data) is not dict and not isinstance(data, Mapping):  # an ABC check costs ~10x the ``is``
        return None
    for k in ("Id", "ExtRef", "client_reference", "shipperReference"):
        if isinstance(data.get(k), str):
            return data[k]
    return None


def handle_event(ctx: WorkflowContext, event: Mapping[str, Any]) -> Workflow:
    """Run the workflow for a webhook envelope with failure routing. Returns an outcome dict."""
    name = workflow_name(event)
    if name is None:
        return {"outcome": "ignored", "reason": "no workflow for event type"}
    return (yield from _guarded(ctx, name, event))


def replay(ctx: WorkflowContext, dlq_entry: Any) -> Workflow:
    """Re-run a dead-lettered event's workflow. Safe because creates carry idempotency keys and
    status writes never regress. Accepts the DLQ payload dict or a store ``DlqEntry``."""
    payload = getattr(dlq_entry, "payload", dlq_entry)
    event = payload.get("event", payload) if isinstance(payload, Mapping) else payload
    return (yield from handle_event(ctx, event))


def _guarded(ctx: WorkflowContext, name: str, event: Mapping[str, Any]) -> Workflow:
    crm_id = crm_id_of(event)
    try:
        try:
            return (yield from WORKFLOWS[name](ctx, event))
        except MappingError as e:
            detail = {k: v for k, v in e.to_dict().items() if k in ("field", "value")}
            yield from _business(ctx, name, crm_id, e.reason, "mapping", detail)
            return {"outcome": "exception", "category": "mapping", "field": e.field}
        except CallFailed as e:
            if e.category != "business" or e.status in AUTH_STATUS:
                raise
            reason = e.reason
            detail: dict[str, Any] = {"system": e.system, "operation": e.operation, "status": e.status}
            if isinstance(e.body, Mapping) and e.body.get("field"):
                detail["field"] = e.body["field"]
            yield from _business(ctx, name, crm_id, reason, "business", detail)
            return {"outcome": "exception", "category": "business", "reason": reason}
    except CallFailed as e:
        if ctx.config.dlq:
            yield Publish(
                "dlq",
                {
                    "category": "technical",
                    "workflow": name,
                    "reason": e.reason,
                    "crm_id": crm_id,
                    "error": e.to_dict(),
                    "event": dict(event),
                },
            )
            return {"outcome": "dead_lettered", "reason": e.reason}
        return {"outcome": "lost", "reason": e.reason}


def _business(
    ctx: WorkflowContext, workflow: str, crm_id: str | None, reason: str, category: str, detail: dict[str, Any]
) -> Gen:
    yield from report_exception(ctx, crm_id, workflow, reason, category, **detail)
    if crm_id is None:
        return
    st = yield from load(crm_id)
    text = reason if not detail.get("field") else f"{reason}: {detail['field']}"
    try:
        yield from set_status(ctx, st, OrderStatus.EXCEPTION, reason=text)
    except CallFailed as e:
        if e.category != "business":
            raise
        # The CRM refused the write-back too: the exception queue entry already tells people.
