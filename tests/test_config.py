from __future__ import annotations

from reference_integration.config import IntegrationConfig
from sim.scenario import Integration, parse_scenario


def test_naive_profile_turns_everything_off() -> None:
    c = IntegrationConfig.naive()
    p = c.policies("erp")
    assert not p.retry.enabled and p.retry.max_attempts == 1
    assert not p.breaker.enabled and not p.bulkhead.enabled and not p.rate_limit.enabled
    assert (c.idempotency, c.dedup, c.dlq, c.reconciliation_interval) == (False, False, False, None)


def test_resilient_profile_turns_everything_on() -> None:
    c = IntegrationConfig.from_scenario(Integration())
    p = c.policies("carrier")
    assert p.retry.enabled and p.retry.max_attempts > 1 and p.retry.honour_retry_after
    assert p.breaker.enabled and p.bulkhead.enabled
    assert (c.idempotency, c.dedup, c.dlq, c.reconciliation_interval) == (True, True, True, 900.0)
    assert c.auth["erp"].form()["scope"] == "orders pricing credit"


def test_overrides_apply_on_top_of_profile() -> None:
    s = parse_scenario(
        {
            "name": "x",
            "integration": {
                "profile": "naive",
                "dlq": True,
                "reconciliation_interval": "5m",
                "systems": {"erp": {"timeout": 2, "retry": {"max_attempts": 3}}},
            },
        }
    )
    c = IntegrationConfig.from_scenario(s.integration)
    erp, wms = c.policies("erp"), c.policies("wms")
    assert erp.timeout == 2 and erp.retry.enabled and erp.retry.max_attempts == 3
    assert not erp.breaker.enabled  # untouched sections keep the naive profile
    assert not wms.retry.enabled
    assert c.dlq and not c.dedup and c.reconciliation_interval == 300


def test_resilient_override_can_disable_a_policy() -> None:
    i = Integration.model_validate(
        {"systems": {"wms": {"breaker": {"enabled": False}, "bulkhead": {"max_concurrent": 3}}}}
    )
    c = IntegrationConfig.from_scenario(i)
    assert not c.policies("wms").breaker.enabled and c.policies("wms").bulkhead.max_concurrent == 3
    assert c.policies("erp").breaker.enabled


def test_resilient_client_rate_limit_from_documented_api_limit() -> None:
    s = parse_scenario({"name": "x", "systems": {"carrier": {"rate_limit": {"requests": 1400, "per": "10s"}}}})
    rl = IntegrationConfig.from_scenario(s.integration, s.systems).policies("carrier").rate_limit
    assert rl.enabled and rl.requests == 1400 and rl.per == 10
    naive = parse_scenario({"name": "x", "integration": {"profile": "naive"}, "systems": s.model_dump()["systems"]})
    assert not IntegrationConfig.from_scenario(naive.integration, naive.systems).policies("carrier").rate_limit.enabled
