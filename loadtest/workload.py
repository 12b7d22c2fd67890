"""What the locustfile's users do, without Locust: configuration from the environment, order
payloads from the scenario's master data and demand model, response content checks, open-model
pacing and the submitted-order log. Kept here so the locustfile stays thin and this stays testable.
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from loadtest.shape import DEFAULT_BUDGET_S, Schedule, schedule_for
from mocks.crm.schemas import STATUSES
from sim.scenario import Scenario, load_scenario, parse_duration

CRM_ORDER_PATH = "/services/data/v60.0/sobjects/Order"
CRM_STATUSES = frozenset(STATUSES)
DEFAULT_ERP_SECRET = "twin-secret"  # the ERP mock's default (mocks/erp/core.py)


# --------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class LoadConfig:
    """Everything a load test process reads from its environment (the same on master and workers)."""

    scenario_path: str | None = None
    overrides: tuple[str, ...] = ()
    duration_s: float = 30.0
    peak_rps: float = 5.0
    users: int | None = None  # users at the peak; None: peak_rps x budget_s
    budget_s: float = DEFAULT_BUDGET_S
    erp_url: str | None = None
    erp_client_id: str = "loadtest"
    erp_client_secret: str = DEFAULT_ERP_SECRET
    out_dir: str | None = None
    run_id: str = "LT"
    atp_share: float = 0.5  # iterations that check ERP availability before submitting
    poll_share: float = 1.0  # iterations that poll the status of an earlier order
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LoadConfig:
        e = os.environ if env is None else env

        def num(name: str, default: float) -> float:
            raw = e.get(name)
            if raw is None or raw == "":
                return default
            try:
                return float(raw)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {raw!r}") from None

        dur = e.get("TWIN_LOAD_DURATION")
        users = e.get("TWIN_LOAD_USERS")
        sets = e.get("TWIN_SCENARIO_SET", "")
        return cls(
            scenario_path=e.get("TWIN_SCENARIO") or None,
            overrides=tuple(s for s in sets.split("\n") if s.strip()),
            duration_s=float(parse_duration(dur)) if dur else 30.0,  # type: ignore[arg-type]
            peak_rps=num("TWIN_PEAK_RPS", 5.0),
            users=int(users) if users else None,
            budget_s=num("TWIN_LOAD_BUDGET", DEFAULT_BUDGET_S),
            erp_url=(e.get("TWIN_ERP_URL") or None),
            erp_client_id=e.get("TWIN_ERP_CLIENT_ID", "loadtest"),
            erp_client_secret=e.get("TWIN_ERP_CLIENT_SECRET", DEFAULT_ERP_SECRET),
            out_dir=e.get("TWIN_LOAD_OUT") or None,
            run_id=e.get("TWIN_LOAD_RUN_ID", "LT"),
            atp_share=num("TWIN_LOAD_ATP_SHARE", 0.5),
            poll_share=num("TWIN_LOAD_POLL_SHARE", 1.0),
            timeout_s=num("TWIN_LOAD_TIMEOUT", 10.0),
        )

    def scenario(self) -> Scenario:
        if self.scenario_path:
            return load_scenario(self.scenario_path, self.overrides)
        return Scenario(name="default")

    def schedule(self, scenario: Scenario) -> Schedule:
        return schedule_for(scenario, self.duration_s, self.peak_rps, budget_s=self.budget_s, users=self.users)


# --------------------------------------------------------------------------------------- orders


class OrderSource:
    """CRM order payloads in the scenario's own mix (customers by tier, SKUs by popularity, line
    counts, quantities, contract prices), drawn from ``sim.demand.DemandModel`` on a stream of our
    own so two workers never send the same sequence. Master data comes from the scenario's seed,
    the same call the mocks make, so every AccountId and ProductCode exists in the twin."""

    def __init__(self, scenario: Scenario, stream: str) -> None:
        from sim.calendar import Calendar
        from sim.masterdata import generate
        from sim.rng import Streams

        self.scenario = scenario
        self.md = generate(scenario.masterdata, Streams(scenario.seed))
        self._base = Streams(scenario.seed).child(f"loadtest.{stream}")
        self._round = 0
        self._it: Iterator[Any] = iter(())
        today = Calendar.of(scenario.start).to_datetime(0).date()
        self.effective = today.isoformat()
        self.requested = (today + timedelta(seconds=scenario.demand.requested_lead)).isoformat()

    def _refill(self) -> None:
        from sim.demand import DemandModel

        self._round += 1
        self._it = DemandModel(self.scenario, self.md, self._base.child(str(self._round))).orders()

    def next_order(self) -> Any:
        for _ in range(3):
            try:
                return next(self._it)
            except StopIteration:
                self._refill()
        raise RuntimeError("the scenario's demand produces no orders (demand.orders is 0?)")

    def payload(self, po_number: str) -> dict[str, Any]:
        o = self.next_order()
        return crm_order_payload(o, po_number, self.effective, self.requested)


def crm_order_payload(order: Any, po_number: str, effective: str, requested: str) -> dict[str, Any]:
    """A ``sim.demand.DemandOrder`` in the CRM dialect (``docs/internals.md``)."""
    return {
        "AccountId": order.crm_account_id,
        "EffectiveDate": effective,
        "RequestedDeliveryDate__c": requested,
        "PoNumber": po_number,
        "OrderItems": [
            {"ProductCode": ln.sku, "Quantity": ln.quantity, "UnitOfMeasure__c": ln.uom, "UnitPrice": ln.unit_price}
            for ln in order.lines
        ],
    }


# --------------------------------------------------------------------------------------- checks
# Each returns None when the response is right, else the reason Locust records as the failure.


def transport_error(status: int, error: object) -> str | None:
    """Locust reports a refused, reset or timed-out connection as status 0 with the exception."""
    if status == 0:
        return f"no response: {type(error).__name__}: {error}" if error else "no response"
    return None


def _json(body: Any) -> tuple[Any, str | None]:
    if isinstance(body, str | bytes):
        try:
            return json.loads(body), None
        except (ValueError, TypeError):
            return None, "response body is not JSON"
    return body, None


def check_submit(status: int, body: Any) -> str | None:
    if status != 201:
        return f"submit_order: HTTP {status}, expected 201"
    data, err = _json(body)
    if err:
        return f"submit_order: {err}"
    if not isinstance(data, dict) or not data.get("id"):
        return "submit_order: 201 without an id"
    if data.get("success") is not True:
        return f"submit_order: success is {data.get('success')!r}, expected true"
    return None


def check_order(status: int, body: Any, order_id: str) -> str | None:
    if status != 200:
        return f"get_order: HTTP {status}, expected 200"
    data, err = _json(body)
    if err:
        return f"get_order: {err}"
    if not isinstance(data, dict) or data.get("Id") != order_id:
        got = data.get("Id") if isinstance(data, dict) else None
        return f"get_order: asked for {order_id}, got Id {got!r}"
    if data.get("Status") not in CRM_STATUSES:
        return f"get_order: unknown Status {data.get('Status')!r}"
    return None


def check_atp(status: int, body: Any, items: list[str]) -> str | None:
    if status != 200:
        return f"get_atp: HTTP {status}, expected 200"
    data, err = _json(body)
    if err:
        return f"get_atp: {err}"
    listed = (
        {i.get("ItemNo") for i in data.get("Items", []) if isinstance(i, dict)} if isinstance(data, dict) else set()
    )
    missing = [i for i in items if i not in listed]
    if missing:
        return f"get_atp: items missing from the answer: {', '.join(missing[:3])}"
    bad = [i for i in data["Items"] if not isinstance(i.get("Available"), int | float)]
    if bad:
        return f"get_atp: Available is not a number for {bad[0].get('ItemNo')}"
    return None


def check_token(status: int, body: Any) -> str | None:
    if status != 200:
        return f"token: HTTP {status}, expected 200"
    data, err = _json(body)
    if err:
        return f"token: {err}"
    if not isinstance(data, dict) or not data.get("access_token"):
        return "token: no access_token"
    return None


# --------------------------------------------------------------------------------------- pacing


class Pacer:
    """Open-model pacing of one user: iteration starts at fixed intervals from the schedule,
    whatever the previous iteration cost (like ``constant_pacing``, but the interval follows the
    schedule's rate and user count). A user more than one interval behind drops the slots it
    missed and counts them, rather than bursting to catch up; ``missed`` is offered load that a
    slow system under test prevented, reported instead of silently vanishing."""

    def __init__(self, schedule: Schedule, t0: float, phase: float) -> None:
        self.schedule = schedule
        self.t0 = t0
        self.phase = phase  # 0..1: spreads the users' first starts over one interval
        self.next_at: float | None = None
        self.late = 0
        self.missed = 0

    def wait(self, now: float) -> float:
        t = now - self.t0
        iv = self.schedule.interval_at(t)
        if iv is None:
            step = self.schedule.step_at(t)
            self.next_at = None
            return max(0.05, step.end_s - t) if step else 1.0
        if self.next_at is None:
            self.next_at = now + self.phase * iv
            return self.next_at - now
        self.next_at += iv
        behind = now - self.next_at
        if behind > iv:
            lost = math.floor(behind / iv)
            self.missed += lost
            self.next_at += lost * iv
            behind = now - self.next_at
        if behind > 0:
            self.late += 1
            return 0.0
        return self.next_at - now

    def stats(self) -> dict[str, int]:
        return {"late": self.late, "missed": self.missed}


# --------------------------------------------------------------------------------------- order log


def worker_tag() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class OrderLog:
    """Ids of orders the CRM acknowledged, one file per process, so the harness can join them to
    the ledgers. Written line by line and flushed: a killed worker still leaves its ids behind."""

    def __init__(self, out_dir: str | None, tag: str) -> None:
        self._f: TextIO | None = None
        if out_dir:
            p = Path(out_dir)
            p.mkdir(parents=True, exist_ok=True)
            self._f = (p / f"orders-{tag}.tsv").open("a", encoding="utf-8")

    def record(self, order_id: str, po_number: str, t: float) -> None:
        if self._f is not None:
            self._f.write(f"{order_id}\t{po_number}\t{t:.3f}\n")
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def write_pacing(out_dir: str | None, tag: str, totals: Mapping[str, int]) -> None:
    if out_dir:
        p = Path(out_dir)
        p.mkdir(parents=True, exist_ok=True)
        (p / f"pacing-{tag}.json").write_text(json.dumps(dict(totals)), encoding="utf-8")


def read_order_ids(out_dir: str | Path) -> list[str]:
    ids: list[str] = []
    for f in sorted(Path(out_dir).glob("orders-*.tsv")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                ids.append(line.split("\t", 1)[0])
    return ids


def read_pacing(out_dir: str | Path) -> dict[str, int]:
    total: dict[str, int] = {}
    for f in sorted(Path(out_dir).glob("pacing-*.json")):
        for k, v in json.loads(f.read_text(encoding="utf-8")).items():
            total[k] = total.get(k, 0) + int(v)
    return total


def rng_for(tag: str) -> random.Random:
    # Pacing phases and the ATP/poll mix only; payload contents come from the scenario's streams.
    return random.Random(tag)
