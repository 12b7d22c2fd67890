"""`twin sweep`: a parameter sweep (grid x replications with common random numbers), locally in
processes or on a Dask cluster; writes sweep.parquet, summary.csv and sweep.png (see sim.sweep).

Exit status: 0 done, 1 bad input.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

from sim.sweep import SweepError, parse_grid, plan, profile_axis, run_sweep, wide_summary

# KPI -> short column header (the table must fit a terminal next to the grid columns).
TABLE_KPIS = {
    "fallout_rate": "fallout",
    "latency_s.erp_accepted.p95": "erp p95 s",
    "latency_s.ready_to_ship.p95": "ship-ready p95 s",
    "otif": "OTIF",
    "slo_met": "SLO met",
}


def _fmt(v: float, kpi: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if kpi.endswith("_rate") or kpi in ("otif", "slo_met"):
        return f"{v:.1%}"
    return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def sweep_cmd(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    grid: list[str] = typer.Option(
        [], "--grid", "-g", help="dotted.key=v1,v2,... (repeatable; cross product); 'profile' is a key too"
    ),
    replications: int = typer.Option(3, "--replications", "-n", help="replications per variant (same seeds in each)"),
    profile: str | None = typer.Option(None, "--profile", help="comma list of profiles, e.g. naive,resilient"),
    sets: list[str] = typer.Option([], "--set", help="override the base scenario: dotted.key=value (repeatable)"),
    seed: int | None = typer.Option(None, "--seed", help="base seed (replication seeds derive from it)"),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="local worker processes (default: CPU count)"),
    dask: str | None = typer.Option(None, "--dask", help="run on a Dask cluster: scheduler address tcp://host:8786"),
    out: Path | None = typer.Option(None, "--out", help="sweep folder (default sweeps/<name>-<time>)"),
    keep_runs: bool = typer.Option(False, "--keep-runs", help="also write every run's folder under OUT/runs/"),
) -> None:
    """Run every combination of the grid values x replications and summarise the KPIs (mean, 95 % CI)."""
    from sim.cli_scenario import load_for_cli

    console = Console()

    def fail(msg: str) -> NoReturn:
        typer.echo(f"error: {msg}", err=True)
        raise typer.Exit(1)

    if replications < 1:
        fail(f"--replications {replications}: must be >= 1")
    if jobs is not None and jobs < 1:
        fail(f"--jobs {jobs}: must be >= 1")
    if jobs is not None and dask is not None:
        fail("--jobs and --dask both given: the Dask cluster decides its own parallelism")
    try:
        axes = profile_axis(parse_grid(grid), profile)
    except SweepError as e:
        fail(str(e))
    if not axes:
        fail("--grid: give at least one key=v1,v2,... (or --profile naive,resilient)")
    base = load_for_cli(scenario, list(sets), seed)
    folder = out or Path("sweeps") / (
        re.sub(r"[^A-Za-z0-9_.-]+", "-", base.name) + "-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    )
    try:
        n_tasks = len(plan(base, axes, replications))  # validates every variant before any work
    except SweepError as e:
        fail(str(e))
    where = f"Dask {dask}" if dask else f"{jobs or 'all'} local processes"
    t0 = time.perf_counter()
    with console.status(f"{n_tasks} runs on {where}") as status:

        def tick(done: int, total: int) -> None:
            status.update(f"{done}/{total} runs done ({time.perf_counter() - t0:.0f} s) on {where}")

        try:
            res = run_sweep(
                base, axes, replications, jobs=jobs, dask=dask, out=folder, keep_runs=keep_runs, on_done=tick
            )
        except SweepError as e:
            fail(str(e))
    wall = time.perf_counter() - t0

    keys = res.grid_keys
    wide = wide_summary(res.summary, res.axes, list(TABLE_KPIS))
    t = Table(title=f"{base.name}: {len(wide)} variants x {replications} replications (mean ± 95 % CI)")
    for k in keys:
        t.add_column(k, overflow="fold")
    for header in TABLE_KPIS.values():
        t.add_column(header, justify="right")
    for _, row in wide.iterrows():
        cells = [str(row[k]) for k in keys]
        for kpi in TABLE_KPIS:
            m, hw = row.get(kpi), row.get(f"{kpi} ±")
            cell = _fmt(m, kpi)
            if hw is not None and not (isinstance(hw, float) and math.isnan(hw)) and cell != "–":
                cell += f" ± {_fmt(hw, kpi)}"
            cells.append(cell)
        t.add_row(*cells)
    console.print(t)
    console.print("columns: " + ", ".join(f"{h} = {k}" for k, h in TABLE_KPIS.items()), style="dim")
    console.print(f"{n_tasks} runs in {wall:.1f} s; seeds {res.seeds}")
    console.print(f"sweep folder: {folder} (sweep.parquet, summary.csv, sweep.png)")


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_cmd)
