"""`twin check` (sim.check, sim.cli_check) and KPI baselines (sim.baseline)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim import baseline as bl
from sim.check import Check, CheckError, CheckReport, ScenarioResult, discover, junit_xml, slo_checks
from sim.cli import app
from sim.kpis import check_slo
from sim.scenario import Slo

RESILIENCE = Path(__file__).resolve().parents[1] / "scenarios" / "resilience"
# A smaller surge than the suite's (the checker's behaviour, not the world, is under test here).
SMALL = ["demand.orders=50", "masterdata.customers=30", "masterdata.skus=60", "seed=3"]


def _sets(extra: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    return [a for s in (*SMALL, *extra) for a in ("--set", s)]


def _kpis(**over: object) -> dict[str, object]:
    k: dict[str, object] = {
        "orders_submitted": 100,
        "lost": 0,
        "duplicates": 0,
        "stuck": 0,
        "mismatches": 0,
        "dlq": 0,
        "fallout_rate": 0.0,
        "latency_s": {
            "erp_accepted": {"p50": 0.3, "p95": 0.5, "p99": 1.0, "max": 2.0},
            "ready_to_ship": {"p50": 400.0, "p95": 900.0, "p99": 1100.0, "max": 1500.0},
            "delivered": {"p50": None, "p95": None, "p99": None, "max": None},
            "crm_closed": {"p50": None, "p95": None, "p99": None, "max": None},
        },
        "fault_windows": [{"name": "erp-down", "recovery_s": 120.0, "max_backlog": 4}],
    }
    k.update(over)
    return k


# --------------------------------------------------------------------------------------- units


def test_discover_skips_bases_and_names_missing_paths(tmp_path: Path) -> None:
    files = discover([RESILIENCE])
    names = {f.name for f in files}
    assert "_base.yaml" not in names and "erp_outage.yaml" in names and len(files) >= 14
    # a file given twice (directly and through its folder) runs once
    assert len(discover([RESILIENCE / "erp_outage.yaml", RESILIENCE])) == len(files)
    with pytest.raises(CheckError, match="nope.yaml: no such file or folder"):
        discover([tmp_path / "nope.yaml"])
    (tmp_path / "_only_base.yaml").write_text("name: x\n")
    with pytest.raises(CheckError, match="no scenario files"):
        discover([tmp_path])


def test_slo_checks_list_every_slo_and_agree_with_check_slo() -> None:
    slo = Slo.model_validate(
        {
            "lost": 0,
            "dlq": 2,
            "fallout_rate": 0.01,
            "latency": {"erp_accepted": {"p95": 0.4, "p99": 5}, "delivered": {"p95": 10}},
            "recovery": {"erp-down": 60, "not-in-run": 10},
        }
    )
    kpis = _kpis(dlq=3)
    checks = slo_checks("s", kpis, slo)
    by = {c.name: c for c in checks}
    assert list(by) == [
        "lost",
        "dlq",
        "fallout_rate",
        "latency_s.erp_accepted.p95",
        "latency_s.erp_accepted.p99",
        "latency_s.delivered.p95",
        "fault_windows.erp-down.recovery_s",
    ]
    failed = {c.name for c in checks if not c.passed}
    assert failed == {b.name for b in check_slo(kpis, slo)}
    assert failed == {"dlq", "latency_s.erp_accepted.p95", "fault_windows.erp-down.recovery_s"}
    assert by["dlq"].limit == 2 and by["dlq"].measured == 3
    assert by["latency_s.delivered.p95"].passed and by["latency_s.delivered.p95"].measured is None
    assert by["latency_s.erp_accepted.p95"].message() == "latency_s.erp_accepted.p95: 0.5 > limit 0.4"


def test_junit_has_one_testcase_per_check_and_names_the_breached_limit() -> None:
    ok = ScenarioResult("a.yaml", "a", "virtual", "resilient", checks=[Check("a", "lost", 0, 0, True)])
    bad = ScenarioResult(
        "b.yaml",
        "b",
        "virtual",
        "resilient",
        checks=[Check("b", "lost", 0, 0, True), Check("b", "latency_s.erp_accepted.p95", 0.001, 2.5, False)],
    )
    err = ScenarioResult("c.yaml", "c", "virtual", "resilient", error="c.yaml: demand.orders: must be >= 0, got -1")
    skip = ScenarioResult("d.yaml", "d", "virtual", "resilient", skipped="live only")
    root = junit_xml(CheckReport([ok, bad, err, skip])).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5",
        "1",
        "1",
        "1",
    )
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases][:3] == [
        ("a [resilient, virtual]", "lost"),
        ("b [resilient, virtual]", "lost"),
        ("b [resilient, virtual]", "latency_s.erp_accepted.p95"),
    ]
    failure = cases[2].find("failure")
    assert failure is not None and failure.get("message") == "latency_s.erp_accepted.p95: 2.5 > limit 0.001"
    assert failure.get("type") == "SloBreach"
    error = cases[3].find("error")
    assert error is not None and "demand.orders" in (error.get("message") or "")
    assert cases[4].find("skipped") is not None


def test_tolerance_parsing_and_errors() -> None:
    assert bl.parse_tolerance([]) == bl.DEFAULT_TOLERANCE
    t = bl.parse_tolerance(["p99=0.5", "p95=10%,fallout_rate=0.01"])
    assert (t["p99"], t["p95"], t["fallout_rate"]) == (0.5, 0.1, 0.01)
    for bad, msg in (
        ("p98=0.2", "unknown key 'p98'"),
        ("p99", "expected key=value"),
        ("p99=fast", "must be a number >= 0, got 'fast'"),
        ("p99=-1", "must be a number >= 0"),
    ):
        with pytest.raises(bl.BaselineError, match=msg):
            bl.parse_tolerance([bad])


def test_baseline_compare_names_regressions() -> None:
    base = bl.snapshot(_kpis())
    assert not [r for r in bl.compare(base, _kpis()) if r.regressed]

    lat = json.loads(json.dumps(_kpis()["latency_s"]))
    lat["erp_accepted"]["p99"] = 1.19  # +19 %: within the default 20 %
    assert not [r for r in bl.compare(base, _kpis(latency_s=lat)) if r.regressed]
    lat["erp_accepted"]["p99"] = 1.25
    bad = [r for r in bl.compare(base, _kpis(latency_s=lat)) if r.regressed]
    assert [(r.name, r.limit) for r in bad] == [("baseline.latency_s.erp_accepted.p99", pytest.approx(1.2))]
    # a tighter tolerance on another percentile, and an absolute slack for tiny latencies
    assert [r.name for r in bl.compare(base, _kpis(), {"p95": 0.0}) if r.regressed] == []
    assert not [r for r in bl.compare(base, _kpis(latency_s=lat), {"latency_abs": 0.5}) if r.regressed]

    worse = _kpis(duplicates=1, fallout_rate=0.01, fault_windows=[{"name": "erp-down", "recovery_s": None}])
    names = {r.name for r in bl.compare(base, worse) if r.regressed}
    assert names == {"baseline.duplicates", "baseline.fallout_rate", "baseline.fault_windows.erp-down.recovery_s"}
    assert {r.name for r in bl.compare(base, worse, {"fallout_rate": 0.02}) if r.regressed} == {
        "baseline.duplicates",
        "baseline.fault_windows.erp-down.recovery_s",
    }


def test_baseline_file_round_trip_merges_and_rejects_garbage(tmp_path: Path) -> None:
    p = tmp_path / "b.json"
    bl.save(p, {"a/resilient/virtual": _kpis()})
    bl.save(p, {"b/naive/virtual": _kpis(lost=2)})
    doc = bl.load(p)
    assert set(doc) == {"a/resilient/virtual", "b/naive/virtual"} and doc["b/naive/virtual"]["lost"] == 2
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(bl.BaselineError, match="x.json: not JSON"):
        bl.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("[]")
    with pytest.raises(bl.BaselineError, match="not a twin baseline"):
        bl.load(tmp_path / "y.json")
    with pytest.raises(bl.BaselineError, match="file not found"):
        bl.load(tmp_path / "missing.json")


# --------------------------------------------------------------------------------------- CLI


def test_seeded_slo_breach_fails_check_and_junit_names_the_limit(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    args = ["check", str(RESILIENCE / "erp_brownout.yaml"), "--junit", str(junit), "--jobs", "1"]
    r = CliRunner().invoke(app, [*args, *_sets(["slo.latency.erp_accepted.p95=0.001"])])
    assert r.exit_code == 1, r.output
    assert "latency_s.erp_accepted.p95" in r.output and "limit 0.001" in r.output and "FAIL" in r.output
    failures = ET.parse(junit).getroot().findall(".//failure")
    assert len(failures) == 1
    assert failures[0].get("message", "").startswith("latency_s.erp_accepted.p95: ")
    assert failures[0].get("message", "").endswith("> limit 0.001")

    ok = CliRunner().invoke(app, ["check", str(RESILIENCE / "erp_brownout.yaml"), "--jobs", "1", *_sets()])
    assert ok.exit_code == 0, ok.output
    assert "0 failed" in ok.output and "PASS" in ok.output


def test_baseline_update_then_regression_is_detected(tmp_path: Path) -> None:
    base = tmp_path / "baseline.json"
    sc = str(RESILIENCE / "erp_brownout.yaml")
    runner = CliRunner()
    w = runner.invoke(app, ["check", sc, "--update-baseline", "--baseline", str(base), "--jobs", "1", *_sets()])
    assert w.exit_code == 0, w.output
    entry = bl.load(base)["erp_brownout/resilient/virtual"]
    assert entry["lost"] == 0 and entry["latency_s"]["erp_accepted"]["p99"] > 0

    same = runner.invoke(app, ["check", sc, "--baseline", str(base), "--jobs", "1", *_sets()])
    assert same.exit_code == 0, same.output
    assert "baseline.latency_s.erp_accepted.p99" in same.output

    # The same build, but the ERP brown-out gets much worse: p99 latency to ERP acceptance regresses.
    worse = _sets(["faults.0.multiplier=40", "faults.0.duration=4h", "slo.latency.erp_accepted={}"])
    r = runner.invoke(
        app, ["check", sc, "--baseline", str(base), "--jobs", "1", "--junit", str(tmp_path / "j.xml"), *worse]
    )
    assert r.exit_code == 1, r.output
    assert "baseline.latency_s.erp_accepted.p99" in r.output and "regressed beyond baseline limit" in r.output
    failure = ET.parse(tmp_path / "j.xml").getroot().find(".//failure")
    assert failure is not None and failure.get("type") == "BaselineRegression"
    # ... unless the tolerance allows it
    lenient = runner.invoke(
        app, ["check", sc, "--baseline", str(base), "--jobs", "1", "--tolerance", "p99=1000", *worse]
    )
    assert lenient.exit_code == 0, lenient.output


def test_folder_runs_in_parallel_and_skips_live_only_in_virtual_mode(tmp_path: Path) -> None:
    folder = tmp_path / "suite"
    folder.mkdir()
    for name in ("_base.yaml", "erp_outage.yaml", "integration_killed.yaml"):
        (folder / name).write_text((RESILIENCE / name).read_text())
    junit = tmp_path / "j.xml"
    r = CliRunner().invoke(app, ["check", str(folder), "--junit", str(junit), "--jobs", "2", *_sets()])
    assert r.exit_code == 0, r.output
    assert "SKIP" in r.output and "1 skipped" in r.output and "2 scenarios" in r.output
    skipped = ET.parse(junit).getroot().findall(".//skipped")
    assert len(skipped) == 1 and "live only" in (skipped[0].get("message") or "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "cloud"], "--mode: must be one of virtual, live, got 'cloud'"),
        (["--profile", "paranoid"], "--profile: must be one of naive, resilient, got 'paranoid'"),
        (["--tolerance", "p42=1"], "unknown key 'p42'"),
        (["--baseline", "/nonexistent/b.json"], "--baseline /nonexistent/b.json: file not found"),
        (["--sut-url", "http://127.0.0.1:9"], "--sut-url: only with --mode live"),
    ],
)
def test_bad_options_exit_1_with_a_clear_message(args: list[str], message: str) -> None:
    r = CliRunner().invoke(app, ["check", str(RESILIENCE / "erp_outage.yaml"), *args])
    assert r.exit_code == 1
    assert message in r.output
    assert "Traceback" not in r.output


def test_bad_scenario_value_is_an_error_row_not_a_traceback(tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    r = CliRunner().invoke(
        app,
        ["check", str(RESILIENCE / "erp_outage.yaml"), "--set", "demand.orders=-5", "--junit", str(junit)],
    )
    assert r.exit_code == 1
    assert "ERROR" in r.output and "demand.orders" in r.output and "-5" in r.output
    assert "Traceback" not in r.output
    assert ET.parse(junit).getroot().get("errors") == "1"
    missing = CliRunner().invoke(app, ["check", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1 and "no such file or folder" in missing.output


# Live mode gates on what real HTTP adds (exactly-once), as the CI job in docs/ci.md does.
LIVE_GATE = ["slo.latency={}", "slo.recovery={}", "slo.stuck=null", "slo.dlq=null", "slo.fallout_rate=null"]


@pytest.mark.live
@pytest.mark.slow
def test_live_mode_checks_duplicate_webhooks_over_real_http(tmp_path: Path) -> None:
    junit = tmp_path / "live.xml"
    args = ["check", "--mode", "live", str(RESILIENCE / "crm_duplicate_webhooks.yaml"), "--junit", str(junit)]
    r = CliRunner().invoke(app, [*args, *_sets(["demand.orders=40", *LIVE_GATE])])
    assert r.exit_code == 0, r.output
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert [c.get("name") for c in cases] == ["lost", "duplicates", "mismatches"]
    assert all(c.get("classname") == "crm_duplicate_webhooks [resilient, live]" for c in cases)
