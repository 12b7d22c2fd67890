"""pytest plugin (entry point ``pytest11: twin``): run twin scenarios from a user's own test suite.

```python
def test_erp_outage_loses_nothing(twin):
    result = twin.run("scenarios/resilience/erp_outage.yaml", profile="resilient")
    assert result.kpis.lost == 0
    assert result.kpis.latency_s.erp_accepted.p95 < 5
    assert not result.breaches, result.breaches
```

- ``twin.run(path, profile=None, mode="virtual", sets=(), seed=None)`` runs one scenario
  (``sets``: ``["k=v", ...]`` or ``{"k": v}``, applied like ``--set``) and returns a
  ``TwinResult``: ``.kpis`` (``kpis.json`` with attribute access), ``.orders`` (one row per order,
  a DataFrame), ``.breaches`` (``sim.kpis.Breach`` list), ``.exceptions``, ``.out`` (run folder,
  under the test's ``tmp_path``).
- Marker ``twin_live``: tests that need live mode (sockets, subprocesses); deselect with
  ``-m "not twin_live"``.

Installed with the project, so it is active in every pytest session that has the package: it
imports nothing heavy until a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


class AttrDict(dict[str, Any]):
    """A dict whose keys are also attributes, recursively (``kpis.latency_s.erp_accepted.p95``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return _wrap(self[name])
        except KeyError:
            raise AttributeError(f"no KPI {name!r}; have: {', '.join(sorted(self))}") from None

    def __getitem__(self, k: str) -> Any:
        return _wrap(super().__getitem__(k))

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.keys()]


def _wrap(v: Any) -> Any:
    if isinstance(v, dict) and not isinstance(v, AttrDict):
        return AttrDict(v)
    if isinstance(v, list):
        return [_wrap(x) for x in v]
    return v


@dataclass
class TwinResult:
    """What ``twin.run`` returns (the run's ``RunResult`` is kept as ``.raw``)."""

    kpis: AttrDict
    orders: Any  # pandas.DataFrame
    breaches: list[Any]
    exceptions: Any  # pandas.DataFrame
    out: Path | None
    scenario: Any  # sim.scenario.Scenario
    raw: Any = field(repr=False, default=None)

    @property
    def ok(self) -> bool:
        return not self.breaches


def _sets(sets: Iterable[str] | Mapping[str, Any] | None) -> list[str]:
    if sets is None:
        return []
    if isinstance(sets, str):
        return [sets]
    if isinstance(sets, Mapping):
        import json

        return [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sets.items()]
    return list(sets)


class Twin:
    """The ``twin`` fixture: runs scenarios into run folders under the test's ``tmp_path``."""

    def __init__(self, tmp_path: Path, rootpath: Path | None = None) -> None:
        self.tmp_path = tmp_path
        self.rootpath = rootpath
        self.runs = 0

    def _path(self, path: str | Path) -> Path:
        p = Path(path)
        if not p.is_absolute() and not p.exists() and self.rootpath is not None and (self.rootpath / p).exists():
            return self.rootpath / p
        return p

    def run(
        self,
        path: str | Path,
        profile: str | None = None,
        mode: str = "virtual",
        sets: Iterable[str] | Mapping[str, Any] | None = None,
        seed: int | None = None,
        report: bool = False,
        sut_url: str | None = None,
    ) -> TwinResult:
        """Run one scenario; bad input fails the test with the problem, not a traceback."""
        from sim.check import CheckError, runner
        from sim.cli_scenario import load_checked
        from sim.scenario import Scenario, ScenarioError

        if sut_url is not None and mode != "live":
            pytest.fail("twin.run: sut_url needs mode='live'", pytrace=False)
        if profile is not None and profile not in ("naive", "resilient"):
            pytest.fail(f"twin.run: profile must be naive or resilient, got {profile!r}", pytrace=False)
        try:
            run = runner(mode)
            sc = load_checked(self._path(path), _sets(sets), seed)
        except CheckError as e:
            pytest.fail(f"twin.run: {e}", pytrace=False)
        except ScenarioError as e:
            pytest.fail("twin.run: " + "\n".join(e.problems), pytrace=False)
        if profile is not None and profile != sc.integration.profile:
            data = sc.model_dump(mode="json")
            data["integration"]["profile"] = profile
            sc = Scenario.model_validate(data)
        self.runs += 1
        out = self.tmp_path / f"twin-{self.runs:02d}-{Path(path).stem}-{sc.integration.profile}-{mode}"
        kw: dict[str, Any] = {"out": out, "report": report}
        if sut_url is not None:
            kw["sut_url"] = sut_url
        r = run(sc, **kw)
        return TwinResult(
            kpis=AttrDict(r.kpis),
            orders=r.orders,
            breaches=list(r.breaches),
            exceptions=getattr(r, "exceptions", None),
            out=r.out,
            scenario=sc,
            raw=r,
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "twin_live: runs a twin scenario in live mode (real HTTP, subprocesses)")


@pytest.fixture
def twin(tmp_path: Path, pytestconfig: pytest.Config) -> Twin:
    """Run twin scenarios: ``twin.run("scenarios/x.yaml", profile="resilient", sets=[...])``."""
    return Twin(tmp_path, pytestconfig.rootpath)
