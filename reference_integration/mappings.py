"""Explicit, tested translations between each system's dialect and the canonical model.

Every function here is pure. A value that cannot be mapped with certainty (missing field, unknown
unit of measure, unknown status code, a field renamed by contract drift) raises ``MappingError``
naming the field: a categorised business exception for people to look at, never a silent guess.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from reference_integration.canonical import Address, Customer, Order, OrderLine, OrderStatus, Product

LB_PER_KG = 2.2046226218
PLANT = "WH01"


class MappingError(ValueError):
    """A message could not be translated. ``category`` is always ``"mapping"``."""

    category = "mapping"

    def __init__(self, field: str, value: Any = None, reason: str = "invalid") -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"mapping error on {field}: {reason} ({value!r})")

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "field": self.field, "value": _jsonable(self.value), "reason": self.reason}


def _jsonable(v: Any) -> Any:
    return v if v is None or isinstance(v, str | int | float | bool) else repr(v)


# --------------------------------------------------------------------------------------- helpers


def required(data: Mapping[str, Any], key: str, path: str) -> Any:
    """A required field; absent or null means the sender broke the contract."""
    if type(data) is not dict and not isinstance(data, Mapping):  # an ABC check costs ~10x the ``is``
        raise MappingError(path.rsplit(".", 1)[0] or path, data, "not an object")
    v = data.get(key)
    if v is None or v == "":
        raise MappingError(path, v, "missing")
    return v


def _str(data: Mapping[str, Any], key: str, path: str) -> str:
    v = required(data, key, path)
    if not isinstance(v, str):
        raise MappingError(path, v, "not a string")
    return v


def _number(v: Any, path: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise MappingError(path, v, "not a number")
    try:
        return float(v)
    except ValueError:
        raise MappingError(path, v, "not a number") from None


def _iso_date(v: Any, path: str) -> dt.date:
    if not isinstance(v, str):
        raise MappingError(path, v, "not a date")
    try:
        # Accept a bare date or an ISO timestamp ("2026-03-02T00:00:00Z"): CRM date fields are dates.
        return dt.date.fromisoformat(v[:10])
    except ValueError:
        raise MappingError(path, v, "not an ISO date") from None


def erp_date(d: dt.date) -> str:
    if d.year >= 1000:  # strftime's %Y does not pad earlier years
        return f"{d.year}{d.month:02d}{d.day:02d}"
    return d.strftime("%Y%m%d")


def parse_erp_date(v: Any, path: str = "RequestedDate") -> dt.date:
    if not isinstance(v, str) or len(v) != 8 or not v.isdigit():
        raise MappingError(path, v, "not a YYYYMMDD date")
    try:
        return dt.datetime.strptime(v, "%Y%m%d").date()
    except ValueError:
        raise MappingError(path, v, "not a YYYYMMDD date") from None


def date_to_epoch_ms(d: dt.date) -> int:
    """Midnight UTC of ``d`` in epoch milliseconds (the WMS timestamp format)."""
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp() * 1000)


def epoch_ms_to_datetime(ms: Any, path: str = "event_time_ms") -> dt.datetime:
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        raise MappingError(path, ms, "not epoch milliseconds")
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def kg_to_lb(kg: float) -> float:
    return round(kg * LB_PER_KG, 2)


# --------------------------------------------------------------------------------------- ERP -> canonical


def erp_item_to_product(item: Mapping[str, Any]) -> Product:
    sku = _str(item, "ItemNo", "ItemNo")
    base = item.get("BaseUoM", "EA")
    if base != "EA":
        raise MappingError("BaseUoM", base, "unknown unit of measure")
    pack = item.get("CasePack", 1)
    if isinstance(pack, bool) or not isinstance(pack, int) or pack < 1:
        raise MappingError("CasePack", pack, "not a positive integer")
    price = item.get("ListPrice")
    return Product(
        sku=sku,
        description=str(item.get("Description") or ""),
        case_pack=pack,
        list_price_each=None if price is None else _number(price, "ListPrice"),
    )


def erp_customer_to_canonical(c: Mapping[str, Any]) -> Customer:
    return Customer(
        customer_no=_str(c, "CustomerNo", "CustomerNo"),
        name=str(c.get("Name") or ""),
        credit_hold=bool(c.get("CreditHold", False)),
        credit_limit=None if c.get("CreditLimit") is None else _number(c["CreditLimit"], "CreditLimit"),
        exposure=None if c.get("Exposure") is None else _number(c["Exposure"], "Exposure"),
        terms=c.get("Terms"),
        currency=str(c.get("Currency") or "USD"),
    )


def erp_prices(body: Mapping[str, Any]) -> dict[str, float]:
    """``get_prices`` answer -> {sku: price per EA}."""
    out: dict[str, float] = {}
    for i, p in enumerate(required(body, "Prices", "Prices")):
        path = f"Prices.{i}"
        uom = p.get("PriceUoM", "EA")
        if uom != "EA":
            raise MappingError(f"{path}.PriceUoM", uom, "unknown unit of measure")
        out[_str(p, "ItemNo", f"{path}.ItemNo")] = _number(
            required(p, "UnitPrice", f"{path}.UnitPrice"), f"{path}.UnitPrice"
        )
    return out


# --------------------------------------------------------------------------------------- CRM -> canonical


def crm_order_skus(data: Mapping[str, Any]) -> list[str]:
    """The SKUs of a CRM order (in order, unique): what to look up in ERP before mapping it."""
    items = required(data, "OrderItems", "OrderItems")
    if not isinstance(items, list) or not items:
        raise MappingError("OrderItems", items, "no order lines")
    seen: dict[str, None] = {}
    for i, it in enumerate(items):
        seen[_str(it, "ProductCode", f"OrderItems.{i}.ProductCode")] = None
    return list(seen)


def crm_customer_no(data: Mapping[str, Any]) -> str:
    account = data.get("Account")
    if isinstance(account, Mapping) and account.get("ErpCustomerNo__c"):
        return str(account["ErpCustomerNo__c"])
    if data.get("ErpCustomerNo__c"):
        return str(data["ErpCustomerNo__c"])
    raise MappingError("Account.ErpCustomerNo__c", None, "missing")


def crm_ship_to(data: Mapping[str, Any]) -> Address | None:
    """Ship-to from a CRM order, if the order carries one. Accepts the Salesforce compound
    ``ShippingAddress`` ({street, city, postalCode, country}), flat ``Shipping*`` fields or a
    ``ShipTo__c`` object ({Name, Street|Line1, City, PostalCode, Country})."""
    name = str(data.get("ShipToName__c") or (data.get("Account") or {}).get("Name") or data.get("AccountName") or "")
    sa = data.get("ShippingAddress")
    if isinstance(sa, Mapping):
        return _address(sa, "ShippingAddress", name, ("name", "street", "city", "postalCode", "country", "state"))
    if data.get("ShippingStreet") or data.get("ShippingPostalCode"):
        flat = {k.removeprefix("Shipping"): v for k, v in data.items() if k.startswith("Shipping")}
        return _address(flat, "Shipping", name, ("Name", "Street", "City", "PostalCode", "Country", "State"))
    if isinstance(data.get("ShipTo__c"), Mapping):
        return pascal_address(data["ShipTo__c"], "ShipTo__c", name)
    return None


def pascal_address(a: Any, path: str, default_name: str = "") -> Address:
    """A PascalCase address object ({Name, Street|Line1, City, PostalCode, Country}), as the CRM
    ``ShipTo__c`` or an ERP customer's ``ShipTo`` carries it."""
    if not isinstance(a, Mapping):
        raise MappingError(path, a, "not an address object")
    a = dict(a)
    a.setdefault("Street", a.get("Line1"))
    return _address(a, path, default_name, ("Name", "Street", "City", "PostalCode", "Country", "State"))


