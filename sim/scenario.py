"""Scenario files: pydantic models, YAML loading with ``extends`` and ``--set`` overrides, clear errors.

All durations in a scenario are seconds of simulated time, written either as a number or as a
string with a unit: ``45s``, ``30m``, ``2h``, ``3d``, ``13w``. Times of day are ``"HH:MM"``.
Unknown keys are rejected everywhere, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sim.distributions import KINDS, Distribution, Fixed, Lognormal

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(v: object) -> object:
    if isinstance(v, bool):
        raise ValueError(f"must be a duration like 30m, 2h, 13w or a number of seconds, got {v!r}")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        m = _DURATION_RE.match(v)
        if not m:
            raise ValueError(f"must be a duration like 45s, 30m, 2h, 3d, 13w or a number of seconds, got {v!r}")
        return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    return v


def parse_time_of_day(v: object) -> object:
    """'HH:MM' -> seconds after midnight."""
    if isinstance(v, str):
        m = re.match(r"^(\d{1,2}):(\d{2})$", v.strip())
        if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59:
            raise ValueError(f"must be a time of day HH:MM, got {v!r}")
        return float(int(m.group(1)) * 3600 + int(m.group(2)) * 60)
    return v


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
TimeOfDay = Annotated[float, BeforeValidator(parse_time_of_day), Field(ge=0, le=86400)]
Probability = Annotated[float, Field(ge=0, le=1)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class SystemName(StrEnum):
    erp = "erp"
    crm = "crm"
    wms = "wms"
    carrier = "carrier"


# --------------------------------------------------------------------------------------- world


class LiveSettings(Model):
    compression: float = Field(3600.0, gt=0, description="simulated seconds per wall second in live mode")
    max_clock_lag_s: float = Field(0.5, gt=0, description="wall seconds the live clock may fall behind")


class MasterDataSizes(Model):
    customers: int = Field(200, ge=1, le=1_000_000)
    skus: int = Field(500, ge=1, le=1_000_000)
    suppliers: int = Field(20, ge=1, le=100_000)
    warehouses: int = Field(1, ge=1, le=100)
    sales_reps: int = Field(20, ge=1, le=100_000)
    contract_price_share: Probability = Field(0.3, description="share of customer x SKU pairs with a contract price")
    credit_hold_share: Probability = Field(0.02, description="share of customers on credit hold at start")


class Surge(Model):
    weeks: float = Field(2.0, ge=0, le=13, description="length of the quarter-end window, weeks")
    share: Probability = Field(0.25, description="share of quarterly volume in the quarter-end window")
    peak_multiplier: float = Field(1.0, ge=1, description="extra demand in the window on top of its share")


class Demand(Model):
    orders: int = Field(5000, ge=0, description="expected orders over the horizon before the surge multiplier")
    process: Literal["nhpp", "poisson"] = Field(
        "nhpp", description="nhpp: profiles below by thinning; poisson: constant rate (queueing checks)"
    )
    intraday: list[float] = Field(
        default_factory=lambda: [0] * 7 + [0.5, 1, 1.2, 1.2, 1, 0.8, 1, 1.2, 1.2, 1, 0.6] + [0] * 6,
        description="24 hourly weights of the business day",
    )
    weekday: list[float] = Field(
        default_factory=lambda: [1.0, 1.1, 1.1, 1.0, 0.9, 0.0, 0.0], description="Mon..Sun weights"
    )
    month_weeks: list[float] = Field(
        default_factory=lambda: [0.1, 0.2, 0.3, 0.4], description="share of a month's volume by week of month"
    )
    surge: Surge = Field(default_factory=Surge)
    lines: Distribution = Field(default_factory=lambda: Lognormal(median=3, sigma=0.6))
    quantity: Distribution = Field(default_factory=lambda: Lognormal(median=4, sigma=0.8))
    requested_lead: Duration = Field(3 * 86400, description="requested delivery this long after ordering")

    @field_validator("intraday")
    @classmethod
    def _24(cls, v: list[float]) -> list[float]:
        if len(v) != 24 or any(w < 0 for w in v) or not any(v):
            raise ValueError(f"must be 24 non-negative hourly weights, not all zero, got {len(v)} values")
        return v

    @field_validator("weekday")
    @classmethod
    def _7(cls, v: list[float]) -> list[float]:
        if len(v) != 7 or any(w < 0 for w in v) or not any(v):
            raise ValueError(f"must be 7 non-negative weights Mon..Sun, not all zero, got {len(v)} values")
        return v

    @field_validator("month_weeks")
    @classmethod
    def _weeks(cls, v: list[float]) -> list[float]:
        if not 1 <= len(v) <= 6 or any(w < 0 for w in v) or not any(v):
            raise ValueError(f"must be 1..6 non-negative weekly weights, got {v}")
        return v


class Supplier(Model):
    lead_time: Distribution = Field(default_factory=lambda: Lognormal(median=5 * 86400, sigma=0.3))
    reorder_point_days: float = Field(7, ge=0, description="reorder when stock covers fewer days than this")
    order_up_to_days: float = Field(21, gt=0, description="order up to this many days of cover")
    initial_stock_days: float = Field(14, ge=0)
    review_interval: Duration = Field(86400, gt=0)


class Shift(Model):
    start: TimeOfDay
    end: TimeOfDay
    pickers: int = Field(ge=0, le=10_000)
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], description="weekdays 0=Mon..6=Sun")


class Warehouse(Model):
    pickers: int = Field(8, ge=1, le=10_000, description="pickers when no shifts are given (always on)")
    shifts: list[Shift] = Field(default_factory=list)
    pick_time: Distribution = Field(
        default_factory=lambda: Lognormal(median=240, sigma=0.4), description="seconds to pick one order"
    )
    pack_time: Distribution = Field(default_factory=lambda: Fixed(value=120))
    cutoff: TimeOfDay = Field(15 * 3600, description="orders ready before this ship the same day")


class Carrier(Model):
    pickups: list[TimeOfDay] = Field(default_factory=lambda: [16 * 3600.0])
    pickup_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    transit_time: Distribution = Field(default_factory=lambda: Lognormal(median=2 * 86400, sigma=0.3))
    exception_rate: Probability = 0.01


class RateLimit(Model):
    requests: int = Field(ge=1, description="tokens per window")
    per: Duration = Field(gt=0, description="window length")


class ApiProfile(Model):
    latency: Distribution = Field(default_factory=lambda: Lognormal(median=0.05, sigma=0.4))
    error_rate: Probability = 0.0
    error_status: list[int] = Field(default_factory=lambda: [500, 503])
    rate_limit: RateLimit | None = None
    concurrency_limit: int | None = Field(None, ge=1)
    idempotency: Literal["honour", "ignore"] = Field(
        "honour", description="ignore: behave like a legacy system that ignores Idempotency-Key"
    )

    @field_validator("error_status")
    @classmethod
    def _statuses(cls, v: list[int]) -> list[int]:
        bad = [s for s in v if not 400 <= s <= 599]
        if bad:
            raise ValueError(f"must be HTTP error statuses 400..599, got {bad}")
        return v


def _default_profiles() -> dict[SystemName, ApiProfile]:
    return {s: ApiProfile() for s in SystemName}


class WebhookPolicy(Model):
    max_attempts: int = Field(8, ge=1, le=100)
    backoff: Duration = Field(30, description="first redelivery delay; doubles each attempt")
    timeout: Duration = Field(10, gt=0)
    latency: Distribution = Field(
        default_factory=lambda: Lognormal(median=0.05, sigma=0.4),
        description="seconds from an event to each delivery attempt reaching the integration (the "
        "sender's queue and the network); wall seconds in live mode, like API latency",
    )


# --------------------------------------------------------------------------------------- faults


class FaultKind(StrEnum):
    latency = "latency"  # latency replaced by ``latency`` distribution
    brownout = "brownout"  # latency multiplied by ``multiplier``
    error = "error"  # ``status`` with ``probability``
    outage = "outage"  # every request fails with ``status`` (default 503)
    rate_limit = "rate_limit"  # 429 + Retry-After from a token bucket of ``limit``
    concurrency = "concurrency"  # at most ``limit`` in flight, the rest 429/503
    timeout = "timeout"  # hang past the client's deadline (``after_commit``: processed first)
    reset = "reset"  # connection reset (``after_commit``: processed first)
    truncate = "truncate"  # malformed / truncated response body
    dribble = "dribble"  # response body dribbled slowly over ``latency``
    webhook_duplicate = "webhook_duplicate"
    webhook_out_of_order = "webhook_out_of_order"
    webhook_delay = "webhook_delay"
    webhook_drop = "webhook_drop"  # dropped, redelivered after ``redeliver_after`` (None: never)
    webhook_malformed = "webhook_malformed"
    contract_drift = "contract_drift"  # from ``start`` a field is renamed (``field`` -> ``rename_to``)
    supplier_delay = "supplier_delay"  # supplier lead time multiplied by ``multiplier``
    credit_hold_spike = "credit_hold_spike"  # ``probability`` of customers put on credit hold
    kill_integration = "kill_integration"  # live only: SIGKILL the integration, restart after ``duration``


_NEEDS = {
    FaultKind.latency: ("latency",),
    FaultKind.brownout: ("multiplier",),
    FaultKind.error: ("probability",),
    FaultKind.rate_limit: ("limit",),
    FaultKind.concurrency: ("limit",),
    FaultKind.supplier_delay: ("multiplier",),
    FaultKind.credit_hold_spike: ("probability",),
    FaultKind.contract_drift: ("field", "rename_to"),
}
_SYSTEMLESS = {FaultKind.supplier_delay, FaultKind.kill_integration}


class FaultWindow(Model):
    name: str = Field(min_length=1)
    system: SystemName | None = None
    kind: FaultKind
    endpoint: str = Field("*", description="operation name or glob, e.g. create_sales_order or create_*")
    start: Duration
    duration: Duration = Field(gt=0)
    probability: Probability | None = None
    multiplier: float | None = Field(None, ge=1)
    latency: Distribution | None = None
    status: int | None = Field(None, ge=400, le=599)
    limit: int | None = Field(None, ge=1)
    per: Duration = Field(1.0, gt=0, description="rate_limit window")
    retry_after: Duration | None = None
    after_commit: bool = Field(True, description="timeout/reset: the request was processed before failing")
    redeliver_after: Duration | None = Field(600, description="webhook_drop: redelivery delay; null = never")
    field: str | None = None
    rename_to: str | None = None

    @model_validator(mode="after")
    def _required(self) -> FaultWindow:
        missing = [f for f in _NEEDS.get(self.kind, ()) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"fault kind {self.kind.value!r} needs {', '.join(missing)}")
        if self.system is None and self.kind not in _SYSTEMLESS:
            raise ValueError(f"fault kind {self.kind.value!r} needs system (one of erp, crm, wms, carrier)")
        return self

    @property
    def end(self) -> float:
        return self.start + self.duration


# --------------------------------------------------------------------------------------- integration


class RetryPolicy(Model):
    enabled: bool = True
    max_attempts: int = Field(8, ge=1, le=100)
    base: Duration = Field(0.2, gt=0)
    cap: Duration = Field(60, gt=0)
    honour_retry_after: bool = True


class BreakerPolicy(Model):
    enabled: bool = True
    failure_threshold: int = Field(5, ge=1)
    reset_timeout: Duration = Field(30, gt=0)
    half_open_max: int = Field(1, ge=1)


class BulkheadPolicy(Model):
    enabled: bool = True
    max_concurrent: int = Field(10, ge=1)


class ClientRateLimit(Model):
    enabled: bool = False
    requests: int = Field(100, ge=1)
    per: Duration = Field(1, gt=0)


class SystemPolicies(Model):
    timeout: Duration = Field(5, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    bulkhead: BulkheadPolicy = Field(default_factory=BulkheadPolicy)
    rate_limit: ClientRateLimit = Field(default_factory=ClientRateLimit)


class Integration(Model):
    profile: Literal["naive", "resilient"] = "resilient"
    idempotency: bool | None = Field(None, description="send Idempotency-Key; default from profile")
    dedup: bool | None = Field(None, description="deduplicate webhooks by event id; default from profile")
    dlq: bool | None = Field(None, description="dead-letter failures; default from profile")
    reconciliation_interval: Duration | None = Field(None, description="audit sweep period; null = profile default")
    systems: dict[SystemName, SystemPolicies] = Field(
        default_factory=dict, description="per-system policy overrides on top of the profile"
    )


# --------------------------------------------------------------------------------------- SLOs


MILESTONES = ("erp_accepted", "ready_to_ship", "delivered", "crm_closed")


class Percentiles(Model):
    p50: Duration | None = None
    p95: Duration | None = None
    p99: Duration | None = None
    max: Duration | None = None


class Slo(Model):
    lost: int | None = Field(None, ge=0)
    duplicates: int | None = Field(None, ge=0)
    stuck: int | None = Field(None, ge=0)
    mismatches: int | None = Field(None, ge=0)
    dlq: int | None = Field(None, ge=0)
    fallout_rate: Probability | None = None
    latency: dict[str, Percentiles] = Field(default_factory=dict)
    recovery: dict[str, Duration] = Field(default_factory=dict, description="fault window name -> max recovery")
    failure_ratio: Probability | None = Field(None, description="load tests: max share of failed requests")

    @field_validator("latency")
    @classmethod
    def _milestones(cls, v: dict[str, Percentiles]) -> dict[str, Percentiles]:
        bad = [k for k in v if k not in MILESTONES]
        if bad:
            raise ValueError(f"unknown milestone {bad[0]!r}; allowed: {', '.join(MILESTONES)}")
        return v


# --------------------------------------------------------------------------------------- scenario


class Scenario(Model):
    name: str = Field(min_length=1)
    description: str = ""
    seed: int = Field(42, ge=0)
    start: str = Field("2026-07-06T00:00:00", description="simulated calendar start (ISO, ideally a Monday)")
    horizon: Duration = Field(13 * 7 * 86400, gt=0)
    drain_limit: Duration = Field(14 * 86400, ge=0)
    live: LiveSettings = Field(default_factory=LiveSettings)
    masterdata: MasterDataSizes = Field(default_factory=MasterDataSizes)
    demand: Demand = Field(default_factory=Demand)
    supplier: Supplier = Field(default_factory=Supplier)
    warehouse: Warehouse = Field(default_factory=Warehouse)
    carrier: Carrier = Field(default_factory=Carrier)
    systems: dict[SystemName, ApiProfile] = Field(default_factory=_default_profiles)
    webhooks: WebhookPolicy = Field(default_factory=WebhookPolicy)
    faults: list[FaultWindow] = Field(default_factory=list)
    integration: Integration = Field(default_factory=Integration)
    slo: Slo = Field(default_factory=Slo)

    @field_validator("systems")
    @classmethod
    def _all_systems(cls, v: dict[SystemName, ApiProfile]) -> dict[SystemName, ApiProfile]:
        return {s: v.get(s, ApiProfile()) for s in SystemName}

    @field_validator("start")
    @classmethod
    def _iso(cls, v: str) -> str:
        from datetime import datetime

        try:
            datetime.fromisoformat(v)
        except ValueError:
            raise ValueError(f"must be an ISO date-time like 2026-07-06T00:00:00, got {v!r}") from None
        return v

    @model_validator(mode="after")
    def _unique_faults(self) -> Scenario:
        seen: set[str] = set()
        for f in self.faults:
            if f.name in seen:
                raise ValueError(f"fault window names must be unique, {f.name!r} appears twice")
            seen.add(f.name)
        return self


# --------------------------------------------------------------------------------------- loading


class ScenarioError(Exception):
    """One or more problems with a scenario file, each already formatted for the user."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 base-60 numbers: ``cutoff: 15:00`` must stay the string "15:00"
    (PyYAML would read it as the integer 900, i.e. 00:15)."""


def _no_base60(rx: re.Pattern[str]) -> re.Pattern[str]:
    # PyYAML's int/float patterns are verbose regexes with one alternative per line.
    # Drop the base-60 alternatives (they contain "(?::"), keeping a closing ")$" if one ends there.
    lines = [(")$" if ln.endswith(")$") else "") if "(?::" in ln else ln for ln in rx.pattern.split("\n")]
    return re.compile("\n".join(lines), rx.flags)


_Loader.yaml_implicit_resolvers = {
    ch: [
        (tag, _no_base60(rx)) if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") else (tag, rx)
        for tag, rx in resolvers
    ]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` minus base-60 numbers (see ``_Loader``)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _read_yaml(path: Path, label: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([f"{label}: file not found"]) from None
    except OSError as e:
        raise ScenarioError([f"{label}: cannot read: {e.strerror}"]) from None
    try:
        data = yaml_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ScenarioError([f"{label}: YAML syntax error at {where}{problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError([f"{label}: top level must be a mapping of keys, got {type(data).__name__}"])
    return data


def load_raw(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a scenario file and everything it ``extends``, merged (the child wins)."""
    p = Path(path)
    label = str(path)
    rp = p.resolve()
    if rp in _seen:
        chain = " -> ".join(q.name for q in (*_seen[_seen.index(rp) :], rp))
        raise ScenarioError([f"{label}: extends: circular reference ({chain})"])
    data = _read_yaml(p, label)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError([f"{label}: extends: must be a file path, got {parent!r}"])
    parent_path = p.parent / parent
    if not parent_path.exists():
        raise ScenarioError([f"{label}: extends: file not found, got {parent!r} (looked for {parent_path})"])
    base = load_raw(parent_path, (*_seen, rp))
    return _deep_merge(base, data)


