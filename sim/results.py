"""Run results as pandas DataFrames, for notebooks: load one run folder or many, and the usual cuts.

``load_results(source)`` accepts a run folder, a folder holding run folders (at any depth, e.g.
``twin run --replications`` output or a ``twin sweep --keep-runs`` folder), a glob pattern, or a
list of any of these. It returns a ``Results`` with four tables:

``runs``    one row per run. Columns: ``run`` (run id: the folder name, or its path relative to
            the common parent when names repeat), ``path``, ``scenario``, ``profile``, ``seed``,
            ``mode``, then every scalar KPI of ``kpis.json`` flattened with dotted names
            (``latency_s.erp_accepted.p95``, ``outcomes.completed``, and per fault window
            ``fault_windows.<name>.recovery_s`` / ``.max_backlog``), all as float64 (NaN = not
            defined, e.g. a latency with no order reaching the milestone).
``orders``  ``orders.parquet`` of every run (columns of ``sim.reconcile.ORDER_COLUMNS``: ``crm_id``,
            ``t_submitted``, ``t_<milestone>``, ``t_settled``, per-system counts, ``outcome``, ...)
            with ``run`` first. Times are simulated seconds since the scenario start.
``events``  ``events.parquet`` (every ledger entry: ``seq, t, system, kind, entity, ref,
            correlation_id, idempotency_key, data`` with ``data`` as JSON text) with ``run`` first.
``calls``   ``calls.parquet`` (every integration call attempt: ``t_start, t_end, system,
            operation, attempt, status, outcome, latency_s, correlation_id, idempotency_key,
            workflow``) with ``run`` first.

Cuts (pure functions over those frames; a ``run`` column, when present, groups the result):

- ``fallout_by_category(orders)``: fallout orders per category, with submitted and fallout_rate;
- ``fallout_by_fault_window(orders, windows)``: submitted / fallout / p95 latency of the orders
  submitted inside each fault window, and outside all of them;
- ``latency_by_milestone_over_time(orders, freq="1h")``: latency quantile per milestone by
  submit-time bin;
- ``throughput(orders, freq="1h")``: orders submitted and reaching each milestone per bin;
- ``backlog(orders, step="10min")``: orders in flight over time (``sim.kpis`` definition);
- ``order_drilldown(run, crm_id)``: every ledger event of one order in time order.

Time axes are in simulated hours since the scenario start (index ``t_h``), the unit the
fault windows are drawn in by ``shade_fault_windows``.
"""

from __future__ import annotations

import glob as _glob
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.kpis import backlog_at
from sim.modeltime import milestone_latency
from sim.reconcile import FALLOUT
from sim.runfolder import Run, load_run
from sim.scenario import MILESTONES, FaultWindow

RUN_COLUMNS = ("run", "path", "scenario", "profile", "seed", "mode")
TABLES = ("orders", "events", "calls")
HOUR = 3600.0

Source = str | os.PathLike[str] | Run | Iterable[str | os.PathLike[str] | Run]


# --------------------------------------------------------------------------------------- loading


def flatten_kpis(kpis: Mapping[str, Any]) -> dict[str, float]:
    """Every scalar KPI with a dotted name; fault windows by name. Strings and lists are skipped
    (they are labels, not measures); booleans become 0/1."""
    out: dict[str, float] = {}

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, Mapping):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif v is None:
            out[prefix] = float("nan")
        elif isinstance(v, bool | int | float):
            out[prefix] = float(v)

    for k, v in kpis.items():
        if k == "fault_windows":
            for w in v or []:
                name = w.get("name")
                for key in ("recovery_s", "max_backlog"):
                    x = w.get(key)
                    out[f"fault_windows.{name}.{key}"] = float("nan") if x is None else float(x)
        else:
            walk(str(k), v)
    return out


def _is_run_folder(p: Path) -> bool:
    return (p / "kpis.json").is_file() and (p / "orders.parquet").is_file()


