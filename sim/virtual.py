"""Virtual mode: the whole world, the four mocks, the network and the reference integration in one
``simpy.Environment``; a quarter runs in seconds.

``run_virtual(scenario)`` assembles it, runs demand to the horizon, drains (no new orders; until
the integration and the world are quiet or ``drain_limit`` passes), reconciles the ledgers against
the demand log, computes the KPIs and writes the run folder.
"""

from __future__ import annotations

import gc
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import simpy

from mocks.coldmap import ColdStore
from mocks.ledger import Ledger
from reference_integration.metrics import CALL_COLUMNS
from sim import isolate as isolation
from sim import scratch, stream
from sim.kpis import Breach, check_slo, compute_kpis
from sim.reconcile import ENTRY_COLUMNS, entries_frame, exceptions_frame, reconcile
from sim.rng import Streams
from sim.runfolder import calls_frame, events_frame, ledgers_events_frame, make_meta, now_iso, write_run
from sim.scenario import Scenario, SystemName
from sim.tables import Table, TableField, TableFile, TempDir, release_memory
from sim.world.faults import schedule_world_faults

SYSTEMS = tuple(s.value for s in SystemName)

# Simulated seconds between purges of expired idempotency records and, in a cold run, spills of
# what went idle (``_purge``). A value stays in memory while it was touched in the last interval,
# so the interval sets how much of the quarter-end surge is resident: at a run step (~11 simulated
# hours) a cold child's peak grew ~4.9 KB per order, at an hour ~3.9 KB, for ~5 % more CPU
# (docs/benchmarks.md, "Seventh session").
PURGE_EVERY_S = 3600.0


class MissingPiece(RuntimeError):
    """A part virtual mode needs is not importable (yet)."""


def _need(module: str, names: str) -> Any:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise MissingPiece(f"virtual mode needs {module} ({names}), which cannot be imported: {e}") from e
    missing = [n for n in names.split(",") if not hasattr(mod, n.strip())]
    if missing:
        raise MissingPiece(f"virtual mode needs {module}.{missing[0].strip()}, which does not exist yet")
    return mod


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str  # "run" | "drain" | "reconcile"
    sim_s: float
    until_s: float
    orders: int
    wall_s: float


@dataclass
class RunResult:
    """A run's outcome. ``events`` and ``calls`` may be given as ``TableFile``s (a virtual run
    streams them to parquet): they read as DataFrames all the same, loaded on first access from
    a temporary directory the result owns (removed when it is collected; the run folder holds hard
    links to the same files, or copies)."""

    scenario: Scenario
    meta: dict[str, Any]
    kpis: dict[str, Any]
    orders: pd.DataFrame
    events: pd.DataFrame = TableField()  # type: ignore[assignment]
    calls: pd.DataFrame = TableField()  # type: ignore[assignment]
    exceptions: pd.DataFrame
    breaches: list[Breach] = field(default_factory=list)
    out: Path | None = None
    # The integration's DLQ entries (``reference_integration.store.DlqEntry``: category, reason,
    # workflow, payload), replayed ones included: what an operator would see and replay.
    dlq: list[Any] = field(default_factory=list)
    sim_events: int = 0  # SimPy events the virtual run scheduled (0: not a virtual run)
    # Per cold map (``mocks.coldmap``): values paged out, read back, kept, bytes; {}: all in memory.
    paged: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.breaches

    def write(self, out: str | Path, report: bool = True) -> Path:
        """Write the run folder (both modes write the same one) and remember where."""
        fields = type(self).__dict__
        self.out = write_run(
            out,
            scenario=self.scenario,
            orders=self.orders,
            events=fields["events"].source(self),  # the file while nobody loaded it: copied, not re-encoded
            calls=fields["calls"].source(self),
            kpis=self.kpis,
            meta=self.meta,
            breaches=[str(b) for b in self.breaches],
            report=report,
        )
        return self.out


def resolve(scenario: Scenario, profile: str | None = None, seed: int | None = None) -> Scenario:
    """The scenario with CLI-level overrides applied (validated again)."""
    if profile is None and seed is None:
        return scenario
    data = scenario.model_dump(mode="json")
    if profile is not None:
        data["integration"]["profile"] = profile
    if seed is not None:
        data["seed"] = seed
    return Scenario.model_validate(data)


