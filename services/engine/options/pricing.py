"""European index-option pricing (NIFTY: cash-settled, European): Black-Scholes prices, greeks and
implied vol as numba scalar kernels, a synthetic SSVI implied-vol surface for SIM-NIFTY options,
and an India-VIX-like daily ATM vol level. Time to expiry is always in years of TRADING time:
trading minutes left / YEAR_MINUTES. Prices are index points; vols and rates are annual fractions.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit

__all__ = [
    "CALL", "PUT", "RISK_FREE_RATE", "TICK", "MIN_PREMIUM", "SESSION_MINUTES", "TRADING_DAYS", "YEAR_MINUTES",
    "bs_price_nb", "bs_price_fast_nb", "bs_price_log_nb", "bs_greeks_nb", "implied_vol_nb", "round_premium_nb",
    "surface_iv_nb", "surface_time_nb", "surface_sigma_nb",
    "vol_level", "price", "greeks", "implied_vol",
]

CALL = 1
PUT = -1
# Annual, continuously compounded. A documented simplification: one flat rate for 2016-2025, about
# where the Indian 91-day T-bill yield and the RBI repo rate sat over the decade (repo 4.0-6.75 %,
# T-bill roughly 3.2-7.3 %), applied per year of trading time like the vols. Index options carry
# no dividend here (the ~1.3 % NIFTY dividend yield is ignored), so the forward is spot * exp(r t).
RISK_FREE_RATE = 0.065
TICK = 0.05                        # NSE index-option premium tick, points
MIN_PREMIUM = 0.05                 # the smallest quotable premium: one tick
SESSION_MINUTES = 375.0            # NSE 09:15-15:30
TRADING_DAYS = 252.0
YEAR_MINUTES = SESSION_MINUTES * TRADING_DAYS  # t = trading minutes to expiry / YEAR_MINUTES

_TICKS_PER_POINT = 20.0            # 1 / TICK, exact, so k / 20 is the nearest double to k ticks
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_MINUTE = 1.0 / YEAR_MINUTES

# numba's default (python) error model guards every float division with a zero check that raises;
# the kernels below divide only by quantities their branches keep positive, and dropping the
# guards makes bs_price_nb ~13 % faster (37 -> 32 ns). NaN inputs still propagate to NaN outputs.
# No fastmath: 'contract' (FMA) and 'arcp' gain another ~9 % but make the last bits depend on the
# CPU, and runs must reproduce exactly on any machine.
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


# ---- Black-Scholes (Hull, "Options, Futures, and Other Derivatives", ch. 15; equivalently Black
# (1976) on the forward F = S e^{rt}, discounted by e^{-rt}) --------------------------------------

@njit(**_JIT)
def _ncdf_nb(x):
    """Standard normal CDF via erfc: accurate to a few ulps in relative terms in both tails."""
    return 0.5 * math.erfc(-x * _INV_SQRT2)


@njit(**_JIT)
def _intrinsic_nb(cp, spot, strike_pv):
    """max(S - K', 0) for a call, max(K' - S, 0) for a put; K' is the strike or its present value."""
    if cp == CALL:
        return max(spot - strike_pv, 0.0)
    return max(strike_pv - spot, 0.0)


@njit(**_JIT)
def bs_price_fast_nb(cp, spot, strike, sqrt_t, t, sigma, disc):
    """Black-Scholes price, index points, with the per-bar quantities precomputed by the caller.

    cp: CALL or PUT; spot, strike: points; t: trading years to expiry, sqrt_t = sqrt(t);
    sigma: annual vol (0.15 = 15 %); disc = exp(-r t). t <= 0: intrinsic; sigma <= 0: the
    zero-vol limit max(S - K disc, 0) (call) / max(K disc - S, 0) (put).
    Measures the same as bs_price_nb inside a numba loop over a bar's legs (LLVM inlines it and
    hoists sqrt and exp out of the legs loop itself); it saves them where the compiler cannot.
    """
    if t <= 0.0:
        return _intrinsic_nb(cp, spot, strike)
    kd = strike * disc
    if sigma <= 0.0:
        return _intrinsic_nb(cp, spot, kd)
    sv = sigma * sqrt_t
    d1 = math.log(spot / kd) / sv + 0.5 * sv
    d2 = d1 - sv
    if cp == CALL:
        return max(spot * _ncdf_nb(d1) - kd * _ncdf_nb(d2), 0.0)
    return max(kd * _ncdf_nb(-d2) - spot * _ncdf_nb(-d1), 0.0)


