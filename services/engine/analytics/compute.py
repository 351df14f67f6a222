"""The figures of analytics.proto as pure functions of arrays (numpy and pandas, no I/O).

Inputs are a run's daily equity (at each trading day's close, after `initial_capital`) and its
closed trades (option runs: positions). Conventions follow `core/metrics.py`:
- The curve starts with the initial capital, so the first day's result is a daily return;
  once equity is 0 or below, later daily returns are taken as 0.
- Percentages are in percent; losses and drawdowns are negative.
- Standard deviations of daily returns are sample ones (ddof 1) and are annualized by sqrt(252).
Everything undefined (one day, returns that never vary) is 0 rather than NaN: every value a
message carries is finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

PERIODS_PER_YEAR = 252
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# ---- returns -------------------------------------------------------------------------------

def curve_of(equity: np.ndarray, initial_capital: float) -> np.ndarray:
    """The equity curve with the initial capital before the first day (length days + 1)."""
    return np.concatenate(([float(initial_capital)], np.asarray(equity, np.float64)))


def daily_returns(equity: np.ndarray, initial_capital: float) -> np.ndarray:
    """Daily returns as fractions, one per day (as `core.metrics`: 0 once equity is <= 0)."""
    curve = curve_of(equity, initial_capital)
    prev = curve[:-1]
    change = np.diff(curve)
    return np.divide(change, prev, out=np.zeros_like(change), where=prev > 0)


@dataclass(frozen=True)
class Periods:
    """Monthly (month 1-12) or yearly (month 0) returns, oldest first: one row per period."""

    year: np.ndarray          # int
    month: np.ndarray         # int (0 for years)
    return_pct: np.ndarray    # compounded daily returns, percent
    pnl: np.ndarray           # equity change over the period
    trading_days: np.ndarray  # int
    trades: np.ndarray        # int: trades closed on the period's days


def period_returns(days: np.ndarray, equity: np.ndarray, initial_capital: float,
                   trade_day: np.ndarray, yearly: bool = False) -> Periods:
    """Returns per calendar month (or year) of the trading days.

    days: datetime64[D] (ascending) of the equity values; trade_day: for each closed trade, the
    index in `days` of the day it closed.
    """
    d = np.asarray(days, "datetime64[D]")
    r = daily_returns(equity, initial_capital)
    pnl_day = np.diff(curve_of(equity, initial_capital))
    if not len(d):
        empty = np.empty(0, np.int64)
        return Periods(empty, empty, np.empty(0), np.empty(0), empty, empty)
    unit = "Y" if yearly else "M"
    key = d.astype(f"datetime64[{unit}]").astype(np.int64)
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    growth = np.multiply.reduceat(1.0 + r, starts)
    lengths = np.diff(np.append(starts, len(d)))
    period_of_day = np.repeat(np.arange(len(starts)), lengths)
    trades = np.bincount(period_of_day[np.asarray(trade_day, np.int64)], minlength=len(starts)) \
        if len(trade_day) else np.zeros(len(starts), np.int64)
    k = key[starts]
    year = k + 1970 if yearly else k // 12 + 1970
    month = np.zeros(len(k), np.int64) if yearly else k % 12 + 1
    return Periods(year, month, (growth - 1.0) * 100.0, np.add.reduceat(pnl_day, starts), lengths, trades)


@dataclass(frozen=True)
class Rolling:
    """The rolling window ending on each day from the window's last day on."""

    index: np.ndarray         # indexes into the days
    sharpe: np.ndarray
    volatility_pct: np.ndarray
    return_pct: np.ndarray