def find_runs(source: Source) -> list[Path]:
    """Run folders named by ``source`` (see module docstring), sorted, without duplicates."""
    items: list[Any] = [source] if isinstance(source, str | os.PathLike | Run) else list(source)
    found: list[Path] = []
    for item in items:
        if isinstance(item, Run):
            found.append(item.path)
            continue
        text = os.fspath(item)
        if _glob.has_magic(text):
            matches = sorted(Path(m) for m in _glob.glob(text, recursive=True))
            found += [m for m in matches if _is_run_folder(m)]
            continue
        p = Path(text)
        if _is_run_folder(p):
            found.append(p)
        elif p.is_dir():
            found += sorted(k.parent for k in p.rglob("kpis.json") if _is_run_folder(k.parent))
        else:
            raise FileNotFoundError(f"{p}: no such run folder")
    seen: set[Path] = set()
    out = []
    for f in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _none_found(source: Source) -> str:
    msg = f"{source}: no run folders found"
    if isinstance(source, str | os.PathLike) and (Path(source) / "sweep.parquet").is_file():
        msg += " (a sweep run without --keep-runs: read its KPI table with sim.sweep.load_sweep)"
    return msg


def run_ids(paths: Sequence[Path]) -> list[str]:
    """Folder names, unless two runs share one (replications of different sweeps): then paths
    relative to the common parent, which stay readable and unique."""
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    resolved = [p.resolve() for p in paths]
    base = Path(os.path.commonpath([str(r.parent) for r in resolved]))
    return [r.relative_to(base).as_posix() for r in resolved]


def run_row(run_id: str, path: Path, meta: Mapping[str, Any], kpis: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "run": run_id,
        "path": str(path),
        "scenario": meta.get("scenario"),
        "profile": meta.get("profile"),
        "seed": meta.get("seed"),
        "mode": meta.get("mode"),
        **flatten_kpis(kpis),
    }


def _with_run(df: pd.DataFrame, run_id: str) -> pd.DataFrame:
    out = df.copy()
    out.insert(0, "run", run_id)
    return out


@dataclass(slots=True)
class Results:
    runs: pd.DataFrame
    orders: pd.DataFrame
    events: pd.DataFrame
    calls: pd.DataFrame
    loaded: dict[str, Run]  # run id -> the Run (scenario, meta, kpis) it came from

    def run(self, run_id: str | None = None) -> Run:
        """One loaded run (the only one when ``run_id`` is omitted)."""
        if run_id is None:
            if len(self.loaded) != 1:
                raise ValueError(f"{len(self.loaded)} runs loaded; name one of {sorted(self.loaded)}")
            return next(iter(self.loaded.values()))
        return self.loaded[run_id]

    def fault_windows(self, run_id: str | None = None) -> list[FaultWindow]:
        return list(self.run(run_id).scenario.faults)


def load_results(source: Source, tables: Sequence[str] = TABLES) -> Results:
    """Load run folders into the four tables. ``tables`` limits which parquet tables are read
    (the ``runs`` table is always built; skipped tables come back empty)."""
    bad = [t for t in tables if t not in TABLES]
    if bad:
        raise ValueError(f"unknown table {bad[0]!r}; choose from {', '.join(TABLES)}")
    paths = find_runs(source)
    if not paths:
        raise FileNotFoundError(_none_found(source))
    ids = run_ids(paths)
    rows, loaded = [], {}
    frames: dict[str, list[pd.DataFrame]] = {t: [] for t in TABLES}
    for rid, p in zip(ids, paths, strict=True):
        r = load_run(p)
        loaded[rid] = r
        rows.append(run_row(rid, p, r.meta, r.kpis))
        for t in tables:
            frames[t].append(_with_run(getattr(r, t), rid))
    runs = pd.DataFrame(rows)
    kpi_cols = [c for c in runs.columns if c not in RUN_COLUMNS]
    runs[kpi_cols] = runs[kpi_cols].astype("float64")

    def cat(t: str) -> pd.DataFrame:
        fs = [f for f in frames[t] if len(f)]
        if not fs:
            return pd.DataFrame({"run": pd.Series(dtype=str)})
        return pd.concat(fs, ignore_index=True)

    return Results(runs, cat("orders"), cat("events"), cat("calls"), loaded)


