"""Indicators: TA-Lib is the reference (values and warm-up NaNs), backed by hand-computed cases."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from services.engine.core import indicators as ind
from services.engine.core.bars import Bars
from services.engine.core.indicators import INDICATORS

nan = np.nan


def walk(n: int, seed: int = 0, level: float = 100.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, close) of a random walk around `level`."""
    rng = np.random.default_rng(seed)
    close = level + np.cumsum(rng.normal(size=n))
    return close + rng.random(n), close - rng.random(n), close


def assert_matches(mine: np.ndarray, ref: np.ndarray, scale: float, rtol: float = 1e-9) -> None:
    """Same NaN positions; elsewhere equal to `rtol`, or to rtol * the input's scale near 0."""
    mine, ref = np.asarray(mine), np.asarray(ref)
    assert mine.shape == ref.shape and mine.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(mine[ok], ref[ok], rtol=rtol, atol=rtol * scale)


# ---- hand-computed: the tests do not rest on TA-Lib alone ----------------------------------

def test_sma3_by_hand():
    np.testing.assert_allclose(ind.sma(np.array([1.0, 2, 3, 4, 5]), 3), [nan, nan, 2, 3, 4])


def test_ema3_by_hand_is_seeded_with_the_sma():
    # seed mean(1,2,3) = 2, then k = 0.5: 2 + (4-2)/2 = 3, 4, 5
    np.testing.assert_allclose(ind.ema(np.array([1.0, 2, 3, 4, 5, 6]), 3), [nan, nan, 2, 3, 4, 5])


def test_wma3_by_hand():
    np.testing.assert_allclose(ind.wma(np.array([1.0, 2, 3, 4]), 3), [nan, nan, 14 / 6, 20 / 6])


def test_rsi3_on_six_values_by_hand():
    # moves +1 +1 -1 | +2 -1.  Seed: gain 2/3, loss 1/3 -> 66.67.  Then Wilder (x*2 + move)/3:
    # gain 10/9, loss 2/9 -> 83.33;  gain 20/27, loss 13/27 -> 100*20/33.
    got = ind.rsi(np.array([10.0, 11, 12, 11, 13, 12]), 3)
    np.testing.assert_allclose(got, [nan, nan, nan, 200 / 3, 250 / 3, 2000 / 33], rtol=1e-12)


def test_rsi_of_a_flat_series_is_zero_like_talib():
    x = np.full(10, 5.0)
    np.testing.assert_array_equal(ind.rsi(x, 3)[3:], 0.0)
    np.testing.assert_array_equal(talib.RSI(x, 3)[3:], 0.0)


def test_atr2_by_hand():
    high, low, close = np.array([10.0, 12, 11, 13]), np.array([8.0, 9, 9, 10]), np.array([9.0, 11, 10, 12])
    # true ranges from bar 1: 3, 2, 3.  ATR(2): mean(3, 2) = 2.5 at bar 2, then (2.5 + 3) / 2.
    np.testing.assert_allclose(ind.atr(high, low, close, 2), [nan, nan, 2.5, 2.75])
    np.testing.assert_allclose(ind.atr(high, low, close, 1), [nan, 3, 2, 3])


def test_highest_lowest_by_hand():
    x = np.array([3.0, 1, 4, 1, 5, 9, 2])
    np.testing.assert_array_equal(ind.highest(x, 3), [nan, nan, 4, 4, 5, 9, 9])
    np.testing.assert_array_equal(ind.lowest(x, 3), [nan, nan, 1, 1, 1, 1, 2])
    np.testing.assert_array_equal(ind.highest(x, 1), x)


def test_roc_by_hand_including_a_zero_base():
    np.testing.assert_allclose(ind.roc(np.array([100.0, 110, 121, 0, 50]), 2),
                               [nan, nan, 21, -100, (50 / 121 - 1) * 100])
    np.testing.assert_allclose(ind.roc(np.array([0.0, 1, 2]), 1), [nan, 0, 100])  # TA-Lib: 0 over a 0


