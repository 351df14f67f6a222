"""Option pricing: Black-Scholes prices and greeks against vollib (an independent implementation,
Jaeckel's "Let's be rational"), parity and monotonicity, premium ticks, implied vol, the SSVI
surface's shape and absence of butterfly arbitrage, and the India-VIX-like vol level."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from numba import njit
from vollib.black_scholes import black_scholes as ref_price
from vollib.black_scholes.greeks import analytical as ref_greeks

from services.engine.options.pricing import (
    CALL, MIN_PREMIUM, PUT, RISK_FREE_RATE, TRADING_DAYS, YEAR_MINUTES, bs_greeks_nb, bs_price_fast_nb,
    bs_price_nb, greeks, implied_vol, implied_vol_nb, price, round_premium_nb, surface_iv_nb, vol_level,
)

R = RISK_FREE_RATE
SPOT = 20000.0
DAY = 1.0 / TRADING_DAYS
MINUTE = 1.0 / YEAR_MINUTES

# calls/puts x deep ITM..deep OTM x 1 day..1 year x 5..80 % vol
GRID = list(itertools.product(
    (CALL, PUT),
    (14000.0, 18000.0, 19500.0, 19950.0, 20000.0, 20050.0, 20500.0, 22000.0, 27000.0),
    (DAY, 5 * DAY, 21 * DAY, 0.25, 0.5, 1.0),
    (0.05, 0.1, 0.2, 0.4, 0.8),
))


def _columns(grid=GRID):
    cp, k, t, s = (np.array(c) for c in zip(*grid))
    return cp, k, t, s


def _flag(cp: int) -> str:
    return "c" if cp == CALL else "p"


@njit
def _surface_nb(level, spot, strikes, t):
    out = np.empty(strikes.shape[0])
    for i in range(strikes.shape[0]):
        out[i] = surface_iv_nb(level, spot, strikes[i], t)
    return out


# ---- Black-Scholes against the reference ---------------------------------------------------------

def test_prices_match_vollib():
    cp, k, t, s = _columns()
    ours = price(cp, SPOT, k, t, s, R)
    ref = np.array([ref_price(_flag(c), SPOT, kk, tt, R, ss) for c, kk, tt, ss in GRID])
    np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-6)
    # the scalar kernels give the same numbers as the wrapper
    for i in range(0, len(GRID), 37):
        c, kk, tt, ss = GRID[i]
        assert bs_price_nb(c, SPOT, kk, tt, ss, R) == ours[i]
        assert bs_price_fast_nb(c, SPOT, kk, math.sqrt(tt), tt, ss, math.exp(-R * tt)) == ours[i]


def test_greeks_match_vollib():
    cp, k, t, s = _columns()
    delta, gamma, theta, vega = greeks(cp, SPOT, k, t, s, R)
    ref = np.array([(ref_greeks.delta(f, SPOT, kk, tt, R, ss), ref_greeks.gamma(f, SPOT, kk, tt, R, ss),
                     # vollib: per calendar day (annual / 365); ours: per trading day (annual / 252)
                     ref_greeks.theta(f, SPOT, kk, tt, R, ss) * 365.0 / TRADING_DAYS,
                     ref_greeks.vega(f, SPOT, kk, tt, R, ss))  # both per 1 vol point
                    for f, kk, tt, ss in ((_flag(c), kk, tt, ss) for c, kk, tt, ss in GRID)])
    np.testing.assert_allclose(delta, ref[:, 0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gamma, ref[:, 1], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(theta, ref[:, 2], rtol=1e-8, atol=1e-6)
    np.testing.assert_allclose(vega, ref[:, 3], rtol=1e-8, atol=1e-6)
    scalar = greeks(CALL, SPOT, 20000.0, 0.1, 0.2, R)
    assert bs_greeks_nb(CALL, SPOT, 20000.0, 0.1, 0.2, R) == tuple(g[()] for g in scalar)


def test_greeks_are_finite_differences_of_the_price():
    k, t, s, h = 20500.0, 10 * DAY, 0.18, 1e-4
    for cp in (CALL, PUT):
        delta, gamma, theta, vega = bs_greeks_nb(cp, SPOT, k, t, s, R)
        def p(spot=SPOT, tt=t, ss=s, cp=cp):
            return bs_price_nb(cp, spot, k, tt, ss, R)
        assert delta == pytest.approx((p(SPOT + 1) - p(SPOT - 1)) / 2, rel=1e-6)
        assert gamma == pytest.approx(p(SPOT + 1) - 2 * p() + p(SPOT - 1), rel=1e-4)
        assert theta == pytest.approx(-(p(tt=t + h) - p(tt=t - h)) / (2 * h) / TRADING_DAYS, rel=1e-6)
        assert vega == pytest.approx((p(ss=s + h) - p(ss=s - h)) / (2 * h) / 100, rel=1e-6)


def test_expiry_and_zero_vol_limits():
    assert bs_price_nb(CALL, SPOT, 19000.0, 0.0, 0.2, R) == 1000.0
    assert bs_price_nb(PUT, SPOT, 19000.0, -1.0, 0.2, R) == 0.0
    assert bs_price_nb(PUT, SPOT, 21000.0, 0.0, 0.2, R) == 1000.0
    t = 0.5
    kd = 20500.0 * math.exp(-R * t)
    assert bs_price_nb(CALL, SPOT, 20500.0, t, 0.0, R) == pytest.approx(max(SPOT - kd, 0.0), abs=1e-9)
    assert bs_price_nb(PUT, SPOT, 20500.0, t, 0.0, R) == pytest.approx(max(kd - SPOT, 0.0), abs=1e-9)
    assert bs_greeks_nb(CALL, SPOT, 19000.0, 0.0, 0.2, R) == (1.0, 0.0, 0.0, 0.0)
    assert bs_greeks_nb(PUT, SPOT, 19000.0, 0.0, 0.2, R) == (0.0, 0.0, 0.0, 0.0)
    assert bs_greeks_nb(PUT, SPOT, 21000.0, 0.0, 0.2, R) == (-1.0, 0.0, 0.0, 0.0)
    assert bs_greeks_nb(CALL, SPOT, SPOT, 0.0, 0.2, R)[0] == 0.5
    # zero vol, in the money: theta is the carry of the discounted strike
    d, g, th, v = bs_greeks_nb(CALL, SPOT, 19000.0, t, 0.0, R)
    assert (d, g, v) == (1.0, 0.0, 0.0)
    assert th == pytest.approx(-R * 19000.0 * math.exp(-R * t) / TRADING_DAYS)
    assert math.isnan(bs_price_nb(CALL, math.nan, 19000.0, t, 0.2, R))


def test_wrappers_broadcast_and_check_cp():
    out = price(CALL, SPOT, np.array([[19000.0], [21000.0]]), np.array([0.1, 0.2, 0.3]), 0.2)
    assert out.shape == (2, 3)
    assert out[0, 1] == bs_price_nb(CALL, SPOT, 19000.0, 0.2, 0.2, R)
    assert price(PUT, SPOT, 20000.0, 0.1, 0.2).shape == ()
    assert all(g.shape == (4,) for g in greeks([CALL, PUT, CALL, PUT], SPOT, 20000.0, 0.1, 0.2))
    with pytest.raises(ValueError, match="CALL"):
        price(0, SPOT, 20000.0, 0.1, 0.2)


# ---- parity and monotonicity ---------------------------------------------------------------------

def test_put_call_parity_across_the_surface():
    strikes = np.arange(12000.0, 28000.01, 50.0)
    for level, t in itertools.product((0.08, 0.15, 0.3, 0.8), (MINUTE, 30 * MINUTE, DAY, 7 * DAY, 30 * DAY, 90 * DAY)):
        sig = _surface_nb(level, SPOT, strikes, t)
        c = price(CALL, SPOT, strikes, t, sig, R)
        p = price(PUT, SPOT, strikes, t, sig, R)
        np.testing.assert_allclose(c - p, SPOT - strikes * math.exp(-R * t), rtol=0, atol=1e-8)


def test_monotone_in_strike_spot_time_and_vol():
    k = np.arange(15000.0, 25000.01, 50.0)
    c, p = price(CALL, SPOT, k, 0.1, 0.2), price(PUT, SPOT, k, 0.1, 0.2)
    assert np.all(np.diff(c) < 0) and np.all(np.diff(p) > 0)
    spots = np.arange(15000.0, 25000.01, 50.0)
    assert np.all(np.diff(price(CALL, spots, 20000.0, 0.1, 0.2)) > 0)
    assert np.all(np.diff(price(PUT, spots, 20000.0, 0.1, 0.2)) < 0)
    ts = np.geomspace(MINUTE, 1.0, 60)
    for strike in (17000.0, 20000.0, 23000.0):
        c = price(CALL, SPOT, strike, ts, 0.2)
        assert np.all(np.diff(c) >= 0) and np.all(np.diff(c)[c[:-1] > 1e-12] > 0)  # 0 until it isn't
        assert np.all(np.diff(price([CALL, PUT], SPOT, strike, 0.1, np.linspace(0.05, 0.8, 30)[:, None]), axis=0) > 0)
    # A European put is increasing in t unless deep in the money (there the discounting of the
    # strike, r K e^{-rt}, outweighs the time value): checked at and out of the money.
    for strike in (17000.0, 20000.0):
        p = price(PUT, SPOT, strike, ts, 0.2)
        assert np.all(np.diff(p) >= 0) and np.all(np.diff(p)[p[:-1] > 1e-12] > 0)


# ---- premium ticks -------------------------------------------------------------------------------

@pytest.mark.parametrize("x, expected", [
    (0.024, 0.05), (0.074, 0.05), (0.076, 0.10), (1234.5649, 1234.55), (1234.576, 1234.60),
    (-3.0, 0.05), (0.0, 0.05), (0.05, 0.05), (100.0, 100.0), (0.125, 0.15),
])
def test_round_premium(x, expected):
    assert round_premium_nb(x) == expected


def test_round_premium_keeps_nan_and_floor():
    assert math.isnan(round_premium_nb(math.nan))
    assert round_premium_nb(-1e9) == MIN_PREMIUM


# ---- implied vol ---------------------------------------------------------------------------------

def test_implied_vol_round_trips():
    cp, k, t, s = _columns()
    p = price(cp, SPOT, k, t, s, R)
    iv = implied_vol(cp, p, SPOT, k, t, R)
    assert np.all(np.isfinite(iv))
    np.testing.assert_allclose(price(cp, SPOT, k, t, iv, R), p, rtol=1e-10, atol=1e-9)
    # sigma itself comes back wherever the price carries it: time value above 1e-6 points and
    # above the rounding noise of an in-the-money price (~1e-12 of it)
    tv = p - np.maximum(cp * (SPOT - k * np.exp(-R * t)), 0.0)
    well_posed = (tv > 1e-6) & (tv > 1e-9 * p)
    assert well_posed.sum() > 0.8 * len(GRID)
    np.testing.assert_allclose(iv[well_posed], s[well_posed], rtol=1e-7)


def test_implied_vol_of_tick_priced_far_options():
    # a 1-minute, 800-point OTM put at the 0.05 minimum still has an implied vol that reprices it
    for cp, strike, t in ((PUT, 19200.0, MINUTE), (CALL, 20800.0, 5 * MINUTE), (PUT, 12000.0, 90 * DAY)):
        iv = implied_vol_nb(cp, 0.05, SPOT, strike, t, R)
        assert iv > 0 and bs_price_nb(cp, SPOT, strike, t, iv, R) == pytest.approx(0.05, rel=1e-10)


def test_implied_vol_nan_outside_the_no_arbitrage_bounds():
    t = 0.1
    kd = 19000.0 * math.exp(-R * t)
    assert math.isnan(implied_vol_nb(CALL, SPOT - kd - 0.01, SPOT, 19000.0, t, R))  # below intrinsic
    assert implied_vol_nb(CALL, SPOT - kd, SPOT, 19000.0, t, R) == 0.0               # at intrinsic
    assert math.isnan(implied_vol_nb(CALL, SPOT, SPOT, 19000.0, t, R))              # at the upper bound
    assert math.isnan(implied_vol_nb(PUT, kd, SPOT, 19000.0, t, R))
    assert math.isnan(implied_vol_nb(CALL, 100.0, SPOT, 20000.0, 0.0, R))           # expired
    assert math.isnan(implied_vol_nb(CALL, math.nan, SPOT, 20000.0, t, R))
    assert math.isnan(implied_vol_nb(PUT, -1.0, SPOT, 20000.0, t, R))


# ---- the surface ---------------------------------------------------------------------------------

def test_surface_skew_smile_and_term_structure():
    t30 = 21 * DAY
    fwd = SPOT * math.exp(R * t30)
    atm = surface_iv_nb(0.15, SPOT, fwd, t30)
    assert atm == pytest.approx(0.15, rel=1e-9)
    put_side = _surface_nb(0.15, SPOT, np.arange(16000.0, fwd, 50.0), t30)
    assert np.all(np.diff(put_side) < 0)                      # IV rises as the strike falls
    lo, hi = surface_iv_nb(0.15, SPOT, 0.95 * fwd, t30), surface_iv_nb(0.15, SPOT, 1.05 * fwd, t30)
    assert lo - atm > 0.02 and hi < atm and abs(hi - atm) < lo - atm
    far_call = surface_iv_nb(0.15, SPOT, 1.25 * fwd, t30)
    assert far_call > hi                                      # a smile on the call side, smaller
    # short expiries are steeper in strike space
    assert surface_iv_nb(0.15, SPOT, 19800.0, DAY) - surface_iv_nb(0.15, SPOT, SPOT, DAY) > \
        3 * (surface_iv_nb(0.15, SPOT, 19800.0, t30) - atm)
    # term structure: calm slopes up, stressed inverts; a 1-day ATM within 25 % of the 30-day level
    for level, sign in ((0.10, -1), (0.40, 1)):
        one_day = surface_iv_nb(level, SPOT, SPOT * math.exp(R * DAY), DAY)
        assert sign * (one_day - level) > 0 and abs(one_day / level - 1) < 0.25


def test_surface_floor_and_cap():
    strikes = np.arange(2000.0, 60000.0, 50.0)
    for level, t in itertools.product((0.0, 0.001, 0.08, 0.8, 3.0, 10.0), (MINUTE, DAY, 0.25, 1.0)):
        iv = _surface_nb(level, SPOT, strikes, t)
        assert np.all(iv >= 0.05) and np.all(iv <= 2.0)
    assert surface_iv_nb(0.001, SPOT, SPOT, 0.1) == 0.05
    assert surface_iv_nb(10.0, SPOT, SPOT, 0.1) > 1.99
    assert surface_iv_nb(0.15, SPOT, SPOT, 0.0) == surface_iv_nb(0.15, SPOT, SPOT, MINUTE)
    assert math.isnan(surface_iv_nb(math.nan, SPOT, SPOT, 0.1))


def test_surface_has_no_butterfly_or_calendar_arbitrage():
    """Calls decreasing and convex in strike on a 50-point grid (25 %..200 % of spot) for t from
    1 minute to 90 trading days and levels 8..80 %; total variance non-decreasing in t."""
    strikes = np.arange(5000.0, 40000.01, 50.0)
    ts = np.geomspace(MINUTE, 90 * DAY, 30)
    for level in np.linspace(0.08, 0.80, 13):
        prev_w = None
        for t in ts:
            sig = _surface_nb(level, SPOT, strikes, t)
            c = price(CALL, SPOT, strikes, t, sig, R)
            assert np.all(np.diff(c) <= 1e-9), (level, t)
            assert np.all(c[:-2] - 2 * c[1:-1] + c[2:] >= -1e-9), (level, t)  # round-off ~1e-11
            k = np.log(strikes / SPOT) - R * t                                 # forward moneyness
            w = sig * sig * t
            if prev_w is not None:
                assert np.all(w >= np.interp(k, *prev_w) * (1 - 1e-9)), (level, t)
            prev_w = (k, w)


# ---- the vol level -------------------------------------------------------------------------------

def _gbm(vol: float, years: int = 10, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """375 one-minute bars a day on weekdays from 2016-01-04, GBM closes at annual vol `vol`."""
    first = int(np.datetime64("2016-01-04", "D").astype(np.int64))
    cal = np.arange(first, first + years * 400)
    days = cal[(cal + 3) % 7 < 5][: 252 * years]
    rng = np.random.default_rng(seed)
    r = rng.standard_normal(days.size * 375) * vol / math.sqrt(252 * 375)
    return np.repeat(days, 375), 8000.0 * np.exp(np.cumsum(r))


@pytest.fixture(scope="module")
def gbm15():
    return _gbm(0.15)


def _daily(level: np.ndarray) -> np.ndarray:
    return level[::375]


def test_vol_level_is_deterministic_and_constant_within_a_day(gbm15):
    day, close = gbm15
    a, b = vol_level(day, close), vol_level(day.copy(), close.copy())
    assert a.dtype == np.float64 and a.shape == day.shape
    np.testing.assert_array_equal(a, b)
    assert np.all(a.reshape(-1, 375) == a[::375, None])
    assert not np.array_equal(a, vol_level(day, close, seed=1))


def test_vol_level_slices_agree_on_shared_days(gbm15):
    day, close = gbm15
    full = vol_level(day, close)
    start, stop = 500 * 375, 1700 * 375
    part = vol_level(day[start:stop], close[start:stop])
    warm = 61 * 375  # the realized-vol window needs 61 trading days before a day
    np.testing.assert_array_equal(part[warm:], full[start + warm:stop])


def test_vol_level_range_and_spikes(gbm15):
    day, close = gbm15
    lv = _daily(vol_level(day, close))
    assert 0.10 <= np.median(lv) <= 0.25 and 0.13 <= np.median(lv) <= 0.17
    assert np.mean((lv > 0.10) & (lv < 0.25)) > 0.9
    assert np.all(lv >= 0.05) and np.all(lv <= 1.5)
    # rare spikes: over eight seeds, a few days above 40 % a decade on average, never many
    frac = [np.mean(_daily(vol_level(day, close, seed=s)) > 0.40) for s in range(8)]
    assert 0 < np.mean(frac) < 0.01 and max(frac) < 0.03
    assert sum(f > 0 for f in frac) >= 4


def test_vol_level_rises_with_realized_vol(gbm15):
    day, close = gbm15
    calm = _daily(vol_level(day, close))
    wild = _daily(vol_level(*_gbm(0.30)))
    assert np.median(wild) > 1.3 * np.median(calm)
    assert np.mean(wild > calm) > 0.9


def test_vol_level_is_fast(gbm15):
    day, close = gbm15
    vol_level(day, close)
    best = min(_timed(vol_level, day, close) for _ in range(3))
    assert best < 0.25  # ~10 ms here for 945 k bars; generous on a shared machine


def _timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def test_vol_level_rejects_bad_input():
    day = np.repeat(np.arange(17000, 17003), 3)
    close = np.full(9, 100.0)
    assert vol_level(day[:0], close[:0]).shape == (0,)
    with pytest.raises(ValueError, match="non-decreasing"):
        vol_level(day[::-1], close)
    with pytest.raises(ValueError, match="positive"):
        vol_level(day, np.where(np.arange(9) == 4, 0.0, 100.0))
    with pytest.raises(ValueError, match="2000-01-01"):
        vol_level(day - 10000, close)
    with pytest.raises(ValueError, match="integer"):
        vol_level(day.astype(float), close)
    with pytest.raises(ValueError, match="one length"):
        vol_level(day, close[:5])
