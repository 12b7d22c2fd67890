"""Milestone latencies of a live run in model time: API segments in wall seconds, world ones simulated.

DESIGN.md, "one world, two clocks": in live mode API latency, the integration's processing, its
backoffs and timeouts are wall time, while picking, transit and supplier lead times run on the
compressed clock. Ledger timestamps are all on the compressed clock, so a 0.3 s ERP call at 3600x
shows as 18 simulated minutes. Reported that way, ERP acceptance would read "18 minutes" for an order
that took 0.3 s, and no live latency could be compared with the virtual run, whose simulated network
spends exactly the modelled seconds.

So a live order's timeline is cut at its ledger events into segments, each driven either by HTTP
(the integration calling a system, a system's webhook reaching it) or by the world (picking, a
backorder waiting for stock, pickup and transit). An HTTP segment counts its wall seconds (the
simulated span / compression: every mock shares one clock epoch, so cross-system spans are exact);
a world segment counts its simulated seconds. The sum is the order's latency in model time, the same
unit as a virtual run's. A virtual run's model time is its simulated time (compression 1).

Approximation, documented: a webhook delay fault is held on the simulated clock but falls inside an
HTTP segment, so live model time under-counts it (minutes, against milestones of hours or days).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.scenario import MILESTONES

# Ledger kinds that cut an order's timeline, besides the milestones the orders frame already holds.
_CUTS = {
    ("erp", "sales_order.released"): "t_released",
    ("wms", "fulfilment.created"): "t_wms_created",
    ("carrier", "shipment.created"): "t_shipment_created",
}


def cut_times(entries: pd.DataFrame) -> pd.DataFrame:
    """First time of each cut kind per order ref (index: ref; columns: ``_CUTS`` values)."""
    cols = list(_CUTS.values())
    if entries.empty:
        return pd.DataFrame(columns=cols, dtype=float)
    keys = list(zip(entries["system"], entries["kind"], strict=True))
    mask = np.fromiter((k in _CUTS for k in keys), dtype=bool, count=len(keys))
    sel = entries.loc[mask, ["t", "ref"]].copy()
    sel["cut"] = [_CUTS[k] for k, m in zip(keys, mask, strict=True) if m]
    sel = sel.dropna(subset=["ref"])
    first = sel.groupby(["ref", "cut"])["t"].min().unstack("cut")
    return first.reindex(columns=cols).astype(float)


def model_latencies(orders: pd.DataFrame, entries: pd.DataFrame, compression: float) -> pd.DataFrame:
    """``lat_<milestone>`` columns (model seconds since CRM submit) for the orders frame's rows.

    ``orders`` needs ``crm_id``, ``t_submitted`` and ``t_<milestone>``; ``entries`` the ledger
    entries (``t``, ``system``, ``kind``, ``ref``). NaN where an order did not reach a milestone.
    """
    c = float(compression)
    if c <= 0:
        raise ValueError(f"compression must be > 0, got {compression}")
    cuts = cut_times(entries).reindex(orders["crm_id"].to_numpy())

    def col(name: str) -> np.ndarray:
        return orders[name].to_numpy(dtype=float)

    def cut(name: str) -> np.ndarray:
        return cuts[name].to_numpy(dtype=float)

    def span(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # Clamp: two processes' clocks agree only to the OS clock's precision.
        return np.maximum(b - a, 0.0)

    sub, erp, ready = col("t_submitted"), col("t_erp_accepted"), col("t_ready_to_ship")
    delivered, closed = col("t_delivered"), col("t_crm_closed")
    released, wms, shipment = cut("t_released"), cut("t_wms_created"), cut("t_shipment_created")

    lat_erp = span(sub, erp) / c  # webhook in, enrichment calls, the create: HTTP
    # ERP accepted -> WMS fulfilment: HTTP, except a backorder's wait for stock (world).
    waited = ~np.isnan(released) & (released <= wms)
    to_wms = np.where(waited, span(erp, released) + span(released, wms) / c, span(erp, wms) / c)
    lat_wms = lat_erp + to_wms
    lat_ready = lat_wms + span(wms, ready)  # picking and packing: world
    lat_shipment = lat_ready + span(ready, shipment) / c  # ready webhook, carrier booking: HTTP
    lat_delivered = lat_shipment + span(shipment, delivered)  # pickup and transit: world
    lat_closed = lat_delivered + span(delivered, closed) / c  # tracking webhook, CRM update: HTTP

    out = pd.DataFrame(index=orders.index)
    values = {
        "erp_accepted": lat_erp,
        "ready_to_ship": lat_ready,
        "delivered": lat_delivered,
        "crm_closed": lat_closed,
    }
    assert set(values) == set(MILESTONES)
    for m in MILESTONES:
        out[f"lat_{m}"] = values[m]
    return out


def milestone_latency(orders: pd.DataFrame, milestone: str) -> pd.Series:
    """Seconds from CRM submit to ``milestone`` per order (NaN where not reached), in model time
    where the frame carries it (``lat_<milestone>``, a live run), else on the simulated clock."""
    lat = f"lat_{milestone}"
    if lat in orders:
        return orders[lat].astype(float)
    return orders[f"t_{milestone}"] - orders["t_submitted"]
