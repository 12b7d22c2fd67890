"""Comparing runs: KPI deltas between two runs, and means with 95 % confidence intervals over
independent replications (Student t; replications are i.i.d. by construction: independent seeds).

Pure functions over ``kpis.json`` dictionaries, so notebooks and the CLI share them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sim.rng import derive_seed

# Two-sided 95 % Student t quantiles by degrees of freedom (1..30); above 30 the normal 1.96 is
# within 2 % and is used instead (avoids a scipy dependency for one number).
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip

# The KPIs shown in tables, in order (dotted paths into kpis.json).
HEADLINE = (
    "orders_submitted",
    "completed",
    "credit_holds",
    "backordered_open",
    "lost",
    "duplicates",
    "stuck",
    "mismatches",
    "dlq",
    "fallout_rate",
    "otif",
    "fill_rate",
    "backorder_rate",
    "latency_s.erp_accepted.p50",
    "latency_s.erp_accepted.p95",
    "latency_s.ready_to_ship.p95",
    "latency_s.delivered.p95",
    "latency_s.crm_closed.p95",
    "retries",
    "breaker_opens",
    "sim_s",
    "wall_s",
    "orders_per_wall_s",
)


def t95(df: int) -> float:
    if df <= 0:
        return math.nan
    return _T95[df - 1] if df <= len(_T95) else 1.96


def replication_seeds(base_seed: int, n: int) -> list[int]:
    """Independent seeds for ``n`` replications, derived (not base+i, which would correlate
    nothing but reads as if it might)."""
    return [derive_seed(base_seed, f"replication:{i}") % (2**31) for i in range(n)]


def get(kpis: Mapping[str, Any], path: str) -> float | None:
    cur: Any = kpis
    for part in path.split("."):
        if isinstance(cur, Mapping):
            cur = cur.get(part)
        else:
            return None
    if isinstance(cur, bool) or not isinstance(cur, int | float):
        return None
    return float(cur)


def fault_paths(kpis: Mapping[str, Any]) -> list[str]:
    """Dotted paths for each fault window's recovery and max backlog (by window name)."""
    out = []
    for w in kpis.get("fault_windows", []) or []:
        out += [f"fault_windows.{w['name']}.recovery_s", f"fault_windows.{w['name']}.max_backlog"]
    return out


def value(kpis: Mapping[str, Any], path: str) -> float | None:
    """Like ``get`` but also resolves ``fault_windows.<name>.<key>``."""
    if path.startswith("fault_windows."):
        _, name, key = path.split(".", 2)
        for w in kpis.get("fault_windows", []) or []:
            if w.get("name") == name:
                v = w.get(key)
                return None if v is None else float(v)
        return None
    return get(kpis, path)


@dataclass(frozen=True, slots=True)
class Summary:
    name: str
    n: int  # replications with a value
    mean: float | None
    half_width: float | None  # 95 % CI = mean +- half_width
    low: float | None
    high: float | None


def summarize(runs: Sequence[Mapping[str, Any]], paths: Sequence[str] | None = None) -> list[Summary]:
    """Mean and 95 % CI over replications for each KPI path (HEADLINE + fault windows by default)."""
    if paths is None:
        paths = [*HEADLINE, *(fault_paths(runs[0]) if runs else [])]
    out = []
    for p in paths:
        xs = [v for v in (value(k, p) for k in runs) if v is not None and math.isfinite(v)]
        n = len(xs)
        if n == 0:
            out.append(Summary(p, 0, None, None, None, None))
            continue
        mean = sum(xs) / n
        if n == 1:
            out.append(Summary(p, 1, mean, None, None, None))
            continue
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
        hw = t95(n - 1) * sd / math.sqrt(n)
        out.append(Summary(p, n, mean, hw, mean - hw, mean + hw))
    return out


@dataclass(frozen=True, slots=True)
class Delta:
    name: str
    a: float | None
    b: float | None
    delta: float | None
    rel: float | None  # (b - a) / |a|; None when a is 0 or missing


def compare_kpis(a: Mapping[str, Any], b: Mapping[str, Any], paths: Sequence[str] | None = None) -> list[Delta]:
    if paths is None:
        extra = [p for p in fault_paths(b) if p not in fault_paths(a)]
        paths = [*HEADLINE, *fault_paths(a), *extra]
    out = []
    for p in paths:
        va, vb = value(a, p), value(b, p)
        d = None if va is None or vb is None else vb - va
        rel = None if d is None or not va else d / abs(va)
        out.append(Delta(p, va, vb, d, rel))
    return out
