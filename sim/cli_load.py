"""``twin load``: Locust load test of the live twin (see ``sim/loadrun.py``, ``docs/load-testing.md``)."""

from __future__ import annotations

from pathlib import Path

import typer

from sim.scenario import parse_duration


def _seconds(v: str) -> float:
    try:
        return float(parse_duration(v))  # type: ignore[arg-type]
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def load(
    scenario: Path = typer.Argument(..., help="scenario YAML whose demand curve shapes the load"),
    duration: str = typer.Option("30s", "--duration", "-d", help="test length, e.g. 30s, 5m"),
    peak_rps: float = typer.Option(5.0, "--peak-rps", help="orders per second at the busiest step", min=0.001),
    workers: int = typer.Option(1, "--workers", "-w", help="local Locust worker processes (0: one process)", min=0),
    remote_workers: int = typer.Option(
        0, "--remote-workers", help="extra workers to wait for, started elsewhere with --master-host", min=0
    ),
    users: int | None = typer.Option(None, "--users", "-u", help="users at the peak (default peak-rps x 2 s)", min=1),
    sut: str | None = typer.Option(
        None, "--sut", help="integration URL already running: don't start the reference one"
    ),
    crm_url: str | None = typer.Option(
        None, "--crm-url", help="mocks already running: the CRM's URL (don't start mocks)"
    ),
    erp_url: str | None = typer.Option(None, "--erp-url", help="with --crm-url: the ERP's URL (ATP checks, ledger)"),
    admin_token: str | None = typer.Option(None, "--admin-token", help="mocks' admin token (default TWIN_ADMIN_TOKEN)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="run folder (default runs/load-<scenario>-<time>)"),
    master_host: str = typer.Option("127.0.0.1", "--master-host", help="address the Locust master binds to"),
    master_port: int | None = typer.Option(None, "--master-port", help="Locust master port (default: a free one)"),
    drain: str = typer.Option("10s", "--drain", help="after the load, wait up to this long for orders to reach ERP"),
    p50: float | None = typer.Option(None, "--p50", help="fail when the request median exceeds this many seconds"),
    p95: float | None = typer.Option(None, "--p95", help="fail when request p95 exceeds this many seconds"),
    p99: float | None = typer.Option(None, "--p99", help="fail when request p99 exceeds this many seconds"),
    overrides: list[str] = typer.Option([], "--set", help="override a scenario value, e.g. slo.failure_ratio=0.01"),
) -> None:
    """Load-test the live twin with Locust at the scenario's demand curve; exit 1 on an SLO breach.

    Starts the mocks and the reference integration on free loopback ports (unless --crm-url / --sut
    say where they run), runs Locust headless with one master and --workers local workers, then
    reconciles what Locust submitted against the mocks' ledgers.
    """
    from sim.loadrun import LoadError, LoadOptions, format_summary, run_load

    opts = LoadOptions(
        scenario=scenario,
        overrides=list(overrides),
        duration_s=_seconds(duration),
        peak_rps=peak_rps,
        workers=workers,
        remote_workers=remote_workers,
        users=users,
        sut=sut,
        crm_url=crm_url,
        erp_url=erp_url,
        admin_token=admin_token,
        out=out,
        master_host=master_host,
        master_port=master_port,
        drain_s=_seconds(drain),
        max_p50_s=p50,
        max_p95_s=p95,
        max_p99_s=p99,
    )
    if opts.duration_s <= 0:
        raise typer.BadParameter("must be > 0", param_hint="--duration")
    try:
        result = run_load(opts, echo=typer.echo)
    except LoadError as e:
        typer.echo(f"load: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(format_summary(result))
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command("load")(load)
