"""NSE index option expiries and lot sizes by date, from one table of the circulars that set them.

Expiries follow the rules in force (weekday, weekly listing) and move to the previous session when
they fall on a holiday, using exchange-calendars' sessions via `core.calendar`. Day numbers are
int64 days since 1970-01-01, like `Bars.day`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np

from ..core.calendar import check_calendar, day_date, day_number, session_days

__all__ = ["WEEKLY", "MONTHLY", "EXPIRY_KINDS", "MAX_OFFSET", "Change", "CHANGES", "ExpiryError",
           "ExpiryCalendar", "lot_size_on", "contract_lot_size", "weekly_listed_from", "options_listed_from"]

WEEKLY = "weekly"
MONTHLY = "monthly"
EXPIRY_KINDS = (WEEKLY, MONTHLY)
# How many expiries after the nearest are listed. Monthly: near, next and far month, NIFTY's
# three-month cycle since 2001 (NSE F&O contract specifications; restated in NSE's press release of
# 18 Dec 2018). Weekly: seven consecutive weeklies besides the monthly week at launch (same press
# release); offsets 0..3 keep to the current and next three weeks, which every cycle since covers.
MAX_OFFSET = {WEEKLY: 3, MONTHLY: 2}

TUESDAY, THURSDAY = 1, 3  # date.weekday() numbering


class ExpiryError(ValueError):
    """An expiry or lot-size question the rules cannot answer; the message says how to fix it."""


@dataclass(frozen=True)
class Change:
    """What one circular changed for a root's options from `effective` on; None fields are unchanged.

    weekday: expiries dated (before any holiday shift) on or after `effective` fall on it; the monthly
    one is the month's last. weekly: weekly contracts trade from the trading day `effective`. lot:
    every weekly and monthly contract trading on or after `effective` has it (`lot_size_on`), and
    lot_weekly_from / lot_monthly_from are the first such expiries listed with it (`contract_lot_size`).
    """

    root: str
    effective: date
    circular: str
    weekday: int | None = None
    weekly: bool | None = None
    lot: int | None = None
    lot_weekly_from: date | None = None
    lot_monthly_from: date | None = None


# NSE's NIFTY 50 options. Lot revisions mostly spare live contracts, so two lots trade side by side
# for a while: `effective` of a lot row is the trading day after the last old-lot weekly or monthly
# contract expired (tests recompute it); the circular's own "effective" date is quoted in the row.
# Quarterly and half-yearly contracts, which NSE converts separately, are out of scope.
CHANGES: tuple[Change, ...] = (
    Change("NIFTY", date(2001, 6, 4),
           "NSE launch of NIFTY index options, 4 Jun 2001: three monthly contracts expiring on the last "
           "Thursday, the previous trading day if that is a holiday (NSE F&O segment history; Business "
           "Standard, 5 Jun 2001). Launch circular number not found.",
           weekday=THURSDAY, weekly=False),
    # The earliest lot this table vouches for; the revision that set 50 was not found.
    Change("NIFTY", date(2010, 1, 1),
           "Lot in force before 2010, set by an earlier revision not cited here; the Oct 2014 revision "
           "below gives NIFTY's 'present market lot' as 50.",
           lot=50, lot_weekly_from=date(2010, 1, 1), lot_monthly_from=date(2010, 1, 1)),
    # Halving an index lot applied to all contracts at once (NSE's method, e.g. NSE/F&O/042/2009).
    Change("NIFTY", date(2014, 10, 31),
           "NSE revision of market lots of derivative contracts (Rs 2 lakh minimum), effective 31 Oct "
           "2014: CNX Nifty 50 -> 25. Circular number and date not found; source: justtrading.in.",
           lot=25, lot_weekly_from=date(2014, 11, 27), lot_monthly_from=date(2014, 11, 27)),
    Change("NIFTY", date(2015, 10, 30),
           "SEBI CIR/MRD/DP/14/2015, 13 Jul 2015 (minimum contract size Rs 5 lakh, from the trading day "
           "after the October 2015 expiry); NSE lot revision of 7 Aug 2015 (modified 17 Aug 2015): "
           "NIFTY 25 -> 75 for November 2015 and later expiries. NSE circular number not found.",
           lot=75, lot_weekly_from=date(2015, 11, 26), lot_monthly_from=date(2015, 11, 26)),
    Change("NIFTY", date(2019, 2, 11),
           "NSE press release, 18 Dec 2018: SEBI approves weekly options on Nifty 50, expiring every "
           "Thursday (previous trading day on a holiday); trading began 11 Feb 2019 (BloombergQuint, "
           "11 Feb 2019). Circular number not found.",
           weekly=True),
    Change("NIFTY", date(2021, 7, 23),
           "NSE/FAOP/47854, circular 28/2021, 31 Mar 2021, 'Revision in Market Lot of Derivative "
           "Contracts on Indices', effective 30 Apr 2021: NIFTY 75 -> 50 from the July 2021 monthly "
           "and the August 2021 weeklies.",
           lot=50, lot_weekly_from=date(2021, 8, 5), lot_monthly_from=date(2021, 7, 29)),
    Change("NIFTY", date(2024, 4, 26),
           "NSE circular of 2 Apr 2024, 'Revision in Market Lot of Derivative Contracts on Indices', "
           "effective 26 Apr 2024: NIFTY 50 -> 25, first weekly 2 May and monthly 30 May 2024 (per "
           "Zerodha's bulletin of the circular). Circular number not found.",
           lot=25, lot_weekly_from=date(2024, 5, 2), lot_monthly_from=date(2024, 5, 30)),
    Change("NIFTY", date(2025, 1, 31),
           "NSE circular of 18 Oct 2024 on SEBI/HO/MRD/TPD-1/P/CIR/2024/132 (1 Oct 2024, minimum "
           "contract value Rs 15 lakh), for contracts introduced from 20 Nov 2024: NIFTY 25 -> 75; last "
           "old-lot weekly 19 Dec 2024 and monthly 30 Jan 2025 (per Angel One's notice of the "
           "circular). Circular number not found.",
           lot=75, lot_weekly_from=date(2025, 1, 2), lot_monthly_from=date(2025, 2, 27)),
    Change("NIFTY", date(2025, 9, 1),
           "NSE/FAOP/68589, circular 103/2025, 17 Jun 2025, 'Revision in expiry day of Index and Stock "
           "derivatives contracts' (SEBI/HO/MRD/TPD-1/P/CIR/2025/76, 26 May 2025): expiries from 1 Sep "
           "2025 on Tuesday, monthly on the last Tuesday; NSE's 23 Jun 2025 follow-up moved live "
           "contracts too (4 Sep -> 9 Sep 2025).",
           weekday=TUESDAY),
    Change("NIFTY", date(2025, 12, 31),
           "NSE/FAOP/70616, circular 176/2025, 3 Oct 2025, periodic revision of index derivative lots, "
           "effective 28 Oct 2025 (EOD): NIFTY 75 -> 65; weekly and monthly contracts up to the 30 Dec "
           "2025 expiry keep 75.",
           lot=65, lot_weekly_from=date(2026, 1, 6), lot_monthly_from=date(2026, 1, 27)),
)


@dataclass(frozen=True)
class _Lot:
    lot: int
    effective: date
    weekly_from: date
    monthly_from: date


@dataclass(frozen=True)
class _Rules:
    """One root's rows, compiled once into arrays for vectorised lookups."""

    root: str
    weekday_from: np.ndarray   # int64 day numbers where a weekday rule starts, sorted
    weekday_of: np.ndarray     # int64 weekday (Monday = 0) in force from each
    weekly_from: np.ndarray    # int64 day numbers where weekly listing switches on or off, sorted
    weekly_on: np.ndarray      # bool
    lots: tuple[_Lot, ...]     # the rows that set a lot, by effective date
    first_day: date            # options first listed


