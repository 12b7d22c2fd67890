"""Pure policy state machines: no clock, no sleeping, seeded randomness."""

from __future__ import annotations

import random

import pytest

from reference_integration.errors import (
    BreakerOpen,
    BusinessError,
    CallFailed,
    CallTimeout,
    ConnectionFailed,
    MalformedResponse,
    RateLimited,
    from_response,
    is_retryable,
)
from reference_integration.policies import (
    Backoff,
    Bulkhead,
    CircuitBreaker,
    DedupSet,
    TokenBucketLimiter,
    TokenCache,
    backoff_delays,
    breaker_failure,
    full_jitter,
    should_retry,
)
from sim.scenario import RetryPolicy


def test_full_jitter_bounds_and_cap() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(10.0, 0.5 * 2**attempt)
        draws = [full_jitter(attempt, 0.5, 10.0, rng) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > 0.8 * ceiling  # actually spread over the whole range


def test_backoff_schedule_length_and_cap() -> None:
    delays = list(backoff_delays(RetryPolicy(max_attempts=6, base=1, cap=4), random.Random(2)))
    assert len(delays) == 5
    assert all(0 <= d <= min(4, 2**i) for i, d in enumerate(delays))
    assert list(backoff_delays(RetryPolicy(enabled=False), random.Random(2))) == []


def test_backoff_is_deterministic_per_seed() -> None:
    p = RetryPolicy(max_attempts=5)
    assert list(backoff_delays(p, random.Random(7))) == list(backoff_delays(p, random.Random(7)))


def test_retry_after_is_a_floor() -> None:
    b = Backoff(RetryPolicy(base=0.1, cap=1), random.Random(3))
    assert all(b.next_delay(a, retry_after=7.0) == 7.0 for a in range(5))
    ignoring = Backoff(RetryPolicy(base=0.1, cap=1, honour_retry_after=False), random.Random(3))
    assert all(ignoring.next_delay(a, retry_after=7.0) <= 1 for a in range(5))


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    assert is_retryable(status)
    assert from_response("erp", "x", status).retryable


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_business_statuses_not_retryable(status: int) -> None:
    exc = from_response("erp", "x", status, {"error": "price_mismatch"})
    assert isinstance(exc, BusinessError) and exc.category == "business" and not exc.retryable
    assert not should_retry(exc, 1, 8)


def test_409_in_progress_is_retryable() -> None:
    exc = from_response("erp", "create_sales_order", 409, {"error": "request_in_progress"}, {"Retry-After": "2"})
    assert exc.retryable and exc.category == "technical" and exc.retry_after == 2.0


def test_exception_retryability_and_classification() -> None:
    assert is_retryable(CallTimeout("erp", "x")) and is_retryable(ConnectionFailed("erp", "x"))
    assert is_retryable(MalformedResponse("erp", "x", 200)) and is_retryable(TimeoutError())
    assert not is_retryable(BreakerOpen("erp", "x")) and not is_retryable(ValueError())
    rl = from_response("carrier", "create_shipment", 429, None, {"retry-after": "3"})
    assert isinstance(rl, RateLimited) and rl.retry_after == 3.0
    assert breaker_failure(CallTimeout("erp", "x")) and breaker_failure(from_response("erp", "x", 503))
    assert not breaker_failure(rl) and not breaker_failure(from_response("erp", "x", 422))
    assert not should_retry(from_response("erp", "x", 503), 8, 8)  # attempts exhausted
    assert isinstance(from_response("erp", "x", 501), CallFailed) and not from_response("erp", "x", 501).retryable


def test_breaker_closed_open_half_open_closed() -> None:
    b = CircuitBreaker(threshold=3, reset_timeout=30, half_open_max=1)
    for t in range(2):
        assert b.allow(t)
        b.record_failure(t)
    b.record_success(2)  # resets the consecutive count
    for t in range(3, 6):
        b.record_failure(t)
    assert b.state == "open" and b.opens == 1
    assert not b.allow(20) and b.retry_in(20) == pytest.approx(15)
    assert b.allow(35) and b.state == "half_open"
    assert not b.allow(35)  # only one probe at a time
    b.record_success(36)
    assert b.state == "closed" and b.allow(36)
    assert [s for _, _, s in b.transitions] == ["open", "half_open", "closed"]


def test_breaker_half_open_failure_reopens() -> None:
    b = CircuitBreaker(threshold=1, reset_timeout=10)
    b.record_failure(0)
    assert b.allow(10) and b.state_at(10) == "half_open"
    b.record_failure(11)
    assert b.state == "open" and b.opens == 2 and not b.allow(15) and b.allow(21)


def test_bulkhead_hands_slot_to_waiter_fifo() -> None:
    h = Bulkhead(2)
    assert h.try_acquire() and h.try_acquire() and not h.try_acquire()
    h.enqueue("a")
    h.enqueue("b")
    assert h.release() == "a" and h.in_flight == 2
    h.cancel("b")
    assert h.release() is None and h.in_flight == 1 and h.max_in_flight == 2


def test_token_bucket_spacing() -> None:
    lim = TokenBucketLimiter(requests=2, per=1.0)
    delays = [lim.reserve(0.0) for _ in range(6)]
    assert delays == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0])
    assert lim.reserve(10.0) == 0  # refilled


def test_dedup_set_is_bounded_lru() -> None:
    d = DedupSet(max_size=2)
    assert not d.seen("a") and not d.seen("b") and d.seen("a")
    assert not d.seen("c")  # evicts b (a was refreshed)
    assert "a" in d and "b" not in d and d.duplicates == 1 and len(d) == 2


def test_token_cache_expiry_and_invalidate() -> None:
    c = TokenCache()
    assert not c.valid(0)
    c.set("t1", 3600, now=0)
    assert c.valid(3000) and not c.valid(3590)
    c.invalidate("other")
    assert c.valid(1)
    c.invalidate("t1")
    assert not c.valid(1)
