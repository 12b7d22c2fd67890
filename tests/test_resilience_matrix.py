"""The resilience regression suite (scenarios/resilience/) in virtual mode, both profiles.

- resilient: every scenario ends with nothing lost, duplicated, stuck or mismatched, meets its SLOs,
  and every DLQ entry is categorised (business | technical) and replayable -- and replaying the
  ERP-outage DLQ really completes those orders;
- naive: the faults a point-to-point script cannot survive show fallout (and breach the SLOs),
  the ones it happens to tolerate do not.

All runs happen once per session (two worker processes, about a minute of CPU in all).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sim.check import discover, live_only
from sim.cli_scenario import load_checked

pytestmark = pytest.mark.slow

SUITE = Path(__file__).resolve().parents[1] / "scenarios" / "resilience"
FILES = {f.stem: f for f in discover([SUITE])}
VIRTUAL = sorted(n for n, f in FILES.items() if not live_only(load_checked(f)))

# Where a point-to-point script (one attempt, no idempotency, no dedup, no sweep) fails, and how.
NAIVE_FALLOUT = {
    "erp_outage": "lost",  # orders arriving while ERP answers 503 are dropped
    "erp_503_burst": "lost",
    "erp_429_storm": "lost",  # 429s are not retried
    "crm_duplicate_webhooks": "duplicates",  # no dedup: a second ERP sales order
    "connection_resets_truncated": "stuck",  # a committed create it never learned about
    "carrier_outage": "stuck",  # ready to ship, never shipped
    "carrier_rate_limit": "stuck",
    "malformed_webhooks": "stuck",  # a milestone that never parses is never acted on
}
# Faults the naive script happens to tolerate (slow but not broken, or redelivered, or legitimate).
NAIVE_TOLERATES = {"erp_brownout", "wms_out_of_order", "wms_webhook_drops", "supplier_delay", "credit_hold_spike"}


def _run(args: tuple[str, str]) -> tuple[str, str, dict[str, Any]]:
    """One virtual run in a worker; returns plain data (top level, so it pickles)."""
    from reference_integration.workflows import workflow_name
    from sim.virtual import run_virtual

    path, profile = args
    r = run_virtual(load_checked(path), profile=profile, report=False)
    dlq = []
    for e in r.dlq:
        payload = e.payload if isinstance(e.payload, dict) else {}
        event = payload.get("event", payload)
        dlq.append(
            {
                "category": e.category,
                "reason": e.reason,
                "workflow": e.workflow,
                "crm_id": payload.get("crm_id"),
                "replayable": isinstance(event, dict) and workflow_name(event) is not None,
            }
        )
    return (
        Path(path).stem,
        profile,
        {
            "kpis": r.kpis,
            "breaches": [str(b) for b in r.breaches],
            "dlq": dlq,
            "exception_categories": sorted(set(r.exceptions["category"])) if len(r.exceptions) else [],
            "dead_lettered": sorted(r.orders.loc[r.orders["outcome"].str.startswith("dead_lettered"), "crm_id"]),
        },
    )


@pytest.fixture(scope="module")
def matrix() -> dict[tuple[str, str], dict[str, Any]]:
    tasks = [(str(FILES[n]), p) for n in VIRTUAL for p in ("resilient", "naive")]
    with ProcessPoolExecutor(max_workers=2) as pool:
        return {(name, prof): res for name, prof, res in pool.map(_run, tasks)}


def test_suite_covers_the_fault_matrix() -> None:
    expected = {
        "erp_brownout",
        "erp_outage",
        "erp_429_storm",
        "erp_503_burst",
        "crm_duplicate_webhooks",
        "wms_out_of_order",
        "wms_webhook_drops",
        "carrier_outage",
        "carrier_rate_limit",
        "supplier_delay",
        "connection_resets_truncated",
        "malformed_webhooks",
        "credit_hold_spike",
        "integration_killed",
    }
    assert set(FILES) == expected
    assert set(VIRTUAL) == expected - {"integration_killed"}  # live only
    assert set(NAIVE_FALLOUT) | NAIVE_TOLERATES == set(VIRTUAL)
    for name, f in FILES.items():
        sc = load_checked(f)
        assert sc.name == name and sc.faults, name
        assert sc.slo.lost == 0 and sc.slo.duplicates == 0 and sc.slo.mismatches == 0, name
        assert sc.slo.latency and set(sc.slo.recovery) == {w.name for w in sc.faults}, name


@pytest.mark.parametrize("name", VIRTUAL)
def test_resilient_loses_nothing_and_meets_its_slos(matrix: dict[tuple[str, str], Any], name: str) -> None:
    res = matrix[(name, "resilient")]
    k = res["kpis"]
    assert k["orders_submitted"] > 200
    assert (k["lost"], k["duplicates"], k["mismatches"], k["stuck"]) == (0, 0, 0, 0), k["outcomes"]
    assert res["breaches"] == []
    assert all(w["recovery_s"] is not None for w in k["fault_windows"])


# Faults that leave drift only the audit sweep can see (a WMS milestone lost or unparseable, a
# shipment never booked while the carrier was down): the sweep must find and repair it.
SWEEP_REPAIRS = ("wms_webhook_drops", "malformed_webhooks", "carrier_outage")


@pytest.mark.parametrize("name", SWEEP_REPAIRS)
def test_resilient_sweep_repairs_the_drift_webhooks_left(matrix: dict[tuple[str, str], Any], name: str) -> None:
    k = matrix[(name, "resilient")]["kpis"]
    assert k["sweeps"] > 0 and k["repairs"] > 0
    assert matrix[(name, "naive")]["kpis"]["sweeps"] == 0  # the naive script has no sweep


@pytest.mark.parametrize("name", VIRTUAL)
def test_resilient_dlq_entries_are_categorised_and_replayable(matrix: dict[tuple[str, str], Any], name: str) -> None:
    res = matrix[(name, "resilient")]
    assert set(res["exception_categories"]) <= {"business", "technical"}
    for e in res["dlq"]:
        assert e["category"] in ("business", "technical"), e
        assert e["reason"] and e["crm_id"], e
        assert e["replayable"], e
    # Every order the reconciliation calls dead-lettered is in the DLQ (the integration said so).
    assert set(res["dead_lettered"]) <= {e["crm_id"] for e in res["dlq"]}


def test_erp_outage_dead_letters_instead_of_losing(matrix: dict[tuple[str, str], Any]) -> None:
    res = matrix[("erp_outage", "resilient")]
    assert res["dlq"], "the ERP outage should dead-letter what the breaker rejects"
    assert {e["category"] for e in res["dlq"]} == {"technical"}
    assert res["kpis"]["lost"] == 0 < matrix[("erp_outage", "naive")]["kpis"]["lost"]


def test_credit_hold_spike_is_legitimate_not_fallout(matrix: dict[tuple[str, str], Any]) -> None:
    spike = matrix[("credit_hold_spike", "resilient")]["kpis"]
    calm = matrix[("erp_brownout", "resilient")]["kpis"]
    assert spike["credit_holds"] > calm["credit_holds"] + 5
    assert spike["fallout_rate"] == 0.0


@pytest.mark.parametrize("name", sorted(NAIVE_FALLOUT))
def test_naive_shows_fallout_where_point_to_point_fails(matrix: dict[tuple[str, str], Any], name: str) -> None:
    res = matrix[(name, "naive")]
    k = res["kpis"]
    assert k["lost"] + k["duplicates"] + k["stuck"] > 0, k["outcomes"]
    assert k[NAIVE_FALLOUT[name]] > 0, k["outcomes"]
    assert res["breaches"], "the naive profile should breach this scenario's SLOs"


@pytest.mark.parametrize("name", sorted(NAIVE_TOLERATES))
def test_naive_tolerates_benign_faults(matrix: dict[tuple[str, str], Any], name: str) -> None:
    k = matrix[(name, "naive")]["kpis"]
    assert k["lost"] + k["duplicates"] + k["stuck"] + k["mismatches"] == 0, k["outcomes"]


def test_replaying_the_erp_outage_dlq_completes_those_orders() -> None:
    """Replayable for real: run the outage, then replay every DLQ entry into the same world (as an
    operator would through ``POST /admin/dlq/{id}/replay``) and reconcile again."""
    from reference_integration.workflows import replay
    from sim.reconcile import demand_log, entries_frame, reconcile
    from sim.virtual import _exceptions, _quiet, build

    sc = load_checked(FILES["erp_outage"])
    world = build(sc)
    env, store = world.env, world.runtime.store

    def drain(until: float) -> None:
        while env.now < until and not _quiet(world):
            env.run(until=min(until, env.now + 3600.0))

    env.run(until=sc.horizon)
    drain(sc.horizon + sc.drain_limit)
    dead = store.dlq_list()
    assert dead and {e.category for e in dead} == {"technical"}

    for e in dead:
        taken = store.dlq_take_for_replay(e.id, env.now)
        assert taken is not None
        world.runtime.spawn(replay(world.ctx, taken), f"replay:{taken.workflow}", taken.payload)
    env.run(until=env.now + 60.0)  # let the replays start: a just-spawned workflow is not busy yet
    # Replayed on a Friday after the pickup: they ship Monday, so allow a week to deliver.
    drain(env.now + 7 * 86400.0)
    assert _quiet(world)

    entries = entries_frame([x for led in world.ledgers.values() for x in led])
    orders = reconcile(entries, demand_log(entries), _exceptions(world.runtime), end=float(env.now))
    replayed = {e.payload["crm_id"] for e in dead}
    outcomes = orders.set_index("crm_id").loc[sorted(replayed), "outcome"]
    assert set(outcomes) <= {"completed", "credit_hold", "backordered"}, outcomes.value_counts().to_dict()
    assert store.dlq_size() == 0
    assert (orders["outcome"].isin(["lost", "duplicate", "stuck", "mismatched"])).sum() == 0
