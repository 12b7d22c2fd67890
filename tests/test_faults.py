"""FaultEngine: one test per fault kind's observable effect, plus repeatability."""

from __future__ import annotations

from typing import Any

import pytest

from mocks.faults import Action, FaultEngine, fault_response, rename_field
from sim.distributions import Fixed
from sim.rng import Streams
from sim.scenario import ApiProfile, FaultWindow, RateLimit


def W(name: str, kind: str, start: float = 100, duration: float = 100, **kw: Any) -> FaultWindow:
    return FaultWindow.model_validate(
        {"name": name, "system": "erp", "kind": kind, "start": start, "duration": duration, **kw}
    )


def engine(profile: ApiProfile | None = None, windows: list[FaultWindow] | None = None, seed: int = 7) -> FaultEngine:
    return FaultEngine("erp", profile or ApiProfile(latency=Fixed(value=0.05)), windows or [], Streams(seed))


def test_idle_engine_only_draws_latency() -> None:
    d = engine().decide("create_sales_order", "c", now=5)
    assert d.action is Action.ok and d.latency_s == 0.05 and d.processes


def test_latency_window_replaces_and_brownout_multiplies_only_inside_window_and_endpoint() -> None:
    fe = engine(
        windows=[
            W("slow", "latency", endpoint="create_*", latency=Fixed(value=2.0)),
            W("brown", "brownout", start=150, multiplier=3),
        ]
    )
    assert fe.decide("create_sales_order", now=99.9).latency_s == 0.05
    assert fe.decide("create_sales_order", now=100).latency_s == 2.0
    assert fe.decide("get_item", now=120).latency_s == 0.05  # glob does not match
    assert fe.decide("create_sales_order", now=150).latency_s == pytest.approx(6.0)
    assert fe.decide("get_item", now=150).latency_s == pytest.approx(0.15)
    assert fe.decide("create_sales_order", now=200).latency_s == pytest.approx(0.15)  # slow ended at 200
    assert fe.decide("create_sales_order", now=250).latency_s == 0.05


def test_profile_error_rate_uses_listed_statuses_at_the_configured_rate() -> None:
    fe = engine(ApiProfile(latency=Fixed(value=0.0), error_rate=0.3, error_status=[500, 503]))
    ds = [fe.decide("get_item", now=float(i)) for i in range(4000)]
    errors = [d for d in ds if d.action is Action.error]
    assert 0.26 < len(errors) / len(ds) < 0.34
    assert {d.status for d in errors} == {500, 503}
    assert not any(d.processes for d in errors)


def test_error_and_outage_windows_and_outage_precedence() -> None:
    fe = engine(windows=[W("err", "error", probability=1.0, status=502), W("down", "outage", start=150)])
    assert fe.decide("x", now=120).status == 502
    d = fe.decide("x", now=160)
    assert (d.action, d.status, d.window) == (Action.error, 503, "down")
    assert fault_response(d).status == 503


def test_profile_rate_limit_per_client_with_retry_after_from_the_bucket() -> None:
    fe = engine(ApiProfile(latency=Fixed(value=0.0), rate_limit=RateLimit(requests=2, per=1)))
    assert fe.decide("x", "a", now=0, api_now=10.0).action is Action.ok
    assert fe.decide("x", "a", now=0, api_now=10.0).action is Action.ok
    d = fe.decide("x", "a", now=0, api_now=10.1)
    assert d.action is Action.rate_limited and d.status == 429
    assert d.retry_after == pytest.approx(0.4)  # 0.2 of a token back at 2/s: 0.4 s more to one token
    assert fault_response(d).headers["retry-after"] == "1"
    assert fe.decide("x", "b", now=0, api_now=10.1).action is Action.ok  # another client
    assert fe.decide("x", "a", now=0, api_now=10.45).action is Action.rate_limited
    assert fe.decide("x", "a", now=0, api_now=10.5).action is Action.ok


