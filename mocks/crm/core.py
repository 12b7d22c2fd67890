"""Pure CRM core: accounts and contacts from master data, orders with a status history.

Orders enter through ``submit_order`` (HTTP, load tests) or ``submit(DemandOrder)`` (virtual
harness); both run the same code. Submission records ledger ``order.submitted`` (the demand
reconciliation starts from) and emits webhook ``order.submitted`` carrying the full order.

Status updates are recorded, never policed: the CRM accepts any allowed Status in any order, as
real CRMs do. Regressions (Delivered -> In Fulfilment) are the integration's bug to avoid;
the history and the ledger keep them so reconciliation can see them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import MutableMapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar

from mocks.core.base import DomainCore, Request, Response, Route, error
from mocks.core.paging import Shared, crm_order_ids, intern, pack, unpack
from mocks.core.validation import parse
from mocks.crm import schemas as s
from sim.calendar import Calendar
from sim.demand import DemandOrder
from sim.masterdata import Address, Customer, salesforce_id
from sim.rng import derive_seed

if TYPE_CHECKING:
    from mocks.coldmap import ColdMap, ColdStore

_API = "/services/data/v60.0/sobjects"
# The fields of an order update that ``order.updated`` tracks (Status and the reason have their own)
_UPDATE_FIELDS = tuple(f for f in s.OrderUpdate.model_fields if f not in ("Status", "StatusReason__c"))
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CONTACTS_PER_ACCOUNT = 2
_FIRST = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Jamie", "Riley", "Drew", "Avery", "Pat", "Chris")
_LAST = ("Nguyen", "Smith", "Garcia", "Johnson", "Brown", "Miller", "Davis", "Lopez", "Wilson", "Clark", "Lewis")
_TITLES = ("Purchasing Manager", "Buyer", "Accounts Payable", "Operations Manager", "Owner")


def _b62_decode(text: str) -> int | None:
    n = 0
    for ch in text:
        i = _B62.find(ch)
        if i < 0:
            return None
        n = n * 62 + i
    return n


def _sf_address(a: Address) -> dict[str, str]:
    return {"street": a.line1, "city": a.city, "state": a.region, "postalCode": a.postal_code, "country": a.country}


# ``AddressIn``'s fields in order: a stored address is their values (``None`` where absent).
_ADDRESS_KEYS = tuple(s.AddressIn.model_fields)


def _address(values: tuple[str | None, ...]) -> dict[str, str]:
    """A stored address as ``AddressIn.model_dump(exclude_none=True)`` gave it (plain str fields)."""
    return {k: v for k, v in zip(_ADDRESS_KEYS, values, strict=True) if v is not None}


def _item(code: str, qty: int, uom: str, price: float | None) -> dict[str, Any]:
    """An order item as ``OrderItemCreate.model_dump(exclude_none=True)`` gave it."""
    if price is None:
        return {"ProductCode": code, "Quantity": qty, "UnitOfMeasure__c": uom}
    return {"ProductCode": code, "Quantity": qty, "UnitOfMeasure__c": uom, "UnitPrice": price}


@dataclass(slots=True)
class CrmOrder:
    id: str
    number: str
    customer: Customer
    effective_date: str
    requested_date: str | None
    po_number: str | None
    shipping: tuple[str | None, ...] | None  # ``_ADDRESS_KEYS``' values, shared (``_share``)
    ship_to_name: str | None
    items: list[Any]  # ProductCode, Quantity, UnitOfMeasure__c, UnitPrice of each item, flat
    created_t: float
    status: str = "Submitted"
    modified_t: float = 0.0
    fields: dict[str, str] = field(default_factory=dict)  # ExternalOrderNo__c, TrackingNumber__c, ...
    # NewValue, Reason, time of each status change, flat (3 items a change); OldValue is the change
    # before's NewValue. Records are rendered on read: a dict and a timestamp string per change
    # cost ~1 KB an order.
    history: list[Any] = field(default_factory=list)


_ORDER_FIELDS = attrgetter(*(f.name for f in fields(CrmOrder)))
_NAMES = [f.name for f in fields(CrmOrder)]
# Fields holding objects shared beyond the order: written as a key or a number (``use_cold``).
_CUSTOMER_AT, _SHIPPING_AT, _SHIP_TO_NAME_AT = (_NAMES.index(n) for n in ("customer", "shipping", "ship_to_name"))
_ITEMS_AT, _FIELDS_AT, _HISTORY_AT = (_NAMES.index(n) for n in ("items", "fields", "history"))
# What the ledger, webhooks and the integration keep after a read (``mocks.core.paging.intern``).
_ORDER_INTERN = tuple(_NAMES.index(n) for n in ("id", "status"))


class CrmCore(DomainCore):
    system: ClassVar[str] = "crm"
    routes: ClassVar[dict[str, Route]] = {
        "get_account": Route("GET", _API + "/Account/{Id}"),
        "list_contacts": Route("GET", _API + "/Account/{Id}/Contacts"),
        "get_contact": Route("GET", _API + "/Contact/{Id}"),
        "submit_order": Route("POST", _API + "/Order", mutating=True),
        "get_order": Route("GET", _API + "/Order/{Id}"),
        "get_order_history": Route("GET", _API + "/Order/{Id}/history"),
        "update_order": Route("PATCH", _API + "/Order/{Id}", mutating=True),
    }

    def setup(self) -> None:
        self.calendar = Calendar.from_scenario(self.scenario)
        self._seed = self.streams.seed
        first = self.md.customers[0].crm_account_id if self.md.customers else "0015g0"
        self._instance = first[3:5]  # the org's instance code, shared by every id it issues
        self._account_index = {c.crm_account_id: i for i, c in enumerate(self.md.customers)}
        self._cold: ColdMap[str, CrmOrder] | None = None  # ``use_cold``
        self.reset()

    def reset(self) -> None:
        """Fresh business state (``/_twin/reset``): no orders; accounts come from master data."""
        self.orders: MutableMapping[str, CrmOrder] = {}
        if self._cold is not None:
            self._cold.clear()
            self.orders = self._cold
        self._seq = itertools.count(1)
        # One stored copy of each distinct ship-to (address pairs, name): orders ship to the few
        # addresses of their account, and a dict and strings per order were most of their cost.
        self._shared: Shared[Any] = Shared()
        self._share = self._shared.share

    def use_cold(self, store: ColdStore) -> None:
        """Virtual runs: orders not touched for a spill interval page out to ``store``, their
        date strings, items, fields and status history with them. An order's customer is the
        master data's model (written as its account id) and its ship-to the core's one copy
        (written as a number): both come back as the same objects."""
        by_account = self.md.by_account_id
        # Through ``self`` at each call: ``reset`` starts a new table.

        def number(value: Any) -> int:
            return self._shared.number(value)

        def dump(o: CrmOrder) -> bytes:
            values = list(_ORDER_FIELDS(o))
            values[_CUSTOMER_AT] = o.customer.crm_account_id
            values[_SHIPPING_AT] = -1 if o.shipping is None else number(o.shipping)  # None is not shared
            values[_SHIP_TO_NAME_AT] = number(o.ship_to_name)
            values[_ITEMS_AT] = values[_FIELDS_AT] = values[_HISTORY_AT] = None  # parts of their own
            intern(values, _ORDER_INTERN)
            return pack(values, o.items, list(itertools.chain.from_iterable(o.fields.items())), o.history)

        def load(blob: bytes) -> CrmOrder:
            values, items, flat_fields, history = unpack(blob)
            values[_ITEMS_AT], values[_HISTORY_AT] = items, history
            values[_FIELDS_AT] = dict(zip(flat_fields[::2], flat_fields[1::2], strict=True))
            values[_CUSTOMER_AT] = by_account[values[_CUSTOMER_AT]]
            objects = self._shared.objects
            values[_SHIPPING_AT] = None if values[_SHIPPING_AT] < 0 else objects[values[_SHIPPING_AT]]
            values[_SHIP_TO_NAME_AT] = objects[values[_SHIP_TO_NAME_AT]]
            return CrmOrder(*values)

        # Keyed by the order's number while ids come in sequence: no id string per order.
        self._cold = store.map("crm_orders", dump, load, codec=crm_order_ids(self.md))
        self._cold.update(self.orders)
        self.orders = self._cold

    # ------------------------------------------------------------------------------- accounts

    def _account(self, req: Request) -> Customer | Response:
        aid = req.params.get("Id", "")
        c = self.md.by_account_id.get(aid)
        if c is None:
            return error(404, "NOT_FOUND", f"no Account with Id {aid!r}", "Id")
        return c

    def op_get_account(self, req: Request) -> Response:
        c = self._account(req)
        if isinstance(c, Response):
            return c
        return Response(
            200,
            {
                "Id": c.crm_account_id,
                "Name": c.name,
                "ErpCustomerNo__c": c.customer_no,
                "Territory__c": c.territory,
                "Tier__c": c.tier,
                "ShippingAddress": _sf_address(c.ship_to[0] if c.ship_to else c.sold_to),
                "BillingAddress": _sf_address(c.bill_to),
            },
        )

    # ------------------------------------------------------------------------------- contacts

    def _contact(self, idx: int, k: int) -> dict[str, Any]:
        """Contact ``k`` of account ``idx``, generated on demand (same seed, same contact)."""
        c = self.md.customers[idx]
        rng = random.Random(derive_seed(self._seed, f"masterdata.contacts:{idx}:{k}"))
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        domain = "".join(ch for ch in c.name.lower() if ch.isalnum())[:20] or "example"
        return {
            "Id": salesforce_id("003", idx * CONTACTS_PER_ACCOUNT + k, self._instance),
            "AccountId": c.crm_account_id,
            "FirstName": first,
            "LastName": last,
            "Title": _TITLES[k % len(_TITLES)],
            "Email": f"{first.lower()}.{last.lower()}@{domain}.example.com",
            "Phone": f"+1-{rng.randint(200, 989)}-555-{rng.randint(0, 9999):04d}",
        }

    def op_list_contacts(self, req: Request) -> Response:
        c = self._account(req)
        if isinstance(c, Response):
            return c
        idx = self._account_index[c.crm_account_id]
        recs = [self._contact(idx, k) for k in range(CONTACTS_PER_ACCOUNT)]
        return Response(200, {"totalSize": len(recs), "done": True, "records": recs})

    def op_get_contact(self, req: Request) -> Response:
        cid = req.params.get("Id", "")
        n = _b62_decode(cid[6:15]) if len(cid) == 18 and cid.startswith("003") else None
        if n is not None:
            idx, k = divmod(n, CONTACTS_PER_ACCOUNT)
            if idx < len(self.md.customers):
                contact = self._contact(idx, k)
                if contact["Id"] == cid:
                    return Response(200, contact)
        return error(404, "NOT_FOUND", f"no Contact with Id {cid!r}", "Id")

    # ------------------------------------------------------------------------------- orders

    def submit(self, order: DemandOrder) -> str:
        """Virtual harness entry: submit a demand order as a sales rep would; returns the Order Id."""
        cust = self.md.by_account_id.get(order.crm_account_id)
        ship: dict[str, Any] = {}
        if cust is not None and cust.ship_to:
            addr = cust.ship_to[min(max(order.ship_to_index, 0), len(cust.ship_to) - 1)]
            ship = {"ShippingAddress": _sf_address(addr), "ShipToName__c": addr.name}
        body: dict[str, Any] = {
            **ship,
            "AccountId": order.crm_account_id,
            "EffectiveDate": self.calendar.iso_date(order.t),
            "RequestedDeliveryDate__c": self.calendar.iso_date(order.requested_t),
            "PoNumber": order.key,
            "OrderItems": [
                {"ProductCode": ln.sku, "Quantity": ln.quantity, "UnitOfMeasure__c": ln.uom, "UnitPrice": ln.unit_price}
                for ln in order.lines
            ],
        }
        resp = self._submit(Request("submit_order", body), requested_t=order.requested_t)
        if not resp.ok:
            raise ValueError(f"CRM rejected demand order {order.key}: {resp.body}")
        return resp.body["id"]

    def op_submit_order(self, req: Request) -> Response:
        return self._submit(req)

    def _submit(self, req: Request, requested_t: float | None = None) -> Response:
        body = parse(s.OrderCreate, req.body)
        if isinstance(body, Response):
            return body
        cust = self.md.by_account_id.get(body.AccountId)
        if cust is None:
            return error(422, "INVALID_CROSS_REFERENCE_KEY", f"AccountId: no Account {body.AccountId!r}", "AccountId")
        lines: list[list[Any]] = []
        items: list[Any] = []
        for i, it in enumerate(body.OrderItems):
            sku = self.md.by_sku.get(it.ProductCode)
            if sku is None:
                path = f"OrderItems.{i}.ProductCode"
                return error(422, "INVALID_CROSS_REFERENCE_KEY", f"{path}: no Product {it.ProductCode!r}", path)
            lines.append([sku.sku, it.Quantity * (sku.case_pack if it.UnitOfMeasure__c == "CS" else 1)])
            # ``sku.sku`` equals ProductCode (it was found by it) and is one string for every order.
            items += (sku.sku, it.Quantity, it.UnitOfMeasure__c, it.UnitPrice)
        if requested_t is None and body.RequestedDeliveryDate__c:
            requested_t = self.calendar.to_sim(datetime.fromisoformat(body.RequestedDeliveryDate__c))
        n = next(self._seq)
        o = CrmOrder(
            id=salesforce_id("801", n, self._instance),
            number=f"{n:08d}",
            customer=cust,
            effective_date=body.EffectiveDate,
            requested_date=body.RequestedDeliveryDate__c,
            po_number=body.PoNumber,
            shipping=None
            if (a := body.ShippingAddress) is None
            else self._share(tuple(map(a.__getattribute__, _ADDRESS_KEYS))),
            ship_to_name=self._share(body.ShipToName__c),
            items=items,
            created_t=self.env.now,
            modified_t=self.env.now,
        )
        o.history += ("Submitted", None, self.env.now)
        self.orders[o.id] = o
        self.record(
            req,
            "order.submitted",
            o.id,
            ref=o.id,
            order_number=o.number,
            po_number=o.po_number,
            account_id=cust.crm_account_id,
            customer_no=cust.customer_no,
            lines=lines,
            requested_t=requested_t,
        )
        self.new_event("order.submitted", self._order_public(o))
        return Response(201, {"id": o.id, "success": True, "errors": []}, {"location": f"{_API}/Order/{o.id}"})

    def _history(self, o: CrmOrder) -> list[dict[str, Any]]:
        records = []
        old = None
        h = o.history
        for new, reason, t in zip(h[::3], h[1::3], h[2::3], strict=True):
            records.append(
                {
                    "Field": "Status",
                    "OldValue": old,
                    "NewValue": new,
                    "Reason": reason,
                    "CreatedDate": self.calendar.iso_z(t),
                }
            )
            old = new
        return records

    def _order_public(self, o: CrmOrder) -> dict[str, Any]:
        return {
            "Id": o.id,
            "OrderNumber": o.number,
            "AccountId": o.customer.crm_account_id,
            "Account": {
                "Id": o.customer.crm_account_id,
                "Name": o.customer.name,
                "ErpCustomerNo__c": o.customer.customer_no,
            },
            "Status": o.status,
            "EffectiveDate": o.effective_date,
            "RequestedDeliveryDate__c": o.requested_date,
            "PoNumber": o.po_number,
            **({"ShippingAddress": _address(o.shipping)} if o.shipping else {}),
            **({"ShipToName__c": o.ship_to_name} if o.ship_to_name else {}),
            "OrderItems": list(map(_item, *(o.items[i::4] for i in range(4)))),
            "CreatedDate": self.calendar.iso_z(o.created_t),
            "LastModifiedDate": self.calendar.iso_z(o.modified_t),
            **o.fields,
        }

    def _order(self, req: Request) -> CrmOrder | Response:
        oid = req.params.get("Id", "")
        o = self.orders.get(oid)
        if o is None:
            return error(404, "NOT_FOUND", f"no Order with Id {oid!r}", "Id")
        return o

    def op_get_order(self, req: Request) -> Response:
        o = self._order(req)
        return o if isinstance(o, Response) else Response(200, self._order_public(o))

    def op_get_order_history(self, req: Request) -> Response:
        o = self._order(req)
        if isinstance(o, Response):
            return o
        return Response(200, {"OrderId": o.id, "totalSize": len(o.history) // 3, "records": self._history(o)})

    def op_update_order(self, req: Request) -> Response:
        o = self._order(req)
        if isinstance(o, Response):
            return o
        body = parse(s.OrderUpdate, req.body)
        if isinstance(body, Response):
            return body
        o.modified_t = self.env.now
        # = model_dump(exclude_none=True) of the other fields, read directly (plain str fields, no
        # serializers or extras: the same values without building the dump per update)
        changed = {k: v for k in _UPDATE_FIELDS if (v := getattr(body, k)) is not None and o.fields.get(k) != v}
        if body.StatusReason__c is not None:
            o.fields["StatusReason__c"] = body.StatusReason__c
        if changed:
            o.fields.update(changed)
            self.record(req, "order.updated", o.id, ref=o.id, fields=changed)
        if body.Status != o.status:
            previous, o.status = o.status, body.Status
            o.history += (body.Status, body.StatusReason__c, self.env.now)
            self.record(
                req,
                "order.status_changed",
                o.id,
                ref=o.id,
                status=body.Status,
                previous=previous,
                reason=body.StatusReason__c,
            )
        return Response(204)