def _lot(row: Change) -> _Lot:
    if row.lot is None or row.lot_weekly_from is None or row.lot_monthly_from is None:
        raise ValueError(f"CHANGES: the lot row of {row.effective} needs lot, lot_weekly_from and lot_monthly_from")
    return _Lot(row.lot, row.effective, row.lot_weekly_from, row.lot_monthly_from)


def _compile(root: str, rows: list[Change]) -> _Rules:
    rows = sorted(rows, key=lambda c: c.effective)
    weekdays = [r for r in rows if r.weekday is not None]
    weekly = [r for r in rows if r.weekly is not None]
    lots = tuple(_lot(r) for r in rows if r.lot is not None)
    if not weekdays or weekdays[0] is not rows[0] or not lots:
        raise ValueError(f"CHANGES for {root} must open with the row that lists its options (a weekday) "
                         f"and set a lot")
    for a, b in zip(lots, lots[1:]):
        if not (a.weekly_from < b.weekly_from and a.monthly_from < b.monthly_from):
            raise ValueError(f"CHANGES for {root}: lot rows must have increasing first expiries ({b.effective})")

    def starts(selected: list[Change]) -> np.ndarray:
        return np.array([day_number(r.effective) for r in selected], np.int64)

    return _Rules(root=root,
                  weekday_from=starts(weekdays), weekday_of=np.array([r.weekday for r in weekdays], np.int64),
                  weekly_from=starts(weekly), weekly_on=np.array([bool(r.weekly) for r in weekly], np.bool_),
                  lots=lots, first_day=rows[0].effective)