def test_stdev_and_bbands_by_hand():
    x = np.array([1.0, 3, 6])
    np.testing.assert_allclose(ind.stdev(x, 2), [nan, 1, 1.5])
    upper, middle, lower = ind.bbands(x, 2, 2.0)
    np.testing.assert_allclose(middle, [nan, 2, 4.5])
    np.testing.assert_allclose(upper, [nan, 4, 7.5])
    np.testing.assert_allclose(lower, [nan, 0, 1.5])


def test_macd_by_hand_seeds_the_fast_ema_at_the_slow_start():
    # MACD(2,3,2) of 1,2,4,8,16.  At bar 2: fast = mean(2,4) = 3 (not EMA(2)'s 19/6),
    # slow = mean(1,2,4) = 7/3, line 2/3.  Bar 3: 19/3 - 31/6 = 7/6.  Bar 4: 115/9 - 127/12 = 79/36.
    # Signal: mean(2/3, 7/6) = 11/12 at bar 3, then 11/12 + (79/36 - 11/12) * 2/3 = 191/108.
    line, signal, hist = ind.macd(np.array([1.0, 2, 4, 8, 16]), 2, 3, 2)
    np.testing.assert_allclose(line, [nan, nan, nan, 7 / 6, 79 / 36], rtol=1e-12)
    np.testing.assert_allclose(signal, [nan, nan, nan, 11 / 12, 191 / 108], rtol=1e-12)
    np.testing.assert_allclose(hist, line - signal, rtol=1e-12)


def test_vwap_by_hand_restarts_each_session():
    high = np.array([11.0, 12, 13, 21, 22])
    low = np.array([9.0, 10, 11, 19, 20])
    close = np.array([10.0, 11, 12, 20, 21])
    volume = np.array([1.0, 3, 0, 0, 2])
    day = np.array([1, 1, 1, 2, 2])
    # typical prices 10, 11, 12 | 20, 21.  Day 2 opens without volume: its typical price.
    np.testing.assert_allclose(ind.vwap(high, low, close, volume, day),
                               [10, (10 + 33) / 4, (10 + 33) / 4, 20, 21])


# ---- TA-Lib parity on random walks --------------------------------------------------------

PERIODS = [2, 3, 14, 50, 400]


@pytest.mark.parametrize("level", [100.0, 20_000.0])
@pytest.mark.parametrize("period", PERIODS)
def test_single_series_indicators_match_talib(period, level):
    _, _, x = walk(3000, seed=period, level=level)
    scale = float(np.abs(x).max())
    pairs = [
        (ind.sma, talib.SMA), (ind.ema, talib.EMA), (ind.wma, talib.WMA), (ind.rsi, talib.RSI),
        (ind.highest, talib.MAX), (ind.lowest, talib.MIN), (ind.roc, talib.ROC),
        (ind.stdev, lambda a, p: talib.STDDEV(a, p, 1.0)),
    ]
    for mine, ref in pairs:
        assert_matches(mine(x, period), ref(x, period), scale)


@pytest.mark.parametrize("period", [1] + PERIODS)
def test_atr_matches_talib(period):
    high, low, close = walk(3000, seed=7)
    assert_matches(ind.atr(high, low, close, period), talib.ATR(high, low, close, period), 100.0)


@pytest.mark.parametrize("std_dev", [1.0, 2.0, 2.5])
@pytest.mark.parametrize("period", PERIODS)
def test_bbands_match_talib(period, std_dev):
    _, _, x = walk(3000, seed=3)
    for mine, ref in zip(ind.bbands(x, period, std_dev), talib.BBANDS(x, period, std_dev, std_dev)):
        assert_matches(mine, ref, 100.0)


@pytest.mark.parametrize("fast,slow,signal", [(12, 26, 9), (2, 3, 1), (5, 10, 4), (3, 40, 12), (26, 12, 9)])
def test_macd_matches_talib_including_where_it_starts(fast, slow, signal):
    _, _, x = walk(2000, seed=11)
    for mine, ref in zip(ind.macd(x, fast, slow, signal), talib.MACD(x, fast, slow, signal)):
        assert_matches(mine, ref, 100.0)


