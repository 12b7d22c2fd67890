"""Reconciliation: demand log + every system's ledger -> one outcome per demand order.

The ledgers are the oracle (DESIGN.md, "Ledgers are the oracle"): nothing here looks inside the
integration, so the same classification applies to the reference integration and to a black box.
The only thing the integration contributes is its exception lists (DLQ / business exceptions),
which tell "gave up and said so" apart from "lost without a trace".

Inputs (all DataFrames, so a notebook can rebuild them from a run folder):

- ``entries``: one row per ledger entry, the columns of ``mocks.ledger.Entry`` (``data`` a dict or a
  JSON string, as stored in ``events.parquet``): a DataFrame, or a ``sim.tables.TableFile`` read a
  chunk at a time (a virtual run's events.parquet, never whole in memory);
- ``demand``: the demand log, derived from the CRM ``order.submitted`` entries by ``demand_log``
  (not given, reconciliation reads those entries into its own columns: no frame of line lists);
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
import marshal
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sim.tables import Table, TableFile, chunks, release_memory

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


# Per-order state as columns (issue #5). A quarter's reconciliation held a Counter, a dict of times,
# line dicts and a status list per order (~2.5 KB) beside the demand log's line lists (~1.8 KB): at
# a million orders ~4 GB. Here an order is a row number, what the ledgers say about it a scalar in a
# column, and the demand's lines are compared as the ERP and WMS creates arrive.

# Bits of ``_Orders.flags``: which optional facts an order has (None before), and its booleans.
_T_ERP, _T_READY, _T_DELIVERED, _T_CLOSED = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_BACKORDERED, _RELEASED, _CREDIT_HOLD, _LAST = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_RESERVED, _ERP_LINES, _WMS_LINES = 1 << 8, 1 << 9, 1 << 10
_ERP_DIFFERS, _WMS_DIFFERS = 1 << 11, 1 << 12  # the first ERP / WMS lines are not the demand's
_CANCELLED, _PICKED_UP, _CARRIER_EXCEPTION, _STATUS = 1 << 13, 1 << 14, 1 << 15, 1 << 16

_NAN = float("nan")
_TEXT = frozenset((str, type(None)))


class _Demand:
    """The demand as columns, a row per demand row (``demand_log``'s, in its order)."""

    def __init__(self) -> None:
        self.index: dict[Any, int] = {}  # crm_id -> the row holding that order's state
        self.crm_id: list[Any] = []
        self.key: list[Any] = []
        self.customer_no: list[Any] = []
        self.t_submitted = array("d")
        self.requested_t: array[float] | list[Any] = array("d")
        self.ordered = array("d")  # EA: the sum of the demand's lines
        # The demand's lines ({sku: EA}) marshalled end to end and read back only where a create is
        # compared with them: as dicts (or the log's lists) they were ~0.6-1.8 KB an order.
        self.lines = bytearray()
        self.ends = array("q")
        # A caller's demand frame may give an order twice: then ``rows[j]`` is the row holding the
        # order's state, and such orders keep their ERP and WMS lines for each row to compare.
        self.rows: list[int] | None = None

    def add(self, crm_id: Any, key: Any, customer_no: Any, t: float, want: dict[str, float]) -> None:
        self.crm_id.append(crm_id)
        self.key.append(key)
        self.customer_no.append(customer_no)
        self.t_submitted.append(t)
        self.ordered.append(float(sum(want.values())))
        self.lines += marshal.dumps(want)
        self.ends.append(len(self.lines))

    def want(self, j: int) -> dict[str, float]:
        return marshal.loads(memoryview(self.lines)[self.ends[j - 1] if j else 0 : self.ends[j]])


def _submits(entries: Table) -> Iterator[tuple[list[Any], list[Any], list[Any]]]:
    """The CRM ``order.submitted`` rows' ref, t and data, a chunk at a time, as ``demand_log``
    reads them (a missing ref or data is NaN there and None here: both are "not a str"). From a
    file the rows are picked in Arrow: only these become Python objects, not every row's JSON."""
    if isinstance(entries, TableFile):
        for batch in entries.batches(("system", "kind", "ref", "t", "data")):
            crm = pc.and_(pc.equal(batch.column("system"), "crm"), pc.equal(batch.column("kind"), "order.submitted"))
            sub = batch.filter(crm)  # a null system or kind is dropped, as False was
            t = sub.column("t").to_numpy(zero_copy_only=False).tolist()  # (a null t: NaN, as pandas gives)
            yield sub.column("ref").to_pylist(), t, sub.column("data").to_pylist()
        return
    for part in chunks(entries, ("system", "kind", "ref", "t", "data")):
        sub = part[(part["system"] == "crm") & (part["kind"] == "order.submitted")]
        yield sub["ref"].tolist(), sub["t"].tolist(), sub["data"].tolist()


def _demand_of(entries: Table) -> _Demand | None:
    """``demand_log(entries)`` read straight into columns, never a frame of line lists. None where
    the columns would not give exactly what that frame gives (an order submitted twice, an id or a
    value of another type than a virtual run records): the caller then takes the frame."""
    dem = _Demand()
    requested = array("d")
    customers: dict[str | None, str | None] = {}  # one str per customer, not per order
    for refs, times, datas in _submits(entries):
        for ref, t, data in zip(refs, times, datas, strict=True):
            d = _data(data)
            key = d.get("key") or d.get("po_number") or d.get("PoNumber")
            customer_no = d.get("customer_no") or d.get("ErpCustomerNo__c")
            req = d.get("requested_t")
            lines = [list(x) for x in (d.get("lines") or [])]
            if type(ref) is not str or ref in dem.index or not _TEXT.issuperset((type(key), type(customer_no))):
                return None
            if req is not None and type(req) is not float and not (type(req) is int and -(2**63) <= req < 2**63):
                return None  # (an int64 column became float64 as these floats do)
            dem.index[ref] = len(dem.crm_id)
            dem.add(ref, key, customers.setdefault(customer_no, customer_no), float(t), _norm_lines(lines))
            requested.append(_NAN if req is None else float(req))
    dem.requested_t = requested
    return dem


def _demand_from(demand: pd.DataFrame) -> _Demand:
    """A demand frame (``demand_log``'s columns) as columns."""
    dem = _Demand()
    rows: list[int] = []
    requested: list[Any] = []
    for d in demand.itertuples(index=False):
        rows.append(dem.index.setdefault(d.crm_id, len(dem.crm_id)))
        dem.add(d.crm_id, d.key, d.customer_no, float(d.t_submitted), _norm_lines(d.lines))
        requested.append(d.requested_t)
    dem.requested_t = requested
    if len(dem.index) < len(rows):
        dem.rows = rows
    return dem


class _Orders:
    """Everything the ledgers say about each CRM order: a column per fact, indexed by the demand
    row holding the order (~100 B an order)."""

    def __init__(self, n: int) -> None:
        z = bytes(8 * n)
        self.flags = array("q", z)
        self.t_erp, self.t_ready, self.t_delivered, self.t_closed = (array("d", z) for _ in range(4))
        self.backordered_t, self.credit_hold_t, self.last_t = (array("d", z) for _ in range(3))
        self.reserved, self.erp_ordered = array("d", z), array("d", z)
        self.n_erp, self.n_wms, self.n_car = (array("q", z) for _ in range(3))
        self.status = array("q", z)  # the last CRM status, as its index in ``_scan``'s names
        self.rank = array("q", [-1]) * n  # the best CRM rank reached (-1: none)
        # The ERP and WMS lines of an order the demand gives more than once: {row: [erp, wms]}.
        self.lines: dict[int, list[dict[str, float] | None]] = {}


# The (system, kind) pairs whose ``data`` the scan reads; other rows' JSON is never decoded.
_READS_DATA = frozenset(
    (
        ("erp", "sales_order.created"),
        ("erp", "sales_order.backordered"),
        ("wms", "fulfilment.created"),
        ("crm", "order.status_changed"),
    )
)


def _located(entries: Table, index: dict[Any, int], end: float) -> Iterator[tuple[Any, str, str, int, Any]]:
    """The entries the scan folds, in order: ``(t, system, kind, i, data)`` with ``i`` the row of
    the order the entry's ref names (-1: no demand order), leaving out entries without a ref and
    entries after ``end``. ``data`` is given where the scan reads it (``_READS_DATA``)."""
    if not isinstance(entries, TableFile):
        for t, system, kind, ref, data in _rows(entries, ("t", "system", "kind", "ref", "data")):
            if ref is None or (isinstance(ref, float) and pd.isna(ref)) or t > end:
                continue
            yield t, system, kind, index.get(ref, -1), data
        return
    # From a file, a chunk's columns are codes in Arrow and NumPy: each distinct ref, system and
    # kind of a chunk becomes a Python str once (not once a row), and only the rows whose JSON the
    # scan reads have it decoded. Per row that were five objects, a str of ~300 B among them.
    for batch in entries.batches(("t", "system", "kind", "ref", "data")):
        ts = batch.column("t").to_numpy(zero_copy_only=False)
        refs = batch.column("ref").dictionary_encode()
        known = np.array([index.get(r, -1) for r in refs.dictionary.to_pylist()] + [-1], dtype=np.int64)
        codes = refs.indices.fill_null(len(refs.dictionary)).to_numpy(zero_copy_only=False)
        at = known[codes]
        keep = refs.indices.is_valid().to_numpy(zero_copy_only=False) & ~(ts > end)
        system, s_names = _codes(batch.column("system"))
        kind, k_names = _codes(batch.column("kind"))
        reads = np.array([[(s, k) in _READS_DATA for k in k_names] for s in s_names], dtype=bool)
        wanted = reads[system, kind] & keep
        data: list[Any] = [None] * len(batch)
        rows = np.flatnonzero(wanted)
        for r, d in zip(rows.tolist(), batch.column("data").take(pa.array(rows)).to_pylist(), strict=True):
            data[r] = d
        rows = np.flatnonzero(keep)
        yield from zip(
            ts[rows].tolist(),
            [s_names[c] for c in system[rows].tolist()],
            [k_names[c] for c in kind[rows].tolist()],
            at[rows].tolist(),
            [data[r] for r in rows.tolist()],
            strict=True,
        )


def _codes(column: pa.Array) -> tuple[np.ndarray, list[Any]]:
    """A text column as codes into its distinct values (a null is its own value, None: it is
    never one of the names the scan compares with, as NaN was not)."""
    enc = column.dictionary_encode()
    names = [*enc.dictionary.to_pylist(), None]
    return enc.indices.fill_null(len(names) - 1).to_numpy(zero_copy_only=False), names


def _scan(entries: Table, dem: _Demand, end: float) -> tuple[_Orders, list[str], int]:
    """The ledgers' entries (time order) folded into ``_Orders``; also the CRM statuses by code
    and the creates of unknown orders."""
    o = _Orders(len(dem.crm_id))
    names: list[str] = []
    codes: dict[str, int] = {}
    orphans = 0
    if entries.empty:
        return o, names, 0
    flags, last_t = o.flags, o.last_t
    repeated = {r for r, k in Counter(dem.rows).items() if k > 1} if dem.rows is not None else set()
    for t, system, kind, i, data in _located(entries, dem.index, end):
        if i < 0:
            if (system, kind) in _CREATES:
                orphans += 1  # a create carrying an id the harness never issued: a mapping error
            continue
        f = flags[i]
        if not (system == "crm" and kind == "order.submitted"):
            last_t[i] = max(last_t[i], t) if f & _LAST else t
            f |= _LAST
        if system == "erp":
            if kind == "sales_order.created":
                o.n_erp[i] += 1
                if not f & _T_ERP:
                    o.t_erp[i] = t
                    f |= _T_ERP
                if not f & _ERP_LINES:
                    d = _data(data)
                    lines = _norm_lines(d.get("lines"))
                    ordered = sum(lines.values())
                    o.erp_ordered[i] = ordered
                    reserved = _reserved_ea(d, ordered)
                    if reserved is not None:
                        o.reserved[i] = reserved
                        f |= _RESERVED
                    f |= _ERP_LINES
                    if not _lines_equal(lines, dem.want(i)):
                        f |= _ERP_DIFFERS
                    if i in repeated:
                        o.lines.setdefault(i, [None, None])[0] = lines
            elif kind == "sales_order.backordered":
                if not f & _BACKORDERED:
                    o.backordered_t[i] = t
                    f |= _BACKORDERED
                    d = _data(data)
                    if not f & _RESERVED and f & _ERP_LINES:
                        ordered = o.erp_ordered[i]
                        if "lines" in d:  # [[sku, qty backordered]]
                            reserved = ordered - sum(_norm_lines(d["lines"]).values())
                        else:
                            reserved = _reserved_ea(d, ordered)
                        o.reserved[i] = 0.0 if reserved is None else reserved
                        f |= _RESERVED
            elif kind == "sales_order.released":
                f |= _RELEASED
            elif kind == "sales_order.credit_hold":
                if not f & _CREDIT_HOLD:
                    o.credit_hold_t[i] = t
                    f |= _CREDIT_HOLD
            elif kind == "sales_order.cancelled":
                f |= _CANCELLED
        elif system == "wms":
            if kind == "fulfilment.created":
                o.n_wms[i] += 1
                if not f & _WMS_LINES:
                    lines = _norm_lines(_data(data).get("lines"))
                    f |= _WMS_LINES
                    if not _lines_equal(lines, dem.want(i)):
                        f |= _WMS_DIFFERS
                    if i in repeated:
                        o.lines.setdefault(i, [None, None])[1] = lines
            elif kind == "fulfilment.ready_to_ship" and not f & _T_READY:
                o.t_ready[i] = t
                f |= _T_READY
        elif system == "carrier":
            if kind == "shipment.created":
                o.n_car[i] += 1
            elif kind == "shipment.picked_up":
                f |= _PICKED_UP
            elif kind == "shipment.exception":
                f |= _CARRIER_EXCEPTION
            elif kind == "shipment.delivered" and not f & _T_DELIVERED:
                o.t_delivered[i] = t
                f |= _T_DELIVERED
        elif system == "crm" and kind == "order.status_changed":
            status = _data(data).get("status")
            if status is not None:
                s = str(status)
                c = codes.get(s)
                if c is None:
                    c = codes[s] = len(names)
                    names.append(s)
                o.status[i] = c
                f |= _STATUS
                r = _CRM_RANK.get(s, -1)
                if r > o.rank[i]:
                    o.rank[i] = r
                if status == "Delivered" and not f & _T_CLOSED:
                    o.t_closed[i] = t
                    f |= _T_CLOSED
        flags[i] = f
    return o, names, orphans


def _lines_equal(a: dict[str, float], b: dict[str, float]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(abs(a[k] - b[k]) < 1e-6 for k in a)


def _crm_inconsistent(f: int, final: str, best: int) -> bool:
    """``final``: the last CRM status; ``best``: the best rank among all its statuses (-1: none)."""
    if not f & _STATUS:
        return False
    rank = _CRM_RANK.get(final)
    if rank is not None and best >= 0 and rank < best:
        return True  # regressed, e.g. a late "Shipped" overwrote "Delivered"
    if final == "Delivered" and not f & _T_DELIVERED:
        return True
    return final == "Shipped" and not f & _PICKED_UP and not f & _T_DELIVERED


def _crm_caught_up(f: int, crm_status: str) -> bool:
    """CRM shows what the carrier has done so far: ``Shipped`` once picked up, else still in fulfilment."""
    if f & _PICKED_UP:
        return crm_status == "Shipped"
    return crm_status in ("In Fulfilment", "Shipped")


def reconcile(
    entries: Table,
    demand: pd.DataFrame | None = None,
    exceptions: pd.DataFrame | None = None,
    end: float = float("inf"),
) -> pd.DataFrame:
    """One row per demand order with milestone times, per-system counts and the ``outcome``."""
    exc = exceptions if exceptions is not None else exceptions_frame()
    dlq: dict[Any, tuple[str, str]] = {}
    exc_t: dict[Any, float] = {}
    has_t = "t" in exc.columns
    for row in exc.itertuples(index=False):
        cid, cat, reason = row.crm_id, str(row.category), str(row.reason)
        if cid not in dlq or (cat == "business" and dlq[cid][0] != "business"):
            dlq[cid] = (cat, reason)
        if has_t and row.t is not None and not pd.isna(row.t):
            exc_t[cid] = max(exc_t.get(cid, float(row.t)), float(row.t))

    dem = _demand_of(entries) if demand is None and not entries.empty else None
    if dem is None:
        dem = _demand_from(demand if demand is not None else demand_log(entries))
    release_memory()
    o, names, orphans = _scan(entries, dem, end)
    release_memory()
    dem.index = {}
    if dem.rows is None:  # every order compared its lines in the scan
        dem.lines, dem.ends = bytearray(), array("q")

    n = len(dem.crm_id)
    t_settled, qty_reserved = array("d", bytes(8 * n)), array("d", bytes(8 * n))
    crm_status: list[str] = [""] * n
    lines_match: list[bool | None] = [None] * n
    dlq_category: list[str | None] = [None] * n
    dlq_reason: list[str | None] = [None] * n
    outcome: list[str] = [""] * n
    flags, rows = o.flags, dem.rows
    for j, crm_id in enumerate(dem.crm_id):
        i = j if rows is None else rows[j]
        f = flags[i]
        ordered = dem.ordered[j]
        lines_match_: bool | None = None
        if f & (_ERP_LINES | _WMS_LINES):
            if i in o.lines:  # an order given more than once: each row compares its own lines
                want = dem.want(j)
                lines_match_ = all(x is None or _lines_equal(x, want) for x in o.lines[i])
            else:
                lines_match_ = not f & (_ERP_DIFFERS | _WMS_DIFFERS)
        final = names[o.status[i]] if f & _STATUS else "Submitted"
        n_erp, n_wms, n_car = o.n_erp[i], o.n_wms[i], o.n_car[i]
        delivered = f & _T_DELIVERED
        released = f & _RELEASED
        cat = dlq.get(crm_id)

        if max(n_erp, n_wms, n_car) > 1:
            out = "duplicate"
        elif lines_match_ is False or _crm_inconsistent(f, final, o.rank[i]):
            out = "mismatched"
        elif n_erp == n_wms == n_car == 1 and delivered and final == "Delivered":
            out = "completed"
        elif f & _CREDIT_HOLD and n_wms == 0:
            out = "credit_hold"
        elif f & _BACKORDERED and not released and n_wms == 0:
            out = "backordered"
        elif cat is not None:
            out = "dead_lettered_business" if cat[0] == "business" else "dead_lettered_technical"
        elif n_erp == n_wms == n_car == 1 and not delivered and _crm_caught_up(f, final):
            out = "in_transit"
        elif n_erp > 0 or f & _LAST:
            out = "stuck"
        else:
            out = "lost"

        # When the order left the integration's hands: at the warehouse, on a legitimate hold, when
        # it was dead-lettered (handed to people), or -- duplicated/mismatched -- at its last sign of
        # life. Lost and stuck orders never settle: they stay work in progress, which is what they
        # are. Feeds the backlog curve and fault-window recovery in the KPIs.
        credit_t = o.credit_hold_t[i] if f & _CREDIT_HOLD else None
        backordered_t = o.backordered_t[i] if f & _BACKORDERED else None
        hold_t = min((x for x in (credit_t, backordered_t) if x is not None), default=None)
        settled = [x for x in (o.t_ready[i] if f & _T_READY else None, hold_t) if x is not None]
        settle: float | None = min(settled) if settled else None
        if settle is None and out in FALLOUT and out not in ("lost", "stuck"):
            last_t = o.last_t[i] if f & _LAST else None
            settle = max(x for x in (last_t, exc_t.get(crm_id), dem.t_submitted[j]) if x is not None)
        t_settled[j] = _NAN if settle is None else settle
        qty_reserved[j] = o.reserved[i] if f & _RESERVED else (ordered if n_erp else _NAN)
        crm_status[j], lines_match[j], outcome[j] = final, lines_match_, out
        if cat:
            dlq_category[j], dlq_reason[j] = cat

    # The frame column by column: numbers straight from the columns (None was NaN there too).
    at = np.arange(n) if rows is None else np.array(rows, dtype=np.int64)
    fl = np.frombuffer(flags, dtype=np.int64)[at]

    def col(a: array, bit: int = 0) -> np.ndarray:
        v = np.frombuffer(a, dtype=np.float64 if a.typecode == "d" else np.int64)[at]
        return np.where(fl & bit, v, np.nan) if bit else v

    def own(a: array) -> np.ndarray:  # a column of the demand's rows, or one computed per row
        return np.frombuffer(a, dtype=np.float64)

    if isinstance(dem.requested_t, array):
        requested_t: Any = own(dem.requested_t)
    else:  # a demand frame's values, through pd.to_numeric below as before
        requested_t = dem.requested_t
    columns: dict[str, Any] = {
        "crm_id": dem.crm_id,
        "key": dem.key,
        "customer_no": dem.customer_no,
        "t_submitted": own(dem.t_submitted),
        "requested_t": requested_t,
        "t_erp_accepted": col(o.t_erp, _T_ERP),
        "t_ready_to_ship": col(o.t_ready, _T_READY),
        "t_delivered": col(o.t_delivered, _T_DELIVERED),
        "t_crm_closed": col(o.t_closed, _T_CLOSED),
        "t_settled": own(t_settled),
        "erp_orders": col(o.n_erp),
        "wms_fulfilments": col(o.n_wms),
        "carrier_shipments": col(o.n_car),
        "crm_status": crm_status,
        "lines_match": lines_match,
        "qty_ordered": own(dem.ordered),
        "qty_reserved": own(qty_reserved),
        "backordered": (fl & _BACKORDERED) != 0,
        "released": (fl & _RELEASED) != 0,
        "credit_hold": (fl & _CREDIT_HOLD) != 0,
        "carrier_exception": (fl & _CARRIER_EXCEPTION) != 0,
        "dlq_category": dlq_category,
        "dlq_reason": dlq_reason,
        "outcome": outcome,
    }
    # (No order at all: as the row path built it, object columns; empty lists would infer float.)
    df = pd.DataFrame(columns if n else [], columns=ORDER_COLUMNS)
    del columns, dem, o
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
