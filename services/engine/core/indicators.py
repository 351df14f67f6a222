"""Technical indicators over whole float64 arrays, and the `INDICATORS` registry the spec layer reads.

Values and warm-ups follow TA-Lib 0.6 (default compatibility, no unstable period): the first
`lookback` values are NaN. Leading NaNs in the input (an indicator of an indicator) are skipped,
so look-backs add up. Recursive and running-window loops are numba kernels (`*_nb`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Protocol

import numpy as np
from numba import njit

__all__ = [
    "INDICATORS", "IndicatorKind", "BarArrays",
    "sma", "ema", "wma", "rsi", "atr", "bbands", "macd", "vwap", "highest", "lowest", "roc", "stdev",
]

# A NaN after the leading ones is not expected: Bars are validated, and no indicator here emits
# one after its warm-up (a flat RSI is 0, ROC over a 0 is 0, VWAP without volume is the typical
# price). Should one occur anyway, every indicator is NaN from that bar to the end of the data:
# one simple rule, rather than per-kernel guesses about how far a gap should reach.

# TA-Lib 0.6's TA_IS_ZERO epsilon (ta_utility.h): RSI is 0 when average gain + loss is below it.
_TA_EPSILON = 1e-14


# ---- kernels: contiguous float64 in; they fill every element of the preallocated `out` ----------

@njit(cache=True, nogil=True)
def _sma_nb(x, period, out):
    """out[i] = mean(x[i-period+1 : i+1]) from i = period-1: TA-Lib's running sum (TA_INT_SMA)."""
    n = x.shape[0]
    out[:min(period - 1, n)] = np.nan
    total = 0.0
    for i in range(min(period - 1, n)):
        total += x[i]
    for i in range(period - 1, n):
        total += x[i]
        out[i] = total / period
        total -= x[i - period + 1]


@njit(cache=True, nogil=True)
def _ema_nb(x, period, seed_at, out):
    """EMA with k = 2/(period+1), seeded at index `seed_at` with the SMA of the `period` values
    ending there (TA-Lib's TA_INT_EMA; MACD seeds its fast EMA later than period-1)."""
    n = x.shape[0]
    out[:min(seed_at, n)] = np.nan
    if seed_at >= n:
        return
    k = 2.0 / (period + 1)
    total = 0.0
    for i in range(seed_at - period + 1, seed_at + 1):
        total += x[i]
    prev = total / period
    out[seed_at] = prev
    for i in range(seed_at + 1, n):
        prev = (x[i] - prev) * k + prev
        out[i] = prev


@njit(cache=True, nogil=True)
def _wma_nb(x, period, out):
    """Linearly weighted mean, weight `period` on the newest value. Running weighted sum as in
    TA-Lib, rebuilt from the window every 8*period bars so rounding cannot pile up."""
    n = x.shape[0]
    out[:min(period - 1, n)] = np.nan
    divider = period * (period + 1) / 2.0
    wsum = 0.0  # weights 1..period-1 over the period-1 values before x[i]
    tsum = 0.0  # plain sum of those values
    countdown = 0
    for i in range(period - 1, n):
        if countdown == 0:
            countdown = 8 * period
            wsum = 0.0
            tsum = 0.0
            for j in range(period - 1):
                v = x[i - period + 1 + j]
                wsum += v * (j + 1)
                tsum += v
        countdown -= 1
        wsum += x[i] * period
        out[i] = wsum / divider
        tsum += x[i]
        wsum -= tsum
        tsum -= x[i - period + 1]