def _address(a: Mapping[str, Any], path: str, default_name: str, keys: tuple[str, ...]) -> Address:
    k_name, k_street, k_city, k_postal, k_country, k_region = keys
    return Address(
        name=str(a.get(k_name) or default_name or "Customer"),
        line1=_str(a, k_street, f"{path}.{k_street}"),
        city=_str(a, k_city, f"{path}.{k_city}"),
        postal_code=str(required(a, k_postal, f"{path}.{k_postal}")),
        country=str(a.get(k_country) or "US"),
        region=a.get(k_region),
    )


def crm_order_to_canonical(data: Mapping[str, Any], products: Mapping[str, Product]) -> Order:
    """A CRM ``order.submitted`` webhook's ``data`` -> canonical order, with CS quantities turned
    into EA by the ERP case pack and prices per CS into prices per EA."""
    crm_id = _str(data, "Id", "Id")
    items = required(data, "OrderItems", "OrderItems")
    if not isinstance(items, list) or not items:
        raise MappingError("OrderItems", items, "no order lines")
    lines: list[OrderLine] = []
    for i, it in enumerate(items):
        path = f"OrderItems.{i}"
        if type(it) is not dict and not isinstance(it, Mapping):
            raise MappingError(path, it, "not an object")
        sku = _str(it, "ProductCode", f"{path}.ProductCode")
        qty = _number(required(it, "Quantity", f"{path}.Quantity"), f"{path}.Quantity")
        if qty <= 0 or qty != int(qty):
            raise MappingError(f"{path}.Quantity", it.get("Quantity"), "not a positive whole quantity")
        uom = it.get("UnitOfMeasure__c")
        if uom is None:
            raise MappingError(f"{path}.UnitOfMeasure__c", None, "missing")
        price = it.get("UnitPrice")
        price_f = None if price is None else _number(price, f"{path}.UnitPrice")
        if uom == "EA":
            factor = 1
        elif uom == "CS":
            product = products.get(sku)
            if product is None:
                raise MappingError(f"{path}.ProductCode", sku, "no case pack known for item")
            factor = product.case_pack
        else:
            raise MappingError(f"{path}.UnitOfMeasure__c", uom, "unknown unit of measure")
        lines.append(
            OrderLine(
                sku=sku,
                quantity_each=int(qty) * factor,
                unit_price_each=None if price_f is None else round(price_f / factor, 4),
            )
        )
    requested = data.get("RequestedDeliveryDate__c") or data.get("EffectiveDate")
    return Order(
        crm_id=crm_id,
        order_number=data.get("OrderNumber"),
        po_number=data.get("PoNumber"),
        customer_no=crm_customer_no(data),
        account_id=data.get("AccountId"),
        ship_to=crm_ship_to(data),
        requested_date=None if requested is None else _iso_date(requested, "RequestedDeliveryDate__c"),
        lines=tuple(lines),
    )


