"""Virtual-mode throughput: how much simulated business one wall second buys, and where it goes.

    python benchmarks/bench_virtual.py [--orders 5000] [--weeks 13] [--profile resilient]

Prints ratios (simulated seconds per wall second, orders per wall second) and the share of wall
time spent simulating vs reconciling + KPIs vs writing the run folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from sim.scenario import Scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=5000)
    ap.add_argument("--weeks", type=float, default=13)
    ap.add_argument("--profile", default="resilient", choices=("naive", "resilient"))
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    from sim.virtual import Progress, run_virtual

    sc = Scenario.model_validate(
        {"name": "bench", "seed": args.seed, "horizon": args.weeks * 7 * 86400, "demand": {"orders": args.orders}}
    )
    marks: dict[str, float] = {}

    def progress(p: Progress) -> None:
        marks.setdefault(p.phase, p.wall_s)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = run_virtual(sc, profile=args.profile, out=tmp, progress=progress)
        total = time.perf_counter() - t0
    k = r.kpis
    simulate = marks.get("reconcile", k["wall_s"])
    analyse = k["wall_s"] - simulate
    write = total - k["wall_s"]
    print(f"orders submitted        {k['orders_submitted']:>12,}")
    print(f"simulated               {k['sim_s'] / 86400:>12,.1f} days")
    print(f"wall                    {total:>12.2f} s")
    print(f"sim s / wall s          {k['sim_s'] / total:>12,.0f}")
    print(f"orders / wall s         {k['orders_submitted'] / total:>12,.0f}")
    print(f"integration calls / s   {k['calls'] / total:>12,.0f}")
    print(f"share simulate          {simulate / total:>12.1%}")
    print(f"share reconcile + KPIs  {analyse / total:>12.1%}")
    print(f"share write run folder  {write / total:>12.1%}")


if __name__ == "__main__":
    main()
