"""Quotes of one option contract at one bar, numba-pure: the synthetic chain's premium, IV and
delta, the chain file's row of a contract at a bar, and trading time to expiry.

The legs kernel (legs_kernel.py) and strike selection (selection.py) price only the contracts a
run selects or holds, through these; nothing here imports pandas or does I/O.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .layouts import F_CLOSE, F_HIGH, F_LOW, F_OPEN
from .pricing import (
    CALL, SESSION_MINUTES, YEAR_MINUTES, bs_greeks_nb, bs_price_log_nb, implied_vol_nb, round_premium_nb,
    surface_sigma_nb, surface_time_nb,
)

_PROBE = 8              # rows chain_row_nb steps forward before it falls back to binary search


@njit(cache=True, nogil=True)
def chain_row_nb(ptr, bar_arr, c, bar, cursor):
    """The row of contract `c` at exactly bar index `bar`, or -1 when it has none (or c < 0).

    ptr: int64[C+1], bar_arr: int64[M] from `ChainArrays`. cursor: a row index kept per leg by the
    caller; start it at ptr[c] and store each row returned. Any cursor gives the right answer; one at or
    a few rows behind `bar`'s row answers in O(1), so a leg held bar after bar costs O(1) a bar. From a
    cursor further behind, the search is binary from the cursor on; from one outside the contract or
    past `bar`, binary over the whole contract.
    """
    if c < 0:
        return -1
    lo = ptr[c]
    hi = ptr[c + 1]
    i = cursor
    if i < lo or i >= hi or bar_arr[i] > bar:
        i = lo
    stop = min(i + _PROBE, hi)
    while i < stop and bar_arr[i] < bar:
        i += 1
    if i == stop and i < hi:
        right = hi
        while i < right:
            mid = (i + right) >> 1
            if bar_arr[mid] < bar:
                i = mid + 1
            else:
                right = mid
    if i < hi and bar_arr[i] == bar:
        return i
    return -1


@njit(cache=True, nogil=True, inline="always")
def t_years_nb(exp_sess_k, sess_i, tleft_i, extra):
    """Trading time from the bar's close (+ extra minutes) to the expiry's close, in years."""
    return ((exp_sess_k - sess_i) * SESSION_MINUTES + tleft_i + extra) / YEAR_MINUTES


@njit(cache=True, nogil=True, inline="always")
def _premium_nb(cp, spot, strike, ln_spot, ln_strike, t, te, theta, phi, sqrt_t, disc, rate):
    """The synthetic premium from a bar's ln S, a leg's ln K and an expiry's slice (t > 0)."""
    sigma = surface_sigma_nb(te, theta, phi, ln_strike - ln_spot)
    return round_premium_nb(bs_price_log_nb(cp, spot, strike, ln_spot - ln_strike, t, sqrt_t, sigma, disc, rate))


@njit(cache=True, nogil=True)
def synth_price_nb(cp, spot, strike, t, level, rate):
    """A synthetic chain's premium: Black-Scholes on the surface's IV, on the 0.05 tick;
    intrinsic value once the expiry has closed (t <= 0). The legs kernel computes the same
    numbers with its per-bar cache (price_nb): same operations, same bits."""
    if t <= 0.0:
        return max(cp * (spot - strike), 0.0)
    te, theta, phi = surface_time_nb(level, t)
    return _premium_nb(cp, spot, strike, math.log(spot), math.log(strike), t, te, theta, phi, math.sqrt(t),
                       math.exp(-rate * t), rate)


@njit(cache=True, nogil=True)
def iv_delta_nb(cp, price, spot, strike, t, level, rate, synthetic):
    """(IV in percent, delta) of a contract priced `price` (NaNs past expiry)."""
    if t <= 0.0:
        return np.nan, np.nan
    if synthetic:
        te, theta, phi = surface_time_nb(level, t)
        sigma = surface_sigma_nb(te, theta, phi, math.log(strike) - math.log(spot))  # as the premium's
    else:
        sigma = implied_vol_nb(cp, price, spot, strike, t, rate)
        if not sigma > 0.0:
            return np.nan, np.nan
    delta = bs_greeks_nb(cp, spot, strike, t, sigma, rate)[0]
    return 100.0 * sigma, delta


