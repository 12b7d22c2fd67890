"""KPI baselines for ``twin check``: record what a known-good build measured, fail on regressions.

A baseline file is JSON: ``{"version": 1, "updated": ISO, "scenarios": {KEY: {kpis}}}`` with
``KEY = "<scenario name>/<profile>/<mode>"`` so one file can hold several profiles and modes, and
``kpis`` the subset of ``kpis.json`` that regressions are judged on (counts, ``fallout_rate``,
milestone latency percentiles, fault-window recovery). Updating merges into an existing file, so a
run over a subset of scenarios does not forget the others.

What counts as a regression (each names the KPI and the allowed limit):

- any fallout count (``lost``, ``duplicates``, ``stuck``, ``mismatches``, ``dlq``) above the
  baseline's -- new fallout is never noise;
- ``fallout_rate`` above the baseline's plus ``fallout_rate`` tolerance (absolute, default 0);
- a milestone latency percentile above baseline x (1 + tolerance) for every percentile that has a
  tolerance (default ``p99=0.2``: p99 up by more than 20 %), ignoring rises smaller than
  ``latency_abs`` seconds (default 0; raise it for noisy live runs);
- a fault window's ``recovery_s`` above baseline x (1 + ``recovery``) + 60 s, or never recovering
  where the baseline did.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sim.scenario import MILESTONES

VERSION = 1
COUNTS = ("lost", "duplicates", "stuck", "mismatches", "dlq")
PERCENTILES = ("p50", "p95", "p99", "max")
DEFAULT_TOLERANCE: dict[str, float] = {"p99": 0.2, "fallout_rate": 0.0, "recovery": 0.2, "latency_abs": 0.0}
TOLERANCE_KEYS = (*PERCENTILES, "fallout_rate", "recovery", "latency_abs")
RECOVERY_SLACK_S = 60.0  # recovery is measured on a 60 s grid: one step is not a regression


class BaselineError(ValueError):
    """A baseline file or tolerance the user gave is unusable; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Regression:
    """One baseline comparison: ``name`` the KPI path, ``limit`` what was allowed, ``measured`` now."""

    name: str
    baseline: float | None
    limit: float | None
    measured: float | None
    regressed: bool

    def __str__(self) -> str:
        got = "never" if self.measured is None else f"{self.measured:g}"
        was = "never" if self.baseline is None else f"{self.baseline:g}"
        lim = "–" if self.limit is None else f"{self.limit:g}"
        verdict = "regressed" if self.regressed else "ok"
        return f"{self.name}: {got} (baseline {was}, limit {lim}) {verdict}"


def key(name: str, profile: str, mode: str) -> str:
    return f"{name}/{profile}/{mode}"


# --------------------------------------------------------------------------------------- tolerance


def parse_tolerance(items: Iterable[str]) -> dict[str, float]:
    """``["p99=0.2", "p95=0.1"]`` -> tolerances on top of the defaults; raises BaselineError."""
    tol = dict(DEFAULT_TOLERANCE)
    for item in items:
        for part in (p for p in item.split(",") if p.strip()):
            if "=" not in part:
                raise BaselineError(f"--tolerance {part!r}: expected key=value, e.g. p99=0.2")
            k, v = (s.strip() for s in part.split("=", 1))
            if k not in TOLERANCE_KEYS:
                raise BaselineError(f"--tolerance {part!r}: unknown key {k!r}; allowed: {', '.join(TOLERANCE_KEYS)}")
            try:
                value = float(v.rstrip("%")) / (100.0 if v.endswith("%") else 1.0)
            except ValueError:
                raise BaselineError(f"--tolerance {part!r}: value must be a number >= 0, got {v!r}") from None
            if not math.isfinite(value) or value < 0:
                raise BaselineError(f"--tolerance {part!r}: value must be a number >= 0, got {v!r}")
            tol[k] = value
    return tol


# --------------------------------------------------------------------------------------- file


