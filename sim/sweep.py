"""Parameter sweeps: the cross product of grid values x replications, run in local processes or
on a Dask cluster, collected into one tidy DataFrame.

A grid axis is a dotted scenario key (applied exactly like ``--set``) with a list of values;
``profile`` is a grid key too (the integration profile). Every variant runs the same
replication seeds (``sim.compare.replication_seeds`` of the scenario seed): replication ``r``
uses the same seed in every variant, so variants see common random numbers and their
differences are not blurred by sampling noise.

Workers return only flat KPI rows (never DataFrames), so a sweep of thousands of runs ships a few
kilobytes per run. ``keep_runs`` also writes each run's folder (without the HTML report).

Output folder (``write_sweep``):

```
sweep.parquet   one row per variant x replication: variant, replication, seed, <grid keys>,
                slo_met, breaches, then every scalar KPI (dotted names as in sim.results)
summary.csv     one row per variant x KPI: <grid keys>, kpi, n, mean, half_width, low, high (95 % CI)
sweep.json      scenario name, base seed, grid, replications, seeds
sweep.png       fallout rate and p95 erp_accepted latency against the first grid key, CI bands
scenario.yaml   the base scenario (before grid values)
runs/           per-run folders with keep_runs: v<variant>-r<replication>-s<seed>
```
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim.compare import replication_seeds, summarize
from sim.kpis import WALL_KEYS
from sim.results import flatten_kpis
from sim.scenario import Scenario, ScenarioError, apply_set, dump_scenario, parse_scenario, yaml_load

PROFILES = ("naive", "resilient")
ID_COLUMNS = ("variant", "replication", "seed")
# KPIs summarised (CSV, table, chart) unless the caller names others.
SUMMARY_KPIS = (
    "orders_submitted",
    "fallout_rate",
    "lost",
    "duplicates",
    "stuck",
    "dlq",
    "otif",
    "latency_s.erp_accepted.p95",
    "latency_s.ready_to_ship.p95",
    "latency_s.delivered.p95",
    "retries",
    "slo_met",
)
CHART_KPIS = ("fallout_rate", "latency_s.erp_accepted.p95")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


class SweepError(ValueError):
    """Bad sweep input; the message names the argument and the value."""


@dataclass(frozen=True, slots=True)
class Axis:
    key: str
    values: tuple[Any, ...]


def _parse_value(raw: str) -> Any:
    try:
        return yaml_load(raw)
    except yaml.YAMLError:
        return raw


def parse_grid(specs: Sequence[str]) -> list[Axis]:
    """``["warehouse.pickers=2,3,4", "profile=naive,resilient"]`` -> axes. Values are YAML scalars
    (numbers, durations as text like ``10s``, strings)."""
    axes: list[Axis] = []
    for spec in specs:
        if "=" not in spec:
            raise SweepError(f"--grid {spec!r}: expected key=v1,v2,..., e.g. warehouse.pickers=2,3,4")
        key, raw = (s.strip() for s in spec.split("=", 1))
        if not _KEY_RE.match(key):
            raise SweepError(f"--grid {spec!r}: bad key {key!r}; use a dotted scenario key like warehouse.pickers")
        if key == "seed":
            raise SweepError(f"--grid {spec!r}: seeds come from --replications (common random numbers), not the grid")
        parts = [p.strip() for p in raw.split(",")]
        if not raw or any(p == "" for p in parts):
            raise SweepError(f"--grid {spec!r}: empty value; expected key=v1,v2,...")
        values = tuple(_parse_value(p) for p in parts)
        if len(set(map(repr, values))) != len(values):
            raise SweepError(f"--grid {spec!r}: repeated value")
        if key == "profile":
            bad = [v for v in values if v not in PROFILES]
            if bad:
                raise SweepError(f"--grid {spec!r}: profile must be naive or resilient, got {bad[0]!r}")
        if any(a.key == key for a in axes):
            raise SweepError(f"--grid {spec!r}: key {key!r} given twice")
        axes.append(Axis(key, values))
    return axes


def profile_axis(axes: list[Axis], profiles: str | Sequence[str] | None) -> list[Axis]:
    """Add ``--profile naive,resilient`` as a ``profile`` axis (unless the grid already has one)."""
    if profiles is None:
        return axes
    names = [p.strip() for p in profiles.split(",")] if isinstance(profiles, str) else list(profiles)
    bad = [p for p in names if p not in PROFILES]
    if bad or not names:
        raise SweepError(f"--profile {','.join(names)!r}: each profile must be naive or resilient")
    if any(a.key == "profile" for a in axes):
        raise SweepError("--profile and --grid profile=... both given; use one")
    return [*axes, Axis("profile", tuple(dict.fromkeys(names)))]


def variants(axes: Sequence[Axis]) -> list[dict[str, Any]]:
    """Cross product of the axes, first axis slowest (the order of rows in every output)."""
    return [
        dict(zip([a.key for a in axes], combo, strict=True)) for combo in itertools.product(*(a.values for a in axes))
    ]


def variant_data(base: Mapping[str, Any], assignment: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(base)
    for key, v in assignment.items():
        if key == "profile":
            data = apply_set(data, f"integration.profile={v}")
        else:
            data = apply_set(data, f"{key}={_yaml_scalar(v)}")
    return data


def _yaml_scalar(v: Any) -> str:
    # YAML text that apply_set parses back to exactly the value the grid parsed (a string that
    # looks like a number stays quoted, so it stays a string).
    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


@dataclass(frozen=True, slots=True)
class Task:
    variant: int
    replication: int
    seed: int
    grid: dict[str, Any]
    scenario: dict[str, Any]  # validated variant scenario (JSON-able: cheap to pickle, any worker)
    out: str | None = None


def plan(base: Scenario, axes: Sequence[Axis], replications: int, out: str | Path | None = None) -> list[Task]:
    """Every (variant, replication) task; each variant is validated here, before any worker
    starts, so a bad key or value fails fast with the scenario's own error message."""
    if replications < 1:
        raise SweepError(f"--replications {replications}: must be >= 1")
    seeds = replication_seeds(base.seed, replications)
    data = base.model_dump(mode="json")
    tasks = []
    for v, assignment in enumerate(variants(axes)):
        label = "--grid variant " + ", ".join(f"{k}={val}" for k, val in assignment.items())
        try:
            sc = parse_scenario(variant_data(data, assignment), label)
        except ScenarioError as e:
            raise SweepError("; ".join(e.problems)) from None
        sdata = sc.model_dump(mode="json")
        for r, seed in enumerate(seeds):
            run_out = None if out is None else str(Path(out) / "runs" / f"v{v:03d}-r{r:03d}-s{seed}")
            tasks.append(Task(v, r, seed, dict(assignment), sdata, run_out))
    return tasks


