"""Virtual-mode throughput: how many simulated orders one wall second buys, against the ceiling.

    python benchmarks/bench_virtual.py [--orders 2000] [--scenario scenarios/quarter_end_surge.yaml]
                                       [--profile resilient] [--no-linearity] [--cold | --warm]

End to end (build, simulate, drain, reconcile, KPIs, run folder with report) on the standard
quarter-end scenario sized with ``--set demand.orders=N``. Beside it, in the same process, a bare
SimPy order pipeline with the same number of SimPy events per order (what SimPy alone costs: the
ceiling no business logic can beat) and the ratio between the two. Peak memory is the child
process's ``ru_maxrss``; the linearity check repeats the run at 4N (orders/s should not drop).

Each sized run is a fresh child process, so its peak memory is its own and imports are paid once
per run like a real ``twin run``. CPU seconds are shown beside wall seconds: on a shared machine
wall time includes waiting for the core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATE = 17_000  # orders per wall second: a 1M-order quarter in 60 s
TARGET_RSS_MIB = 2048


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (a large run simulates in one)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(scenario: str, orders: int, profile: str, seed: int, cold: bool | None = None) -> dict[str, Any]:
    """One end-to-end virtual run (in this process); counts the SimPy events it scheduled."""
    from sim.scenario import load_scenario
    from sim.virtual import Progress, RunResult, run_virtual

    marks: dict[str, float] = {}

    def progress(p: Progress) -> None:
        marks.setdefault(p.phase, p.wall_s)

    sc = load_scenario(ROOT / scenario, [f"demand.orders={orders}"])
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), _cpu()
        r = run_virtual(sc, profile=profile, seed=seed, out=tmp, progress=progress, cold=cold)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
    k = r.kpis
    return {
        "orders": k["orders_submitted"],
        "wall_s": wall,
        "cpu_s": cpu,
        "sim_s": k["sim_s"],
        "events": r.sim_events,
        # Counted from the table's file: ``r.calls`` would load every call record as a DataFrame
        # (18.8M rows at 1M orders, ~4 GB), which the bench then reported as the run's peak.
        "calls": len(RunResult.__dict__["calls"].source(r)),
        "simulate_s": marks.get("reconcile", k["wall_s"]),
        "analyse_s": k["wall_s"] - marks.get("reconcile", k["wall_s"]),
        "write_s": wall - k["wall_s"],
        # A large run simulates in a forked child (sim.isolate) and analyses here: the peak is
        # the larger of the two (they do not overlap; the child's RSS includes the pages it
        # shares with this process).
        "maxrss_mib": max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        / 1024,
    }


def child(scenario: str, orders: int, profile: str, seed: int, cold: bool | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--orders", str(orders), "--scenario", scenario]
    cmd += ["--profile", profile, "--seed", str(seed)]
    if cold is not None:
        cmd.append("--cold" if cold else "--warm")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def bare_pipeline(orders: int, events_per_order: float, horizon: float) -> float:
    """Orders per wall second of a SimPy pipeline with nothing but the events: a source process
    starting one process per order, each yielding timeouts until it has used its share."""
    import simpy

    env = simpy.Environment()
    per_order = max(1, round(events_per_order) - 2)  # the process's start and end are events too
    gap = horizon / max(orders, 1)

    def order() -> Any:
        for _ in range(per_order):
            yield env.timeout(60.0)

    def source() -> Any:
        for _ in range(orders):
            yield env.timeout(gap)
            env.process(order())

    t0 = time.perf_counter()
    env.process(source())
    env.run()
    return orders / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=2000, help="demand.orders (before the surge multiplier)")
    ap.add_argument("--scenario", default="scenarios/quarter_end_surge.yaml")
    ap.add_argument("--profile", default="resilient", choices=("naive", "resilient"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-linearity", action="store_true", help="skip the 4N run")
    paging = ap.add_mutually_exclusive_group()
    paging.add_argument("--cold", dest="cold", action="store_const", const=True, help="page idle state out to disk")
    paging.add_argument("--warm", dest="cold", action="store_const", const=False, help="keep all state in memory")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.scenario, args.orders, args.profile, args.seed, args.cold)))
        return

    m = child(args.scenario, args.orders, args.profile, args.seed, args.cold)
    rate, cpu_rate = m["orders"] / m["wall_s"], m["orders"] / m["cpu_s"]
    epo = m["events"] / max(m["orders"], 1)
    ceiling = bare_pipeline(m["orders"], epo, m["sim_s"])
    print(f"scenario                {args.scenario} --set demand.orders={args.orders} ({args.profile})")
    print(f"orders submitted        {m['orders']:>12,}")
    print(f"simulated               {m['sim_s'] / 86400:>12,.1f} days")
    print(f"wall / CPU              {m['wall_s']:>12.2f} s / {m['cpu_s']:.2f} s")
    print(f"orders / wall s         {rate:>12,.0f}   (CPU s: {cpu_rate:,.0f}; target {TARGET_RATE:,})")
    print(f"sim s / wall s          {m['sim_s'] / m['wall_s']:>12,.0f}")
    print(f"integration calls/order {m['calls'] / max(m['orders'], 1):>12.1f}")
    print(f"SimPy events / order    {epo:>12.1f}")
    print(f"bare SimPy ceiling      {ceiling:>12,.0f} orders/s (same events per order)")
    print(f"twin / ceiling          {rate / ceiling:>12.1%}")
    print(f"peak memory (maxrss)    {m['maxrss_mib']:>12,.0f} MiB (target {TARGET_RSS_MIB:,})")
    print(f"share simulate          {m['simulate_s'] / m['wall_s']:>12.1%}")
    print(f"share reconcile + KPIs  {m['analyse_s'] / m['wall_s']:>12.1%}")
    print(f"share write run folder  {m['write_s'] / m['wall_s']:>12.1%}")
    if not args.no_linearity:
        m4 = child(args.scenario, 4 * args.orders, args.profile, args.seed, args.cold)
        rate4 = m4["orders"] / m4["wall_s"]
        print(
            f"linearity (4N)          {rate4:>12,.0f} orders/s at {m4['orders']:,} orders "
            f"= {rate4 / rate:.2f} x the N rate (1.00 = linear; CPU-s ratio "
            f"{(m4['orders'] / m4['cpu_s']) / cpu_rate:.2f}); peak {m4['maxrss_mib']:,.0f} MiB"
        )


if __name__ == "__main__":
    main()
