"""Failures a workflow can receive from a ``Call`` (thrown into the generator by either interpreter).

Every failure is a ``CallFailed`` carrying enough to route it: ``category`` says whether a human must
look at it (``business``: the downstream system said no, e.g. 422 price mismatch) or whether it is
plumbing (``technical``: timeouts, 5xx, resets, throttling, breaker open) that a later replay may fix.
``retryable`` says whether the *same request* may be sent again right away (with backoff).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Category = Literal["technical", "business"]

# 408 Request Timeout, 425 Too Early, 429 Too Many Requests and the gateway/overload 5xx say "try
# again later"; 500 is included because most servers use it for transient faults too.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# 409 from an idempotent API means "the first request with this key is still in flight": wait, retry.
IN_PROGRESS_CODES = frozenset({"request_in_progress", "idempotency_key_in_use", "in_progress"})


class CallFailed(Exception):
    """A downstream call failed after the interpreter's policies ran (or fail-fast refused it)."""

    default_reason = "call_failed"

    def __init__(
        self,
        system: str,
        operation: str,
        status: int | None = None,
        category: Category = "technical",
        reason: str | None = None,
        retry_after: float | None = None,
        *,
        body: Any = None,
        retryable: bool | None = None,
        attempts: int = 1,
    ) -> None:
        self.system = system
        self.operation = operation
        self.status = status
        self.category: Category = category
        self.reason = reason or self.default_reason
        self.retry_after = retry_after
        self.body = body
        self.retryable = is_retryable(status, body) if retryable is None else retryable
        self.attempts = attempts
        super().__init__(f"{system}.{operation}: {self.reason}" + (f" (HTTP {status})" if status else ""))

    @property
    def is_business(self) -> bool:
        return self.category == "business"

    def to_dict(self) -> dict[str, Any]:
        """Flat record for DLQ rows, exception-queue entries and logs."""
        return {
            "error": type(self).__name__,
            "system": self.system,
            "operation": self.operation,
            "status": self.status,
            "category": self.category,
            "reason": self.reason,
            "retry_after": self.retry_after,
            "retryable": self.retryable,
            "attempts": self.attempts,
        }


class CallTimeout(CallFailed):
    """No response within the per-attempt timeout. The request may still have been processed."""

    default_reason = "timeout"

    def __init__(self, system: str, operation: str, reason: str | None = None, **kw: Any) -> None:
        kw.setdefault("retryable", True)
        super().__init__(system, operation, None, "technical", reason, **kw)


class ConnectionFailed(CallFailed):
    """Connection refused/reset before a response arrived (also possibly after processing)."""

    default_reason = "connection_error"

    def __init__(self, system: str, operation: str, reason: str | None = None, **kw: Any) -> None:
        kw.setdefault("retryable", True)
        super().__init__(system, operation, None, "technical", reason, **kw)


class MalformedResponse(CallFailed):
    """The response body could not be parsed (truncated JSON): treated as a transient fault."""

    default_reason = "malformed_response"

    def __init__(self, system: str, operation: str, status: int | None = None, reason: str | None = None, **kw: Any):
        kw.setdefault("retryable", True)
        super().__init__(system, operation, status, "technical", reason, **kw)


class RateLimited(CallFailed):
    """429 from the server (or a client-side limiter that refused to wait)."""

    default_reason = "rate_limited"

    def __init__(self, system: str, operation: str, status: int | None = 429, **kw: Any) -> None:
        kw.setdefault("retryable", True)
        super().__init__(system, operation, status, "technical", **kw)


class BreakerOpen(CallFailed):
    """Refused locally: the system's circuit breaker is open. Nothing was sent. Not retried in-line
    (that would defeat the breaker); workflows dead-letter or re-schedule it."""

    default_reason = "breaker_open"

    def __init__(self, system: str, operation: str, retry_after: float | None = None, **kw: Any) -> None:
        kw.setdefault("retryable", False)
        super().__init__(system, operation, None, "technical", retry_after=retry_after, **kw)


class BulkheadFull(CallFailed):
    """Refused locally: no bulkhead slot within the allowed wait. Nothing was sent."""

    default_reason = "bulkhead_full"

    def __init__(self, system: str, operation: str, **kw: Any) -> None:
        kw.setdefault("retryable", False)
        super().__init__(system, operation, None, "technical", **kw)


class BusinessError(CallFailed):
    """A 4xx the downstream system decided on purpose (validation, price mismatch, not found...).
    Never retried: the same request would get the same answer."""

    default_reason = "business_error"

    def __init__(self, system: str, operation: str, status: int, reason: str | None = None, **kw: Any) -> None:
        kw.setdefault("retryable", False)
        super().__init__(system, operation, status, "business", reason, **kw)


def _error_code(body: Any) -> str | None:
    if isinstance(body, Mapping):
        code = body.get("error") or body.get("code") or body.get("errorCode")
        return str(code) if code is not None else None
    return None


def is_retryable(x: int | BaseException | None, body: Any = None) -> bool:
    """Whether the same request may be sent again: by HTTP status (plus the 409 in-progress body) or
    by exception. Unknown exceptions are not retried (retry only on named errors)."""
    if isinstance(x, CallFailed):
        return x.retryable
    if isinstance(x, TimeoutError | ConnectionError):
        return True
    if isinstance(x, BaseException):
        return False
    if x is None:  # no status at all: the request never got an answer (timeout/reset)
        return True
    if x in RETRYABLE_STATUS:
        return True
    if x == 409:
        return _error_code(body) in IN_PROGRESS_CODES
    return False


def parse_retry_after(value: str | float | None) -> float | None:
    """Retry-After in seconds (HTTP-date form is not used by the mocks and is ignored)."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return max(v, 0.0)


def from_response(
    system: str, operation: str, status: int, body: Any = None, headers: Mapping[str, str] | None = None
) -> CallFailed:
    """Classify a non-2xx response into the matching exception."""
    h = {k.lower(): v for k, v in (headers or {}).items()}
    retry_after = parse_retry_after(h.get("retry-after"))
    code = _error_code(body)
    if status == 429:
        return RateLimited(system, operation, status, reason=code or "rate_limited", retry_after=retry_after, body=body)
    if is_retryable(status, body):
        return CallFailed(system, operation, status, "technical", code or f"http_{status}", retry_after, body=body)
    if 400 <= status < 500:
        return BusinessError(system, operation, status, code or f"http_{status}", retry_after=retry_after, body=body)
    # Other 5xx (501, 505...) are technical but retrying will not help.
    return CallFailed(system, operation, status, "technical", code or f"http_{status}", retry_after, body=body)