def with_prices(order: Order, prices: Mapping[str, float]) -> Order:
    """Fill lines that came without a price from the ERP contract price (per EA). Lines with a CRM
    price keep it: the ERP checks it and answers 422 price_mismatch if it disagrees."""
    lines = []
    for i, line in enumerate(order.lines):
        if line.unit_price_each is None:
            if line.sku not in prices:
                raise MappingError(f"OrderItems.{i}.UnitPrice", None, "no price in CRM or ERP")
            line = line.model_copy(update={"unit_price_each": prices[line.sku]})
        lines.append(line)
    return order.model_copy(update={"lines": tuple(lines)})


# --------------------------------------------------------------------------------------- canonical -> ERP


def canonical_to_erp_sales_order(order: Order, plant: str = PLANT) -> dict[str, Any]:
    """ERP wants EA lines, UnitPrice per EA, RequestedDate YYYYMMDD, and ExtRef = the CRM Order Id
    (the SUT contract's external-reference rule: reconciliation joins on it)."""
    if order.requested_date is None:
        raise MappingError("RequestedDeliveryDate__c", None, "missing")
    lines = []
    for i, line in enumerate(order.lines):
        if line.unit_price_each is None:
            raise MappingError(f"OrderItems.{i}.UnitPrice", None, "missing")
        lines.append({"ItemNo": line.sku, "Qty": line.quantity_each, "UoM": "EA", "UnitPrice": line.unit_price_each})
    body: dict[str, Any] = {
        "ExtRef": order.crm_id,
        "SoldTo": order.customer_no,
        "Plant": plant,
        "RequestedDate": erp_date(order.requested_date),
        "Lines": lines,
    }
    if order.po_number:
        body["PoNumber"] = order.po_number
    return body


_ERP_STATUS: dict[str, OrderStatus] = {
    "OPEN": OrderStatus.BOOKED,
    "RELEASED": OrderStatus.BOOKED,
    "BACKORDERED": OrderStatus.BACKORDERED,
    "CREDIT_HOLD": OrderStatus.CREDIT_HOLD,
    "GOODS_ISSUED": OrderStatus.SHIPPED,
    "SHIPPED": OrderStatus.SHIPPED,
    "INVOICED": OrderStatus.DELIVERED,
    "COMPLETED": OrderStatus.DELIVERED,
    "CLOSED": OrderStatus.DELIVERED,
    "CANCELLED": OrderStatus.CANCELLED,
}


def erp_status_to_crm(status: Any, field: str = "Status") -> OrderStatus:
    try:
        return _ERP_STATUS[status]
    except (KeyError, TypeError):
        raise MappingError(field, status, "unknown ERP order status") from None


def erp_order_lines(so: Mapping[str, Any]) -> list[tuple[str, int]]:
    """ERP sales order -> [(sku, qty EA)] (for a fulfilment created from the ERP side).
    ``QtyOrdered`` is always in the base unit; ``Qty``/``UoM`` echo what was ordered."""
    out = []
    for i, ln in enumerate(required(so, "Lines", "Lines")):
        qty = _number(required(ln, "QtyOrdered", f"Lines.{i}.QtyOrdered"), f"Lines.{i}.QtyOrdered")
        out.append((_str(ln, "ItemNo", f"Lines.{i}.ItemNo"), int(qty)))
    return out


# --------------------------------------------------------------------------------------- canonical -> WMS