def apply_set(data: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one ``dotted.key=value`` override; the value is parsed as YAML (numbers, lists, ...)."""
    if "=" not in assignment:
        raise ScenarioError([f"--set {assignment!r}: expected key=value, e.g. demand.surge.peak_multiplier=5"])
    key, raw = assignment.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ScenarioError([f"--set {assignment!r}: empty key"])
    try:
        value = yaml_load(raw)
    except yaml.YAMLError:
        value = raw
    out = copy.deepcopy(data)
    cur: Any = out
    parts = key.split(".")
    for part in parts[:-1]:
        if isinstance(cur, list):
            try:
                cur = cur[int(part)]
                continue
            except (ValueError, IndexError):
                raise ScenarioError([f"--set {key}: no list item {part!r}"]) from None
        nxt = cur.get(part)
        if not isinstance(nxt, dict | list):
            nxt = cur[part] = {}
        cur = nxt
    last = parts[-1]
    if isinstance(cur, list):
        try:
            cur[int(last)] = value
        except (ValueError, IndexError):
            raise ScenarioError([f"--set {key}: no list item {last!r}"]) from None
    else:
        cur[last] = value
    return out


def _loc(loc: tuple[Any, ...]) -> str:
    # Drop pydantic's discriminator tags (e.g. 'lognormal') so the path is the one the user wrote.
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in _DIST_TAGS)]
    return ".".join(parts) or "(top level)"


_DIST_TAGS = {"fixed", "uniform", "exponential", "lognormal", "gamma", "empirical", "scaled", "function-before"}


_COMPARISONS = {
    "greater than or equal to": ">=",
    "less than or equal to": "<=",
    "greater than": ">",
    "less than": "<",
}


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def format_validation_error(label: str, err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = _loc(e["loc"])
        msg = e["msg"]
        typ = e["type"]
        if typ == "extra_forbidden":
            msg = "unknown key"
        elif typ == "union_tag_invalid":
            loc = f"{loc}.kind"
            msg = f"unknown distribution kind {e['ctx']['tag']!r}; expected one of {KINDS}"
        elif typ == "union_tag_not_found":
            msg = f"a distribution needs kind (one of {KINDS}) or a plain number"
        elif typ == "missing":
            msg = "required but missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        else:
            msg = msg.replace("Input should be", "must be")
            for words, sym in _COMPARISONS.items():
                msg = msg.replace(words, sym)
        if typ not in ("missing", "union_tag_invalid") and "got" not in msg and not isinstance(e.get("input"), dict):
            msg = f"{msg}, got {_got(e.get('input'))}"
        problems.append(f"{label}: {loc}: {msg}")
    return problems


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Load, merge ``extends``, apply ``--set`` overrides and validate; raise ScenarioError on problems."""
    label = str(path)
    data = load_raw(path)
    for o in overrides:
        data = apply_set(data, o)
    return parse_scenario(data, label)


def parse_scenario(data: dict[str, Any], label: str = "<scenario>") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(format_validation_error(label, e)) from None


def dump_scenario(s: Scenario) -> str:
    """The resolved scenario as YAML (written into every run folder)."""
    return yaml.safe_dump(s.model_dump(mode="json", by_alias=True), sort_keys=False)