# --------------------------------------------------------------------------------------- assembly


@dataclass
class World:
    """Everything living in the environment (kept for tests and notebooks to poke at)."""

    env: simpy.Environment
    streams: Streams
    md: Any
    ledgers: dict[str, Ledger]
    cores: dict[str, Any]
    engines: dict[str, Any]
    gateways: dict[str, Any]
    network: Any
    webhooks: Any
    runtime: Any
    ctx: Any
    supplier: Any = None
    submitted: int = 0
    duplicates_acked: int = 0
    sweeps: int = 0
    sweep_stats: Counter[str] = field(default_factory=Counter)
    # Where idle documents and workflow state page out to (``mocks.coldmap``); None: all in memory.
    cold: ColdStore | None = None
    # Simulated seconds between spills (``_purge``) and when the next is due (``PURGE_EVERY_S``).
    spill_every: float = 0.0
    spill_at: float = 0.0


def _use_cold(world: World) -> None:
    """Hand the run's cold store to everything that keeps per-order state, before anything is in
    it: each swaps its per-order dicts for ``ColdMap``s (``use_cold``)."""
    parts = [*world.cores.values(), world.ctx]
    for part in parts:
        use = getattr(part, "use_cold", None)
        if use is not None:
            use(world.cold)
    from mocks.core.paging import PrefixedIds, crm_order_ids
    from reference_integration.workflows import state_key

    # Order states are keyed by the CRM's order ids: numbers in place of a million key strings.
    state_keys = PrefixedIds(state_key(""), crm_order_ids(world.md))
    use = getattr(world.runtime.store, "use_cold", None)
    if use is not None:
        use(world.cold, keys=state_keys)
    for system, gw in world.gateways.items():
        use = getattr(getattr(gw, "store", None), "use_cold", None)
        if use is not None:
            use(world.cold, f"idempotency_{system}")


def build(scenario: Scenario, cold: bool = False, cold_dir: str | None = None) -> World:
    """The world in one SimPy environment; ``cold`` pages idle per-order state out to a temporary
    SQLite file (``mocks.coldmap``): the same run, in memory bounded by the orders in flight. The
    file goes in ``cold_dir`` if given (a run's spill directory, which the parent removes whatever
    happens to a forked child), else in a directory of its own."""
    md_mod = _need("sim.masterdata", "generate")
    demand_mod = _need("sim.demand", "DemandModel")
    cores_mod = {
        "crm": _need("mocks.crm.core", "CrmCore").CrmCore,
        "erp": _need("mocks.erp.core", "ErpCore").ErpCore,
        "wms": _need("mocks.wms.core", "WmsCore").WmsCore,
        "carrier": _need("mocks.carrier.core", "CarrierCore").CarrierCore,
    }
    faults = _need("mocks.faults", "FaultEngine")
    gw_mod = _need("mocks.gateway", "Gateway")
    cfg_mod = _need("reference_integration.config", "IntegrationConfig")
    rt_mod = _need("reference_integration.runtime_sim", "SimRuntime")
    wf = _need("reference_integration.workflows", "WorkflowContext,handle_event,workflow_name")
    from sim.network import SimNetwork, WebhookNetwork

    env = simpy.Environment()
    streams = Streams(scenario.seed)
    md = md_mod.generate(scenario.masterdata, streams)
    ledgers = {s: Ledger(s) for s in SYSTEMS}
    engines = {s: faults.FaultEngine(s, scenario.systems[SystemName(s)], scenario.faults, streams) for s in SYSTEMS}
    hooks = WebhookNetwork(env, None, streams, engines=engines, policy=scenario.webhooks, start=scenario.start)
    cores = {s: cls(env, md, scenario, streams, ledgers[s], hooks.emit_for(s)) for s, cls in cores_mod.items()}
    gateways = {s: gw_mod.Gateway(cores[s], scenario.systems[SystemName(s)].idempotency, engines[s]) for s in SYSTEMS}
    net = SimNetwork(env, gateways, scenario, streams)
    config = cfg_mod.IntegrationConfig.from_scenario(scenario.integration, scenario.systems)

    runtime = rt_mod.SimRuntime(env, config, net, streams)
    ctx_kw: dict[str, Any] = {"config": config}
    if md.warehouses:
        ctx_kw["plant"] = md.warehouses[0].code
    ctx = wf.WorkflowContext(**ctx_kw)
    world = World(env, streams, md, ledgers, cores, engines, gateways, net, hooks, runtime, ctx)
    if cold:
        world.cold = ColdStore(cold_dir)
        _use_cold(world)

    def dispatch(envelope: dict[str, Any]) -> bool:
        name = wf.workflow_name(envelope)
        if name is None:
            return True  # acknowledged, nothing to do (picked/packed milestones)
        if config.dedup and not runtime.store.accept_event(envelope, env.now):
            world.duplicates_acked += 1
            return True
        runtime.spawn(wf.handle_event(ctx, envelope), name, envelope)
        return True

    hooks.dispatch = dispatch

    try:
        from sim.world.supplier import start_supplier

        world.supplier = start_supplier(env, cores["erp"], scenario, streams)
    except ImportError as e:  # pragma: no cover - present in the tree
        raise MissingPiece(f"virtual mode needs sim.world.supplier.start_supplier: {e}") from e

    schedule_world_faults(world.env, world.cores["erp"], scenario.faults, world.streams)  # type: ignore[arg-type]
    _schedule_sweeps(world, config)

    crm = cores["crm"]

    def submit(order: Any) -> None:
        crm.submit(order)
        world.submitted += 1

    model = demand_mod.DemandModel(scenario, md, streams)
    env.process(model.process(env, submit))
    return world