def rolling(returns: np.ndarray, window: int) -> Rolling:
    """Rolling Sharpe (mean / sample std x sqrt(252); 0 when the window's returns do not vary),
    annualized volatility and compounded return over `window` daily returns."""
    r = pd.Series(np.asarray(returns, np.float64))
    n = len(r)
    if n < window:
        e = np.empty(0)
        return Rolling(np.empty(0, np.int64), e, e, e)
    roll = r.rolling(window)
    mean = roll.mean().to_numpy()[window - 1:]
    std = roll.std(ddof=1).to_numpy()[window - 1:]
    flat = (roll.max() - roll.min()).to_numpy()[window - 1:] == 0
    std = np.where(flat, 0.0, np.maximum(std, 0.0))  # (a rolling variance can round below 0)
    annual = math.sqrt(PERIODS_PER_YEAR)
    sharpe = np.divide(mean, std, out=np.zeros_like(mean), where=std > 0) * annual
    # Compounded: the sum of log growth (a day that lost everything makes the window -100 %).
    gone = r.to_numpy() <= -1.0
    logs = pd.Series(np.log1p(np.where(gone, 0.0, r.to_numpy())))
    total = logs.rolling(window).sum().to_numpy()[window - 1:]
    lost = pd.Series(gone.astype(np.float64)).rolling(window).sum().to_numpy()[window - 1:] > 0
    ret = np.where(lost, -100.0, np.expm1(total) * 100.0)
    return Rolling(np.arange(window - 1, n), sharpe, std * annual * 100.0, ret)


# ---- the distribution of daily returns ------------------------------------------------------

def _normal_cdf(x: np.ndarray) -> np.ndarray:
    erfc = np.frompyfunc(math.erfc, 1, 1)
    return 0.5 * erfc(-np.asarray(x, np.float64) / math.sqrt(2.0)).astype(np.float64)


@dataclass(frozen=True)
class Distribution:
    bin_edges: np.ndarray
    counts: np.ndarray
    normal_counts: np.ndarray
    days: int
    mean_pct: float
    std_pct: float
    skew: float
    kurtosis: float
    min_pct: float
    max_pct: float
    var_95_pct: float
    cvar_95_pct: float
    jarque_bera: float
    jarque_bera_p_value: float


