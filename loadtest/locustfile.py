"""Load test of the twin: orders submitted through the CRM mock at the scenario's demand curve,
their status polled, ERP availability checked.

    TWIN_SCENARIO=scenarios/quarter_end_surge.yaml TWIN_LOAD_DURATION=60s TWIN_PEAK_RPS=20 \\
    TWIN_ERP_URL=http://127.0.0.1:8702 locust -f loadtest/locustfile.py --host http://127.0.0.1:8701

``twin load`` sets all of this and runs master + workers; see ``docs/load-testing.md`` for the
environment variables, the open-model pacing and distributed workers. Logic lives in
``loadtest.workload`` and ``loadtest.shape``; this file only wires it to Locust.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

# ``loadtest`` is not an installed package: make ``locust -f loadtest/locustfile.py`` import it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from locust import FastHttpUser, LoadTestShape, events, task  # noqa: E402
from locust.contrib.fasthttp import FastHttpSession  # noqa: E402

from loadtest.workload import (  # noqa: E402
    CRM_ORDER_PATH,
    LoadConfig,
    OrderLog,
    OrderSource,
    Pacer,
    check_atp,
    check_order,
    check_submit,
    check_token,
    rng_for,
    transport_error,
    worker_tag,
    write_pacing,
)

CONFIG = LoadConfig.from_env()
SCENARIO = CONFIG.scenario()
SCHEDULE = CONFIG.schedule(SCENARIO)
TAG = worker_tag()
ORDER_LOG = OrderLog(CONFIG.out_dir, TAG)
_counter = itertools.count(1)
_pacers: list[Pacer] = []
_state: dict[str, Any] = {"t0": None, "orders": None}


def _t0() -> float:
    # Workers start their clock when their first spawn message arrives, i.e. at the shape's first tick.
    if _state["t0"] is None:
        _state["t0"] = time.monotonic()
    return _state["t0"]


def _orders() -> OrderSource:
    if _state["orders"] is None:
        _state["orders"] = OrderSource(SCENARIO, TAG)
    return _state["orders"]


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    _state["t0"] = time.monotonic()


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    if _pacers:
        totals = {k: sum(p.stats()[k] for p in _pacers) for k in ("late", "missed")}
        write_pacing(CONFIG.out_dir, TAG, totals)
        if totals["missed"]:
            print(f"[twin] {TAG}: {totals['missed']} order slots missed (users busy): offered rate not achieved")
    ORDER_LOG.close()


class CrmOrderUser(FastHttpUser):
    """A sales channel: checks availability, submits an order, looks up an earlier one."""

    network_timeout = CONFIG.timeout_s
    connection_timeout = CONFIG.timeout_s

    def on_start(self) -> None:
        self.rng = rng_for(f"{TAG}-{id(self)}")
        self.pacer = Pacer(SCHEDULE, _t0(), self.rng.random())
        _pacers.append(self.pacer)
        self.orders = _orders()
        self.erp: FastHttpSession | None = None
        if CONFIG.erp_url:
            self.erp = FastHttpSession(
                base_url=CONFIG.erp_url,
                request_event=self.environment.events.request,
                user=self,
                network_timeout=CONFIG.timeout_s,
                connection_timeout=CONFIG.timeout_s,
            )
        self.token: str | None = None
        self.last_id: str | None = None
        self.wait()  # the first iteration waits for its pacing phase too, so spawns don't burst

    def wait_time(self) -> float:
        return self.pacer.wait(time.monotonic())

    @task
    def order_cycle(self) -> None:
        po = f"{CONFIG.run_id}-{TAG}-{next(_counter)}"
        payload = self.orders.payload(po)
        if self.erp is not None and self.rng.random() < CONFIG.atp_share:
            self.check_availability([i["ProductCode"] for i in payload["OrderItems"]])
        order_id = self.submit(payload, po)
        if order_id and self.rng.random() < CONFIG.poll_share:
            self.poll(self.last_id or order_id)
        self.last_id = order_id or self.last_id

    def submit(self, payload: dict[str, Any], po: str) -> str | None:
        with self.client.post(CRM_ORDER_PATH, json=payload, name="crm:submit_order", catch_response=True) as r:
            err = transport_error(r.status_code, getattr(r, "error", None)) or check_submit(r.status_code, r.text or "")
            if err:
                r.failure(err)
                return None
            order_id = str(r.json()["id"])
            r.success()
        ORDER_LOG.record(order_id, po, time.time())
        return order_id

    def poll(self, order_id: str) -> None:
        with self.client.get(f"{CRM_ORDER_PATH}/{order_id}", name="crm:get_order", catch_response=True) as r:
            err = transport_error(r.status_code, getattr(r, "error", None)) or check_order(
                r.status_code, r.text or "", order_id
            )
            r.failure(err) if err else r.success()

    def check_availability(self, items: list[str]) -> None:
        assert self.erp is not None
        for attempt in range(2):
            if self.token is None and not self.fetch_token():
                return
            path = f"/api/v2/atp?items={','.join(items)}&plant=WH01"
            headers = {"Authorization": f"Bearer {self.token}"}
            with self.erp.get(path, headers=headers, name="erp:get_atp", catch_response=True) as r:
                if r.status_code == 401 and attempt == 0:
                    # An expired token is routine, not an error: record it apart and fetch a new one.
                    r.request_meta["name"] = "erp:get_atp (token expired)"
                    r.success()
                    self.token = None
                    continue
                err = transport_error(r.status_code, getattr(r, "error", None)) or check_atp(
                    r.status_code, r.text or "", items
                )
                r.failure(err) if err else r.success()
            return

    def fetch_token(self) -> bool:
        assert self.erp is not None
        form = {
            "grant_type": "client_credentials",
            "client_id": CONFIG.erp_client_id,
            "client_secret": CONFIG.erp_client_secret,
            "scope": "orders",
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        with self.erp.post(
            "/oauth/token", data=urlencode(form), headers=headers, name="erp:token", catch_response=True
        ) as r:
            err = transport_error(r.status_code, getattr(r, "error", None)) or check_token(r.status_code, r.text or "")
            if err:
                r.failure(err)
                return False
            self.token = str(r.json()["access_token"])
            r.success()
        return True


class DemandShape(LoadTestShape):
    """The scenario's demand curve, compressed into TWIN_LOAD_DURATION (see ``loadtest.shape``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = SCHEDULE.stages()

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        for stage in self.stages:
            if t < stage.end_s:
                return stage.users, stage.spawn_rate
        return None