def _schedule_sweeps(world: World, config: Any) -> None:
    """The integration's own audit sweep, on the profile's interval, as the live service runs it
    (``reference_integration.app``: look back max(4 intervals, 1 h))."""
    interval = getattr(config, "reconciliation_interval", None)
    if not interval:
        return
    try:
        from reference_integration.reconciliation import sweep
    except ImportError:  # pragma: no cover - present in the tree
        return
    env, runtime = world.env, world.runtime

    def on_metrics(_topic: str, event: dict[str, Any]) -> None:
        world.sweep_stats.update({k: v for k, v in event.items() if isinstance(v, int | float)})

    runtime.subscribe("metrics", on_metrics)

    def loop() -> Any:
        while True:
            yield env.timeout(interval)
            world.sweeps += 1
            yield runtime.spawn(sweep(world.ctx), "reconciliation")

    env.process(loop())


# --------------------------------------------------------------------------------------- run


def _quiet(world: World) -> bool:
    """Nothing left for the integration to do: no workflow or webhook pending, every fulfilment
    past the warehouse and every parcel delivered."""
    if world.runtime.busy or world.webhooks.in_flight:
        return False
    wms, car = world.ledgers["wms"].kinds(), world.ledgers["carrier"].kinds()
    if wms["fulfilment.created"] > wms["fulfilment.ready_to_ship"]:
        return False
    # A failed delivery (EX) is retried by the carrier and delivered later: only DL is terminal.
    return car["shipment.created"] <= car["shipment.delivered"]


def _purge(world: World) -> None:
    """Forget the mocks' expired idempotency records (``begin`` treats an expired record as
    absent) and page out what was idle for a whole step: memory, not behaviour."""
    for gw in world.gateways.values():
        purge = getattr(getattr(gw, "store", None), "purge", None)
        if purge is not None:
            purge(world.env.now)
    if world.cold is not None and world.env.now + 1e-6 >= world.spill_at:
        world.spill_at = world.env.now + world.spill_every
        world.cold.spill()
        # What paging freed sits in glibc's heap between live blocks; handed back, it is not
        # under the next pickup's peak (~3 % of a cold child's peak at 30-60k orders).
        release_memory()


def _exceptions(runtime: Any) -> pd.DataFrame:
    """The integration's DLQ and business-exception queue as ``crm_id, category, reason, t``."""
    rows: list[dict[str, Any]] = []
    store = runtime.store
    for e in store.dlq_list(include_replayed=True):
        p = e.payload if isinstance(e.payload, dict) else {}
        crm_id = p.get("crm_id")
        if crm_id is None and isinstance(p.get("event"), dict):
            from reference_integration.workflows import crm_id_of

            crm_id = crm_id_of(p["event"])
        rows.append({"crm_id": crm_id, "category": e.category, "reason": e.reason, "t": e.created_at})
    for x in store.exceptions_list():
        p = x.payload if isinstance(x.payload, dict) else {}
        rows.append({"crm_id": p.get("crm_id"), "category": "business", "reason": x.reason, "t": x.created_at})
    return exceptions_frame([r for r in rows if r["crm_id"] is not None])