def distribution(returns_pct: np.ndarray, bins: int) -> Distribution:
    """Histogram of daily returns (percent) over [min, max] in `bins` equal bins, the expected
    count per bin under N(mean, sample std), and the moments.

    Skew and kurtosis are the moment estimators (g1 = m3 / m2^1.5, excess g2 = m4 / m2^2 - 3,
    central moments over n) that the Jarque-Bera statistic n/6 (g1^2 + g2^2 / 4) is built from;
    its p-value is the chi-squared (2 degrees of freedom) survival function, exp(-JB / 2).
    VaR 95 is the 5th percentile (linear interpolation), CVaR the mean of the returns at or
    below it (as Metrics.var_95_pct / cvar_95_pct). Returns that never vary: moments 0, p 1.
    """
    x = np.asarray(returns_pct, np.float64)
    n = len(x)
    if n == 0:
        z = np.zeros(bins)
        return Distribution(np.linspace(-0.5, 0.5, bins + 1), z.astype(np.int64), z, 0, 0.0, 0.0, 0.0, 0.0,
                            0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    counts, edges = np.histogram(x, bins=bins)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    dev = x - mean
    m2 = float(np.mean(dev ** 2))
    if std > 0 and m2 > 0:
        skew = float(np.mean(dev ** 3)) / m2 ** 1.5
        kurt = float(np.mean(dev ** 4)) / m2 ** 2 - 3.0
        cdf = _normal_cdf((edges - mean) / std)
        normal = n * np.diff(cdf)
    else:
        skew = kurt = 0.0
        normal = np.zeros(bins)
        normal[min(int(np.searchsorted(edges, mean, side="right")) - 1, bins - 1)] = n
    jb = n / 6.0 * (skew ** 2 + kurt ** 2 / 4.0)
    var = float(np.percentile(x, 5.0))
    tail = x[x <= var]
    return Distribution(edges, counts.astype(np.int64), normal, n, mean, std, skew, kurt, float(x.min()),
                        float(x.max()), var, float(tail.mean()) if len(tail) else var, jb, math.exp(-jb / 2.0))


# ---- drawdown periods -----------------------------------------------------------------------

@dataclass(frozen=True)
class Drawdowns:
    """Episodes below the running peak, deepest first. Indexes are into the curve (0: the
    initial capital before the first day, k: day k - 1); `recovery` is -1 when not recovered."""

    start: np.ndarray
    trough: np.ndarray
    recovery: np.ndarray
    depth_pct: np.ndarray
    length_days: np.ndarray
    decline_days: np.ndarray
    recovery_days: np.ndarray


def drawdown_periods(equity: np.ndarray, initial_capital: float) -> Drawdowns:
    """Every fall from a peak of the curve to its lowest point and back (the last one possibly
    not back by the run's end). Lengths are in trading days (points of the curve)."""
    curve = curve_of(equity, initial_capital)
    peak = np.maximum.accumulate(curve)
    dd = np.divide(curve, peak, out=np.zeros_like(curve), where=peak > 0) - 1.0
    under = dd < 0
    if not under.any():
        e = np.empty(0, np.int64)
        return Drawdowns(e, e, e, np.empty(0), e, e, e)
    edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
    first = np.flatnonzero(edges == 1)      # first point below the peak
    back = np.flatnonzero(edges == -1)      # first point back at the peak (len(curve): never)
    # The trough: the lowest point of each episode (between episodes dd is 0, so a segment's
    # minimum is its episode's), the first of equal lows.
    seg = np.repeat(np.arange(len(first)), np.diff(np.append(first, len(curve))))
    order = np.lexsort((np.arange(len(dd) - first[0]), dd[first[0]:], seg))
    trough = order[np.concatenate(([0], np.flatnonzero(np.diff(seg[order])) + 1))] + first[0]
    start = first - 1
    recovered = back < len(curve)
    end = np.where(recovered, back, len(curve) - 1)
    depth = dd[trough] * 100.0
    rank = np.lexsort((start, depth))       # deepest first; equal depths by date
    return Drawdowns(start[rank], trough[rank], np.where(recovered, back, -1)[rank], depth[rank],
                     (end - start)[rank], (trough - start)[rank], np.where(recovered, back - trough, 0)[rank])


# ---- closed trades by group -----------------------------------------------------------------

@dataclass(frozen=True)
class Groups:
    key: np.ndarray           # group codes, in output order
    trades: np.ndarray
    pnl: np.ndarray
    avg_pnl: np.ndarray
    win_rate_pct: np.ndarray
    avg_duration_minutes: np.ndarray


def group_stats(codes: np.ndarray, pnl: np.ndarray, duration_minutes: np.ndarray, size: int,
                by_count: bool = False) -> Groups:
    """Trades grouped by an integer code in [0, size): the groups with trades, ascending by code
    (`by_count`: most trades first, equal counts by code)."""
    c = np.asarray(codes, np.int64)
    p = np.asarray(pnl, np.float64)
    count = np.bincount(c, minlength=size)
    total = np.bincount(c, weights=p, minlength=size)
    wins = np.bincount(c, weights=(p > 0).astype(np.float64), minlength=size)
    dur = np.bincount(c, weights=np.asarray(duration_minutes, np.float64), minlength=size)
    keys = np.flatnonzero(count)
    if by_count:
        keys = keys[np.lexsort((keys, -count[keys]))]
    n = count[keys]
    return Groups(keys, n, total[keys], total[keys] / n, wins[keys] / n * 100.0, dur[keys] / n)


# ---- comparison -------------------------------------------------------------------------------

def align_returns(axis: np.ndarray, days: np.ndarray, return_pct: np.ndarray) -> tuple[np.ndarray, int, int]:
    """A run's percent returns on a date axis (ascending, holding all its days): 0 before its
    first day, the last value on or before each date afterwards. Returns (values, first_index,
    last_index)."""
    pos = np.searchsorted(np.asarray(days), np.asarray(axis), side="right") - 1
    values = np.where(pos >= 0, np.asarray(return_pct, np.float64)[np.maximum(pos, 0)], 0.0)
    first = int(np.searchsorted(axis, days[0]))
    last = int(np.searchsorted(axis, days[-1]))
    return values, first, last
