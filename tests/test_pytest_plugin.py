"""The `twin` pytest plugin (entry point pytest11), exercised the way a user's suite would use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sim.pytest_plugin import AttrDict

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = """\
name: plugin-small
seed: 5
horizon: 1d
drain_limit: 3d
demand: {orders: 30}
masterdata: {customers: 30, skus: 60}
faults:
  - {name: erp-down, system: erp, kind: outage, start: 9h, duration: 1h}
slo:
  lost: 0
  latency:
    erp_accepted: {p95: 10m}
"""

USER_TESTS = """\
import pytest


def test_resilient_run(twin, tmp_path):
    result = twin.run("scenarios/small.yaml", profile="resilient", sets=["demand.orders=25"])
    assert result.kpis.orders_submitted > 5
    assert result.kpis.lost == 0 and result.kpis["duplicates"] == 0
    assert result.kpis.latency_s.erp_accepted.p95 < 600
    assert result.kpis.fault_windows[0].name == "erp-down"
    assert len(result.orders) == result.kpis.orders_submitted
    assert {"crm_id", "outcome"} <= set(result.orders.columns)
    assert result.breaches == [] and result.ok
    assert result.out is not None and result.out.is_relative_to(tmp_path)
    assert (result.out / "kpis.json").exists()


def test_seeded_breach_is_reported(twin):
    result = twin.run("scenarios/small.yaml", sets={"slo.latency.erp_accepted.p95": 0.001})
    assert [b.name for b in result.breaches] == ["latency_s.erp_accepted.p95"]
    assert not result.ok


def test_bad_input_fails_cleanly(twin):
    twin.run("scenarios/small.yaml", sets=["demand.orders=-1"])


def test_unknown_kpi_names_the_known_ones(twin):
    result = twin.run("scenarios/small.yaml", profile="naive")
    with pytest.raises(AttributeError, match="no KPI 'lsot'"):
        result.kpis.lsot


@pytest.mark.twin_live
def test_marker_is_registered():
    pass
"""


def test_plugin_in_a_user_suite(pytester: pytest.Pytester) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "small.yaml").write_text(SCENARIO)
    pytester.makepyfile(test_user=USER_TESTS)
    # --strict-markers: the twin_live marker must be registered by the plugin itself.
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers", "-q")
    result.assert_outcomes(passed=4, failed=1)
    out = result.stdout.str()
    assert "twin.run: scenarios/small.yaml: demand.orders: must be >= 0, got -1" in out
    assert "Traceback" not in out


def test_plugin_is_loaded_through_the_entry_point(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("twin")
    assert plugin is not None and plugin.__name__ == "sim.pytest_plugin"
    assert any("twin_live" in m for m in pytestconfig.getini("markers"))


def test_plugin_import_is_cheap() -> None:
    # Active in every pytest session of anyone who installs the project: no heavy imports up front.
    code = "import sys, sim.pytest_plugin; print(sorted(m for m in ('pandas', 'simpy', 'sim.virtual') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_attrdict_wraps_nested_values() -> None:
    d = AttrDict({"a": {"b": [{"c": 1}]}, "n": 2})
    assert d.a.b[0].c == 1 and d["a"]["b"][0]["c"] == 1 and d.n == 2
    assert d == {"a": {"b": [{"c": 1}]}, "n": 2}
    assert "a" in dir(d)
