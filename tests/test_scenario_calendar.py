"""sim.calendar: simulated seconds <-> dates, profile keys, surge window, dialect formats."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from sim.calendar import DAY, WEEK, Calendar, in_surge, surge_window
from sim.scenario import Scenario

CAL = Calendar.of("2026-07-06T00:00:00")  # a Monday


def test_conversions_roundtrip() -> None:
    assert CAL.to_datetime(0) == datetime(2026, 7, 6, tzinfo=UTC)
    assert CAL.to_datetime(DAY + 3600 * 9.5) == datetime(2026, 7, 7, 9, 30, tzinfo=UTC)
    assert CAL.to_sim(datetime(2026, 7, 7, 9, 30)) == DAY + 3600 * 9.5


def test_keys_scalar_and_vectorised() -> None:
    t = 2 * DAY + 10 * 3600 + 59  # Wednesday 10:00:59
    assert (CAL.day_index(t), CAL.weekday(t), CAL.hour(t)) == (2, 2, 10)
    ts = np.array([0.0, 5 * DAY, 6 * DAY + 23.5 * 3600, 7 * DAY])
    assert CAL.weekday(ts).tolist() == [0, 5, 6, 0]
    assert CAL.hour(ts).tolist() == [0, 0, 23, 0]
    assert CAL.day_index(ts).tolist() == [0, 5, 6, 7]
    assert CAL.seconds_of_day(t) == 10 * 3600 + 59


def test_weekday_follows_the_real_calendar() -> None:
    sat = Calendar.of("2026-07-11T00:00:00")
    assert sat.weekday(0) == 5 and sat.weekday(2 * DAY) == 0


def test_week_of_month_and_month_part() -> None:
    # 2026-07-06 is day 6 of July (31 days)
    assert CAL.week_of_month(0) == 0
    assert CAL.week_of_month(2 * DAY) == 1  # July 8
    assert CAL.week_of_month(23 * DAY) == 4  # July 29
    assert CAL.month_part(0, 4) == 0  # 5.0 / 31 < 0.25
    assert CAL.month_part(20 * DAY, 4) == 3  # July 26: 25/31 > 0.75
    assert CAL.month_part(26 * DAY, 4) == 0  # August 1
    assert CAL.month_part(26 * DAY - 1, 1) == 0
    parts = CAL.month_part(np.arange(0, 31 * DAY, 3600.0), 4)
    assert set(parts.tolist()) == {0, 1, 2, 3}


def test_offset_start_puts_business_hours_local() -> None:
    cal = Calendar.of("2026-07-06T00:00:00-05:00")
    assert cal.hour(9 * 3600) == 9
    assert cal.iso_z(9 * 3600) == "2026-07-06T14:00:00.000Z"
    assert cal.rfc3339(9 * 3600) == "2026-07-06T09:00:00-05:00"


def test_dialect_formats() -> None:
    t = DAY + 13 * 3600 + 5.25  # Tue 2026-07-07 13:00:05.250 UTC
    assert CAL.iso_z(t) == "2026-07-07T13:00:05.250Z"
    assert CAL.iso_date(t) == "2026-07-07"
    assert CAL.yyyymmdd(t) == "20260707"
    assert CAL.epoch_ms(t) == int(datetime(2026, 7, 7, 13, 0, 5, 250000, tzinfo=UTC).timestamp() * 1000)
    assert CAL.rfc3339(t) == "2026-07-07T13:00:05+00:00"
    assert CAL.rfc3339(t, offset_hours=-5) == "2026-07-07T08:00:05-05:00"


def test_parsing_back() -> None:
    t = DAY + 13 * 3600 + 5.25
    assert CAL.from_iso(CAL.iso_z(t)) == t
    assert CAL.from_epoch_ms(CAL.epoch_ms(t)) == t
    assert CAL.from_yyyymmdd("20260707") == DAY
    assert CAL.from_iso(CAL.rfc3339(t, offset_hours=-5)) == int(t)


def test_surge_window() -> None:
    s = Scenario(name="x", horizon=13 * WEEK, demand={"surge": {"weeks": 2}})
    assert surge_window(s) == (11 * WEEK, 13 * WEEK)
    assert in_surge(11 * WEEK, s) and not in_surge(11 * WEEK - 1, s) and not in_surge(13 * WEEK, s)
    none = Scenario(name="x", horizon=WEEK, demand={"surge": {"weeks": 0}})
    assert surge_window(none) == (WEEK, WEEK) and not in_surge(WEEK - 1, none)
    whole = Scenario(name="x", horizon=DAY, demand={"surge": {"weeks": 1}})
    assert surge_window(whole) == (0.0, DAY)
    assert Calendar.from_scenario(s) == CAL


def test_scalar_fast_path_matches_vectorised() -> None:
    cal = Calendar.of("2026-07-06T00:00:00-05:00")
    ts = np.random.default_rng(1).uniform(-1e6, 1e7, 2000)
    assert [cal.hour(float(t)) for t in ts] == cal.hour(ts).tolist()
    assert [cal.weekday(float(t)) for t in ts] == cal.weekday(ts).tolist()
    assert [cal.day_index(float(t)) for t in ts] == cal.day_index(ts).tolist()
    assert isinstance(cal.hour(np.int64(7200)), int) and cal.hour(np.int64(7200)) == 2