@pytest.mark.parametrize("fn,ref", [(ind.sma, talib.SMA), (ind.ema, talib.EMA), (ind.wma, talib.WMA),
                                    (ind.roc, talib.ROC)])
def test_period_one_matches_talib_where_talib_allows_it(fn, ref):
    _, _, x = walk(200)
    assert_matches(fn(x, 1), ref(x, 1), 100.0)


def test_period_one_where_talib_refuses_it():
    _, _, x = walk(50)
    np.testing.assert_array_equal(ind.lowest(x, 1), x)
    np.testing.assert_array_equal(ind.stdev(x, 1), np.zeros(50))
    for band in ind.bbands(x, 1, 2.0):
        np.testing.assert_array_equal(band, x)
    moves = np.diff(x)
    np.testing.assert_array_equal(ind.rsi(x, 1), np.r_[nan, np.where(moves > 0, 100.0, 0.0)])


def test_flat_windows_have_exactly_zero_stdev():
    _, _, x = walk(300, seed=6, level=20_000.0)
    x[100:200] = x[100]  # a halted stretch after movement
    sd = ind.stdev(x, 20)
    np.testing.assert_array_equal(sd[119:200], 0.0)
    assert (sd[19:100] > 0).all()
    upper, middle, lower = ind.bbands(x, 20)
    np.testing.assert_array_equal(upper[119:200], middle[119:200])
    np.testing.assert_array_equal(lower[119:200], middle[119:200])


@pytest.mark.parametrize("n", [0, 1, 5])
def test_period_longer_than_the_data_gives_all_nan(n):
    high, low, x = walk(n)
    outs = [f(x, 6) for f in (ind.sma, ind.ema, ind.wma, ind.rsi, ind.highest, ind.lowest, ind.roc, ind.stdev)]
    outs += [ind.atr(high, low, x, 6), *ind.bbands(x, 6), *ind.macd(x, 3, 6, 2)]
    for out in outs:
        assert out.shape == (n,) and np.isnan(out).all()
    if n:
        np.testing.assert_array_equal(np.isnan(talib.SMA(x, 6)), np.ones(n, bool))


def test_long_series_stay_accurate():
    # 200k bars at a high price level: running sums must not drift (two-pass numpy as truth).
    _, _, x = walk(200_000, seed=5, level=20_000.0)
    windows = sliding_window_view(x, 20)
    truth_std = np.r_[np.full(19, nan), windows.std(axis=1)]
    weights = np.arange(1.0, 21.0)
    truth_wma = np.r_[np.full(19, nan), windows @ weights / weights.sum()]
    assert_matches(ind.stdev(x, 20), truth_std, 1.0, rtol=1e-9)
    assert_matches(ind.wma(x, 20), truth_wma, 1.0, rtol=1e-12)
    assert_matches(ind.stdev(x, 20), talib.STDDEV(x, 20), 20_000.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60), st.integers(1, 70))
def test_highest_lowest_equal_a_naive_window(values, period):
    x = np.array(values)
    want_hi = np.full(len(x), nan)
    want_lo = np.full(len(x), nan)
    if len(x) >= period:
        want_hi[period - 1:] = sliding_window_view(x, period).max(axis=1)
        want_lo[period - 1:] = sliding_window_view(x, period).min(axis=1)
    np.testing.assert_array_equal(ind.highest(x, period), want_hi)
    np.testing.assert_array_equal(ind.lowest(x, period), want_lo)


def test_monotone_series_extremes():
    up = np.arange(1000.0)
    np.testing.assert_array_equal(ind.highest(up, 50)[49:], up[49:])
    np.testing.assert_array_equal(ind.lowest(up, 50)[49:], up[:-49])
    np.testing.assert_array_equal(ind.highest(up[::-1], 50)[49:], up[::-1][:-49])


# ---- VWAP ---------------------------------------------------------------------------------

