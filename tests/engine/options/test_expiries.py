"""NIFTY expiries and lot sizes: seeds' dates, XBOM holiday shifts, the 2025 Tuesday switch, offsets, lots."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import pytest

from services.engine.core.calendar import day_date, day_number, is_trading_day, session_days
from services.engine.options.expiries import (CHANGES, EXPIRY_KINDS, MAX_OFFSET, MONTHLY, WEEKLY, ExpiryCalendar,
                                              ExpiryError, contract_lot_size, lot_size_on, options_listed_from,
                                              weekly_listed_from)

D = date.fromisoformat


@pytest.fixture(scope="module")
def cal() -> ExpiryCalendar:
    return ExpiryCalendar()


def _dates(days: np.ndarray) -> list[str]:
    return [day_date(d).isoformat() for d in days]


def test_kinds_and_offsets():
    assert EXPIRY_KINDS == (WEEKLY, MONTHLY) == ("weekly", "monthly")
    assert MAX_OFFSET == {WEEKLY: 3, MONTHLY: 2}
    assert weekly_listed_from() == D("2019-02-11") and options_listed_from() == D("2001-06-04")
    assert issubclass(ExpiryError, ValueError)


def test_the_seeds_expiries(cal):
    assert _dates(cal.expiries(WEEKLY, D("2024-10-01"), D("2024-11-10"))) == [
        "2024-10-03", "2024-10-10", "2024-10-17", "2024-10-24", "2024-10-31", "2024-11-07"]
    assert _dates(cal.expiries(MONTHLY, D("2024-10-01"), D("2024-11-10"))) == ["2024-10-31"]
    assert cal.listed(WEEKLY, D("2024-10-14")) == D("2024-10-17")
    assert cal.listed(MONTHLY, D("2024-10-14")) == D("2024-10-31")
    assert cal.listed(WEEKLY, D("2024-10-25")) == D("2024-10-31")  # the monthly week's weekly is the monthly
    assert cal.listed(WEEKLY, D("2024-11-01")) == D("2024-11-07")


def test_an_expiry_day_still_lists_itself(cal):
    assert cal.listed(WEEKLY, D("2024-10-17")) == D("2024-10-17")
    assert cal.listed(WEEKLY, D("2024-10-18")) == D("2024-10-24")
    assert cal.listed(MONTHLY, D("2024-10-31")) == D("2024-10-31")
    assert cal.listed(MONTHLY, D("2024-11-01")) == D("2024-11-28")


@pytest.mark.parametrize("kind, offset, expected", [
    (WEEKLY, 0, "2024-10-17"), (WEEKLY, 1, "2024-10-24"), (WEEKLY, 2, "2024-10-31"), (WEEKLY, 3, "2024-11-07"),
    (MONTHLY, 0, "2024-10-31"), (MONTHLY, 1, "2024-11-28"), (MONTHLY, 2, "2024-12-26"),
])
def test_offsets(cal, kind, offset, expected):
    assert cal.listed(kind, D("2024-10-14"), offset) == D(expected)


@pytest.mark.parametrize("kind, offset", [(WEEKLY, 4), (MONTHLY, 3), (WEEKLY, -1), (MONTHLY, -1), (WEEKLY, True),
                                          (MONTHLY, 1.0)])
def test_offsets_beyond_what_nse_lists_are_refused(cal, kind, offset):
    with pytest.raises(ExpiryError, match="offset"):
        cal.listed(kind, D("2024-10-14"), offset)
    with pytest.raises(ExpiryError, match="offset"):
        cal.listed_days(kind, np.array([day_number(D("2024-10-14"))]), offset)


def test_offset_message_names_the_range(cal):
    with pytest.raises(ExpiryError, match=r"weekly expiry offset 4 is out of range: NSE lists the nearest 4 weekly "
                                          r"expiries, so use 0 \(nearest\) to 3"):
        cal.listed(WEEKLY, D("2024-10-14"), 4)


# Nominal expiry days that are XBOM holidays, and the session NIFTY expired on instead.
@pytest.mark.parametrize("kind, nominal, expiry, holiday", [
    (WEEKLY, "2019-03-21", "2019-03-20", "Holi"),
    (WEEKLY, "2024-04-11", "2024-04-10", "Id-ul-Fitr"),
    (WEEKLY, "2024-08-15", "2024-08-14", "Independence Day"),
    (MONTHLY, "2023-03-30", "2023-03-29", "Ram Navami"),
    (MONTHLY, "2023-06-29", "2023-06-28", "Bakri Id"),
    (WEEKLY, "2025-10-21", "2025-10-20", "Diwali Laxmi Pujan (a Tuesday, after the 2025 switch)"),
])
def test_holiday_expiries_move_to_the_previous_session(cal, kind, nominal, expiry, holiday):
    nominal_day, expiry_day = D(nominal), D(expiry)
    assert not is_trading_day("XBOM", nominal_day), f"XBOM should close for {holiday}"
    before = session_days("XBOM", nominal_day - timedelta(days=10), nominal_day)
    assert day_date(before[-1]) == expiry_day  # the previous session, from XBOM itself
    around = _dates(cal.expiries(kind, nominal_day - timedelta(days=3), nominal_day + timedelta(days=3)))
    assert around == [expiry]
    assert cal.listed(kind, expiry_day - timedelta(days=1)) == expiry_day
    assert cal.listed(kind, nominal_day) > nominal_day  # on the holiday itself the contract has gone


def test_every_expiry_is_on_its_weekday_or_the_session_before_a_holiday(cal):
    sessions = set(session_days("XBOM", D("2010-01-01"), D("2026-12-31")).tolist())
    for kind in EXPIRY_KINDS:
        for n in cal.expiries(kind, D("2010-01-01"), D("2026-12-31")):
            d = day_date(n)
            assert n in sessions
            weekday = 1 if d >= D("2025-09-01") else 3
            if d.weekday() != weekday:  # shifted: the nominal day after it is closed, and so is any day between
                nominal = d + timedelta(days=(weekday - d.weekday()) % 7)
                assert nominal - d <= timedelta(days=4)
                assert all(day_number(d + timedelta(days=k)) not in sessions for k in range(1, (nominal - d).days + 1))


def test_monthly_is_the_months_last_expiry_and_is_in_the_weekly_list(cal):
    weekly = cal.expiries(WEEKLY, D("2019-02-11"), D("2026-12-31"))
    monthly = cal.expiries(MONTHLY, D("2019-02-11"), D("2026-12-31"))
    assert set(monthly.tolist()) <= set(weekly.tolist())
    months = [day_date(n).replace(day=1) for n in monthly]
    assert len(set(months)) == len(months) == 95  # Feb 2019 .. Dec 2026
    month_of = {n: day_date(n).replace(day=1) for n in weekly.tolist()}
    for n in monthly.tolist():
        later = [day_date(w) for w in weekly.tolist() if w > n and month_of[w] == month_of[n]]
        # Only next month's first weekly, moved back by a holiday (1 May 2025 expired on 30 April).
        assert all(d.weekday() != 3 and (d + timedelta(days=1)).month != d.month for d in later), later
    assert day_number(D("2025-04-30")) in weekly and cal.listed(MONTHLY, D("2025-04-25")) == D("2025-05-29")
    for a in (weekly, monthly):
        assert a.dtype == np.int64 and np.all(np.diff(a) > 0)


def test_the_september_2025_switch_to_tuesday(cal):
    assert _dates(cal.expiries(WEEKLY, D("2025-08-18"), D("2025-10-10"))) == [
        "2025-08-21", "2025-08-28", "2025-09-02", "2025-09-09", "2025-09-16", "2025-09-23", "2025-09-30",
        "2025-10-07"]  # 2 Oct, a Thursday holiday, no longer matters
    assert D("2025-08-28").weekday() == 3 and D("2025-09-02").weekday() == 1
    assert _dates(cal.expiries(MONTHLY, D("2025-08-01"), D("2025-10-31"))) == ["2025-08-28", "2025-09-30",
                                                                              "2025-10-28"]
    assert cal.listed(WEEKLY, D("2025-08-29")) == D("2025-09-02")
    assert cal.listed(MONTHLY, D("2025-08-29")) == D("2025-09-30")
    assert cal.listed(MONTHLY, D("2025-08-28")) == D("2025-08-28")


def test_weekly_options_before_february_2019_are_an_error(cal):
    with pytest.raises(ExpiryError) as info:
        cal.listed(WEEKLY, D("2018-06-01"))
    assert str(info.value) == ("weekly NIFTY options were first listed on 2019-02-11; 2018-06-01 has only monthly "
                               "expiries: use expiry kind 'monthly' or start the run on or after 2019-02-11")
    with pytest.raises(ExpiryError, match="first listed on 2019-02-11; 2019-02-08"):
        cal.listed(WEEKLY, D("2019-02-08"))
    assert cal.listed(WEEKLY, D("2019-02-11")) == D("2019-02-14")
    assert cal.listed(WEEKLY, D("2019-02-11"), 3) == D("2019-03-07")
    assert cal.listed(MONTHLY, D("2018-06-01")) == D("2018-06-28")
    assert _dates(cal.expiries(WEEKLY, D("2018-01-01"), D("2019-02-28"))) == ["2019-02-14", "2019-02-21",
                                                                             "2019-02-28"]


def test_no_expiries_before_nifty_options_began(cal):
    with pytest.raises(ExpiryError, match="NIFTY options were first listed on 2001-06-04; 2001-06-01"):
        cal.listed(MONTHLY, D("2001-06-01"))
    assert cal.listed(MONTHLY, D("2001-06-04")) == D("2001-06-28")
    days = np.array([day_number(D("2001-06-01")), day_number(D("2001-06-04"))])
    got = cal.listed_days(MONTHLY, days, 0)
    assert got[0] == -1 and _dates(got[1:]) == ["2001-06-28"]


@pytest.mark.parametrize("kind", EXPIRY_KINDS)
@pytest.mark.parametrize("offset", [0, 1])
def test_listed_days_agrees_with_listed_on_every_day_2018_to_2026(cal, kind, offset):
    first, last = D("2018-01-01"), D("2026-11-20")  # monthly offset 1 then needs 2027
    numbers = np.arange(day_number(first), day_number(last) + 1, dtype=np.int64)
    got = cal.listed_days(kind, numbers, offset)
    assert got.dtype == np.int64 and got.shape == numbers.shape
    for n, e in zip(numbers.tolist(), got.tolist()):
        day = day_date(n)
        if kind == WEEKLY and day < D("2019-02-11"):
            assert e == -1
            with pytest.raises(ExpiryError):
                cal.listed(kind, day, offset)
        else:
            assert day_date(e) == cal.listed(kind, day, offset)


def test_listed_days_takes_any_order_and_empty_input_and_refuses_floats(cal):
    days = np.array([day_number(D("2024-11-01")), day_number(D("2018-06-01")), day_number(D("2024-10-14"))])
    assert _dates(cal.listed_days(WEEKLY, days, 0)[[0, 2]]) == ["2024-11-07", "2024-10-17"]
    assert cal.listed_days(WEEKLY, days, 0)[1] == -1
    assert cal.listed_days(MONTHLY, np.empty(0, np.int64), 0).shape == (0,)
    with pytest.raises(ExpiryError, match="must be integers"):
        cal.listed_days(WEEKLY, days.astype(float), 0)


def test_listed_days_is_fast_for_a_decade(cal):
    days = session_days("XBOM", D("2016-01-01"), D("2025-12-31"))
    cal.listed_days(WEEKLY, days, 3)  # warm the cache
    start = time.perf_counter()
    for kind in EXPIRY_KINDS:
        cal.listed_days(kind, days, 1)
    assert time.perf_counter() - start < 0.05


def test_expiries_are_copies_and_ranges_are_inclusive(cal):
    a = cal.expiries(WEEKLY, D("2024-10-17"), D("2024-10-31"))
    assert _dates(a) == ["2024-10-17", "2024-10-24", "2024-10-31"]
    a[:] = 0
    assert _dates(cal.expiries(WEEKLY, D("2024-10-17"), D("2024-10-31")))[0] == "2024-10-17"
    assert cal.expiries(MONTHLY, D("2024-11-01"), D("2024-10-01")).size == 0


def _last_known_weekly(cal: ExpiryCalendar) -> date:
    # The newest expiry the installed exchange-calendars can place (XBOM ends 2026-12-31 in 4.x).
    for year in range(2045, 2025, -1):
        try:
            return day_date(cal.expiries(WEEKLY, date(year, 1, 1), date(year, 12, 31))[-1])
        except ExpiryError:
            continue
    raise AssertionError("no year between 2026 and 2045 is covered")


def test_expiries_past_the_calendar_are_an_error(cal):
    last = _last_known_weekly(cal)
    with pytest.raises(ExpiryError, match="the last day calendar XBOM has sessions for"):
        cal.listed(WEEKLY, last + timedelta(days=1))
    with pytest.raises(ExpiryError, match="the last day calendar XBOM has sessions for"):
        cal.listed_days(WEEKLY, np.array([day_number(last), day_number(last + timedelta(days=1))]), 0)
    with pytest.raises(ExpiryError, match="calendar XBOM has sessions until"):
        cal.expiries(MONTHLY, D("2024-01-01"), D("2100-01-01"))
    with pytest.raises(ExpiryError, match="has no sessions for 2100"):
        cal.listed(MONTHLY, D("2100-01-05"))


@pytest.mark.parametrize("build, problem", [
    (lambda: ExpiryCalendar(root="BANKNIFTY"), "no NSE contract rules for root 'BANKNIFTY': known roots are NIFTY"),
    (lambda: ExpiryCalendar(calendar="XXXX"), "unknown exchange calendar 'XXXX'"),
    (lambda: ExpiryCalendar().listed("daily", D("2024-10-14")), "unknown expiry kind 'daily': use 'weekly' or"),
    (lambda: ExpiryCalendar().expiries("Weekly", D("2024-10-14"), D("2024-10-31")), "unknown expiry kind"),
    (lambda: lot_size_on(D("2024-10-14"), "SIM-NIFTY"), "no NSE contract rules for root 'SIM-NIFTY'"),
])
def test_unknown_roots_calendars_and_kinds(build, problem):
    with pytest.raises(ExpiryError) as info:
        build()
    assert problem in str(info.value)


# Either side of each lot revision: the new lot counts once no old-lot weekly or monthly is left.
@pytest.mark.parametrize("day, lot", [
    ("2010-01-01", 50), ("2014-10-30", 50), ("2014-10-31", 25), ("2015-10-29", 25), ("2015-10-30", 75),
    ("2021-04-30", 75), ("2021-07-22", 75), ("2021-07-23", 50), ("2024-04-25", 50), ("2024-04-26", 25),
    ("2024-11-20", 25), ("2025-01-30", 25), ("2025-01-31", 75), ("2025-10-29", 75), ("2025-12-30", 75),
    ("2025-12-31", 65), ("2026-06-01", 65),
])
def test_lot_size_on(day, lot):
    assert lot_size_on(D(day)) == lot
    assert lot_size_on(D(day), root="NIFTY") == lot


def test_lot_sizes_before_2010_are_not_recorded():
    with pytest.raises(ExpiryError, match="NIFTY lot sizes are recorded from 2010-01-01; 2009-12-31 is earlier"):
        lot_size_on(D("2009-12-31"))


# Each contract's own lot, from the circulars' first weekly / monthly expiries with the new lot.
@pytest.mark.parametrize("expiry, lot", [
    ("2014-10-30", 50), ("2014-11-27", 25), ("2015-10-29", 25), ("2015-11-26", 75),
    ("2021-07-22", 75), ("2021-07-29", 50), ("2021-08-05", 50),
    ("2024-04-25", 50), ("2024-05-02", 25), ("2024-05-30", 25),
    ("2024-11-21", 25), ("2024-12-19", 25), ("2024-12-26", 25), ("2025-01-02", 75), ("2025-01-30", 25),
    ("2025-02-06", 75), ("2025-02-27", 75),
    ("2025-12-23", 75), ("2025-12-30", 75), ("2026-01-06", 65), ("2026-01-27", 65),
])
def test_contract_lot_sizes(cal, expiry, lot):
    assert cal.lot_size(D(expiry)) == lot


def test_contract_lot_size_needs_an_expiry_and_a_kind(cal):
    assert contract_lot_size(D("2025-01-30"), monthly=True) == 25
    assert contract_lot_size(D("2025-01-30"), monthly=False) == 75  # no such weekly: it was the monthly
    with pytest.raises(ExpiryError, match="no NIFTY option expires on 2024-10-18"):
        cal.lot_size(D("2024-10-18"))


def test_each_lot_revision_counts_from_the_session_after_the_last_old_lot_expiry(cal):
    lots = [c for c in CHANGES if c.root == "NIFTY" and c.lot is not None]
    for old, new in zip(lots, lots[1:]):
        end = max(new.lot_weekly_from, new.lot_monthly_from)
        dates = np.union1d(cal.expiries(WEEKLY, old.effective, end), cal.expiries(MONTHLY, old.effective, end))
        last_old = max(day_date(n) for n in dates if cal.lot_size(day_date(n)) == old.lot)
        after = session_days("XBOM", last_old + timedelta(days=1), last_old + timedelta(days=10))
        assert day_date(after[0]) == new.effective, new.circular


def test_every_change_cites_its_source():
    assert all(c.circular.strip() and c.root == "NIFTY" for c in CHANGES)
    assert [c.effective for c in CHANGES] == sorted(c.effective for c in CHANGES)
