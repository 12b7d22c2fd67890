"""Faults that act on the world rather than on an API (supplier delay, credit-hold spike), applied
on the simulated clock of whichever env hosts the ERP: the one env of a virtual run, or the live
ERP mock's scaled clock. Same code, same named streams, so both modes draw the same customers."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

import simpy

from sim.rng import Streams
from sim.scenario import FaultKind, FaultWindow

if TYPE_CHECKING:
    from mocks.erp.core import ErpCore


def schedule_world_faults(
    env: simpy.Environment, erp: ErpCore, faults: Iterable[FaultWindow], streams: Streams
) -> None:
    for w in faults:
        if w.kind == FaultKind.supplier_delay and erp.supplier is not None:
            env.process(_supplier_delay(env, erp, w))
        elif w.kind == FaultKind.credit_hold_spike:
            env.process(_credit_hold_spike(env, erp, w, streams))


def _supplier_delay(env: simpy.Environment, erp: ErpCore, w: FaultWindow) -> Generator[Any, Any, None]:
    control = erp.supplier.control  # type: ignore[union-attr]
    factor = w.multiplier or 1.0
    yield env.timeout(max(0.0, w.start - env.now))
    control.multiplier *= factor
    yield env.timeout(w.duration)
    control.multiplier /= factor


def _credit_hold_spike(
    env: simpy.Environment, erp: ErpCore, w: FaultWindow, streams: Streams
) -> Generator[Any, Any, None]:
    rng = streams.py(f"fault.{w.name}")
    yield env.timeout(max(0.0, w.start - env.now))
    held = [
        c.customer_no
        for c in erp.md.customers
        if rng.random() < (w.probability or 0.0) and not erp.holds.get(c.customer_no)
    ]
    for c in held:
        erp.set_credit_hold(c, True)
    yield env.timeout(w.duration)
    for c in held:
        erp.set_credit_hold(c, False)
