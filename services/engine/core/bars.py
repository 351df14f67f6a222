"""Bars: the engine's in-memory market data, plain numpy arrays (no pandas in the hot path).

Every loader and the dataset catalog produce a `Bars`; indicators, conditions and kernels
consume its arrays. Timestamps are bar *open* times in UTC nanoseconds; the exchange time
zone turns them into local dates, times of day and weekdays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Bars:
    """OHLCV bars of one symbol, sorted by time, no duplicates, validated.

    ts: int64[n], bar open time, UTC ns.  open/high/low/close/volume: float64[n], contiguous.
    tz: IANA zone of the exchange; all derived calendar fields are exchange-local.
    """

    symbol: str
    tz: str
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    timeframe: str = ""  # e.g. "1m", "1d"; "" when unknown
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    # Derived, exchange-local calendar fields; computed once per Bars and cached.
    def _local(self) -> pd.DatetimeIndex:
        if "local" not in self._cache:
            self._cache["local"] = pd.DatetimeIndex(self.ts.astype("datetime64[ns]"), tz="UTC").tz_convert(self.tz)
        return self._cache["local"]

    @property
    def local_index(self) -> pd.DatetimeIndex:
        """Exchange-local DatetimeIndex (for formatting; not for hot loops)."""
        return self._local()

    @property
    def local_ns(self) -> np.ndarray:
        """int64[n]: exchange-local wall-clock time of each bar, ns since 1970-01-01 (naive).
        Not kept (its day and time of day are)."""
        return self._local().tz_localize(None).values.view(np.int64)

    def _day_and_minute(self) -> None:
        naive = self.local_ns
        day = naive // 86_400_000_000_000
        self._cache["day"] = day
        self._cache["mod"] = (naive - day * 86_400_000_000_000) / 60e9

    @property
    def day(self) -> np.ndarray:
        """int64[n]: exchange-local trading date as days since 1970-01-01."""
        if "day" not in self._cache:
            self._day_and_minute()
        return self._cache["day"]

    @property
    def minute_of_day(self) -> np.ndarray:
        """float64[n]: exchange-local time of day of the bar's open, in minutes (seconds as fractions)."""
        if "mod" not in self._cache:
            self._day_and_minute()
        return self._cache["mod"]

    @property
    def weekday(self) -> np.ndarray:
        """float64[n]: exchange-local day of week, 0 = Monday."""
        if "dow" not in self._cache:
            self._cache["dow"] = ((self.day + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
        return self._cache["dow"]

    def day_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(dates int64[D], starts int64[D+1]): bar ranges per trading day, bars[starts[d]:starts[d+1]]."""
        if "bounds" not in self._cache:
            day = self.day
            if len(day) == 0:
                self._cache["bounds"] = (np.empty(0, np.int64), np.zeros(1, np.int64))
            else:
                change = np.flatnonzero(np.diff(day)) + 1
                starts = np.concatenate(([0], change, [len(day)])).astype(np.int64)
                self._cache["bounds"] = (day[starts[:-1]], starts)
        return self._cache["bounds"]

    def slice(self, start: int, stop: int) -> "Bars":
        """Bars [start, stop), sharing memory and the per-bar fields already derived."""
        out = Bars(self.symbol, self.tz, self.ts[start:stop], self.open[start:stop], self.high[start:stop],
                   self.low[start:stop], self.close[start:stop], self.volume[start:stop], self.timeframe)
        for key in ("local", "day", "mod", "dow"):
            if key in self._cache:
                out._cache[key] = self._cache[key][start:stop]
        return out

    @classmethod
    def from_frame(cls, df: pd.DataFrame, symbol: str, tz: str, timeframe: str = "") -> "Bars":
        """From a DataFrame with a tz-aware DatetimeIndex and open/high/low/close/volume columns."""
        idx = df.index
        if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
            raise ValueError("Bars.from_frame needs a tz-aware DatetimeIndex")
        ts = idx.tz_convert("UTC").tz_localize(None).values.astype("datetime64[ns]").astype(np.int64)

        def col(name: str) -> np.ndarray:
            return np.ascontiguousarray(df[name].to_numpy(dtype=np.float64))

        vol = col("volume") if "volume" in df.columns else np.zeros(len(df), np.float64)
        return cls(symbol, tz, np.ascontiguousarray(ts), col("open"), col("high"), col("low"), col("close"),
                   vol, timeframe)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"open": self.open, "high": self.high, "low": self.low, "close": self.close,
                             "volume": self.volume}, index=self.local_index)