@njit(**_JIT)
def bs_price_nb(cp, spot, strike, t, sigma, r):
    """Black-Scholes price of a European option, index points.

    cp: CALL (1) or PUT (-1); spot, strike: points; t: trading years to expiry; sigma: annual vol;
    r: annual continuous rate; no dividend. t <= 0: plain intrinsic; sigma <= 0: discounted
    intrinsic max(S - K e^{-rt}, 0) (call) / max(K e^{-rt} - S, 0) (put).
    """
    if t <= 0.0:
        return _intrinsic_nb(cp, spot, strike)
    return bs_price_fast_nb(cp, spot, strike, math.sqrt(t), t, sigma, math.exp(-r * t))


@njit(**_JIT)
def bs_greeks_nb(cp, spot, strike, t, sigma, r):
    """(delta, gamma, theta, vega) of a European option under Black-Scholes (Hull ch. 19).

    delta: per 1 point of spot; gamma: per point^2; theta: points per TRADING day of time passing
    (dV/d(calendar time) in trading years / TRADING_DAYS, since t counts trading time; usually
    negative); vega: points per 1 volatility point (sigma + 0.01). Inputs as bs_price_nb.
    At or past expiry, and at zero vol, the greeks of the (discounted) intrinsic value: delta is
    the step (1/2 at the money), gamma and vega 0, theta the carry of K e^{-rt} (0 at expiry).
    """
    sign = 1.0 if cp == CALL else -1.0
    if t <= 0.0:
        m = spot - strike
        return (sign * 0.5 if m == 0.0 else (sign if sign * m > 0.0 else 0.0)), 0.0, 0.0, 0.0
    disc = math.exp(-r * t)
    kd = strike * disc
    if sigma <= 0.0:
        m = spot - kd
        if m == 0.0:
            return sign * 0.5, 0.0, -0.5 * sign * r * kd / TRADING_DAYS, 0.0
        if sign * m > 0.0:
            return sign, 0.0, -sign * r * kd / TRADING_DAYS, 0.0
        return 0.0, 0.0, 0.0, 0.0
    sqrt_t = math.sqrt(t)
    sv = sigma * sqrt_t
    d1 = math.log(spot / kd) / sv + 0.5 * sv
    d2 = d1 - sv
    pdf = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
    decay = -spot * pdf * sigma / (2.0 * sqrt_t)
    if cp == CALL:
        delta = _ncdf_nb(d1)
        theta = decay - r * kd * _ncdf_nb(d2)
    else:
        delta = -_ncdf_nb(-d1)
        theta = decay + r * kd * _ncdf_nb(-d2)
    return delta, pdf / (spot * sv), theta / TRADING_DAYS, spot * pdf * sqrt_t * 0.01


# ---- implied vol -----------------------------------------------------------------------------

@njit(**_JIT)
def _otm_price_and_slope_nb(otm_cp, spot, kd, x, s):
    """Price of the out-of-the-money option at total vol s = sigma sqrt(t), and dPrice/ds.

    x = ln(S / K'), K' = K e^{-rt}; dPrice/ds = S n(d1) for calls and puts alike.
    """
    d1 = x / s + 0.5 * s
    d2 = d1 - s
    if otm_cp == CALL:
        p = spot * _ncdf_nb(d1) - kd * _ncdf_nb(d2)
    else:
        p = kd * _ncdf_nb(-d2) - spot * _ncdf_nb(-d1)
    return p, spot * _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)