def run_task(task: Task) -> dict[str, Any]:
    """One run in a worker (top level: picklable for processes and Dask). Returns a flat row."""
    from sim.virtual import run_virtual

    r = run_virtual(Scenario.model_validate(task.scenario), seed=task.seed, out=task.out, report=False)
    breaches = [str(b) for b in r.breaches]
    return {
        "variant": task.variant,
        "replication": task.replication,
        "seed": task.seed,
        **task.grid,
        "profile": r.scenario.integration.profile,
        "slo_met": not breaches,
        "breaches": "; ".join(breaches),
        **flatten_kpis(r.kpis),
    }


def frame(rows: Sequence[Mapping[str, Any]], axes: Sequence[Axis]) -> pd.DataFrame:
    """Rows -> the tidy sweep DataFrame, sorted by (variant, replication), stable column order."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        return df
    grid = [a.key for a in axes]
    lead = [*ID_COLUMNS, *grid, *([] if "profile" in grid else ["profile"]), "slo_met", "breaches"]
    kpis = sorted(c for c in df.columns if c not in lead)
    df = df[lead + kpis].sort_values(["variant", "replication"], kind="stable").reset_index(drop=True)
    df[kpis] = df[kpis].astype("float64")
    df[list(ID_COLUMNS)] = df[list(ID_COLUMNS)].astype("int64")
    df["slo_met"] = df["slo_met"].astype(bool)
    for k in grid:
        if len({type(v) for v in df[k]}) > 1 and not pd.api.types.is_numeric_dtype(df[k]):
            # e.g. per=10s,60: parquet needs one type per column; the text keeps both readable
            df[k] = df[k].astype(str)
    return df


def execute(
    tasks: Sequence[Task],
    *,
    jobs: int | None = None,
    dask: str | Any | None = None,
    on_done: Callable[[int, int], None] | None = None,
    connect_timeout: float = 10.0,
) -> list[dict[str, Any]]:
    """Run tasks: in this process (jobs=1), local processes (default: one per CPU), or on Dask
    (``dask`` = scheduler address or a ``distributed.Client``)."""
    n = len(tasks)
    rows: list[dict[str, Any]] = []

    def done(row: dict[str, Any]) -> None:
        rows.append(row)
        if on_done is not None:
            on_done(len(rows), n)

    if dask is not None:
        _run_dask(tasks, dask, done, connect_timeout)
        return rows
    workers = max(1, min(n, jobs or os.cpu_count() or 1))

    def collect(results: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
        # Results come in task order, and a worker's exception surfaces at its task's turn.
        for t in tasks:
            try:
                row = next(results)
            except Exception as e:
                raise task_failed(t, e) from e
            done(row)
        return rows

    if workers == 1:
        return collect(map(run_task, tasks))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # chunksize 1: runs are seconds long, so per-task dispatch overhead is noise and the
        # load balances best (variants differ a lot in run time).
        return collect(pool.map(run_task, tasks, chunksize=1))


def task_failed(task: Task, error: BaseException) -> SweepError:
    """A run that failed inside a worker, named by its variant, grid values and seed, so it can be
    reproduced alone (``twin run ... --seed S --set key=value``) instead of read from a traceback."""
    grid = ", ".join(f"{k}={v}" for k, v in task.grid.items()) or "base scenario"
    sets = " ".join(f"--set {k}={v}" for k, v in task.grid.items() if k != "profile")
    profile = f" --profile {task.grid['profile']}" if "profile" in task.grid else ""
    return SweepError(
        f"variant {task.variant} ({grid}), replication {task.replication}, seed {task.seed} failed: "
        f"{type(error).__name__}: {error}. Reproduce it alone: twin run SCENARIO --seed {task.seed}{profile} {sets}".rstrip()
    )


def _run_dask(
    tasks: Sequence[Task], dask: str | Any, done: Callable[[dict[str, Any]], None], connect_timeout: float
) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise SweepError("--dask needs dask.distributed: pip install 'distribution-twin[dask]'") from None
    own = isinstance(dask, str)
    try:
        client = Client(dask, timeout=connect_timeout) if own else dask
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        raise SweepError(f"--dask {dask!r}: cannot connect to the scheduler ({e})") from None
    try:
        # pure=False: identical tasks (same variant twice) must still both run.
        futures = client.map(run_task, list(tasks), pure=False)
        task_of = {f.key: t for f, t in zip(futures, tasks, strict=True)}
        for fut in as_completed(futures):
            try:
                row = fut.result()
            except Exception as e:
                raise task_failed(task_of[fut.key], e) from e
            done(row)
    finally:
        if own:
            client.close()


# --------------------------------------------------------------------------------------- summary


def summary_frame(df: pd.DataFrame, axes: Sequence[Axis], kpis: Sequence[str] = SUMMARY_KPIS) -> pd.DataFrame:
    """Mean and 95 % CI (``sim.compare.summarize``, Student t over replications) per variant x KPI.
    ``slo_met`` summarises as the share of replications meeting every SLO."""
    grid = [a.key for a in axes]
    keep = [k for k in kpis if k in df.columns]
    rows = []
    for v, g in df.groupby("variant", sort=True):
        first = g.iloc[0]
        for kpi in keep:
            # One KPI at a time under a plain key: summarize() reads dotted paths as nesting,
            # and the frame's columns are already flat.
            (s,) = summarize([{"x": None if _nan(x) else float(x)} for x in g[kpi]], ["x"])
            rows.append(
                {
                    "variant": int(v),
                    **{k: first[k] for k in grid},
                    "kpi": kpi,
                    "n": s.n,
                    "mean": s.mean,
                    "half_width": s.half_width,
                    "low": s.low,
                    "high": s.high,
                }
            )
    out = pd.DataFrame(rows)
    for c in ("mean", "half_width", "low", "high"):
        if c in out.columns:
            out[c] = out[c].astype("float64")
    return out


def _nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def wide_summary(summary: pd.DataFrame, axes: Sequence[Axis], kpis: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per variant, ``<kpi>`` (mean) and ``<kpi> ±`` (95 % CI half width) columns."""
    grid = [a.key for a in axes]
    s = summary if kpis is None else summary[summary["kpi"].isin(kpis)]
    mean = s.pivot(index=["variant", *grid], columns="kpi", values="mean")
    hw = s.pivot(index=["variant", *grid], columns="kpi", values="half_width").add_suffix(" ±")
    order = [
        c for k in (kpis or dict.fromkeys(s["kpi"])) for c in (k, f"{k} ±") if c in mean.columns or c in hw.columns
    ]
    return pd.concat([mean, hw], axis=1)[order].reset_index()


