"""SIM-NIFTY: synthetic but realistic 1-minute index bars for the NSE session, from a fixed seed.

Daily variance follows GARCH(1,1); each day splits into an overnight gap and 375 minute returns
whose variance is U-shaped over the session; a Brownian bridge pins the path from ~7,900 (2016) to
~24,000 (end of 2025), roughly NIFTY 50's course. Volume is U-shaped too and rises with volatility.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from .bars import Bars
from .calendar import session_days

__all__ = ["SimParams", "SIM_NIFTY", "GENERATOR_VERSION", "generate_sim_nifty"]

GENERATOR_VERSION = 1  # bump when generate_sim_nifty's output changes for the same params


@dataclass(frozen=True)
class SimParams:
    symbol: str = "SIM-NIFTY"
    calendar: str = "XBOM"
    tz: str = "Asia/Kolkata"
    start: date = date(2016, 1, 1)
    end: date = date(2025, 12, 31)
    session_open: str = "09:15"       # first bar's open, exchange-local
    bars_per_day: int = 375           # 09:15 .. 15:29 bar opens
    seed: int = 20160101
    start_level: float = 7900.0       # first bar's open
    end_level: float = 24000.0        # last bar's close (before rounding to the tick)
    tick: float = 0.05
    # GARCH(1,1) on daily log returns: var_t = omega + alpha * r_{t-1}^2 + beta * var_{t-1}
    daily_vol: float = 0.0105         # long-run daily volatility (about 16.7 % a year)
    garch_alpha: float = 0.09
    garch_beta: float = 0.89
    gap_share: float = 0.20           # share of a day's variance in the overnight gap
    tail_df: float = 5.0              # Student-t degrees of freedom of the shocks (fat tails)
    # Intraday U shapes: 1 + open_boost * exp(-i / decay) + close_boost * exp(-(n-1-i) / decay)
    vol_open_boost: float = 2.0
    vol_close_boost: float = 0.8
    volume_open_boost: float = 3.0
    volume_close_boost: float = 2.0
    u_decay: float = 12.0             # minutes
    base_volume: float = 40_000.0     # midday shares per minute at the long-run volatility
    volume_growth: float = 2.5        # volume at the end / at the start
    range_scale: float = 0.8          # bar high/low reach, in minute standard deviations

    @property
    def description(self) -> str:
        last = pd.Timestamp(f"2000-01-01 {self.session_open}") + pd.Timedelta(minutes=self.bars_per_day - 1)
        return (f"Synthetic NIFTY-like index (deterministic, seed {self.seed}): 1-minute bars "
                f"{self.session_open}-{last:%H:%M} {self.tz}, {self.calendar} trading days {self.start}..{self.end}")


SIM_NIFTY = SimParams()


def _u_shape(n: int, open_boost: float, close_boost: float, decay: float) -> np.ndarray:
    i = np.arange(n, dtype=np.float64)
    return 1.0 + open_boost * np.exp(-i / decay) + close_boost * np.exp(-(n - 1 - i) / decay)


def _student(rng: np.random.Generator, df: float, size) -> np.ndarray:
    """Student-t shocks scaled to unit variance."""
    return rng.standard_t(df, size) * np.sqrt((df - 2.0) / df)


def generate_sim_nifty(params: SimParams = SIM_NIFTY) -> Bars:
    """The SIM-NIFTY bars (about 0.92 M for 2016-2025). Same params -> identical arrays."""
    p = params
    rng = np.random.default_rng(p.seed)
    days = session_days(p.calendar, p.start, p.end)
    n_days, m = len(days), p.bars_per_day
    if n_days == 0:
        raise ValueError(f"no {p.calendar} sessions between {p.start} and {p.end}")

    # Bar open times: the session's local open on each day, then one bar a minute.
    opens_local = days.astype("datetime64[D]").astype("datetime64[ns]") + pd.Timedelta(p.session_open + ":00")
    day_open = pd.DatetimeIndex(opens_local).tz_localize(p.tz).as_unit("ns").asi8
    ts = (day_open[:, None] + np.arange(m, dtype=np.int64)[None, :] * 60_000_000_000).ravel()

    # Shocks, all drawn up front in a fixed order (determinism does not depend on the loop below).
    z_gap = _student(rng, p.tail_df, n_days)
    z_min = _student(rng, p.tail_df, (n_days, m))
    z_high = np.abs(rng.standard_normal((n_days, m)))
    z_low = np.abs(rng.standard_normal((n_days, m)))
    z_vol_day = rng.standard_normal(n_days)
    z_vol_bar = rng.standard_normal((n_days, m))

    # Minute variance weights (sum to 1): U-shaped volatility within the session.
    weight = _u_shape(m, p.vol_open_boost, p.vol_close_boost, p.u_decay)
    weight /= weight.sum()
    sqrt_w = np.sqrt(weight)
    intraday = (z_min * sqrt_w).sum(axis=1)  # per day: weighted minute shocks, unit variance
    # Longer breaks (weekends, holidays) carry more news into the gap.
    gap_days = np.diff(days, prepend=days[0] - 1).astype(np.float64)
    gap_scale = np.sqrt(1.0 + 0.15 * (gap_days - 1.0))
    gap_scale[0] = 0.0  # the series starts at start_level

    # GARCH(1,1) over days: a short scalar recursion (n_days steps).
    long_var = p.daily_vol ** 2
    omega = long_var * (1.0 - p.garch_alpha - p.garch_beta)
    var = np.empty(n_days)
    v, r_prev = long_var, 0.0
    g, h = np.sqrt(p.gap_share), np.sqrt(1.0 - p.gap_share)
    for d in range(n_days):
        v = omega + p.garch_alpha * r_prev * r_prev + p.garch_beta * v
        var[d] = v
        r_prev = np.sqrt(v) * (g * gap_scale[d] * z_gap[d] + h * intraday[d])
    sigma_day = np.sqrt(var)

    minute_sigma = sigma_day[:, None] * h * sqrt_w[None, :]
    r_min = minute_sigma * z_min
    gap = np.zeros((n_days, m))
    gap[:, 0] = sigma_day * g * gap_scale * z_gap

    # Brownian bridge: a constant drift per bar so the last close lands on end_level.
    steps = (gap + r_min).ravel()
    drift = (np.log(p.end_level / p.start_level) - steps.sum()) / steps.size
    log_close = np.log(p.start_level) + np.cumsum(steps + drift)
    log_open = np.concatenate(([np.log(p.start_level)], log_close[:-1])) + gap.ravel()
    reach = (p.range_scale * minute_sigma).ravel()
    log_high = np.maximum(log_open, log_close) + reach * z_high.ravel()
    log_low = np.minimum(log_open, log_close) - reach * z_low.ravel()

    # Round to the tick, then make OHLC consistent again.
    per_unit = 1.0 / p.tick
    o, c, hi, lo = (np.round(np.exp(x) * per_unit) for x in (log_open, log_close, log_high, log_low))
    hi = np.maximum(hi, np.maximum(o, c))
    lo = np.minimum(lo, np.minimum(o, c))

    # Volume: U-shaped, higher on volatile days and bars, growing over the years, lognormal noise.
    profile = _u_shape(m, p.volume_open_boost, p.volume_close_boost, p.u_decay)
    growth = np.exp(np.linspace(0.0, np.log(p.volume_growth), n_days))
    day_factor = growth * (sigma_day / p.daily_vol) ** 0.8 * np.exp(0.25 * z_vol_day - 0.03125)
    bar_factor = np.exp(0.35 * z_vol_bar - 0.06125) * (0.75 + 0.25 * np.abs(z_min))
    volume = np.round(p.base_volume * profile[None, :] * day_factor[:, None] * bar_factor).ravel()

    return Bars(p.symbol, p.tz, np.ascontiguousarray(ts, dtype=np.int64), o / per_unit, hi / per_unit,
                lo / per_unit, c / per_unit, np.ascontiguousarray(volume), "1m")
