"""Parameter sweeps: grid parsing, common random numbers, local processes vs a Dask LocalCluster
giving identical results, the written sweep folder, and `twin sweep` input errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.compare import replication_seeds
from sim.kpis import WALL_KEYS
from sim.results import load_results
from sim.scenario import Scenario, load_scenario
from sim.sweep import (
    Axis,
    SweepError,
    execute,
    load_sweep,
    parse_grid,
    plan,
    profile_axis,
    run_sweep,
    variants,
    wide_summary,
)

DEMO = Path(__file__).resolve().parent.parent / "scenarios" / "demo.yaml"
SMALL = ["horizon=1d", "drain_limit=2d", "demand.orders=30"]
GRID = ["warehouse.pickers=1,3", "profile=naive,resilient"]
REPS = 2


@pytest.fixture(scope="module")
def base() -> Scenario:
    return load_scenario(DEMO, SMALL)


@pytest.fixture(scope="module")
def local(base: Scenario, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sweep") / "local"
    return run_sweep(base, parse_grid(GRID), REPS, jobs=2, out=out, keep_runs=True)


# --------------------------------------------------------------------------------------- grid


def test_parse_grid_values_are_yaml_scalars() -> None:
    axes = parse_grid(["warehouse.pickers=2,3,4", "systems.erp.rate_limit.per=10s,1m", "demand.surge.share=0.2, 0.5"])
    assert axes == [
        Axis("warehouse.pickers", (2, 3, 4)),
        Axis("systems.erp.rate_limit.per", ("10s", "1m")),
        Axis("demand.surge.share", (0.2, 0.5)),
    ]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("warehouse.pickers", "expected key=v1,v2"),
        ("=1,2", "bad key"),
        ("warehouse..pickers=1", "bad key"),
        ("warehouse.pickers=", "empty value"),
        ("warehouse.pickers=1,,2", "empty value"),
        ("warehouse.pickers=1,1", "repeated value"),
        ("seed=1,2", "--replications"),
        ("profile=naive,clever", "naive or resilient"),
    ],
)
def test_bad_grid_names_argument_and_value(spec: str, fragment: str) -> None:
    with pytest.raises(SweepError) as e:
        parse_grid([spec])
    assert f"--grid {spec!r}" in str(e.value) and fragment in str(e.value)


def test_grid_key_twice_and_profile_twice() -> None:
    with pytest.raises(SweepError, match="given twice"):
        parse_grid(["warehouse.pickers=1", "warehouse.pickers=2"])
    with pytest.raises(SweepError, match="both given"):
        profile_axis(parse_grid(["profile=naive"]), "resilient")
    with pytest.raises(SweepError, match="naive or resilient"):
        profile_axis([], "naive,smart")
    assert profile_axis([], "naive,resilient") == [Axis("profile", ("naive", "resilient"))]


def test_variants_are_the_cross_product_first_axis_slowest() -> None:
    vs = variants([Axis("a", (1, 2)), Axis("b", ("x", "y", "z"))])
    assert len(vs) == 6
    assert vs[0] == {"a": 1, "b": "x"} and vs[1] == {"a": 1, "b": "y"} and vs[3] == {"a": 2, "b": "x"}


def test_plan_applies_grid_and_uses_common_random_numbers() -> None:
    base = load_scenario(DEMO, [*SMALL, "systems.erp.rate_limit.requests=1", "systems.erp.rate_limit.per=1s"])
    tasks = plan(base, parse_grid([*GRID, "systems.erp.rate_limit.requests=5"]), 3)
    assert len(tasks) == 2 * 2 * 1 * 3
    seeds = replication_seeds(base.seed, 3)
    for t in tasks:
        # CRN: replication r runs the same seed in every variant, and the seeds differ by r.
        assert t.seed == seeds[t.replication]
        sc = Scenario.model_validate(t.scenario)
        assert sc.warehouse.pickers == t.grid["warehouse.pickers"]
        assert sc.integration.profile == t.grid["profile"]
        assert sc.systems["erp"].rate_limit is not None and sc.systems["erp"].rate_limit.requests == 5
    assert len(set(seeds)) == 3
    by_rep = pd.DataFrame([{"r": t.replication, "v": t.variant, "seed": t.seed} for t in tasks])
    assert (by_rep.groupby("r")["seed"].nunique() == 1).all()


def test_plan_rejects_a_bad_variant_before_running(base: Scenario) -> None:
    with pytest.raises(SweepError, match=r"warehouse\.pickers=0.*warehouse\.pickers"):
        plan(base, parse_grid(["warehouse.pickers=2,0"]), 1)
    with pytest.raises(SweepError, match="--replications 0"):
        plan(base, parse_grid(["warehouse.pickers=2"]), 0)


# --------------------------------------------------------------------------------------- running


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_run_failing_inside_a_worker_is_named_not_a_traceback(base: Scenario, jobs: int) -> None:
    import dataclasses

    tasks = plan(base, parse_grid(["warehouse.pickers=2,3"]), 1)
    # Corrupt the second variant after planning, so it fails inside the worker, not in plan().
    broken = dataclasses.replace(tasks[1], scenario={**tasks[1].scenario, "horizon": "soon"})
    with pytest.raises(SweepError) as err:
        execute([tasks[0], broken], jobs=jobs)
    msg = str(err.value)
    assert f"variant 1 (warehouse.pickers=3), replication 0, seed {broken.seed} failed: ValidationError" in msg
    assert f"twin run SCENARIO --seed {broken.seed} --set warehouse.pickers=3" in msg


def test_local_sweep_frame_and_files(local, base: Scenario) -> None:
    df = local.frame
    assert len(df) == 4 * REPS
    assert list(df.columns[:6]) == ["variant", "replication", "seed", "warehouse.pickers", "profile", "slo_met"]
    assert df["seed"].tolist() == replication_seeds(base.seed, REPS) * 4
    assert {"fallout_rate", "latency_s.erp_accepted.p95", "orders_submitted", "outcomes.completed"} <= set(df.columns)
    # Same seed, same demand: every variant of a replication saw the same orders.
    assert (df.groupby("replication")["orders_submitted"].nunique() == 1).all()
    out = local.out
    for f in ("sweep.parquet", "summary.csv", "sweep.json", "sweep.png", "scenario.yaml"):
        assert (out / f).is_file(), f
    back = load_sweep(out)
    pd.testing.assert_frame_equal(back.frame, df)
    assert back.axes == local.axes and back.seeds == local.seeds
    # Summary: one row per variant x KPI; mean matches the frame's.
    s = back.summary
    fr = s[s["kpi"] == "fallout_rate"].set_index("variant")["mean"]
    assert fr.to_numpy() == pytest.approx(df.groupby("variant")["fallout_rate"].mean().to_numpy())
    assert (s[s["kpi"] == "fallout_rate"]["n"] == REPS).all()
    wide = wide_summary(s, back.axes, ["fallout_rate", "slo_met"])
    assert list(wide.columns) == [
        "variant",
        "warehouse.pickers",
        "profile",
        "fallout_rate",
        "fallout_rate ±",
        "slo_met",
        "slo_met ±",
    ]


def test_kept_runs_load_and_agree_with_the_frame(local) -> None:
    res = load_results(local.out, tables=("orders",))
    assert len(res.runs) == len(local.frame)
    runs = res.runs.sort_values("run").reset_index(drop=True)
    assert runs["seed"].tolist() == local.frame["seed"].tolist()  # v000-r000, v000-r001, ...
    assert runs["orders_submitted"].tolist() == local.frame["orders_submitted"].tolist()
    assert runs["fallout_rate"].tolist() == local.frame["fallout_rate"].tolist()


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_frame_as_local_processes(local, base: Scenario) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        # By address, as `twin sweep --dask tcp://...` does: run_sweep connects its own client.
        remote = run_sweep(base, parse_grid(GRID), REPS, dask=cluster.scheduler_address)
    wall = [c for c in WALL_KEYS if c in local.frame.columns]
    pd.testing.assert_frame_equal(remote.frame.drop(columns=wall), local.frame.drop(columns=wall))
    pd.testing.assert_frame_equal(remote.summary, local.summary)


def test_unreachable_dask_scheduler_is_a_clear_error(base: Scenario) -> None:
    from sim.sweep import execute

    tasks = plan(base, parse_grid(["warehouse.pickers=2"]), 1)
    with pytest.raises(SweepError, match=r"--dask 'tcp://127\.0\.0\.1:1': cannot connect"):
        execute(tasks, dask="tcp://127.0.0.1:1", connect_timeout=1.0)


# --------------------------------------------------------------------------------------- CLI


def _invoke(*args: str):
    return CliRunner().invoke(app, ["sweep", str(DEMO), *args])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--grid", "warehouse.pickers"], "--grid 'warehouse.pickers': expected key=v1,v2"),
        (["--grid", "warehouse.pickers=1,,2"], "empty value"),
        ([], "--grid: give at least one"),
        (["--grid", "warehouse.pickers=1", "--profile", "clever"], "--profile 'clever'"),
        (["--grid", "warehouse.pickers=1", "-n", "0"], "--replications 0"),
        (["--grid", "warehouse.pickers=1", "-j", "0"], "--jobs 0"),
        (["--grid", "warehouse.pickers=1", "--jobs", "2", "--dask", "tcp://x:1"], "--jobs and --dask"),
        (["--grid", "warehouse.pickers=1,abc"], "warehouse.pickers"),
    ],
)
def test_cli_bad_input_exit_1_without_traceback(args: list[str], fragment: str) -> None:
    r = _invoke(*args)
    assert r.exit_code == 1, r.output
    assert fragment in r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_cli_sweep_runs_and_writes(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    sets = [a for s in SMALL for a in ("--set", s)]
    r = _invoke(*sets, "--grid", "warehouse.pickers=1,2", "-n", "1", "-j", "1", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "2 variants x 1 replications" in r.output and "sweep folder" in r.output
    df = pd.read_parquet(out / "sweep.parquet")
    assert df["warehouse.pickers"].tolist() == [1, 2]
    assert (out / "summary.csv").is_file() and (out / "sweep.png").stat().st_size > 1000
    with pytest.raises(FileNotFoundError, match="load_sweep"):
        load_results(out)  # no --keep-runs: the hint points at the KPI table


def test_frame_mixed_type_grid_values_stay_writable(tmp_path: Path) -> None:
    from sim.sweep import frame

    axes = parse_grid(["systems.erp.rate_limit.per=10s,60"])
    common = {"replication": 0, "seed": 1, "profile": "naive", "slo_met": True, "breaches": "", "lost": 0}
    df = frame(
        [
            {"variant": 1, "systems.erp.rate_limit.per": 60, **common},
            {"variant": 0, "systems.erp.rate_limit.per": "10s", **common},
        ],
        axes,
    )
    assert df["variant"].tolist() == [0, 1] and df["systems.erp.rate_limit.per"].tolist() == ["10s", "60"]
    assert df["lost"].dtype == "float64"
    df.to_parquet(tmp_path / "x.parquet")
