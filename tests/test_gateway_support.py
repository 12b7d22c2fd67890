"""A tiny SystemCore and router for testing the shared mock machinery without the real systems."""

from __future__ import annotations

from typing import Any, ClassVar

import simpy
from fastapi import APIRouter, Body
from fastapi import Request as HttpRequest

from mocks.core.base import Request, Response, Route, SystemCore, error
from mocks.http import dispatch


class DummyCore(SystemCore):
    system = "erp"
    routes: ClassVar[dict[str, Route]] = {
        "create_order": Route("POST", "/orders", mutating=True),
        "get_order": Route("GET", "/orders/{order_no}"),
    }

    def __init__(self, env: simpy.Environment, ledger: Any = None, emit: Any = None) -> None:
        super().__init__(env, ledger, emit)
        self.orders: dict[str, dict[str, Any]] = {}

    def op_create_order(self, req: Request) -> Response:
        order_no = f"SO-{len(self.orders) + 1:07d}"
        order = {"SalesOrderNo": order_no, "ExtRef": req.body.get("ExtRef"), "Lines": req.body.get("Lines", [])}
        self.orders[order_no] = order
        self.record(req, "sales_order.created", order_no, ref=order["ExtRef"])
        self.new_event("SalesOrder.Created", {"SalesOrderNo": order_no, "ExtRef": order["ExtRef"]})
        return Response(201, order)

    def op_get_order(self, req: Request) -> Response:
        order = self.orders.get(req.params["order_no"])
        return Response(200, order) if order else error(404, "not_found", "no such order")

    def reset(self) -> None:
        self.orders.clear()


router = APIRouter()


@router.post("/orders")
async def create_order(request: HttpRequest, body: dict[str, Any] = Body(...)) -> Any:
    return await dispatch(request, "create_order", body)


@router.get("/orders/{order_no}")
async def get_order(request: HttpRequest, order_no: str) -> Any:
    return await dispatch(request, "get_order", params={"order_no": order_no})


ORDER = {"ExtRef": "801000000000000001", "Lines": [{"ItemNo": "SKU-00001", "Qty": 2}]}
ADMIN = {"X-Twin-Admin-Token": "secret-token"}