def load_runs(source: Source) -> pd.DataFrame:
    """Only the ``runs`` table (reads meta.json and kpis.json: fast for hundreds of runs)."""
    paths = find_runs(source)
    if not paths:
        raise FileNotFoundError(_none_found(source))
    rows = []
    for rid, p in zip(run_ids(paths), paths, strict=True):
        meta = json.loads((p / "meta.json").read_text(encoding="utf-8"))
        kpis = json.loads((p / "kpis.json").read_text(encoding="utf-8"))
        rows.append(run_row(rid, p, meta, kpis))
    runs = pd.DataFrame(rows)
    kpi_cols = [c for c in runs.columns if c not in RUN_COLUMNS]
    runs[kpi_cols] = runs[kpi_cols].astype("float64")
    return runs


# --------------------------------------------------------------------------------------- cuts


def _groups(orders: pd.DataFrame) -> Iterable[tuple[str, pd.DataFrame]]:
    if "run" in orders.columns:
        yield from ((str(k), g) for k, g in orders.groupby("run", sort=True))
    else:
        yield "all", orders


def _seconds(v: str | float | pd.Timedelta) -> float:
    if isinstance(v, int | float):
        return float(v)
    try:
        s = pd.Timedelta(v).total_seconds()
    except ValueError:
        raise ValueError(f"not a duration: {v!r} (use e.g. '1h', '10min' or seconds)") from None
    if s <= 0:
        raise ValueError(f"duration must be > 0, got {v!r}")
    return s


def fallout_by_category(orders: pd.DataFrame) -> pd.DataFrame:
    """Fallout orders per category (one column per ``sim.reconcile.FALLOUT`` outcome, zeros
    included), plus ``fallout``, ``submitted`` and ``fallout_rate``; one row per run (index
    ``run``; ``all`` when the frame has no run column)."""
    rows = []
    for rid, g in _groups(orders):
        vc = g["outcome"].value_counts()
        row: dict[str, Any] = {"run": rid, **{o: int(vc.get(o, 0)) for o in FALLOUT}}
        row["fallout"] = sum(row[o] for o in FALLOUT)
        row["submitted"] = len(g)
        row["fallout_rate"] = row["fallout"] / len(g) if len(g) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=["run", *FALLOUT, "fallout", "submitted", "fallout_rate"]).set_index("run")


def _windows(windows: Any) -> list[tuple[str, float, float]]:
    """(name, start_s, end_s) from kpis (its ``fault_windows``), a Run, FaultWindows or dicts."""
    if isinstance(windows, Run):
        windows = windows.scenario.faults
    elif isinstance(windows, Mapping):
        windows = windows.get("fault_windows") or []
    out = []
    for w in windows or []:
        if isinstance(w, FaultWindow):
            out.append((w.name, float(w.start), float(w.end)))
        else:
            out.append((str(w["name"]), float(w["start_s"]), float(w["end_s"])))
    return out


def fallout_by_fault_window(orders: pd.DataFrame, windows: Any, milestone: str = "erp_accepted") -> pd.DataFrame:
    """Orders submitted inside each fault window (``[start, end)``) and outside every window:
    ``submitted``, ``fallout``, ``fallout_rate`` and the p95 latency to ``milestone``.

    ``windows``: a kpis dict (its ``fault_windows``), a ``Run``, ``FaultWindow``s, or dicts with
    ``name, start_s, end_s``. Rows: (run, window) when orders carry a run column, else window."""
    if milestone not in MILESTONES:
        raise ValueError(f"unknown milestone {milestone!r}; choose from {', '.join(MILESTONES)}")
    ws = _windows(windows)
    rows = []
    for rid, g in _groups(orders):
        t = g["t_submitted"].to_numpy(dtype=float)
        fallout = g["outcome"].isin(FALLOUT).to_numpy()
        lat = milestone_latency(g, milestone).to_numpy(dtype=float)
        inside_any = np.zeros(len(g), dtype=bool)
        masks = []
        for name, start, end in ws:
            m = (t >= start) & (t < end)
            inside_any |= m
            masks.append((name, start, end, m))
        masks.append(("(outside faults)", float("nan"), float("nan"), ~inside_any))
        for name, start, end, m in masks:
            n = int(m.sum())
            lm = lat[m]
            lm = lm[~np.isnan(lm)]
            rows.append(
                {
                    "run": rid,
                    "window": name,
                    "start_h": start / HOUR,
                    "end_h": end / HOUR,
                    "submitted": n,
                    "fallout": int(fallout[m].sum()),
                    "fallout_rate": float(fallout[m].sum()) / n if n else float("nan"),
                    f"{milestone}_p95_s": float(np.percentile(lm, 95)) if lm.size else float("nan"),
                }
            )
    df = pd.DataFrame(rows)
    return df.set_index(["run", "window"]) if "run" in orders.columns else df.drop(columns="run").set_index("window")