@njit(**_JIT)
def implied_vol_nb(cp, price, spot, strike, t, r):
    """Black-Scholes implied vol (annual fraction) of a European option price in index points.

    NaN when t <= 0, an input is NaN or not positive, the price is below the no-arbitrage lower
    bound (discounted intrinsic max(S - K e^{-rt}, 0) for a call) or at/above the upper bound
    (S for a call, K e^{-rt} for a put); 0.0 for a price equal to the lower bound.
    Solves for the out-of-the-money option's time value (by put-call parity both options share
    it), with Newton steps on ln(price) in s = sigma sqrt(t), safeguarded by a bisection
    bracket (Numerical Recipes' rtsafe; the log objective follows Jaeckel, "Let's be rational",
    2015, and keeps Newton well-behaved for far out-of-the-money prices). Converges to machine
    precision in s; sigma is as exact as the time value allows: relative error < 1e-10 for
    t 1 minute..1 year, vols 5..150 %, strikes +-40 %, time value > 0.001 point.
    """
    if not (t > 0.0 and spot > 0.0 and strike > 0.0) or math.isnan(price):
        return np.nan
    kd = strike * math.exp(-r * t)
    if cp == CALL:
        lower, upper = max(spot - kd, 0.0), spot
    else:
        lower, upper = max(kd - spot, 0.0), kd
    if price >= upper or price < lower - 1e-13 * (spot + kd):
        return np.nan
    target = price - lower            # the time value = the out-of-the-money option's price
    if target <= 0.0:
        return 0.0
    otm_cp = CALL if spot <= kd else PUT
    x = math.log(spot / kd)
    log_target = math.log(target)
    lo, hi = 0.0, np.inf
    # Start at the larger of the ATM (Brenner-Subrahmanyam) and the moneyness-implied total vol.
    s = max(math.sqrt(2.0 * math.pi) * target / spot, math.sqrt(2.0 * abs(x)), 1e-3)
    for _ in range(200):
        p, slope = _otm_price_and_slope_nb(otm_cp, spot, kd, x, s)
        if p > target:
            hi = s
        else:
            lo = s
        if p > 0.0 and slope > 0.0:
            step = (math.log(p) - log_target) * p / slope
            s_new = s - step
        else:
            s_new = np.nan
        if not (lo < s_new < hi):       # Newton left the bracket (or had no slope): bisect
            s_new = 0.5 * (lo + hi) if hi < np.inf else 2.0 * s
        if abs(s_new - s) <= 1e-15 * s or (hi < np.inf and hi - lo <= 1e-15 * hi):
            s = s_new
            break
        s = s_new
        if s > 1e3:                   # price indistinguishable from the upper bound
            return np.nan
    return s / math.sqrt(t)


# ---- premium ticks ---------------------------------------------------------------------------

@njit(**_JIT)
def round_premium_nb(x):
    """Premium (points) to the nearest 0.05 tick, halves up, never below MIN_PREMIUM: an option
    still has a quotable price; <= 0 gives 0.05. NaN stays NaN (a missing price, not a cheap one)."""
    if math.isnan(x):
        return x
    k = np.floor(x * _TICKS_PER_POINT + 0.5)
    return max(k, 1.0) / _TICKS_PER_POINT


# ---- the synthetic SIM-NIFTY implied-vol surface ---------------------------------------------
# SSVI (Gatheral & Jacquier, "Arbitrage-free SVI volatility surfaces", Quant. Finance 14, 2014):
#   w(k, t) = theta_t / 2 * (1 + rho phi k + sqrt((phi k + rho)^2 + 1 - rho^2)),
# w total implied variance, k = ln(K / F) forward log-moneyness, theta_t the ATM total variance,
# phi(theta) = eta / sqrt(theta (1 + theta)) (their power law with gamma = 1/2). For small theta,
# phi k ~ eta k / (sigma_atm sqrt(t)): the smile is a function of moneyness in standard deviations,
# so short expiries are steeper in strike space (ATM skew dsigma/dk ~ rho eta / (2 sqrt(t))).
# eta (1 + |rho|) <= 2 makes it free of butterfly arbitrage and theta_t increasing in t free of
# calendar arbitrage (their Remark 4.4 / Theorem 4.1). rho = -0.5, eta = 0.8 give the shape of a
# NIFTY 30-day smile, roughly: puts richer than calls, a smaller smile on the call side (at 14 %
# ATM: ~22 % at the 90 % strike, ~18 % at 95 %, ~12 % at 105 %, ~12.5 % at 110 %).
# The floor is max(C_ssvi, C_floor): still decreasing and convex in strike. A hard cap would be
# min(C_ssvi, C_cap), which is not convex (a concave kink in the put wing where it binds), so the
# cap is smooth: sigma / (1 + (sigma / cap)^8)^(1/8), which changes vols below 1.0 by < 0.05 % and
# keeps call prices convex where it binds (the wing slope of w is small there; checked on a
# 50-point strike grid, 1 minute..90 days, levels 8..80 %, in tests/engine/options/test_pricing.py).
_SSVI_RHO = -0.5
_SSVI_ETA = 0.8
_T30 = 21.0 / TRADING_DAYS   # 30 calendar days ~ 21 NSE trading days
_ONE_DAY = 1.0 / TRADING_DAYS
# Term structure of ATM vol: sigma_atm(t) = level * (t / T30)^beta, t clamped to [1 day, 1 year].
# Calm markets slope up (short dated below the 30-day level), stressed ones invert, as implied-vol
# term structures of equity indexes do (contango in calm, backwardation in stress); flat at 15 %.
_TERM_BETA = 0.06
_TERM_PIVOT = 0.15
_TERM_WIDTH = 0.08
_IV_FLOOR = 0.05
_IV_CAP = 2.0