def test_rate_limit_window_and_explicit_retry_after() -> None:
    fe = engine(
        windows=[
            W("rl", "rate_limit", endpoint="create", limit=1, per=10),
            W("rl2", "rate_limit", endpoint="get_*", limit=1, retry_after=30),
        ]
    )
    assert fe.decide("create", "a", now=100, api_now=0).action is Action.ok
    d = fe.decide("create", "a", now=100, api_now=1)
    assert d.action is Action.rate_limited and d.retry_after == pytest.approx(9.0)
    assert fault_response(d).headers["retry-after"] == "9"
    assert fe.decide("get_x", "b", now=100, api_now=1).action is Action.ok
    assert fe.decide("get_x", "b", now=100, api_now=1).retry_after == 30


def test_concurrency_limit_profile_429_and_window_503() -> None:
    fe = engine(ApiProfile(latency=Fixed(value=0.0), concurrency_limit=4))
    assert fe.decide("x", in_flight=3).action is Action.ok
    d = fe.decide("x", in_flight=4)
    assert (d.status, d.retry_after) == (429, 1.0)
    fe = engine(windows=[W("cc", "concurrency", limit=2, status=503)])
    assert fe.decide("x", now=100, in_flight=1).action is Action.ok
    d = fe.decide("x", now=100, in_flight=2)
    assert (d.action, d.status) == (Action.error, 503)


@pytest.mark.parametrize("after_commit", [True, False])
def test_timeout_and_reset_carry_after_commit(after_commit: bool) -> None:
    fe = engine(
        windows=[
            W("to", "timeout", endpoint="a", after_commit=after_commit),
            W("rs", "reset", endpoint="b", after_commit=after_commit),
        ]
    )
    t = fe.decide("a", now=100)
    assert t.action is Action.timeout and t.hang_s == 30.0 and t.processes is after_commit
    r = fe.decide("b", now=100)
    assert r.action is Action.reset and r.processes is after_commit


def test_truncate_and_dribble_process_the_request() -> None:
    fe = engine(windows=[W("tr", "truncate", endpoint="a"), W("dr", "dribble", endpoint="b", latency=Fixed(value=1.5))])
    assert fe.decide("a", now=100).action is Action.truncate
    d = fe.decide("b", now=100)
    assert d.action is Action.dribble and d.hang_s == 1.5 and d.processes


def test_probability_thins_a_window() -> None:
    fe = engine(windows=[W("e", "error", probability=0.25, duration=10_000)])
    hits = sum(fe.decide("x", now=100 + i).action is Action.error for i in range(4000))
    assert 800 < hits < 1200


def test_same_seed_same_decisions() -> None:
    def run(seed: int) -> list[tuple[Any, ...]]:
        prof = ApiProfile(error_rate=0.2, rate_limit=RateLimit(requests=5, per=1))
        fe = FaultEngine(
            "erp", prof, [W("e", "error", probability=0.3), W("t", "timeout", probability=0.1)], Streams(seed)
        )
        return [
            (d.action, d.status, round(d.latency_s, 12), d.retry_after)
            for i in range(300)
            for d in [fe.decide("op", f"c{i % 3}", now=90 + i, api_now=i * 0.1)]
        ]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_adding_a_window_leaves_other_draws_unchanged() -> None:
    prof = ApiProfile(error_rate=0.3)
    base = FaultEngine("erp", prof, [], Streams(3))
    more = FaultEngine(
        "erp", prof, [W("other", "error", endpoint="other_op", probability=0.5, duration=1e6)], Streams(3)
    )
    a = [base.decide("op" if i % 2 else "other_op", now=200 + i) for i in range(500)]
    b = [more.decide("op" if i % 2 else "other_op", now=200 + i) for i in range(500)]
    assert [d.latency_s for d in a] == [d.latency_s for d in b]
    # Requests the new window does not touch get exactly the same decision.
    assert [(d.action, d.status) for d in a[1::2]] == [(d.action, d.status) for d in b[1::2]]


