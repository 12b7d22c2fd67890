"""The SimPy interpreter with a scripted fake transport: deterministic, simulated time only."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
import simpy

from reference_integration.config import IntegrationConfig
from reference_integration.effects import Call, Now, Publish, Result, Sleep, StateGet, StatePut
from reference_integration.errors import BreakerOpen, BusinessError, CallFailed, CallTimeout, ConnectionFailed
from reference_integration.runtime_sim import SimRuntime
from reference_integration.store import MemoryStore
from sim.rng import Streams
from sim.scenario import Integration

HANG = "hang"


class FakeNet:
    """Scripted transport: per (system, op) a list of outcomes consumed in order, then 200."""

    def __init__(self, env: simpy.Environment, script: dict[tuple[str, str], list[Any]] | None = None, latency=0.1):
        self.env = env
        self.script = defaultdict(list, script or {})
        self.latency = latency
        self.sent: list[tuple[float, Call, int, dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.tokens = 0

    def __call__(self, call: Call, attempt: int, timeout_s: float, headers: dict[str, str]):
        self.sent.append((self.env.now, call, attempt, dict(headers)))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            key = (call.system, call.operation)
            outcome = self.script[key].pop(0) if self.script[key] else 200
            if outcome == HANG:
                yield self.env.timeout(10_000)
                return Result(200, {})
            yield self.env.timeout(self.latency)
            if call.operation == "token":
                self.tokens += 1
                return Result(200, {"access_token": f"tok{self.tokens}", "expires_in": 3600})
            if isinstance(outcome, BaseException):
                raise outcome
            if isinstance(outcome, Result):
                return outcome
            return Result(outcome, {"ok": outcome < 400, "error": "price_mismatch" if outcome == 422 else None})
        finally:
            self.in_flight -= 1

    def times(self, op: str) -> list[float]:
        return [t for t, c, _, _ in self.sent if c.operation == op]


def config(profile: str = "resilient", **systems: Any) -> IntegrationConfig:
    return IntegrationConfig.from_scenario(Integration.model_validate({"profile": profile, "systems": systems}))


def make(cfg: IntegrationConfig, script=None, latency=0.1, seed=1):
    env = simpy.Environment()
    net = FakeNet(env, script, latency)
    rt = SimRuntime(env, cfg, net, Streams(seed), MemoryStore(clock=lambda: env.now))
    return env, net, rt


def one_call(system="wms", op="create_fulfillment", out: list | None = None, **kw):
    def wf():
        try:
            res = yield Call(system, op, {"x": 1}, **kw)
            if out is not None:
                out.append(res)
            return res
        except CallFailed as e:
            if out is not None:
                out.append(e)
            return e

    return wf()


def test_retry_on_503_then_success() -> None:
    env, net, rt = make(config(), {("wms", "create_fulfillment"): [503, 503]})
    p = rt.spawn(one_call(), "o2c")
    env.run()
    assert isinstance(p.value, Result) and p.value.status == 200 and p.value.attempts == 3
    assert [r.outcome for r in rt.calls] == ["server_error", "server_error", "ok"]
    assert [r.attempt for r in rt.calls] == [1, 2, 3] and rt.retries == {"wms": 2}
    # full jitter: the waits are within [0, base * 2**n]
    t = net.times("create_fulfillment")
    assert 0.1 <= t[1] <= 0.1 + 0.2 and t[2] - t[1] <= 0.1 + 0.4


def test_retry_after_honoured() -> None:
    r429 = Result(429, {"error": "rate_limited"}, {"Retry-After": "10"})
    env, net, rt = make(config(), {("carrier", "create_shipment"): [r429]})
    rt.spawn(one_call("carrier", "create_shipment"))
    env.run()
    t = net.times("create_shipment")
    assert len(t) == 2 and t[1] >= t[0] + 0.1 + 10
    assert rt.calls[0].outcome == "rate_limited" and rt.calls[0].status == 429


def test_business_error_not_retried() -> None:
    out: list = []
    env, net, rt = make(config(), {("erp", "create_sales_order"): [422]})
    rt.spawn(one_call("erp", "create_sales_order", out))
    env.run()
    assert isinstance(out[0], BusinessError) and out[0].status == 422 and out[0].reason == "price_mismatch"
    assert len(net.times("create_sales_order")) == 1 and rt.retries == {}


def test_naive_profile_single_attempt_and_no_idempotency_key() -> None:
    out: list = []
    env, net, rt = make(config("naive"), {("wms", "create_fulfillment"): [503]})
    rt.spawn(one_call(out=out, idempotency_key="fo:1", correlation_id="c1"))
    env.run()
    assert isinstance(out[0], CallFailed) and out[0].status == 503 and out[0].attempts == 1
    headers = net.sent[0][3]
    assert "Idempotency-Key" not in headers and headers["X-Correlation-Id"] == "c1"


def test_idempotency_key_sent_and_recorded_when_resilient() -> None:
    env, net, rt = make(config())
    rt.spawn(one_call(idempotency_key="fo:1"))
    env.run()
    assert net.sent[0][3]["Idempotency-Key"] == "fo:1" and rt.calls[0].idempotency_key == "fo:1"
    assert net.sent[0][3]["X-Client-Id"] == "reference-integration"


def test_timeout_enforced_and_retried() -> None:
    cfg = config(wms={"timeout": 2, "retry": {"max_attempts": 2}})
    env, net, rt = make(cfg, {("wms", "create_fulfillment"): [HANG, HANG]})
    out: list = []
    rt.spawn(one_call(out=out))
    env.run(until=100)
    assert isinstance(out[0], CallTimeout) and out[0].attempts == 2
    assert [r.outcome for r in rt.calls] == ["timeout", "timeout"]
    assert rt.calls[0].latency_s == pytest.approx(2.0)


def test_connection_error_from_transport_is_retried() -> None:
    env, net, rt = make(config(), {("crm", "update_order"): [ConnectionFailed("crm", "update_order")]})
    p = rt.spawn(one_call("crm", "update_order"))
    env.run()
    assert p.value.status == 200 and rt.calls[0].outcome == "connection_error"


def sequential_calls(n: int, gap: float, out: list):
    def wf():
        for _ in range(n):
            try:
                out.append((yield Call("erp", "get_atp")))
            except CallFailed as e:
                out.append(e)
            yield Sleep(gap)

    return wf()


BREAKER = {"retry": {"enabled": False}, "breaker": {"failure_threshold": 3, "reset_timeout": 30}}


def test_breaker_opens_fails_fast_then_half_open_closes() -> None:
    cfg = config(erp=BREAKER)
    env, net, rt = make(cfg, {("erp", "get_atp"): [503, 503, 503]}, latency=0)
    out: list = []
    rt.spawn(sequential_calls(6, 10, out), "wf")  # calls at t=0,10,20 fail; 30,40 refused; 50 probes
    env.run()
    # the first call needs the ERP token; the fake answers it at latency 0
    assert [type(o).__name__ for o in out] == ["CallFailed"] * 3 + ["BreakerOpen"] * 2 + ["Result"]
    assert len(net.times("get_atp")) == 4  # no transport call while open
    assert rt.breaker_opens == {"erp": 1}
    b = rt.engine.breakers["erp"]
    assert [s for _, _, s in b.transitions] == ["open", "half_open", "closed"]
    assert isinstance(out[3], BreakerOpen) and out[3].retry_after == pytest.approx(20)
    assert [r.outcome for r in rt.calls if r.operation == "get_atp"][3:5] == ["breaker_open"] * 2


def test_breaker_half_open_failure_reopens() -> None:
    cfg = config(erp=BREAKER)
    env, net, rt = make(cfg, {("erp", "get_atp"): [503] * 4}, latency=0)
    out: list = []
    rt.spawn(sequential_calls(8, 10, out))  # 0,10,20 fail; 30,40 refused; 50 probe fails; 60,70 refused
    env.run()
    assert [type(o).__name__ for o in out] == ["CallFailed"] * 3 + ["BreakerOpen"] * 2 + ["CallFailed"] + [
        "BreakerOpen"
    ] * 2
    assert rt.breaker_opens == {"erp": 2}
    assert [s for _, _, s in rt.engine.breakers["erp"].transitions] == ["open", "half_open", "open"]


def test_bulkhead_limits_concurrency() -> None:
    cfg = config(wms={"bulkhead": {"max_concurrent": 3}})
    env, net, rt = make(cfg, latency=1.0)
    procs = [rt.spawn(one_call(), f"w{i}") for i in range(10)]
    env.run()
    assert net.max_in_flight == 3 and all(p.value.status == 200 for p in procs)
    assert sorted(net.times("create_fulfillment")) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert rt.engine.guard("wms").bulkhead.in_flight == 0


def test_no_bulkhead_in_naive_profile() -> None:
    env, net, rt = make(config("naive"), latency=1.0)
    for i in range(10):
        rt.spawn(one_call(), f"w{i}")
    env.run()
    assert net.max_in_flight == 10


def test_client_rate_limiter_spacing() -> None:
    cfg = config(carrier={"rate_limit": {"requests": 2, "per": 1}})
    env, net, rt = make(cfg, latency=0.01)
    for i in range(6):
        rt.spawn(one_call("carrier", "get_rates"), f"w{i}")
    env.run()
    assert net.times("get_rates") == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0])


def test_erp_token_fetched_once_single_flight_and_refreshed_on_401() -> None:
    env, net, rt = make(config(), {("erp", "get_customer"): [200, 200, 200, 401]})
    procs = [rt.spawn(one_call("erp", "get_customer"), f"w{i}") for i in range(3)]
    env.run()
    assert net.tokens == 1 and all(p.value.status == 200 for p in procs)
    assert {h["Authorization"] for _, c, _, h in net.sent if c.operation == "get_customer"} == {"Bearer tok1"}
    assert "Authorization" not in net.sent[0][3] and net.sent[0][1].payload["client_id"] == "reference-integration"
    p = rt.spawn(one_call("erp", "get_customer"))
    env.run()
    assert p.value.status == 200 and net.tokens == 2 and net.sent[-1][3]["Authorization"] == "Bearer tok2"
    assert rt.retries == {}  # a 401 refresh does not spend a retry


def test_effects_sleep_now_state_publish() -> None:
    env, net, rt = make(config())
    seen: list = []
    rt.subscribe("metrics", lambda topic, ev: seen.append(ev))

    def wf():
        yield Sleep(5)
        t = yield Now()
        yield StatePut("k", {"t": t})
        v = yield StateGet("k")
        yield Publish("metrics", {"v": v})
        return (yield StateGet("missing"))

    p = rt.spawn(wf())
    env.run()
    assert p.value is None and seen == [{"v": {"t": 5.0}}] and rt.busy == 0


def test_dlq_publish_and_uncaught_failure_dead_lettered() -> None:
    env, net, rt = make(config(), {("wms", "create_fulfillment"): [400]})

    def wf():
        yield Publish("dlq", {"category": "business", "reason": "price_mismatch", "payload": {"order": "801A"}})
        yield Publish("exceptions", {"reason": "credit_hold", "payload": {"order": "801B"}})
        yield Call("wms", "create_fulfillment")  # 400, not caught by the workflow

    rt.spawn(wf(), "o2c", payload={"order": "801C"})
    env.run()
    dlq = rt.store.dlq_list()
    assert [(e.category, e.reason, e.workflow, e.payload) for e in dlq] == [
        ("business", "price_mismatch", "o2c", {"order": "801A"}),
        ("business", "http_400", "o2c", {"order": "801C"}),
    ]
    assert [e.reason for e in rt.store.exceptions_list()] == ["credit_hold"]
    assert "integration_dlq_size 2" in rt.metrics_text()


def test_naive_drops_instead_of_dead_lettering() -> None:
    env, net, rt = make(config("naive"), {("wms", "create_fulfillment"): [503]})

    def wf():
        yield Call("wms", "create_fulfillment")

    rt.spawn(wf(), "o2c")
    env.run()
    assert rt.store.dlq_list() == [] and len(rt.engine.stats.dropped) == 1


def test_metrics_text() -> None:
    env, net, rt = make(config(), {("wms", "create_fulfillment"): [503]})
    rt.spawn(one_call())
    env.run()
    text = rt.metrics_text()
    assert 'integration_retries_total{system="wms"} 1' in text
    assert 'integration_breaker_state{system="wms"} 0' in text
    assert 'integration_call_latency_seconds_count{system="wms"} 2' in text
    assert 'integration_call_latency_seconds_bucket{system="wms",le="+Inf"} 2' in text


def test_same_seed_same_schedule() -> None:
    def run(seed: int) -> list[float]:
        env, net, rt = make(config(), {("wms", "create_fulfillment"): [503] * 5}, seed=seed)
        rt.spawn(one_call())
        env.run()
        return net.times("create_fulfillment")

    assert run(3) == run(3) != run(4)


def test_call_waits_for_half_open_within_retry_budget() -> None:
    cfg = config(
        erp={
            "retry": {"max_attempts": 6, "base": 1, "cap": 2},
            "breaker": {"failure_threshold": 2, "reset_timeout": 30},
        }
    )
    env, net, rt = make(cfg, {("erp", "get_atp"): [503, 503]}, latency=0)
    p = rt.spawn(one_call("erp", "get_atp"))
    env.run()
    assert p.value.status == 200
    outcomes = [r.outcome for r in rt.calls if r.operation == "get_atp"]
    assert outcomes[:2] == ["server_error", "server_error"] and outcomes[-1] == "ok"
    assert set(outcomes[2:-1]) <= {"breaker_open"}
    t = net.times("get_atp")
    assert len(t) == 3 and t[2] >= t[1] + 30  # nothing sent while open; the probe closes it
    assert rt.breaker_opens == {"erp": 1} and rt.engine.breakers["erp"].state == "closed"
