"""``twin check``: run scenarios as a regression suite and turn their SLOs (and an optional KPI
baseline) into pass/fail checks, a JUnit report and an exit status for CI.

Pure of the terminal: ``run_checks`` returns a ``CheckReport``; ``sim.cli_check`` prints it.

- Paths are files or folders; a folder means its ``*.yaml`` files, sorted, except bases whose name
  starts with ``_`` (they are only ever ``extends``-ed).
- A scenario with a ``kill_integration`` fault window is *live only* (virtual mode has no process
  to kill): in virtual mode it is reported as skipped, never as passed.
- One check per configured SLO (``slo:`` of the scenario), with limit and measured value; pass/fail
  comes from ``sim.kpis.check_slo`` so ``twin run`` and ``twin check`` can never disagree.
- Scenarios run in worker processes (``jobs``); a worker returns plain data, never a DataFrame.
"""

from __future__ import annotations

import os
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim import baseline as bl
from sim.scenario import FaultKind, Scenario, Slo

MODES = ("virtual", "live")
PROFILES = ("naive", "resilient")
LIVE_ONLY_KINDS = frozenset({FaultKind.kill_integration})


class CheckError(ValueError):
    """Bad input to ``twin check`` (a path, a mode); the message names it."""


@dataclass(frozen=True, slots=True)
class Check:
    """One row of the result table and one JUnit testcase."""

    scenario: str
    name: str
    limit: float | None
    measured: float | None
    passed: bool
    kind: str = "slo"  # slo | baseline

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def message(self) -> str:
        got = "never" if self.measured is None else f"{self.measured:g}"
        lim = "–" if self.limit is None else f"{self.limit:g}"
        if self.passed:
            return f"{self.name}: {got} <= limit {lim}"
        what = "regressed beyond baseline limit" if self.kind == "baseline" else "> limit"
        return f"{self.name}: {got} {what} {lim}"


@dataclass
class ScenarioResult:
    path: str
    name: str
    mode: str
    profile: str
    seed: int | None = None
    kpis: dict[str, Any] | None = None
    checks: list[Check] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    out: str | None = None
    wall_s: float = 0.0

    @property
    def key(self) -> str:
        return bl.key(self.name, self.profile, self.mode)

    @property
    def failed(self) -> bool:
        return self.error is not None or any(not c.passed for c in self.checks)


@dataclass
class CheckReport:
    results: list[ScenarioResult]
    baseline_path: str | None = None
    baseline_written: str | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.results)

    @property
    def checks(self) -> list[Check]:
        return [c for r in self.results for c in r.checks]

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


# --------------------------------------------------------------------------------------- discovery


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Scenario files named by ``paths`` (files, or folders of ``*.yaml`` minus ``_`` bases)."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in (*p.glob("*.yaml"), *p.glob("*.yml")) if not q.name.startswith("_"))
            if not found:
                raise CheckError(f"{p}: folder has no scenario files (*.yaml; files starting with _ are bases)")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise CheckError(f"{p}: no such file or folder")
    seen: set[Path] = set()
    unique = []
    for f in files:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            unique.append(f)
    return unique


def live_only(scenario: Scenario) -> bool:
    return any(f.kind in LIVE_ONLY_KINDS for f in scenario.faults)


# --------------------------------------------------------------------------------------- checks


def slo_checks(scenario: str, kpis: Mapping[str, Any], slo: Slo) -> list[Check]:
    """One check per SLO the scenario sets, pass/fail exactly as ``check_slo`` decides."""
    from sim.kpis import check_slo

    breached = {b.name: b for b in check_slo(kpis, slo)}
    rows: list[tuple[str, float, float | None]] = []
    for name in ("lost", "duplicates", "stuck", "mismatches", "dlq", "fallout_rate"):
        limit = getattr(slo, name)
        if limit is not None:
            rows.append((name, float(limit), _num(kpis.get(name))))
    for m, pct in slo.latency.items():
        stats = (kpis.get("latency_s") or {}).get(m) or {}
        for p in ("p50", "p95", "p99", "max"):
            limit = getattr(pct, p)
            if limit is not None:
                rows.append((f"latency_s.{m}.{p}", float(limit), _num(stats.get(p))))
    windows = {w["name"]: w for w in kpis.get("fault_windows") or []}
    for name, limit in slo.recovery.items():
        if name in windows:
            rows.append((f"fault_windows.{name}.recovery_s", float(limit), _num(windows[name].get("recovery_s"))))
    if slo.failure_ratio is not None and kpis.get("calls"):
        rows.append(("failure_ratio", float(slo.failure_ratio), kpis.get("failed_calls", 0) / kpis["calls"]))
    return [Check(scenario, n, lim, got, n not in breached) for n, lim, got in rows]