def _compile_all() -> dict[str, _Rules]:
    roots = sorted({c.root for c in CHANGES})
    return {root: _compile(root, [c for c in CHANGES if c.root == root]) for root in roots}


_RULES = _compile_all()


def _rules(root: str) -> _Rules:
    rules = _RULES.get(root)
    if rules is None:
        raise ExpiryError(f"no NSE contract rules for root {root!r}: known roots are {', '.join(_RULES)} "
                          f"(symbols.underlying_root maps dataset symbols such as SIM-NIFTY to a root)")
    return rules


def _check_kind(kind: str) -> None:
    if kind not in EXPIRY_KINDS:
        raise ExpiryError(f"unknown expiry kind {kind!r}: use {WEEKLY!r} or {MONTHLY!r}")


def _check_offset(kind: str, offset: int) -> None:
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
        raise ExpiryError(f"expiry offset must be an integer, got {offset!r}")
    if not 0 <= offset <= MAX_OFFSET[kind]:
        raise ExpiryError(f"{kind} expiry offset {offset} is out of range: NSE lists the nearest "
                          f"{MAX_OFFSET[kind] + 1} {kind} expiries, so use 0 (nearest) to {MAX_OFFSET[kind]}")


def options_listed_from(root: str = "NIFTY") -> date:
    """The first trading day of the root's options (NIFTY: 2001-06-04)."""
    return _rules(root).first_day


def weekly_listed_from(root: str = "NIFTY") -> date:
    """The first trading day of the root's weekly options (NIFTY: 2019-02-11)."""
    rules = _rules(root)
    on = np.flatnonzero(rules.weekly_on)
    if on.size == 0:
        raise ExpiryError(f"{root} has no weekly options in the table: use expiry kind {MONTHLY!r}")
    return day_date(rules.weekly_from[on[0]])


def lot_size_on(day: date, root: str = "NIFTY") -> int:
    """The market lot of every weekly and monthly contract trading on `day`.

    Convention: a revision counts from the trading day after the last contract with the old lot
    expired; before that both lots trade, and this returns the old one. For a contract's own lot use
    `contract_lot_size` or `ExpiryCalendar.lot_size`.
    """
    lots = _rules(root).lots
    if day < lots[0].effective:
        raise ExpiryError(f"{root} lot sizes are recorded from {lots[0].effective}; {day} is earlier: "
                          f"start the run on or after {lots[0].effective}")
    return next(r.lot for r in reversed(lots) if r.effective <= day)


