"""Fingerprints of virtual runs: proof that a performance change left behaviour byte-identical.

    python benchmarks/fingerprint_virtual.py [--jobs 2] [--out fingerprints.json] [--compare old.json]

For each run: sha256 of ``kpis.json`` without the wall figures (``sim.kpis.strip_wall``) plus the
``orders``, ``calls`` and ``events`` frames (CSV text, so every value and the row order count).
Runs: quarter-end surge at ``demand.orders=400``, the demo scenario (naive and resilient) and every
``scenarios/resilience/*.yaml`` that runs virtually. ``--compare`` prints which ones moved.
``--cold`` pages idle per-order state out to disk in every run (``run_virtual(cold=True)``): its
fingerprints must equal the in-memory ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def runs() -> list[tuple[str, str, list[str], str | None]]:
    out: list[tuple[str, str, list[str], str | None]] = [
        ("quarter_end_surge@400", "scenarios/quarter_end_surge.yaml", ["demand.orders=400"], None),
        ("demo@naive", "scenarios/demo.yaml", [], "naive"),
        ("demo@resilient", "scenarios/demo.yaml", [], "resilient"),
    ]
    for p in sorted((ROOT / "scenarios" / "resilience").glob("*.yaml")):
        if not p.name.startswith("_"):
            out.append((f"resilience/{p.stem}", str(p.relative_to(ROOT)), [], None))
    return out


def fingerprint(spec: tuple[str, str, list[str], str | None, bool]) -> tuple[str, str]:
    name, path, sets, profile, cold = spec
    sys.path.insert(0, str(ROOT))
    from sim.kpis import strip_wall
    from sim.scenario import load_scenario
    from sim.virtual import run_virtual

    sc = load_scenario(ROOT / path, sets)
    try:
        r = run_virtual(sc, profile=profile, cold=cold or None)
    except Exception as e:  # noqa: BLE001 - a live-only scenario is reported, not fatal
        return name, f"SKIP {type(e).__name__}: {e}"
    h = hashlib.sha256()
    h.update(json.dumps(strip_wall(r.kpis), sort_keys=True, default=str).encode())
    for frame in (r.orders, r.calls, r.events):
        h.update(frame.to_csv(index=False).encode())
    return name, h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", type=Path)
    ap.add_argument("--cold", action="store_true", help="page idle state out to disk in every run")
    args = ap.parse_args()
    with ProcessPoolExecutor(args.jobs) as pool:
        got = dict(pool.map(fingerprint, [(*r, args.cold) for r in runs()]))
    for name, fp in got.items():
        print(f"{name:45} {fp}")
    if args.out:
        args.out.write_text(json.dumps(got, indent=1) + "\n")
    if args.compare:
        old = json.loads(args.compare.read_text())
        moved = [n for n in got if old.get(n) != got[n]]
        print(f"{len(got) - len(moved)}/{len(got)} identical" + (f"; moved: {', '.join(moved)}" if moved else ""))
        if moved:
            sys.exit(1)


if __name__ == "__main__":
    main()