def baseline_checks(
    scenario: str, base: Mapping[str, Any], kpis: Mapping[str, Any], tol: Mapping[str, float]
) -> list[Check]:
    return [
        Check(scenario, r.name, r.limit, r.measured, not r.regressed, kind="baseline")
        for r in bl.compare(base, kpis, tol)
    ]


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


# --------------------------------------------------------------------------------------- running


def runner(mode: str) -> Callable[..., Any]:
    if mode == "virtual":
        from sim.virtual import run_virtual

        return run_virtual
    if mode == "live":
        try:
            from sim.live import run_live  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise CheckError(
                "--mode live: live mode is not available in this build (sim.live); use --mode virtual"
            ) from None
        return run_live
    raise CheckError(f"--mode: must be one of {', '.join(MODES)}, got {mode!r}")


@dataclass(frozen=True, slots=True)
class Task:
    path: str
    mode: str
    profile: str | None
    sets: tuple[str, ...]
    seed: int | None
    out: str | None
    report: bool = True
    sut_url: str | None = None


def run_one(task: Task) -> ScenarioResult:
    """Load and run one scenario; never raises (problems become ``error``). Top level: picklable."""
    from sim.scenario import ScenarioError

    stem = Path(task.path).stem
    res = ScenarioResult(task.path, stem, task.mode, task.profile or "resilient")
    t0 = time.perf_counter()
    try:
        from sim.cli_scenario import load_checked

        sc = load_checked(task.path, list(task.sets), task.seed)
        if task.profile is not None and sc.integration.profile != task.profile:
            data = sc.model_dump(mode="json")
            data["integration"]["profile"] = task.profile
            sc = Scenario.model_validate(data)
        res.name, res.profile, res.seed = sc.name, sc.integration.profile, sc.seed
        if task.mode == "virtual" and live_only(sc):
            res.skipped = "live only (kill_integration fault): run with --mode live"
            return res
        run = runner(task.mode)
        out = None if task.out is None else Path(task.out)
        kw: dict[str, Any] = {"out": out, "report": task.report}
        if task.mode == "live" and task.sut_url:
            kw["sut_url"] = task.sut_url
        r = run(sc, **kw)
        res.kpis = r.kpis
        res.out = None if r.out is None else str(r.out)
        res.checks = slo_checks(res.name, r.kpis, sc.slo)
    except ScenarioError as e:
        res.error = "\n".join(e.problems)
    except CheckError as e:
        res.error = str(e)
    except Exception as e:  # a crash in one scenario must not hide the others' results
        last = traceback.extract_tb(e.__traceback__)[-1:]
        where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
        res.error = f"run failed: {type(e).__name__}: {e}{where}"
    finally:
        res.wall_s = time.perf_counter() - t0
    return res


