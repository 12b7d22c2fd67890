"""A cold run is the same run: the integration's state paged out to disk changes nothing.

``run_virtual(cold=True)`` pages idle order states (``MemoryStore.use_cold``) out to a SQLite file
and back. Every result must equal the all-in-memory run's: KPIs, the orders, events, calls and
exceptions frames, the DLQ. Each run must also show that the integration's map did page out and
read back, or the comparison proves nothing; one test pages out everything idle every ten
simulated minutes, so a value read back at the wrong moment or with the wrong identity shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import sim.virtual as virtual
from reference_integration.store import STATE_IDLE_SPILLS
from sim.kpis import strip_wall
from sim.scenario import load_scenario
from sim.virtual import RunResult, run_virtual

ROOT = Path(__file__).resolve().parent.parent
STATE = "integration_state"


def _run(path: str, sets: list[str], profile: str | None, seed: int, cold: bool) -> RunResult:
    sc = load_scenario(ROOT / path, sets)
    return run_virtual(sc, profile=profile, seed=seed, isolate=False, cold=cold, report=False)


def _assert_same(warm: RunResult, cold: RunResult) -> None:
    assert strip_wall(cold.kpis) == strip_wall(warm.kpis)
    for name in ("orders", "events", "calls", "exceptions"):
        pd.testing.assert_frame_equal(getattr(cold, name), getattr(warm, name), check_exact=True, obj=name)
    assert cold.dlq == warm.dlq
    assert cold.sim_events == warm.sim_events
    assert warm.paged == {}


def _assert_paged(cold: RunResult) -> dict[str, int]:
    stats = cold.paged[STATE]
    assert stats["spilled"] > 0 and stats["loaded"] > 0 and stats["bytes"] > 0
    return stats


CASES = [
    ("scenarios/quarter_end_surge.yaml", ["demand.orders=300"], "resilient"),
    ("scenarios/quarter_end_surge.yaml", ["demand.orders=300"], "naive"),
    ("scenarios/resilience/crm_duplicate_webhooks.yaml", ["demand.orders=300"], None),
    ("scenarios/resilience/erp_outage.yaml", ["demand.orders=300"], None),  # DLQ entries
    ("scenarios/resilience/wms_webhook_drops.yaml", ["demand.orders=300"], None),  # audit repairs
    ("scenarios/resilience/carrier_outage.yaml", ["demand.orders=300"], None),
    # Live-only in ``twin check``; virtually the kill window is not applied, the run still is one.
    ("scenarios/resilience/integration_killed.yaml", ["demand.orders=300"], None),
]


@pytest.mark.parametrize(("path", "sets", "profile"), CASES, ids=lambda c: str(c))
def test_cold_run_equals_warm_run(path: str, sets: list[str], profile: str | None) -> None:
    warm = _run(path, sets, profile, 42, cold=False)
    cold = _run(path, sets, profile, 42, cold=True)
    _assert_same(warm, cold)
    _assert_paged(cold)


def test_outage_run_dead_letters_and_still_matches() -> None:
    # The DLQ comparison above must not be vacuous: the outage scenario does dead-letter.
    warm = _run("scenarios/resilience/erp_outage.yaml", ["demand.orders=300"], None, 7, cold=False)
    cold = _run("scenarios/resilience/erp_outage.yaml", ["demand.orders=300"], None, 7, cold=True)
    assert warm.dlq and warm.kpis["dlq"] > 0
    _assert_same(warm, cold)


@pytest.fixture
def spill_every_ten_minutes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Page out everything idle every ten simulated minutes instead of every horizon/200, what was
    touched in those ten minutes too (as many spills in a row as a state needs to count as idle,
    plus one). The same timer runs in the warm run, so both schedule the same SimPy events."""
    spills: list[int] = []
    schedule = virtual._schedule_sweeps

    def with_spiller(world: Any, config: Any) -> None:
        schedule(world, config)

        def spiller() -> Any:
            while True:
                yield world.env.timeout(600.0)
                if world.cold is not None:
                    spills.append(sum(world.cold.spill() for _ in range(STATE_IDLE_SPILLS + 1)))

        world.env.process(spiller())

    monkeypatch.setattr(virtual, "_schedule_sweeps", with_spiller)
    yield spills


@pytest.mark.parametrize("profile", ["resilient", "naive"])
def test_heavy_paging_changes_nothing(spill_every_ten_minutes: list[int], profile: str) -> None:
    path, sets = "scenarios/resilience/wms_webhook_drops.yaml", ["demand.orders=300"]
    warm = _run(path, sets, profile, 3, cold=False)
    assert spill_every_ten_minutes == []
    cold = _run(path, sets, profile, 3, cold=True)
    _assert_same(warm, cold)
    stats = _assert_paged(cold)
    # Nearly every read of an order's state came from disk.
    assert stats["loaded"] > 2 * cold.kpis["orders_submitted"]
    assert len(spill_every_ten_minutes) > 100


def test_a_reloaded_state_holds_the_contexts_address_dict() -> None:
    sc = load_scenario(ROOT / "scenarios/quarter_end_surge.yaml", ["demand.orders=120"])
    world = virtual.build(virtual.resolve(sc, "resilient", 5), cold=True)
    try:
        world.env.run(until=3 * 86400.0)
        assert world.cold is not None
        for _ in range(STATE_IDLE_SPILLS + 1):
            world.cold.spill()
        state = world.runtime.store.state
        keys = [k for k in state if k.startswith("order:")]
        assert keys and state.hot() < len(keys)  # type: ignore[attr-defined]
        # Order states are held by the CRM id's number: only the hourly buckets keep key strings.
        assert state._vals is not None and all(k.startswith("touched:") for k in state._d)  # type: ignore[attr-defined]
        addresses = world.ctx.addresses
        with_address = [state[k] for k in keys if state[k].get("ship_to")]
        assert with_address
        for st in with_address:
            assert addresses[tuple(st["ship_to"].values())] is st["ship_to"]
    finally:
        if world.cold is not None:
            world.cold.close()
