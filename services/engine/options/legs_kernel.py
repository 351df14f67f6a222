"""The legs kernel: option positions of several legs, stepped bar by bar in numba.

Like the underlying's kernel (core/kernels.py) it takes plain arrays and layouts
(`layouts.py`), mutates a state carried between chunks and writes trade records; it prices
contracts only when a leg is selected or held: from the synthetic surface (pricing.py) or
from an option-chain file (chain.py). Prices are premium points, rates fractions, time to
expiry trading years, bars absolute indexes into the run's arrays.

Per bar: waiting orders fill at the open (exits, then entries: strikes chosen at the signal
bar); square-off at the open; each leg's own stop / target inside the bar; at the close the
legs are marked, then position stops, the daily limits, expiry settlement (the expiry day's
last bar), max_bars, exit nodes and entries; the intraday day-end close; equity.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from services.engine.core.kernels import entry_allowed_nb
from services.engine.core.records import (
    EXIT_DAILY_MAX_LOSS, EXIT_DAILY_MAX_PROFIT, EXIT_EXPIRY, EXIT_MAX_BARS,
    EXIT_MTM_STOP, EXIT_MTM_TARGET, EXIT_POSITION_STOP, EXIT_POSITION_TARGET, EXIT_SIGNAL,
    EXIT_SQUARE_OFF, EXIT_STOP_LOSS, EXIT_TAKE_PROFIT, STOP_NONE,
)

from .layouts import (
    ERR_NO_MATCH, ERR_NONE, F_CLOSE, F_HIGH, F_LOW, F_OPEN, MODE_CHAIN, OP_EQ, OP_GE, OP_GT, OP_LE,
    OP_LT, ST_MTM,
)
from .fills import close_leg_nb, close_position_nb, open_position_nb
from .layouts import (
    F_CASH, F_DAY_EQUITY, F_LAST_EQUITY, I_DAY, I_ERR, I_ERR_BAR, I_HALTED, I_OPEN, I_PENDING, I_SQUARED, NO_ORDER,
)
from .quotes import chain_row_nb, price_nb, spot_nb, synth_at_nb, t_years_nb

# Premium points within which a level makes the stop check price the bar's open too.
_OPEN_SLACK = 5.0



# ---- the kernel ---------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def run_legs_nb(open_, high, low, close, day, dayidx, square_off, sess, tleft, vol,
                entry_signal, exit_signal, exit_targets, conds, cond_ptr, nodes, legs, leg_exp, exp_sess, exp_day,
                lot_size_exp, flags, cfg, ch_strikes, ch_contract, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c,
                equity, pos, lst, book, ints, floats, bc, trades, k, start, stop):
    """Step bars [start, stop), writing closed legs into trades[k:] and equity[start:stop].

    Market float64[n] (open_..close, tleft: trading minutes from the bar's close to its
    session's close, vol: the surface's ATM level, annual fraction), int64[n] (day, dayidx:
    the run's day index, sess: the exchange session number), bool[n] square_off; signals as
    in core/kernels.run_nb, and the state comparisons that AND into them: conds statecond_dt[M]
    with cond_ptr int64[E + X + 1] (rows of entry e, then of exit x at E + x); nodes
    legnode_dt[E], legs leg_dt[L]; leg_exp int64[D, L]: each
    leg's expiry index per day (-1: not listed); exp_sess / exp_day int64[K]; lot_size_exp
    float64[D]; flags int64[3] (fill_at_close, intraday, mode); cfg float64[7] (commission,
    slippage, daily max_loss, daily max_profit, rate, bar minutes, strike step); the chain
    (MODE_CHAIN): ch_strikes float64[S], ch_contract int64[K, S, 2], CSR rows ch_ptr/ch_bar and
    ch_o/h/l/c. State (mutated): pos legpos_dt[E], lst legstate_dt[L], book (core book_dt[E]),
    ints int64[8], floats float64[5]; bc float64[BAR_CACHE] (quotes.py: per-bar logs and expiry
    slices, reused by every leg priced at a bar). Returns (trade count, next bar, ERR_*): next bar < stop
    with ERR_NONE when fewer than 2L + 2 trade slots were free (grow `trades`, call again).
    """
    n = close.shape[0]
    E = pos.shape[0]
    X = exit_signal.shape[1]
    L = lst.shape[0]
    fill_at_close = flags[0] != 0
    intraday = flags[1] != 0
    mode = flags[2]
    synthetic = mode != MODE_CHAIN
    commission = cfg[0]
    slippage = cfg[1]
    max_loss = cfg[2]
    max_profit = cfg[3]
    rate = cfg[4]
    bar_min = cfg[5]
    step = cfg[6]
    room = trades.shape[0] - 2 * L - 2
    cur_day = ints[I_DAY]
    squared = ints[I_SQUARED] != 0
    n_open = ints[I_OPEN]
    pending = ints[I_PENDING] != 0
    halted = ints[I_HALTED] != 0
    cash = floats[F_CASH]
    day_eq = floats[F_DAY_EQUITY]
    last_eq = floats[F_LAST_EQUITY]
    err = ERR_NONE
    i = start
    while i < stop and k <= room:
        d = day[i]
        if d != cur_day:
            cur_day = d
            squared = False
            halted = False
            day_eq = last_eq
            for e in range(E):
                book[e].day_entries = 0
        last_of_day = i + 1 >= n or day[i + 1] != d
        # 1. Orders waiting for this open: exits, then entries.
        if pending:
            pending = False
            no_entries = halted or (intraday and square_off[i])
            k, cash, n_open, err = _fill_orders_nb(
                F_OPEN, i, no_entries, last_eq, nodes, legs, leg_exp, pos, lst, book,
                lot_size_exp, trades, k, cash, n_open, open_, high, low, close, dayidx, sess, tleft, vol, exp_sess,
                exp_day, bar_min, rate, step, synthetic, bc, commission, slippage, ch_strikes, ch_contract, ch_ptr,
                ch_bar, ch_o, ch_h, ch_l, ch_c, ints, floats)
            if err != ERR_NONE:
                break
        # 2. Square-off at this open.
        if intraday and square_off[i]:
            squared = True
            if n_open > 0:
                k, cash, n_open, err = _close_all_nb(
                    F_OPEN, i, EXIT_SQUARE_OFF, nodes, legs, pos, lst, trades, k, cash, n_open, open_, high, low, close,
                    sess, tleft, vol, exp_sess, exp_day, bar_min, rate, synthetic, bc, commission, slippage, ch_ptr,
                    ch_bar, ch_o, ch_h, ch_l, ch_c, ints, floats)
                if err != ERR_NONE:
                    break
        # 3. Each leg's own stop / target inside the bar.
        if n_open > 0:
            for li in range(L):
                ls = lst[li]
                lg = legs[li]
                if ls.open == 0 or (lg.sl_mode == STOP_NONE and lg.tp_mode == STOP_NONE):
                    continue
                reason, raw, spot = _leg_stop_nb(li, i, lg, ls, open_, high, low, close, sess, tleft, vol,
                                                 exp_sess, bar_min, rate, synthetic, bc, ch_ptr, ch_bar, ch_o, ch_h, ch_l,
                                                 ch_c)
                if reason >= 0:
                    e = lg.node
                    t = t_years_nb(exp_sess[ls.k], sess[i], tleft[i], 0.0)
                    k, cash = close_leg_nb(e, li, lg, ls, pos[e], trades, k, cash, raw, spot, t, vol[i], rate,
                                            synthetic, bc, i, i, reason, -1, exp_day[ls.k], commission, slippage)
                    if pos[e].legs_open == 0:
                        n_open -= 1
        # 4. At the close: marks, position stops, daily limits, expiry, signals.
        if n_open > 0:
            if synthetic:
                _mark_synthetic_nb(i, legs, lst, close, sess, tleft, vol, exp_sess, rate, bc)
            else:
                _mark_legs_nb(i, legs, lst, open_, high, low, close, sess, tleft, vol, exp_sess, bar_min, rate, False,
                              bc, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c)
            for e in range(E):
                p = pos[e]
                nd = nodes[e]
                if p.legs_open == 0:
                    continue
                p.bars_held = i - p.entry_bar + 1
                if nd.risk_sl_pct > 0.0 or nd.risk_tp_pct > 0.0 or nd.mtm_sl > 0.0 or nd.mtm_tp > 0.0:
                    gross = p.realized_gross
                    comm = p.commission
                    for li in range(nd.first_leg, nd.first_leg + nd.n_legs):
                        ls = lst[li]
                        if ls.open != 0:
                            gross += legs[li].side * ls.qty * (ls.mark - ls.entry_price)
                    mtm = gross - comm
                    reason = -1
                    if nd.risk_sl_pct > 0.0 and gross <= -nd.risk_sl_pct / 100.0 * p.entry_abs:
                        reason = EXIT_POSITION_STOP
                    elif nd.mtm_sl > 0.0 and mtm <= -nd.mtm_sl:
                        reason = EXIT_MTM_STOP
                    elif nd.risk_tp_pct > 0.0 and gross >= nd.risk_tp_pct / 100.0 * p.entry_abs:
                        reason = EXIT_POSITION_TARGET
                    elif nd.mtm_tp > 0.0 and mtm >= nd.mtm_tp:
                        reason = EXIT_MTM_TARGET
                    if reason >= 0:
                        k, cash, err = close_position_nb(
                            e, F_CLOSE, i, i, reason, -1, nodes, legs, pos, lst, trades, k, cash, open_, high, low,
                            close, sess, tleft, vol, exp_sess, exp_day, bar_min, rate, synthetic, bc, commission,
                            slippage, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c, ints, floats)
                        if err != ERR_NONE:
                            break
                        n_open -= 1
                        book[e].exit_reason = NO_ORDER
            if err != ERR_NONE:
                break
        if (max_loss > 0.0 or max_profit > 0.0) and not halted:
            day_pnl = cash + _open_value_nb(legs, lst) - day_eq
            reason = -1
            if max_loss > 0.0 and day_pnl <= -max_loss:
                reason = EXIT_DAILY_MAX_LOSS
            elif max_profit > 0.0 and day_pnl >= max_profit:
                reason = EXIT_DAILY_MAX_PROFIT
            if reason >= 0:
                halted = True
                for e in range(E):
                    book[e].entry_bar = NO_ORDER
                    book[e].exit_reason = NO_ORDER
                k, cash, n_open, err = _close_all_nb(
                    F_CLOSE, i, reason, nodes, legs, pos, lst, trades, k, cash, n_open, open_, high, low, close,
                    sess, tleft, vol, exp_sess, exp_day, bar_min, rate, synthetic, bc, commission, slippage, ch_ptr,
                    ch_bar, ch_o, ch_h, ch_l, ch_c, ints, floats)
                if err != ERR_NONE:
                    break
        if last_of_day and n_open > 0:
            # Held to expiry: a position with a leg expiring today settles at this close.
            for e in range(E):
                p = pos[e]
                if p.legs_open == 0:
                    continue
                nd = nodes[e]
                expiring = False
                for li in range(nd.first_leg, nd.first_leg + nd.n_legs):
                    if lst[li].open != 0 and exp_day[lst[li].k] <= d:
                        expiring = True
                if expiring:
                    k, cash, err = close_position_nb(
                        e, F_CLOSE, i, i, EXIT_EXPIRY, -1, nodes, legs, pos, lst, trades, k, cash, open_, high, low,
                        close, sess, tleft, vol, exp_sess, exp_day, bar_min, rate, synthetic, bc, commission, slippage,
                        ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c, ints, floats)
                    if err != ERR_NONE:
                        break
                    n_open -= 1
                    book[e].exit_reason = NO_ORDER
            if err != ERR_NONE:
                break
        orders = False
        if n_open > 0:
            for e in range(E):
                p = pos[e]
                if p.legs_open > 0 and nodes[e].max_bars > 0 and p.bars_held >= nodes[e].max_bars:
                    b = book[e]
                    b.exit_reason = EXIT_MAX_BARS
                    b.exit_node = -1
                    b.exit_bar = i
                    orders = True
            for x in range(X):
                if exit_signal[i, x]:
                    ok, value = _state_ok_nb(E + x, conds, cond_ptr, nodes, legs, pos, lst)
                    if not ok:
                        continue
                    for e in range(E):
                        b = book[e]
                        if exit_targets[x, e] and pos[e].legs_open > 0 and b.exit_reason == NO_ORDER:
                            b.exit_reason = EXIT_SIGNAL
                            b.exit_node = x
                            b.exit_bar = i
                            pos[e].exit_value = value
                            orders = True
        if not halted:
            for e in range(E):
                if not entry_signal[i, e]:
                    continue
                if cond_ptr[e + 1] > cond_ptr[e] and not _state_ok_nb(e, conds, cond_ptr, nodes, legs, pos, lst)[0]:
                    continue
                b = book[e]
                if pos[e].legs_open > 0 and b.exit_reason == NO_ORDER:
                    continue
                nd = nodes[e]
                if not entry_allowed_nb(intraday, squared, last_of_day, fill_at_close, square_off, i, b.day_entries,
                                        nd.max_per_day, nd.max_re_entries):
                    continue
                b.entry_bar = i
                orders = True
        if orders and fill_at_close:
            k, cash, n_open, err = _fill_orders_nb(
                F_CLOSE, i, False, last_eq, nodes, legs, leg_exp, pos, lst, book, lot_size_exp, trades, k, cash,
                n_open, open_, high, low, close, dayidx, sess, tleft, vol, exp_sess, exp_day, bar_min, rate, step,
                synthetic, bc, commission, slippage, ch_strikes, ch_contract, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c,
                ints, floats)
            if err != ERR_NONE:
                break
        elif orders:
            pending = True
        # The intraday day-end close: a day that ends before its square-off bar.
        if intraday and last_of_day and n_open > 0:
            k, cash, n_open, err = _close_all_nb(
                F_CLOSE, i, EXIT_SQUARE_OFF, nodes, legs, pos, lst, trades, k, cash, n_open, open_, high, low, close,
                sess, tleft, vol, exp_sess, exp_day, bar_min, rate, synthetic, bc, commission, slippage, ch_ptr,
                ch_bar, ch_o, ch_h, ch_l, ch_c, ints, floats)
            if err != ERR_NONE:
                break
        # 5. Equity at the close.
        eq = cash + _open_value_nb(legs, lst) if n_open > 0 else cash
        equity[i] = eq
        last_eq = eq
        i += 1
    ints[I_DAY] = cur_day
    ints[I_SQUARED] = 1 if squared else 0
    ints[I_OPEN] = n_open
    ints[I_PENDING] = 1 if pending else 0
    ints[I_HALTED] = 1 if halted else 0
    if err != ERR_NONE:
        ints[I_ERR] = err
        ints[I_ERR_BAR] = i
    floats[F_CASH] = cash
    floats[F_DAY_EQUITY] = day_eq
    floats[F_LAST_EQUITY] = last_eq
    return k, i, err


# ---- steps -----------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _fill_orders_nb(field, i, no_entries, last_eq, nodes, legs, leg_exp, pos, lst, book, lot_size_exp, trades, k, cash,
                    n_open, open_, high, low, close, dayidx, sess, tleft, vol, exp_sess, exp_day, bar_min, rate, step,
                    synthetic, bc, commission, slippage, ch_strikes, ch_contract, ch_ptr, ch_bar, ch_o, ch_h, ch_l,
                    ch_c, ints, floats):
    """Fill the orders of the book at bar i's field (F_OPEN: waiting since the last close;
    F_CLOSE: "fill": "close"): exits first, then entries (strikes chosen at each signal bar),
    none when no_entries or the account has no equity left. Returns (k, cash, n_open, ERR_*)."""
    err = ERR_NONE
    for e in range(pos.shape[0]):
        b = book[e]
        if b.exit_reason != NO_ORDER:
            if pos[e].legs_open > 0:
                k, cash, err = close_position_nb(
                    e, field, i, b.exit_bar, b.exit_reason, b.exit_node, nodes, legs, pos, lst, trades, k, cash,
                    open_, high, low, close, sess, tleft, vol, exp_sess, exp_day, bar_min, rate, synthetic, bc,
                    commission, slippage, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c, ints, floats)
                if err != ERR_NONE:
                    return k, cash, n_open, err
                n_open -= 1
            b.exit_reason = NO_ORDER
    for e in range(pos.shape[0]):
        b = book[e]
        if b.entry_bar != NO_ORDER:
            sb = b.entry_bar
            b.entry_bar = NO_ORDER
            if no_entries or pos[e].legs_open > 0 or last_eq <= 0.0:
                continue
            cash, err = open_position_nb(
                e, field, i, sb, nodes, legs, leg_exp, pos, lst, book, lot_size_exp, cash, open_, high, low, close,
                dayidx, sess, tleft, vol, exp_sess, bar_min, rate, step, synthetic, bc, commission, slippage,
                ch_strikes, ch_contract, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c, ints, floats)
            if err == ERR_NO_MATCH:  # no strike meets a selector: nothing opens
                err = ERR_NONE
                continue
            if err != ERR_NONE:
                return k, cash, n_open, err
            n_open += 1
    return k, cash, n_open, err


@njit(cache=True, nogil=True)
def _close_all_nb(field, i, reason, nodes, legs, pos, lst, trades, k, cash, n_open, open_, high, low, close, sess,
                  tleft, vol, exp_sess, exp_day, bar_min, rate, synthetic, bc, commission, slippage, ch_ptr, ch_bar,
                  ch_o, ch_h, ch_l, ch_c, ints, floats):
    """Close every open position at bar i's field with `reason` (square-off, a daily limit).
    Returns (k, cash, n_open, ERR_*)."""
    for e in range(pos.shape[0]):
        if pos[e].legs_open > 0:
            k, cash, err = close_position_nb(
                e, field, i, i, reason, -1, nodes, legs, pos, lst, trades, k, cash, open_, high, low, close, sess,
                tleft, vol, exp_sess, exp_day, bar_min, rate, synthetic, bc, commission, slippage, ch_ptr,
                ch_bar, ch_o, ch_h, ch_l, ch_c, ints, floats)
            if err != ERR_NONE:
                return k, cash, n_open, err
            n_open -= 1
    return k, cash, n_open, ERR_NONE


@njit(cache=True, nogil=True, inline="always")
def _open_value_nb(legs, lst):
    """Unrealized P&L of the open legs at their marks."""
    v = 0.0
    for li in range(lst.shape[0]):
        ls = lst[li]
        if ls.open != 0:
            v += legs[li].side * ls.qty * (ls.mark - ls.entry_price)
    return v


@njit(cache=True, nogil=True)
def _mark_legs_nb(i, legs, lst, open_, high, low, close, sess, tleft, vol, exp_sess, bar_min, rate, synthetic, bc,
                  ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c):
    """Mark every open leg at bar i's close (a chain leg without a bar then keeps its last mark).
    A function of its own, not inlined: priced inside the bar loop's body the same code ran ~3x
    slower (measured: 145 vs 50 ns a leg), the loop's size defeating LLVM's optimisation of it."""
    for li in range(lst.shape[0]):
        ls = lst[li]
        if ls.open != 0:
            px = price_nb(F_CLOSE, li, i, legs[li], ls, open_, high, low, close, sess, tleft, vol, exp_sess, bar_min,
                          rate, synthetic, bc, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c)
            if px == px:
                ls.mark = px


@njit(cache=True, nogil=True)
def _mark_synthetic_nb(i, legs, lst, close, sess, tleft, vol, exp_sess, rate, bc):
    """_mark_legs_nb on the synthetic chain, with only the arrays it reads: each array handed to
    a numba function costs a reference-count pair, and this runs every bar."""
    for li in range(lst.shape[0]):
        ls = lst[li]
        if ls.open != 0:
            ls.mark = synth_at_nb(F_CLOSE, F_CLOSE, i, legs[li].cp, ls.strike, ls.ln_strike, ls.k, close[i], sess,
                                  tleft, vol, exp_sess, 0.0, rate, bc)


@njit(cache=True, nogil=True)
def _leg_stop_nb(li, i, lg, ls, open_, high, low, close, sess, tleft, vol, exp_sess, bar_min, rate, synthetic, bc,
                 ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c):
    """(EXIT_STOP_LOSS / EXIT_TAKE_PROFIT or -1, raw fill premium, spot) of an open leg in bar i.
    A sold leg stops on the premium's high, a bought one on its low; a stop beats the target
    when both are touched; a bar that opens beyond a level fills at its open."""
    sl = ls.sl_level
    tp = ls.tp_level
    if synthetic:
        # Only the extremes a level can be met on are priced: a sold leg's stop and a bought
        # leg's target on the premium's high, the others on its low (NaN levels: none).
        up = lg.side < 0
        hi_level = sl if up else tp
        lo_level = tp if up else sl
        ph = -np.inf
        pl = np.inf
        if hi_level == hi_level:
            ph = price_nb(F_HIGH, li, i, lg, ls, open_, high, low, close, sess, tleft, vol, exp_sess, bar_min,
                          rate, True, bc, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c)
        if lo_level == lo_level:
            pl = price_nb(F_LOW, li, i, lg, ls, open_, high, low, close, sess, tleft, vol, exp_sess, bar_min,
                          rate, True, bc, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c)
        if not (ph >= hi_level - _OPEN_SLACK or pl <= lo_level + _OPEN_SLACK):
            return -1, np.nan, np.nan
        # The open is priced with a minute more to expiry, so it can lie a little beyond the
        # extremes (a minute of time value, far below _OPEN_SLACK): keep the bar consistent.
        po = price_nb(F_OPEN, li, i, lg, ls, open_, high, low, close, sess, tleft, vol, exp_sess, bar_min, rate,
                      True, bc, ch_ptr, ch_bar, ch_o, ch_h, ch_l, ch_c)
        ph = max(ph, po)
        pl = min(pl, po)
    else:
        row = chain_row_nb(ch_ptr, ch_bar, ls.contract, i, ls.cursor)
        if row < 0:
            return -1, np.nan, np.nan  # no trade in the contract this bar: nothing can fill
        ls.cursor = row
        po, ph, pl = ch_o[row], ch_h[row], ch_l[row]
    # The underlying's price at the fill: its open on a gap, else the extreme that moved the premium.
    if lg.side < 0:
        if ph >= sl:
            return EXIT_STOP_LOSS, max(po, sl), open_[i] if po >= sl else spot_nb(F_HIGH, lg.cp, i, open_, high, low, close)
        if pl <= tp:
            return EXIT_TAKE_PROFIT, min(po, tp), open_[i] if po <= tp else spot_nb(F_LOW, lg.cp, i, open_, high, low, close)
    else:
        if pl <= sl:
            return EXIT_STOP_LOSS, min(po, sl), open_[i] if po <= sl else spot_nb(F_LOW, lg.cp, i, open_, high, low, close)
        if ph >= tp:
            return EXIT_TAKE_PROFIT, max(po, tp), open_[i] if po >= tp else spot_nb(F_HIGH, lg.cp, i, open_, high, low, close)
    return -1, np.nan, np.nan


@njit(cache=True, nogil=True)
def _state_ok_nb(owner, conds, cond_ptr, nodes, legs, pos, lst):
    """(all of owner's state comparisons hold at the marks just taken, the first one's value).
    A comparison on a node that holds nothing, or on a closed leg, is false."""
    first = np.nan
    for j in range(cond_ptr[owner], cond_ptr[owner + 1]):
        c = conds[j]
        p = pos[c.node]
        if p.legs_open == 0:
            return False, np.nan
        if c.what == ST_MTM:
            v = p.realized_gross - p.commission
            nd = nodes[c.node]
            for li in range(nd.first_leg, nd.first_leg + nd.n_legs):
                ls = lst[li]
                if ls.open != 0:
                    v += legs[li].side * ls.qty * (ls.mark - ls.entry_price)
        else:
            ls = lst[c.leg]
            if ls.open == 0:
                return False, np.nan
            v = ls.mark
        if j == cond_ptr[owner]:
            first = v
        op = c.op
        if op == OP_LT:
            ok = v < c.value
        elif op == OP_LE:
            ok = v <= c.value
        elif op == OP_GT:
            ok = v > c.value
        elif op == OP_GE:
            ok = v >= c.value
        elif op == OP_EQ:
            ok = v == c.value
        else:
            ok = v != c.value
        if not ok:
            return False, np.nan
    return True, first


