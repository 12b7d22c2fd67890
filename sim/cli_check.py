"""`twin check`: the CI resilience regression suite (see ``sim.check`` and ``docs/ci.md``).

Exit status: 0 every check passed; 1 an SLO was breached, a KPI regressed beyond the baseline, a
scenario failed to load or run, or the input was bad.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sim.check import CheckError, CheckReport, ScenarioResult, run_checks, write_junit

DEFAULT_BASELINE = Path("twin-baseline.json")


def _fmt(v: float | None) -> str:
    if v is None:
        return "never"
    if float(v).is_integer() and abs(v) < 1e12:
        return f"{int(v):,}"
    return f"{v:,.4g}"


def result_table(rep: CheckReport) -> Table:
    t = Table(title="twin check", header_style="bold", show_lines=False)
    for col, just in (("scenario", "left"), ("check", "left"), ("limit", "right"), ("measured", "right"), ("", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rep.results:
        label = escape(f"{r.name} [{r.profile}]")
        if r.error is not None:
            t.add_row(label, "run", "", "", "[red bold]ERROR[/]")
            continue
        if r.skipped is not None:
            t.add_row(label, escape(r.skipped.split(":")[0]), "", "", "[yellow]SKIP[/]")
            continue
        for i, c in enumerate(r.checks):
            verdict = "[green]PASS[/]" if c.passed else "[red bold]FAIL[/]"
            t.add_row(label if i == 0 else "", c.name, _fmt(c.limit), _fmt(c.measured), verdict)
        if not r.checks:
            t.add_row(label, "(no SLOs in scenario)", "", "", "[green]PASS[/]")
    return t


def check_cmd(
    paths: Annotated[list[Path], typer.Argument(help="scenario files or folders (folders skip _*.yaml bases)")],
    mode: str = typer.Option("virtual", "--mode", help="virtual (one SimPy process) or live (HTTP)"),
    profile: str = typer.Option("resilient", "--profile", help="integration profile: naive or resilient"),
    junit: Path | None = typer.Option(None, "--junit", help="write a JUnit XML report here"),
    baseline: Path | None = typer.Option(None, "--baseline", help="KPI baseline JSON: fail on regressions"),
    update_baseline: bool = typer.Option(
        False,
        "--update-baseline",
        help=f"write the KPIs as the new baseline (to --baseline, default {DEFAULT_BASELINE})",
    ),
    tolerance: list[str] = typer.Option(
        [], "--tolerance", help="regression tolerance, e.g. p99=0.2 (default), p95=0.1, fallout_rate=0.01 (repeatable)"
    ),
    out: Path | None = typer.Option(
        None, "--out", help="write each scenario's run folder (and HTML report) under here"
    ),
    sets: list[str] = typer.Option([], "--set", help="override a value in every scenario: dotted.key=value"),
    seed: int | None = typer.Option(None, "--seed", help="override every scenario's seed"),
    sut_url: str | None = typer.Option(
        None, "--sut-url", help="live mode: test your own integration at this base URL instead of the reference one"
    ),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="scenarios run in parallel processes (virtual mode)"),
) -> None:
    """Run scenarios as a regression suite: SLO checks (and a KPI baseline) -> table, JUnit XML, exit 1 on any failure."""
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 140)  # CI logs: keep check names whole
    if update_baseline and baseline is None:
        baseline = DEFAULT_BASELINE

    def progress(r: ScenarioResult) -> None:
        state = "ERROR" if r.error else "SKIP" if r.skipped else "FAIL" if r.failed else "ok"
        console.print(escape(f"  {r.name} [{r.profile}, {r.mode}] {state} ({r.wall_s:.1f} s)"), highlight=False)

    try:
        rep = run_checks(
            paths,
            mode=mode,
            profile=profile,
            sets=sets,
            seed=seed,
            out=out,
            jobs=jobs,
            baseline=baseline,
            update_baseline=update_baseline,
            tolerance=tolerance,
            report=out is not None,
            sut_url=sut_url,
            on_result=progress,
        )
    except CheckError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    console.print(result_table(rep))
    for r in rep.results:
        if r.error is not None:
            console.print(f"[red]{escape(r.path)}:[/red] {escape(r.error)}", highlight=False)
    if junit is not None:
        console.print(f"JUnit report: {write_junit(rep, junit)}")
    if rep.baseline_written:
        console.print(f"baseline written: {rep.baseline_written}")
    if out is not None:
        console.print(f"run folders: {out}")
    n_checks = len(rep.checks)
    failures = rep.failures()
    errors = [r for r in rep.results if r.error is not None]
    skipped = sum(1 for r in rep.results if r.skipped is not None)
    summary = (
        f"{len(rep.results)} scenarios, {n_checks} checks, {len(failures)} failed, "
        f"{len(errors)} errors, {skipped} skipped in {rep.wall_s:.1f} s"
    )
    if rep.ok:
        console.print(f"[green]{summary}[/green]", highlight=False)
        return
    console.print(f"[red bold]{summary}[/red bold]", highlight=False)
    for c in failures:
        console.print(f"  [red]{escape(c.scenario)}: {escape(c.message())}[/red]", highlight=False)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("check")(check_cmd)
