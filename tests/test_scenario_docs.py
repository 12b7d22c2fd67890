"""docs/scenario-reference.md stays complete (every key of every section) and its examples valid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from sim import scenario as S
from sim.cli_scenario import semantic_problems
from sim.scenario import parse_scenario, yaml_load

DOC = (Path(__file__).resolve().parents[1] / "docs" / "scenario-reference.md").read_text(encoding="utf-8")
SECTIONS = [
    S.Scenario, S.LiveSettings, S.MasterDataSizes, S.Demand, S.Surge, S.Supplier, S.Warehouse, S.Shift,
    S.Carrier, S.ApiProfile, S.RateLimit, S.WebhookPolicy, S.FaultWindow, S.Integration, S.SystemPolicies,
    S.RetryPolicy, S.BreakerPolicy, S.BulkheadPolicy, S.ClientRateLimit, S.Slo, S.Percentiles,
]  # fmt: skip


def _all_models(m: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    for f in m.model_fields.values():
        for t in re.findall(r"sim\.scenario\.(\w+)", repr(f.annotation)):
            sub = getattr(S, t, None)
            if isinstance(sub, type) and issubclass(sub, BaseModel) and sub not in seen:
                seen.add(sub)
                _all_models(sub, seen)


def test_every_section_model_is_listed() -> None:
    found: set[type[BaseModel]] = {S.Scenario}
    _all_models(S.Scenario, found)
    assert found <= set(SECTIONS)


@pytest.mark.parametrize("model", SECTIONS, ids=lambda m: m.__name__)
def test_every_key_is_documented(model: type[BaseModel]) -> None:
    for name, f in model.model_fields.items():
        assert f"| `{f.alias or name}` |" in DOC, f"{model.__name__}.{name} missing from the scenario reference"


def test_fault_kinds_are_documented() -> None:
    for k in S.FaultKind:
        assert f"| `{k.value}` |" in DOC


def test_yaml_examples_are_valid() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC, flags=re.S)
    assert len(blocks) >= 10
    for text in blocks:
        data = yaml_load(text)
        if "extends" in data:
            continue
        data.setdefault("name", "doc-example")
        s = parse_scenario(data, "doc example")
        assert semantic_problems(s, "doc example") == []
