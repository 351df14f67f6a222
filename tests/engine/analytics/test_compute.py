"""The pure figures of analytics (services/engine/analytics/compute.py) on hand-built cases,
each against an independent computation (pandas, scipy, or a plain loop written here)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from services.engine.analytics import compute


def _loop_drawdowns(curve: list[float]) -> list[tuple[int, int, int, float]]:
    """(start, trough, recovery or -1, depth %) of each episode, by walking the curve."""
    out, peak_i, in_dd, trough_i = [], 0, False, 0
    for i, v in enumerate(curve):
        if v >= curve[peak_i]:
            if in_dd:
                out.append((peak_i, trough_i, i, (curve[trough_i] / curve[peak_i] - 1) * 100))
                in_dd = False
            peak_i = i
        else:
            if not in_dd:
                in_dd, trough_i = True, i
            elif v < curve[trough_i]:
                trough_i = i
    if in_dd:
        out.append((peak_i, trough_i, -1, (curve[trough_i] / curve[peak_i] - 1) * 100))
    return out


def test_drawdown_periods_of_a_constructed_curve_deepest_first_with_one_unrecovered():
    # Initial capital 100, then days 0..11:
    #   fall 100 → 90 → 95 → 100 (recovered on day 2; 10 %), new peak 110,
    #   fall 110 → 104.5 → 110 (5 %), then 120 and a fall to 96 (20 %) never recovered.
    equity = [90, 95, 100, 110, 104.5, 110, 120, 108, 96, 100, 99, 101]
    dd = compute.drawdown_periods(np.array(equity, float), 100.0)
    curve = [100.0] + equity
    expected = sorted(_loop_drawdowns(curve), key=lambda e: (e[3], e[0]))
    assert [(s, t, r) for s, t, r, _ in expected] == [(7, 9, -1), (0, 1, 3), (4, 5, 6)]
    assert dd.start.tolist() == [e[0] for e in expected]
    assert dd.trough.tolist() == [e[1] for e in expected]
    assert dd.recovery.tolist() == [e[2] for e in expected]
    assert dd.depth_pct == pytest.approx([e[3] for e in expected])
    assert dd.depth_pct.tolist() == pytest.approx([-20.0, -10.0, -5.0])
    # Lengths in curve points: to recovery, or to the run's end when not recovered.
    assert dd.length_days.tolist() == [12 - 7, 3 - 0, 6 - 4]
    assert dd.decline_days.tolist() == [2, 1, 1]
    assert dd.recovery_days.tolist() == [0, 2, 1]


def test_drawdowns_none_when_equity_never_falls_and_first_equal_lows_is_the_trough():
    assert len(compute.drawdown_periods(np.array([100.0, 101, 101, 105]), 100.0).start) == 0
    dd = compute.drawdown_periods(np.array([90.0, 80, 85, 80, 100]), 100.0)
    assert dd.trough.tolist() == [2] and dd.recovery.tolist() == [5]


def test_drawdowns_random_curves_match_the_loop():
    rng = np.random.default_rng(7)
    for _ in range(50):
        equity = 1000 * np.cumprod(1 + rng.normal(0, 0.02, rng.integers(1, 80)))
        dd = compute.drawdown_periods(equity, 1000.0)
        expected = sorted(_loop_drawdowns([1000.0] + equity.tolist()), key=lambda e: (e[3], e[0]))
        got = list(zip(dd.start.tolist(), dd.trough.tolist(), dd.recovery.tolist()))
        assert got == [(s, t, r) for s, t, r, _ in expected]


def test_daily_returns_start_from_the_initial_capital():
    r = compute.daily_returns(np.array([110.0, 99.0, 99.0]), 100.0)
    assert r == pytest.approx([0.10, -0.10, 0.0])


def test_rolling_sharpe_volatility_and_return_equal_pandas():
    rng = np.random.default_rng(3)
    r = rng.normal(0.0005, 0.01, 300)
    window = 20
    got = compute.rolling(r, window)
    s = pd.Series(r)
    mean, std = s.rolling(window).mean(), s.rolling(window).std()
    assert got.index.tolist() == list(range(window - 1, 300))
    assert got.sharpe == pytest.approx((mean / std * math.sqrt(252)).dropna().to_numpy(), rel=1e-9)
    assert got.volatility_pct == pytest.approx((std * math.sqrt(252) * 100).dropna().to_numpy(), rel=1e-9)
    compounded = (1 + s).rolling(window).apply(np.prod, raw=True) - 1
    assert got.return_pct == pytest.approx((compounded * 100).dropna().to_numpy(), rel=1e-9, abs=1e-12)


def test_rolling_is_zero_when_returns_do_not_vary_and_empty_when_shorter_than_the_window():
    r = np.array([0.01] * 5 + [0.0] * 5 + [0.02, -0.01])
    got = compute.rolling(r, 5)
    assert got.sharpe[0] == 0.0 and got.volatility_pct[0] == 0.0  # five equal returns
    assert got.sharpe[5] == 0.0 and got.return_pct[5] == 0.0      # five flat days
    assert got.return_pct[0] == pytest.approx((1.01 ** 5 - 1) * 100)
    assert got.sharpe[-1] != 0.0
    assert len(compute.rolling(r, 13).index) == 0


def test_rolling_return_of_a_window_that_lost_everything_is_minus_100():
    got = compute.rolling(np.array([0.1, -1.0, 0.0, 0.0, 0.0]), 2)
    assert got.return_pct.tolist() == pytest.approx([-100.0, -100.0, 0.0, 0.0])


def test_distribution_counts_sum_to_days_and_moments_equal_scipy():
    rng = np.random.default_rng(11)
    x = rng.standard_t(4, 500) * 0.8 + 0.05
    d = compute.distribution(x, 30)
    counts, edges = np.histogram(x, bins=30)
    assert d.counts.tolist() == counts.tolist() and int(d.counts.sum()) == d.days == 500
    assert d.bin_edges == pytest.approx(edges) and len(d.bin_edges) == 31
    assert d.mean_pct == pytest.approx(x.mean()) and d.std_pct == pytest.approx(x.std(ddof=1))
    assert d.skew == pytest.approx(stats.skew(x, bias=True))
    assert d.kurtosis == pytest.approx(stats.kurtosis(x, fisher=True, bias=True))
    jb = stats.jarque_bera(x)
    assert d.jarque_bera == pytest.approx(jb.statistic) and d.jarque_bera_p_value == pytest.approx(jb.pvalue)
    expected = 500 * np.diff(stats.norm.cdf(edges, loc=x.mean(), scale=x.std(ddof=1)))
    assert d.normal_counts == pytest.approx(expected)
    var = np.percentile(x, 5)
    assert d.var_95_pct == pytest.approx(var) and d.cvar_95_pct == pytest.approx(x[x <= var].mean())
    assert (d.min_pct, d.max_pct) == (x.min(), x.max())


def test_distribution_of_returns_that_never_vary():
    d = compute.distribution(np.zeros(10), 5)
    assert int(d.counts.sum()) == 10 and d.std_pct == 0 and d.skew == 0 and d.kurtosis == 0
    assert d.jarque_bera == 0 and d.jarque_bera_p_value == 1.0
    assert d.normal_counts.sum() == 10  # all of it in the bin holding the mean


def test_monthly_and_yearly_returns_across_month_and_year_boundaries():
    days = np.array(["2023-12-28", "2023-12-29", "2024-01-01", "2024-01-31", "2024-02-01", "2024-02-29"],
                    "datetime64[D]")
    equity = np.array([101.0, 102.0, 100.0, 105.0, 104.0, 110.0])
    trade_day = np.array([0, 1, 1, 3, 5, 5, 5])
    m = compute.period_returns(days, equity, 100.0, trade_day)
    assert list(zip(m.year.tolist(), m.month.tolist())) == [(2023, 12), (2024, 1), (2024, 2)]
    # Compounded daily returns = equity at the period's end over the equity before it.
    assert m.return_pct == pytest.approx([2.0, (105 / 102 - 1) * 100, (110 / 105 - 1) * 100])
    assert m.pnl == pytest.approx([2.0, 3.0, 5.0])
    assert m.trading_days.tolist() == [2, 2, 2] and m.trades.tolist() == [3, 1, 3]
    y = compute.period_returns(days, equity, 100.0, trade_day, yearly=True)
    assert y.year.tolist() == [2023, 2024] and y.month.tolist() == [0, 0]
    assert y.return_pct == pytest.approx([2.0, (110 / 102 - 1) * 100])
    assert y.trading_days.tolist() == [2, 4] and y.trades.tolist() == [3, 4]
    # The same as pandas' resampling of the daily returns.
    r = pd.Series(compute.daily_returns(equity, 100.0), index=pd.DatetimeIndex(days))
    by_month = (1 + r).groupby(r.index.to_period("M")).prod() - 1
    assert m.return_pct == pytest.approx(by_month.to_numpy() * 100)


def test_group_stats_by_weekday_and_hour_and_by_count():
    weekday = np.array([0, 0, 4, 2, 4, 4])
    pnl = np.array([10.0, -5.0, 3.0, 0.0, -1.0, 7.0])
    dur = np.array([1.0, 3.0, 5.0, 7.0, 9.0, 11.0])
    g = compute.group_stats(weekday, pnl, dur, 7)
    frame = pd.DataFrame({"k": weekday, "pnl": pnl, "d": dur}).groupby("k")
    assert g.key.tolist() == [0, 2, 4]
    assert g.trades.tolist() == frame.size().tolist()
    assert g.pnl == pytest.approx(frame.pnl.sum().to_numpy())
    assert g.avg_pnl == pytest.approx(frame.pnl.mean().to_numpy())
    assert g.win_rate_pct == pytest.approx((frame.pnl.apply(lambda s: (s > 0).mean()) * 100).to_numpy())
    assert g.avg_duration_minutes == pytest.approx(frame.d.mean().to_numpy())
    by_count = compute.group_stats(np.array([2, 1, 1, 0, 2, 1]), pnl, dur, 3, by_count=True)
    assert by_count.key.tolist() == [1, 2, 0] and by_count.trades.tolist() == [3, 2, 1]
    ties = compute.group_stats(np.array([5, 3, 5, 3, 9, 1, 1, 0]), np.ones(8), np.ones(8), 10, by_count=True)
    assert ties.key.tolist() == [1, 3, 5, 0, 9]  # most trades first, equal counts by code


def test_align_returns_zero_before_last_value_after_and_carried_between():
    axis = np.array(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"], "datetime64[D]")
    days = np.array(["2024-01-02", "2024-01-04"], "datetime64[D]")
    values, first, last = compute.align_returns(axis, days, np.array([1.5, -2.0]))
    assert values.tolist() == [0.0, 1.5, 1.5, -2.0, -2.0] and (first, last) == (1, 3)
