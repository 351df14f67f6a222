"""Trading days come from exchange-calendars: known NSE holidays, ranges, bad codes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.engine.core.calendar import (calendar_names, calendar_tz, check_calendar, day_date, day_number,
                                           is_trading_day, session_days, trading_days)


@pytest.mark.parametrize("day, open_", [
    ("2024-01-25", True),    # Thursday before Republic Day
    ("2024-01-26", False),   # Republic Day
    ("2024-01-22", False),   # special holiday (Ram Mandir consecration)
    ("2024-03-25", False),   # Holi
    ("2024-08-15", False),   # Independence Day, a Thursday
    ("2023-10-02", False),   # Gandhi Jayanti, a Monday
    ("2024-12-25", False),   # Christmas
    ("2024-01-27", False),   # Saturday
    ("2016-01-01", True),    # NSE trades on 1 January
    ("2020-03-23", True),    # the COVID crash Monday
])
def test_known_nse_sessions_and_holidays(day, open_):
    d = date.fromisoformat(day)
    assert is_trading_day("XBOM", d) is open_
    assert (d in trading_days("XBOM", d - timedelta(days=3), d + timedelta(days=3))) is open_


def test_january_2024_on_xbom():
    days = trading_days("XBOM", date(2024, 1, 1), date(2024, 1, 31))
    assert days[0] == date(2024, 1, 1) and days[-1] == date(2024, 1, 31)
    assert date(2024, 1, 26) not in days and date(2024, 1, 22) not in days
    assert len(days) == 23 - 2  # 23 weekdays, two holidays
    assert all(d.weekday() < 5 for d in days)
    assert days == sorted(set(days))


def test_range_is_inclusive_and_empty_when_reversed():
    d = date(2024, 1, 25)
    assert trading_days("XBOM", d, d) == [d]
    assert trading_days("XBOM", date(2024, 1, 26), date(2024, 1, 28)) == []
    assert trading_days("XBOM", date(2024, 2, 1), date(2024, 1, 1)) == []


def test_ten_years_of_sessions_match_session_days():
    days = trading_days("XBOM", date(2016, 1, 1), date(2025, 12, 31))
    assert 2400 < len(days) < 2500
    numbers = session_days("XBOM", date(2016, 1, 1), date(2025, 12, 31))
    assert [day_date(n) for n in numbers] == days
    assert all(day_number(d) == n for d, n in zip(days, numbers))


def test_results_are_cached_but_callers_get_their_own_list():
    a = trading_days("XBOM", date(2024, 1, 1), date(2024, 1, 31))
    a.clear()
    assert len(trading_days("XBOM", date(2024, 1, 1), date(2024, 1, 31))) == 21


def test_range_beyond_the_default_window_widens_the_calendar():
    # exchange-calendars builds ~20 years back by default; older dates need a wider build.
    days = trading_days("XNYS", date(1995, 1, 1), date(1995, 12, 31))
    assert date(1995, 7, 4) not in days and date(1995, 7, 5) in days
    assert len(days) == 252


def test_range_outside_the_calendars_bounds_is_refused():
    with pytest.raises(ValueError, match="XBOM knows sessions from .* choose dates within"):
        trading_days("XBOM", date(2035, 1, 1), date(2035, 2, 1))


def test_unknown_calendar_lists_valid_codes():
    with pytest.raises(ValueError, match=r"unknown exchange calendar 'NSEX'.*XBOM.*XNYS"):
        trading_days("NSEX", date(2024, 1, 1), date(2024, 1, 31))
    with pytest.raises(ValueError, match="unknown exchange calendar"):
        calendar_tz("nope")
    assert check_calendar("XBOM") == "XBOM"
    assert "XBOM" in calendar_names() and "XNYS" in calendar_names()


def test_time_zones():
    assert calendar_tz("XBOM") == "Asia/Kolkata"
    assert calendar_tz("XNYS") == "America/New_York"