@njit(**_JIT)
def surface_time_nb(level, t):
    """The surface's slice at one time: (te, theta, phi) for 30-day ATM level and trading years t
    (te = t clamped to >= 1 minute, theta the ATM total variance, phi SSVI's curvature); theta < 0
    marks level <= 0 (the floor vol). Shared by every strike of an expiry at a bar."""
    if level <= 0.0:
        return _MINUTE, -1.0, 0.0
    te = max(t, _MINUTE)
    beta = -_TERM_BETA * math.tanh((level - _TERM_PIVOT) / _TERM_WIDTH)
    atm = level * math.exp(beta * math.log(min(max(te, _ONE_DAY), 1.0) / _T30))
    theta = atm * atm * te
    phi = _SSVI_ETA / math.sqrt(theta * (1.0 + theta))
    return te, theta, phi


@njit(**_JIT)
def surface_sigma_nb(te, theta, phi, log_k_over_s):
    """Implied vol of one strike on a slice from surface_time_nb; log_k_over_s = ln(K / S)."""
    if theta < 0.0:
        return _IV_FLOOR
    y = phi * (log_k_over_s - RISK_FREE_RATE * te)
    w = 0.5 * theta * (1.0 + _SSVI_RHO * y + math.sqrt((y + _SSVI_RHO) ** 2 + 1.0 - _SSVI_RHO * _SSVI_RHO))
    var = w / te
    u2 = var / (_IV_CAP * _IV_CAP)
    u4 = u2 * u2
    # sigma / (1 + (sigma / cap)^8)^(1/8), the eighth root as three square roots (pow is slower)
    return max(math.sqrt(var) / math.sqrt(math.sqrt(math.sqrt(1.0 + u4 * u4))), _IV_FLOOR)


@njit(**_JIT)
def surface_iv_nb(level, spot, strike, t):
    """Implied vol (annual fraction) of SIM-NIFTY options: level = 30-day ATM vol (India-VIX-like,
    0.15 = 15 %); spot, strike: points; t: trading years (clamped to >= 1 trading minute).
    Log-moneyness is taken against the forward spot * exp(RISK_FREE_RATE t). In [0.05, 2.0];
    NaN for a NaN level.
    """
    te, theta, phi = surface_time_nb(level, t)
    return surface_sigma_nb(te, theta, phi, math.log(strike / spot))


@njit(**_JIT)
def bs_price_log_nb(cp, spot, strike, log_s_over_k, t, sqrt_t, sigma, disc, r):
    """Black-Scholes price as bs_price_fast_nb, with ln(S / K) given (a bar's ln S and a
    leg's ln K, each computed once) instead of a log per call; t > 0, sigma > 0."""
    kd = strike * disc
    sv = sigma * sqrt_t
    d1 = (log_s_over_k + r * t) / sv + 0.5 * sv
    d2 = d1 - sv
    if cp == CALL:
        return max(spot * _ncdf_nb(d1) - kd * _ncdf_nb(d2), 0.0)
    return max(kd * _ncdf_nb(-d2) - spot * _ncdf_nb(-d1), 0.0)


