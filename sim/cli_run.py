"""`twin run` and `twin compare`: run a scenario (optionally N replications in parallel) and compare
two run folders.

Exit status of ``twin run``: 0 all SLOs met, 1 bad input, 3 an SLO was breached (CI gates on it).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from sim.compare import HEADLINE, compare_kpis, fault_paths, replication_seeds, summarize, value
from sim.scenario import Scenario

SLO_BREACH_EXIT = 3


def _load(path: Path, sets: list[str], seed: int | None) -> Scenario:
    try:
        from sim.cli_scenario import load_for_cli
    except ImportError:  # pragma: no cover - fallback while the scenario CLI is absent
        from sim.scenario import load_scenario

        sc = load_scenario(path, sets)
        return sc if seed is None else sc.model_copy(update={"seed": seed})
    return load_for_cli(path, sets, seed)


def human_s(v: float) -> str:
    """Seconds as a reader scans them: 0.412 s, 42.0 s, 6.4 min, 3.2 h, 1.48 d."""
    a = abs(v)
    if a < 60:
        return f"{v:.3g} s"
    if a < 3600:
        return f"{v / 60:.1f} min"
    if a < 86400:
        return f"{v / 3600:.1f} h"
    return f"{v / 86400:.2f} d"


def _fmt(v: float | None, name: str = "") -> str:
    if v is None:
        return "–"
    if name.startswith("latency_s.") or name.endswith("recovery_s"):
        return human_s(float(v))
    if name.endswith("_rate") or name in ("otif",):
        return f"{v:.2%}"
    if float(v).is_integer() and abs(v) < 1e12:
        return f"{int(v):,}"
    return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def kpi_table(kpis: dict[str, Any], title: str = "KPIs") -> Table:
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("KPI")
    t.add_column("value", justify="right")
    for p in (*HEADLINE, *fault_paths(kpis)):
        t.add_row(p, _fmt(value(kpis, p), p))
    return t


def _default_out(sc: Scenario, mode: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", sc.name)
    return Path("runs") / f"{name}-{mode}-{sc.integration.profile}-s{sc.seed}-{stamp}"


MEMORY = {"auto": None, "cold": True, "warm": False}  # --memory -> run_virtual(cold=...)


def _runner(mode: str, memory: str = "auto") -> Any:
    if mode == "virtual":
        from sim.virtual import run_virtual

        return run_virtual if memory == "auto" else functools.partial(run_virtual, cold=MEMORY[memory])
    if mode == "live":
        try:
            from sim.live import run_live  # type: ignore[import-not-found]
        except ImportError:
            raise typer.BadParameter("live mode is not available in this build; use --mode virtual") from None
        return run_live
    raise typer.BadParameter(f"--mode must be virtual or live, got {mode!r}")


def _live_runner(run: Any, console: Console, sut: str | None, port_base: int | None) -> Any:
    """run_live with the CLI's options, its warnings printed, its failures as a clear message (exit 1)."""

    def go(sc: Scenario, **kw: Any) -> Any:
        with live_failures_exit(console, "live run"):
            return run(
                sc,
                sut_url=sut,
                port_base=port_base,
                warn=lambda m: console.print(f"[yellow]warning: {m}[/yellow]"),
                **kw,
            )

    return go


@contextmanager
def live_failures_exit(console: Console, what: str) -> Iterator[None]:
    """A live run's failure as one red line and exit 1; Ctrl-C (its children already stopped) as 130."""
    from sim.live import LiveError

    try:
        yield
    except LiveError as e:
        console.print(f"[red]{what} failed: {e}[/red]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[red]interrupted: every child process was stopped[/red]")
        raise typer.Exit(130) from None


def _replicate(args: tuple[str, dict[str, Any], int, str, bool, str]) -> tuple[int, dict[str, Any], list[str], str]:
    """One replication in a worker process (top level: must be picklable)."""
    mode, scenario_data, seed, out, report, memory = args
    run = _runner(mode, memory)
    r = run(Scenario.model_validate(scenario_data), seed=seed, out=out, report=report)
    return seed, r.kpis, [str(b) for b in r.breaches], out


