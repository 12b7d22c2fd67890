"""Closed-form M/M/c results, the yardstick the warehouse model is validated against.

Pure functions, no SimPy: tests compare a simulated warehouse (constant pickers, exponential pick
time, zero pack time, Poisson arrivals) with these numbers, and Little's law ties the recorded
per-order waits to the time-averaged queue length.
"""

from __future__ import annotations

from dataclasses import dataclass


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/M/c/c with offered load ``a = lambda / mu`` (Erlangs).

    Uses the recursion B(k) = a B(k-1) / (k + a B(k-1)), which stays stable for large ``c`` where
    the textbook factorial form overflows."""
    if c < 0 or a < 0:
        raise ValueError(f"need c >= 0 and a >= 0, got c={c}, a={a}")
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival has to wait in M/M/c with offered load ``a`` (needs a < c)."""
    if c < 1:
        raise ValueError(f"need at least one server, got c={c}")
    if not 0 <= a < c:
        raise ValueError(f"unstable queue: offered load {a} must be below c={c}")
    b = erlang_b(c, a)
    rho = a / c
    return b / (1 - rho * (1 - b))


@dataclass(frozen=True, slots=True)
class MMc:
    """Steady-state M/M/c measures (times in the unit of the rates)."""

    c: int
    lam: float
    mu: float
    rho: float  # server utilisation
    p_wait: float  # Erlang C
    wq: float  # mean wait in queue
    lq: float  # mean number waiting
    w: float  # mean time in system
    l: float  # noqa: E741 - mean number in system, the standard symbol


def mmc(c: int, lam: float, mu: float) -> MMc:
    """M/M/c with arrival rate ``lam`` and per-server service rate ``mu``."""
    if lam <= 0 or mu <= 0:
        raise ValueError(f"rates must be positive, got lam={lam}, mu={mu}")
    a = lam / mu
    pw = erlang_c(c, a)
    wq = pw / (c * mu - lam)
    w = wq + 1 / mu
    return MMc(c=c, lam=lam, mu=mu, rho=a / c, p_wait=pw, wq=wq, lq=lam * wq, w=w, l=lam * w)
