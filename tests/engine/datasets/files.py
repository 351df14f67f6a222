"""Small files of bars for the upload tests, written exactly (every line known) or generated."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

HEADER = "timestamp,open,high,low,close,volume"
# XBOM sessions: Mon 4 .. Thu 7 March 2024 (Fri 8 March is a holiday), then Mon 11 March.
DAYS = [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6), date(2024, 3, 7)]


def session_rows(days=DAYS, per_day: int = 375, start: str = "09:15", seed: int = 7, price: float = 21500.0,
                 step_min: int = 1) -> list[list]:
    """[timestamp text, open, high, low, close, volume] rows: `per_day` bars a day from `start`
    (naive exchange-local), a gentle random walk with consistent OHLC and no stale runs."""
    rng = np.random.default_rng(seed)
    rows = []
    last = price
    for d in days:
        stamps = pd.date_range(f"{d.isoformat()} {start}", periods=per_day, freq=f"{step_min}min")
        for ts in stamps:
            close = round(last + float(rng.normal(0, 3.0)) + 0.01, 2)
            o = round(last, 2)
            hi = round(max(o, close) + 1.0 + float(rng.uniform(0, 1)), 2)
            lo = round(min(o, close) - 1.0 - float(rng.uniform(0, 1)), 2)
            rows.append([ts.strftime("%Y-%m-%d %H:%M:%S"), o, hi, lo, close, int(rng.integers(100, 1000))])
            last = close
    return rows


def csv_text(rows: list[list], header: str = HEADER) -> str:
    return header + "\n" + "".join(",".join(str(x) for x in r) + "\n" for r in rows)


def write_csv(path: Path, rows: list[list], header: str = HEADER) -> Path:
    text = csv_text(rows, header)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def frame(rows: list[list]) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.to_datetime([r[0] for r in rows]), "open": [float(r[1]) for r in rows],
                         "high": [float(r[2]) for r in rows], "low": [float(r[3]) for r in rows],
                         "close": [float(r[4]) for r in rows], "volume": [float(r[5]) for r in rows]})


def write_parquet(path: Path, rows: list[list]) -> Path:
    frame(rows).to_parquet(path, index=False)
    return path


def line_of(i: int) -> int:
    """The CSV line of row i (0-based) of a file written by write_csv: the header is line 1."""
    return i + 2