# ---- the India-VIX-like ATM vol level ----------------------------------------------------------
# level(day) = clip(_OU_WEIGHT * ou(day) + (1 - _OU_WEIGHT) * _VRP * rv(day), 0.05, 1.5), one value
# per trading day (held for all its bars). ou: exp of a daily Ornstein-Uhlenbeck (AR(1)) in log
# space with rare upward jumps, on a fixed calendar-day grid from 2000-01-01, so a day's value
# depends only on (seed, day number). rv: annualized RMS of the previous _RV_WINDOW close-to-close
# daily log returns, exponentially weighted (span 15 days) and truncated: it uses only closes of
# days BEFORE the day (no look-ahead inside a day). India VIX over 2016-2025: median ~14-15 %,
# mostly 10-25 %, 86 at its March 2020 peak; implied sits ~10 % over realized (the premium).
_GRID_START = 10957            # 2000-01-01, days since 1970-01-01
_GRID_DAYS = 36525             # through 2099-12-31
_OU_CENTER = 0.13              # exp(0); with the jumps ou's median is ~13.5 %, the level's ~15 %
_OU_HALF_LIFE = 40.0           # calendar days
_OU_SD = 0.25                  # stationary sd of the log level (diffusive part)
_JUMP_RATE = 1.5 / 365.25      # per calendar day
_JUMP_MIN = 0.6                # log-size of a jump: min(_JUMP_MIN + Exp(_JUMP_MEAN), _JUMP_MAX)
_JUMP_MEAN = 0.5
_JUMP_MAX = 1.8                # x6 at most in one day (India VIX: ~x2-3 within weeks in March 2020)
_JUMP_HALF_LIFE = 14.0         # calendar days: spikes fade over weeks, faster than the diffusion
_OU_WEIGHT = 0.5
_VRP = 1.1                     # implied over realized
_RV_WINDOW = 60                # trading days of returns; weight beyond: 0.875^60 ~ 3e-4
_RV_DECAY = 1.0 - 2.0 / (15.0 + 1.0)
_LEVEL_FLOOR = 0.05
_LEVEL_CAP = 1.5               # India VIX has never been much above 0.9


@njit(cache=True, nogil=True)
def _ar1_nb(a, shocks, out):
    """out[i] = a * out[i-1] + shocks[i], out[-1] = 0: the OU path (float64[G] in, out)."""
    x = 0.0
    for i in range(shocks.shape[0]):
        x = a * x + shocks[i]
        out[i] = x


