"""KPIs of a run (the ``kpis.json`` of DESIGN.md "Run results") and SLO checks.

Pure: everything comes in as DataFrames and numbers; nothing reads a clock.

Definitions worth pinning down:

- ``fallout_rate``: orders whose outcome is fallout (lost, duplicate, mismatched, stuck,
  dead-lettered) / orders submitted. Credit holds and open backorders are legitimate.
- ``latency_s.<milestone>``: milestone time minus CRM submit time, over the orders that reached it;
  in model time (``lat_<milestone>`` columns, ``sim.modeltime``) where the orders frame has them,
  as a live run's does.
- ``otif``: among orders due by the end of the run (``requested_t <= sim_s``; all orders when no
  requested time is known), the share delivered by ``requested_t`` with lines matching the demand
  and not duplicated.
- ``fill_rate``: EA reserved at order time / EA ordered, over orders ERP accepted.
- ``backorder_rate``: share of ERP-accepted orders that ERP backordered.
- backlog at time t: orders submitted by t that have not yet *settled* (``t_settled`` from
  ``sim.reconcile``: reached WMS ready-to-ship or a legitimate ERP hold, or was dead-lettered;
  lost and stuck orders never settle). It is the integration's work in progress, so a fault that
  loses orders shows as a backlog that never comes back (``recovery_s`` None).
- fault window ``recovery_s``: time after the window ends until the backlog is back within its
  pre-fault level (mean over the hour -- or window length if longer -- before the start, plus a
  tolerance of max(2, 20 %)) and the rolling p95 settle latency of orders submitted in the last
  ``rolling_s`` is within 1.5 x its pre-fault level (+ 5 s). 0 when the fault never pushed them
  above; ``None`` when they never came back before the run ended.
- ``max_backlog``: the largest backlog from the window start to its recovery (or the run end).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.modeltime import milestone_latency
from sim.reconcile import FALLOUT, OUTCOMES, outcome_counts
from sim.scenario import MILESTONES, FaultWindow, Slo
from sim.tables import Table, TableFile, chunks, columns_of

WALL_KEYS = ("wall_s", "orders_per_wall_s")  # differ run to run even with the same seed
PCTS = (("p50", 50), ("p95", 95), ("p99", 99))


def _num(x: float | None) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return float(x)


def latency_stats(values: Iterable[float]) -> dict[str, float | None]:
    a = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if a.size == 0:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    out: dict[str, float | None] = {k: float(np.percentile(a, q)) for k, q in PCTS}
    out["max"] = float(a.max())
    out["n"] = int(a.size)
    return out


def milestone_latencies(orders: pd.DataFrame) -> dict[str, pd.Series]:
    return {m: milestone_latency(orders, m).dropna() for m in MILESTONES}


# --------------------------------------------------------------------------------------- backlog


def backlog_at(orders: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """Orders in flight at each time: submitted and not yet settled (see module docstring)."""
    sub = np.sort(orders["t_submitted"].to_numpy(dtype=float))
    settled = orders["t_settled"].to_numpy(dtype=float)
    settled = np.sort(np.where(np.isnan(settled), np.inf, settled))
    return np.searchsorted(sub, times, side="right") - np.searchsorted(settled, times, side="right")


def rolling_latency(orders: pd.DataFrame, times: np.ndarray, window_s: float, q: float = 95) -> np.ndarray:
    """p95 of settle latency of the orders submitted in (t - window, t]; NaN where there are none."""
    # Only the two columns sorted: the whole frame's copy (its text columns too) was the KPIs'
    # memory peak; the order is the same, decided by ``t_submitted`` alone.
    o = orders[["t_submitted", "t_settled"]].sort_values("t_submitted")
    ts = o["t_submitted"].to_numpy(dtype=float)
    lat = (o["t_settled"] - o["t_submitted"]).to_numpy(dtype=float)
    # Never settled: as slow as can be (a huge finite number: inf would make percentile
    # interpolation produce NaN).
    lat = np.where(np.isnan(lat), 1e18, lat)
    lo = np.searchsorted(ts, times - window_s, side="right")
    hi = np.searchsorted(ts, times, side="right")
    out = np.full(len(times), np.nan)
    for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
        if b > a:
            out[i] = np.percentile(lat[a:b], q)
    return out


def fault_window_kpis(
    orders: pd.DataFrame, window: FaultWindow, end_s: float, step_s: float = 60.0, rolling_s: float = 3600.0
) -> dict[str, Any]:
    start, stop = float(window.start), float(window.end)
    row: dict[str, Any] = {
        "name": window.name,
        "kind": str(window.kind),
        "system": None if window.system is None else str(window.system),
        "start_s": start,
        "end_s": stop,
        "recovery_s": None,
        "max_backlog": 0,
    }
    if orders.empty:
        row["recovery_s"] = 0.0
        return row
    pre_len = max(3600.0, stop - start)
    pre_t = np.arange(max(0.0, start - pre_len), start, step_s) if start > 0 else np.array([0.0])
    pre_backlog = float(backlog_at(orders, pre_t).mean()) if len(pre_t) else 0.0
    pre_lat = rolling_latency(orders, np.array([start]), pre_len)[0]
    backlog_ok = pre_backlog + max(2.0, 0.2 * pre_backlog)
    lat_ok = (pre_lat * 1.5 + 5.0) if not (math.isnan(pre_lat) or math.isinf(pre_lat)) else math.inf

    after = np.arange(stop, max(end_s, stop) + step_s, step_s)
    recovered_at = None
    for lo in range(0, len(after), 256):  # chunks: recovery is usually found early in a long run
        chunk = after[lo : lo + 256]
        ok = backlog_at(orders, chunk) <= backlog_ok
        if not ok.any():
            continue
        lat = rolling_latency(orders, chunk, rolling_s)
        hit = np.flatnonzero(ok & (np.isnan(lat) | (lat <= lat_ok)))
        if hit.size:
            recovered_at = float(chunk[hit[0]])
            break
    row["recovery_s"] = None if recovered_at is None else recovered_at - stop
    span_end = recovered_at if recovered_at is not None else max(end_s, stop)
    span = np.arange(start, span_end + step_s, step_s)
    row["max_backlog"] = int(backlog_at(orders, span).max()) if len(span) else 0
    return row


# --------------------------------------------------------------------------------------- kpis


def _calls_counts(calls: Table | None) -> dict[str, int]:
    if calls is None or calls.empty:
        return {"calls": 0, "retries": 0, "failed_calls": 0}
    # A chunk at a time: a virtual run's calls table is a file, never whole in memory.
    have = columns_of(calls)
    retries = failed = 0
    for part in chunks(calls, [c for c in ("attempt", "outcome", "status") if c in have]):
        retries += int((part["attempt"] > 1).sum()) if "attempt" in have else 0
        if "outcome" in have:
            failed += int((~part["outcome"].astype(str).isin(["ok", "success", "2xx"])).sum())
        elif "status" in have:
            failed += int((pd.to_numeric(part["status"], errors="coerce").fillna(0) >= 400).sum())
    return {"calls": len(calls), "retries": retries, "failed_calls": failed}


def compute_kpis(
    orders: pd.DataFrame,
    *,
    calls: pd.DataFrame | TableFile | None = None,
    faults: Iterable[FaultWindow] = (),
    sim_s: float = 0.0,
    wall_s: float = 0.0,
    counters: Mapping[str, Any] | None = None,
    step_s: float | None = None,
) -> dict[str, Any]:
    """The ``kpis.json`` dictionary (nested where DESIGN.md uses dots: ``latency_s.erp_accepted.p95``)."""
    n = len(orders)
    oc = outcome_counts(orders)
    dlq = oc["dead_lettered_business"] + oc["dead_lettered_technical"]
    fallout = sum(oc[o] for o in FALLOUT)
    # Each cut takes only the columns read from it: a row filter copies every column it is given,
    # and the orders' text columns (ids, keys, statuses) were most of the KPIs' memory.
    cut = orders[["erp_orders", "credit_hold", "backordered", "qty_ordered", "qty_reserved"]] if n else orders
    accepted = cut[orders["erp_orders"] > 0] if n else cut
    on_time_cols = orders[["requested_t", "t_delivered", "lines_match", "outcome"]] if n else orders
    if n and orders["requested_t"].notna().any():
        due = on_time_cols[orders["requested_t"].notna() & (orders["requested_t"] <= sim_s)]
    else:
        due = on_time_cols
    on_time = due["t_delivered"].notna() & (due["t_delivered"] <= due["requested_t"].fillna(np.inf))
    in_full = (due["lines_match"].fillna(False).astype(bool)) & (due["outcome"] != "duplicate")
    # Credit holds reserve nothing by policy, not for want of stock: leave them out of fill rate.
    fillable = accepted[~accepted["credit_hold"].astype(bool)] if len(accepted) else accepted
    ordered = float(fillable["qty_ordered"].sum()) if len(fillable) else 0.0

    counters = dict(counters or {})
    cc = _calls_counts(calls)
    step = step_s if step_s is not None else max(60.0, min(900.0, sim_s / 20_000 if sim_s else 60.0))
    k: dict[str, Any] = {
        "orders_submitted": n,
        "lost": oc["lost"],
        "duplicates": oc["duplicate"],
        "stuck": oc["stuck"],
        "mismatches": oc["mismatched"],
        "dlq": dlq,
        "fallout_rate": fallout / n if n else 0.0,
        "latency_s": {m: latency_stats(s) for m, s in milestone_latencies(orders).items()},
        "otif": float((on_time & in_full).mean()) if len(due) else None,
        "fill_rate": float(fillable["qty_reserved"].fillna(0).sum()) / ordered if ordered else None,
        "backorder_rate": float(accepted["backordered"].astype(bool).mean()) if len(accepted) else None,
        "fault_windows": [fault_window_kpis(orders, f, sim_s, step) for f in faults],
        "retries": int(counters.get("retries", cc["retries"])),
        "breaker_opens": int(counters.get("breaker_opens", 0)),
        "wall_s": float(wall_s),
        "sim_s": float(sim_s),
        "orders_per_wall_s": n / wall_s if wall_s > 0 else None,
        # extras
        "outcomes": oc,
        "completed": oc["completed"],
        "dead_lettered_business": oc["dead_lettered_business"],
        "dead_lettered_technical": oc["dead_lettered_technical"],
        "credit_holds": oc["credit_hold"],
        "backordered_open": oc["backordered"],
        "in_transit": oc["in_transit"],
        "orphan_creates": int(orders.attrs.get("orphans", 0)),
        "calls": cc["calls"],
        "failed_calls": cc["failed_calls"],
    }
    for name, v in counters.items():
        if name not in k and isinstance(v, int | float):
            k[name] = v
    return k


def strip_wall(kpis: Mapping[str, Any]) -> dict[str, Any]:
    """kpis without the wall-clock keys (what must be identical across same-seed runs)."""
    return {k: v for k, v in kpis.items() if k not in WALL_KEYS}


# --------------------------------------------------------------------------------------- SLOs


@dataclass(frozen=True, slots=True)
class Breach:
    name: str
    limit: float
    measured: float | None  # None: never happened (e.g. never recovered)

    def __str__(self) -> str:
        got = "never" if self.measured is None else f"{self.measured:g}"
        return f"{self.name}: {got} > limit {self.limit:g}"


def check_slo(kpis: Mapping[str, Any], slo: Slo) -> list[Breach]:
    """Every SLO the run breaches (empty list: all met)."""
    out: list[Breach] = []
    for name in ("lost", "duplicates", "stuck", "mismatches", "dlq", "fallout_rate"):
        limit = getattr(slo, name)
        if limit is not None and kpis.get(name) is not None and kpis[name] > limit:
            out.append(Breach(name, float(limit), float(kpis[name])))
    for m, pct in slo.latency.items():
        stats = kpis.get("latency_s", {}).get(m, {})
        for p in ("p50", "p95", "p99", "max"):
            limit = getattr(pct, p)
            got = stats.get(p)
            if limit is not None and got is not None and got > limit:
                out.append(Breach(f"latency_s.{m}.{p}", float(limit), float(got)))
    windows = {w["name"]: w for w in kpis.get("fault_windows", [])}
    for name, limit in slo.recovery.items():
        w = windows.get(name)
        if w is None:
            continue
        rec = w.get("recovery_s")
        if rec is None or rec > limit:
            out.append(Breach(f"fault_windows.{name}.recovery_s", float(limit), _num(rec)))
    if slo.failure_ratio is not None and kpis.get("calls"):
        ratio = kpis.get("failed_calls", 0) / kpis["calls"]
        if ratio > slo.failure_ratio:
            out.append(Breach("failure_ratio", float(slo.failure_ratio), ratio))
    return out


__all__ = [
    "Breach",
    "OUTCOMES",
    "WALL_KEYS",
    "backlog_at",
    "check_slo",
    "compute_kpis",
    "fault_window_kpis",
    "latency_stats",
    "rolling_latency",
    "strip_wall",
]
