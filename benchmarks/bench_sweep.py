"""Sweep speed-up: a 4-variant x 10-replication sweep on local processes against the same 40 runs
one after another in one process.

    python benchmarks/bench_sweep.py [--jobs 2] [--replications 10] [--estimate]

Both sides run the identical 40 tasks (``sim.sweep.plan``) on a small scenario (the demo cut to
one day and about 80 orders, grid ``warehouse.pickers=1,2`` x ``profile=naive,resilient``), so the
ratio is the parallel efficiency: the pool's start-up, task shipping and result collection
included. ``--estimate`` times 4 sequential runs and scales to 40 instead of running all 40.
Target on a 2-core machine: speed-up >= 1.6. The frames of both sides must be identical apart
from wall-clock columns (a cheap determinism check on the way).

Also prints what one worker ships back per run (a flat KPI row, pickled): kilobytes, not the
run's DataFrames.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = ["horizon=1d", "drain_limit=2d", "demand.orders=30"]
GRID = ["warehouse.pickers=1,2", "profile=naive,resilient"]
TARGET = 1.6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="sweep speed-up: local processes vs sequential")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--replications", type=int, default=10)
    ap.add_argument("--estimate", action="store_true", help="time 4 sequential runs and scale (faster)")
    a = ap.parse_args(argv)

    from sim.kpis import WALL_KEYS
    from sim.scenario import load_scenario
    from sim.sweep import execute, frame, parse_grid, plan, run_task

    base = load_scenario(ROOT / "scenarios" / "demo.yaml", SETS)
    axes = parse_grid(GRID)
    tasks = plan(base, axes, a.replications)
    n = len(tasks)
    print(f"{n} runs: {' x '.join(GRID)} x {a.replications} replications; cpu_count={os.cpu_count()}")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"warning: load average {load:.1f} > {os.cpu_count()} cores: other work competes, wall ratios understate")

    # Warm up one run per variant: every code path's lazy imports happen here, before the pool
    # forks, so neither side pays them alone (and both run the same code even while the checkout
    # is being edited).
    for t in tasks[:: a.replications]:
        run_task(t)

    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    par_rows = execute(tasks, jobs=a.jobs)
    par = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    par_cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    # CPU the workers got per wall second: 2.0 means both cores were ours the whole time.
    print(f"parallel   ({a.jobs} processes): {par:6.1f} s   (workers' CPU {par_cpu:.1f} s = {par_cpu / par:.2f} cores)")

    if a.estimate:
        sample = tasks[:: max(1, n // 4)][:4]
        t0 = time.perf_counter()
        for t in sample:
            run_task(t)
        seq = (time.perf_counter() - t0) / len(sample) * n
        print(f"sequential (estimated from {len(sample)} runs): {seq:6.1f} s")
    else:
        t0, cpu0 = time.perf_counter(), time.process_time()
        seq_rows = execute(tasks, jobs=1)
        seq, seq_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(f"sequential (1 process): {seq:6.1f} s   (CPU {seq_cpu:.1f} s; {seq / n:.2f} s per run)")
        wall = list(WALL_KEYS)
        fp, fs = frame(par_rows, axes).drop(columns=wall), frame(seq_rows, axes).drop(columns=wall)
        differ = [c for c in fp.columns if not fp[c].equals(fs[c])]
        print(f"identical results (wall-clock columns aside): {not differ}")
        if differ:
            rows = sorted(set(fp.index[(fp[differ] != fs[differ]).any(axis=1)]))
            print(f"  differing columns {differ[:8]} in rows {rows[:8]}")
            return 1

    row_kb = len(pickle.dumps(par_rows[0])) / 1024
    print(f"shipped back per run: {row_kb:.1f} KB ({len(par_rows[0])} fields)")
    speedup = seq / par
    verdict = "OK" if speedup >= TARGET else f"below target {TARGET}"
    print(f"speed-up: {speedup:.2f}x on {a.jobs} processes ({verdict})")
    if not a.estimate:
        # On a busy machine wall time measures the neighbours. CPU seconds per run do not: the
        # speed-up idle cores would give is the cores used times the sequential/parallel CPU ratio
        # (the parallel side's extra CPU is the pool's overhead).
        cores = min(a.jobs, os.cpu_count() or 1)
        print(
            f"CPU per run: sequential {seq_cpu / n:.3f} s, parallel {par_cpu / n:.3f} s; "
            f"projected speed-up on {cores} idle cores: {cores * seq_cpu / par_cpu:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
