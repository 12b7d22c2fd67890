"""Reconciliation: demand log + every system's ledger -> one outcome per demand order.

The ledgers are the oracle (DESIGN.md, "Ledgers are the oracle"): nothing here looks inside the
integration, so the same classification applies to the reference integration and to a black box.
The only thing the integration contributes is its exception lists (DLQ / business exceptions),
which tell "gave up and said so" apart from "lost without a trace".

Inputs (all DataFrames, so a notebook can rebuild them from a run folder):

- ``entries``: one row per ledger entry, the columns of ``mocks.ledger.Entry`` (``data`` a dict or a
  JSON string, as stored in ``events.parquet``): a DataFrame, or a ``sim.tables.TableFile`` read a
  chunk at a time (a virtual run's events.parquet, never whole in memory);
- ``demand``: the demand log, derived from the CRM ``order.submitted`` entries by ``demand_log``;
- ``exceptions``: ``crm_id, category (business|technical), reason`` (optional ``t``);
- ``end``: simulated time at which the run stopped (after draining).

Outcome precedence (the first rule that matches wins; documented in the orders table's order):

1. ``duplicate``     any system created the order more than once (ERP, WMS or carrier);
2. ``mismatched``    ERP or WMS lines (in EA) differ from the demand, or CRM's final status is
                     inconsistent with the world (regressed, or claims Shipped/Delivered with no
                     matching carrier event);
3. ``completed``     exactly once in ERP, WMS and carrier, delivered, and CRM closed ``Delivered``;
4. ``credit_hold``   ERP put it on credit hold and it never reached the warehouse (legitimate);
5. ``backordered``   ERP backordered it and had not released it by the end (legitimate waiting);
6. ``dead_lettered_business`` / ``dead_lettered_technical``
                     the integration gave up and said so (an order in both lists counts as business);
7. ``in_transit``    booked exactly once with the carrier, not yet delivered when the drain ended,
                     and CRM up to date with what the carrier has done (``Shipped`` once picked up):
                     the world still has it (a weekend pickup, a long transit); not fallout;
8. ``stuck``         progressed somewhere (any ledger activity past the CRM submit) but unfinished;
9. ``lost``          never reached ERP, left no trace anywhere, and is not in an exception list.

Legitimate outcomes (``completed``, ``credit_hold``, ``backordered``, ``in_transit``) are not fallout;
the rest is.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import pandas as pd

from sim.tables import Table, chunks

OUTCOMES = (
    "duplicate",
    "mismatched",
    "completed",
    "credit_hold",
    "backordered",
    "dead_lettered_business",
    "dead_lettered_technical",
    "in_transit",
    "stuck",
    "lost",
)
LEGITIMATE = ("completed", "credit_hold", "backordered", "in_transit")
FALLOUT = tuple(o for o in OUTCOMES if o not in LEGITIMATE)

ENTRY_COLUMNS = ("seq", "t", "system", "kind", "entity", "ref", "correlation_id", "idempotency_key", "data")
DEMAND_COLUMNS = ("crm_id", "key", "t_submitted", "customer_no", "requested_t", "lines")
EXCEPTION_COLUMNS = ("crm_id", "category", "reason")

# Progress of a CRM order; a final status ranked below the best one reached is a regression.
# Exception and Cancelled are side states, never a regression target on their own.
_CRM_RANK = {
    "Submitted": 0,
    "Booked": 1,
    "Backordered": 1,
    "Credit Hold": 1,
    "In Fulfilment": 2,
    "Shipped": 3,
    "Delivered": 4,
}

# (system, kind) of the create entry counted per system.
_CREATES = {
    ("erp", "sales_order.created"): "erp_orders",
    ("wms", "fulfilment.created"): "wms_fulfilments",
    ("carrier", "shipment.created"): "carrier_shipments",
}
_MILESTONE_KINDS = {
    ("erp", "sales_order.created"): "t_erp_accepted",
    ("wms", "fulfilment.ready_to_ship"): "t_ready_to_ship",
    ("carrier", "shipment.delivered"): "t_delivered",
}


# --------------------------------------------------------------------------------------- inputs


def entries_frame(entries: Iterable[Any]) -> pd.DataFrame:
    """Ledger entries (``Entry`` objects or dicts) -> DataFrame sorted by (t, system, seq)."""
    # Attribute access, not Entry.to_dict: dataclasses.asdict deep-copies every data dict, which
    # costs seconds on a quarter's ledgers.
    # One list per column (no per-row tuple, no object matrix for pandas to split again).
    entries = list(entries)
    if all(not isinstance(e, dict) for e in entries):
        cols = {c: [getattr(e, c) for e in entries] for c in ENTRY_COLUMNS}
    else:
        cols = {c: [e[c] if isinstance(e, dict) else getattr(e, c) for e in entries] for c in ENTRY_COLUMNS}
    df = pd.DataFrame(cols, columns=list(ENTRY_COLUMNS))
    if df.empty:
        return df
    return df.sort_values(["t", "system", "seq"], kind="stable").reset_index(drop=True)


def _data(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    if isinstance(v, str) and v:
        # orjson parses the same values as json (a virtual run reconciles from this text), 4x
        # faster; what it refuses and json accepts (NaN, Infinity, huge ints, lone surrogates)
        # goes to json.
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return json.loads(v)
    return {}


def _norm_lines(lines: Any) -> dict[str, float]:
    """[[sku, qty_each, ...], ...] -> {sku: total EA}; a SKU on two lines counts once, summed."""
    out: dict[str, float] = defaultdict(float)
    for line in lines or ():
        if isinstance(line, dict):
            sku, qty = line.get("sku"), line.get("qty_each", line.get("qty"))
        else:
            sku, qty = line[0], line[1]
        out[str(sku)] += float(qty)
    return dict(out)


def demand_log(entries: Table) -> pd.DataFrame:
    """The demand the harness caused: CRM ``order.submitted`` entries (ref = CRM Order Id).

    The CRM core records ``data``: ``key`` (harness id / PoNumber), ``customer_no``, ``requested_t``
    and ``lines`` normalised to ``[[sku, qty_each]]``.
    """
    rows = []
    for part in chunks(entries, ("system", "kind", "ref", "t", "data")) if not entries.empty else ():
        sub = part[(part["system"] == "crm") & (part["kind"] == "order.submitted")]
        for ref, t, data in zip(sub["ref"], sub["t"], sub["data"], strict=True):
            d = _data(data)
            rows.append(
                {
                    "crm_id": ref,
                    "key": d.get("key") or d.get("po_number") or d.get("PoNumber"),
                    "t_submitted": float(t),
                    "customer_no": d.get("customer_no") or d.get("ErpCustomerNo__c"),
                    "requested_t": d.get("requested_t"),
                    "lines": [list(x) for x in (d.get("lines") or [])],
                }
            )
    df = pd.DataFrame(rows, columns=list(DEMAND_COLUMNS))
    df["requested_t"] = pd.to_numeric(df["requested_t"], errors="coerce")
    return df.drop_duplicates("crm_id", keep="first").reset_index(drop=True)


def exceptions_frame(rows: Iterable[dict[str, Any]] = ()) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    for c in EXCEPTION_COLUMNS:
        if c not in df.columns:
            df[c] = pd.Series(dtype=object)
    return df


# --------------------------------------------------------------------------------------- core


class _Acc:
    """Everything the ledgers say about one CRM order."""

    __slots__ = (
        "counts",
        "t",
        "erp_lines",
        "wms_lines",
        "reserved",
        "statuses",
        "backordered_t",
        "released_t",
        "credit_hold_t",
        "cancelled",
        "picked_up",
        "carrier_exception",
        "last_t",
    )

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.t: dict[str, float] = {}
        self.erp_lines: dict[str, float] | None = None
        self.wms_lines: dict[str, float] | None = None
        self.reserved: float | None = None
        self.statuses: list[str] = []
        self.backordered_t: float | None = None
        self.released_t: float | None = None
        self.credit_hold_t: float | None = None
        self.cancelled = False
        self.picked_up = False
        self.carrier_exception = False
        self.last_t: float | None = None


def _reserved_ea(d: dict[str, Any], ordered: float) -> float | None:
    """EA reserved at order time, from whatever the ERP recorded on create."""
    if d.get("status") == "CREDIT_HOLD":
        return 0.0  # nothing is reserved for an order on hold
    if "qty_reserved" in d:
        return float(d["qty_reserved"])
    if "reserved" in d:
        r = d["reserved"]
        return float(sum(_norm_lines(r).values())) if isinstance(r, list) else float(r)
    if "backordered" in d:
        b = d["backordered"]
        return ordered - (float(sum(_norm_lines(b).values())) if isinstance(b, list) else float(b))
    return None


def _rows(df: Table, names: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """The named columns' values row by row, as ``tolist`` gives them, a chunk at a time: the
    whole of an events frame as Python objects (a str per cell) was ~8 KB per order at once."""
    for part in chunks(df, names):
        yield from zip(*(part[c].tolist() for c in names), strict=True)


def _scan(entries: Table, known: set[str], end: float) -> tuple[dict[str, _Acc], int]:
    acc: dict[str, _Acc] = defaultdict(_Acc)
    orphans = 0
    if entries.empty:
        return acc, 0
    for t, system, kind, ref, data in _rows(entries, ("t", "system", "kind", "ref", "data")):
        if ref is None or (isinstance(ref, float) and pd.isna(ref)) or t > end:
            continue
        if ref not in known:
            if (system, kind) in _CREATES:
                orphans += 1  # a create carrying an id the harness never issued: a mapping error
            continue
        a = acc[ref]
        sk = (system, kind)
        if not (system == "crm" and kind == "order.submitted"):
            a.last_t = t if a.last_t is None else max(a.last_t, t)
        if sk in _CREATES:
            a.counts[_CREATES[sk]] += 1
        if sk in _MILESTONE_KINDS:
            a.t.setdefault(_MILESTONE_KINDS[sk], t)
        if system == "erp":
            if kind == "sales_order.created" and a.erp_lines is None:
                d = _data(data)
                a.erp_lines = _norm_lines(d.get("lines"))
                a.reserved = _reserved_ea(d, sum(a.erp_lines.values()))
            elif kind == "sales_order.backordered" and a.backordered_t is None:
                a.backordered_t = t
                d = _data(data)
                if a.reserved is None and a.erp_lines is not None:
                    ordered = sum(a.erp_lines.values())
                    if "lines" in d:  # [[sku, qty backordered]]
                        a.reserved = ordered - sum(_norm_lines(d["lines"]).values())
                    else:
                        a.reserved = _reserved_ea(d, ordered)
                    if a.reserved is None:
                        a.reserved = 0.0
            elif kind == "sales_order.released":
                a.released_t = t
            elif kind == "sales_order.credit_hold" and a.credit_hold_t is None:
                a.credit_hold_t = t
            elif kind == "sales_order.cancelled":
                a.cancelled = True
        elif system == "wms":
            if kind == "fulfilment.created" and a.wms_lines is None:
                a.wms_lines = _norm_lines(_data(data).get("lines"))
        elif system == "carrier":
            if kind == "shipment.picked_up":
                a.picked_up = True
            elif kind == "shipment.exception":
                a.carrier_exception = True
        elif system == "crm" and kind == "order.status_changed":
            status = _data(data).get("status")
            if status is not None:
                a.statuses.append(str(status))
                if status == "Delivered":
                    a.t.setdefault("t_crm_closed", t)
    return acc, orphans


def _lines_equal(a: dict[str, float], b: dict[str, float]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(abs(a[k] - b[k]) < 1e-6 for k in a)


def _crm_inconsistent(a: _Acc) -> bool:
    if not a.statuses:
        return False
    final = a.statuses[-1]
    ranks = [_CRM_RANK[s] for s in a.statuses if s in _CRM_RANK]
    if final in _CRM_RANK and ranks and _CRM_RANK[final] < max(ranks):
        return True  # regressed, e.g. a late "Shipped" overwrote "Delivered"
    if final == "Delivered" and "t_delivered" not in a.t:
        return True
    return final == "Shipped" and not a.picked_up and "t_delivered" not in a.t


def _crm_caught_up(a: _Acc, crm_status: str) -> bool:
    """CRM shows what the carrier has done so far: ``Shipped`` once picked up, else still in fulfilment."""
    if a.picked_up:
        return crm_status == "Shipped"
    return crm_status in ("In Fulfilment", "Shipped")


def reconcile(
    entries: Table,
    demand: pd.DataFrame | None = None,
    exceptions: pd.DataFrame | None = None,
    end: float = float("inf"),
) -> pd.DataFrame:
    """One row per demand order with milestone times, per-system counts and the ``outcome``."""
    if demand is None:
        demand = demand_log(entries)
    exc = exceptions if exceptions is not None else exceptions_frame()
    dlq: dict[str, tuple[str, str]] = {}
    exc_t: dict[str, float] = {}
    has_t = "t" in exc.columns
    for row in exc.itertuples(index=False):
        cid, cat, reason = row.crm_id, str(row.category), str(row.reason)
        if cid not in dlq or (cat == "business" and dlq[cid][0] != "business"):
            dlq[cid] = (cat, reason)
        if has_t and row.t is not None and not pd.isna(row.t):
            exc_t[cid] = max(exc_t.get(cid, float(row.t)), float(row.t))

    known = set(demand["crm_id"])
    acc, orphans = _scan(entries, known, end)

    # One list per column, not a dict per order: a 24-key dict is ~1.3 KB of C heap, and a
    # quarter's million of them sat under the frame being built.
    cols: dict[str, list[Any]] = {c: [] for c in ORDER_COLUMNS}
    add = [cols[c].append for c in ORDER_COLUMNS]
    for d in demand.itertuples(index=False):
        a = acc.get(d.crm_id) or _Acc()
        want = _norm_lines(d.lines)
        ordered = float(sum(want.values()))
        lines_match = None
        if a.erp_lines is not None or a.wms_lines is not None:
            lines_match = all(x is None or _lines_equal(x, want) for x in (a.erp_lines, a.wms_lines))
        crm_status = a.statuses[-1] if a.statuses else "Submitted"
        n_erp, n_wms, n_car = (a.counts[k] for k in ("erp_orders", "wms_fulfilments", "carrier_shipments"))
        released = a.released_t is not None
        cat = dlq.get(d.crm_id)

        if max(n_erp, n_wms, n_car) > 1:
            outcome = "duplicate"
        elif lines_match is False or _crm_inconsistent(a):
            outcome = "mismatched"
        elif n_erp == n_wms == n_car == 1 and "t_delivered" in a.t and crm_status == "Delivered":
            outcome = "completed"
        elif a.credit_hold_t is not None and n_wms == 0:
            outcome = "credit_hold"
        elif a.backordered_t is not None and not released and n_wms == 0:
            outcome = "backordered"
        elif cat is not None:
            outcome = "dead_lettered_business" if cat[0] == "business" else "dead_lettered_technical"
        elif n_erp == n_wms == n_car == 1 and "t_delivered" not in a.t and _crm_caught_up(a, crm_status):
            outcome = "in_transit"
        elif n_erp > 0 or a.last_t is not None:
            outcome = "stuck"
        else:
            outcome = "lost"

        # When the order left the integration's hands: at the warehouse, on a legitimate hold, when
        # it was dead-lettered (handed to people), or -- duplicated/mismatched -- at its last sign of
        # life. Lost and stuck orders never settle: they stay work in progress, which is what they
        # are. Feeds the backlog curve and fault-window recovery in the KPIs.
        hold_t = min((x for x in (a.credit_hold_t, a.backordered_t) if x is not None), default=None)
        settled = [x for x in (a.t.get("t_ready_to_ship"), hold_t) if x is not None]
        t_settled: float | None = min(settled) if settled else None
        if t_settled is None and outcome in FALLOUT and outcome not in ("lost", "stuck"):
            t_settled = max(x for x in (a.last_t, exc_t.get(d.crm_id), float(d.t_submitted)) if x is not None)
        for put, v in zip(
            add,
            (
                d.crm_id,  # crm_id
                d.key,  # key
                d.customer_no,  # customer_no
                float(d.t_submitted),  # t_submitted
                d.requested_t,  # requested_t
                a.t.get("t_erp_accepted"),  # t_erp_accepted
                a.t.get("t_ready_to_ship"),  # t_ready_to_ship
                a.t.get("t_delivered"),  # t_delivered
                a.t.get("t_crm_closed"),  # t_crm_closed
                t_settled,  # t_settled
                n_erp,  # erp_orders
                n_wms,  # wms_fulfilments
                n_car,  # carrier_shipments
                crm_status,  # crm_status
                lines_match,  # lines_match
                ordered,  # qty_ordered
                a.reserved if a.reserved is not None else (ordered if n_erp else None),  # qty_reserved
                a.backordered_t is not None,  # backordered
                released,  # released
                a.credit_hold_t is not None,  # credit_hold
                a.carrier_exception,  # carrier_exception
                cat[0] if cat else None,  # dlq_category
                cat[1] if cat else None,  # dlq_reason
                outcome,  # outcome
            ),
            strict=True,
        ):
            put(v)
    # (No order at all: as the row path built it, object columns; empty lists would infer float.)
    df = pd.DataFrame(cols if cols["crm_id"] else [], columns=ORDER_COLUMNS)
    del cols, add
    for c in ORDER_COLUMNS:
        if c.startswith("t_") or c in ("requested_t", "qty_ordered", "qty_reserved"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        elif c in ("erp_orders", "wms_fulfilments", "carrier_shipments"):
            df[c] = df[c].astype("int64")
    df.attrs["orphans"] = orphans
    return df


ORDER_COLUMNS = [
    "crm_id",
    "key",
    "customer_no",
    "t_submitted",
    "requested_t",
    "t_erp_accepted",
    "t_ready_to_ship",
    "t_delivered",
    "t_crm_closed",
    "t_settled",
    "erp_orders",
    "wms_fulfilments",
    "carrier_shipments",
    "crm_status",
    "lines_match",
    "qty_ordered",
    "qty_reserved",
    "backordered",
    "released",
    "credit_hold",
    "carrier_exception",
    "dlq_category",
    "dlq_reason",
    "outcome",
]


def outcome_counts(orders: pd.DataFrame) -> dict[str, int]:
    vc = orders["outcome"].value_counts() if len(orders) else pd.Series(dtype=int)
    return {o: int(vc.get(o, 0)) for o in OUTCOMES}


def orphan_creates(entries: pd.DataFrame, demand: pd.DataFrame) -> int:
    """Create entries whose ref is not a CRM order the harness submitted (mapping mistakes)."""
    if entries.empty:
        return 0
    creates = entries[[(s, k) in _CREATES for s, k in zip(entries["system"], entries["kind"], strict=True)]]
    return int((~creates["ref"].isin(set(demand["crm_id"]))).sum())
