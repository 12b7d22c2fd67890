"""Twin fidelity: does a virtual run predict the live run of the same scenario, seed and profile?

Pure comparison of two ``kpis.json`` dictionaries (``twin fidelity`` runs both and prints this).

- Fallout counts (lost, duplicates, stuck, mismatches, dlq) agree when they differ by at most 10 %
  of the larger or 2 orders, whichever is more.
- Latency p50 / p95 per milestone agree within 20 % of the virtual value or ``LATENCY_ABS_S``,
  whichever is more. Both are in model time (``sim.modeltime``): a live run counts its HTTP segments
  (calls, webhooks, backoffs) in wall seconds and its world segments (picking, transit) on the
  compressed clock, which is what the virtual run's simulated seconds model. The absolute slack is
  the live run's own noise: loopback HTTP, event-loop and process scheduling around each call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.scenario import MILESTONES

FALLOUT = ("lost", "duplicates", "stuck", "mismatches", "dlq")
COUNT_REL, COUNT_ABS = 0.10, 2
LATENCY_REL = 0.20
LATENCY_ABS_S = 0.05


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


def compare(virtual: Mapping[str, Any], live: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name in ("orders_submitted", *FALLOUT):
        v, lv = _get(virtual, name), _get(live, name)
        if v is None or lv is None:
            rows.append(Row(name, v, lv, None, False, True, "missing"))
            continue
        ok = abs(lv - v) <= max(COUNT_ABS, COUNT_REL * max(abs(v), abs(lv)))
        rows.append(Row(name, v, lv, _rel(v, lv), True, ok))
    for m in MILESTONES:
        for p in ("p50", "p95"):
            name = f"latency_s.{m}.{p}"
            v, lv = _get(virtual, name), _get(live, name)
            if v is None and lv is None:
                continue
            if v is None or lv is None:
                rows.append(Row(name, v, lv, None, True, False, "only one run reached it"))
                continue
            ok = abs(lv - v) <= max(LATENCY_REL * abs(v), LATENCY_ABS_S)
            rows.append(Row(name, v, lv, _rel(v, lv), True, ok))
    return rows


def passed(rows: list[Row]) -> bool:
    return all(r.ok for r in rows if r.judged)
