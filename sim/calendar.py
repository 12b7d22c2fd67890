"""Simulated seconds <-> calendar, and the timestamp formats each system's dialect speaks.

Simulated time ``t`` is seconds since the scenario ``start``. A naive ``start`` is UTC; one with an
offset (``2026-07-06T00:00:00-05:00``) puts the business day (hour of day, weekday) in that offset
while the ISO ``Z`` formats still say UTC. Every time-of-day / weekday / month helper also accepts
a numpy array, so the demand model resolves its whole profile in one vectorised pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, overload

import numpy as np

if TYPE_CHECKING:
    from sim.scenario import Scenario

DAY = 86400.0
WEEK = 7 * DAY
_EPOCH = datetime(1970, 1, 1)


def parse_start(start: str | datetime) -> datetime:
    """The scenario start as an aware datetime (naive means UTC)."""
    dt = datetime.fromisoformat(start) if isinstance(start, str) else start
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Calendar:
    start: datetime  # aware
    # Seconds from 1970-01-01 to start on the local (start-offset) wall clock; cached because the
    # world asks for hours and weekdays per event.
    _local_epoch_s: float = field(init=False, repr=False, compare=False)
    # The start in UTC when its offset is fixed (a ``datetime.timezone``, as ``parse_start`` gives):
    # then start + dt in UTC is utc_start + dt, and the ``Z`` formats skip a conversion per call.
    # None for a zone with rules (DST), where only the start's own arithmetic is right.
    _utc_start: datetime | None = field(init=False, repr=False, compare=False)
    # iso_z by time: a CRM order's created/modified times are rendered on every read of it.
    _iso_z: dict[float, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_local_epoch_s", (self.start.replace(tzinfo=None) - _EPOCH).total_seconds())
        fixed = isinstance(self.start.tzinfo, timezone)
        object.__setattr__(self, "_utc_start", self.start.astimezone(UTC).replace(tzinfo=None) if fixed else None)
        object.__setattr__(self, "_iso_z", {})

    @classmethod
    def of(cls, start: str | datetime) -> Calendar:
        return cls(parse_start(start))

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> Calendar:
        return cls.of(scenario.start)

    # -- conversions --------------------------------------------------------------------------
    def to_datetime(self, t: float) -> datetime:
        """Aware datetime in the start's offset."""
        return self.start + timedelta(seconds=float(t))

    def to_sim(self, dt: datetime) -> float:
        """Seconds since start (naive datetimes are taken in the start's offset)."""
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.start.tzinfo)
        return (dt - self.start).total_seconds()

    # -- calendar keys (scalar or vectorised) --------------------------------------------------
    @overload
    def day_index(self, t: float) -> int: ...
    @overload
    def day_index(self, t: np.ndarray) -> np.ndarray: ...
    def day_index(self, t):  # type: ignore[no-untyped-def]
        """Whole local days since the start day's midnight (start day = 0)."""
        if isinstance(t, int | float):
            return int(math.floor((t + self._local_epoch_s) / DAY) - math.floor(self._local_epoch_s / DAY))
        day0 = np.floor(self._local_epoch_s / DAY)
        out = np.floor((np.asarray(t, dtype=float) + self._local_epoch_s) / DAY) - day0
        return _scalar(out, int)

    @overload
    def weekday(self, t: float) -> int: ...
    @overload
    def weekday(self, t: np.ndarray) -> np.ndarray: ...
    def weekday(self, t):  # type: ignore[no-untyped-def]
        """0 = Monday .. 6 = Sunday (1970-01-01 was a Thursday)."""
        if isinstance(t, int | float):
            return int((math.floor((t + self._local_epoch_s) / DAY) + 3) % 7)
        days = np.floor((np.asarray(t, dtype=float) + self._local_epoch_s) / DAY)
        return _scalar((days + 3) % 7, int)

    @overload
    def hour(self, t: float) -> int: ...
    @overload
    def hour(self, t: np.ndarray) -> np.ndarray: ...
    def hour(self, t):  # type: ignore[no-untyped-def]
        """Local hour of day 0..23."""
        if isinstance(t, int | float):
            return int(((t + self._local_epoch_s) % DAY) // 3600)
        sod = (np.asarray(t, dtype=float) + self._local_epoch_s) % DAY
        return _scalar(np.floor(sod / 3600), int)

    def seconds_of_day(self, t: float) -> float:
        return float((t + self._local_epoch_s) % DAY)

    @overload
    def week_of_month(self, t: float) -> int: ...
    @overload
    def week_of_month(self, t: np.ndarray) -> np.ndarray: ...
    def week_of_month(self, t):  # type: ignore[no-untyped-def]
        """Calendar week of month: days 1-7 -> 0, 8-14 -> 1, ..., 29-31 -> 4."""
        dom, _ = self._day_of_month(t)
        return _scalar(dom // 7, int)

    @overload
    def month_part(self, t: float, parts: int) -> int: ...
    @overload
    def month_part(self, t: np.ndarray, parts: int) -> np.ndarray: ...
    def month_part(self, t, parts):  # type: ignore[no-untyped-def]
        """Which of ``parts`` equal slices of its month ``t`` falls in (0 .. parts-1).

        The demand profile ``month_weeks`` uses this rather than calendar weeks so that its
        weights are shares of a month for any month length and any number of weights (1..6)."""
        tt = np.asarray(t, dtype=float)
        dom, dim = self._day_of_month(tt)
        sod = (tt + self._local_epoch_s) % DAY
        frac = (dom + sod / DAY) / dim
        return _scalar(np.minimum(np.floor(frac * parts), parts - 1), int)

    def _day_of_month(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(0-based day of month, days in that month), vectorised via datetime64."""
        secs = np.floor(np.asarray(t, dtype=float) + self._local_epoch_s).astype("int64")
        d = secs.astype("datetime64[s]").astype("datetime64[D]")
        m = d.astype("datetime64[M]")
        dom = (d - m.astype("datetime64[D]")).astype(np.int64)
        dim = ((m + 1).astype("datetime64[D]") - m.astype("datetime64[D]")).astype(np.int64)
        return dom, dim

    # -- dialect formats ------------------------------------------------------------------------
    def iso_z(self, t: float) -> str:
        """CRM: ``2026-07-06T09:30:00.000Z`` (UTC, milliseconds)."""
        memo = self._iso_z
        text = memo.get(t)
        if text is not None:
            return text
        if self._utc_start is not None and (utc := self._utc_start + timedelta(seconds=float(t))).year >= 1000:
            # isoformat truncates to milliseconds exactly as ``microsecond // 1000``, at half the
            # cost of strftime (whose %Y, unlike isoformat, does not pad years before 1000)
            text = utc.isoformat(timespec="milliseconds") + "Z"
        else:
            dt = self.to_datetime(t).astimezone(UTC)
            text = dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
        if len(memo) >= 4096:
            memo.clear()  # bounded; the recent times are what recur
        memo[t] = text
        return text

    def iso_date(self, t: float) -> str:
        """CRM dates: ``2026-07-06`` (local business date)."""
        d = self.to_datetime(t)
        return d.date().isoformat() if d.year >= 1000 else d.strftime("%Y-%m-%d")

    def yyyymmdd(self, t: float) -> str:
        """ERP dates: ``20260706`` (local business date)."""
        return self.to_datetime(t).strftime("%Y%m%d")

    def epoch_ms(self, t: float) -> int:
        """WMS timestamps: integer milliseconds since the Unix epoch."""
        return int(round(self.to_datetime(t).timestamp() * 1000))

    def rfc3339(self, t: float, offset_hours: float | None = None) -> str:
        """Carrier: ``2026-07-06T04:30:00-05:00``; in ``offset_hours`` if given, else the start's offset."""
        dt = self.to_datetime(t)
        if offset_hours is not None:
            dt = dt.astimezone(timezone(timedelta(hours=offset_hours)))
        return dt.isoformat(timespec="seconds")

    # -- parsing back (what the mocks receive) ------------------------------------------------
    def from_iso(self, text: str) -> float:
        return self.to_sim(datetime.fromisoformat(text.replace("Z", "+00:00")))

    def from_yyyymmdd(self, text: str) -> float:
        """Start of that local day."""
        return self.to_sim(datetime.strptime(text, "%Y%m%d"))

    def from_epoch_ms(self, ms: int | float) -> float:
        return self.to_sim(datetime.fromtimestamp(ms / 1000, tz=UTC))


def _scalar(a: np.ndarray, typ: type) -> object:
    return typ(a) if np.ndim(a) == 0 else a.astype(np.int64)


# --------------------------------------------------------------------------------------- surge window


def surge_window(scenario: Scenario) -> tuple[float, float]:
    """``[start, end)`` of the quarter-end surge: the last ``demand.surge.weeks`` of the horizon.

    Empty (start == end == horizon) when ``weeks`` is 0; the whole horizon when it is longer."""
    h = scenario.horizon
    return max(0.0, h - scenario.demand.surge.weeks * WEEK), h


def in_surge(t: float, scenario: Scenario) -> bool:
    s, e = surge_window(scenario)
    return s <= t < e