def test_runtime_control_add_remove_replace_and_profile() -> None:
    fe = engine()
    fe.add_window(W("down", "outage", start=0))
    assert fe.decide("x", now=1).status == 503
    fe.add_window(W("down", "outage", start=0, status=502))  # replace by name
    assert fe.decide("x", now=1).status == 502 and len(fe.windows) == 1
    assert fe.remove_window("down") and not fe.remove_window("down")
    assert fe.decide("x", now=1).action is Action.ok
    fe.set_windows([W("a", "error", start=0, probability=1), W("b", "error", start=0, probability=1)])
    assert {w.name for w in fe.windows} == {"a", "b"} and fe.active(1) == ["a", "b"]
    fe.set_profile(ApiProfile(latency=Fixed(value=1.0), concurrency_limit=1))
    assert fe.decide("y", now=1000, in_flight=1).status == 429
    with pytest.raises(ValueError, match="system"):
        fe.add_window(FaultWindow(name="w", system="crm", kind="outage", start=0, duration=1))


def test_windows_of_other_systems_are_ignored() -> None:
    fe = FaultEngine(
        "erp", ApiProfile(), [FaultWindow(name="w", system="crm", kind="outage", start=0, duration=1e6)], Streams(1)
    )
    assert fe.windows == [] and fe.decide("x", now=5).action is Action.ok


# ------------------------------------------------------------------------------ webhooks


def test_webhook_duplicate_out_of_order_delay_drop_malformed() -> None:
    fe = engine(
        windows=[
            W("dup", "webhook_duplicate", endpoint="SalesOrder.*"),
            W("ooo", "webhook_out_of_order", start=200),
            W("slow", "webhook_delay", start=300, latency=Fixed(value=90)),
            W("drop", "webhook_drop", start=400, redeliver_after=600),
            W("lost", "webhook_drop", start=500, redeliver_after=None),
            W("bad", "webhook_malformed", start=600),
        ]
    )
    assert fe.decide_webhook("SalesOrder.Released", 50).copies == 1
    assert fe.decide_webhook("SalesOrder.Released", 150).copies == 2
    assert fe.decide_webhook("Other.Event", 150).copies == 1
    delays = [fe.decide_webhook("x", 250).extra_delay_s for _ in range(50)]
    assert all(0 <= d < 60 for d in delays) and len(set(delays)) > 40  # random hold-back: reorders
    assert fe.decide_webhook("x", 350).extra_delay_s == 90
    d = fe.decide_webhook("x", 450)
    assert d.drop and d.redeliver_after_s == 600
    d = fe.decide_webhook("x", 550)
    assert d.drop and d.redeliver_after_s is None
    assert fe.decide_webhook("x", 650).malformed
    assert fe.decide_webhook("x", 1000) == fe.decide_webhook("x", 0)  # nothing active


# ------------------------------------------------------------------------------ contract drift


def test_contract_drift_renames_a_field_after_start_without_mutating() -> None:
    fe = engine(
        windows=[
            W("drift", "contract_drift", endpoint="get_*", field="Lines.ItemNo", rename_to="Material", duration=1e9)
        ]
    )
    body = {"SalesOrderNo": "SO-1", "Lines": [{"ItemNo": "SKU-1", "Qty": 1}, {"ItemNo": "SKU-2", "Qty": 2}]}
    assert fe.drift("get_sales_order", body, 99) is body
    out = fe.drift("get_sales_order", body, 100)
    assert out["Lines"] == [{"Material": "SKU-1", "Qty": 1}, {"Material": "SKU-2", "Qty": 2}]
    assert body["Lines"][0] == {"ItemNo": "SKU-1", "Qty": 1}
    assert fe.drift("create_sales_order", body, 100) is body


def test_rename_field_top_level_and_missing() -> None:
    assert rename_field({"a": 1, "b": 2}, ["a"], "z") == {"z": 1, "b": 2}
    assert rename_field({"b": 2}, ["a"], "z") == {"b": 2}
    assert rename_field("text", ["a"], "z") == "text"
