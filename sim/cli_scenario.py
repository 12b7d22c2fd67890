"""`twin validate`, `twin schema`, `twin masterdata`, `twin demand`; and ``load_for_cli`` for every other command.

Errors go to stderr as ``FILE: dotted.path: message, got VALUE`` lines and exit with status 1;
commands catch ``ScenarioError`` themselves so that typer's test runner (which bypasses
``sim.cli.main``) sees the same output and exit code as a shell does.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from sim.scenario import Scenario, ScenarioError, load_raw, parse_scenario

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a key, e.g. --set demand.surge.peak_multiplier=4 (repeatable)"),
]
SeedOption = Annotated[int | None, typer.Option("--seed", help="override the scenario seed")]


def report(problems: list[str]) -> None:
    for p in problems:
        typer.echo(p, err=True)


def load_checked(
    path: str | Path, sets: list[str] | tuple[str, ...] | None = None, seed: int | None = None
) -> Scenario:
    """Load with ``extends``, ``--set`` (in order) and ``--seed`` (last), then the cross-field checks
    of ``semantic_problems``; raises ScenarioError listing every problem."""
    from sim.scenario import apply_set

    label = str(path)
    data = load_raw(path)
    for s in [*(sets or ()), *([f"seed={seed}"] if seed is not None else [])]:
        data = apply_set(data, s)
    scenario = parse_scenario(data, label)
    problems = semantic_problems(scenario, label)
    if problems:
        raise ScenarioError(problems)
    return scenario


def load_for_cli(
    path: str | Path, sets: list[str] | tuple[str, ...] | None = None, seed: int | None = None
) -> Scenario:
    """``load_checked`` for commands: on problems print them to stderr and exit with status 1."""
    try:
        return load_checked(path, sets, seed)
    except ScenarioError as e:
        report(e.problems)
        raise typer.Exit(1) from None


def semantic_problems(s: Scenario, label: str) -> list[str]:
    """Checks that need more than one field: things pydantic validates one field at a time miss."""
    from sim.demand import DemandError, intensity

    problems = []
    try:
        intensity(s)
    except DemandError as e:
        problems.append(f"{label}: demand: {str(e).removeprefix('demand: ')}")
    end = s.horizon + s.drain_limit
    for i, f in enumerate(s.faults):
        if f.start >= end:
            problems.append(
                f"{label}: faults.{i}.start: must be before the run ends (horizon + drain_limit = {end:g} s), got {f.start:g}"
            )
    for i, sh in enumerate(s.warehouse.shifts):
        bad = [d for d in sh.days if not 0 <= d <= 6]
        if bad:
            problems.append(f"{label}: warehouse.shifts.{i}.days: must be weekdays 0..6, got {bad}")
    bad_days = [d for d in s.carrier.pickup_days if not 0 <= d <= 6]
    if bad_days:
        problems.append(f"{label}: carrier.pickup_days: must be weekdays 0..6, got {bad_days}")
    return problems


class Format(StrEnum):
    csv = "csv"
    parquet = "parquet"


def register(app: typer.Typer) -> None:
    @app.command()
    def validate(
        files: Annotated[list[Path], typer.Argument(help="scenario files", show_default=False)],
        set_: SetOption = None,
    ) -> None:
        """Check scenario files; print every problem of every file (exit 1 if any)."""
        bad = 0
        for f in files:
            try:
                load_checked(f, set_)
            except ScenarioError as e:
                report(e.problems)
                bad += 1
            else:
                typer.echo(f"ok: {f}")
        if bad:
            raise typer.Exit(1)

    @app.command()
    def schema() -> None:
        """Print the JSON Schema of a scenario file (for editors and linters)."""
        typer.echo(json.dumps(Scenario.model_json_schema(), indent=2))

    @app.command()
    def masterdata(
        scenario: Annotated[Path, typer.Argument(help="scenario file", show_default=False)],
        out: Annotated[Path, typer.Option("--out", help="output directory")],
        fmt: Annotated[Format, typer.Option("--format", help="file format")] = Format.csv,
        set_: SetOption = None,
        seed: SeedOption = None,
    ) -> None:
        """Generate the scenario's master data (customers, SKUs, prices, ...) into files."""
        from sim.masterdata import generate, write
        from sim.rng import Streams

        s = load_for_cli(scenario, set_, seed)
        t0 = time.perf_counter()
        md = generate(s.masterdata, Streams(s.seed))
        paths = write(md, out, fmt.value)
        typer.echo(
            f"{len(md.customers)} customers, {len(md.skus)} SKUs, {len(md.suppliers)} suppliers, "
            f"{len(md.warehouses)} warehouses (seed {s.seed}) in {time.perf_counter() - t0:.1f} s"
        )
        for p in paths:
            typer.echo(f"  {p}")

    @app.command()
    def demand(
        scenario: Annotated[Path, typer.Argument(help="scenario file", show_default=False)],
        out: Annotated[Path | None, typer.Option("--out", help="also write orders and order_lines here")] = None,
        fmt: Annotated[Format, typer.Option("--format", help="file format")] = Format.parquet,
        set_: SetOption = None,
        seed: SeedOption = None,
    ) -> None:
        """Draw the scenario's demand and print orders per week, expected vs drawn."""
        from sim.calendar import WEEK, surge_window
        from sim.demand import DemandError, DemandModel
        from sim.masterdata import generate
        from sim.rng import Streams

        s = load_for_cli(scenario, set_, seed)
        streams = Streams(s.seed)
        try:
            model = DemandModel(s, generate(s.masterdata, streams), streams)
        except DemandError as e:
            report([f"{scenario}: {e}"])
            raise typer.Exit(1) from None
        times = model.arrival_times()
        s0, _ = surge_window(s)
        typer.echo(f"{'week':>4} {'from':>10} {'expected':>10} {'drawn':>8}")
        t = 0.0
        while t < s.horizon:
            t1 = min(t + WEEK, s.horizon)
            drawn = int(((times >= t) & (times < t1)).sum())
            mark = "  surge" if t1 > s0 else ""
            exp = model.expected_count(t, t1)
            typer.echo(f"{int(t // WEEK) + 1:>4} {model.calendar.iso_date(t):>10} {exp:>10.1f} {drawn:>8}{mark}")
            t = t1
        typer.echo(f"total: expected {model.expected_total:.1f}, drawn {len(times)}")
        if out is not None:
            orders, lines = model.frames()
            out.mkdir(parents=True, exist_ok=True)
            for name, df in (("orders", orders), ("order_lines", lines)):
                path = out / f"{name}.{fmt.value}"
                if fmt is Format.csv:
                    df.to_csv(path, index=False)
                else:
                    df.to_parquet(path, index=False)
                typer.echo(f"  {path}")
