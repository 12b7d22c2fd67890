"""World faults (supplier delay, credit-hold spike) run on whichever env hosts the ERP: the live ERP
app schedules them in its own env exactly as a virtual run does."""

from __future__ import annotations

import simpy

from mocks.erp.api import create_app
from mocks.erp.core import ErpCore
from sim.masterdata import generate
from sim.rng import Streams
from sim.scenario import parse_scenario


def _scenario() -> object:
    return parse_scenario(
        {
            "name": "world-faults",
            "horizon": "2d",
            "masterdata": {"customers": 50, "skus": 20, "credit_hold_share": 0},
            "faults": [
                {
                    "name": "holds",
                    "system": "erp",
                    "kind": "credit_hold_spike",
                    "start": "1h",
                    "duration": "2h",
                    "probability": 0.5,
                },
                {"name": "late", "kind": "supplier_delay", "start": "30m", "duration": "1h", "multiplier": 3},
            ],
        }
    )


def _erp() -> ErpCore:
    sc = _scenario()
    streams = Streams(sc.seed)
    return ErpCore(simpy.Environment(), generate(sc.masterdata, streams), sc, streams)


def test_live_erp_app_applies_world_faults_on_its_own_clock() -> None:
    erp = _erp()
    create_app(erp)  # what `twin mocks serve` does: supplier and world faults join the ERP's env
    control = erp.supplier.control
    assert control.multiplier == 1.0 and not any(erp.holds.values())
    erp.env.run(until=45 * 60)
    assert control.multiplier == 3.0
    erp.env.run(until=2 * 3600)
    held = {c for c, on in erp.holds.items() if on}
    assert 10 <= len(held) <= 40  # about half of 50 customers
    assert control.multiplier == 1.0  # the delay window ended at 1h30
    erp.env.run(until=4 * 3600)
    assert not any(erp.holds.values())  # the spike is over: the same customers released


def test_spike_draws_the_same_customers_in_both_hosts() -> None:
    a, b = _erp(), _erp()
    create_app(a)
    create_app(b)
    a.env.run(until=2 * 3600)
    b.env.run(until=2 * 3600)
    assert {c for c, on in a.holds.items() if on} == {c for c, on in b.holds.items() if on}
