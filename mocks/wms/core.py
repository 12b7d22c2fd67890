"""WMS domain core: fulfilment orders released by the integration, worked by the warehouse floor.

A created fulfilment joins the queue of ``sim.world.warehouse.Warehouse``; the floor reports the
milestones back here, which records them in the ledger and emits the dialect's webhooks. The core
does not deduplicate by ``client_reference``: a real WMS would happily pick the same order twice,
and reconciliation must see such duplicates in the ledger.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import MutableMapping
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from mocks.core.base import DomainCore, Request, Response, Route, error
from mocks.core.paging import NumberedIds, RefIndex, Shared, crm_order_ids, intern, pack, unpack
from mocks.core.validation import parse
from mocks.wms.schemas import FulfillmentCreate, ShipConfirm, ShipToCreate
from sim.calendar import Calendar
from sim.world.warehouse import DayClock, Job, Warehouse

if TYPE_CHECKING:
    from mocks.coldmap import ColdStore

_FO = "/v1/fulfillment-orders"
_FO_IDS = NumberedIds("FO-", 6)  # how ``op_create_fulfillment`` numbers fulfilments
MAX_CARTON_KG = 30.0  # well under the parcel carrier's 150 lb per package
MIN_CARTON_KG = 0.1  # a carton never weighs less than its packaging
# ``ShipToCreate``'s fields in order: a stored address is their values (``None`` where absent).
_SHIP_TO_KEYS = tuple(ShipToCreate.model_fields)


def cartons(weight_kg: float) -> list[dict[str, float]]:
    """Pack an order's weight into the fewest equal cartons of at most ``MAX_CARTON_KG``, so every
    package stays within what a parcel carrier accepts."""
    n = max(1, math.ceil(weight_kg / MAX_CARTON_KG - 1e-9))
    each = max(MIN_CARTON_KG, round(weight_kg / n, 3))
    return [{"weight_kg": each} for _ in range(n)]


@dataclass(slots=True)
class Fulfilment:
    fulfillment_id: str
    client_reference: str
    erp_order: str
    warehouse: str
    ship_to: tuple[str | None, ...]  # ``_SHIP_TO_KEYS``' values, shared (``WmsCore._share``)
    lines: list[tuple[str, int]]  # (sku, eaches)
    weight_kg: float
    requested_ship_date_ms: int | None
    created: float
    status: str = "released"
    # Simulated time of each milestone: slots, not a dict per fulfilment.
    picked: float | None = None
    packed: float | None = None
    ready_to_ship: float | None = None
    shipped: float | None = None
    ship_day: int | None = None
    carrier: str | None = None
    tracking_number: str | None = None


_FO_FIELDS = attrgetter(*(f.name for f in fields(Fulfilment)))
_FO_NAMES = [f.name for f in fields(Fulfilment)]
_SHIP_TO_AT, _LINES_AT = _FO_NAMES.index("ship_to"), _FO_NAMES.index("lines")
# What the ledger, webhooks and the integration keep after a read (``mocks.core.paging.intern``).
_FO_INTERN = tuple(_FO_NAMES.index(n) for n in ("client_reference", "status"))


class WmsCore(DomainCore):
    system = "wms"
    routes = {
        "create_fulfillment": Route("POST", _FO, mutating=True),
        "get_fulfillment": Route("GET", _FO + "/{fulfillment_id}"),
        "find_fulfillments": Route("GET", _FO),
        "ship_confirm": Route("POST", _FO + "/{fulfillment_id}/ship-confirm", mutating=True),
    }

    def setup(self) -> None:
        self.calendar = Calendar.from_scenario(self.scenario)
        self.clock = DayClock.of(self.scenario.start)
        self.warehouse = Warehouse(
            self.env,
            self.scenario.warehouse,
            self.streams,
            pickup_days=self.scenario.carrier.pickup_days,
            clock=self.clock,
            observer=self._on_milestone,
        )
        self.fulfilments: MutableMapping[str, Fulfilment] = {}
        # client_reference is the CRM order id: CRM and fulfilment numbers, not strings, per order.
        self._by_ref = RefIndex(crm_order_ids(self.md), _FO_IDS)
        self._ids = itertools.count(1)
        self._warehouses = {w.code for w in self.md.warehouses} or {"WH01"}
        # One stored copy of each distinct ship-to address: fulfilments go to the few addresses
        # of each customer, and a dict per fulfilment was most of what its address cost.
        self._shared: Shared[tuple[str | None, ...]] = Shared()
        self._share = self._shared.share

    def use_cold(self, store: ColdStore) -> None:
        """Virtual runs: fulfilments not touched for a spill interval page out to ``store``. The
        warehouse floor names a fulfilment by id (``Job.id``) and holds no reference to it; its
        ship-to is written as the number of the core's one copy, so it comes back shared."""
        number, shared = self._shared.number, self._shared.objects

        def dump(fo: Fulfilment) -> bytes:
            values = list(_FO_FIELDS(fo))
            values[_SHIP_TO_AT] = number(fo.ship_to)
            values[_LINES_AT] = None  # the lines are the second part: sku, eaches, sku, ...
            intern(values, _FO_INTERN)
            return pack(values, list(itertools.chain.from_iterable(fo.lines)))

        def load(blob: bytes) -> Fulfilment:
            values, flat = unpack(blob)
            values[_SHIP_TO_AT] = shared[values[_SHIP_TO_AT]]
            values[_LINES_AT] = list(zip(flat[::2], flat[1::2], strict=True))
            return Fulfilment(*values)

        cold = store.map("wms_fulfilments", dump, load, codec=_FO_IDS)
        cold.update(self.fulfilments)
        self.fulfilments = cold

    # -- operations ----------------------------------------------------------------------------
    def op_create_fulfillment(self, req: Request) -> Response:
        body = parse(FulfillmentCreate, req.body)
        if isinstance(body, Response):
            return body
        if body.warehouse not in self._warehouses:
            known = ", ".join(sorted(self._warehouses))
            return error(422, "unknown_warehouse", f"warehouse: {body.warehouse!r} is not one of {known}", "warehouse")
        lines: list[tuple[str, int]] = []
        weight = 0.0
        for i, line in enumerate(body.lines):
            if line.uom != "EA":
                return error(
                    422,
                    "unsupported_uom",
                    f"lines.{i}.uom: the WMS counts eaches only, got {line.uom!r}; convert to EA",
                    f"lines.{i}.uom",
                )
            sku = self.md.by_sku.get(line.sku)
            if sku is None:
                return error(422, "unknown_sku", f"lines.{i}.sku: unknown SKU {line.sku!r}", f"lines.{i}.sku")
            lines.append((sku.sku, line.quantity))  # equal to line.sku, one string for every order
            weight += sku.weight_kg * line.quantity
        fid = _FO_IDS.key(next(self._ids))
        fo = Fulfilment(
            fulfillment_id=fid,
            client_reference=body.client_reference,
            erp_order=body.erp_order,
            warehouse=body.warehouse,
            ship_to=self._share(tuple(map(body.ship_to.__getattribute__, _SHIP_TO_KEYS))),
            lines=lines,
            weight_kg=round(weight, 3),
            requested_ship_date_ms=body.requested_ship_date_ms,
            created=self.env.now,
        )
        self.fulfilments[fid] = fo
        self._by_ref.add(fo.client_reference, fid)
        self.record(
            req,
            "fulfilment.created",
            fid,
            ref=fo.client_reference,
            fulfillment_id=fid,
            erp_order=fo.erp_order,
            lines=[[s, q] for s, q in lines],
        )
        self.warehouse.submit(fid)  # by id: see ``_on_milestone``
        return Response(201, {"fulfillment_id": fid, "status": fo.status, "client_reference": fo.client_reference})

    def op_get_fulfillment(self, req: Request) -> Response:
        fo = self._find(req)
        return fo if isinstance(fo, Response) else Response(200, self.public(fo))

    def op_find_fulfillments(self, req: Request) -> Response:
        ref = (req.params.get("client_reference") or "").strip()
        if not ref:
            return error(422, "validation_error", "client_reference: required but missing", "client_reference")
        items = [self.public(self.fulfilments[f]) for f in self._by_ref.get(ref)]
        return Response(200, {"items": items, "total": len(items)})

    def op_ship_confirm(self, req: Request) -> Response:
        fo = self._find(req)
        if isinstance(fo, Response):
            return fo
        body = parse(ShipConfirm, req.body)
        if isinstance(body, Response):
            return body
        if fo.status == "shipped":
            if fo.tracking_number == body.tracking_number and fo.carrier == body.carrier:
                return Response(200, self.public(fo))  # a repeated confirm changes nothing
            return error(
                409, "already_shipped", f"{fo.fulfillment_id} already shipped with tracking {fo.tracking_number}"
            )
        if fo.status != "ready_to_ship":
            return error(409, "not_ready", f"{fo.fulfillment_id} is {fo.status}, not ready_to_ship yet")
        fo.status = "shipped"
        fo.shipped = self.env.now
        fo.carrier, fo.tracking_number = body.carrier, body.tracking_number
        self.record(
            req,
            "fulfilment.shipped",
            fo.fulfillment_id,
            ref=fo.client_reference,
            fulfillment_id=fo.fulfillment_id,
            carrier=fo.carrier,
            tracking_number=fo.tracking_number,
        )
        return Response(200, self.public(fo))

    # -- views ---------------------------------------------------------------------------------
    def public(self, fo: Fulfilment) -> dict[str, Any]:
        ms = self.calendar.epoch_ms

        def at(t: float | None) -> int | None:
            return None if t is None else ms(t)

        return {
            "fulfillment_id": fo.fulfillment_id,
            "client_reference": fo.client_reference,
            "erp_order": fo.erp_order,
            "warehouse": fo.warehouse,
            "status": fo.status,
            # = the address's model_dump(exclude_none=True): plain str fields, in field order
            "ship_to": {k: v for k, v in zip(_SHIP_TO_KEYS, fo.ship_to, strict=True) if v is not None},
            "lines": [{"sku": s, "quantity": q, "uom": "EA"} for s, q in fo.lines],
            "packages": self._packages(fo),
            "requested_ship_date_ms": fo.requested_ship_date_ms,
            "created_at_ms": ms(fo.created),
            "picked_at_ms": at(fo.picked),
            "packed_at_ms": at(fo.packed),
            "ready_to_ship_at_ms": at(fo.ready_to_ship),
            "shipped_at_ms": at(fo.shipped),
            "planned_ship_date": self._ship_date(fo.ship_day),
            "carrier": fo.carrier,
            "tracking_number": fo.tracking_number,
        }

    # -- world callbacks -----------------------------------------------------------------------
    def _on_milestone(self, job: Job, milestone: str) -> None:
        # Looked up, not carried on the job: a fulfilment queued for days behind a surge holds no
        # reference from the floor and can page out meanwhile (``use_cold``).
        fo = self.fulfilments[job.id]
        now = self.env.now
        fo.status = milestone
        extra: dict[str, Any]
        if milestone == "picked":
            fo.picked = now
            extra = {"wait_s": job.wait_s, "pick_s": job.pick_s}
        elif milestone == "packed":
            fo.packed = now
            extra = {"pack_s": job.pack_s}
        else:
            fo.ready_to_ship = now
            fo.ship_day = job.ship_day
            extra = {"ship_day": job.ship_day, "ship_date": self._ship_date(job.ship_day)}
        self.record(
            None,
            f"fulfilment.{milestone}",
            fo.fulfillment_id,
            ref=fo.client_reference,
            fulfillment_id=fo.fulfillment_id,
            **extra,
        )
        self.new_event(
            f"fulfillment.{milestone}",
            {
                "fulfillment_id": fo.fulfillment_id,
                "client_reference": fo.client_reference,
                "erp_order": fo.erp_order,
                "status": milestone,
                "packages": self._packages(fo),
                "event_time_ms": self.calendar.epoch_ms(now),
            },
        )

    # -- helpers -------------------------------------------------------------------------------
    def _find(self, req: Request) -> Fulfilment | Response:
        fid = req.params.get("fulfillment_id", "")
        fo = self.fulfilments.get(fid)
        if fo is None:
            return error(404, "not_found", f"fulfillment order {fid!r} not found", "fulfillment_id")
        return fo

    @staticmethod
    def _packages(fo: Fulfilment) -> list[dict[str, float]]:
        return cartons(fo.weight_kg)

    def _ship_date(self, day: int | None) -> str | None:
        return (
            None if day is None else self.calendar.iso_date(self.clock.at(day, 12 * 3600.0))
        )  # noon: clear of float noise at midnight
