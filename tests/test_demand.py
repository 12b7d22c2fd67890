"""Demand: the configured curve (week, surge window, hour, weekday, month part) within sampling
error; order contents; determinism and common random numbers; poisson mode; SimPy process."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest
import simpy

from sim.calendar import DAY, WEEK, Calendar, surge_window
from sim.demand import DemandError, DemandModel, intensity, lines_frame, order_key, orders_frame
from sim.masterdata import MasterData, generate
from sim.rng import Streams
from sim.scenario import MasterDataSizes, Scenario

SIZES = {"customers": 40, "skus": 80}


def scenario(**demand: object) -> Scenario:
    base: dict[str, object] = {"orders": 40_000, "surge": {"weeks": 2, "share": 0.3, "peak_multiplier": 2}}
    base.update(demand)
    return Scenario(name="t", horizon=13 * WEEK, masterdata=SIZES, demand=base)


@pytest.fixture(scope="module")
def md() -> MasterData:
    return generate(MasterDataSizes(**SIZES), Streams(1))


@pytest.fixture(scope="module")
def quarter(md: MasterData) -> DemandModel:
    return DemandModel(scenario(), md, Streams(1))


def within(obs: float, exp: float, k: float = 4.0) -> bool:
    return abs(obs - exp) <= k * np.sqrt(max(exp, 1.0))


def chi2_ok(obs: np.ndarray, exp: np.ndarray) -> bool:
    m = exp > 0
    df = int(m.sum()) - 1
    chi2 = float((((obs - exp) ** 2)[m] / exp[m]).sum())
    return chi2 < df + 5 * np.sqrt(2 * df)


def test_expected_volume_and_surge_share(quarter: DemandModel) -> None:
    # orders * (1 - share + share * peak) = 40000 * (0.7 + 0.6)
    assert quarter.expected_total == pytest.approx(52_000)
    s0, s1 = surge_window(quarter.scenario)
    assert quarter.expected_count(s0, s1) == pytest.approx(24_000)
    assert quarter.expected_count(0, s0) == pytest.approx(28_000)
    a = quarter.arrival_times()
    assert within(len(a), 52_000)
    assert within(int((a >= s0).sum()), 24_000)
    assert quarter.expected_count(-5, 1e12) == pytest.approx(52_000)
    assert quarter.rate(-1) == 0 and quarter.rate(13 * WEEK) == 0


def test_weekly_counts_follow_the_curve(quarter: DemandModel) -> None:
    a = quarter.arrival_times()
    edges = np.arange(0, 13 * WEEK + 1, WEEK)
    obs = np.histogram(a, edges)[0]
    exp = np.array([quarter.expected_count(edges[i], edges[i + 1]) for i in range(13)])
    assert all(within(o, e) for o, e in zip(obs, exp, strict=True)), (obs, exp)
    assert chi2_ok(obs, exp)
    # the surge weeks are the busiest
    assert exp[11] > 2 * exp[:11].max() and exp[12] > 2 * exp[:11].max()


def test_hour_of_day_and_weekday_follow_the_profile(quarter: DemandModel) -> None:
    a = quarter.arrival_times()
    cal = Calendar.from_scenario(quarter.scenario)
    obs_h = np.bincount(cal.hour(a), minlength=24)
    mids = (quarter.edges[:-1] + quarter.edges[1:]) / 2
    mass = quarter.rates * np.diff(quarter.edges)
    exp_h = np.bincount(cal.hour(mids), weights=mass, minlength=24)
    intraday = np.asarray(quarter.scenario.demand.intraday)
    assert (obs_h[intraday == 0] == 0).all()
    assert chi2_ok(obs_h, exp_h)
    assert all(within(o, e) for o, e in zip(obs_h, exp_h, strict=True))
    obs_d = np.bincount(cal.weekday(a), minlength=7)
    exp_d = np.bincount(cal.weekday(mids), weights=mass, minlength=7)
    assert obs_d[5] == obs_d[6] == 0
    assert chi2_ok(obs_d, exp_d)


def test_rate_is_the_product_of_profiles(md: MasterData) -> None:
    m = DemandModel(scenario(month_weeks=[1.0]), md, Streams(1))
    mon_1030, tue_1030, mon_0730 = 10.5 * 3600, DAY + 10.5 * 3600, 7.5 * 3600
    assert m.rate(tue_1030) / m.rate(mon_1030) == pytest.approx(1.1)
    assert m.rate(mon_1030) / m.rate(mon_0730) == pytest.approx(1.2 / 0.5)  # intraday[10] / intraday[7]
    assert m.rate(5 * DAY + 10.5 * 3600) == 0  # Saturday
    assert m.rate(3 * 3600) == 0  # night
    # the surge window's level: 0.3 * 40000 * 2 over 2 weeks vs 0.7 * 40000 over 11
    s0, _ = surge_window(m.scenario)
    assert m.rate(s0 + mon_1030) / m.rate(mon_1030) == pytest.approx((0.3 * 2 / 2) / (0.7 / 11))


def test_peak_multiplier_scales_only_the_window(md: MasterData) -> None:
    a = DemandModel(scenario(), md, Streams(1))
    b = DemandModel(scenario(surge={"weeks": 2, "share": 0.3, "peak_multiplier": 3}), md, Streams(1))
    s0, s1 = surge_window(a.scenario)
    assert b.expected_count(s0, s1) == pytest.approx(1.5 * a.expected_count(s0, s1))
    assert b.expected_count(0, s0) == pytest.approx(a.expected_count(0, s0))


def test_month_weeks_are_shares_of_the_month(md: MasterData) -> None:
    # Flat day and week, July 2026 (31 days, 4 parts of 7.75 days): volume splits as month_weeks.
    s = Scenario(
        name="m",
        start="2026-07-01T00:00:00",
        horizon=31 * DAY,
        masterdata=SIZES,
        demand={"orders": 10_000, "intraday": [1] * 24, "weekday": [1] * 7, "surge": {"weeks": 0}},
    )
    m = DemandModel(s, md, Streams(2))
    q = 31 * DAY / 4
    exp = [m.expected_count(i * q, (i + 1) * q) for i in range(4)]
    assert exp == pytest.approx([1000, 2000, 3000, 4000])
    obs = np.histogram(m.arrival_times(), [0, q, 2 * q, 3 * q, 4 * q])[0]
    assert all(within(o, e) for o, e in zip(obs, exp, strict=True))


def test_surge_covering_whole_horizon_takes_all_volume(md: MasterData) -> None:
    s = Scenario(
        name="w",
        horizon=3 * DAY,
        masterdata=SIZES,
        demand={"orders": 100, "surge": {"weeks": 1, "share": 0.2, "peak_multiplier": 2}},
    )
    assert DemandModel(s, md, Streams(1)).expected_total == pytest.approx(200)


def test_zero_profile_is_an_error_and_zero_orders_is_fine(md: MasterData) -> None:
    sat = {"name": "z", "start": "2026-07-11T00:00:00", "horizon": DAY, "masterdata": SIZES}
    with pytest.raises(DemandError, match="zero over the whole horizon"):
        intensity(Scenario(**sat))
    m = DemandModel(Scenario(**sat, demand={"orders": 0}), md, Streams(1))
    assert len(m.arrival_times()) == 0 and list(m.orders()) == []


def test_orders_are_well_formed(md: MasterData) -> None:
    s = Scenario(name="o", horizon=WEEK, masterdata=SIZES, demand={"orders": 2000, "requested_lead": "2d"})
    orders = list(DemandModel(s, md, Streams(3)).orders())
    assert [o.key for o in orders] == [order_key(i) for i in range(len(orders))]
    assert orders[0].key == "D0000001"
    assert all(a.t <= b.t for a, b in zip(orders, orders[1:], strict=False))
    n_lines = []
    for o in orders:
        c = md.by_customer_no[o.customer_no]
        assert c.crm_account_id == o.crm_account_id
        assert 0 <= o.ship_to_index < len(c.ship_to)
        assert o.requested_t == o.t + 2 * DAY
        skus = [ln.sku for ln in o.lines]
        assert 1 <= len(skus) == len(set(skus)) <= len(md.skus)
        n_lines.append(len(skus))
        for ln in o.lines:
            sku = md.by_sku[ln.sku]
            assert ln.quantity >= 1 and ln.uom == sku.sales_uom
            assert ln.unit_price == md.price_per_uom(o.customer_no, ln.sku, ln.uom)
    # lines ~ lognormal(median 3, sigma 0.6) rounded: median 3, mean ~3.5
    assert np.median(n_lines) == 3 and 3.2 < np.mean(n_lines) < 3.9


def test_customers_weighted_by_tier(md: MasterData) -> None:
    s = Scenario(name="o", horizon=WEEK, masterdata=SIZES, demand={"orders": 20_000})
    counts = Counter(o.customer_no for o in DemandModel(s, md, Streams(3)).orders())
    per = {t: np.mean([counts[c.customer_no] for c in md.customers if c.tier == t]) for t in "AC"}
    assert 2.5 < per["A"] / per["C"] < 6  # weights 4 : 1


def test_popular_skus_sell_more(md: MasterData) -> None:
    s = Scenario(name="o", horizon=WEEK, masterdata=SIZES, demand={"orders": 5000})
    counts = Counter(ln.sku for o in DemandModel(s, md, Streams(3)).orders() for ln in o.lines)
    top = max(md.skus, key=lambda x: x.popularity)
    bottom = min(md.skus, key=lambda x: x.popularity)
    assert counts[top.sku] > 5 * counts[bottom.sku]


def test_tiny_catalogue_never_repeats_a_sku() -> None:
    md = generate(MasterDataSizes(customers=3, skus=3), Streams(1))
    s = Scenario(
        name="tiny",
        horizon=WEEK,
        masterdata={"customers": 3, "skus": 3},
        demand={"orders": 300, "lines": {"kind": "lognormal", "median": 6, "sigma": 0.2}},
    )
    for o in DemandModel(s, md, Streams(1)).orders():
        assert len(o.lines) == 3 and len({ln.sku for ln in o.lines}) == 3


def test_same_seed_identical_different_seed_differs(md: MasterData) -> None:
    s = Scenario(name="o", horizon=WEEK, masterdata=SIZES, demand={"orders": 500})
    a = list(DemandModel(s, md, Streams(5)).orders())
    b = list(DemandModel(s, md, Streams(5)).orders())
    c = list(DemandModel(s, md, Streams(6)).orders())
    assert a == b
    assert a != c and [o.t for o in a[:20]] != [o.t for o in c[:20]]
    m = DemandModel(s, md, Streams(5))
    assert list(m.orders()) == list(m.orders())  # iterating twice replays, not continues


def test_contents_do_not_depend_on_arrival_volume(md: MasterData) -> None:
    # Common random numbers: the k-th order's customer and lines are the same at any volume.
    few = Scenario(name="o", horizon=WEEK, masterdata=SIZES, demand={"orders": 300})
    many = Scenario(name="o", horizon=WEEK, masterdata=SIZES, demand={"orders": 900})
    a = list(DemandModel(few, md, Streams(5)).orders())
    b = list(DemandModel(many, md, Streams(5)).orders())[: len(a)]
    assert [(o.customer_no, o.lines) for o in a] == [(o.customer_no, o.lines) for o in b]


def test_poisson_mode_is_homogeneous(md: MasterData) -> None:
    s = Scenario(name="p", horizon=WEEK, masterdata=SIZES, demand={"orders": 20_000, "process": "poisson"})
    m = DemandModel(s, md, Streams(8))
    assert m.rate(1) == m.rate(5 * DAY + 3 * 3600) == pytest.approx(20_000 / WEEK)
    a = m.arrival_times()
    gaps = np.diff(np.concatenate([[0.0], a]))
    mean = WEEK / 20_000
    assert abs(gaps.mean() - mean) < 4 * mean / np.sqrt(len(gaps))
    assert abs(gaps.std() / gaps.mean() - 1) < 0.05  # exponential: coefficient of variation 1
    obs = np.histogram(a, np.linspace(0, WEEK, 29))[0]
    assert chi2_ok(obs, np.full(28, len(a) / 28))


def test_simpy_process_submits_at_arrival_times(md: MasterData) -> None:
    s = Scenario(name="o", horizon=2 * DAY, masterdata=SIZES, demand={"orders": 200})
    m = DemandModel(s, md, Streams(4))
    env = simpy.Environment()
    seen: list[tuple[float, str]] = []
    env.process(m.process(env, lambda o: seen.append((env.now, o.key))))
    env.run()
    expected = list(m.orders())
    assert [k for _, k in seen] == [o.key for o in expected]
    assert [t for t, _ in seen] == pytest.approx([o.t for o in expected])


def test_frames_match_orders(md: MasterData) -> None:
    s = Scenario(name="o", horizon=WEEK, masterdata=SIZES, demand={"orders": 300})
    m = DemandModel(s, md, Streams(4))
    orders = list(m.orders())
    of, lf = m.frames()
    assert list(of["key"]) == [o.key for o in orders]
    assert list(of["customer_no"]) == [o.customer_no for o in orders]
    assert list(of["ship_to_index"]) == [o.ship_to_index for o in orders]
    flat = [(o.key, ln.sku, ln.quantity, ln.uom, ln.unit_price) for o in orders for ln in o.lines]
    assert list(zip(lf["key"], lf["sku"], lf["quantity"], lf["uom"], lf["unit_price"], strict=True)) == flat
    cs = lf["uom"] == "CS"
    assert (lf.loc[cs, "qty_each"] > lf.loc[cs, "quantity"]).all()
    assert len(orders_frame(orders)) == len(orders)
    lf2 = lines_frame(orders, md)
    assert list(lf2["qty_each"]) == list(lf["qty_each"])


def test_a_million_arrivals_in_a_few_seconds(md: MasterData) -> None:
    m = DemandModel(scenario(orders=1_000_000, surge={"weeks": 2, "share": 0.25, "peak_multiplier": 1}), md, Streams(1))
    t0 = time.perf_counter()
    a = m.arrival_times()
    assert time.perf_counter() - t0 < 5
    assert within(len(a), 1_000_000)
