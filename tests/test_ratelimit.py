from mocks.ratelimit import ClientBuckets, TokenBucket


def test_bucket_starts_full_and_refuses_with_exact_retry_after() -> None:
    b = TokenBucket(capacity=2, refill_per_s=4)  # one token back every 0.25 s
    assert b.take(10.0) == (True, 0.0)
    assert b.take(10.0) == (True, 0.0)
    ok, wait = b.take(10.0)
    assert not ok and wait == 0.25
    ok, wait = b.take(10.1)  # 0.4 of a token back
    assert not ok and abs(wait - 0.15) < 1e-9
    assert b.take(10.25)[0]


def test_refused_requests_do_not_spend_tokens_and_refill_caps_at_capacity() -> None:
    b = TokenBucket(1, 1)
    assert b.take(0)[0]
    for _ in range(5):
        assert not b.take(0.5)[0]
    assert b.take(1.0)[0]
    assert b.take(100.0)[0]
    assert not b.take(100.0)[0]  # capacity 1: a long pause does not bank more


def test_client_buckets_are_per_client_and_bounded() -> None:
    cb = ClientBuckets(1, 1, max_clients=2)
    assert cb.take("a", 0)[0] and cb.take("b", 0)[0]
    assert not cb.take("a", 0)[0]
    assert cb.take("c", 0)[0]  # evicts "a"
    assert len(cb) == 2
    assert cb.take("a", 0)[0]  # a forgotten client starts full again