# --------------------------------------------------------------------------------------- chart


def chart(summary: pd.DataFrame, axes: Sequence[Axis], kpis: Sequence[str] = CHART_KPIS) -> Any:
    """One panel per KPI: mean against the first grid key, one line per combination of the other
    keys, 95 % CI bands. Returns a matplotlib Figure (no pyplot state)."""
    from matplotlib.figure import Figure

    x_key, rest = axes[0].key, [a.key for a in axes[1:]]
    xs = list(axes[0].values)
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in xs)
    pos = {v: (v if numeric else i) for i, v in enumerate(xs)}
    fig = Figure(figsize=(5.0 * len(kpis), 3.8), layout="constrained")
    panels = fig.subplots(1, len(kpis), squeeze=False)[0]
    for ax, kpi in zip(panels, kpis, strict=True):
        s = summary[summary["kpi"] == kpi]
        groups = s.groupby(rest, sort=False) if rest else [((), s)]
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            g = g.assign(_x=g[x_key].map(pos)).sort_values("_x")
            label = ", ".join(f"{k}={v}" for k, v in zip(rest, key, strict=True)) or kpi
            (line,) = ax.plot(g["_x"], g["mean"], marker="o", lw=1.5, label=label)
            if g["low"].notna().any():
                ax.fill_between(g["_x"], g["low"], g["high"], color=line.get_color(), alpha=0.18, lw=0)
        if not numeric or len(xs) <= 12:
            ax.set_xticks(list(pos.values()), [str(v) for v in xs])
        ax.set(xlabel=x_key, ylabel=kpi, title=f"{kpi} (mean, 95 % CI)")
        ax.grid(alpha=0.3)
        if rest:
            ax.legend(fontsize=8)
    return fig


