"""`twin integration ...`: run the bundled reference integration as a live service."""

from __future__ import annotations

from typing import Annotated

import typer

integration = typer.Typer(help="The bundled reference integration (the system under test).", no_args_is_help=True)


@integration.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8700,
    profile: Annotated[
        str | None, typer.Option(help="naive | resilient (default: the scenario's, else TWIN_PROFILE, else resilient)")
    ] = None,
    scenario: Annotated[
        str | None, typer.Option(help="scenario file: its `integration` section configures the policies")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a scenario value, key=value")] = None,
    crm_url: Annotated[str | None, typer.Option(help="CRM base URL (default TWIN_CRM_URL)")] = None,
    erp_url: Annotated[str | None, typer.Option(help="ERP base URL (default TWIN_ERP_URL)")] = None,
    wms_url: Annotated[str | None, typer.Option(help="WMS base URL (default TWIN_WMS_URL)")] = None,
    carrier_url: Annotated[str | None, typer.Option(help="carrier base URL (default TWIN_CARRIER_URL)")] = None,
    db: Annotated[str | None, typer.Option(help='SQLite file (default: TWIN_DB or integration.db; ":memory:")')] = None,
    log_level: Annotated[str, typer.Option(help="debug | info | warning")] = "info",
    calls_log: Annotated[
        str | None, typer.Option(help="append every downstream call attempt to this JSON-lines file (TWIN_CALLS_LOG)")
    ] = None,
) -> None:
    """Serve webhooks, admin API and /metrics. Mock URLs and secrets come from TWIN_* variables
    (see docs/sut-contract.md); options override them."""
    import logging

    import uvicorn

    from reference_integration.app import Settings, configure_logging, create_app
    from reference_integration.config import IntegrationConfig

    if profile is not None and profile not in ("naive", "resilient"):
        raise typer.BadParameter("profile must be naive or resilient", param_hint="--profile")
    given = {"profile": profile, "db": db, "crm_url": crm_url, "erp_url": erp_url, "wms_url": wms_url}
    given["carrier_url"] = carrier_url
    given["calls_log"] = calls_log
    settings = Settings(**{k: v for k, v in given.items() if v is not None})  # type: ignore[arg-type]
    config = None
    if scenario is not None:
        from sim.scenario import load_scenario

        sc = load_scenario(scenario, list(set_ or []))  # ScenarioError is reported by sim.cli.main
        integ = sc.integration if profile is None else sc.integration.model_copy(update={"profile": profile})
        config = IntegrationConfig.from_scenario(integ, sc.systems)
    configure_logging(getattr(logging, log_level.upper(), logging.INFO))
    uvicorn.run(create_app(settings, config=config), host=host, port=port, log_level=log_level, access_log=False)


def register(app: typer.Typer) -> None:
    app.add_typer(integration, name="integration")