def snapshot(kpis: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a run's KPIs a baseline keeps."""
    lat = kpis.get("latency_s") or {}
    return {
        **{c: kpis.get(c) for c in COUNTS},
        "fallout_rate": kpis.get("fallout_rate"),
        "orders_submitted": kpis.get("orders_submitted"),
        "latency_s": {m: {p: (lat.get(m) or {}).get(p) for p in PERCENTILES} for m in MILESTONES},
        "recovery_s": {w["name"]: w.get("recovery_s") for w in kpis.get("fault_windows") or []},
    }


def load(path: str | Path) -> dict[str, dict[str, Any]]:
    """Scenario key -> snapshot; raises BaselineError naming the file and the problem."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"--baseline {p}: file not found (create it with --update-baseline)") from None
    except json.JSONDecodeError as e:
        raise BaselineError(f"--baseline {p}: not JSON (line {e.lineno}: {e.msg})") from None
    except OSError as e:
        raise BaselineError(f"--baseline {p}: cannot read: {e.strerror}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("scenarios"), dict):
        raise BaselineError(f"--baseline {p}: not a twin baseline (expected a 'scenarios' mapping)")
    if doc.get("version") != VERSION:
        raise BaselineError(f"--baseline {p}: version must be {VERSION}, got {doc.get('version')!r}")
    return doc["scenarios"]


def save(path: str | Path, entries: Mapping[str, Mapping[str, Any]]) -> Path:
    """Merge ``entries`` (key -> kpis, full or snapshot) into the file at ``path`` (created if absent)."""
    p = Path(path)
    current: dict[str, Any] = {}
    if p.exists():
        try:
            current = load(p)
        except BaselineError:
            current = {}  # an unreadable old baseline is replaced, not merged
    current.update({k: snapshot(v) for k, v in entries.items()})
    doc = {"version": VERSION, "updated": datetime.now(UTC).isoformat(timespec="seconds"), "scenarios": current}
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(dict(sorted(doc.items())), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return p


# --------------------------------------------------------------------------------------- compare


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


def compare(
    base: Mapping[str, Any], kpis: Mapping[str, Any], tol: Mapping[str, float] | None = None
) -> list[Regression]:
    """Every baseline comparison for one scenario (regressed or not), in a stable order."""
    t = {**DEFAULT_TOLERANCE, **(tol or {})}
    now = snapshot(kpis)
    out: list[Regression] = []
    for c in COUNTS:
        b, m = _f(base.get(c)), _f(now.get(c))
        if b is not None and m is not None:
            out.append(Regression(f"baseline.{c}", b, b, m, m > b))
    b, m = _f(base.get("fallout_rate")), _f(now.get("fallout_rate"))
    if b is not None and m is not None:
        limit = b + t["fallout_rate"]
        out.append(Regression("baseline.fallout_rate", b, limit, m, m > limit + 1e-12))
    abs_slack = t["latency_abs"]
    for ms in MILESTONES:
        bl = (base.get("latency_s") or {}).get(ms) or {}
        ml = now["latency_s"][ms]
        for p in PERCENTILES:
            if p not in t:
                continue
            b, m = _f(bl.get(p)), _f(ml.get(p))
            if b is None or m is None:
                continue
            limit = max(b * (1.0 + t[p]), b + abs_slack)
            out.append(Regression(f"baseline.latency_s.{ms}.{p}", b, limit, m, m > limit))
    for name, b_rec in (base.get("recovery_s") or {}).items():
        if name not in now["recovery_s"] or b_rec is None:
            continue  # window gone from the scenario, or the baseline never recovered either
        m_rec = _f(now["recovery_s"][name])
        limit = float(b_rec) * (1.0 + t["recovery"]) + RECOVERY_SLACK_S
        out.append(
            Regression(
                f"baseline.fault_windows.{name}.recovery_s",
                float(b_rec),
                limit,
                m_rec,
                m_rec is None or m_rec > limit,
            )
        )
    return out


__all__ = [
    "COUNTS",
    "DEFAULT_TOLERANCE",
    "BaselineError",
    "Regression",
    "compare",
    "key",
    "load",
    "parse_tolerance",
    "save",
    "snapshot",
]
