"""Strike selection at a signal bar: ATM offset, closest premium, delta, spot percent and
straddle width, on the synthetic grid or among the chain's listed strikes (numba-pure)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .layouts import ERR_NO_MATCH, ERR_NO_STRIKE, ERR_NONE, Q_AT_LEAST, Q_AT_MOST, SEL_ATM_OFFSET, SEL_DELTA, SEL_PREMIUM, SEL_SPOT_PCT, SEL_STRADDLE
from .pricing import CALL
from .quotes import chain_row_nb, iv_delta_nb, synth_price_nb

# Strikes on each side of ATM considered by the searching selectors on the synthetic chain:
# 80 x 50 = 4,000 points, beyond a 0.05-delta strike of a 3-month NIFTY option.
SYNTH_WINGS = 80


@njit(cache=True, nogil=True)
def _chain_quote_nb(c, bar, ch_ptr, ch_bar, ch_c):
    """Close of chain contract c at bar (NaN: none)."""
    if c < 0:
        return np.nan
    row = chain_row_nb(ch_ptr, ch_bar, c, bar, ch_ptr[c])
    return ch_c[row] if row >= 0 else np.nan


@njit(cache=True, nogil=True)
def select_strike_nb(lg, kk, sb, spot, t, level, rate, step, synthetic, ch_strikes, ch_contract, ch_ptr, ch_bar, ch_c):
    """Choose a leg's strike at signal bar sb: (strike, chain contract, candidates, premium,
    ATM, ERR_*). Candidates are the synthetic grid's ATM +/- SYNTH_WINGS strikes, or the
    chain's listed strikes of that expiry and type with a bar at sb."""
    cp = lg.cp
    cpi = 0 if cp == CALL else 1
    if synthetic:
        atm = math.floor(spot / step + 0.5) * step
        lo_j = -SYNTH_WINGS
        while atm + lo_j * step <= 0.0:
            lo_j += 1
        n_c = SYNTH_WINGS - lo_j + 1
        sel = lg.selector
        if sel == SEL_ATM_OFFSET or sel == SEL_SPOT_PCT or sel == SEL_STRADDLE:
            if sel == SEL_ATM_OFFSET:
                target = atm + cp * lg.value * step
            elif sel == SEL_SPOT_PCT:
                target = spot * (1.0 + cp * lg.value / 100.0)
            else:
                straddle = (synth_price_nb(1, spot, atm, t, level, rate) + synth_price_nb(-1, spot, atm, t, level, rate))
                target = atm + cp * lg.value * straddle
            strike = math.floor(target / step + 0.5) * step
            if strike < atm + lo_j * step:
                strike = atm + lo_j * step
            return strike, -1, n_c, synth_price_nb(cp, spot, strike, t, level, rate), atm, ERR_NONE
        best = np.nan
        best_score = np.inf
        for j in range(lo_j, SYNTH_WINGS + 1):
            strike = atm + j * step
            prem = synth_price_nb(cp, spot, strike, t, level, rate)
            score = _score_nb(lg, cp, prem, spot, strike, t, level, rate, True)
            if score < best_score:
                best_score = score
                best = strike
        if best != best:
            return np.nan, -1, n_c, np.nan, atm, ERR_NO_MATCH
        return best, -1, n_c, synth_price_nb(cp, spot, best, t, level, rate), atm, ERR_NONE
    # The chain: strikes listed for this expiry with a bar at sb.
    S = ch_strikes.shape[0]
    atm_s = -1
    best_dist = np.inf
    for s in range(S):
        qc = _chain_quote_nb(ch_contract[kk, s, 0], sb, ch_ptr, ch_bar, ch_c)
        qp = _chain_quote_nb(ch_contract[kk, s, 1], sb, ch_ptr, ch_bar, ch_c)
        if (qc == qc or qp == qp) and abs(ch_strikes[s] - spot) < best_dist:
            best_dist = abs(ch_strikes[s] - spot)
            atm_s = s
    if atm_s < 0:
        return np.nan, -1, 0, np.nan, np.nan, ERR_NO_STRIKE
    atm = ch_strikes[atm_s]
    n_c = 0
    for s in range(S):
        q = _chain_quote_nb(ch_contract[kk, s, cpi], sb, ch_ptr, ch_bar, ch_c)
        if q == q:
            n_c += 1
    sel = lg.selector
    chosen = -1
    if sel == SEL_ATM_OFFSET:
        # N listed strikes from ATM toward out of the money (cp: +1 up for calls, -1 down for puts).
        want = int(lg.value)
        direction = cp if want >= 0 else -cp
        steps = abs(want)
        s = atm_s
        moved = 0
        chosen = -1
        if steps == 0:
            q = _chain_quote_nb(ch_contract[kk, s, cpi], sb, ch_ptr, ch_bar, ch_c)
            if q == q:
                chosen = s
        else:
            s += direction
            while 0 <= s < S:
                q = _chain_quote_nb(ch_contract[kk, s, cpi], sb, ch_ptr, ch_bar, ch_c)
                if q == q:
                    moved += 1
                    if moved == steps:
                        chosen = s
                        break
                s += direction
    elif sel == SEL_SPOT_PCT or sel == SEL_STRADDLE:
        if sel == SEL_SPOT_PCT:
            target = spot * (1.0 + cp * lg.value / 100.0)
        else:
            qc = _chain_quote_nb(ch_contract[kk, atm_s, 0], sb, ch_ptr, ch_bar, ch_c)
            qp = _chain_quote_nb(ch_contract[kk, atm_s, 1], sb, ch_ptr, ch_bar, ch_c)
            if qc != qc or qp != qp:
                return np.nan, -1, n_c, np.nan, atm, ERR_NO_STRIKE
            target = atm + cp * lg.value * (qc + qp)
        best_dist = np.inf
        for s in range(S):
            q = _chain_quote_nb(ch_contract[kk, s, cpi], sb, ch_ptr, ch_bar, ch_c)
            if q == q and abs(ch_strikes[s] - target) < best_dist:
                best_dist = abs(ch_strikes[s] - target)
                chosen = s
    else:
        best_score = np.inf
        for s in range(S):
            q = _chain_quote_nb(ch_contract[kk, s, cpi], sb, ch_ptr, ch_bar, ch_c)
            if q != q:
                continue
            score = _score_nb(lg, cp, q, spot, ch_strikes[s], t, level, rate, False)
            if score < best_score:
                best_score = score
                chosen = s
    if chosen < 0:
        return np.nan, -1, n_c, np.nan, atm, ERR_NO_MATCH if n_c else ERR_NO_STRIKE
    c = ch_contract[kk, chosen, cpi]
    return ch_strikes[chosen], c, n_c, _chain_quote_nb(c, sb, ch_ptr, ch_bar, ch_c), atm, ERR_NONE


@njit(cache=True, nogil=True)
def _score_nb(lg, cp, prem, spot, strike, t, level, rate, synthetic):
    """How far a candidate is from what a searching selector asks for (inf: not eligible)."""
    if lg.selector == SEL_PREMIUM:
        gap = prem - lg.value
        if lg.qualifier == Q_AT_LEAST and gap < 0.0:
            return np.inf
        if lg.qualifier == Q_AT_MOST and gap > 0.0:
            return np.inf
        return abs(gap)
    if lg.selector == SEL_DELTA:
        delta = iv_delta_nb(cp, prem, spot, strike, t, level, rate, synthetic)[1]
        if delta != delta:
            return np.inf
        return abs(abs(delta) - lg.value)
    return np.inf
