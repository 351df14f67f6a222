"""Quotes of one option contract at one bar, numba-pure: the synthetic chain's premium, IV and
delta, the chain file's row of a contract at a bar, and trading time to expiry.

The legs kernel (legs_kernel.py) and strike selection (selection.py) price only the contracts a
run selects or holds, through these; nothing here imports pandas or does I/O.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .layouts import F_CLOSE, F_HIGH, F_LOW, F_OPEN
from .pricing import CALL, SESSION_MINUTES, YEAR_MINUTES, bs_greeks_nb, bs_price_nb, implied_vol_nb, round_premium_nb, surface_iv_nb

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


@njit(cache=True, nogil=True)
def synth_price_nb(cp, spot, strike, t, level, rate):
    """A synthetic chain's premium: Black-Scholes on the surface's IV, on the 0.05 tick;
    intrinsic value once the expiry has closed (t <= 0)."""
    if t <= 0.0:
        return max(cp * (spot - strike), 0.0)
    sigma = surface_iv_nb(level, spot, strike, t)
    return round_premium_nb(bs_price_nb(cp, spot, strike, t, sigma, rate))


@njit(cache=True, nogil=True)
def iv_delta_nb(cp, price, spot, strike, t, level, rate, synthetic):
    """(IV in percent, delta) of a contract priced `price` (NaNs past expiry)."""
    if t <= 0.0:
        return np.nan, np.nan
    if synthetic:
        sigma = surface_iv_nb(level, spot, strike, t)
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


@njit(cache=True, nogil=True, inline="always")
def price_nb(field, li, i, lg, ls, open_, high, low, close, sess, tleft, vol, exp_sess, bar_min, rate, synthetic,
              ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c):
    """Premium of open leg li at bar i (a bar field); NaN when the chain has no bar then."""
    if synthetic:
        spot = spot_nb(field, lg.cp, i, open_, high, low, close)
        extra = bar_min if field == F_OPEN else 0.0
        t = t_years_nb(exp_sess[ls.k], sess[i], tleft[i], extra)
        return synth_price_nb(lg.cp, spot, ls.strike, t, vol[i], rate)
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
