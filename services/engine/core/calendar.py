"""Exchange trading days from exchange-calendars (never a hand-written holiday list), cached.

Sessions are kept per calendar as sorted int64 day numbers (days since 1970-01-01, the same
unit as `Bars.day`); the date-returning helpers are thin views over them.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import exchange_calendars as xc
import numpy as np
import pandas as pd

__all__ = ["trading_days", "session_days", "session_schedule", "is_trading_day", "calendar_tz", "calendar_names",
           "check_calendar", "day_number", "day_date"]

_EPOCH = date(1970, 1, 1)
_LOCK = threading.Lock()
_KNOWN: dict[str, "_Known"] = {}


def day_number(d: date) -> int:
    """Days since 1970-01-01 (the unit of `Bars.day`)."""
    return (d - _EPOCH).days


def day_date(n: int) -> date:
    return date.fromordinal(_EPOCH.toordinal() + int(n))


def calendar_names() -> list[str]:
    """Every calendar code exchange-calendars knows (XBOM, XNYS, XLON, ...; aliases included)."""
    return sorted(xc.get_calendar_names(include_aliases=True))


def check_calendar(code: str) -> str:
    """The code itself if exchange-calendars knows it; otherwise a ValueError naming valid ones."""
    names = calendar_names()
    if code not in names:
        hint = ", ".join(n for n in ("XBOM", "XNYS", "XNAS", "XLON", "XTKS", "XHKG") if n in names)
        raise ValueError(f"unknown exchange calendar {code!r}: use an exchange-calendars code such as {hint} "
                         f"({len(names)} in all)")
    return code


@dataclass(frozen=True)
class _Known:
    days: np.ndarray      # int64 session day numbers, sorted
    tz: str
    lo: int               # the day numbers the sessions cover, inclusive
    hi: int
    bound_lo: int | None  # how far exchange-calendars can go
    bound_hi: int | None


def _day_of(ts) -> int | None:
    return None if ts is None else day_number(pd.Timestamp(ts).date())


def _build(code: str, lo: int | None = None, hi: int | None = None) -> _Known:
    kwargs = {}
    if lo is not None:
        kwargs = {"start": pd.Timestamp(day_date(lo)), "end": pd.Timestamp(day_date(hi))}
    # exchange-calendars 4.x reads tz-aware Series.values, which pandas 3 deprecates; nothing we
    # can fix from here, and the tests turn every warning into an error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            cal = xc.get_calendar(code, **kwargs)
        except xc.errors.InvalidCalendarName:
            check_calendar(code)
            raise
        except ValueError as exc:
            raise ValueError(f"exchange calendar {code} cannot be built for {kwargs or 'its default range'}: "
                             f"{exc}") from None
        days = np.asarray(cal.sessions.values.astype("datetime64[D]").astype(np.int64))
        tz = str(getattr(cal.tz, "key", cal.tz))
        bound_lo, bound_hi = _day_of(cal.bound_min()), _day_of(cal.bound_max())
    if lo is None:
        lo, hi = int(days[0]), int(days[-1])
    return _Known(days, tz, lo, hi, bound_lo, bound_hi)


def _sessions(code: str, start: date | None = None, end: date | None = None) -> _Known:
    """The sessions of `code` known so far, widened (within the calendar's bounds) toward start..end."""
    check_calendar(code)
    with _LOCK:
        known = _KNOWN.get(code)
        if known is None:
            known = _KNOWN[code] = _build(code)
        lo = min(day_number(start), known.lo) if start else known.lo
        hi = max(day_number(end), known.hi) if end else known.hi
        if known.bound_lo is not None:
            lo = max(lo, known.bound_lo)
        if known.bound_hi is not None:
            hi = min(hi, known.bound_hi)
        if (lo, hi) != (known.lo, known.hi):
            known = _KNOWN[code] = _build(code, lo, hi)
        return known


def _covered(code: str, start: date, end: date) -> np.ndarray:
    known = _sessions(code, start, end)
    if day_number(start) < known.lo or day_number(end) > known.hi:
        raise ValueError(f"calendar {code} knows sessions from {day_date(known.lo)} to {day_date(known.hi)} only; "
                         f"{start} .. {end} is outside: choose dates within that range")
    return known.days


def session_days(calendar_code: str, start: date, end: date) -> np.ndarray:
    """int64 day numbers of the sessions in [start, end] (both inclusive); empty when start > end."""
    if start > end:
        return np.empty(0, np.int64)
    days = _covered(calendar_code, start, end)
    lo = np.searchsorted(days, day_number(start), side="left")
    hi = np.searchsorted(days, day_number(end), side="right")
    return days[lo:hi].copy()


@lru_cache(maxsize=256)
def _trading_days(calendar_code: str, start: date, end: date) -> tuple[date, ...]:
    return tuple(day_date(d) for d in session_days(calendar_code, start, end))


def trading_days(calendar_code: str, start: date, end: date) -> list[date]:
    """The exchange's sessions (local dates) in [start, end], both inclusive."""
    return list(_trading_days(calendar_code, start, end))


def is_trading_day(calendar_code: str, day: date) -> bool:
    days = _covered(calendar_code, day, day)
    i = np.searchsorted(days, day_number(day))
    return bool(i < len(days) and days[i] == day_number(day))


def calendar_tz(calendar_code: str) -> str:
    """The exchange's IANA time zone, e.g. 'Asia/Kolkata' for XBOM."""
    return _sessions(calendar_code).tz


@dataclass(frozen=True)
class Schedule:
    """Sessions of a calendar in a date range: day numbers and UTC ns of each session's open, close
    and break (break_start == break_end == 0 where a session has none). `lo`..`hi`: the day numbers
    the calendar covers of the range asked for (lo > hi: none)."""

    days: np.ndarray
    opens: np.ndarray
    closes: np.ndarray
    break_starts: np.ndarray
    break_ends: np.ndarray
    lo: int = 0
    hi: int = -1


@lru_cache(maxsize=32)
def session_schedule(calendar_code: str, start: date, end: date) -> Schedule:
    """The sessions in [start, end] with their hours (early closes and breaks as the exchange has
    them), clipped to what exchange-calendars covers. Used by the upload quality checks to count
    the bars a session should have."""
    known = _sessions(calendar_code, start, end)
    lo, hi = max(day_number(start), known.lo), min(day_number(end), known.hi)
    empty = np.empty(0, np.int64)
    if lo > hi:
        return Schedule(empty, empty, empty, empty, empty, lo, hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        cal = xc.get_calendar(calendar_code)  # the default range, built once and cached by exchange-calendars
        first, last = day_number(cal.first_session.date()), day_number(cal.last_session.date())
        if lo < first or hi > last:  # widen (exchange-calendars wants start < end)
            a, b = min(lo, first), max(hi, last)
            cal = xc.get_calendar(calendar_code, start=pd.Timestamp(day_date(a)), end=pd.Timestamp(day_date(b)))
        sched = cal.schedule
        keep = (sched.index >= pd.Timestamp(day_date(lo))) & (sched.index <= pd.Timestamp(day_date(hi)))
        sched = sched[keep]

    def ns(column: str) -> np.ndarray:
        values = pd.DatetimeIndex(sched[column]).tz_convert("UTC").tz_localize(None).as_unit("ns")
        return np.where(values.isna(), 0, values.asi8).astype(np.int64)

    days = np.asarray(sched.index.values.astype("datetime64[D]").astype(np.int64))
    return Schedule(days, ns("open"), ns("close"), ns("break_start"), ns("break_end"), lo, hi)
