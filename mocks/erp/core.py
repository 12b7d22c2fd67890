"""Pure ERP core: OAuth2 tokens, customers and credit, items, prices, ATP and sales orders.

State is plain dicts keyed by SKU / order number; time is ``env.now``. Stock lives in one plant
(the first warehouse of the master data, ``WH01``): ATP = on hand - reserved. Sales orders reserve
what is available and backorder the rest; received stock fills backorders first-in first-out,
and a fully filled backorder is released (ledger ``sales_order.released`` + webhook
``SalesOrder.Released``). The core does NOT deduplicate on ExtRef: real ERPs do not, and a second
order with the same ExtRef is exactly how a duplicate shows up in the ledger. Idempotency-Key
handling lives in the Gateway in front of the core.

Order statuses: OPEN (fully reserved), BACKORDERED, CREDIT_HOLD (nothing reserved),
GOODS_ISSUED, INVOICED, CANCELLED.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from collections.abc import MutableMapping
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar

from mocks.core.base import DomainCore, Request, Response, Route, error
from mocks.core.paging import NumberedIds, RefIndex, crm_order_ids, intern, pack, unpack
from mocks.core.validation import parse
from mocks.erp import schemas as s
from sim.masterdata import Address, Customer, MasterData
from sim.scenario import Scenario
from sim.world.supplier import Replenishment, expected_daily_demand, initial_stock

if TYPE_CHECKING:
    from mocks.coldmap import ColdMap, ColdStore

DEFAULT_CLIENT_SECRET = "twin-secret"  # any client_id is accepted with this secret
SCOPES = ("orders", "pricing", "credit")
PRICE_TOLERANCE = 0.01  # relative difference tolerated between the caller's and the ERP's price

_SO = "/api/v2/sales-orders"
_ORDER_NOS = NumberedIds("SO-", 7)  # how ``op_create_sales_order`` numbers sales orders
_CHALLENGE = {"www-authenticate": 'Bearer realm="erp"'}  # copied into each 401's own headers


@dataclass(slots=True)
class Token:
    token: str
    client_id: str
    scopes: frozenset[str]
    expires_t: float


@dataclass(slots=True)
class SoLine:
    line_no: int
    sku: str
    qty_each: int
    unit_price_each: float
    uom: str
    qty: int  # as ordered, in ``uom``
    reserved: int = 0
    backordered: int = 0


@dataclass(slots=True)
class SalesOrder:
    order_no: str
    ext_ref: str
    customer_no: str
    plant: str
    requested_date: str | None
    po_number: str | None
    lines: list[SoLine]
    status: str
    created_t: float
    value: float
    currency: str
    gi_doc: str | None = None
    invoice_no: str | None = None


# A sales order written out (``ErpCore.use_cold``): its field values, then its lines' one after another.
_SO_FIELDS = attrgetter(*(f.name for f in fields(SalesOrder)))
_LINE_FIELDS = attrgetter(*(f.name for f in fields(SoLine)))
_PER_LINE = len(fields(SoLine))
_SO_NAMES = [f.name for f in fields(SalesOrder)]
_LINES_AT = _SO_NAMES.index("lines")
# What the ledger, webhooks and the integration keep after a read (``mocks.core.paging.intern``).
_SO_INTERN = tuple(_SO_NAMES.index(n) for n in ("order_no", "ext_ref", "status"))


def _dump_order(o: SalesOrder) -> bytes:
    values = list(_SO_FIELDS(o))
    values[_LINES_AT] = None  # the lines are the second part, field after field
    intern(values, _SO_INTERN)
    return pack(values, list(itertools.chain.from_iterable(map(_LINE_FIELDS, o.lines))))


def _load_order(blob: bytes) -> SalesOrder:
    values, flat = unpack(blob)
    values[_LINES_AT] = [SoLine(*flat[i : i + _PER_LINE]) for i in range(0, len(flat), _PER_LINE)]
    return SalesOrder(*values)


def _address(a: Address) -> dict[str, str]:
    return {
        "Name": a.name,
        "Street": a.line1,
        "City": a.city,
        "State": a.region,
        "PostalCode": a.postal_code,
        "Country": a.country,
    }


# Credit control sizes a customer's limit to cover its open order book at peak with this headroom;
# order book = accepted, not yet invoiced (about the requested lead time plus transit).
CREDIT_HEADROOM = 2.5
ORDER_BOOK_DAYS = 7.0


def credit_limits(md: MasterData, scenario: Scenario, daily_each: dict[str, float]) -> dict[str, float]:
    """Effective credit limit per customer: the master-data limit, raised where it would not cover the
    customer's expected order book at quarter-end peak (a credit department sets limits that way;
    without it a scaled-down demo would put most orders on hold). Customers flagged ``credit_hold``
    in the master data stay on hold through ``holds``, so this never hides a deliberate hold."""
    from sim.demand import TIER_WEIGHT

    daily_value = sum(each * md.by_sku[sku].list_price for sku, each in daily_each.items())
    surge = scenario.demand.surge
    total = (1.0 - surge.share) + surge.share * surge.peak_multiplier
    window = surge.weeks * 7 * 86400.0 / scenario.horizon
    peak = max(1.0, (surge.share * surge.peak_multiplier / total) / window) if window > 0 else 1.0
    weights = {c.customer_no: TIER_WEIGHT.get(c.tier, 1.0) for c in md.customers}
    total_w = sum(weights.values()) or 1.0
    out = {}
    for c in md.customers:
        book = daily_value * peak * ORDER_BOOK_DAYS * weights[c.customer_no] / total_w
        out[c.customer_no] = max(c.credit_limit, c.open_balance + CREDIT_HEADROOM * book)
    return out


class ErpCore(DomainCore):
    system: ClassVar[str] = "erp"
    routes: ClassVar[dict[str, Route]] = {
        "token": Route("POST", "/oauth/token"),
        "get_customer": Route("GET", "/api/v2/customers/{CustomerNo}", scope="credit"),
        "get_item": Route("GET", "/api/v2/items/{ItemNo}", scope="orders"),
        "get_prices": Route("GET", "/api/v2/prices", scope="pricing"),
        "get_atp": Route("GET", "/api/v2/atp", scope="orders"),
        "create_sales_order": Route("POST", _SO, mutating=True, scope="orders"),
        "get_sales_order": Route("GET", _SO + "/{SalesOrderNo}", scope="orders"),
        "find_sales_orders": Route("GET", _SO, scope="orders"),
        "cancel_sales_order": Route("POST", _SO + "/{SalesOrderNo}/cancel", mutating=True, scope="orders"),
        "post_goods_issue": Route("POST", _SO + "/{SalesOrderNo}/goods-issue", mutating=True, scope="orders"),
        "post_invoice": Route("POST", _SO + "/{SalesOrderNo}/invoice", mutating=True, scope="orders"),
    }

    def setup(self) -> None:
        self.client_secret = DEFAULT_CLIENT_SECRET
        self.token_ttl = 3600.0
        # What ``expires_in`` reports; None: ``token_ttl``. Served live the TTL is stretched to an hour
        # of wall time and this says 3600 (clients count wall seconds): ``mocks.serve.build_mock``.
        self.token_expires_in: float | None = None
        self._tokens: dict[str, Token] = {}
        self._token_seq = itertools.count(1)
        self._token_salt = self.streams.seed
        self.plant = self.md.warehouses[0].code if self.md.warehouses else "WH01"
        self.plants = {w.code for w in self.md.warehouses} | {self.plant}
        self.daily_demand = expected_daily_demand(self.md, self.scenario)
        self.supplier: Replenishment | None = None  # set by sim.world.supplier.start_supplier
        self._cold: ColdMap[str, SalesOrder] | None = None  # ``use_cold``
        self._init_state()

    def use_cold(self, store: ColdStore) -> None:
        """Virtual runs: sales orders not touched for a spill interval page out to ``store``.
        Nothing outside ``orders`` holds a sales order or a line of one (the backorder queues
        name them), so each is written out whole and read back as a new, equal object."""
        self._cold = store.map("erp_orders", _dump_order, _load_order, codec=_ORDER_NOS)
        self._cold.update(self.orders)
        self.orders = self._cold

    def _init_state(self) -> None:
        self.on_hand: dict[str, int] = initial_stock(self.md, self.scenario, self.daily_demand)
        self.reserved: dict[str, int] = {}
        self.backorder_qty: dict[str, int] = {}
        # Per SKU, FIFO: (order number, index of the line) -- names, not objects, so a backordered
        # order waiting days for stock can page out like any other (``use_cold``).
        self._backorders: dict[str, deque[tuple[str, int]]] = {}
        self._changed: set[str] = set(self.on_hand)
        self.orders: MutableMapping[str, SalesOrder] = {}
        if self._cold is not None:
            self._cold.clear()
            self.orders = self._cold
        # ExtRef is the CRM order id: CRM and sales order numbers, not strings, per order.
        self._by_ext_ref = RefIndex(crm_order_ids(self.md), _ORDER_NOS)
        # Exposure = receivables open at start (assumed to stay level: payments offset new invoices)
        # + value of orders accepted and not yet invoiced.
        self.exposure: dict[str, float] = {c.customer_no: c.open_balance for c in self.md.customers}
        self.holds: dict[str, bool] = {c.customer_no: c.credit_hold for c in self.md.customers}
        self.credit_limits = credit_limits(self.md, self.scenario, self.daily_demand)
        self._so_seq = itertools.count(1)
        self._gi_seq = itertools.count(1)
        self._inv_seq = itertools.count(1)

    def reset(self) -> None:
        """Fresh business state at the current ``env.now`` (``/_twin/reset``). Tokens survive: a reset
        of the test data should not look like an auth outage to the system under test."""
        self._init_state()
        if self.supplier is not None:
            self.supplier.reset()

    # ------------------------------------------------------------------------------- auth

    def handle(self, req: Request) -> Response:
        route = self.routes.get(req.op)
        if route is not None and route.scope is not None:
            denied = self.authorize(req.headers, route.scope)
            if denied is not None:
                return denied
        return super().handle(req)

    def authorize(self, headers: dict[str, str], scope: str) -> Response | None:
        """None when the bearer token is valid and grants ``scope``; else the 401/403 answer."""
        auth = headers.get("authorization", "")
        value = auth[7:].strip()
        if not value or not auth[:7].lower() == "bearer ":
            r = error(401, "invalid_token", "missing bearer token", "Authorization")
            r.headers.update(_CHALLENGE)
            return r
        tok = self._tokens.get(value)
        if tok is None or self.env.now >= tok.expires_t:
            why = "unknown access token" if tok is None else "access token expired"
            r = error(401, "invalid_token", why, "Authorization")
            r.headers.update(_CHALLENGE)
            return r
        if scope not in tok.scopes:
            return error(403, "insufficient_scope", f"this operation needs scope {scope!r}", "scope")
        return None

    def op_token(self, req: Request) -> Response:
        body = parse(s.TokenRequest, req.body)
        if isinstance(body, Response):
            return body
        if body.client_secret != self.client_secret:
            return error(401, "invalid_client", "client authentication failed", "client_secret")
        wanted = body.scope.split() if body.scope else list(SCOPES)
        unknown = [x for x in wanted if x not in SCOPES]
        if unknown or not wanted:
            return error(400, "invalid_scope", f"unknown scope {unknown[0] if unknown else ''!r}", "scope")
        n = next(self._token_seq)
        value = hashlib.sha256(f"{self._token_salt}:{n}".encode()).hexdigest()[:32]
        if len(self._tokens) > 10_000:
            # Bound memory in long live runs: forget expired tokens.
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_t > self.env.now}
        self._tokens[value] = Token(value, body.client_id, frozenset(wanted), self.env.now + self.token_ttl)
        return Response(
            200,
            {
                "access_token": value,
                "token_type": "Bearer",
                "expires_in": int(self.token_ttl if self.token_expires_in is None else self.token_expires_in),
                "scope": " ".join(wanted),
            },
        )

    # ------------------------------------------------------------------------------- master data

    def op_get_customer(self, req: Request) -> Response:
        c = self.md.by_customer_no.get(req.params.get("CustomerNo", ""))
        if c is None:
            return error(404, "not_found", f"no customer {req.params.get('CustomerNo')!r}", "CustomerNo")
        return Response(200, self._customer_public(c))

    def _customer_public(self, c: Customer) -> dict[str, Any]:
        return {
            "CustomerNo": c.customer_no,
            "Name": c.name,
            "CreditLimit": round(self.credit_limits[c.customer_no], 2),
            "Exposure": round(self.exposure.get(c.customer_no, 0.0), 2),
            "CreditHold": self.holds.get(c.customer_no, False),
            "Terms": c.terms,
            "Currency": c.currency,
            "ShipTo": _address(c.ship_to[0] if c.ship_to else c.sold_to),
        }

    def op_get_item(self, req: Request) -> Response:
        sku = self.md.by_sku.get(req.params.get("ItemNo", ""))
        if sku is None:
            return error(404, "not_found", f"no item {req.params.get('ItemNo')!r}", "ItemNo")
        return Response(
            200,
            {
                "ItemNo": sku.sku,
                "Description": sku.description,
                "BaseUoM": "EA",
                "CasePack": sku.case_pack,
                "ListPrice": sku.list_price,
            },
        )

    def _items_param(self, req: Request) -> list[str] | Response:
        raw = req.params.get("items", "")
        items = [x.strip() for x in raw.split(",") if x.strip()]
        if not items:
            return error(422, "validation_error", "items: required, a comma-separated list of ItemNo", "items")
        for i in items:
            if i not in self.md.by_sku:
                return error(404, "not_found", f"no item {i!r}", "items")
        return items

    def op_get_prices(self, req: Request) -> Response:
        cno = req.params.get("customer", "")
        if not cno:
            return error(422, "validation_error", "customer: required", "customer")
        if cno not in self.md.by_customer_no:
            return error(404, "not_found", f"no customer {cno!r}", "customer")
        items = self._items_param(req)
        if isinstance(items, Response):
            return items
        prices = [{"ItemNo": i, "UnitPrice": self.md.price(cno, i), "PriceUoM": "EA"} for i in items]
        return Response(200, {"Customer": cno, "Prices": prices})

    def op_get_atp(self, req: Request) -> Response:
        plant = req.params.get("plant") or self.plant
        if plant not in self.plants:
            return error(404, "not_found", f"no plant {plant!r}", "plant")
        items = self._items_param(req)
        if isinstance(items, Response):
            return items
        avail = self.available if plant == self.plant else (lambda _sku: 0)
        return Response(200, {"Plant": plant, "Items": [{"ItemNo": i, "Available": avail(i)} for i in items]})

    # ------------------------------------------------------------------------------- inventory

    def available(self, sku: str) -> int:
        return max(0, self.on_hand.get(sku, 0) - self.reserved.get(sku, 0))

    def backordered(self, sku: str) -> int:
        return self.backorder_qty.get(sku, 0)

    def take_changed(self) -> set[str]:
        """SKUs whose inventory position changed since the last call (for the supplier's review)."""
        out, self._changed = self._changed, set()
        return out

    def receive_stock(self, sku: str, qty: int, ref: str | None = None) -> None:
        """Goods receipt at the stocked plant; fills backorders FIFO. ``ref``: the purchase order."""
        if sku not in self.md.by_sku:
            raise KeyError(f"unknown sku {sku!r}")
        if qty <= 0:
            raise ValueError(f"receipt quantity must be > 0, got {qty}")
        self.on_hand[sku] = self.on_hand.get(sku, 0) + qty
        self.record(None, "stock.received", sku, sku=sku, qty=qty, po_no=ref, plant=self.plant)
        self._allocate(sku)

    def set_credit_hold(self, customer_no: str, hold: bool) -> None:
        """Put a customer on (or off) credit hold at run time (credit_hold_spike fault)."""
        if customer_no not in self.md.by_customer_no:
            raise KeyError(f"unknown customer {customer_no!r}")
        self.holds[customer_no] = hold

    def _allocate(self, sku: str) -> None:
        q = self._backorders.get(sku)
        orders = self.orders
        while q:
            no, at = q[0]
            order = orders[no]
            line = order.lines[at]
            if order.status != "BACKORDERED" or line.backordered == 0:
                q.popleft()
                continue
            avail = self.available(sku)
            if avail <= 0:
                break
            take = min(avail, line.backordered)
            line.reserved += take
            line.backordered -= take
            self.reserved[sku] = self.reserved.get(sku, 0) + take
            self.backorder_qty[sku] -= take
            self._changed.add(sku)
            if line.backordered == 0:
                q.popleft()
                if all(ln.backordered == 0 for ln in order.lines):
                    self._release(order)

    def _release(self, order: SalesOrder) -> None:
        order.status = "OPEN"
        self.record(None, "sales_order.released", order.order_no, ref=order.ext_ref, order_no=order.order_no)
        self.new_event("SalesOrder.Released", {"SalesOrderNo": order.order_no, "ExtRef": order.ext_ref})

    # ------------------------------------------------------------------------------- sales orders

    def op_create_sales_order(self, req: Request) -> Response:
        body = parse(s.SalesOrderCreate, req.body)
        if isinstance(body, Response):
            return body
        cust = self.md.by_customer_no.get(body.SoldTo)
        if cust is None:
            return error(422, "unknown_customer", f"SoldTo: no customer {body.SoldTo!r}", "SoldTo")
        plant = body.Plant or self.plant
        if plant != self.plant:
            why = "is not stocked" if plant in self.plants else "does not exist"
            return error(422, "unknown_plant", f"Plant: plant {plant!r} {why}; use {self.plant!r}", "Plant")
        lines: list[SoLine] = []
        for i, ln in enumerate(body.Lines):
            sku = self.md.by_sku.get(ln.ItemNo)
            if sku is None:
                return error(422, "unknown_item", f"Lines.{i}.ItemNo: no item {ln.ItemNo!r}", f"Lines.{i}.ItemNo")
            per = sku.case_pack if ln.UoM == "CS" else 1
            expected = self.md.price(cust.customer_no, sku.sku) * per
            if abs(ln.UnitPrice - expected) > PRICE_TOLERANCE * expected:
                return error(
                    422,
                    "price_mismatch",
                    f"Lines.{i}.UnitPrice: {ln.UnitPrice} per {ln.UoM} differs from the price {expected:.4f} "
                    f"by more than {PRICE_TOLERANCE:.0%}",
                    f"Lines.{i}.UnitPrice",
                )
            lines.append(SoLine(i + 1, sku.sku, ln.Qty * per, round(ln.UnitPrice / per, 6), ln.UoM, ln.Qty))
        value = round(sum(ln.qty_each * ln.unit_price_each for ln in lines), 2)
        exposure = self.exposure.get(cust.customer_no, 0.0)
        on_hold = self.holds.get(cust.customer_no, False) or exposure + value > self.credit_limits[cust.customer_no]

        order = SalesOrder(
            _ORDER_NOS.key(next(self._so_seq)),
            body.ExtRef,
            cust.customer_no,
            plant,
            body.RequestedDate,
            body.PoNumber,
            lines,
            "CREDIT_HOLD",
            self.env.now,
            value,
            cust.currency,
        )
        if not on_hold:
            self.exposure[cust.customer_no] = exposure + value
            for ln in lines:
                self._reserve(order, ln)
        status = "CREDIT_HOLD" if on_hold else ("BACKORDERED" if any(ln.backordered for ln in lines) else "OPEN")
        order.status = status
        self.orders[order.order_no] = order
        self._by_ext_ref.add(order.ext_ref, order.order_no)

        self.record(
            req,
            "sales_order.created",
            order.order_no,
            ref=order.ext_ref,
            order_no=order.order_no,
            customer_no=order.customer_no,
            lines=[[ln.sku, ln.qty_each, ln.unit_price_each] for ln in lines],
            status=status,
            value=value,
        )
        if status == "CREDIT_HOLD":
            reason = "customer on credit hold" if self.holds.get(cust.customer_no) else "credit limit exceeded"
            self.record(
                req,
                "sales_order.credit_hold",
                order.order_no,
                ref=order.ext_ref,
                order_no=order.order_no,
                reason=reason,
                exposure=round(exposure, 2),
                credit_limit=round(self.credit_limits[cust.customer_no], 2),
            )
        elif status == "BACKORDERED":
            self.record(
                req,
                "sales_order.backordered",
                order.order_no,
                ref=order.ext_ref,
                order_no=order.order_no,
                lines=[[ln.sku, ln.backordered] for ln in lines if ln.backordered],
            )
        return Response(201, self._order_public(order), {"location": f"{_SO}/{order.order_no}"})

    def _reserve(self, order: SalesOrder, ln: SoLine) -> None:
        take = min(self.available(ln.sku), ln.qty_each)
        ln.reserved = take
        ln.backordered = ln.qty_each - take
        if take:
            self.reserved[ln.sku] = self.reserved.get(ln.sku, 0) + take
        if ln.backordered:
            self.backorder_qty[ln.sku] = self.backorder_qty.get(ln.sku, 0) + ln.backordered
            self._backorders.setdefault(ln.sku, deque()).append((order.order_no, ln.line_no - 1))  # line_no: 1, 2, ...
        self._changed.add(ln.sku)

    def _order_public(self, o: SalesOrder) -> dict[str, Any]:
        out: dict[str, Any] = {
            "SalesOrderNo": o.order_no,
            "ExtRef": o.ext_ref,
            "SoldTo": o.customer_no,
            "Plant": o.plant,
            "RequestedDate": o.requested_date,
            "PoNumber": o.po_number,
            "Status": o.status,
            "NetValue": o.value,
            "Currency": o.currency,
            "Lines": [
                {
                    "LineNo": ln.line_no,
                    "ItemNo": ln.sku,
                    "QtyOrdered": ln.qty_each,
                    "QtyReserved": ln.reserved,
                    "QtyBackordered": ln.backordered,
                    "UoM": ln.uom,
                    "Qty": ln.qty,
                    "UnitPrice": ln.unit_price_each,
                }
                for ln in o.lines
            ],
        }
        if o.gi_doc:
            out["GoodsIssueNo"] = o.gi_doc
        if o.invoice_no:
            out["InvoiceNo"] = o.invoice_no
        return out

    def _order(self, req: Request) -> SalesOrder | Response:
        no = req.params.get("SalesOrderNo", "")
        o = self.orders.get(no)
        if o is None:
            return error(404, "not_found", f"no sales order {no!r}", "SalesOrderNo")
        return o

    def op_get_sales_order(self, req: Request) -> Response:
        o = self._order(req)
        return o if isinstance(o, Response) else Response(200, self._order_public(o))

    def op_find_sales_orders(self, req: Request) -> Response:
        ref = req.params.get("ExtRef", "")
        if not ref:
            return error(422, "validation_error", "ExtRef: required", "ExtRef")
        found = [self._order_public(self.orders[n]) for n in self._by_ext_ref.get(ref)]
        return Response(200, {"SalesOrders": found})

    def _wrong_state(self, o: SalesOrder, action: str, allowed: tuple[str, ...]) -> Response:
        return error(
            409,
            "invalid_state",
            f"cannot {action} sales order {o.order_no} in status {o.status}; needs {' or '.join(allowed)}",
            "Status",
        )

    def op_cancel_sales_order(self, req: Request) -> Response:
        o = self._order(req)
        if isinstance(o, Response):
            return o
        allowed = ("OPEN", "BACKORDERED", "CREDIT_HOLD")
        if o.status not in allowed:
            return self._wrong_state(o, "cancel", allowed)
        previous = o.status
        if previous != "CREDIT_HOLD":
            self.exposure[o.customer_no] = self.exposure.get(o.customer_no, 0.0) - o.value
        freed: list[str] = []
        for ln in o.lines:
            if ln.reserved:
                self.reserved[ln.sku] -= ln.reserved
                freed.append(ln.sku)
                ln.reserved = 0
            if ln.backordered:
                # The queue entry is skipped lazily by _allocate.
                self.backorder_qty[ln.sku] -= ln.backordered
                ln.backordered = 0
            self._changed.add(ln.sku)
        o.status = "CANCELLED"
        self.record(req, "sales_order.cancelled", o.order_no, ref=o.ext_ref, order_no=o.order_no, previous=previous)
        for sku in freed:
            self._allocate(sku)
        return Response(200, self._order_public(o))

    def op_post_goods_issue(self, req: Request) -> Response:
        o = self._order(req)
        if isinstance(o, Response):
            return o
        if o.status != "OPEN":
            return self._wrong_state(o, "post a goods issue for", ("OPEN",))
        for ln in o.lines:
            self.on_hand[ln.sku] -= ln.reserved
            self.reserved[ln.sku] -= ln.reserved
        o.gi_doc = f"GI-{next(self._gi_seq):07d}"
        o.status = "GOODS_ISSUED"
        self.record(
            req,
            "goods_issue.posted",
            o.order_no,
            ref=o.ext_ref,
            order_no=o.order_no,
            doc_no=o.gi_doc,
            lines=[[ln.sku, ln.reserved] for ln in o.lines],
        )
        return Response(201, {"DocNo": o.gi_doc, "SalesOrderNo": o.order_no})

    def op_post_invoice(self, req: Request) -> Response:
        o = self._order(req)
        if isinstance(o, Response):
            return o
        if o.status != "GOODS_ISSUED":
            return self._wrong_state(o, "invoice", ("GOODS_ISSUED",))
        o.invoice_no = f"INV-{next(self._inv_seq):07d}"
        self.exposure[o.customer_no] = self.exposure.get(o.customer_no, 0.0) - o.value
        o.status = "INVOICED"
        self.record(
            req,
            "invoice.posted",
            o.order_no,
            ref=o.ext_ref,
            order_no=o.order_no,
            invoice_no=o.invoice_no,
            amount=o.value,
            currency=o.currency,
        )
        return Response(
            201, {"InvoiceNo": o.invoice_no, "Amount": o.value, "Currency": o.currency, "SalesOrderNo": o.order_no}
        )
