"""Model time of live milestones: HTTP segments in wall seconds, world segments simulated."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sim.kpis import latency_stats, milestone_latencies
from sim.modeltime import milestone_latency, model_latencies

C = 3600.0


def entry(t: float, system: str, kind: str, ref: str) -> dict[str, object]:
    return {"t": t, "system": system, "kind": kind, "ref": ref}


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    # Order A: straight through. Order B: backordered, released by a stock receipt 5 h later.
    # Order C: only reached ERP.
    entries = pd.DataFrame(
        [
            entry(1000.0, "wms", "fulfilment.created", "A"),  # ERP at 100 + 0.2 s wall later -> 100 + 720
            entry(100.0 + 0.2 * C + 0.1 * C, "wms", "fulfilment.created", "A"),
            entry(30_000.0, "carrier", "shipment.created", "A"),
            entry(5_000.0 + 18_000.0, "erp", "sales_order.released", "B"),
            entry(5_000.0 + 18_000.0 + 0.3 * C, "wms", "fulfilment.created", "B"),
            entry(1e9, "crm", "order.status_changed", "A"),  # not a cut: ignored
        ]
    )
    # Drop the first row: it stands for a stray earlier entry of another order id below.
    entries.loc[0, "ref"] = "Z"
    erp_a = 100.0 + 0.2 * C
    wms_a = erp_a + 0.1 * C
    ready_a = wms_a + 4 * 3600.0  # picking: world
    ship_a = ready_a + 0.05 * C
    deliv_a = ship_a + 86_400.0  # transit: world
    orders = pd.DataFrame(
        {
            "crm_id": ["A", "B", "C"],
            "t_submitted": [100.0, 5_000.0 - 0.4 * C, 7_000.0],
            "t_erp_accepted": [erp_a, 5_000.0, 7_000.0 + 0.5 * C],
            "t_ready_to_ship": [ready_a, 5_000.0 + 18_000.0 + 0.3 * C + 7200.0, math.nan],
            "t_delivered": [deliv_a, math.nan, math.nan],
            "t_crm_closed": [deliv_a + 0.25 * C, math.nan, math.nan],
        }
    )
    entries.loc[2, "t"] = ship_a
    return orders, entries


def test_http_segments_count_wall_seconds_and_world_segments_simulated_ones() -> None:
    orders, entries = frames()
    lat = model_latencies(orders, entries, C)
    a, b, c = lat.iloc[0], lat.iloc[1], lat.iloc[2]
    assert a["lat_erp_accepted"] == pytest.approx(0.2)
    assert a["lat_ready_to_ship"] == pytest.approx(0.2 + 0.1 + 4 * 3600.0)
    assert a["lat_delivered"] == pytest.approx(0.2 + 0.1 + 4 * 3600.0 + 0.05 + 86_400.0)
    assert a["lat_crm_closed"] == pytest.approx(a["lat_delivered"] + 0.25)
    # The backorder's wait for stock is world time; the calls around it are wall time.
    assert b["lat_erp_accepted"] == pytest.approx(0.4)
    assert b["lat_ready_to_ship"] == pytest.approx(0.4 + 18_000.0 + 0.3 + 7200.0)
    assert math.isnan(b["lat_delivered"])
    assert c["lat_erp_accepted"] == pytest.approx(0.5)
    assert math.isnan(c["lat_ready_to_ship"])


def test_at_compression_one_model_time_is_the_simulated_clock() -> None:
    orders, entries = frames()
    lat = model_latencies(orders, entries, 1.0)
    a = lat.iloc[0]
    assert a["lat_crm_closed"] == pytest.approx(orders.loc[0, "t_crm_closed"] - orders.loc[0, "t_submitted"])


def test_kpis_use_model_time_when_the_frame_carries_it() -> None:
    orders, entries = frames()
    assert milestone_latency(orders, "erp_accepted").iloc[0] == pytest.approx(0.2 * C)
    live = pd.concat([orders, model_latencies(orders, entries, C)], axis=1)
    assert milestone_latency(live, "erp_accepted").iloc[0] == pytest.approx(0.2)
    stats = latency_stats(milestone_latencies(live)["erp_accepted"])
    assert stats["max"] == pytest.approx(0.5) and stats["n"] == 3


def test_bad_compression_is_refused() -> None:
    orders, entries = frames()
    with pytest.raises(ValueError, match="compression must be > 0, got 0"):
        model_latencies(orders, entries, 0)
