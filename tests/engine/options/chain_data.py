"""Small option chains for tests: minute bars of an underlying and a chain priced from them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from services.engine.core.bars import Bars
from services.engine.core.calendar import day_number

TZ = "Asia/Kolkata"
PriceFn = Callable[[np.ndarray, float, str, np.ndarray], np.ndarray]


def minute_bars(days: list[date], per_day: int = 30, start: float = 21500.0, symbol: str = "NIFTY") -> Bars:
    """`per_day` one-minute bars from 09:15 IST on each day, a gentle deterministic walk around `start`."""
    stamps = pd.DatetimeIndex(np.concatenate([
        pd.date_range(pd.Timestamp(f"{d.isoformat()} 09:15", tz=TZ), periods=per_day, freq="1min").as_unit("ns")
        for d in days]))
    n = len(stamps)
    close = start + 40.0 * np.sin(np.arange(n) / 7.0) + np.arange(n) * 0.5
    open_ = np.concatenate(([start], close[:-1]))
    high = np.maximum(open_, close) + 3.0
    low = np.minimum(open_, close) - 3.0
    frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": 100.0}, index=stamps)
    return Bars.from_frame(frame, symbol, TZ, "1m")


def sample_price(spot: np.ndarray, strike: float, option_type: str, days_left: np.ndarray) -> np.ndarray:
    """Intrinsic value plus a time value that shrinks away from the money and towards expiry."""
    intrinsic = np.maximum(spot - strike, 0.0) if option_type == "CE" else np.maximum(strike - spot, 0.0)
    time_value = 0.004 * spot * np.sqrt(days_left + 1.0) * np.exp(-(((strike - spot) / (0.01 * spot)) ** 2))
    return np.maximum(np.round((intrinsic + time_value) / 0.05) * 0.05, 0.05)


def sample_chain(bars: Bars, expiries: list[date], strikes: np.ndarray, *, price_fn: PriceFn | None = None,
                 drop: list[tuple] | None = None) -> pd.DataFrame:
    """One row per contract and bar up to its expiry day, in bar-then-contract order (as vendors dump them).

    drop: (expiry, strike, option_type, bar index) rows to leave out.
    """
    price = price_fn or sample_price
    dropped = {(e, float(k), t, int(b)) for e, k, t, b in (drop or [])}
    local = bars.local_index
    parts = []
    for expiry in expiries:
        live = np.flatnonzero(bars.day <= day_number(expiry))
        days_left = (day_number(expiry) - bars.day[live]).astype(np.float64)
        for strike in np.asarray(strikes, dtype=np.float64):
            for option_type in ("CE", "PE"):
                at = {name: price(getattr(bars, name)[live], float(strike), option_type, days_left)
                      for name in ("open", "high", "low", "close")}
                keep = np.array([(expiry, float(strike), option_type, int(b)) not in dropped for b in live], bool)
                parts.append(pd.DataFrame({
                    "bar": live[keep], "timestamp": local[live[keep]], "expiry": expiry, "strike": strike,
                    "option_type": option_type, "open": at["open"][keep], "close": at["close"][keep],
                    "high": np.maximum.reduce(list(at.values()))[keep],
                    "low": np.minimum.reduce(list(at.values()))[keep],
                    "volume": 10.0, "open_interest": 1000.0}))
    frame = pd.concat(parts, ignore_index=True)
    return frame.sort_values(["bar", "expiry", "strike", "option_type"], kind="stable", ignore_index=True)


def write_sample_chain(path: Path, bars: Bars, expiries: list[date], strikes: np.ndarray, *,
                       price_fn: PriceFn | None = None, drop: list[tuple] | None = None,
                       naive: bool = False) -> pd.DataFrame:
    """Writes `sample_chain` as Parquet (.parquet) or CSV (.csv, .csv.gz) and returns it (with its bar column).

    CSV timestamps are ISO 8601 with the UTC offset, or exchange-local without one when `naive`.
    """
    frame = sample_chain(bars, expiries, strikes, price_fn=price_fn, drop=drop)
    out = frame.drop(columns=["bar"])
    if path.name.endswith((".parquet", ".pq")):
        out.to_parquet(path, index=False)
    else:
        stamps = pd.DatetimeIndex(out["timestamp"])
        text = stamps.strftime("%Y-%m-%d %H:%M:%S")
        if not naive:
            offset = stamps.strftime("%z")
            text = text + offset.str[:3] + ":" + offset.str[3:]  # +0530 -> +05:30
        out = out.assign(timestamp=text, expiry=[e.isoformat() for e in out["expiry"]])
        out.to_csv(path, index=False)
    return frame
