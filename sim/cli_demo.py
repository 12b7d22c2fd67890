"""`twin demo` (the main job: the quarter-end demo, naive vs resilient, side by side) and
`twin fidelity` (the same scenario virtually and live, KPIs compared).

Exit status: ``twin demo`` 0 when both runs completed (the naive profile is expected to breach its
SLOs: that is the point); ``twin fidelity`` 0 when virtual and live agree, 1 when they do not (or bad
input).
"""

from __future__ import annotations

import html
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sim.scenario import Scenario

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_SCENARIO = Path("scenarios") / "demo.yaml"
PROFILES = ("naive", "resilient")

# Rows of the demo table: (kpis path, label, better): better = "lower" | "higher" | None (neutral).
COUNTS = (
    ("orders_submitted", "orders", None),
    ("completed", "completed", "higher"),
    ("in_transit", "in transit at the end", None),
    ("lost", "lost", "lower"),
    ("duplicates", "duplicates", "lower"),
    ("stuck", "stuck", "lower"),
    ("mismatches", "mismatches", "lower"),
    ("dlq", "dead-lettered", "lower"),
    ("fallout_rate", "fallout rate", "lower"),
)
TAIL = (("retries", "retries", None), ("breaker_opens", "breaker opens", None), ("wall_s", "wall seconds", None))


# --------------------------------------------------------------------------------------- helpers


def _scenario_path(path: Path | None) -> Path:
    if path is not None:
        return path
    return DEMO_SCENARIO if DEMO_SCENARIO.exists() else REPO_ROOT / DEMO_SCENARIO


def _load(path: Path, sets: list[str], seed: int | None) -> Scenario:
    from sim.cli_run import _load as load

    return load(path, sets, seed)


def _get(kpis: dict[str, Any], path: str) -> float | None:
    from sim.compare import value

    return value(kpis, path)


def _fmt(v: float | None, name: str = "") -> str:
    from sim.cli_run import _fmt as fmt

    return fmt(v, name)


def _dur(s: float) -> str:
    if s >= 86400 and s % 3600 == 0:
        return f"day {int(s // 86400) + 1} {int(s % 86400 // 3600):02d}:00"
    return f"{s / 3600:.1f} h"


def demo_rows(kpis: dict[str, dict[str, Any]], scenario: Scenario) -> list[tuple[str, str, str | None]]:
    """(path, label, better) for every row of the demo table."""
    rows: list[tuple[str, str, str | None]] = list(COUNTS)
    from sim.scenario import MILESTONES

    for m in MILESTONES:
        for p in ("p50", "p95"):
            rows.append((f"latency_s.{m}.{p}", f"{m} latency {p}", "lower"))
    rows += list(TAIL[:2])
    for w in scenario.faults:
        rows.append((f"fault_windows.{w.name}.recovery_s", f"{w.name}: recovery", "lower"))
        rows.append((f"fault_windows.{w.name}.max_backlog", f"{w.name}: max backlog", "lower"))
    rows.append(TAIL[2])
    return rows


NOISE = 0.05  # relative differences below this are not called better or worse (timings jitter)


def _verdict(a: float | None, b: float | None, better: str | None) -> str:
    """'better' | 'worse' | '' for b (resilient) against a (naive)."""
    if better is None or a is None or b is None or a == b:
        return ""
    if abs(b - a) <= NOISE * max(abs(a), abs(b)) and not float(a).is_integer():
        return ""
    return "better" if (b < a) == (better == "lower") else "worse"


def demo_table(kpis: dict[str, dict[str, Any]], scenario: Scenario, mode: str) -> Table:
    t = Table(title=f"{scenario.name} ({mode}): naive vs resilient", header_style="bold")
    t.add_column("KPI")
    for p in PROFILES:
        t.add_column(p, justify="right")
    t.add_column("", justify="left")
    for path, label, better in demo_rows(kpis, scenario):
        a, b = _get(kpis["naive"], path), _get(kpis["resilient"], path)
        v = _verdict(a, b, better)
        style = {"better": "bold green", "worse": "red"}.get(v, "")
        mark = {"better": "✔ better", "worse": "✘ worse"}.get(v, "")
        t.add_row(label, _fmt(a, path), Text(_fmt(b, path), style=style), Text(mark, style=style))
    return t


