"""Fills of option positions, numba-pure: open a node's legs (strikes chosen at the signal bar,
all or none), close one leg or a whole position (at a bar's open or close, or settled at
intrinsic value on expiry), and close everything at the end of the data. Steps of the legs
kernel (legs_kernel.py); state in the layouts of layouts.py.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from services.engine.core.records import EXIT_EXPIRY, EXIT_SIGNAL, STOP_NONE, STOP_PCT

from .layouts import (
    ERR_NO_BAR, ERR_NO_EXPIRY, ERR_NONE, F_CASH, F_ERR_K, F_ERR_STRIKE, F_LAST_EQUITY, F_OPEN, I_ERR_BAR, I_ERR_LEG,
    I_OPEN, I_PENDING, NO_ORDER,
)
from .quotes import iv_delta_nb, price_nb, t_years_nb
from .selection import select_strike_nb


@njit(cache=True, nogil=True)
def close_leg_nb(e, li, lg, ls, p, trades, k, cash, raw, spot, t, level, rate, synthetic, bc, bar, signal_bar, reason,
                  exit_node, expiry_day, commission, slippage):
    """Close open leg li of position p at raw premium (slipped against it unless settled),
    writing trades[k]. Returns (k + 1, cash)."""
    side = lg.side
    qty = ls.qty
    price = raw if reason == EXIT_EXPIRY else raw * (1.0 - side * slippage)
    comm = commission * qty * price
    gross = side * qty * (price - ls.entry_price)
    tr = trades[k]
    tr.node = e
    tr.leg = li
    tr.pos_seq = p.pos_seq
    tr.re_entry_num = p.re_entry_num
    tr.side = side
    tr.cp = lg.cp
    tr.qty = qty
    tr.lots = lg.lots
    tr.lot_size = ls.lot_size
    tr.k = ls.k
    tr.expiry_day = expiry_day
    tr.strike = ls.strike
    tr.entry_signal_bar = p.entry_signal_bar
    tr.entry_bar = p.entry_bar
    tr.entry_price = ls.entry_price
    tr.entry_commission = ls.entry_commission
    tr.exit_signal_bar = signal_bar
    tr.exit_bar = bar
    tr.exit_price = price
    tr.exit_commission = comm
    tr.exit_reason = reason
    tr.exit_node = exit_node
    tr.signal_value = p.exit_value if reason == EXIT_SIGNAL else np.nan
    tr.pnl = gross - ls.entry_commission - comm
    tr.sl_level = ls.sl_level
    tr.tp_level = ls.tp_level
    tr.spot_entry = ls.spot_entry
    tr.spot_exit = spot
    iv, delta = iv_delta_nb(lg.cp, price, spot, ls.strike, t, level, rate, synthetic)
    tr.iv_entry = ls.iv_entry
    tr.iv_exit = iv
    tr.delta_entry = ls.delta_entry
    tr.delta_exit = delta
    tr.sel_spot = ls.sel_spot
    tr.sel_atm = ls.sel_atm
    tr.sel_candidates = ls.sel_candidates
    tr.sel_premium = ls.sel_premium
    tr.sel_iv = ls.sel_iv
    tr.sel_delta = ls.sel_delta
    p.realized_gross += gross
    p.commission += comm
    p.legs_open -= 1
    if p.legs_open == 0:
        tr.pos_last = 1
        tr.pos_pnl = p.realized_gross - p.commission
    else:
        tr.pos_last = 0
        tr.pos_pnl = np.nan
    ls.open = 0
    ls.mark = np.nan
    return k + 1, cash + gross - comm


@njit(cache=True, nogil=True)
def close_position_nb(e, field, i, signal_bar, reason, exit_node, nodes, legs, pos, lst, trades, k, cash, open_, high,
                       low, close, sess, tleft, vol, exp_sess, exp_day, bar_min, rate, synthetic, bc, commission, slippage,
                       ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c, ints, floats):
    """Close every open leg of node e's position at a bar field (expiry: at intrinsic value
    against the close). Returns (k, cash, ERR_*); a leg the chain has no bar for fails the run."""
    nd = nodes[e]
    p = pos[e]
    spot = open_[i] if field == F_OPEN else close[i]
    for li in range(nd.first_leg, nd.first_leg + nd.n_legs):
        ls = lst[li]
        if ls.open == 0:
            continue
        lg = legs[li]
        t = t_years_nb(exp_sess[ls.k], sess[i], tleft[i], bar_min if field == F_OPEN else 0.0)
        if reason == EXIT_EXPIRY and exp_sess[ls.k] <= sess[i]:
            raw = max(lg.cp * (close[i] - ls.strike), 0.0)  # cash-settled at intrinsic value
        else:
            raw = price_nb(field, li, i, lg, ls, open_, high, low, close, sess, tleft, vol, exp_sess, bar_min, rate,
                            synthetic, bc, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c)
            if raw != raw:
                ints[I_ERR_LEG] = li
                floats[F_ERR_STRIKE] = ls.strike
                floats[F_ERR_K] = ls.k
                return k, cash, ERR_NO_BAR
        k, cash = close_leg_nb(e, li, lg, ls, p, trades, k, cash, raw, spot, t, vol[i], rate, synthetic, bc, i,
                                signal_bar, reason, exit_node, exp_day[ls.k], commission, slippage)
    return k, cash, ERR_NONE


@njit(cache=True, nogil=True)
def open_position_nb(e, field, i, sb, nodes, legs, leg_exp, pos, lst, book, lot_size_exp, cash, open_, high, low,
                      close, dayidx, sess, tleft, vol, exp_sess, bar_min, rate, step, synthetic, bc, commission, slippage,
                      ch_strikes, ch_contract, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c, ints, floats):
    """Open node e's legs at bar i's field (open or close); strikes chosen at signal bar sb.
    Returns (cash, ERR_*); on an error nothing is opened."""
    nd = nodes[e]
    p = pos[e]
    b = book[e]
    spot_sb = close[sb]
    # Choose every leg first, so a leg that cannot be priced opens none.
    for li in range(nd.first_leg, nd.first_leg + nd.n_legs):
        lg = legs[li]
        ls = lst[li]
        # The expiry listed on the fill's day: a signal on an expiry day's last bar that fills
        # the next morning trades the next expiry, not the one that just settled.
        kk = leg_exp[dayidx[i], li]
        if kk < 0:
            ints[I_ERR_LEG] = li
            ints[I_ERR_BAR] = sb
            return cash, ERR_NO_EXPIRY
        t = t_years_nb(exp_sess[kk], sess[sb], tleft[sb], 0.0)
        strike, c, n_c, prem, atm, err = select_strike_nb(lg, kk, sb, spot_sb, t, vol[sb], rate, step, synthetic,
                                                    ch_strikes, ch_contract, ch_ptr, ch_bar, ch_c)
        if err != ERR_NONE:
            ints[I_ERR_LEG] = li
            ints[I_ERR_BAR] = sb
            return cash, err
        ls.k = kk
        ls.contract = c
        ls.cursor = ch_ptr[c] if c >= 0 else 0
        ls.strike = strike
        ls.ln_strike = math.log(strike)
        ls.sel_spot = spot_sb
        ls.sel_atm = atm
        ls.sel_candidates = n_c
        ls.sel_premium = prem
        iv, delta = iv_delta_nb(lg.cp, prem, spot_sb, strike, t, vol[sb], rate, synthetic)
        ls.sel_iv = iv
        ls.sel_delta = delta
        raw = price_nb(field, li, i, lg, ls, open_, high, low, close, sess, tleft, vol, exp_sess, bar_min, rate,
                        synthetic, bc, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c)
        if raw != raw:
            ints[I_ERR_LEG] = li
            floats[F_ERR_STRIKE] = strike
            floats[F_ERR_K] = kk
            return cash, ERR_NO_BAR
        ls.mark = raw  # the raw fill premium, kept here until every leg is priced
    spot = open_[i] if field == F_OPEN else close[i]
    b.pos_count += 1
    p.pos_seq = b.pos_count
    p.re_entry_num = b.day_entries
    p.entry_signal_bar = sb
    p.entry_bar = i
    p.entry_value = 0.0
    p.entry_abs = 0.0
    p.realized_gross = 0.0
    p.commission = 0.0
    p.bars_held = 1
    p.exit_value = np.nan
    p.legs_open = nd.n_legs
    b.day_entries += 1
    for li in range(nd.first_leg, nd.first_leg + nd.n_legs):
        lg = legs[li]
        ls = lst[li]
        raw = ls.mark
        price = raw * (1.0 + lg.side * slippage)
        lot_size = lot_size_exp[ls.k]
        qty = lg.lots * lot_size
        comm = commission * qty * price
        t = t_years_nb(exp_sess[ls.k], sess[i], tleft[i], bar_min if field == F_OPEN else 0.0)
        ls.open = 1
        ls.qty = qty
        ls.lot_size = lot_size
        ls.entry_price = price
        ls.entry_commission = comm
        ls.mark = raw
        ls.spot_entry = spot
        iv, delta = iv_delta_nb(lg.cp, raw, spot, ls.strike, t, vol[i], rate, synthetic)
        ls.iv_entry = iv
        ls.delta_entry = delta
        # Premium levels: a sold leg loses when the premium rises.
        ls.sl_level = _level_nb(lg.sl_mode, lg.sl_value, price, -lg.side)
        ls.tp_level = _level_nb(lg.tp_mode, lg.tp_value, price, lg.side)
        p.entry_value += lg.side * qty * price
        p.entry_abs += qty * price
        p.commission += comm
        cash -= comm
    return cash, ERR_NONE


@njit(cache=True, nogil=True)
def _level_nb(mode, value, price, direction):
    """A premium level `value` (pct of price, or points) away from price, up (+1) or down (-1);
    NaN for none. Levels below zero can never be reached and stay as computed."""
    if mode == STOP_NONE:
        return np.nan
    dist = price * value / 100.0 if mode == STOP_PCT else value
    return price + direction * dist


@njit(cache=True, nogil=True)
def close_all_legs_nb(close, bar, reason, nodes, legs, pos, lst, book, trades, ints, floats, sess, tleft, vol,
                      exp_sess, exp_day, rate, synthetic, bc, commission, slippage):
    """Close every open leg at its last mark (its close at `bar` where priced) with `reason`;
    drop waiting orders. Returns the number of trades written."""
    k = 0
    cash = floats[F_CASH]
    for e in range(pos.shape[0]):
        b = book[e]
        nd = nodes[e]
        p = pos[e]
        if p.legs_open > 0:
            for li in range(nd.first_leg, nd.first_leg + nd.n_legs):
                ls = lst[li]
                if ls.open != 0:
                    t = t_years_nb(exp_sess[ls.k], sess[bar], tleft[bar], 0.0)
                    k, cash = close_leg_nb(e, li, legs[li], ls, p, trades, k, cash, ls.mark, close[bar], t, vol[bar],
                                            rate, synthetic, bc, bar, bar, reason, -1, exp_day[ls.k], commission, slippage)
        b.entry_bar = NO_ORDER
        b.exit_reason = NO_ORDER
    floats[F_CASH] = cash
    floats[F_LAST_EQUITY] = cash
    ints[I_OPEN] = 0
    ints[I_PENDING] = 0
    return k