@njit(cache=True, nogil=True)
def _rsi_nb(x, period, out):
    """Wilder's RSI as TA-Lib computes it: first value at index `period`; 0 when flat."""
    n = x.shape[0]
    out[:min(period, n)] = np.nan
    if n <= period:
        return
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        d = x[i] - x[i - 1]
        gain += d if d > 0.0 else 0.0
        loss += -d if d < 0.0 else 0.0
    gain /= period
    loss /= period
    s = gain + loss
    out[period] = 100.0 * (gain / s) if s >= _TA_EPSILON else 0.0
    keep = float(period - 1)
    # TA-Lib's order: scale by period-1, add today's move, divide by period. The division is a
    # multiply by 1/period (half the time; the TA-Lib build agrees to 1e-16).
    inv = 1.0 / period
    for i in range(period + 1, n):
        d = x[i] - x[i - 1]
        gain = (gain * keep + (d if d > 0.0 else 0.0)) * inv
        loss = (loss * keep + (-d if d < 0.0 else 0.0)) * inv
        s = gain + loss
        out[i] = 100.0 * (gain / s) if s >= _TA_EPSILON else 0.0


@njit(cache=True, nogil=True)
def _true_range_nb(high, low, prev_close):
    """max(high - low, |high - prev_close|, |low - prev_close|), for high >= low."""
    return max(high, prev_close) - min(low, prev_close)


@njit(cache=True, nogil=True)
def _atr_nb(high, low, close, period, out):
    """TA-Lib's ATR: true range from index 1, SMA of the first `period` of them at index
    `period`, then Wilder smoothing. period == 1 is the true range itself."""
    n = close.shape[0]
    out[:min(period, n)] = np.nan
    if n <= period:
        return
    total = 0.0
    for i in range(1, period + 1):
        total += _true_range_nb(high[i], low[i], close[i - 1])
    prev = total / period
    out[period] = prev
    keep = float(period - 1)
    inv = 1.0 / period
    for i in range(period + 1, n):
        prev = (prev * keep + _true_range_nb(high[i], low[i], close[i - 1])) * inv
        out[i] = prev


@njit(cache=True, nogil=True)
def _rolling_std_nb(x, period, out):
    """Population standard deviation over `period` values. Running sums of x-c and (x-c)**2
    with c the window mean, re-taken every 8*period bars: TA-Lib's sum-of-squares form without
    its cancellation on large prices or its drift on long series. Flat windows give exactly 0."""
    n = x.shape[0]
    out[:min(period - 1, n)] = np.nan
    inv = 1.0 / period
    c = 0.0
    s1 = 0.0
    s2 = 0.0
    countdown = 0
    for i in range(period - 1, n):
        if countdown == 0:
            countdown = 8 * period
            c = 0.0
            for j in range(i - period + 1, i + 1):
                c += x[j]
            c /= period
            s1 = 0.0
            s2 = 0.0
            for j in range(i - period + 1, i + 1):
                d = x[j] - c
                s1 += d
                s2 += d * d
        else:
            dn = x[i] - c
            do = x[i - period] - c
            s1 += dn - do
            s2 += dn * dn - do * do
        countdown -= 1
        m = s1 * inv
        mean_sq = s2 * inv
        var = mean_sq - m * m
        # Below this, var is rounding left by the subtraction (a flat window): report 0.
        out[i] = math.sqrt(var) if var > 1e-13 * mean_sq else 0.0


@njit(cache=True, nogil=True)
def _pick_nb(a, b, is_max):
    return max(a, b) if is_max else min(a, b)  # numba's max/min propagate NaN, like np.maximum


@njit(cache=True, nogil=True)
def _rolling_extreme_nb(x, period, is_max, out):
    """Max (or min) over `period` values, NaN wherever the window holds a NaN. van Herk /
    Gil-Werman: per block of `period` bars, suffix extremes (written shifted into out) and
    running prefix extremes; a window spans one suffix and one prefix. O(n), branch-free."""
    n = x.shape[0]
    if period == 1:
        out[:] = x
        return
    out[:min(period - 1, n)] = np.nan
    for b in range(0, n, period):
        e = min(b + period, n)
        m = x[e - 1]
        lim = min(e - 1, n - period)
        for j in range(e - 1, lim, -1):  # suffixes whose window would end past the data
            m = _pick_nb(m, x[j], is_max)
        for j in range(lim, b - 1, -1):
            m = _pick_nb(m, x[j], is_max)
            out[j + period - 1] = m
    for b in range(0, n, period):
        e = min(b + period, n)
        m = x[b]
        for i in range(b, min(e, period - 1)):
            m = _pick_nb(m, x[i], is_max)
        for i in range(max(b, period - 1), e):
            m = _pick_nb(m, x[i], is_max)
            out[i] = _pick_nb(m, out[i], is_max)


