"""Regenerate the small example results the notebooks read (notebooks/data/).

    python notebooks/make_examples.py            # runs + sweep (about a minute on 2 cores)
    python notebooks/make_examples.py --runs     # only the run folders

What it writes (kept small: a few hundred KB in all, parquet with zstd, no HTML reports; the
run folders sit directly in data/ because the repository's .gitignore ignores any ``runs/``):

- ``data/demo-naive``, ``data/demo-resilient``: the demo scenario (ERP brown-out,
  carrier rate limit, duplicate WMS webhooks) at a fifth of its volume, for each profile;
- ``data/erp-outage-resilient``: the resilience matrix's ERP outage scenario at a third of
  its volume, resilient profile (the second scenario of 02_compare_profiles.ipynb);
- ``data/sweep-capacity``: the capacity sweep of 03_capacity_sweep.ipynb, a quarter-end surge
  (demo at 4x peak) over warehouse pickers x ERP rate limit (requests per minute), 4
  replications each, with SLOs erp_accepted p95 <= 10 min and ready_to_ship p95 <= 1 h.

Everything is seeded, so a rerun reproduces the same orders and KPIs (wall-clock KPIs aside).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"

RUNS = {
    "demo-naive": ("scenarios/demo.yaml", "naive", ["demand.orders=60"]),
    "demo-resilient": ("scenarios/demo.yaml", "resilient", ["demand.orders=60"]),
    "erp-outage-resilient": ("scenarios/resilience/erp_outage.yaml", "resilient", ["demand.orders=60"]),
}

SWEEP_SCENARIO = "scenarios/demo.yaml"
SWEEP_SETS = [
    "name=quarter-end-capacity",
    "demand.orders=100",
    "demand.surge.peak_multiplier=4",
    "systems.erp.rate_limit.requests=6",  # the grid varies it; the base needs a value
    "systems.erp.rate_limit.per=60s",
    "slo.latency.ready_to_ship.p95=1h",
]
SWEEP_GRID = ["warehouse.pickers=1,2,3", "systems.erp.rate_limit.requests=3,6,12"]
SWEEP_REPLICATIONS = 4


def compact(folder: Path) -> None:
    """Rewrite the parquet tables with zstd: a third of the default size, same content."""
    for name in ("orders", "events", "calls"):
        p = folder / f"{name}.parquet"
        pd.read_parquet(p).to_parquet(p, index=False, compression="zstd", compression_level=19)


def make_runs() -> None:
    from sim.scenario import load_scenario
    from sim.virtual import run_virtual

    for name, (scenario, profile, sets) in RUNS.items():
        out = DATA / name
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        r = run_virtual(load_scenario(ROOT / scenario, sets), profile=profile, out=out, report=False)
        compact(out)
        print(
            f"{name}: {r.kpis['orders_submitted']} orders, fallout {r.kpis['fallout_rate']:.1%}, "
            f"{time.perf_counter() - t0:.1f} s"
        )


def make_sweep(jobs: int | None) -> None:
    from sim.scenario import load_scenario
    from sim.sweep import parse_grid, run_sweep

    out = DATA / "sweep-capacity"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    res = run_sweep(
        load_scenario(ROOT / SWEEP_SCENARIO, SWEEP_SETS), parse_grid(SWEEP_GRID), SWEEP_REPLICATIONS, jobs=jobs, out=out
    )
    (out / "sweep.png").unlink(missing_ok=True)  # the notebook draws its own
    print(f"sweep: {len(res.frame)} runs in {time.perf_counter() - t0:.1f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", action="store_true", help="only the run folders")
    ap.add_argument("--sweep", action="store_true", help="only the sweep")
    ap.add_argument("--jobs", type=int, default=None, help="worker processes for the sweep")
    a = ap.parse_args(argv)
    both = not (a.runs or a.sweep)
    if a.runs or both:
        make_runs()
    if a.sweep or both:
        make_sweep(a.jobs)
    size = sum(f.stat().st_size for f in DATA.rglob("*") if f.is_file())
    print(f"notebooks/data: {size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