def _progress_run(run: Any, sc: Scenario, out: Path, console: Console, quiet: bool) -> Any:
    if quiet:
        return run(sc, out=out)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.fields[phase]:<9}"),
        BarColumn(),
        TextColumn("day {task.fields[day]:>6.1f}"),
        TextColumn("{task.fields[orders]:>8,} orders"),
        TextColumn("{task.fields[rate]:>9,.0f} orders/s"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("run", total=float(sc.horizon), phase="run", day=0.0, orders=0, rate=0.0)

        def tick(p: Any) -> None:
            total = p.until_s if p.phase == "drain" else float(sc.horizon)
            rate = p.orders / p.wall_s if p.wall_s > 0 else 0.0
            bar.update(
                task, completed=p.sim_s, total=total, phase=p.phase, day=p.sim_s / 86400, orders=p.orders, rate=rate
            )

        return run(sc, out=out, progress=tick)


def run_cmd(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    mode: str = typer.Option("virtual", "--mode", help="virtual (one SimPy process) or live (HTTP)"),
    profile: str | None = typer.Option(None, "--profile", help="integration profile: naive or resilient"),
    seed: int | None = typer.Option(None, "--seed", help="override the scenario's seed"),
    sets: list[str] = typer.Option([], "--set", help="override a scenario value: dotted.key=value (repeatable)"),
    out: Path | None = typer.Option(
        None, "--out", help="run folder (default runs/<name>-<mode>-<profile>-s<seed>-<time>)"
    ),
    replications: int = typer.Option(1, "--replications", "-n", min=1, help="independent replications (parallel)"),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="worker processes for replications"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    memory: str = typer.Option(
        "auto",
        "--memory",
        help="virtual: cold pages idle per-order state out to disk (less memory; more CPU in small runs), warm "
        "keeps it all in memory, auto: cold from demand.orders >= 100000, else warm. Results are the same "
        "either way",
    ),
    sut: str | None = typer.Option(
        None, "--sut", help="live mode against your own integration at this URL (see docs/sut-contract.md)"
    ),
    port_base: int | None = typer.Option(
        None,
        "--port-base",
        help="live: crm on this port, erp +1, wms +2, carrier +3 (default: 8701 with --sut, else free)",
    ),
) -> None:
    """Run a scenario and write its run folder (KPIs, orders, events, calls, report)."""
    console = Console()
    if profile is not None and profile not in ("naive", "resilient"):
        raise typer.BadParameter("--profile must be naive or resilient")
    if sut is not None:
        if not re.match(r"^https?://[^/\s]+", sut):
            raise typer.BadParameter(f"--sut must be an http(s) URL, got {sut!r}")
        mode = "live"  # an external integration can only be driven over HTTP
    if memory not in MEMORY:
        raise typer.BadParameter(f"--memory must be auto, cold or warm, got {memory!r}")
    if port_base is not None and not (0 <= port_base <= 65532):
        raise typer.BadParameter(f"--port-base must be 0..65532, got {port_base}")
    sc = _load(scenario, list(sets), seed)
    if profile is not None:
        data = sc.model_dump(mode="json")
        data["integration"]["profile"] = profile
        sc = Scenario.model_validate(data)
    if mode == "live" and memory != "auto":
        raise typer.BadParameter(f"--memory {memory} applies to virtual runs; a live run's state is in its services")
    run = _runner(mode, memory)
    if mode == "live":
        run = _live_runner(run, console, sut, port_base if port_base is not None else (8701 if sut else None))
    folder = out or _default_out(sc, mode)

    if replications == 1:
        r = _progress_run(run, sc, folder, console, quiet)
        console.print(kpi_table(r.kpis, f"{sc.name} ({mode}, {sc.integration.profile}, seed {sc.seed})"))
        console.print(f"run folder: {r.out or folder}")
        _exit_on_breach(console, [str(b) for b in r.breaches])
        return

    seeds = replication_seeds(sc.seed, replications)
    data = sc.model_dump(mode="json")
    tasks = [(mode, data, s, str(folder / f"rep-{i:03d}-s{s}"), False, memory) for i, s in enumerate(seeds)]
    workers = min(replications, jobs or os.cpu_count() or 1)
    results: list[tuple[int, dict[str, Any], list[str], str]] = []
    with console.status(f"{replications} replications on {workers} processes") as status:
        if workers == 1:
            for i, t in enumerate(tasks):
                results.append(_replicate(t))
                status.update(f"replication {i + 1}/{replications} done")
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for i, res in enumerate(pool.map(_replicate, tasks)):
                    results.append(res)
                    status.update(f"replication {i + 1}/{replications} done")
    summary = summarize([k for _, k, _, _ in results])
    _write_summary(folder, sc, seeds, results, summary)
    t = Table(title=f"{sc.name}: {replications} replications ({mode}, {sc.integration.profile})", header_style="bold")
    for col in ("KPI", "mean", "95% CI", "n"):
        t.add_column(col, justify="left" if col == "KPI" else "right")
    for s in summary:
        ci = "–" if s.low is None else f"[{_fmt(s.low, s.name)}, {_fmt(s.high, s.name)}]"
        t.add_row(s.name, _fmt(s.mean, s.name), ci, str(s.n))
    console.print(t)
    console.print(f"run folders: {folder}/rep-*")
    _exit_on_breach(console, sorted({b for _, _, bs, _ in results for b in bs}))


def _write_summary(folder: Path, sc: Scenario, seeds: list[int], results: list[Any], summary: list[Any]) -> None:
    import json
    from dataclasses import asdict

    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "scenario": sc.name,
        "base_seed": sc.seed,
        "seeds": seeds,
        "runs": [{"seed": s, "out": o, "breaches": b} for s, _, b, o in results],
        "summary": [asdict(s) for s in summary],
    }
    (folder / "replications.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def _exit_on_breach(console: Console, breaches: list[str]) -> None:
    if not breaches:
        console.print("[green]all SLOs met[/green]")
        return
    console.print("[red bold]SLO breached:[/red bold]")
    for b in breaches:
        console.print(f"  [red]{b}[/red]")
    raise typer.Exit(SLO_BREACH_EXIT)


def compare_cmd(
    run_a: Path = typer.Argument(..., help="baseline run folder"),
    run_b: Path = typer.Argument(..., help="run folder to compare against the baseline"),
    out: Path | None = typer.Option(None, "--out", help="overlay chart path (default RUN_B/../compare.png)"),
) -> None:
    """KPI deltas of two runs side by side, and an overlay chart of backlog and latency."""
    from sim.report import overlay_chart
    from sim.runfolder import load_run

    console = Console()
    try:
        a, b = load_run(run_a), load_run(run_b)
    except FileNotFoundError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    t = Table(title=f"{run_a.name}  vs  {run_b.name}", header_style="bold")
    for col in ("KPI", "A", "B", "Δ", "Δ %"):
        t.add_column(col, justify="left" if col == "KPI" else "right")
    for d in compare_kpis(a.kpis, b.kpis):
        rel = "–" if d.rel is None else f"{d.rel:+.1%}"
        delta = "–" if d.delta is None else ("+" if d.delta > 0 else "") + _fmt(d.delta, d.name)
        t.add_row(d.name, _fmt(d.a, d.name), _fmt(d.b, d.name), delta, rel)
    console.print(t)
    path = out or run_b.resolve().parent / "compare.png"
    overlay_chart(
        [
            (f"A: {run_a.name}", a.orders, a.scenario.faults, float(a.kpis.get("sim_s") or 0)),
            (f"B: {run_b.name}", b.orders, b.scenario.faults, float(b.kpis.get("sim_s") or 0)),
        ],
        path,
    )
    console.print(f"overlay chart: {path}")


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("compare")(compare_cmd)