def contract_lot_size(expiry: date, monthly: bool, root: str = "NIFTY") -> int:
    """The market lot of the weekly (monthly=False) or monthly contract expiring on `expiry`."""
    lots = _rules(root).lots
    for row in reversed(lots):
        if expiry >= (row.monthly_from if monthly else row.weekly_from):
            return row.lot
    raise ExpiryError(f"{root} lot sizes are recorded for expiries from {lots[0].effective}; {expiry} is earlier")


@dataclass(frozen=True)
class _Expiries:
    weekly: np.ndarray   # int64 expiry day numbers, holiday-shifted, sorted, unique, read-only
    monthly: np.ndarray
    until: int           # the last day the calendar has sessions for; later expiries are not here


def _sessions(calendar: str, first_year: int, last_year: int) -> tuple[np.ndarray, int]:
    """Sessions from a month before `first_year` through the last whole year the calendar knows."""
    start = date(first_year - 1, 12, 1)  # a 1 January expiry on a holiday moves into December
    for year in range(last_year, first_year - 1, -1):
        try:
            return session_days(calendar, start, date(year, 12, 31)), day_number(date(year, 12, 31))
        except ValueError:
            continue  # beyond what exchange-calendars knows for this calendar: try one year less
    raise ExpiryError(f"calendar {calendar} has no sessions for {first_year}..{last_year}: "
                      f"choose dates the calendar covers")


@lru_cache(maxsize=64)
def _expiries(root: str, calendar: str, first_year: int, last_year: int) -> _Expiries:
    """Every weekly and monthly expiry with a nominal date in the years, shifted onto sessions."""
    rules = _rules(root)
    sessions, until = _sessions(calendar, first_year, last_year)
    days = np.arange(day_number(date(first_year, 1, 1)), day_number(date(last_year, 12, 31)) + 1, dtype=np.int64)
    era = np.searchsorted(rules.weekday_from, days, side="right") - 1
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    nominal = days[(era >= 0) & (weekday == rules.weekday_of[np.maximum(era, 0)])]
    month = nominal.astype("datetime64[D]").astype("datetime64[M]")
    monthly = nominal[np.append(month[1:] != month[:-1], True)]  # whole years, so the last month is whole
    weekly = nominal[_weekly_listed(rules, nominal)]  # includes the monthly dates: same weekday rule

    def shifted(dates: np.ndarray) -> np.ndarray:
        dates = dates[dates <= until]
        i = np.searchsorted(sessions, dates, side="right") - 1  # a holiday: the previous session
        out = np.unique(sessions[i[i >= 0]])
        out.setflags(write=False)
        return out

    return _Expiries(shifted(weekly), shifted(monthly), until)


def _weekly_listed(rules: _Rules, days: np.ndarray) -> np.ndarray:
    era = np.searchsorted(rules.weekly_from, days, side="right") - 1
    return (era >= 0) & rules.weekly_on[np.maximum(era, 0)]