@lru_cache(maxsize=8)
def _ou_level(seed: int) -> np.ndarray:
    """float64[_GRID_DAYS], read-only: the OU level of each calendar day from 2000-01-01."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(_GRID_DAYS)
    u = rng.random(_GRID_DAYS)
    e = rng.standard_exponential(_GRID_DAYS)
    a = 0.5 ** (1.0 / _OU_HALF_LIFE)
    x = np.empty(_GRID_DAYS)
    _ar1_nb(a, _OU_SD * math.sqrt(1.0 - a * a) * z, x)
    jump_sizes = np.where(u < _JUMP_RATE, np.minimum(_JUMP_MIN + _JUMP_MEAN * e, _JUMP_MAX), 0.0)
    jumps = np.empty(_GRID_DAYS)
    _ar1_nb(0.5 ** (1.0 / _JUMP_HALF_LIFE), jump_sizes, jumps)
    x += jumps
    level = _OU_CENTER * np.exp(x)
    level.flags.writeable = False
    return level


def _check_level_inputs(day: np.ndarray, close: np.ndarray) -> None:
    if day.ndim != 1 or close.shape != day.shape:
        raise ValueError(f"vol_level: day and close must be 1-d arrays of one length, got shapes "
                         f"{day.shape} and {close.shape}")
    if np.any(np.diff(day) < 0):
        raise ValueError("vol_level: day must be non-decreasing (bars in time order)")
    if day[0] < _GRID_START or day[-1] >= _GRID_START + _GRID_DAYS:
        raise ValueError(f"vol_level: days must lie in 2000-01-01..2099-12-31 "
                         f"(day numbers {_GRID_START}..{_GRID_START + _GRID_DAYS - 1}), got {day[0]}..{day[-1]}")
    if not np.all(np.isfinite(close) & (close > 0.0)):
        raise ValueError("vol_level: close must be finite and positive")


def vol_level(day: np.ndarray, close: np.ndarray, seed: int = 20160101) -> np.ndarray:
    """float64[n]: the 30-day ATM implied-vol level (annual fraction) of each bar.

    day: int64[n] exchange-local trading date of each bar, days since 1970-01-01, non-decreasing;
    close: float64[n] bar closes. Constant within a day. Deterministic in (day, close, seed);
    a day's value is the same in any slice of the input that holds at least _RV_WINDOW + 1 = 61
    trading days before it (the realized-vol part's window); the OU part needs no history.
    """
    day = np.asarray(day)
    if day.dtype.kind not in "iu":
        raise ValueError(f"vol_level: day must be integer days since 1970-01-01, got dtype {day.dtype}")
    day = day.astype(np.int64, copy=False)
    close = np.asarray(close, dtype=np.float64)
    if day.size == 0 and close.size == 0:
        return np.empty(0)
    _check_level_inputs(day, close)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(day)) + 1))   # first bar of each day
    counts = np.diff(np.concatenate((starts, [day.size])))
    day_close = close[np.concatenate((starts[1:] - 1, [day.size - 1]))]  # last close of each day
    ou = _ou_level(int(seed))[day[starts] - _GRID_START]

    n_days = day_close.size
    r2 = np.zeros(n_days)                                   # r2[d]: squared return of day d
    r2[1:] = np.log(day_close[1:] / day_close[:-1]) ** 2
    has = np.ones(n_days)
    has[0] = 0.0
    num = np.zeros(n_days)
    den = np.zeros(n_days)
    # Day d weighs the returns of days d-1-j, j < window, by decay^j. One fixed summation order
    # per element, so the value of a day is bit-identical in every slice with enough history.
    for j in range(min(_RV_WINDOW, n_days - 1)):
        w = _RV_DECAY ** j
        num[j + 1:] += w * r2[: n_days - 1 - j]
        den[j + 1:] += w * has[: n_days - 1 - j]
    rv = np.sqrt(TRADING_DAYS * num / np.where(den > 0.0, den, 1.0))
    implied_rv = np.where(den > 0.0, _VRP * rv, ou)         # the first day has no return yet
    level = np.clip(_OU_WEIGHT * ou + (1.0 - _OU_WEIGHT) * implied_rv, _LEVEL_FLOOR, _LEVEL_CAP)
    return np.repeat(level, counts)


# ---- vectorized wrappers for the results layer and tests ----------------------------------------

@njit(**_JIT)
def _price_many_nb(cp, spot, strike, t, sigma, r, out):
    for i in range(out.shape[0]):
        out[i] = bs_price_nb(cp[i], spot[i], strike[i], t[i], sigma[i], r[i])


@njit(**_JIT)
def _greeks_many_nb(cp, spot, strike, t, sigma, r, out):
    for i in range(out.shape[0]):
        delta, gamma, theta, vega = bs_greeks_nb(cp[i], spot[i], strike[i], t[i], sigma[i], r[i])
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = delta, gamma, theta, vega


@njit(**_JIT)
def _iv_many_nb(cp, prices, spot, strike, t, r, out):
    for i in range(out.shape[0]):
        out[i] = implied_vol_nb(cp[i], prices[i], spot[i], strike[i], t[i], r[i])


def _flat(cp, *floats):
    """Broadcast, then contiguous 1-d copies: (shape, int64 cp, float64 arrays...)."""
    arrays = np.broadcast_arrays(np.asarray(cp), *(np.asarray(x, dtype=np.float64) for x in floats))
    shape = arrays[0].shape
    cps = np.ascontiguousarray(arrays[0].ravel(), dtype=np.int64)
    if not np.all((cps == CALL) | (cps == PUT)):
        raise ValueError(f"cp must be CALL ({CALL}) or PUT ({PUT})")
    return (shape, cps, *(np.ascontiguousarray(a.ravel(), dtype=np.float64) for a in arrays[1:]))


def price(cp, spot, strike, t, sigma, r=RISK_FREE_RATE) -> np.ndarray:
    """Black-Scholes prices (points), broadcast over array or scalar inputs; units as bs_price_nb."""
    shape, *args = _flat(cp, spot, strike, t, sigma, r)
    out = np.empty(args[0].size)
    _price_many_nb(*args, out)
    return out.reshape(shape)


def greeks(cp, spot, strike, t, sigma, r=RISK_FREE_RATE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(delta, gamma, theta, vega) arrays, broadcast over the inputs; units as bs_greeks_nb."""
    shape, *args = _flat(cp, spot, strike, t, sigma, r)
    out = np.empty((args[0].size, 4))
    _greeks_many_nb(*args, out)
    return tuple(out[:, i].reshape(shape) for i in range(4))


def implied_vol(cp, option_price, spot, strike, t, r=RISK_FREE_RATE) -> np.ndarray:
    """Implied vols (annual fractions; NaN where none exists), broadcast; units as implied_vol_nb."""
    shape, *args = _flat(cp, option_price, spot, strike, t, r)
    out = np.empty(args[0].size)
    _iv_many_nb(*args, out)
    return out.reshape(shape)