def test_vwap_matches_a_pandas_groupby_reference():
    high, low, close = walk(5000, seed=9)
    rng = np.random.default_rng(9)
    volume = rng.integers(0, 1000, 5000).astype(float)
    volume[:3] = 0.0  # a session that opens without volume
    day = np.repeat(np.arange(20_000, 20_050), 100)
    df = pd.DataFrame({"tp": (high + low + close) / 3, "v": volume, "day": day})
    df["pv"] = df.tp * df.v
    g = df.groupby("day")
    cum_v = g.v.cumsum()
    ref = (g.pv.cumsum() / cum_v.where(cum_v > 0)).fillna(df.tp).to_numpy()
    assert_matches(ind.vwap(high, low, close, volume, day), ref, 100.0, rtol=1e-12)


def test_vwap_without_any_volume_is_the_typical_price():
    high, low, close = walk(300)
    got = ind.vwap(high, low, close, np.zeros(300), np.repeat([1, 2, 3], 100))
    np.testing.assert_allclose(got, (high + low + close) / 3, rtol=1e-15)


# ---- leading and interior NaNs ------------------------------------------------------------

def test_chained_ema_of_rsi_warmups_add_up():
    _, _, x = walk(500, seed=4)
    r = ind.rsi(x, 14)
    chained = ind.ema(r, 5)
    prefix = INDICATORS["rsi"].lookback({"period": 14}) + INDICATORS["ema"].lookback({"period": 5})
    assert prefix == 18
    assert np.isnan(chained[:prefix]).all() and not np.isnan(chained[prefix:]).any()
    assert_matches(chained, talib.EMA(talib.RSI(x, 14), 5), 100.0)  # talib skips leading NaNs too


@pytest.mark.parametrize("kind,params", [
    ("sma", {"period": 5}), ("wma", {"period": 5}), ("highest", {"period": 5}), ("roc", {"period": 5}),
    ("stdev", {"period": 5}), ("bbands", {"period": 5}), ("macd", {"fast_period": 3, "slow_period": 6,
                                                                      "signal_period": 4}),
    ("rsi", {"period": 5}),
])
def test_chained_nan_prefix_is_the_sum_of_lookbacks(kind, params):
    _, _, x = walk(300, seed=8)
    base = ind.sma(x, 10)
    spec = INDICATORS[kind]
    for out in spec.compute(params, base, None).values():
        first = int(np.argmax(~np.isnan(out)))
        assert first == 9 + spec.lookback(params)


def test_interior_nan_makes_the_rest_nan():
    high, low, x = walk(200, seed=2)
    gap = x.copy()
    gap[120] = nan
    for fn in (ind.sma, ind.ema, ind.wma, ind.rsi, ind.highest, ind.lowest, ind.roc, ind.stdev):
        clean, holed = fn(x, 10), fn(gap, 10)
        assert np.isnan(holed[120:]).all()
        np.testing.assert_array_equal(holed[:120], clean[:120])
    assert np.isnan(ind.atr(high, low, gap, 10)[120:]).all()
    assert np.isnan(ind.vwap(high, low, gap, np.ones(200), np.zeros(200, np.int64))[120:]).all()
    for clean, holed in zip(ind.macd(x, 3, 6, 2), ind.macd(gap, 3, 6, 2)):
        assert np.isnan(holed[120:]).all()
        np.testing.assert_array_equal(holed[:120], clean[:120])


# ---- input checks -------------------------------------------------------------------------

@pytest.mark.parametrize("period", [0, -3, 2.5, True])
def test_bad_periods_are_rejected(period):
    with pytest.raises(ValueError, match="positive whole number"):
        ind.sma(np.ones(5), period)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="1-D"):
        ind.ema(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="length"):
        ind.atr(np.ones(3), np.ones(4), np.ones(3), 2)
    with pytest.raises(ValueError, match="same length"):
        ind.vwap(np.ones(3), np.ones(3), np.ones(3), np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="std_dev"):
        ind.bbands(np.ones(3), 2, float("nan"))


# ---- the registry ---------------------------------------------------------------------------

