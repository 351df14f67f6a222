"""compute_metrics: golden numbers on tiny hand-checked curves, edge cases, and a cross-check
against backtesting.py's compute_stats on a random curve."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from hindsight.v1 import results_pb2
from services.engine.core.metrics import METRIC_FIELDS, compute_metrics

MONDAY = 19_723  # 2024-01-01


def metrics(equity, dates=None, pnl=(), returns=None, durations=None, exposure=0.0, capital=100.0,
            first_price=10.0, last_price=10.0, **kw):
    equity = np.asarray(equity, dtype=np.float64)
    pnl = np.asarray(pnl, dtype=np.float64)
    return compute_metrics(
        equity=equity,
        dates=np.asarray(dates if dates is not None else MONDAY + np.arange(len(equity)), dtype=np.int64),
        trade_pnl=pnl,
        trade_return_pct=np.zeros(len(pnl)) if returns is None else np.asarray(returns, np.float64),
        trade_duration_minutes=np.full(len(pnl), 30.0) if durations is None else np.asarray(durations, np.float64),
        exposure_fraction=exposure, initial_capital=capital, first_price=first_price, last_price=last_price, **kw)


def test_fields_are_exactly_the_proto_message():
    assert METRIC_FIELDS == tuple(f.name for f in results_pb2.Metrics.DESCRIPTOR.fields)
    m = metrics([100.0, 101.0], pnl=[1.0])
    assert tuple(m) == METRIC_FIELDS
    msg = results_pb2.Metrics(**m)  # ints where the proto says int32
    assert msg.total_trades == 1 and msg.final_equity == 101.0


# ---- golden: equity [100, 110, 99, 120] from 100 ------------------------------------------

def test_golden_equity_curve():
    dates = [MONDAY, MONDAY + 1, MONDAY + 2, MONDAY + 5]  # with a calendar gap before the last
    m = metrics([100.0, 110.0, 99.0, 120.0], dates=dates, exposure=0.25, first_price=50.0, last_price=55.0)
    r = [0.0, 0.1, -0.1, 120 / 99 - 1]  # the first day is measured against initial capital
    mean = sum(r) / 4
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 3)
    downside = math.sqrt((0.1 ** 2) / 4)

    assert m["total_return_pct"] == pytest.approx(20.0)
    # 100 -> 120 over 6 calendar days (from the day before the first date): 1.2 ** (365.25 / 6)
    assert m["cagr_pct"] == pytest.approx((1.2 ** (365.25 / 6) - 1) * 100)
    assert m["volatility_ann_pct"] == pytest.approx(std * math.sqrt(252) * 100)
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252))
    assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(252))
    assert m["max_drawdown_pct"] == pytest.approx(-10.0)          # 110 -> 99
    assert m["max_drawdown_duration_days"] == 4.0                 # peak Tue, back above on day +5
    assert m["avg_drawdown_pct"] == pytest.approx(-10.0)
    assert m["avg_drawdown_duration_days"] == 4.0
    assert m["calmar"] == pytest.approx(m["cagr_pct"] / 10.0)
    assert m["best_day_pct"] == pytest.approx(100 * 21 / 99)
    assert m["worst_day_pct"] == pytest.approx(-10.0)
    # sorted returns -0.1, 0, 0.1, 0.21: the 5th percentile sits 0.15 of the way from -0.1 to 0
    assert m["var_95_pct"] == pytest.approx(-8.5)
    assert m["cvar_95_pct"] == pytest.approx(-10.0)
    assert m["final_equity"] == 120.0 and m["initial_capital"] == 100.0
    assert m["exposure_time_pct"] == 25.0
    assert m["buy_and_hold_return_pct"] == pytest.approx(10.0)


def test_golden_trades():
    pnl = [10.0, -5.0, 20.0, 0.0, -5.0, -10.0, 15.0]  # W L W even L L W
    m = metrics([100.0, 125.0], pnl=pnl, durations=[60, 30, 90, 15, 45, 30, 120])
    assert m["total_trades"] == 7
    assert m["win_rate_pct"] == pytest.approx(300 / 7)           # break-even counts in the denominator
    assert m["profit_factor"] == pytest.approx(45 / 20)
    assert m["expectancy"] == pytest.approx(25 / 7)
    assert m["avg_win"] == pytest.approx(15.0)
    assert m["avg_loss"] == pytest.approx(-20 / 3)
    assert m["largest_win"] == 20.0 and m["largest_loss"] == -10.0
    assert m["max_consecutive_wins"] == 1                         # the break-even ends the streak
    assert m["max_consecutive_losses"] == 2
    assert m["avg_trade_duration_minutes"] == pytest.approx(390 / 7)
    mean = 25 / 7
    std = math.sqrt(sum((p - mean) ** 2 for p in pnl) / 6)
    assert m["sqn"] == pytest.approx(math.sqrt(7) * mean / std)


def test_drawdown_episodes_and_an_unrecovered_end():
    # from 100: 90 (day 0) back to 100 (day 2); 120 (day 3); 108 (day 4), 96 (day 7) still below at the end
    dates = [MONDAY, MONDAY + 1, MONDAY + 2, MONDAY + 3, MONDAY + 4, MONDAY + 7]
    m = metrics([90.0, 95.0, 100.0, 120.0, 108.0, 96.0], dates=dates)
    # episode 1: peak = initial capital on the day before day 0, recovered on day 2 -> 3 days, -10 %
    # episode 2: peak day 3, not recovered by day 7 -> 4 days, -20 %
    assert m["max_drawdown_pct"] == pytest.approx(-20.0)
    assert m["avg_drawdown_pct"] == pytest.approx(-15.0)
    assert m["max_drawdown_duration_days"] == 4.0
    assert m["avg_drawdown_duration_days"] == 3.5


def test_longest_streaks():
    m = metrics([100.0], pnl=[1, 2, 3, -1, 4, -1, -2, -3, -4, 5, 6])
    assert (m["max_consecutive_wins"], m["max_consecutive_losses"]) == (3, 4)


# ---- edge cases: never raise, never warn (warnings are errors here) -------------------------

def test_no_trades():
    m = metrics([100.0, 102.0, 101.0])
    assert m["total_trades"] == 0
    assert m["max_consecutive_wins"] == 0 and m["max_consecutive_losses"] == 0
    for name in ("win_rate_pct", "profit_factor", "expectancy", "sqn", "avg_win", "avg_loss", "largest_win",
                 "largest_loss", "avg_trade_duration_minutes"):
        assert math.isnan(m[name]), name
    assert m["total_return_pct"] == pytest.approx(1.0)


def test_all_winners_and_all_losers():
    wins = metrics([110.0], pnl=[4.0, 6.0])
    assert wins["win_rate_pct"] == 100.0
    assert math.isnan(wins["profit_factor"])  # no losses: unbounded, reported as NaN
    assert math.isnan(wins["avg_loss"]) and math.isnan(wins["largest_loss"])
    assert wins["max_consecutive_losses"] == 0 and wins["max_consecutive_wins"] == 2
    losses = metrics([90.0], pnl=[-4.0, -6.0])
    assert losses["win_rate_pct"] == 0.0
    assert losses["profit_factor"] == 0.0
    assert math.isnan(losses["avg_win"]) and math.isnan(losses["largest_win"])


def test_one_trade_has_no_sqn():
    m = metrics([101.0], pnl=[1.0])
    assert math.isnan(m["sqn"]) and m["expectancy"] == 1.0


def test_one_day():
    m = metrics([105.0])
    assert m["total_return_pct"] == pytest.approx(5.0)
    assert m["best_day_pct"] == pytest.approx(5.0) and m["worst_day_pct"] == pytest.approx(5.0)
    assert m["var_95_pct"] == pytest.approx(5.0) and m["cvar_95_pct"] == pytest.approx(5.0)
    assert m["cagr_pct"] == pytest.approx((1.05 ** 365.25 - 1) * 100)
    for name in ("volatility_ann_pct", "sharpe", "sortino", "calmar"):
        assert math.isnan(m[name]), name
    assert m["max_drawdown_pct"] == 0.0 and m["max_drawdown_duration_days"] == 0.0


def test_flat_equity():
    m = metrics(np.full(30, 100.0))
    assert m["total_return_pct"] == 0.0 and m["cagr_pct"] == 0.0
    assert m["volatility_ann_pct"] == 0.0
    assert math.isnan(m["sharpe"]) and math.isnan(m["sortino"]) and math.isnan(m["calmar"])
    assert m["max_drawdown_pct"] == 0.0 and m["avg_drawdown_pct"] == 0.0
    assert m["max_drawdown_duration_days"] == 0.0 and m["avg_drawdown_duration_days"] == 0.0
    assert m["var_95_pct"] == 0.0 and m["cvar_95_pct"] == 0.0


def test_no_days():
    m = compute_metrics(equity=np.empty(0), dates=np.empty(0, np.int64), trade_pnl=np.empty(0),
                        trade_return_pct=np.empty(0), trade_duration_minutes=np.empty(0), exposure_fraction=0.0,
                        initial_capital=1000.0, first_price=1.0, last_price=1.0)
    assert m["final_equity"] == 1000.0 and m["total_return_pct"] == 0.0 and m["total_trades"] == 0
    assert math.isnan(m["cagr_pct"]) and math.isnan(m["sharpe"]) and math.isnan(m["var_95_pct"])
    assert m["max_drawdown_pct"] == 0.0


def test_equity_wiped_out():
    m = metrics([50.0, 0.0, 0.0, 0.0])
    assert m["total_return_pct"] == -100.0 and m["cagr_pct"] == -100.0
    assert m["max_drawdown_pct"] == -100.0
    assert m["worst_day_pct"] == -100.0
    assert m["max_drawdown_duration_days"] == 4.0  # never recovered


def test_values_are_finite_or_nan_and_plain_python_numbers():
    for m in (metrics([110.0], pnl=[3.0]), metrics(np.full(5, 100.0)), metrics([1e9], capital=1.0)):
        for name, value in m.items():
            assert type(value) in (float, int), name
            assert not math.isinf(value), name
    assert math.isnan(metrics([1e9], capital=1.0)["cagr_pct"])  # 1e9x in two days overflows: NaN


def test_buy_and_hold_without_a_usable_first_price_is_nan():
    assert math.isnan(metrics([100.0], first_price=0.0, last_price=5.0)["buy_and_hold_return_pct"])
    assert math.isnan(metrics([100.0], first_price=float("nan"))["buy_and_hold_return_pct"])


def test_datetime64_dates_are_accepted():
    d = np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]")
    a = metrics([101.0, 99.0], dates=d)
    b = metrics([101.0, 99.0], dates=[MONDAY, MONDAY + 1])
    assert a == pytest.approx(b, nan_ok=True)


@pytest.mark.parametrize("change,message", [
    (dict(dates=[MONDAY, MONDAY]), "strictly increasing"),
    (dict(dates=[MONDAY]), "one date per equity value"),
    (dict(equity=[100.0, float("nan")]), r"equity\[1\] is nan"),
    (dict(returns=[1.0, 2.0]), "one value per closed trade"),
    (dict(capital=0.0), "initial_capital must be > 0"),
    (dict(exposure=1.5), r"\[0, 1\]"),
    (dict(periods_per_year=0), "periods_per_year"),
])
def test_bad_inputs_say_how_to_fix_them(change, message):
    args = dict(equity=[100.0, 101.0], pnl=[1.0]) | change
    with pytest.raises(ValueError, match=message):
        metrics(**args)


# ---- cross-check on a random curve ----------------------------------------------------------

def _random_run(seed: int = 3):
    rng = np.random.default_rng(seed)
    n = 500
    dates = MONDAY + np.cumsum(rng.choice([1, 1, 1, 1, 3], size=n))  # weekday-ish gaps
    equity = 10_000 * np.cumprod(1 + rng.normal(0.0004, 0.01, n))
    pnl = rng.normal(5, 50, 120).round(2)
    pnl[::17] = 0.0
    return dates, equity, pnl


def test_cross_check_against_backtesting_py():
    from backtesting._stats import compute_stats

    dates, equity, pnl = _random_run()
    capital = 10_000.0
    m = metrics(equity, dates=dates, pnl=pnl, returns=pnl / 100, durations=np.full(len(pnl), 60.0), capital=capital)

    # backtesting.py's curve is ours: initial capital on the day before the first date.
    index = pd.DatetimeIndex((np.r_[dates[0] - 1, dates]).astype("datetime64[D]").astype("datetime64[ns]"))
    curve = np.r_[capital, equity]
    trades = pd.DataFrame({"PnL": pnl, "ReturnPct": pnl / 100, "EntryBar": 0, "ExitBar": 0,
                           "Duration": pd.to_timedelta(np.full(len(pnl), 60.0), unit="min")})
    ohlc = pd.DataFrame({"Close": np.linspace(100, 110, len(index))}, index=index)
    with warnings.catch_warnings():  # the reference's own warnings are not ours to fix
        warnings.simplefilter("ignore")
        s = compute_stats(trades, curve, ohlc, None)

    assert m["total_return_pct"] == pytest.approx(s["Return [%]"], rel=1e-12)
    assert m["cagr_pct"] == pytest.approx(s["CAGR [%]"], rel=1e-9)
    assert m["max_drawdown_pct"] == pytest.approx(s["Max. Drawdown [%]"], rel=1e-12)
    assert m["avg_drawdown_pct"] == pytest.approx(s["Avg. Drawdown [%]"], rel=1e-12)
    assert m["max_drawdown_duration_days"] == s["Max. Drawdown Duration"].days
    assert m["avg_drawdown_duration_days"] == pytest.approx(s["Avg. Drawdown Duration"] / pd.Timedelta(days=1),
                                                            abs=1.0)  # theirs is rounded up to whole days
    assert m["win_rate_pct"] == pytest.approx(s["Win Rate [%]"], rel=1e-12)
    assert m["sqn"] == pytest.approx(s["SQN"], rel=1e-12)
    assert m["total_trades"] == s["# Trades"]
    assert m["final_equity"] == pytest.approx(s["Equity Final [$]"])


def test_cross_check_ratios_against_pandas_formulas():
    dates, equity, pnl = _random_run(seed=8)
    m = metrics(equity, dates=dates, pnl=pnl, capital=10_000.0)
    r = pd.Series(np.r_[10_000.0, equity]).pct_change().dropna()
    assert m["sharpe"] == pytest.approx(r.mean() / r.std() * math.sqrt(252), rel=1e-12)
    assert m["volatility_ann_pct"] == pytest.approx(r.std() * math.sqrt(252) * 100, rel=1e-12)
    downside = math.sqrt((r.clip(upper=0) ** 2).mean())
    assert m["sortino"] == pytest.approx(r.mean() / downside * math.sqrt(252), rel=1e-12)
    assert m["var_95_pct"] == pytest.approx(r.quantile(0.05) * 100, rel=1e-12)
    assert m["cvar_95_pct"] == pytest.approx(r[r <= r.quantile(0.05)].mean() * 100, rel=1e-12)
    assert m["profit_factor"] == pytest.approx(pnl[pnl > 0].sum() / -pnl[pnl < 0].sum(), rel=1e-12)
    drawdown = np.r_[10_000.0, equity] / np.maximum.accumulate(np.r_[10_000.0, equity]) - 1
    assert m["max_drawdown_pct"] == pytest.approx(drawdown.min() * 100, rel=1e-12)
    assert m["sharpe"] == pytest.approx(metrics(equity, dates=dates, capital=10_000.0, periods_per_year=365)["sharpe"]
                                        * math.sqrt(252 / 365), rel=1e-12)