@njit(cache=True, nogil=True)
def _macd_nb(x, fast, slow, signal, line, sig, hist):
    """TA-Lib's MACD in one pass: fast and slow EMAs both seeded at bar slow-1 (each with the
    SMA of its own period ending there), the signal EMA seeded with the SMA of the first
    `signal` MACD values; all three outputs start at bar (slow-1)+(signal-1)."""
    n = x.shape[0]
    start = slow - 1 + signal - 1
    line[:min(start, n)] = np.nan
    sig[:min(start, n)] = np.nan
    hist[:min(start, n)] = np.nan
    if start >= n:
        return
    kf = 2.0 / (fast + 1)
    ks = 2.0 / (slow + 1)
    kg = 2.0 / (signal + 1)
    ef = 0.0
    for i in range(slow - fast, slow):
        ef += x[i]
    ef /= fast
    es = 0.0
    for i in range(slow):
        es += x[i]
    es /= slow
    total = ef - es
    for i in range(slow, start + 1):
        ef = (x[i] - ef) * kf + ef
        es = (x[i] - es) * ks + es
        total += ef - es
    eg = total / signal
    v = ef - es
    line[start] = v
    sig[start] = eg
    hist[start] = v - eg
    for i in range(start + 1, n):
        ef = (x[i] - ef) * kf + ef
        es = (x[i] - es) * ks + es
        v = ef - es
        eg = (v - eg) * kg + eg
        line[i] = v
        sig[i] = eg
        hist[i] = v - eg


@njit(cache=True, nogil=True)
def _bbands_nb(x, period, width, upper, middle, lower):
    """Bollinger bands: TA-Lib's SMA middle, +- width * population stdev."""
    _sma_nb(x, period, middle)
    _rolling_std_nb(x, period, upper)
    for i in range(x.shape[0]):
        d = width * upper[i]
        upper[i] = middle[i] + d
        lower[i] = middle[i] - d


@njit(cache=True, nogil=True)
def _vwap_nb(high, low, close, volume, day, out):
    """Session VWAP of hlc3, restarting whenever `day` changes; the typical price itself while
    the session's cumulative volume is 0."""
    n = close.shape[0]
    pv = 0.0
    vol = 0.0
    current = day[0] if n else 0
    for i in range(n):
        if day[i] != current:
            current = day[i]
            pv = 0.0
            vol = 0.0
        tp = (high[i] + low[i] + close[i]) / 3.0
        pv += tp * volume[i]
        vol += volume[i]
        out[i] = pv / vol if vol > 0 else tp


@njit(cache=True, nogil=True)
def _first_valid_nb(x):
    for i in range(x.shape[0]):
        if x[i] == x[i]:
            return i
    return x.shape[0]


@njit(cache=True, nogil=True)
def _first_nan_nb(x, start):
    for i in range(start, x.shape[0]):  # callers know there is one
        if x[i] != x[i]:
            return i
    return x.shape[0]


# ---- public functions ----------------------------------------------------------------------

def _series(x: np.ndarray, name: str = "x") -> np.ndarray:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {a.shape}")
    return a


def _period(value: Any, name: str = "period") -> int:
    if isinstance(value, (bool, np.bool_)) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive whole number of bars, got {value!r}")
    return int(value)


def _span(*arrays: np.ndarray) -> tuple[int, int]:
    """[start, stop): after the leading NaNs of every array, up to the first NaN after that."""
    start = max(_first_valid_nb(a) for a in arrays)
    stop = arrays[0].shape[0]
    for a in arrays:
        if np.isnan(a[start:stop]).any():  # vectorized check first: the usual answer is no
            stop = _first_nan_nb(a, start)
    return start, stop


