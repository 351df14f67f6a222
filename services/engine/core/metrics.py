"""Performance metrics: one pure function from the daily equity curve and the closed trades to
the fields of `hindsight.v1.Metrics`. Modelled on backtesting.py's `_stats.compute_stats`.

Every value is finite or NaN, never ±inf: NaN means "undefined for this run" (no trades, no
losing trade, fewer than two days...), so JSON and protobuf consumers need no special cases.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["compute_metrics", "METRIC_FIELDS"]

# In the order of `hindsight.v1.Metrics`; the three counts are ints, the rest floats.
METRIC_FIELDS = (
    "total_return_pct", "cagr_pct", "volatility_ann_pct", "sharpe", "sortino", "calmar",
    "max_drawdown_pct", "max_drawdown_duration_days", "avg_drawdown_pct", "win_rate_pct",
    "profit_factor", "expectancy", "sqn", "avg_win", "avg_loss", "largest_win", "largest_loss",
    "max_consecutive_wins", "max_consecutive_losses", "exposure_time_pct",
    "avg_trade_duration_minutes", "buy_and_hold_return_pct", "var_95_pct", "cvar_95_pct",
    "total_trades", "final_equity", "initial_capital", "avg_drawdown_duration_days",
    "best_day_pct", "worst_day_pct",
)

_INT_FIELDS = frozenset({"max_consecutive_wins", "max_consecutive_losses", "total_trades"})
_NAN = float("nan")
_DAYS_PER_YEAR = 365.25


def compute_metrics(*, equity: np.ndarray, dates: np.ndarray, trade_pnl: np.ndarray,
                    trade_return_pct: np.ndarray, trade_duration_minutes: np.ndarray,
                    exposure_fraction: float, initial_capital: float, first_price: float,
                    last_price: float, periods_per_year: int = 252) -> dict[str, float]:
    """Metrics of one backtest, keyed as `hindsight.v1.Metrics` (so `Metrics(**result)` works).

    equity: float64[D], equity at each trading day's close.  dates: int64[D], those days as
    days since 1970-01-01, strictly increasing (datetime64 is accepted).  trade_*: one value per
    closed trade, in the order they closed: pnl in money net of costs, return in percent,
    duration in minutes.  exposure_fraction: share of bars with a position open, in [0, 1].
    first_price / last_price: the instrument's close at the start and end, for buy-and-hold.

    The curve starts with `initial_capital` on the calendar day before the first date, so the
    first day's result counts as a daily return, as a drawdown and in the CAGR's time span.
    Conventions (see also the module docstring):
    - Percentages are in percent. Drawdowns, VaR and CVaR are negative numbers for losses
      (max_drawdown_pct -12.3 is a 12.3 % fall from the peak); no drawdown reports 0.
    - cagr_pct: calendar time from the day before the first date to the last date, 365.25-day
      years. Volatility, Sharpe and Sortino (rf = 0) use daily returns, sample stdev (ddof 1)
      and sqrt(periods_per_year); they need two days and some variation, else NaN.
    - Drawdown durations are calendar days from the peak to the first close back at it, or to
      the last date while still below. Averages are over drawdown episodes.
    - var_95_pct: 5th percentile of daily returns (linear interpolation); cvar_95_pct: the mean
      of the daily returns at or below it.
    - Trades: a win has pnl > 0, a loss pnl < 0; a break-even trade is neither but counts in
      win_rate's denominator and ends both streaks. avg_loss and largest_loss are negative.
      profit_factor is NaN when there is no losing trade (it would be unbounded).
      With no trades, the trade averages and ratios are NaN and the counts 0.
    - Once equity reaches 0 or below, later daily returns are taken as 0.
    trade_return_pct is checked but no field of Metrics needs it yet.
    """
    eq = _array(equity, "equity")
    days = _dates(dates, len(eq))
    pnl = _array(trade_pnl, "trade_pnl")
    _array(trade_return_pct, "trade_return_pct", len(pnl), "trade_pnl")
    durations = _array(trade_duration_minutes, "trade_duration_minutes", len(pnl), "trade_pnl")
    capital = _finite(initial_capital, "initial_capital")
    if capital <= 0:
        raise ValueError(f"initial_capital must be > 0, got {capital}")
    exposure = _finite(exposure_fraction, "exposure_fraction")
    if not 0.0 <= exposure <= 1.0:
        raise ValueError(f"exposure_fraction is a share of bars in [0, 1], got {exposure}")
    if int(periods_per_year) != periods_per_year or periods_per_year < 1:
        raise ValueError(f"periods_per_year must be a positive whole number, got {periods_per_year!r}")

    curve = np.concatenate(([capital], eq))
    times = np.concatenate(([days[0] - 1], days)) if len(days) else np.zeros(1, np.int64)
    out: dict[str, float] = {}
    out.update(_return_metrics(curve, times, int(periods_per_year)))
    out.update(_drawdown_metrics(curve, times))
    out.update(_trade_metrics(pnl, durations))
    out["calmar"] = (out["cagr_pct"] / -out["max_drawdown_pct"]
                     if out["max_drawdown_pct"] < 0 and math.isfinite(out["cagr_pct"]) else _NAN)
    out["exposure_time_pct"] = exposure * 100.0
    out["buy_and_hold_return_pct"] = _buy_and_hold(first_price, last_price)
    out["final_equity"] = float(curve[-1])
    out["initial_capital"] = capital
    # Plain Python numbers: protobuf int32 fields refuse floats, and JSON encoders numpy scalars.
    return {name: int(out[name]) if name in _INT_FIELDS else float(out[name]) for name in METRIC_FIELDS}


# ---- input checks: say what is wrong and how to fix it -------------------------------------

def _array(values: np.ndarray, name: str, length: int | None = None, like: str = "") -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {a.shape}")
    if length is not None and len(a) != length:
        raise ValueError(f"{name} has {len(a)} values but {like} has {length}: pass one value per closed trade")
    if not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a))[0])
        raise ValueError(f"{name}[{bad}] is {a[bad]}: every value must be finite")
    return a


def _dates(values: np.ndarray, length: int) -> np.ndarray:
    d = np.asarray(values)
    if d.dtype.kind == "M":
        d = d.astype("datetime64[D]").astype(np.int64)
    elif d.dtype.kind not in "iu":
        raise ValueError(f"dates must be int64 days since 1970-01-01 (or datetime64), got dtype {d.dtype}")
    d = d.astype(np.int64)
    if d.shape != (length,):
        raise ValueError(f"dates has shape {d.shape} but equity has {length} values: one date per equity value")
    if length > 1 and not (np.diff(d) > 0).all():
        bad = int(np.flatnonzero(np.diff(d) <= 0)[0]) + 1
        raise ValueError(f"dates must be strictly increasing; dates[{bad}] = {d[bad]} follows {d[bad - 1]}")
    return d


def _finite(value: float, name: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return v


# ---- the parts ---------------------------------------------------------------------------

def _daily_returns(curve: np.ndarray) -> np.ndarray:
    prev = curve[:-1]
    change = curve[1:] - prev
    return np.divide(change, prev, out=np.zeros_like(change), where=prev > 0)


def _return_metrics(curve: np.ndarray, times: np.ndarray, periods_per_year: int) -> dict[str, float]:
    r = _daily_returns(curve)
    n = len(r)
    growth = curve[-1] / curve[0]
    out = {"total_return_pct": (growth - 1.0) * 100.0}
    if n == 0:
        out.update(cagr_pct=_NAN, volatility_ann_pct=_NAN, sharpe=_NAN, sortino=_NAN, var_95_pct=_NAN,
                   cvar_95_pct=_NAN, best_day_pct=_NAN, worst_day_pct=_NAN)
        return out

    years = float(times[-1] - times[0]) / _DAYS_PER_YEAR
    if growth <= 0:
        out["cagr_pct"] = -100.0
    else:
        exponent = math.log(growth) / years
        out["cagr_pct"] = math.expm1(exponent) * 100.0 if exponent < 700 else _NAN  # beyond: overflow

    annual = math.sqrt(periods_per_year)
    mean = float(r.mean())
    if n >= 2:
        std = float(r.std(ddof=1))
        downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
        out["volatility_ann_pct"] = std * annual * 100.0
        # A constant return has a stdev of rounding noise only: no meaningful ratio.
        out["sharpe"] = mean / std * annual if std > 1e-12 * abs(mean) and std > 0 else _NAN
        out["sortino"] = mean / downside * annual if downside > 0 else _NAN
    else:
        out.update(volatility_ann_pct=_NAN, sharpe=_NAN, sortino=_NAN)

    var = float(np.percentile(r, 5.0))
    tail = r[r <= var]  # holds the worst day at least, barring rounding in the interpolation
    out["var_95_pct"] = var * 100.0
    out["cvar_95_pct"] = (float(tail.mean()) if len(tail) else var) * 100.0
    out["best_day_pct"] = float(r.max()) * 100.0
    out["worst_day_pct"] = float(r.min()) * 100.0
    return out


def _drawdown_metrics(curve: np.ndarray, times: np.ndarray) -> dict[str, float]:
    peak = np.maximum.accumulate(curve)  # >= initial capital > 0
    dd = curve / peak - 1.0
    under = dd < 0
    if not under.any():
        return {"max_drawdown_pct": 0.0, "max_drawdown_duration_days": 0.0, "avg_drawdown_pct": 0.0,
                "avg_drawdown_duration_days": 0.0}
    edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)        # first point below the peak; starts - 1 is the peak
    ends = np.flatnonzero(edges == -1)         # first point back at the peak (len: not recovered)
    # Between episodes dd is 0, so each segment's minimum is its episode's depth.
    depths = np.minimum.reduceat(dd, starts)
    durations = times[np.minimum(ends, len(curve) - 1)] - times[starts - 1]
    return {"max_drawdown_pct": float(dd.min()) * 100.0,
            "max_drawdown_duration_days": float(durations.max()),
            "avg_drawdown_pct": float(depths.mean()) * 100.0,
            "avg_drawdown_duration_days": float(durations.mean())}


def _trade_metrics(pnl: np.ndarray, durations: np.ndarray) -> dict[str, float]:
    n = len(pnl)
    wins, losses = pnl > 0, pnl < 0
    gross_win, gross_loss = float(pnl[wins].sum()), float(-pnl[losses].sum())
    std = float(pnl.std(ddof=1)) if n >= 2 else 0.0
    return {
        "win_rate_pct": float(wins.mean()) * 100.0 if n else _NAN,
        "profit_factor": gross_win / gross_loss if gross_loss > 0 else _NAN,
        "expectancy": float(pnl.mean()) if n else _NAN,
        "sqn": math.sqrt(n) * float(pnl.mean()) / std if std > 0 else _NAN,
        "avg_win": float(pnl[wins].mean()) if wins.any() else _NAN,
        "avg_loss": float(pnl[losses].mean()) if losses.any() else _NAN,
        "largest_win": float(pnl.max()) if wins.any() else _NAN,
        "largest_loss": float(pnl.min()) if losses.any() else _NAN,
        "max_consecutive_wins": _longest_run(wins),
        "max_consecutive_losses": _longest_run(losses),
        "avg_trade_duration_minutes": float(durations.mean()) if n else _NAN,
        "total_trades": n,
    }


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def _buy_and_hold(first_price: float, last_price: float) -> float:
    first, last = float(first_price), float(last_price)
    if not (math.isfinite(first) and math.isfinite(last) and first > 0):
        return _NAN
    return (last / first - 1.0) * 100.0
