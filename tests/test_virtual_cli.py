"""`twin run` / `twin compare` through the typer app (small scenario, no progress bar)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from sim.cli import app

SCENARIO = """\
name: cli-small
horizon: 1d
drain_limit: 3d
demand: {orders: 30}
masterdata: {customers: 30, skus: 60}
faults:
  - {name: erp-down, system: erp, kind: outage, start: 9h, duration: 1h}
"""


def test_run_replications_and_compare(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(SCENARIO)
    runner = CliRunner()
    a = runner.invoke(app, ["run", str(sc), "-q", "--out", str(tmp_path / "a"), "--profile", "naive", "--seed", "5"])
    assert a.exit_code == 0, a.output
    assert "orders_submitted" in a.output and (tmp_path / "a" / "report.html").exists()
    assert json.loads((tmp_path / "a" / "meta.json").read_text())["profile"] == "naive"

    b = runner.invoke(app, ["run", str(sc), "-n", "2", "-j", "2", "--out", str(tmp_path / "b")])
    assert b.exit_code == 0, b.output
    assert "95% CI" in b.output
    summary = json.loads((tmp_path / "b" / "replications.json").read_text())
    assert len(summary["seeds"]) == 2 and len(set(summary["seeds"])) == 2
    rep = summary["runs"][0]["out"]

    c = runner.invoke(app, ["compare", str(tmp_path / "a"), rep, "--out", str(tmp_path / "cmp.png")])
    assert c.exit_code == 0, c.output
    assert "Δ" in c.output and (tmp_path / "cmp.png").stat().st_size > 1000


def test_slo_breach_exit_code(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(SCENARIO + "slo: {fallout_rate: 0.0, latency: {erp_accepted: {p50: 0.000001}}}\n")
    r = CliRunner().invoke(app, ["run", str(sc), "-q", "--out", str(tmp_path / "r")])
    assert r.exit_code == 3, r.output
    assert "SLO breached" in r.output and "latency_s.erp_accepted.p50" in r.output


def test_compare_rejects_non_run_folder(tmp_path):
    r = CliRunner().invoke(app, ["compare", str(tmp_path), str(tmp_path)])
    # rich wraps long paths at the terminal width, so compare with whitespace folded
    assert r.exit_code == 1 and "not a run folder" in " ".join(r.output.split())


def test_memory_cold_and_warm_give_the_same_run(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(SCENARIO)
    runner = CliRunner()
    for memory in ("cold", "warm"):
        r = runner.invoke(
            app, ["run", str(sc), "-q", "--memory", memory, "--seed", "3", "--out", str(tmp_path / memory)]
        )
        assert r.exit_code == 0, r.output
    from sim.kpis import strip_wall

    cold, warm = (json.loads((tmp_path / m / "kpis.json").read_text()) for m in ("cold", "warm"))
    assert cold["orders_submitted"] > 0 and strip_wall(cold) == strip_wall(warm)
    assert (tmp_path / "cold" / "orders.parquet").read_bytes() == (tmp_path / "warm" / "orders.parquet").read_bytes()


def test_memory_option_is_checked(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(SCENARIO)
    bad = CliRunner().invoke(app, ["run", str(sc), "-q", "--memory", "frozen"])
    assert bad.exit_code == 2 and "--memory" in bad.output and "frozen" in bad.output
    live = CliRunner().invoke(app, ["run", str(sc), "-q", "--mode", "live", "--memory", "cold"])
    assert live.exit_code == 2 and "--memory cold" in live.output