def run_checks(
    paths: Iterable[str | Path],
    *,
    mode: str = "virtual",
    profile: str | None = "resilient",
    sets: Iterable[str] = (),
    seed: int | None = None,
    out: str | Path | None = None,
    jobs: int = 2,
    baseline: str | Path | None = None,
    update_baseline: bool = False,
    tolerance: Iterable[str] = (),
    report: bool = True,
    sut_url: str | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> CheckReport:
    """Run every scenario, check SLOs (and the baseline), write the baseline when asked."""
    if mode not in MODES:
        raise CheckError(f"--mode: must be one of {', '.join(MODES)}, got {mode!r}")
    if profile is not None and profile not in PROFILES:
        raise CheckError(f"--profile: must be one of {', '.join(PROFILES)}, got {profile!r}")
    if jobs < 1:
        raise CheckError(f"--jobs: must be >= 1, got {jobs}")
    if mode == "live":
        runner("live")  # fail fast, before any scenario runs
    elif sut_url:
        raise CheckError("--sut-url: only with --mode live (virtual mode runs the reference integration in-process)")
    try:
        tol = bl.parse_tolerance(tolerance)
        base = bl.load(baseline) if baseline is not None and not update_baseline else None
    except bl.BaselineError as e:
        raise CheckError(str(e)) from None
    files = discover(paths)
    t0 = time.perf_counter()
    tag = profile or "scenario"
    tasks = [
        Task(
            str(f),
            mode,
            profile,
            tuple(sets),
            seed,
            None if out is None else str(Path(out) / f"{f.stem}-{tag}-{mode}"),
            report,
            sut_url,
        )
        for f in files
    ]
    # A live run is five processes and real time: one at a time.
    workers = 1 if mode == "live" else max(1, min(jobs, len(tasks), os.cpu_count() or 1))
    results: list[ScenarioResult] = []
    if workers == 1:
        for t in tasks:
            results.append(run_one(t))
            if on_result:
                on_result(results[-1])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for r in pool.map(run_one, tasks):
                results.append(r)
                if on_result:
                    on_result(r)
    rep = CheckReport(results, baseline_path=None if baseline is None else str(baseline))
    if base is not None:
        for r in results:
            if r.kpis is not None and r.key in base:
                r.checks.extend(baseline_checks(r.name, base[r.key], r.kpis, tol))
    if update_baseline and baseline is not None:
        entries = {r.key: r.kpis for r in results if r.kpis is not None}
        rep.baseline_written = str(bl.save(baseline, entries))
    rep.wall_s = time.perf_counter() - t0
    return rep


# --------------------------------------------------------------------------------------- junit


def junit_xml(rep: CheckReport, suite: str = "twin check") -> ET.ElementTree:
    """JUnit XML: one testcase per scenario x check (``classname`` the scenario), failures carrying
    the breached limit; a scenario that errored or was skipped is one testcase of its own."""
    root = ET.Element("testsuites", name=suite)
    ts = ET.SubElement(root, "testsuite", name=suite)
    tests = failures = errors = skipped = 0
    for r in rep.results:
        cls = f"{r.name} [{r.profile}, {r.mode}]"
        if r.error is not None or r.skipped is not None:
            tc = ET.SubElement(ts, "testcase", classname=cls, name="run", time=f"{r.wall_s:.3f}", file=r.path)
            tests += 1
            if r.error is not None:
                errors += 1
                ET.SubElement(tc, "error", message=r.error.splitlines()[0], type="ScenarioError").text = r.error
            else:
                skipped += 1
                ET.SubElement(tc, "skipped", message=r.skipped or "")
            continue
        per = r.wall_s / max(1, len(r.checks))
        for c in r.checks:
            tc = ET.SubElement(ts, "testcase", classname=cls, name=c.name, time=f"{per:.3f}", file=r.path)
            tests += 1
            if not c.passed:
                failures += 1
                kind = "BaselineRegression" if c.kind == "baseline" else "SloBreach"
                msg = c.message()
                ET.SubElement(tc, "failure", message=msg, type=kind).text = (
                    f"{msg}\nscenario: {r.path}\nlimit: {c.limit}\nmeasured: {c.measured}"
                    + (f"\nrun folder: {r.out}" if r.out else "")
                )
    for el in (root, ts):
        el.set("tests", str(tests))
        el.set("failures", str(failures))
        el.set("errors", str(errors))
        el.set("skipped", str(skipped))
        el.set("time", f"{rep.wall_s:.3f}")
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def write_junit(rep: CheckReport, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(rep).write(p, encoding="utf-8", xml_declaration=True)
    return p


__all__ = [
    "Check",
    "CheckError",
    "CheckReport",
    "ScenarioResult",
    "Task",
    "discover",
    "junit_xml",
    "live_only",
    "run_checks",
    "run_one",
    "slo_checks",
    "write_junit",
]
