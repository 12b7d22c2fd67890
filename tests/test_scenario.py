"""Scenario loading, error messages (exact), `twin validate|schema|masterdata`, extends and --set."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from sim.cli import app
from sim.cli_scenario import load_checked, load_for_cli
from sim.scenario import ScenarioError, dump_scenario, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
BROKEN = "tests/data/broken"
KINDS = "fixed, uniform, exponential, lognormal, gamma, empirical"

EXPECTED = {
    "unknown_key.yaml": ["demand.surgee: unknown key"],
    "bad_type.yaml": [
        "masterdata.customers: must be a valid integer, unable to parse string as an integer, got 'many'"
    ],
    "negative_multiplier.yaml": ["demand.surge.peak_multiplier: must be >= 1, got -2"],
    "bad_distribution_kind.yaml": [
        f"warehouse.pick_time.kind: unknown distribution kind 'weibull'; expected one of {KINDS}"
    ],
    "lognormal_sigma_missing.yaml": ["warehouse.pick_time.sigma: required but missing"],
    "bad_duration.yaml": [
        "horizon: must be a duration like 45s, 30m, 2h, 3d, 13w or a number of seconds, got '13 weeks'"
    ],
    "yaml_syntax.yaml": ["YAML syntax error at line 4, column 11: mapping values are not allowed here"],
    "fault_missing_field.yaml": ["faults.0: fault kind 'brownout' needs multiplier"],
    "circular_a.yaml": ["extends: circular reference (circular_a.yaml -> circular_b.yaml -> circular_a.yaml)"],
    "many_errors.yaml": [
        "horizon: must be > 0, got 0.0",
        "demand.intraday: must be 24 non-negative hourly weights, not all zero, got 3 values",
        "demand.surge.share: must be <= 1, got 1.5",
        "systems.erp.error_rate: must be <= 1, got 2",
    ],
    "fault_after_end.yaml": [
        "faults.0.start: must be before the run ends (horizon + drain_limit = 259200 s), got 345600"
    ],
    "missing_parent.yaml": [
        f"extends: file not found, got 'no_such_parent.yaml' (looked for {BROKEN}/no_such_parent.yaml)"
    ],
    "not_a_mapping.yaml": ["top level must be a mapping of keys, got list"],
    "zero_profile.yaml": [
        "demand: intraday x weekday x month_weeks is zero over the whole horizon, so no order can arrive"
    ],
}


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # Labels in messages are the paths as given, so run from the repository root.
    monkeypatch.chdir(ROOT)


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(app, list(args))


def test_every_broken_file_has_an_expected_message() -> None:
    on_disk = {p.name for p in (ROOT / BROKEN).glob("*.yaml")} - {"circular_b.yaml"}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 8


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_message(name: str) -> None:
    path = f"{BROKEN}/{name}"
    with pytest.raises(ScenarioError) as exc:
        load_checked(path)
    assert exc.value.problems == [f"{path}: {m}" for m in EXPECTED[name]]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_cli_reports_and_exits_1(name: str) -> None:
    path = f"{BROKEN}/{name}"
    result = run("validate", path)
    assert result.exit_code == 1
    for m in EXPECTED[name]:
        assert f"{path}: {m}" in result.output
    assert "Traceback" not in result.output


def test_validate_reports_every_file_and_ok_lines() -> None:
    result = run("validate", "scenarios/demo.yaml", f"{BROKEN}/bad_type.yaml", f"{BROKEN}/negative_multiplier.yaml")
    assert result.exit_code == 1
    assert "ok: scenarios/demo.yaml" in result.stdout
    assert f"{BROKEN}/bad_type.yaml: masterdata.customers:" in result.stderr
    assert f"{BROKEN}/negative_multiplier.yaml: demand.surge.peak_multiplier: must be >= 1, got -2" in result.stderr


def test_shipped_scenarios_validate() -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scenarios").rglob("*.yaml"))
    for required in ("demo", "baseline", "quarter_end_surge", "fidelity", "mmc"):
        assert f"scenarios/{required}.yaml" in files
    result = run("validate", *files)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("ok: ") == len(files)


def test_missing_file() -> None:
    result = run("validate", "scenarios/nope.yaml")
    assert result.exit_code == 1
    assert "scenarios/nope.yaml: file not found" in result.output


def test_bad_set_without_equals() -> None:
    result = run("validate", "scenarios/demo.yaml", "--set", "demand.surge.peak_multiplier")
    assert result.exit_code == 1
    assert (
        "--set 'demand.surge.peak_multiplier': expected key=value, e.g. demand.surge.peak_multiplier=5" in result.output
    )


def test_bad_set_value_names_file_and_path() -> None:
    result = run("validate", "scenarios/demo.yaml", "--set", "demand.surge.share=2")
    assert result.exit_code == 1
    assert "scenarios/demo.yaml: demand.surge.share: must be <= 1, got 2" in result.output


def test_bad_set_list_index() -> None:
    with pytest.raises(ScenarioError) as exc:
        load_checked("scenarios/demo.yaml", ["faults.7.start=1h"])
    assert exc.value.problems == ["--set faults.7.start: no list item '7'"]


def test_bad_set_unknown_key() -> None:
    with pytest.raises(ScenarioError) as exc:
        load_checked("scenarios/demo.yaml", ["demand.surgee.share=0.5"])
    assert exc.value.problems == ["scenarios/demo.yaml: demand.surgee: unknown key"]


def test_schema_is_json_with_properties() -> None:
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "properties" in schema
    assert {"demand", "faults", "masterdata", "horizon"} <= set(schema["properties"])


# --------------------------------------------------------------------------------------- extends / --set


def test_extends_child_wins_and_parent_fills_in() -> None:
    s = load_scenario("scenarios/quarter_end_surge.yaml")
    assert s.name == "quarter_end_surge"
    assert s.demand.surge.share == 0.5 and s.demand.surge.peak_multiplier == 4
    assert s.demand.orders == 12000  # from baseline.yaml
    assert s.masterdata.customers == 500
    assert [f.name for f in s.faults] == ["erp-brownout-quarter-end"]


def test_set_beats_child_beats_parent(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text("name: p\nseed: 1\ndemand: {orders: 10, surge: {share: 0.1, weeks: 1}}\n")
    (tmp_path / "child.yaml").write_text("extends: parent.yaml\nname: c\ndemand: {surge: {share: 0.2}}\n")
    s = load_scenario(tmp_path / "child.yaml")
    assert (s.name, s.seed, s.demand.orders, s.demand.surge.share, s.demand.surge.weeks) == ("c", 1, 10, 0.2, 1)
    s = load_checked(tmp_path / "child.yaml", ["demand.surge.share=0.3", "demand.orders=20", "seed=5"])
    assert (s.demand.surge.share, s.demand.orders, s.seed, s.demand.surge.weeks) == (0.3, 20, 5, 1)
    # later --set wins over earlier; --seed wins over --set seed
    s = load_checked(tmp_path / "child.yaml", ["demand.orders=20", "demand.orders=30", "seed=5"], seed=9)
    assert (s.demand.orders, s.seed) == (30, 9)


def test_set_parses_yaml_values_and_lists(tmp_path: Path) -> None:
    s = load_checked(
        "scenarios/demo.yaml", ["demand.weekday=[1, 1, 1, 1, 1, 0, 0]", "faults.0.multiplier=3", "horizon=2d"]
    )
    assert s.demand.weekday == [1, 1, 1, 1, 1, 0, 0]
    assert s.faults[0].multiplier == 3
    assert s.horizon == 2 * 86400


def test_load_for_cli_exits_1_and_prints(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as exc:
        load_for_cli(f"{BROKEN}/negative_multiplier.yaml")
    assert exc.value.exit_code == 1
    assert "demand.surge.peak_multiplier: must be >= 1, got -2" in capsys.readouterr().err
    s = load_for_cli("scenarios/demo.yaml", ["demand.orders=10"], seed=3)
    assert (s.demand.orders, s.seed) == (10, 3)


def test_dump_roundtrip() -> None:
    s = load_scenario("scenarios/demo.yaml")
    import yaml

    again = parse_scenario(yaml.safe_load(dump_scenario(s)), "dumped")
    assert again == s


def test_durations_in_distributions() -> None:
    s = load_scenario("scenarios/demo.yaml")
    assert s.warehouse.pick_time.median == 240  # "4m"
    assert s.warehouse.pack_time.value == 120  # "2m" -> fixed


# --------------------------------------------------------------------------------------- masterdata CLI


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_masterdata_command_writes_files(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "md"
    result = run(
        "masterdata", "scenarios/demo.yaml", "--out", str(out), "--format", fmt,
        "--set", "masterdata.customers=12", "--seed", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "12 customers" in result.stdout and "seed 5" in result.stdout
    names = {p.name for p in out.iterdir()}
    assert f"customers.{fmt}" in names and f"contract_prices.{fmt}" in names
    df = pd.read_csv(out / "customers.csv") if fmt == "csv" else pd.read_parquet(out / "customers.parquet")
    assert len(df) == 12


def test_masterdata_command_bad_scenario(tmp_path: Path) -> None:
    result = run("masterdata", f"{BROKEN}/bad_type.yaml", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "masterdata.customers" in result.output
    assert not any(tmp_path.iterdir())


def test_unquoted_times_of_day_are_not_base_60(tmp_path: Path) -> None:
    # Plain YAML 1.1 reads 15:00 as 900; the scenario loader keeps it a time of day.
    p = tmp_path / "t.yaml"
    p.write_text("name: t\nwarehouse: {cutoff: 15:00}\ncarrier: {pickups: [16:00, 9:30]}\n")
    s = load_scenario(p)
    assert s.warehouse.cutoff == 15 * 3600
    assert s.carrier.pickups == [16 * 3600, 9.5 * 3600]
    s = load_checked(p, ["warehouse.cutoff=14:30"])
    assert s.warehouse.cutoff == 14.5 * 3600


def test_demand_command(tmp_path: Path) -> None:
    result = run("demand", "scenarios/demo.yaml", "--out", str(tmp_path), "--set", "demand.orders=100")
    assert result.exit_code == 0, result.output
    assert "total: expected 140.0" in result.stdout  # 100 * (0.6 + 0.4 * 2)
    orders = pd.read_parquet(tmp_path / "orders.parquet")
    lines = pd.read_parquet(tmp_path / "order_lines.parquet")
    assert f"drawn {len(orders)}" in result.stdout
    assert set(lines["key"]) == set(orders["key"])


def test_demand_command_zero_profile() -> None:
    result = run("demand", f"{BROKEN}/zero_profile.yaml")
    assert result.exit_code == 1
    assert "zero over the whole horizon" in result.output