def _bins(t: pd.Series, step: float) -> np.ndarray:
    """Bin start (simulated hours) of each time, bins of ``step`` seconds from 0."""
    return np.floor(t.to_numpy(dtype=float) / step) * step / HOUR


def latency_by_milestone_over_time(
    orders: pd.DataFrame, freq: str | float = "1h", q: float = 0.95, milestones: Sequence[str] = MILESTONES
) -> pd.DataFrame:
    """The ``q`` quantile of each milestone's latency (seconds) over the orders submitted in each
    ``freq`` bin, plus ``orders`` submitted in the bin. Index ``t_h`` = bin start in simulated hours
    (with ``run`` first when the frame has a run column). Bins without orders are absent."""
    step = _seconds(freq)
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    df = pd.DataFrame({m: milestone_latency(orders, m) for m in milestones})
    df["t_h"] = _bins(orders["t_submitted"], step)
    keys = ["t_h"]
    if "run" in orders.columns:
        df.insert(0, "run", orders["run"].to_numpy())
        keys = ["run", "t_h"]
    g = df.groupby(keys, sort=True)
    out = g[list(milestones)].quantile(q)
    out["orders"] = g.size()
    return out


def throughput(orders: pd.DataFrame, freq: str | float = "1h") -> pd.DataFrame:
    """Orders submitted and reaching each milestone per ``freq`` bin (by the event's own time).
    Index ``t_h`` (bin start, simulated hours), with ``run`` first when present; missing bins = 0."""
    step = _seconds(freq)
    cols = ["t_submitted", *(f"t_{m}" for m in MILESTONES)]
    parts = []
    for rid, g in _groups(orders):
        end = float(np.nanmax(g[cols].to_numpy(dtype=float))) if len(g) else 0.0
        edges = np.arange(0.0, end + step, step) if np.isfinite(end) else np.array([0.0, step])
        if len(edges) < 2:
            edges = np.array([0.0, step])
        data = {c.removeprefix("t_"): np.histogram(g[c].dropna().to_numpy(dtype=float), bins=edges)[0] for c in cols}
        part = pd.DataFrame(data, index=pd.Index(edges[:-1] / HOUR, name="t_h"))
        if "run" in orders.columns:
            part = pd.concat({rid: part}, names=["run"])
        parts.append(part)
    return pd.concat(parts) if parts else pd.DataFrame()


def backlog(orders: pd.DataFrame, step: str | float = "10min", end_s: float | None = None) -> pd.DataFrame:
    """Orders in flight (submitted, not yet settled; see ``sim.kpis``) every ``step`` from 0 to the
    last settle/submit time (or ``end_s``). Index ``t_h``; one column per run (``backlog`` when
    the frame has no run column)."""
    dt = _seconds(step)
    series = {}
    for rid, g in _groups(orders):
        last = end_s
        if last is None:
            vals = g[["t_submitted", "t_settled"]].to_numpy(dtype=float)
            last = float(np.nanmax(vals)) if len(g) else 0.0
        t = np.arange(0.0, last + dt, dt)
        series[rid if "run" in orders.columns else "backlog"] = pd.Series(
            backlog_at(g, t) if len(g) else np.zeros(len(t), dtype=int), index=t / HOUR
        )
    out = pd.DataFrame(series)
    out.index.name = "t_h"
    return out.fillna(0).astype(int)