def address_to_wms(a: Address) -> dict[str, Any]:
    return {"name": a.name, "line1": a.line1, "city": a.city, "postal_code": a.postal_code, "country": a.country}


def wms_address(a: Mapping[str, Any], path: str = "ship_to") -> Address:
    return Address(
        name=str(a.get("name") or "Customer"),
        line1=_str(a, "line1", f"{path}.line1"),
        city=_str(a, "city", f"{path}.city"),
        postal_code=str(required(a, "postal_code", f"{path}.postal_code")),
        country=str(a.get("country") or "US"),
    )


def canonical_to_wms_fulfillment(
    crm_id: str,
    erp_order: str,
    ship_to: Address | None,
    lines: Sequence[tuple[str, int]],
    requested_date: dt.date | None = None,
    warehouse: str = PLANT,
) -> dict[str, Any]:
    """WMS fulfilment request: quantities in EA, dates in epoch ms, ``client_reference`` = CRM id."""
    if ship_to is None:
        raise MappingError("ship_to", None, "missing")
    if not lines:
        raise MappingError("lines", [], "no lines")
    body: dict[str, Any] = {
        "client_reference": crm_id,
        "erp_order": erp_order,
        "warehouse": warehouse,
        "ship_to": address_to_wms(ship_to),
        "lines": [{"sku": sku, "quantity": int(q), "uom": "EA"} for sku, q in lines],
    }
    if requested_date is not None:
        body["requested_ship_date_ms"] = date_to_epoch_ms(requested_date)
    return body


def order_lines_each(order: Order) -> list[tuple[str, int]]:
    return [(ln.sku, ln.quantity_each) for ln in order.lines]


# --------------------------------------------------------------------------------------- WMS -> carrier


def wms_packages_kg(data: Mapping[str, Any]) -> list[float]:
    pkgs = required(data, "packages", "packages")
    if not isinstance(pkgs, list) or not pkgs:
        raise MappingError("packages", pkgs, "no packages")
    out = []
    for i, p in enumerate(pkgs):
        w = _number(required(p, "weight_kg", f"packages.{i}.weight_kg"), f"packages.{i}.weight_kg")
        if w < 0:
            raise MappingError(f"packages.{i}.weight_kg", w, "negative weight")
        out.append(w)
    return out


def address_to_carrier(a: Address) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": a.name,
        "addressLine1": a.line1,
        "city": a.city,
        "postalCode": a.postal_code,
        "countryCode": a.country,
    }
    if a.region:
        out["stateProvince"] = a.region
    return out


def wms_ready_to_carrier_shipment(
    data: Mapping[str, Any], ship_to: Address | None, service: str = "GROUND"
) -> dict[str, Any]:
    """WMS ``fulfillment.ready_to_ship`` -> carrier shipment: kg -> lb, ``shipperReference`` = CRM id."""
    crm_id = _str(data, "client_reference", "client_reference")
    if ship_to is None:
        raise MappingError("ship_to", None, "missing")
    return {
        "shipperReference": crm_id,
        "shipTo": address_to_carrier(ship_to),
        "packages": [{"weightLb": kg_to_lb(kg)} for kg in wms_packages_kg(data)],
        "service": service,
    }


# --------------------------------------------------------------------------------------- carrier -> CRM


_CARRIER_STATUS: dict[str, OrderStatus] = {
    "PU": OrderStatus.SHIPPED,
    "IT": OrderStatus.SHIPPED,  # CRM has no "in transit": still Shipped
    "DL": OrderStatus.DELIVERED,
    "EX": OrderStatus.EXCEPTION,
}


def carrier_event_to_status(code: Any, field: str = "eventCode") -> OrderStatus:
    try:
        return _CARRIER_STATUS[code]
    except (KeyError, TypeError):
        raise MappingError(field, code, "unknown carrier event code") from None


def carrier_tracking_event(data: Mapping[str, Any]) -> tuple[str, str, OrderStatus]:
    """``tracking.update`` data -> (crm id, tracking number, CRM status)."""
    crm_id = _str(data, "shipperReference", "shipperReference")
    tracking = _str(data, "trackingNumber", "trackingNumber")
    code = required(data, "eventCode", "eventCode")
    return crm_id, tracking, carrier_event_to_status(code)


# --------------------------------------------------------------------------------------- canonical -> CRM


def crm_status_update(
    status: OrderStatus,
    *,
    reason: str | None = None,
    erp_order: str | None = None,
    tracking_number: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"Status": status.value}
    if erp_order:
        body["ExternalOrderNo__c"] = erp_order
    if tracking_number:
        body["TrackingNumber__c"] = tracking_number
    if reason:
        body["StatusReason__c"] = reason
    return body
