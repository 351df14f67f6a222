"""Regenerate tests/data/daily_ohlc.csv and sma_cross_expected.csv (needs the bench extra).

The expected trades come from backtesting.py's SmaCross (SMA 10/20, exclusive_orders=True,
commission 0.2 %), an implementation independent of ours. Run:
    .venv/bin/python tests/data/make_sma_cross_expected.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def make_prices(n: int = 600, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n)))
    open_ = close * np.exp(rng.normal(0, 0.006, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, n)))
    idx = pd.bdate_range("2020-01-01", periods=n, name="Date")
    df = pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close,
                       "Volume": rng.integers(1_000, 50_000, n)}, index=idx).round(2)
    df["High"] = df[["Open", "High", "Close"]].max(axis=1)
    df["Low"] = df[["Open", "Low", "Close"]].min(axis=1)
    return df


def main() -> None:
    import sys

    sys.path.insert(0, str(HERE.parents[1]))
    from backtesting import Backtest

    from benchmarks.peers import backtesting_sma_cross

    SmaCross = backtesting_sma_cross()
    df = make_prices()
    df.to_csv(HERE / "daily_ohlc.csv", date_format="%Y-%m-%d")
    stats = Backtest(df, SmaCross, cash=100_000, commission=0.002, exclusive_orders=True).run()
    trades = stats["_trades"][["EntryTime", "ExitTime", "Size", "EntryPrice", "ExitPrice"]].copy()
    trades["Side"] = np.where(trades["Size"] > 0, "buy", "sell")
    trades["EntryTime"] = trades["EntryTime"].dt.strftime("%Y-%m-%d")
    trades["ExitTime"] = trades["ExitTime"].dt.strftime("%Y-%m-%d")
    trades[["EntryTime", "ExitTime", "Side", "EntryPrice", "ExitPrice"]].to_csv(
        HERE / "sma_cross_expected.csv", index=False)
    print(f"{len(trades)} trades")


if __name__ == "__main__":
    main()
