"""Dialect <-> canonical mappings: units, prices, dates, weights, and loud failures."""

from __future__ import annotations

import datetime as dt

import pytest

from reference_integration import mappings as m
from reference_integration.canonical import Address, OrderStatus, Product
from reference_integration.mappings import MappingError

CRM_ID = "801000000000000001"


def crm_order(**over):
    data = {
        "Id": CRM_ID,
        "OrderNumber": "00000101",
        "AccountId": "001000000000000001",
        "Account": {"Id": "001000000000000001", "ErpCustomerNo__c": "C000001", "Name": "Acme"},
        "Status": "Submitted",
        "EffectiveDate": "2026-03-02",
        "RequestedDeliveryDate__c": "2026-03-09",
        "PoNumber": "PO-1",
        "ShippingAddress": {"street": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"},
        "OrderItems": [
            {"ProductCode": "SKU-00001", "Quantity": 2, "UnitOfMeasure__c": "CS", "UnitPrice": 120.0},
            {"ProductCode": "SKU-00002", "Quantity": 5, "UnitOfMeasure__c": "EA", "UnitPrice": 3.5},
        ],
    }
    data.update(over)
    return data


PRODUCTS = {"SKU-00001": Product(sku="SKU-00001", case_pack=12), "SKU-00002": Product(sku="SKU-00002", case_pack=6)}


def test_crm_cs_lines_become_each_with_price_per_each():
    order = m.crm_order_to_canonical(crm_order(), PRODUCTS)
    assert order.crm_id == CRM_ID
    assert order.customer_no == "C000001"
    assert [(ln.sku, ln.quantity_each, ln.unit_price_each) for ln in order.lines] == [
        ("SKU-00001", 24, 10.0),
        ("SKU-00002", 5, 3.5),
    ]
    assert order.requested_date == dt.date(2026, 3, 9)
    assert order.ship_to == Address(name="Acme", line1="1 Main St", city="Springfield", postal_code="12345")


def test_erp_sales_order_carries_ext_ref_each_lines_and_yyyymmdd():
    body = m.canonical_to_erp_sales_order(m.crm_order_to_canonical(crm_order(), PRODUCTS))
    assert body["ExtRef"] == CRM_ID
    assert body["SoldTo"] == "C000001"
    assert body["RequestedDate"] == "20260309"
    assert body["Lines"][0] == {"ItemNo": "SKU-00001", "Qty": 24, "UoM": "EA", "UnitPrice": 10.0}
    assert all(ln["UoM"] == "EA" for ln in body["Lines"])


def test_missing_price_filled_from_erp_contract_price():
    data = crm_order()
    del data["OrderItems"][1]["UnitPrice"]
    order = m.with_prices(m.crm_order_to_canonical(data, PRODUCTS), {"SKU-00002": 3.25})
    assert order.lines[1].unit_price_each == 3.25
    with pytest.raises(MappingError) as e:
        m.with_prices(m.crm_order_to_canonical(data, PRODUCTS), {})
    assert e.value.field == "OrderItems.1.UnitPrice"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["OrderItems"][0].update(UnitOfMeasure__c="PAL"), "OrderItems.0.UnitOfMeasure__c"),
        (lambda d: d["OrderItems"][1].pop("Quantity"), "OrderItems.1.Quantity"),  # drift: Quantity -> Qty
        (lambda d: d["OrderItems"][0].update(Quantity=1.5), "OrderItems.0.Quantity"),
        (lambda d: d.pop("Account"), "Account.ErpCustomerNo__c"),
        (lambda d: d.update(RequestedDeliveryDate__c="09/03/2026"), "RequestedDeliveryDate__c"),
        (lambda d: d.update(OrderItems=[]), "OrderItems"),
    ],
)
def test_bad_crm_order_raises_mapping_error_naming_the_field(mutate, field):
    data = crm_order()
    mutate(data)
    with pytest.raises(MappingError) as e:
        m.crm_order_to_canonical(data, PRODUCTS)
    assert e.value.field == field
    assert e.value.category == "mapping"


def test_cs_without_known_case_pack_is_an_error_not_a_guess():
    with pytest.raises(MappingError) as e:
        m.crm_order_to_canonical(crm_order(), {})
    assert e.value.field == "OrderItems.0.ProductCode"


def test_erp_item_and_prices():
    p = m.erp_item_to_product({"ItemNo": "SKU-1", "Description": "x", "BaseUoM": "EA", "CasePack": 12, "ListPrice": 2})
    assert p.case_pack == 12
    with pytest.raises(MappingError, match="BaseUoM"):
        m.erp_item_to_product({"ItemNo": "SKU-1", "BaseUoM": "KG", "CasePack": 12})
    assert m.erp_prices({"Prices": [{"ItemNo": "A", "UnitPrice": 1.5, "PriceUoM": "EA"}]}) == {"A": 1.5}
    with pytest.raises(MappingError) as e:
        m.erp_prices({"Prices": [{"ItemNo": "A", "UnitPrice": 1.5, "PriceUoM": "CS"}]})
    assert e.value.field == "Prices.0.PriceUoM"


