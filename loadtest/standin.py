"""A minimal stand-in twin for load-test development and tests: the real CRM and ERP cores behind
their FastAPI adapters and the ``/_twin`` control API, with no live clock, no webhooks and no
integration. ``twin mocks serve`` is the real thing; this only lets the load harness be exercised
(and benchmarked) when that is not what is being measured.

    python -m loadtest.standin --scenario S.yaml --crm-port 8701 --erp-port 8702 --admin-token T
"""

from __future__ import annotations

import argparse
import os
import threading

import simpy
from fastapi import FastAPI

from sim.scenario import Scenario, load_scenario


def build_apps(scenario: Scenario, admin_token: str) -> dict[str, FastAPI]:
    from mocks.crm.api import create_app as crm_app
    from mocks.crm.core import CrmCore
    from mocks.erp.api import create_app as erp_app
    from mocks.erp.core import ErpCore
    from sim.masterdata import generate
    from sim.rng import Streams

    streams = Streams(scenario.seed)
    md = generate(scenario.masterdata, streams)
    env = simpy.Environment()
    apps = {
        "crm": crm_app(CrmCore(env, md, scenario, streams)),
        "erp": erp_app(ErpCore(env, md, scenario, streams)),
    }
    for app in apps.values():
        app.state.admin_token = admin_token
    return apps


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario")
    ap.add_argument("--crm-port", type=int, default=8701)
    ap.add_argument("--erp-port", type=int, default=8702)
    ap.add_argument("--admin-token", default=os.environ.get("TWIN_ADMIN_TOKEN", "twin"))
    a = ap.parse_args(argv)
    scenario = load_scenario(a.scenario) if a.scenario else Scenario(name="default")
    apps = build_apps(scenario, a.admin_token)
    servers = [
        uvicorn.Server(uvicorn.Config(apps["crm"], host="127.0.0.1", port=a.crm_port, log_level="warning")),
        uvicorn.Server(uvicorn.Config(apps["erp"], host="127.0.0.1", port=a.erp_port, log_level="warning")),
    ]
    # One process, two servers: the ERP's in a thread with its own event loop (the cores are shared
    # only through master data, which is read-only).
    t = threading.Thread(target=servers[1].run, daemon=True)
    t.start()
    servers[0].run()


if __name__ == "__main__":
    main()