def verdict_line(kpis: dict[str, dict[str, Any]]) -> str:
    """One sentence on what the table shows: fallout of each profile, named by kind."""

    def fallout(k: dict[str, Any]) -> str:
        labels = {key: label for key, label, _ in COUNTS}
        keys = ("lost", "duplicates", "stuck", "mismatches", "dlq")
        parts = [f"{int(k[key])} {labels[key]}" for key in keys if k.get(key)]
        rate = float(k.get("fallout_rate") or 0.0)
        return (", ".join(parts) or "no fallout") + f" ({rate:.1%} of {int(k.get('orders_submitted') or 0)} orders)"

    return (
        f"Under the same faults, naive ended with {fallout(kpis['naive'])}; "
        f"resilient with {fallout(kpis['resilient'])}. Latencies are seconds of HTTP plus the world's hours."
    )


def explanation(scenario: Scenario, mode: str) -> Panel:
    lines = [
        f"[bold]{scenario.name}[/bold]: {scenario.description or ''}".rstrip(),
        f"seed {scenario.seed}, horizon {scenario.horizon / 86400:g} days, "
        + (
            f"live: the four mocks and the integration as processes on loopback, "
            f"{scenario.live.compression / 3600:g} simulated hours per wall second"
            if mode == "live"
            else "virtual: one SimPy process, simulated network"
        ),
        "Faults:",
    ]
    for w in scenario.faults:
        where = f"{w.system.value} " if w.system else ""
        lines.append(f"  • {w.name}: {where}{w.kind.value} from {_dur(w.start)} for {w.duration / 3600:g} h")
    lines.append(
        "The same world, demand and faults run twice: [bold]naive[/bold] (no retries, no idempotency, no dedup) "
        "and [bold]resilient[/bold] (retries with backoff, breakers, idempotency keys, webhook dedup, DLQ). "
        "Every order is reconciled against the mocks' ledgers."
    )
    return Panel("\n".join(lines), title="Distribution Twin demo", expand=False)


def write_comparison(folder: Path, runs: dict[str, Any], scenario: Scenario, mode: str) -> tuple[Path, Path]:
    """compare.png (backlog and latency overlaid) and compare.html (KPIs side by side, links)."""
    import base64

    from sim.report import overlay_chart

    png = folder / "compare.png"
    data = overlay_chart(
        [(p, r.orders, scenario.faults, float(r.kpis.get("sim_s") or 0)) for p, r in runs.items()],
        png,
    )
    kpis = {p: r.kpis for p, r in runs.items()}
    body = []
    for path, label, better in demo_rows(kpis, scenario):
        a, b = _get(kpis["naive"], path), _get(kpis["resilient"], path)
        cls = _verdict(a, b, better)
        body.append(
            f"<tr><td>{html.escape(label)}</td><td>{_fmt(a, path)}</td><td class='{cls}'>{_fmt(b, path)}</td></tr>"
        )
    links = " · ".join(f"<a href='{p}/report.html'>{p} report</a>" for p in runs)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(scenario.name)}: naive vs resilient</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #eee; padding: 2px 12px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }} .better {{ color: #2e7d32; font-weight: bold; }}
