"""Token buckets for the mocks' rate limits (``ApiProfile.rate_limit`` and ``rate_limit`` fault windows).

Pure: the caller passes the time in, so the same bucket works under SimPy time (virtual mode) and
wall time (live mode). ``take`` answers both "may this request pass?" and, when not, the exact
Retry-After a well-behaved client should wait for one token to be back.
"""

from __future__ import annotations


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``refill_per_s``; starts full on first use."""

    __slots__ = ("capacity", "refill_per_s", "tokens", "last")

    def __init__(self, capacity: float, refill_per_s: float) -> None:
        if capacity <= 0 or refill_per_s <= 0:
            raise ValueError(f"capacity and refill_per_s must be > 0, got {capacity}, {refill_per_s}")
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self.tokens = float(capacity)
        self.last: float | None = None

    def take(self, now: float, n: float = 1.0) -> tuple[bool, float]:
        """Take ``n`` tokens at time ``now``: ``(True, 0.0)``, or ``(False, seconds until n are back)``.

        A refused request takes nothing, as with real API gateways: hammering does not dig the hole
        deeper, so the Retry-After given is honest.
        """
        if self.last is not None and now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.refill_per_s)
        if self.last is None or now > self.last:
            self.last = now
        if self.tokens >= n:
            self.tokens -= n
            return True, 0.0
        return False, (n - self.tokens) / self.refill_per_s


class ClientBuckets:
    """One bucket per client id (the rate limit is per caller), with a bound on distinct clients."""

    def __init__(self, capacity: float, refill_per_s: float, max_clients: int = 10_000) -> None:
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self.max_clients = max_clients
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, client_id: str, now: float) -> tuple[bool, float]:
        b = self._buckets.get(client_id)
        if b is None:
            if len(self._buckets) >= self.max_clients:
                # Forget the oldest client (dict order): a forgotten client just gets a full bucket back.
                self._buckets.pop(next(iter(self._buckets)))
            b = self._buckets[client_id] = TokenBucket(self.capacity, self.refill_per_s)
        return b.take(now)

    def __len__(self) -> int:
        return len(self._buckets)