def _outputs(n: int, start: int, stop: int, k: int = 1) -> list[np.ndarray]:
    """k float64[n] arrays, NaN outside [start, stop) (the kernels fill the inside)."""
    outs = []
    for _ in range(k):
        out = np.empty(n)
        out[:start] = np.nan
        out[stop:] = np.nan
        outs.append(out)
    return outs


def _tail(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(out, x's valid span, out's matching span): kernels run on the span views."""
    start, stop = _span(x)
    (out,) = _outputs(x.shape[0], start, stop)
    return out, x[start:stop], out[start:stop]


def sma(x: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average (TA-Lib SMA). float64[n]; look-back period-1."""
    out, xs, os_ = _tail(_series(x))
    _sma_nb(xs, _period(period), os_)
    return out


def ema(x: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average, k = 2/(period+1), seeded with the SMA of the first `period`
    values (TA-Lib EMA). float64[n]; look-back period-1."""
    p = _period(period)
    out, xs, os_ = _tail(_series(x))
    _ema_nb(xs, p, p - 1, os_)
    return out


def wma(x: np.ndarray, period: int) -> np.ndarray:
    """Linearly weighted moving average (TA-Lib WMA). float64[n]; look-back period-1."""
    out, xs, os_ = _tail(_series(x))
    _wma_nb(xs, _period(period), os_)
    return out


def rsi(x: np.ndarray, period: int) -> np.ndarray:
    """Wilder's relative strength index in [0, 100] (TA-Lib RSI). float64[n]; look-back `period`.
    A window without any movement gives 0, as in TA-Lib."""
    out, xs, os_ = _tail(_series(x))
    _rsi_nb(xs, _period(period), os_)
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Average true range, Wilder-smoothed (TA-Lib ATR). float64[n]; look-back `period`."""
    h, lo, c = _series(high, "high"), _series(low, "low"), _series(close, "close")
    if not h.shape == lo.shape == c.shape:
        raise ValueError(f"high, low and close differ in length: {len(h)}, {len(lo)}, {len(c)}")
    p = _period(period)
    start, stop = _span(h, lo, c)
    (out,) = _outputs(c.shape[0], start, stop)
    _atr_nb(h[start:stop], lo[start:stop], c[start:stop], p, out[start:stop])
    return out


def stdev(x: np.ndarray, period: int) -> np.ndarray:
    """Population standard deviation over `period` bars (TA-Lib STDDEV, nbdev 1).
    float64[n]; look-back period-1. Flat windows give exactly 0; unlike TA-Lib, variances below
    1e-14 that are not rounding noise are kept."""
    out, xs, os_ = _tail(_series(x))
    _rolling_std_nb(xs, _period(period), os_)
    return out


def bbands(x: np.ndarray, period: int, std_dev: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands (TA-Lib BBANDS: SMA middle, both widths `std_dev` population stdevs):
    (upper, middle, lower), each float64[n]; look-back period-1."""
    if not (math.isfinite(std_dev) and std_dev >= 0):
        raise ValueError(f"std_dev must be a finite number >= 0, got {std_dev!r}")
    p = _period(period)
    xs = _series(x)
    start, stop = _span(xs)
    upper, middle, lower = _outputs(xs.shape[0], start, stop, 3)
    _bbands_nb(xs[start:stop], p, float(std_dev), upper[start:stop], middle[start:stop], lower[start:stop])
    return upper, middle, lower


def macd(x: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD exactly as TA-Lib outputs it: (line, signal, histogram), each float64[n], all three
    starting at bar (slow-1)+(signal-1). As in TA-Lib, both EMAs are seeded at bar slow-1 (the
    fast one with the SMA of the `fast` values ending there), and fast > slow are swapped."""
    f, s, g = _period(fast, "fast"), _period(slow, "slow"), _period(signal, "signal")
    if s < f:
        f, s = s, f
    xs = _series(x)
    start, stop = _span(xs)
    line, sig, hist = _outputs(xs.shape[0], start, stop, 3)
    _macd_nb(xs[start:stop], f, s, g, line[start:stop], sig[start:stop], hist[start:stop])
    return line, sig, hist


def vwap(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
         day: np.ndarray) -> np.ndarray:
    """Session-anchored VWAP of the typical price (high+low+close)/3, restarting whenever `day`
    (int64[n], e.g. `Bars.day`) changes. float64[n]; no warm-up. Until the session has traded
    any volume (or for data without volume) the value is the typical price, never NaN."""
    h, lo, c = _series(high, "high"), _series(low, "low"), _series(close, "close")
    v = _series(volume, "volume")
    d = np.ascontiguousarray(day, dtype=np.int64)
    if not h.shape == lo.shape == c.shape == v.shape == d.shape:
        raise ValueError("high, low, close, volume and day must have the same length")
    start, stop = _span(h, lo, c, v)
    (out,) = _outputs(c.shape[0], start, stop)
    _vwap_nb(h[start:stop], lo[start:stop], c[start:stop], v[start:stop], d[start:stop], out[start:stop])
    return out


def highest(x: np.ndarray, period: int) -> np.ndarray:
    """Highest value over `period` bars, this one included (TA-Lib MAX). Look-back period-1."""
    out, xs, os_ = _tail(_series(x))
    _rolling_extreme_nb(xs, _period(period), True, os_)
    return out


def lowest(x: np.ndarray, period: int) -> np.ndarray:
    """Lowest value over `period` bars, this one included (TA-Lib MIN). Look-back period-1."""
    out, xs, os_ = _tail(_series(x))
    _rolling_extreme_nb(xs, _period(period), False, os_)
    return out


def roc(x: np.ndarray, period: int) -> np.ndarray:
    """Rate of change in percent, (x / x[period bars ago] - 1) * 100 (TA-Lib ROC); 0 where the
    earlier value is 0, as in TA-Lib. float64[n]; look-back `period`."""
    p = _period(period)
    out, xs, os_ = _tail(_series(x))
    os_[:p] = np.nan
    if xs.shape[0] > p:
        now, then = xs[p:], xs[:-p]
        ratio = np.divide(now, then, out=np.ones_like(now), where=then != 0)
        ratio -= 1.0
        ratio *= 100.0
        os_[p:] = ratio
    return out


# ---- the registry the spec and signal layers use ---------------------------------------------

class BarArrays(Protocol):
    """What `compute` reads from bars (services.engine.core.bars.Bars satisfies it)."""

    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @property
    def day(self) -> np.ndarray: ...


Params = Mapping[str, Any]


@dataclass(frozen=True)
class IndicatorKind:
    """One kind of indicator as strategies name it.

    params: the `hindsight.v1.Indicator` fields it takes; defaults fill those left unset (0).
    uses_source: computed from one `source` series; otherwise from `bar_fields` of the bars.
    lookback(params): bars before the first non-NaN value (TA-Lib's lookback).
    label(params, output=None): e.g. "RSI(14)", "BB(20,2)", or "BB(20,2).upper" with an output.
    compute(params, source, bars): {output name: float64[n]}.
    """

    name: str
    outputs: tuple[str, ...]
    params: tuple[str, ...]
    uses_source: bool
    bar_fields: tuple[str, ...]
    _lookback: Callable[[dict[str, Any]], int] = field(repr=False)
    _label: Callable[[dict[str, Any]], str] = field(repr=False)
    _compute: Callable[[dict[str, Any], np.ndarray | None, Any], tuple[np.ndarray, ...]] = field(repr=False)
    defaults: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def resolve(self, params: Params) -> dict[str, Any]:
        """Params with defaults filled in and unknown names rejected."""
        extra = set(params) - set(self.params)
        if extra:
            raise ValueError(f"{self.name} takes no {', '.join(sorted(extra))} (it takes: "
                             f"{', '.join(self.params) or 'nothing'})")
        out: dict[str, Any] = {}
        for name in self.params:
            value = params.get(name)
            if not value:  # unset proto fields read as 0
                value = self.defaults.get(name, value)
            if value is None:
                raise ValueError(f"{self.name} needs '{name}'")
            out[name] = float(value) if name == "std_dev" else _period(value, name)
        return out

    def lookback(self, params: Params) -> int:
        return self._lookback(self.resolve(params))

    def label(self, params: Params, output: str | None = None) -> str:
        base = self._label(self.resolve(params))
        if output is None or len(self.outputs) == 1:
            if output is not None and output not in self.outputs:
                raise ValueError(f"{self.name} has no output '{output}'")
            return base
        if output not in self.outputs:
            raise ValueError(f"{self.name} has no output '{output}' (outputs: {', '.join(self.outputs)})")
        return f"{base}.{output}"

    def compute(self, params: Params, source: np.ndarray | None, bars: BarArrays | None) -> dict[str, np.ndarray]:
        p = self.resolve(params)
        if self.uses_source:
            if source is None:
                raise ValueError(f"{self.name} needs a source series")
        elif source is not None:
            raise ValueError(f"{self.name} is computed from {'/'.join(self.bar_fields)}, not a source")
        elif bars is None:
            raise ValueError(f"{self.name} needs bars")
        return dict(zip(self.outputs, self._compute(p, source, bars)))


def _single(name: str, title: str, fn: Callable[[np.ndarray, int], np.ndarray], lookback: Callable[[int], int]
            ) -> IndicatorKind:
    return IndicatorKind(
        name, ("value",), ("period",), True, (),
        lambda p: lookback(p["period"]),
        lambda p: f"{title}({p['period']})",
        lambda p, src, bars: (fn(src, p["period"]),))


INDICATORS: Mapping[str, IndicatorKind] = MappingProxyType({k.name: k for k in (
    _single("sma", "SMA", sma, lambda n: n - 1),
    _single("ema", "EMA", ema, lambda n: n - 1),
    _single("wma", "WMA", wma, lambda n: n - 1),
    _single("rsi", "RSI", rsi, lambda n: n),
    _single("highest", "Highest", highest, lambda n: n - 1),
    _single("lowest", "Lowest", lowest, lambda n: n - 1),
    _single("roc", "ROC", roc, lambda n: n),
    _single("stdev", "StdDev", stdev, lambda n: n - 1),
    IndicatorKind(
        "atr", ("value",), ("period",), False, ("high", "low", "close"),
        lambda p: p["period"],
        lambda p: f"ATR({p['period']})",
        lambda p, src, b: (atr(b.high, b.low, b.close, p["period"]),)),
    IndicatorKind(
        "bbands", ("upper", "middle", "lower"), ("period", "std_dev"), True, (),
        lambda p: p["period"] - 1,
        lambda p: f"BB({p['period']},{p['std_dev']:g})",
        lambda p, src, b: bbands(src, p["period"], p["std_dev"]),
        MappingProxyType({"std_dev": 2.0})),
    IndicatorKind(
        "macd", ("line", "signal", "histogram"), ("fast_period", "slow_period", "signal_period"), True, (),
        lambda p: max(p["fast_period"], p["slow_period"]) - 1 + p["signal_period"] - 1,
        lambda p: f"MACD({p['fast_period']},{p['slow_period']},{p['signal_period']})",
        lambda p, src, b: macd(src, p["fast_period"], p["slow_period"], p["signal_period"]),
        MappingProxyType({"fast_period": 12, "slow_period": 26, "signal_period": 9})),
    IndicatorKind(
        "vwap", ("value",), (), False, ("high", "low", "close", "volume", "day"),
        lambda p: 0,
        lambda p: "VWAP",
        lambda p, src, b: (vwap(b.high, b.low, b.close, b.volume, b.day),)),
)})
