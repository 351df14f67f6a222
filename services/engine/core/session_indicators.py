"""Session-anchored indicators that TA-Lib has no notion of (they reset every trading day)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _opening_range_nb(high, low, day, bars, out_high, out_low):
    n = high.shape[0]
    i = 0
    while i < n:
        j = i
        while j < n and day[j] == day[i]:
            j += 1
        # bars [i, j) form one session; its range is complete after `bars` bars.
        if j - i > bars:
            hi = high[i]
            lo = low[i]
            for k in range(i + 1, i + bars):
                if high[k] > hi:
                    hi = high[k]
                if low[k] < lo:
                    lo = low[k]
            for k in range(i + bars, j):
                out_high[k] = hi
                out_low[k] = lo
        i = j


def opening_range(high: np.ndarray, low: np.ndarray, day: np.ndarray, bars: int) -> tuple[np.ndarray, np.ndarray]:
    """High and low of each session's first `bars` bars, defined from the bar after them.

    float64[n] each; NaN during the range itself and on sessions shorter than the range.
    """
    if bars <= 0:
        raise ValueError("opening_range needs period >= 1 bar")
    n = len(high)
    out_high = np.full(n, np.nan)
    out_low = np.full(n, np.nan)
    _opening_range_nb(np.ascontiguousarray(high, np.float64), np.ascontiguousarray(low, np.float64),
                      np.ascontiguousarray(day, np.int64), int(bars), out_high, out_low)
    return out_high, out_low