# A run allocates millions of long-lived objects (ledger entries, call records, documents) and
# almost no garbage cycles, so CPython's full collections rescan an ever larger heap for nothing:
# 15-20 % of a quarter's CPU. Young generations are still collected (a workflow's generator
# frames die young); full collections wait for a thousand young ones instead of ten.
RUN_GC_THRESHOLD = (50_000, 50, 1000)


@contextmanager
def _gc_for_batch() -> Iterator[None]:
    old = gc.get_threshold()
    gc.set_threshold(*RUN_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _load_trim() -> Callable[[], None]:
    try:
        import ctypes

        malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return lambda: None

    def trim() -> None:
        malloc_trim(0)

    return trim


# Give the C heap's free pages back to the OS between the analysis steps (glibc's malloc_trim;
# a no-op elsewhere). Each step's temporaries (NumPy index arrays, list buffers) are freed when
# it ends, but glibc keeps the pages, so without this every step's leftovers stacked up under
# the next one's peak and under the run folder's writers. Costs about a millisecond.
_trim = _load_trim()


# Above this many orders (``demand.orders``, before any surge) a run simulates in a forked child
# by default (``sim.isolate``): the analysis then starts from a fresh heap instead of stacking on
# the simulation's. Below it the fork and the hand-over cost more than they save.
ISOLATE_FROM_ORDERS = 10_000
# From this many orders (``demand.orders``, before any surge) a run pages idle per-order state out
# (``cold``) by default. It is exact either way. Small runs pay for it in CPU (65-90 % more at 30k
# orders) and save little; with the hourly spill a 1M-order quarter's child peaked at ~2.4 GB
# instead of 5.7 GB warm, and took no more CPU than the warm run had (docs/benchmarks.md,
# seventh session), as a warm heap of that size costs the collector and the caches too.
COLD_FROM_ORDERS = 100_000


@dataclass
class Simulated:
    """What the analysis reads from a simulated world, taken before the world is dropped."""

    ledgers: list[Ledger]
    calls: Any  # reference_integration.metrics.CallTable (or any sequence of call records)
    exceptions: pd.DataFrame
    counters: dict[str, Any]
    drained_quiet: bool
    dlq: list[Any]
    sim_s: float
    sim_events: int  # SimPy events scheduled (the benchmark's events per order)
    paged: dict[str, dict[str, int]] = field(default_factory=dict)  # ColdStore.stats() of a cold run


def run_virtual(
    scenario: Scenario,
    profile: str | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    *,
    report: bool = True,
    isolate: bool | None = None,
    spill: bool | None = None,
    cold: bool | None = None,
) -> RunResult:
    """Run one virtual replication; write the run folder to ``out`` when given. ``isolate``
    simulates in a forked child process (None: when the run is large and fork exists); ``spill``
    keeps the ledgers and the call records in segment files under ``TMPDIR`` while it runs and
    ``cold`` pages idle per-order state out to disk (None: from ``COLD_FROM_ORDERS``). None of them
    changes the results."""
    scenario = resolve(scenario, profile, seed)
    wall_start_iso = now_iso()
    t0 = time.perf_counter()
    large = scenario.demand.orders >= ISOLATE_FROM_ORDERS
    if isolate is None:
        isolate = large and isolation.available()
    if cold is None:
        cold = scenario.demand.orders >= COLD_FROM_ORDERS
    scratch.sweep_stale()  # what killed runs left behind
    # Made here, not in the child: whatever becomes of the child, the parent removes it.
    spill_dir = str(scratch.make("spill")) if (large if spill is None else spill) else None
    try:
        if isolate:
            sim = isolation.call_in_child(
                lambda send: simulate(scenario, send, t0, spill_dir=spill_dir, cold=cold, release=False), progress
            )
        else:
            sim = simulate(scenario, progress, t0, spill_dir=spill_dir, cold=cold)
        return analyse(scenario, sim, t0, wall_start_iso, out, report)
    finally:
        if spill_dir is not None:
            shutil.rmtree(spill_dir, ignore_errors=True)


@_gc_for_batch()  # a context manager as decorator: fresh thresholds per call, restored after
def simulate(
    scenario: Scenario,
    progress: Callable[[Progress], None] | None = None,
    t0: float | None = None,
    *,
    spill_dir: str | None = None,
    cold: bool = False,
    release: bool = True,
) -> Simulated:
    """Build the world, run demand to the horizon and drain; return what the analysis reads.
    With ``spill_dir`` the ledgers and the call records go to segment files there as the run
    grows (``Ledger.spill_to``): what comes back holds only their paths and small tables.
    ``release`` collects the world before returning; a forked child that exits once it has
    sent the result back has nothing to free it for (a full collection of the world's heap was
    ~2 % of a run's simulate phase)."""
    t0 = time.perf_counter() if t0 is None else t0
    world = build(scenario, cold=cold, cold_dir=spill_dir)
    # The built world (master data, routes, cores' indexes, the scenario) lives to the end: frozen,
    # the collections of older generations during the run (one per 50 young ones at
    # ``RUN_GC_THRESHOLD``, so only in long runs) do not rescan it. Little at any size measured:
    # a 5,000-order run makes 7 young collections (0.1-0.2 s) and no older one. A caller's own
    # freeze is left as it is (``unfreeze`` would thaw that too).
    frozen = gc.get_freeze_count() == 0
    if frozen:
        gc.freeze()
    try:
        sim_s = _run(world, scenario, progress, t0, spill_dir)
    finally:
        if frozen:
            gc.unfreeze()  # the world must be collectable again: it is cyclic
    env = world.env
    # Take what the analysis reads -- the ledgers, the call records, the integration's exception
    # lists and counters -- then let the world go before any frame is built: its documents, SimPy
    # queue, workflow state and pydantic models are more than half of a run's memory and nothing
    # reads them again.
    sim = Simulated(
        ledgers=list(world.ledgers.values()),
        calls=world.runtime.calls,
        exceptions=_exceptions(world.runtime),
        counters=_counters(world),
        drained_quiet=_quiet(world),
        dlq=list(world.runtime.store.dlq_list(include_replayed=True)),
        sim_s=sim_s,
        sim_events=next(env._eid),  # SimPy numbers every event it schedules
        paged=world.cold.stats() if world.cold is not None else {},
    )
    cold_store = world.cold
    del world, env
    if release:
        gc.collect()  # the world is cyclic (processes <-> generators <-> cores): refcounts alone keep it
    if cold_store is not None:
        cold_store.close()
    if release:
        _trim()
    return sim


def _run(
    world: World, scenario: Scenario, progress: Callable[[Progress], None] | None, t0: float, spill_dir: str | None
) -> float:
    """Run demand to the horizon and drain; returns the simulated time it ended at."""
    env = world.env
    spilling = [*world.ledgers.values(), world.runtime.calls] if spill_dir is not None else []
    spilling = [x for x in spilling if hasattr(x, "spill_to")]  # a swapped-in call log keeps its way
    for x in spilling:
        x.spill_to(spill_dir)
    horizon = float(scenario.horizon)
    drain_end = horizon + float(scenario.drain_limit)

    def tick(w: World, phase: str, until: float) -> None:  # takes the world: no closure keeps it alive
        if progress is not None:
            progress(Progress(phase, w.env.now, until, w.submitted, time.perf_counter() - t0))

    step = max(horizon / 200.0, 60.0)
    sub = min(step, PURGE_EVERY_S)
    world.spill_every = world.spill_at = sub
    while env.now < horizon:
        end = min(horizon, env.now + step)
        while env.now < end:
            # Stopping SimPy and going on is invisible to the model: the stop event only takes an
            # event id, and ids merely break ties between the model's own events, in their order.
            env.run(until=min(end, env.now + sub))
            _purge(world)
        tick(world, "run", horizon)
    # Drain: demand has stopped (the demand process ends at the horizon); check hourly for quiet.
    while env.now < drain_end and not _quiet(world):
        env.run(until=min(drain_end, env.now + 3600.0))
        _purge(world)
        tick(world, "drain", drain_end)
    sim_s = float(env.now)
    tick(world, "reconcile", sim_s)
    for x in spilling:
        x.flush()
    return sim_s


@_gc_for_batch()
def analyse(
    scenario: Scenario,
    sim: Simulated,
    t0: float,
    wall_start_iso: str,
    out: str | Path | None = None,
    report: bool = True,
) -> RunResult:
    """Reconcile the ledgers, compute the KPIs and (given ``out``) write the run folder.

    The events and calls tables are streamed into parquet files in a temporary directory the
    result owns (linked into the run folder) and never held whole: reconciliation and the KPIs read
    them back a chunk at a time, ``RunResult.events`` / ``.calls`` load them when asked."""
    ledgers, call_records = sim.ledgers, sim.calls
    sim.ledgers = sim.calls = []  # the tables replace them: nothing else may keep them alive
    # The result's own copy of its tables (the run folder gets them by hard link): like the frames
    # it held before, they outlive the run folder.
    home = TempDir("run")
    try:
        events = _events_table(ledgers, home.path / "events.parquet", home)
        del ledgers
        release_memory()
        calls = _calls_table(call_records, home.path / "calls.parquet", home)
        del call_records
        release_memory()
        return _finish(scenario, sim, t0, wall_start_iso, events, calls, out, report)
    except BaseException:
        home.cleanup()
        raise


def _events_table(ledgers: list[Ledger], path: Path, home: TempDir | None) -> Table:
    """events.parquet streamed from the ledgers; the frame itself (not yet written) where the
    stream does not reproduce it exactly."""
    try:
        return TableFile(path, stream.write_events(ledgers, path), ENTRY_COLUMNS, home)
    except stream.Unstreamable:
        path.unlink(missing_ok=True)
    events = ledgers_events_frame(ledgers)  # data as JSON text, for events.parquet
    if events is None:  # a ledger without columns: through Entry objects
        events = events_frame(entries_frame([e for led in ledgers for e in led]))
    return events


def _calls_table(call_records: Any, path: Path, home: TempDir | None) -> Table:
    try:
        return TableFile(path, stream.write_calls(call_records, path), CALL_COLUMNS, home)
    except stream.Unstreamable:
        path.unlink(missing_ok=True)
    return calls_frame(call_records)


def _finish(
    scenario: Scenario,
    sim: Simulated,
    t0: float,
    wall_start_iso: str,
    events: Table,
    calls: Table,
    out: str | Path | None,
    report: bool,
) -> RunResult:
    # Reconciliation reads the events table: ``data`` as JSON text is parsed back for the few
    # kinds it looks inside (sim.reconcile._data), and no second table of dicts is built. Given
    # no demand frame, it reads the demand into its own columns (no line lists per order).
    exc, sim_s = sim.exceptions, sim.sim_s
    orders = reconcile(events, exceptions=exc, end=sim_s)
    release_memory()  # reconciliation's columns and lists, freed once the frame was built
    wall_s = time.perf_counter() - t0
    kpis = compute_kpis(orders, calls=calls, faults=scenario.faults, sim_s=sim_s, wall_s=wall_s, counters=sim.counters)
    breaches = check_slo(kpis, scenario.slo)
    horizon = float(scenario.horizon)
    meta = make_meta(
        scenario,
        mode="virtual",
        wall_start=wall_start_iso,
        horizon_s=horizon,
        drained_s=sim_s - horizon,
        drained_quiet=sim.drained_quiet,
    )
    result = RunResult(scenario, meta, kpis, orders, events, calls, exc, breaches)
    result.dlq = sim.dlq
    result.sim_events = sim.sim_events
    result.paged = sim.paged
    release_memory()
    if out is not None:
        result.write(out, report)
    return result


def _counters(world: World) -> dict[str, Any]:
    rt = world.runtime
    net, hooks = world.network.stats, world.webhooks.stats
    return {
        "retries": int(sum(rt.retries.values())),
        "breaker_opens": int(sum(rt.breaker_opens.values())),
        "net_timeouts": net.timeouts,
        "net_late_commits": net.late_commits,
        "webhooks": hooks.webhooks,
        "webhook_deliveries": hooks.webhook_deliveries,
        "webhook_retries": hooks.webhook_retries,
        "webhooks_lost": hooks.webhook_lost,
        "webhook_duplicates_acked": world.duplicates_acked,
        "dlq_size": int(rt.store.dlq_size()),
        "exception_queue": len(rt.store.exceptions_list()),
        "dropped_by_integration": len(rt.engine.stats.dropped),
        "sweeps": world.sweeps,
        "repairs": int(world.sweep_stats.get("repairs", 0)),
    }
