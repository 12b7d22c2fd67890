"""`twin mocks ...`: serve the four mock systems live."""

from __future__ import annotations

import os
from typing import Annotated

import typer

mocks_app = typer.Typer(help="Run the mock CRM, ERP, WMS and carrier servers.", no_args_is_help=True)


@mocks_app.command("serve")
def serve(
    scenario: Annotated[str | None, typer.Argument(help="scenario YAML (default: built-in defaults)")] = None,
    one_process: Annotated[
        bool, typer.Option("--one-process/--separate", help="all mocks in one process, or one process each")
    ] = True,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port_base: Annotated[
        int,
        typer.Option(help="crm on this port, erp +1, wms +2, carrier +3; taken ports fall back to free ones; 0 = any"),
    ] = 8701,
    only: Annotated[list[str] | None, typer.Option(help="serve only these systems (repeatable)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a scenario value, key=value")] = None,
    webhook_base: Annotated[
        str,
        typer.Option(
            envvar="TWIN_INTEGRATION_URL", help="integration base URL; webhooks go to <base>/webhooks/<source>"
        ),
    ] = "http://127.0.0.1:8700",
    webhook_delay_scale: Annotated[
        float, typer.Option(help="wall seconds per scenario second for webhook delays and redelivery backoff")
    ] = 1.0,
) -> None:
    """Start the mocks with uvicorn and print their URLs; Ctrl-C stops them cleanly."""
    from mocks import serve as srv

    systems = tuple(only or srv.SYSTEMS)
    bad = [s for s in systems if s not in srv.SYSTEMS]
    if bad:
        raise typer.BadParameter(
            f"unknown system {bad[0]!r}; choose from {', '.join(srv.SYSTEMS)}", param_hint="--only"
        )
    kw = {
        "webhook_base": webhook_base,
        "webhook_secret": os.environ.get("TWIN_WEBHOOK_SECRET", srv.DEFAULT_WEBHOOK_SECRET),
        "webhook_delay_scale": webhook_delay_scale,
    }
    overrides = list(set_ or [])
    sc = srv.load(scenario, overrides)
    try:
        if one_process:
            srv.run_one_process(sc, systems=systems, host=host, port_base=port_base, **kw)
            return
        for s in systems:
            srv.core_class(s)
        raise typer.Exit(srv.run_separate(scenario, overrides, systems=systems, host=host, port_base=port_base, **kw))
    except srv.MockUnavailable as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    app.add_typer(mocks_app, name="mocks")