# --------------------------------------------------------------------------------------- sweep


@dataclass(slots=True)
class SweepResult:
    frame: pd.DataFrame
    summary: pd.DataFrame
    axes: list[Axis]
    scenario: str
    base_seed: int
    seeds: list[int]
    out: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def grid_keys(self) -> list[str]:
        return [a.key for a in self.axes]


def run_sweep(
    base: Scenario,
    axes: Sequence[Axis],
    replications: int,
    *,
    jobs: int | None = None,
    dask: str | Any | None = None,
    out: str | Path | None = None,
    keep_runs: bool = False,
    on_done: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Plan, execute, collect and (with ``out``) write a sweep."""
    axes = list(axes)
    if not axes:
        raise SweepError("--grid: give at least one key=v1,v2,... (or --profile naive,resilient)")
    tasks = plan(base, axes, replications, out if keep_runs else None)
    if keep_runs and out is None:
        raise SweepError("--keep-runs needs --out")
    rows = execute(tasks, jobs=jobs, dask=dask, on_done=on_done)
    df = frame(rows, axes)
    res = SweepResult(
        frame=df,
        summary=summary_frame(df, axes),
        axes=axes,
        scenario=base.name,
        base_seed=base.seed,
        seeds=replication_seeds(base.seed, replications),
    )
    if out is not None:
        write_sweep(out, res, base)
    return res


def write_sweep(out: str | Path, res: SweepResult, base: Scenario | None = None) -> Path:
    p = Path(out)
    p.mkdir(parents=True, exist_ok=True)
    res.frame.to_parquet(p / "sweep.parquet", index=False, compression="zstd")
    res.summary.to_csv(p / "summary.csv", index=False)
    doc = {
        "scenario": res.scenario,
        "base_seed": res.base_seed,
        "replications": len(res.seeds),
        "seeds": res.seeds,
        "grid": [{"key": a.key, "values": list(a.values)} for a in res.axes],
        "wall_columns": [c for c in WALL_KEYS if c in res.frame.columns],
    }
    (p / "sweep.json").write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    if base is not None:
        (p / "scenario.yaml").write_text(dump_scenario(base), encoding="utf-8")
    if not res.frame.empty:
        chart(res.summary, res.axes).savefig(p / "sweep.png", dpi=90)
    res.out = p
    return p


def load_sweep(folder: str | Path) -> SweepResult:
    """Read a sweep folder back (``sweep.parquet``, ``summary.csv``, ``sweep.json``)."""
    p = Path(folder)
    missing = [f for f in ("sweep.parquet", "sweep.json") if not (p / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{p}: not a sweep folder, missing {', '.join(missing)}")
    doc = json.loads((p / "sweep.json").read_text(encoding="utf-8"))
    axes = [Axis(g["key"], tuple(g["values"])) for g in doc["grid"]]
    df = pd.read_parquet(p / "sweep.parquet")
    summary = pd.read_csv(p / "summary.csv") if (p / "summary.csv").is_file() else summary_frame(df, axes)
    return SweepResult(df, summary, axes, doc["scenario"], int(doc["base_seed"]), list(doc["seeds"]), p)