class ExpiryCalendar:
    """One root's weekly and monthly option expiries on one exchange calendar (XBOM for NSE)."""

    def __init__(self, root: str = "NIFTY", calendar: str = "XBOM") -> None:
        self._rules = _rules(root)
        try:
            check_calendar(calendar)
        except ValueError as exc:
            raise ExpiryError(str(exc)) from None
        self.root = root
        self.calendar = calendar

    def _table(self, kind: str, first_year: int, last_year: int) -> tuple[np.ndarray, int]:
        # Options before the rules begin have no expiries; the calendar may not reach back that far.
        first_year = max(first_year, self._rules.first_day.year)
        table = _expiries(self.root, self.calendar, first_year, max(first_year, last_year))
        return (table.weekly if kind == WEEKLY else table.monthly), table.until

    def _beyond(self, kind: str, on: date, offset: int, until: int) -> ExpiryError:
        return ExpiryError(f"the {kind} {self.root} expiry {offset} after the nearest on {on} falls after "
                           f"{day_date(until)}, the last day calendar {self.calendar} has sessions for: "
                           f"end the run earlier or use a smaller offset")

    def expiries(self, kind: str, start: date, end: date) -> np.ndarray:
        """int64 day numbers of the `kind` expiries dated in [start, end], sorted and unique."""
        _check_kind(kind)
        if start > end:
            return np.empty(0, np.int64)
        table, until = self._table(kind, start.year, end.year + 1)
        if day_number(end) > until:
            raise ExpiryError(f"calendar {self.calendar} has sessions until {day_date(until)}; {end} is later: "
                              f"choose an end date on or before {day_date(until)}")
        lo = np.searchsorted(table, day_number(start), side="left")
        hi = np.searchsorted(table, day_number(end), side="right")
        return table[lo:hi].copy()

    def _not_listed(self, kind: str, on: date) -> ExpiryError | None:
        first = self._rules.first_day
        if on < first:
            return ExpiryError(f"{self.root} options were first listed on {first}; {on} has no expiries: "
                               f"start the run on or after {first}")
        if kind == WEEKLY and not _weekly_listed(self._rules, np.array([day_number(on)]))[0]:
            start = weekly_listed_from(self.root)
            return ExpiryError(f"weekly {self.root} options were first listed on {start}; {on} has only monthly "
                               f"expiries: use expiry kind {MONTHLY!r} or start the run on or after {start}")
        return None

    def listed(self, kind: str, on: date, offset: int = 0) -> date:
        """The offset-th (0 = nearest) `kind` expiry on or after `on`; an expiry day lists itself."""
        _check_kind(kind)
        _check_offset(kind, offset)
        problem = self._not_listed(kind, on)
        if problem is not None:
            raise problem
        table, until = self._table(kind, on.year, on.year + 1)
        i = int(np.searchsorted(table, day_number(on), side="left")) + offset
        if i >= len(table):
            raise self._beyond(kind, on, offset, until)
        return day_date(table[i])

    def listed_days(self, kind: str, day_numbers: np.ndarray, offset: int) -> np.ndarray:
        """`listed` for every day number at once: int64 expiry day numbers, -1 where `kind` was not listed."""
        _check_kind(kind)
        _check_offset(kind, offset)
        days = np.asarray(day_numbers)
        if days.dtype.kind not in "iu":
            raise ExpiryError(f"day numbers must be integers (days since 1970-01-01), got dtype {days.dtype}")
        days = days.astype(np.int64, copy=False)
        out = np.full(days.shape, -1, np.int64)
        if days.size == 0:
            return out
        table, until = self._table(kind, day_date(days.min()).year, day_date(days.max()).year + 1)
        listed = days >= day_number(self._rules.first_day)
        if kind == WEEKLY:
            listed &= _weekly_listed(self._rules, days)
        i = np.searchsorted(table, days, side="left") + offset
        beyond = listed & (i >= len(table))
        if beyond.any():
            raise self._beyond(kind, day_date(days[beyond].min()), offset, until)
        out[listed] = table[i[listed]]
        return out

    def lot_size(self, expiry: date) -> int:
        """The market lot of this root's contract expiring on `expiry` (its monthly one if both)."""
        if self.expiries(MONTHLY, expiry, expiry).size:
            return contract_lot_size(expiry, True, self.root)
        if self.expiries(WEEKLY, expiry, expiry).size:
            return contract_lot_size(expiry, False, self.root)
        raise ExpiryError(f"no {self.root} option expires on {expiry}: use a date from expiries() or listed()")
