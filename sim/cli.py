"""The ``twin`` command. Each area registers its commands from its own module (``sim/cli_*.py``)."""

from __future__ import annotations

import sys

import typer

from sim.scenario import ScenarioError

app = typer.Typer(
    name="twin",
    help="Distribution Twin: simulate a distributor's CRM, ERP, WMS and carriers and test the integration between them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Distribution Twin: simulate a distributor's CRM, ERP, WMS and carriers and test the integration between them."""


# Explicit list: importing a module registers its commands on ``app``.
from sim import cli_check, cli_demo, cli_integration, cli_load, cli_mocks, cli_run, cli_scenario, cli_sweep  # noqa: E402

for _module in (cli_scenario, cli_mocks, cli_integration, cli_run, cli_load, cli_demo, cli_sweep, cli_check):
    _module.register(app)


@app.command()
def version() -> None:
    """Print the installed version."""
    from importlib.metadata import version as _v

    typer.echo(_v("distribution-twin"))


def main() -> None:
    try:
        app()
    except ScenarioError as e:
        for p in e.problems:
            typer.echo(p, err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
