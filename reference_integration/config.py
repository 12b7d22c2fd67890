"""Resolved integration configuration: a named profile (naive / resilient) plus scenario overrides.

``naive`` is the integration many teams ship first: one attempt, no breaker, no bulkhead, no
idempotency keys, no webhook dedup, failures logged and lost, no reconciliation sweep.
``resilient`` turns every policy on. A scenario's ``integration`` section then overrides single
flags or single fields of a system's policies (only fields the scenario actually wrote).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.scenario import (
    ApiProfile,
    BreakerPolicy,
    BulkheadPolicy,
    ClientRateLimit,
    Integration,
    RetryPolicy,
    SystemName,
    SystemPolicies,
)

RECONCILIATION_INTERVAL_S = 15 * 60.0
SYSTEMS = tuple(s.value for s in SystemName)


def naive_policies() -> SystemPolicies:
    return SystemPolicies(
        retry=RetryPolicy(enabled=False, max_attempts=1, honour_retry_after=False),
        breaker=BreakerPolicy(enabled=False),
        bulkhead=BulkheadPolicy(enabled=False),
        rate_limit=ClientRateLimit(enabled=False),
    )


def resilient_policies() -> SystemPolicies:
    return SystemPolicies()  # the model defaults are the resilient settings


@dataclass(frozen=True)
class OAuthClient:
    """Client-credentials grant the interpreters perform for a system (ERP) so workflows need not."""

    client_id: str = "reference-integration"
    client_secret: str = "twin-secret"
    scope: str = "orders pricing credit"
    operation: str = "token"

    def form(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": self.scope,
        }


def _default_auth() -> dict[str, OAuthClient]:
    return {"erp": OAuthClient()}


@dataclass(frozen=True)
class IntegrationConfig:
    profile: str = "resilient"
    idempotency: bool = True
    dedup: bool = True
    dlq: bool = True
    reconciliation_interval: float | None = RECONCILIATION_INTERVAL_S
    systems: dict[str, SystemPolicies] = field(default_factory=dict)
    client_id: str = "reference-integration"  # X-Client-Id header (the carrier rate-limits per client)
    auth: dict[str, OAuthClient] = field(default_factory=_default_auth)

    def policies(self, system: str) -> SystemPolicies:
        p = self.systems.get(str(system))
        if p is not None:
            return p
        return naive_policies() if self.profile == "naive" else resilient_policies()

    @classmethod
    def naive(cls) -> IntegrationConfig:
        return cls.from_scenario(Integration(profile="naive"))

    @classmethod
    def resilient(cls) -> IntegrationConfig:
        return cls.from_scenario(Integration(profile="resilient"))

    @classmethod
    def from_scenario(
        cls, integration: Integration, apis: dict[SystemName, ApiProfile] | dict[str, ApiProfile] | None = None
    ) -> IntegrationConfig:
        """Resolve profile + overrides. ``apis`` (the scenario's ``systems``) is optional: when given,
        the resilient profile turns on a client-side limiter at each API's documented rate limit
        (unless the scenario configured the limiter itself), as a well-behaved client would."""
        naive = integration.profile == "naive"
        base = naive_policies() if naive else resilient_policies()
        systems: dict[str, SystemPolicies] = {}
        for name in SYSTEMS:
            data = base.model_dump()
            api = (apis or {}).get(name) or (apis or {}).get(SystemName(name))  # type: ignore[call-overload]
            if not naive and api is not None and api.rate_limit is not None:
                data["rate_limit"] = {"enabled": True, "requests": api.rate_limit.requests, "per": api.rate_limit.per}
            over = integration.systems.get(SystemName(name))
            if over is not None:
                written = over.model_dump(exclude_unset=True)
                # Writing a section (``bulkhead: {max_concurrent: 4}``) on top of the naive profile
                # means "I want this policy": switch it on unless ``enabled`` was written too.
                for section in ("retry", "breaker", "bulkhead", "rate_limit"):
                    if isinstance(written.get(section), dict) and written[section]:
                        written[section].setdefault("enabled", True)
                data = _merge(data, written)
            systems[name] = SystemPolicies.model_validate(data)

        def pick(v: Any, default: Any) -> Any:
            return default if v is None else v

        return cls(
            profile=integration.profile,
            idempotency=pick(integration.idempotency, not naive),
            dedup=pick(integration.dedup, not naive),
            dlq=pick(integration.dlq, not naive),
            reconciliation_interval=pick(
                integration.reconciliation_interval, None if naive else RECONCILIATION_INTERVAL_S
            ),
            systems=systems,
        )


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