.worse {{ color: #c62828; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>{html.escape(scenario.name)} ({mode}): naive vs resilient</h1>
<p>{links}</p>
<table><tr><th>KPI</th><th>naive</th><th>resilient</th></tr>
{"".join(body)}
</table>
<img alt="compare" src="data:image/png;base64,{base64.b64encode(data).decode()}">
</body></html>
"""
    page_path = folder / "compare.html"
    page_path.write_text(page, encoding="utf-8")
    return png, page_path


def _runner(virtual: bool, console: Console) -> Any:
    if virtual:
        from sim.virtual import run_virtual

        return run_virtual
    from sim.live import run_live

    def go(sc: Scenario, **kw: Any) -> Any:
        return run_live(sc, warn=lambda m: console.print(f"[yellow]warning: {m}[/yellow]"), **kw)

    return go


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _run_live_pair(sc: Scenario, folder: Path, console: Console) -> dict[str, Any]:
    """Both profiles live at the same time, each a ``twin run --mode live`` child with its own twin.

    A live run is mostly waiting on its compressed clock (a quarter of a core at the demo's volume),
    so two side by side take the time of one. Ctrl-C or SIGTERM reaches both children as SIGINT, and
    each stops its own processes."""
    import signal
    import subprocess

    from sim.procs import TWIN, sigterm_as_interrupt
    from sim.runfolder import load_run
    from sim.scenario import dump_scenario

    folder.mkdir(parents=True, exist_ok=True)
    sc_file = folder / "scenario.yaml"
    sc_file.write_text(dump_scenario(sc), encoding="utf-8")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {p: folder / f"{p}.log" for p in PROFILES}
    t0 = time.perf_counter()
    with sigterm_as_interrupt():
        try:
            for p in PROFILES:
                cmd = [*TWIN, "run", str(sc_file), "--mode", "live", "--profile", p, "--out", str(folder / p), "-q"]
                with logs[p].open("wb") as log:
                    procs[p] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            with console.status("live: starting") as status:
                while any(pr.poll() is None for pr in procs.values()):
                    state = " · ".join(
                        f"{p} {'done' if pr.poll() is not None else 'running'}" for p, pr in procs.items()
                    )
                    status.update(f"live: {state} · {time.perf_counter() - t0:.0f} s")
                    time.sleep(0.5)
        except KeyboardInterrupt:
            for pr in procs.values():
                if pr.poll() is None:
                    pr.send_signal(signal.SIGINT)
            for pr in procs.values():
                try:
                    pr.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pr.kill()
            console.print("[red]interrupted: every child process was stopped[/red]")
            raise typer.Exit(130) from None
    from sim.cli_run import SLO_BREACH_EXIT

    failed = [p for p, pr in procs.items() if pr.returncode not in (0, SLO_BREACH_EXIT)]
    for p in failed:
        console.print(f"[red]{p} (live) failed (exit {procs[p].returncode}); last lines of {logs[p]}:[/red]")
        console.print(_tail(logs[p]), markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)
    runs = {p: load_run(folder / p) for p in PROFILES}
    for p, r in runs.items():
        console.print(f"[dim]{p}: done in {r.kpis['wall_s']:.1f} s[/dim]")
    return runs


def _run_one(run: Any, sc: Scenario, profile: str, out: Path, console: Console, label: str) -> Any:
    from sim.cli_run import live_failures_exit

    with console.status(f"{label}: starting") as status:

        def tick(p: Any) -> None:
            status.update(f"{label}: {p.phase} · day {p.sim_s / 86400:.2f} · {p.orders} orders · {p.wall_s:.0f} s")

        with live_failures_exit(console, label):
            return run(sc, profile=profile, out=out, progress=tick)


# --------------------------------------------------------------------------------------- commands


def demo_cmd(
    virtual: bool = typer.Option(False, "--virtual", help="fast path: both runs in virtual mode (seconds)"),
    out: Path | None = typer.Option(None, "--out", help="output folder (default runs/demo-<time>)"),
    scenario: Path | None = typer.Option(None, "--scenario", help="scenario file (default scenarios/demo.yaml)"),
    seed: int | None = typer.Option(None, "--seed", help="override the scenario's seed"),
    sets: list[str] = typer.Option([], "--set", help="override a scenario value: dotted.key=value (repeatable)"),
) -> None:
    """The quarter-end demo: surge, ERP brown-out, carrier rate-limit storm, duplicate WMS webhooks,
    run for the naive and the resilient integration, KPIs side by side."""
    console = Console()
    sc = _load(_scenario_path(scenario), list(sets), seed)
    mode = "virtual" if virtual else "live"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = out or Path("runs") / f"demo-{stamp}"
    console.print(explanation(sc, mode))
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    if virtual:
        run = _runner(virtual, console)
        for p in PROFILES:
            results[p] = _run_one(run, sc, p, folder / p, console, f"{p} ({mode})")
            console.print(f"[dim]{p}: done in {results[p].kpis['wall_s']:.1f} s[/dim]")
    else:
        results = _run_live_pair(sc, folder, console)
    png, page = write_comparison(folder, results, sc, mode)
    kpis = {p: r.kpis for p, r in results.items()}
    console.print(demo_table(kpis, sc, mode))
    console.print(verdict_line(kpis))
    for p, r in results.items():
        lag = (
            " [yellow](live clock lag exceeded: timings approximate)[/yellow]"
            if r.kpis.get("clock_lag_exceeded")
            else ""
        )
        console.print(f"{p:9s} report: {Path(getattr(r, 'out', None) or r.path) / 'report.html'}{lag}")
    console.print(f"comparison: {page}  chart: {png}")
    console.print(f"[dim]total {time.perf_counter() - t0:.1f} s[/dim]")
    (folder / "demo.json").write_text(
        json.dumps({"mode": mode, "scenario": sc.name, "seed": sc.seed, "kpis": kpis}, indent=2, default=str) + "\n",
        encoding="utf-8",
    )


def fidelity_table(rows: list[Any], title: str) -> Table:
    t = Table(title=title, header_style="bold")
    for col in ("KPI", "virtual", "live", "Δ %", ""):
        t.add_column(col, justify="left" if col in ("KPI", "") else "right", no_wrap=True)
    for r in rows:
        rel = "–" if r.rel is None else f"{r.rel:+.1%}"
        if not r.judged:
            mark = Text(r.note or "not judged", style="dim")
        else:
            mark = Text("ok", style="green") if r.ok else Text("DIFFERS", style="bold red")
        label = r.name.removeprefix("latency_s.").replace(".", " ")
        t.add_row(label, _fmt(r.virtual, r.name), _fmt(r.live, r.name), rel, mark)
    return t


def fidelity_cmd(
    scenario: Path = typer.Argument(..., help="scenario YAML file (e.g. scenarios/fidelity.yaml)"),
    profile: str | None = typer.Option(None, "--profile", help="integration profile: naive or resilient"),
    seed: int | None = typer.Option(None, "--seed", help="override the scenario's seed"),
    sets: list[str] = typer.Option([], "--set", help="override a scenario value: dotted.key=value (repeatable)"),
    out: Path | None = typer.Option(None, "--out", help="folder for both run folders (default runs/fidelity-<time>)"),
) -> None:
    """Run a scenario virtually and live (same seed and profile) and compare the KPIs: exit 1 when
    fallout counts differ by more than 10 % (or 2 orders) or milestone latency p50/p95 by more than 20 %
    (latencies in model time: a live run's HTTP segments in wall seconds, see docs/internals.md)."""
    from sim.fidelity import COUNT_REL, LATENCY_REL, compare, passed
    from sim.virtual import resolve

    console = Console()
    if profile is not None and profile not in PROFILES:
        raise typer.BadParameter(f"--profile must be naive or resilient, got {profile!r}")
    sc = resolve(_load(scenario, list(sets), seed), profile)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", sc.name)
    folder = out or Path("runs") / f"fidelity-{name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    v = _run_one(_runner(True, console), sc, sc.integration.profile, folder / "virtual", console, "virtual")
    lv = _run_one(_runner(False, console), sc, sc.integration.profile, folder / "live", console, "live")
    rows = compare(v.kpis, lv.kpis)
    title = f"{sc.name}: virtual vs live ({sc.integration.profile}, seed {sc.seed}, {sc.live.compression:g}x)"
    console.print(fidelity_table(rows, title))
    console.print(f"runs: {folder / 'virtual'}  {folder / 'live'}   (live wall {lv.kpis['wall_s']:.1f} s)")
    (folder / "fidelity.json").write_text(
        json.dumps({"passed": passed(rows), "rows": [r.__dict__ if hasattr(r, "__dict__") else _row(r) for r in rows]},
                   indent=2) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    if passed(rows):
        console.print("[green]fidelity: virtual and live agree[/green]")
        return
    console.print(
        f"[red bold]fidelity: virtual and live differ[/red bold] (fallout > {COUNT_REL:.0%} or 2 orders, "
        f"latency > {LATENCY_REL:.0%})"
    )
    raise typer.Exit(1)


def _row(r: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(r)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
    app.command("fidelity")(fidelity_cmd)