@pytest.mark.parametrize(
    ("erp", "crm"),
    [
        ("OPEN", OrderStatus.BOOKED),
        ("BACKORDERED", OrderStatus.BACKORDERED),
        ("CREDIT_HOLD", OrderStatus.CREDIT_HOLD),
        ("GOODS_ISSUED", OrderStatus.SHIPPED),
        ("INVOICED", OrderStatus.DELIVERED),
    ],
)
def test_erp_status_to_crm(erp, crm):
    assert m.erp_status_to_crm(erp) == crm


def test_unknown_statuses_raise():
    with pytest.raises(MappingError) as e:
        m.erp_status_to_crm("ON_THE_MOON")
    assert e.value.field == "Status"
    with pytest.raises(MappingError) as e:
        m.carrier_event_to_status("ZZ")
    assert e.value.field == "eventCode"


def test_wms_fulfilment_each_and_epoch_ms():
    addr = Address(name="Acme", line1="1 Main St", city="Springfield", postal_code="12345")
    body = m.canonical_to_wms_fulfillment(CRM_ID, "SO-0000001", addr, [("SKU-1", 24)], dt.date(2026, 3, 9))
    assert body["client_reference"] == CRM_ID
    assert body["lines"] == [{"sku": "SKU-1", "quantity": 24, "uom": "EA"}]
    assert body["requested_ship_date_ms"] == 1773014400000
    assert body["ship_to"]["postal_code"] == "12345"
    with pytest.raises(MappingError, match="ship_to"):
        m.canonical_to_wms_fulfillment(CRM_ID, "SO-1", None, [("SKU-1", 1)])


def test_ready_to_ship_becomes_carrier_shipment_in_pounds():
    addr = Address(name="Acme", line1="1 Main St", city="Springfield", postal_code="12345")
    data = {"fulfillment_id": "FO-1", "client_reference": CRM_ID, "packages": [{"weight_kg": 10}, {"weight_kg": 0.5}]}
    req = m.wms_ready_to_carrier_shipment(data, addr)
    assert req["shipperReference"] == CRM_ID
    assert req["packages"] == [{"weightLb": 22.05}, {"weightLb": 1.1}]
    assert req["shipTo"]["postalCode"] == "12345"
    with pytest.raises(MappingError) as e:
        m.wms_ready_to_carrier_shipment({**data, "packages": [{"weight": 1}]}, addr)
    assert e.value.field == "packages.0.weight_kg"


def test_carrier_events_and_status_ranks():
    assert m.carrier_tracking_event({"trackingNumber": "1Z1", "shipperReference": CRM_ID, "eventCode": "DL"}) == (
        CRM_ID,
        "1Z1",
        OrderStatus.DELIVERED,
    )
    assert m.carrier_event_to_status("IT") == OrderStatus.SHIPPED
    assert OrderStatus.SHIPPED.advances_from(OrderStatus.IN_FULFILMENT)
    assert not OrderStatus.SHIPPED.advances_from(OrderStatus.DELIVERED)
    assert not OrderStatus.SHIPPED.advances_from(OrderStatus.SHIPPED)
    assert not OrderStatus.BOOKED.advances_from(OrderStatus.BACKORDERED)  # same step
    assert OrderStatus.IN_FULFILMENT.advances_from(OrderStatus.BACKORDERED)
    assert OrderStatus.EXCEPTION.advances_from(OrderStatus.SHIPPED)
    assert OrderStatus.DELIVERED.advances_from(OrderStatus.EXCEPTION)
    assert not OrderStatus.EXCEPTION.advances_from(OrderStatus.DELIVERED)


def test_erp_order_lines_use_base_unit_quantity():
    so = {"Lines": [{"ItemNo": "A", "QtyOrdered": 24, "UoM": "CS", "Qty": 2}]}
    assert m.erp_order_lines(so) == [("A", 24)]
    assert m.parse_erp_date("20260309") == dt.date(2026, 3, 9)
    with pytest.raises(MappingError):
        m.parse_erp_date("2026-03-09")


def test_status_advances_by_value_decides_as_the_enum_members_did() -> None:
    """``status_advances`` (ranks by value) against the rules written on members, for every pair of
    statuses as members and as strings, None, and values that are not statuses (a ValueError)."""
    import pytest

    from reference_integration.canonical import _RANK, OrderStatus, status_advances

    def by_members(new: OrderStatus | str, current: OrderStatus | str | None) -> bool:
        self = OrderStatus(new)
        if current is None:
            return True
        cur = OrderStatus(current)
        if cur == self or cur in (OrderStatus.DELIVERED, OrderStatus.CANCELLED):
            return False
        if self in (OrderStatus.EXCEPTION, OrderStatus.CANCELLED):
            return True
        if cur == OrderStatus.EXCEPTION:
            return _RANK[self] > _RANK[OrderStatus.SUBMITTED]
        return _RANK[self] > _RANK[cur]

    values: list[OrderStatus | str] = [*OrderStatus, *(s.value for s in OrderStatus)]
    for new in values:
        assert status_advances(new, None) is True
        for cur in values:
            assert status_advances(new, cur) == by_members(new, cur) == OrderStatus(new).advances_from(cur)
        for bad in ("Closed", "", 3, ["Booked"]):
            with pytest.raises(ValueError):
                status_advances(new, bad)  # type: ignore[arg-type]
            with pytest.raises(ValueError):
                status_advances(bad, cur)  # type: ignore[arg-type]