def order_drilldown(
    source: Run | Results | pd.DataFrame | str | os.PathLike[str],
    crm_id: str,
    run: str | None = None,
    *,
    calls: bool = False,
) -> pd.DataFrame:
    """Every ledger event of one order, in time order: the rows of ``events`` whose ``ref``,
    ``correlation_id`` or ``entity`` is the CRM order id, with ``data`` parsed to dicts and
    ``since_submit_s`` (seconds after its CRM submit). ``source``: a Run, a run folder, Results
    (pick the run with ``run=`` when several are loaded) or an events DataFrame.

    ``calls=True`` interleaves the integration's call attempts for the order (``system``,
    ``kind`` = ``call:<operation>``, ``data`` = status/outcome/latency/attempt)."""
    call_df: pd.DataFrame | None = None
    if isinstance(source, str | os.PathLike):
        source = load_run(source)
    if isinstance(source, Results):
        rid = run if run is not None else next(iter(source.loaded)) if len(source.loaded) == 1 else None
        if rid is None:
            raise ValueError(f"{len(source.loaded)} runs loaded; pass run= one of {sorted(source.loaded)}")
        ev = source.events[source.events["run"] == rid].drop(columns="run")
        call_df = source.calls[source.calls["run"] == rid].drop(columns="run") if len(source.calls) else None
    elif isinstance(source, Run):
        ev, call_df = source.events, source.calls
    else:
        ev = source if run is None else source[source["run"] == run]
    mask = (ev["ref"] == crm_id) | (ev["correlation_id"] == crm_id) | (ev["entity"] == crm_id)
    out = ev[mask].copy()
    if out.empty:
        raise KeyError(f"order {crm_id!r}: no ledger events")
    out["data"] = [json.loads(d) if isinstance(d, str) and d else (d or {}) for d in out["data"]]
    if calls and call_df is not None and len(call_df) and "correlation_id" in call_df.columns:
        c = call_df[call_df["correlation_id"] == crm_id]
        cr = pd.DataFrame(
            {
                "t": c["t_start"].to_numpy(dtype=float),
                "system": c["system"].to_numpy(),
                "kind": ["call:" + str(o) for o in c["operation"]],
                "idempotency_key": c["idempotency_key"].to_numpy(),
                "correlation_id": crm_id,
                "data": [
                    {"status": int(s), "outcome": o, "latency_s": float(la), "attempt": int(a)}
                    for s, o, la, a in zip(c["status"], c["outcome"], c["latency_s"], c["attempt"], strict=True)
                ],
            }
        )
        out = pd.concat([out, cr], ignore_index=True)
    sub = out.loc[out["kind"] == "order.submitted", "t"]
    t0 = float(sub.min()) if len(sub) else float(out["t"].min())
    out["since_submit_s"] = out["t"] - t0
    sort = ["t", "seq"] if "seq" in out.columns else ["t"]
    out = out.sort_values(sort, kind="stable").reset_index(drop=True)
    cols = ["t", "since_submit_s", "system", "kind", "entity", "ref", "correlation_id", "idempotency_key", "data"]
    return out[[c for c in cols if c in out.columns]]


# --------------------------------------------------------------------------------------- plotting


def shade_fault_windows(ax: Any, windows: Any, unit: float = HOUR, label: bool = True) -> None:
    """Shade each fault window on a matplotlib axis whose x is simulated time in ``unit`` seconds
    (hours by default, matching the ``t_h`` indexes above); names the windows at the top."""
    for i, (name, start, end) in enumerate(_windows(windows)):
        ax.axvspan(start / unit, end / unit, color="#d32f2f", alpha=0.12, label="fault window" if i == 0 else None)
        if label:
            ax.annotate(
                name,
                (start / unit, 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                rotation=90,
                va="top",
                ha="right",
                color="#b71c1c",
            )
