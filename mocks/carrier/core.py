"""Carrier domain core: rate quotes, labels (shipments) and tracking, fed by the carrier network.

Shipments are handed to ``sim.world.carrier.CarrierNetwork``, whose pickups and transit report
scan events back here: each becomes a ledger entry and a ``tracking.update`` webhook. No dedup by
``shipperReference``: two labels for one order are two parcels, and the ledger shows both.

Event times are rendered in the carrier's own offset (``CARRIER_UTC_OFFSET_H``, -05:00), not UTC,
as parcel carriers report local scan times: an integration must compare instants, not strings.
Rate limits are not modelled here: the gateway applies ``ApiProfile.rate_limit`` generically;
scenarios should give the carrier ``rate_limit: {requests: 1400, per: 10s}``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import MutableMapping
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from mocks.carrier.schemas import RateRequest, ShipmentCreate
from mocks.core.base import DomainCore, Request, Response, Route, error
from mocks.core.paging import intern, pack, unpack
from mocks.core.validation import parse
from sim.calendar import Calendar
from sim.world.carrier import CarrierNetwork, Parcel
from sim.world.warehouse import DayClock

if TYPE_CHECKING:
    from mocks.coldmap import ColdStore

CARRIER_UTC_OFFSET_H = -5.0
SHIPPER_ACCOUNT = "TW4X7A"  # 6 chars of the tracking number, as in a UPS shipper number
SERVICE_CODES = {"NEXT_DAY": "01", "2DAY": "02", "GROUND": "03"}
# (base charge, per-lb charge) per service; the zone stretches the per-lb part.
_TARIFF = {"GROUND": (8.50, 0.95), "2DAY": (14.00, 1.60), "NEXT_DAY": (24.00, 2.75)}
_EVENTS = {
    "PU": ("PICKED_UP", "Picked up by carrier at shipper dock", "shipment.picked_up"),
    "IT": ("IN_TRANSIT", "Departed carrier facility", "shipment.in_transit"),
    "EX": ("EXCEPTION", "Delivery attempted, receiver unavailable; will retry next business day", "shipment.exception"),
    "DL": ("DELIVERED", "Delivered", "shipment.delivered"),
}


def postal_prefix(postal_code: str) -> int:
    """0..999 locating a postal code: the US 3-digit prefix, else a stable hash (never random)."""
    digits = postal_code.strip()[:3]
    if len(digits) == 3 and digits.isdigit():
        return int(digits)
    return int.from_bytes(hashlib.sha256(postal_code.strip().upper().encode()).digest()[:4], "big") % 1000


def zone(from_postal: str, to_postal: str) -> int:
    """Distance band 2..8, like US parcel zones: from how far apart the 3-digit prefixes are."""
    return 2 + min(6, abs(postal_prefix(from_postal) - postal_prefix(to_postal)) // 100)


def quote(service: str, weight_lb: float, z: int) -> float:
    base, per_lb = _TARIFF[service]
    return round(base + per_lb * weight_lb * (1 + 0.15 * (z - 2)), 2)


def transit_days(service: str, z: int) -> int:
    return {"NEXT_DAY": 1, "2DAY": 2}.get(service, min(5, max(1, z - 1)))


def check_digit(body: str) -> str:
    """Mod-10 check digit over the characters (letters by their ordinal), so a typo is detectable."""
    return str(sum((ord(ch) if not ch.isdigit() else int(ch)) * (2 if i % 2 else 1) for i, ch in enumerate(body)) % 10)


_CODES = tuple(SERVICE_CODES.values())
_CODE_INDEX = {code: i for i, code in enumerate(_CODES)}
_HEAD = "1Z" + SHIPPER_ACCOUNT
_WRAP = 10**7  # a tracking number carries the shipment number's last 7 digits
_DIGITS = "0123456789"


def _tracking(code: str, digits: str) -> str:
    stem = SHIPPER_ACCOUNT + code + digits
    return "1Z" + stem + check_digit(stem)


class TrackingNumbers:
    """The carrier's tracking numbers as a ``mocks.coldmap.KeyCodec``: shipment ``n``'s number is
    its service code, ``n``'s last 7 digits and a check digit, so the codec keeps each shipment's
    service and check digit (a byte) and numbers a tracking number by its digits while they are
    below ``_WRAP``."""

    __slots__ = ("_minted",)

    def __init__(self) -> None:
        self._minted = bytearray()  # at n - 1: 10 * index of shipment n's service code + check digit

    def mint(self, n: int, service: str) -> str:
        """The tracking number of shipment ``n`` (numbered 1, 2, ...) of ``service``."""
        code = SERVICE_CODES[service]
        tn = _tracking(code, f"{n:07d}"[-7:])
        if n == len(self._minted) + 1 and n < _WRAP:
            self._minted.append(10 * _CODE_INDEX[code] + int(tn[-1]))
        return tn

    def key(self, number: int) -> str:
        return _tracking(_CODES[self._minted[number - 1] // 10], f"{number:07d}")

    def number(self, key: Any) -> int | None:
        if type(key) is not str or len(key) != 18 or not key.startswith(_HEAD):
            return None
        digits = key[10:17]
        if not (digits.isascii() and digits.isdigit()):
            return None
        n = int(digits)
        if not 0 < n <= len(self._minted):
            return None
        # The head, the digits (so n) and then the service code and check digit n was minted with.
        code, check = divmod(self._minted[n - 1], 10)
        return n if key[8:10] == _CODES[code] and key[17] == _DIGITS[check] else None


@dataclass(slots=True)
class Shipment:
    tracking_number: str
    shipper_reference: str
    service: str
    weight_lb: float  # of all packages, rounded to 0.01
    packages: int
    created: float
    pickup_date: str | None
    status: str = "LABEL_CREATED"
    events: list[Any] = field(default_factory=list)  # code, simulated time of each scan, flat


_SHIPMENT_FIELDS = attrgetter(*(f.name for f in fields(Shipment)))
_SHIPMENT_NAMES = [f.name for f in fields(Shipment)]
# What the ledger, webhooks and the integration keep after a read (``mocks.core.paging.intern``).
_SHIPMENT_INTERN = tuple(_SHIPMENT_NAMES.index(n) for n in ("tracking_number", "shipper_reference", "status"))


_EVENTS_AT = _SHIPMENT_NAMES.index("events")


def _dump_shipment(sh: Shipment) -> bytes:
    values = list(_SHIPMENT_FIELDS(sh))
    values[_EVENTS_AT] = None  # the scans are the second part
    intern(values, _SHIPMENT_INTERN)
    return pack(values, sh.events)


def _load_shipment(blob: bytes) -> Shipment:
    values, events = unpack(blob)
    values[_EVENTS_AT] = events
    return Shipment(*values)


class CarrierCore(DomainCore):
    system = "carrier"
    routes = {
        "get_rates": Route("POST", "/v1/rates"),
        "create_shipment": Route("POST", "/v1/shipments", mutating=True),
        "get_tracking": Route("GET", "/v1/tracking/{trackingNumber}"),
    }

    def setup(self) -> None:
        self.calendar = Calendar.from_scenario(self.scenario)
        self.clock = DayClock.of(self.scenario.start)
        self.network = CarrierNetwork(
            self.env, self.scenario.carrier, self.streams, clock=self.clock, observer=self._on_scan
        )
        self.shipments: MutableMapping[str, Shipment] = {}
        self._seq = itertools.count(1)
        self._numbers = TrackingNumbers()
        self._origin = self.md.warehouses[0].address.postal_code if self.md.warehouses else "00000"
        self._times: dict[float, str] = {}

    def use_cold(self, store: ColdStore) -> None:
        """Virtual runs: shipments not touched for a spill interval -- days in transit between
        scans -- page out to ``store``. The network names a parcel's shipment by its tracking
        number (``Parcel.id``) and holds no reference to it."""
        cold = store.map("carrier_shipments", _dump_shipment, _load_shipment, codec=self._numbers)
        cold.update(self.shipments)
        self.shipments = cold

    # -- operations ----------------------------------------------------------------------------
    def op_get_rates(self, req: Request) -> Response:
        body = parse(RateRequest, req.body)
        if isinstance(body, Response):
            return body
        z = zone(body.shipFrom.postalCode, body.shipTo.postalCode)
        # Billed per started pound of each package, as parcel carriers do.
        lb = sum(math.ceil(p.weightLb) for p in body.packages)
        rates = [
            {"service": s, "amount": quote(s, lb, z), "currency": "USD", "transitDays": transit_days(s, z)}
            for s in _TARIFF
        ]
        return Response(200, {"rates": rates})

    def op_create_shipment(self, req: Request) -> Response:
        body = parse(ShipmentCreate, req.body)
        if isinstance(body, Response):
            return body
        tn = self._numbers.mint(next(self._seq), body.service)
        pickup = self.network.next_pickup(self.env.now)
        sh = Shipment(
            tracking_number=tn,
            shipper_reference=body.shipperReference,
            service=body.service,
            weight_lb=round(sum(p.weightLb for p in body.packages), 2),
            packages=len(body.packages),
            created=self.env.now,
            pickup_date=None if pickup is None else self.calendar.iso_date(pickup),
        )
        self.shipments[tn] = sh
        self.record(
            req,
            "shipment.created",
            tn,
            ref=sh.shipper_reference,
            tracking_number=tn,
            weight_lb=sh.weight_lb,
            service=sh.service,
            packages=sh.packages,
        )
        self.network.register(tn)  # by tracking number: see ``_on_scan``
        label = f"^XA^FO50,50^A0N,40,40^FD{tn}^FS^FO50,120^BCN,100,Y,N,N^FD{tn}^FS^XZ"
        return Response(201, {"trackingNumber": tn, "labelFormat": "ZPL", "label": label, "pickupDate": sh.pickup_date})

    def op_get_tracking(self, req: Request) -> Response:
        tn = req.params.get("trackingNumber", "")
        sh = self.shipments.get(tn)
        if sh is None:
            return error(404, "not_found", f"tracking number {tn!r} not found", "trackingNumber")
        return Response(200, self.public(sh))

    # -- views ---------------------------------------------------------------------------------
    def event_time(self, t: float) -> str:
        # Tracking is polled again and again (the integration's audit sweep): render each scan once.
        s = self._times.get(t)
        if s is None:
            if len(self._times) >= 1 << 16:
                self._times.clear()  # bounded; polls hit recent scans
            s = self._times[t] = self.calendar.rfc3339(t, CARRIER_UTC_OFFSET_H)
        return s

    def public(self, sh: Shipment) -> dict[str, Any]:
        return {
            "trackingNumber": sh.tracking_number,
            "shipperReference": sh.shipper_reference,
            "service": sh.service,
            "status": sh.status,
            "weightLb": sh.weight_lb,
            "pickupDate": sh.pickup_date,
            "events": [
                {"eventCode": code, "description": _EVENTS[code][1], "eventTime": self.event_time(t)}
                for code, t in zip(sh.events[::2], sh.events[1::2], strict=True)
            ],
        }

    # -- world callback ------------------------------------------------------------------------
    def _on_scan(self, parcel: Parcel, code: str) -> None:
        # Looked up, not carried on the parcel: a shipment in transit for days holds no reference
        # from the network and can page out between scans (``use_cold``).
        sh = self.shipments[parcel.id]
        now = self.env.now
        status, _, kind = _EVENTS[code]
        sh.status = status
        sh.events += (code, now)
        extra: dict[str, Any] = {}
        if code == "DL":
            extra["transit_s"] = now - (parcel.picked_up or now)
        self.record(
            None, kind, sh.tracking_number, ref=sh.shipper_reference, tracking_number=sh.tracking_number, **extra
        )
        self.new_event(
            "tracking.update",
            {
                "trackingNumber": sh.tracking_number,
                "shipperReference": sh.shipper_reference,
                "eventCode": code,
                "eventTime": self.event_time(now),
            },
        )
