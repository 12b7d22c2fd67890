"""Twin fidelity: does a virtual run predict the live run of the same scenario, seed and profile?

Pure comparison of two ``kpis.json`` dictionaries (``twin fidelity`` runs both and prints this).

- Fallout counts (lost, duplicates, stuck, mismatches, dlq) agree when they differ by at most 10 %
  of the larger or 2 orders, whichever is more.
- Latency p50 / p95 per milestone agree within 20 % of the virtual value, or within the live run's
  timing resolution (``compression`` x ``RESOLUTION_WALL_S``: live HTTP calls, backoffs and process
  scheduling take wall time, which the compressed clock multiplies).
- A milestone whose virtual p50 is shorter than ``MIN_WALL_S`` of live wall time (e.g. ERP acceptance
  within a second at 3600x) cannot be resolved by a live run at that compression: it is shown, marked
  ``below live resolution``, and not judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.scenario import MILESTONES

FALLOUT = ("lost", "duplicates", "stuck", "mismatches", "dlq")
COUNT_REL, COUNT_ABS = 0.10, 2
LATENCY_REL = 0.20
RESOLUTION_WALL_S = 1.0  # wall seconds of HTTP and scheduling noise a live milestone can carry
MIN_WALL_S = 10.0  # a milestone must span this many wall seconds live to be judged


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    virtual: float | None
    live: float | None
    rel: float | None  # (live - virtual) / |virtual|
    judged: bool
    ok: bool
    note: str = ""


def _get(kpis: Mapping[str, Any], path: str) -> float | None:
    cur: Any = kpis
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return None if cur is None or isinstance(cur, bool) else float(cur)


def _rel(v: float | None, lv: float | None) -> float | None:
    if v is None or lv is None or v == 0:
        return None
    return (lv - v) / abs(v)


def compare(virtual: Mapping[str, Any], live: Mapping[str, Any], compression: float) -> list[Row]:
    rows: list[Row] = []
    for name in ("orders_submitted", *FALLOUT):
        v, lv = _get(virtual, name), _get(live, name)
        if v is None or lv is None:
            rows.append(Row(name, v, lv, None, False, True, "missing"))
            continue
        ok = abs(lv - v) <= max(COUNT_ABS, COUNT_REL * max(abs(v), abs(lv)))
        rows.append(Row(name, v, lv, _rel(v, lv), True, ok))
    floor = compression * MIN_WALL_S
    slack = compression * RESOLUTION_WALL_S
    for m in MILESTONES:
        p50 = _get(virtual, f"latency_s.{m}.p50")
        resolvable = p50 is not None and p50 >= floor
        for p in ("p50", "p95"):
            name = f"latency_s.{m}.{p}"
            v, lv = _get(virtual, name), _get(live, name)
            if v is None and lv is None:
                continue
            if v is None or lv is None:
                rows.append(Row(name, v, lv, None, resolvable, not resolvable, "only one run reached it"))
                continue
            if not resolvable:
                rows.append(Row(name, v, lv, _rel(v, lv), False, True, "below live resolution"))
                continue
            ok = abs(lv - v) <= max(LATENCY_REL * abs(v), slack)
            rows.append(Row(name, v, lv, _rel(v, lv), True, ok))
    return rows


def passed(rows: list[Row]) -> bool:
    return all(r.ok for r in rows if r.judged)