def test_registry_names_the_kinds_of_the_proto():
    assert set(INDICATORS) == {"sma", "ema", "wma", "rsi", "atr", "bbands", "macd", "vwap",
                               "highest", "lowest", "roc", "stdev"}
    assert INDICATORS["bbands"].outputs == ("upper", "middle", "lower")
    assert INDICATORS["macd"].outputs == ("line", "signal", "histogram")
    assert INDICATORS["rsi"].outputs == ("value",)
    assert INDICATORS["macd"].params == ("fast_period", "slow_period", "signal_period")
    assert INDICATORS["vwap"].params == ()
    assert not INDICATORS["atr"].uses_source and not INDICATORS["vwap"].uses_source
    assert INDICATORS["ema"].uses_source
    with pytest.raises(AttributeError):
        INDICATORS["ema"].name = "x"  # frozen


def test_labels():
    assert INDICATORS["rsi"].label({"period": 14}) == "RSI(14)"
    assert INDICATORS["ema"].label({"period": 9}) == "EMA(9)"
    assert INDICATORS["bbands"].label({"period": 20}) == "BB(20,2)"
    assert INDICATORS["bbands"].label({"period": 20, "std_dev": 2.5}, "upper") == "BB(20,2.5).upper"
    assert INDICATORS["macd"].label({}, "signal") == "MACD(12,26,9).signal"
    assert INDICATORS["vwap"].label({}) == "VWAP"
    assert INDICATORS["atr"].label({"period": 14}, "value") == "ATR(14)"
    with pytest.raises(ValueError, match="no output"):
        INDICATORS["bbands"].label({"period": 20}, "top")


def test_defaults_fill_unset_proto_fields():
    spec = INDICATORS["macd"]
    assert spec.resolve({"fast_period": 0, "slow_period": 0, "signal_period": 0}) == \
        {"fast_period": 12, "slow_period": 26, "signal_period": 9}
    _, _, x = walk(100)
    assert spec.lookback({}) == 33 == int(np.isnan(talib.MACD(x)[0]).sum())
    assert INDICATORS["bbands"].resolve({"period": 20, "std_dev": 0.0}) == {"period": 20, "std_dev": 2.0}
    with pytest.raises(ValueError, match="needs 'period'"):
        INDICATORS["sma"].lookback({})
    with pytest.raises(ValueError, match="takes no std_dev"):
        INDICATORS["sma"].resolve({"period": 3, "std_dev": 2.0})


def _bars(n: int) -> Bars:
    high, low, close = walk(n, seed=12)
    ts = (np.datetime64("2024-01-01T03:45") + np.arange(n) * np.timedelta64(1, "h")).astype("datetime64[ns]")
    return Bars("TEST", "Asia/Kolkata", ts.astype(np.int64), close.copy(), high, low, close,
                np.random.default_rng(12).integers(1, 100, n).astype(float), "1h")


@pytest.mark.parametrize("kind", sorted(INDICATORS))
def test_compute_and_lookback_agree_for_every_kind(kind):
    bars = _bars(400)
    spec = INDICATORS[kind]
    params = {name: (3 if name == "fast_period" else 7 if name != "std_dev" else 1.5) for name in spec.params}
    outs = spec.compute(params, bars.close if spec.uses_source else None, bars)
    assert tuple(outs) == spec.outputs
    for out in outs.values():
        assert out.shape == (400,) and out.dtype == np.float64
        assert np.isnan(out[:spec.lookback(params)]).all()
        assert not np.isnan(out[spec.lookback(params):]).any()


def test_compute_uses_bars_fields():
    bars = _bars(300)
    got = INDICATORS["atr"].compute({"period": 14}, None, bars)["value"]
    assert_matches(got, talib.ATR(bars.high, bars.low, bars.close, 14), 100.0)
    vw = INDICATORS["vwap"].compute({}, None, bars)["value"]
    np.testing.assert_array_equal(vw, ind.vwap(bars.high, bars.low, bars.close, bars.volume, bars.day))
    assert len(np.unique(bars.day)) > 1  # sessions really restart
    with pytest.raises(ValueError, match="needs a source"):
        INDICATORS["sma"].compute({"period": 3}, None, bars)
    with pytest.raises(ValueError, match="not a source"):
        INDICATORS["atr"].compute({"period": 3}, bars.close, bars)