@njit(cache=True, nogil=True, inline="always")
def spot_nb(field, cp, i, open_, high, low, close):
    """The underlying's price behind a premium field: a call's high comes with the spot's
    high, a put's with its low (premium is monotone in spot at a fixed time)."""
    if field == F_OPEN:
        return open_[i]
    if field == F_CLOSE:
        return close[i]
    up = (field == F_HIGH) == (cp == CALL)
    return high[i] if up else low[i]


# The per-bar cache of price_nb, float64[BAR_CACHE]: the bar it holds, ln(open/high/low/close)
# (NaN until needed), and two expiry slices (the close's time and the open's): the expiry index
# then t, te, theta, phi, sqrt(t), exp(-r t). Legs of one expiry share all but their strike's work.
BAR_CACHE = 19
_BC_BAR = 0
_BC_LN = 1
_BC_CLOSE = 5
_BC_OPEN = 12


@njit(cache=True, nogil=True, inline="always")
def _slice_nb(bc, at, k, exp_sess_k, sess_i, tleft_i, extra, level, rate):
    """Fill bc[at:at + 7] with expiry k's slice at this bar unless it holds it already."""
    if bc[at] != k:
        t = t_years_nb(exp_sess_k, sess_i, tleft_i, extra)
        te, theta, phi = surface_time_nb(level, t)
        bc[at] = k
        bc[at + 1] = t
        bc[at + 2] = te
        bc[at + 3] = theta
        bc[at + 4] = phi
        bc[at + 5] = math.sqrt(t) if t > 0.0 else 0.0
        bc[at + 6] = math.exp(-rate * t)


@njit(cache=True, nogil=True, inline="always")
def synth_at_nb(field, src, i, cp, strike, ln_strike, k, spot, sess, tleft, vol, exp_sess, bar_min, rate, bc):
    """The synthetic premium of a contract (cp, strike, expiry k) at bar i's field, spot being
    the bar's price src (F_*); equal to synth_price_nb's bit for bit, with what the legs of a
    bar share (ln S, the expiry's slice) kept in bc."""
    if bc[_BC_BAR] != i:
        bc[_BC_BAR] = i
        for j in range(4):
            bc[_BC_LN + j] = np.nan
        bc[_BC_CLOSE] = -1.0
        bc[_BC_OPEN] = -1.0
    ln_spot = bc[_BC_LN + src]
    if ln_spot != ln_spot:
        ln_spot = bc[_BC_LN + src] = math.log(spot)
    at = _BC_OPEN if field == F_OPEN else _BC_CLOSE
    _slice_nb(bc, at, k, exp_sess[k], sess[i], tleft[i], bar_min if field == F_OPEN else 0.0, vol[i], rate)
    t = bc[at + 1]
    if t <= 0.0:
        return max(cp * (spot - strike), 0.0)
    return _premium_nb(cp, spot, strike, ln_spot, ln_strike, t, bc[at + 2], bc[at + 3], bc[at + 4], bc[at + 5],
                       bc[at + 6], rate)


@njit(cache=True, nogil=True, inline="always")
def price_nb(field, li, i, lg, ls, open_, high, low, close, sess, tleft, vol, exp_sess, bar_min, rate, synthetic, bc,
             ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c):
    """Premium of open leg li at bar i (a bar field); NaN when the chain has no bar then."""
    if synthetic:
        spot = spot_nb(field, lg.cp, i, open_, high, low, close)
        src = field if field == F_OPEN or field == F_CLOSE else (F_HIGH if spot == high[i] else F_LOW)
        return synth_at_nb(field, src, i, lg.cp, ls.strike, ls.ln_strike, ls.k, spot, sess, tleft, vol, exp_sess,
                           bar_min, rate, bc)
    row = chain_row_nb(ch_ptr, ch_bar, ls.contract, i, ls.cursor)
    if row < 0:
        return np.nan
    ls.cursor = row
    if field == F_OPEN:
        return ch_o[row]
    if field == F_HIGH:
        return ch_h[row]
    if field == F_LOW:
        return ch_l[row]
    return ch_c[row]
