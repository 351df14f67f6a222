"""The trading kernel: fills, stops, square-off and sizing, a numba state machine over bars.

`run_chunk` steps bars [start, stop) through `run_nb`; all state lives in a `KernelState`, so a
range run in day-sized chunks gives exactly what one call over it gives. Plain arrays in,
`records.trade_dt` records out. Prices are quote currency, rates are fractions
(0.0001 = 0.01 %), bars are absolute indexes into the input arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .records import (
    EXIT_END_OF_DATA, EXIT_MAX_BARS, EXIT_REVERSE, EXIT_SIGNAL, EXIT_SQUARE_OFF, EXIT_STOP_LOSS,
    EXIT_TAKE_PROFIT, EXIT_TRAILING, LONG, QTY_EQUITY_PCT, QTY_UNITS, SHORT, STOP_ATR, STOP_NONE,
    STOP_PCT, STOP_POINTS, position_dt, trade_dt,
)

# Per-node parameters, packed from KernelInputs' [E] arrays into one record per node, so that
# helpers take a record (a plain pointer) instead of arrays: every array handed to a numba
# function costs an atomic incref/decref pair, which dominated the per-order cost.
node_dt = np.dtype([
    ("side", np.int64), ("qty_mode", np.int64), ("qty_value", np.float64),
    ("max_per_day", np.int64), ("max_re_entries", np.int64), ("reverse", np.int64),
    ("max_bars", np.int64), ("sl_mode", np.int64), ("sl_value", np.float64),
    ("tp_mode", np.int64), ("tp_value", np.float64), ("ts_mode", np.int64), ("ts_value", np.float64),
    ("has_stops", np.int64),  # 1 if any of sl/tp/ts_mode is set (derived)
])

# Per-node orders waiting for the next open, and counters (state carried between chunks).
book_dt = np.dtype([
    ("entry_bar", np.int64),    # signal bar of the waiting entry; -1: none
    ("exit_reason", np.int64),  # EXIT_* code of the waiting exit; -1: none
    ("exit_node", np.int64),    # its exit node (EXIT_SIGNAL) or -1
    ("exit_bar", np.int64),     # its signal bar
    ("day_entries", np.int64),  # entries the node made in the current trading day
    ("pos_count", np.int64),    # positions the node opened over the run
])

# Slots of KernelState.ints (int64[4]); KernelState.floats (float64[1]) holds the cash.
_DAY = 0      # trading day of the last bar stepped (_NO_DAY before the first)
_SQUARED = 1  # 1 once the current day's square-off bar has been stepped
_OPEN = 2     # number of open positions
_PENDING = 3  # 1 when orders wait for the next bar's open
_NO_DAY = np.iinfo(np.int64).min
_NO_ORDER = -1


# ---- helpers: records and scalars only --------------------------------------------------------
@njit(cache=True, nogil=True)
def entry_allowed_nb(intraday, squared, last_of_day, fill_at_close, square_off, i, day_entries, max_per_day,
                     max_re_entries):
    """May an entry signal at bar i place its order? (Both kernels: the underlying's and the legs'.)

    Intraday: no entry at or after the square-off bar, on a day's last bar, nor one that would
    fill at the next open when that open is the square-off. The day's limits count the entries
    of the day the order fills in (the next day's, for a last-bar signal filling at the open)."""
    if intraday and (squared or last_of_day or (not fill_at_close and square_off[i + 1])):
        return False
    count = 0 if (not fill_at_close and last_of_day) else day_entries
    if max_per_day > 0 and count >= max_per_day:
        return False
    return not (max_re_entries >= 0 and count > max_re_entries)


@njit(cache=True, nogil=True)
def _distance_nb(mode, value, ref, atr):
    """Stop distance in price points: value % of ref, value points, or value x atr; NaN for none."""
    if mode == STOP_PCT:
        return ref * value / 100.0
    if mode == STOP_POINTS:
        return value
    if mode == STOP_ATR:
        return value * atr
    return np.nan


@njit(cache=True, nogil=True)
def _close_nb(p, b, t, e, raw, bar, signal_bar, reason, exit_node, commission, slippage):
    """Close position p (node e, book b) at raw price slipped against it, writing trade t.
    Returns the change in cash (the entry commission left cash at the entry)."""
    side = p.side
    qty = p.qty
    price = raw * (1.0 - side * slippage)
    comm = commission * qty * price
    gross = side * qty * (price - p.entry_price)
    t.node = e
    t.pos_seq = p.pos_seq
    t.re_entry_num = p.re_entry_num
    t.side = side
    t.qty = qty
    t.entry_signal_bar = p.entry_signal_bar
    t.entry_bar = p.entry_bar
    t.entry_price = p.entry_price
    t.entry_commission = p.entry_commission
    t.exit_signal_bar = signal_bar
    t.exit_bar = bar
    t.exit_price = price
    t.exit_commission = comm
    t.exit_reason = reason
    t.exit_node = exit_node
    t.pnl = gross - p.entry_commission - comm
    t.sl_level = p.sl_level
    t.tp_level = p.tp_level
    t.trail_level = p.trail_level
    p.qty = 0.0
    p.side = 0
    b.exit_reason = _NO_ORDER
    return gross - comm


@njit(cache=True, nogil=True)
def _open_nb(p, nd, b, price, qty, bar, signal_bar, atr, commission):
    """Open position p of node nd (book b): qty at price (slippage included). Levels come from
    the fill price and the ATR at the signal bar. Returns the commission paid."""
    s = nd.side
    comm = commission * qty * price
    b.pos_count += 1
    p.side = s
    p.qty = qty
    p.pos_seq = b.pos_count
    p.re_entry_num = b.day_entries
    p.entry_signal_bar = signal_bar
    p.entry_bar = bar
    p.entry_price = price
    p.entry_commission = comm
    p.sl_level = price - s * _distance_nb(nd.sl_mode, nd.sl_value, price, atr)
    p.tp_level = price + s * _distance_nb(nd.tp_mode, nd.tp_value, price, atr)
    p.trail_extreme = price
    p.trail_level = price - s * _distance_nb(nd.ts_mode, nd.ts_value, price, atr)
    p.bars_held = 1
    b.day_entries += 1
    return comm


@njit(cache=True, nogil=True)
def _stop_nb(p, nd, o, h, lo, atr_prev):
    """Which stop, if any, fills position p in a bar (o, h, lo), and at what raw price.
    Returns (EXIT_* code or -1, price). A stop beats the target when both are touched; a bar
    that opens beyond a level fills at its open. The trailing level comes from the extreme up
    to the previous bar (the entry price on the entry bar) and the previous bar's ATR; the
    extreme moves to this bar's high (long) / low (short) only when nothing fills."""
    s = p.side
    trail = np.nan
    if nd.ts_mode != STOP_NONE:
        trail = p.trail_extreme - s * _distance_nb(nd.ts_mode, nd.ts_value, p.trail_extreme, atr_prev)
        p.trail_level = trail
    sl = p.sl_level
    tp = p.tp_level
    if s == LONG:
        hit_sl = lo <= sl
        hit_trail = lo <= trail
        if hit_sl or hit_trail:
            # Falling from the open, the higher of the touched stops is met first.
            if hit_sl and not (hit_trail and trail > sl):
                return EXIT_STOP_LOSS, min(o, sl)
            return EXIT_TRAILING, min(o, trail)
        if h >= tp:
            return EXIT_TAKE_PROFIT, max(o, tp)
        if h > p.trail_extreme:
            p.trail_extreme = h
    else:
        hit_sl = h >= sl
        hit_trail = h >= trail
        if hit_sl or hit_trail:
            if hit_sl and not (hit_trail and trail < sl):
                return EXIT_STOP_LOSS, max(o, sl)
            return EXIT_TRAILING, max(o, trail)
        if lo <= tp:
            return EXIT_TAKE_PROFIT, min(o, tp)
        if lo < p.trail_extreme:
            p.trail_extreme = lo
    return -1, np.nan


# ---- the kernel -------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def run_nb(open_, high, low, close, day, square_off, entry_signal, exit_signal, exit_targets,
           nodes, stop_atr, fill_at_close, commission, slippage, intraday, equity,
           pos, book, ints, floats, trades, k, start, stop):
    """Step bars [start, stop), writing closed trades into trades[k:] and equity[start:stop]
    (every bar's). See step_nb."""
    return step_nb(open_, high, low, close, day, square_off, entry_signal, exit_signal, exit_targets,
                   nodes, stop_atr, fill_at_close, commission, slippage, intraday, equity,
                   pos, book, ints, floats, trades, k, start, stop, True, _NO_BARS, _NO_BARS, _NO_BARS)


_NO_BARS = np.zeros(0, np.int64)


@njit(cache=True, nogil=True)
def step_nb(open_, high, low, close, day, square_off, entry_signal, exit_signal, exit_targets,
            nodes, stop_atr, fill_at_close, commission, slippage, intraday, equity,
            pos, book, ints, floats, trades, k, start, stop, every_bar, busy_bars, day_starts, square_bars):
    """Step bars [start, stop), writing closed trades into trades[k:] and equity.
    every_bar False (sweeps, which read equity at day closes only): a stretch of quiet bars
    writes the equity of its last bar only; every other bar's is written as with True.
    busy_bars (sorted: every bar with an entry or exit signal), day_starts (sorted first bars
    of the days, then n) and square_bars (sorted square-off bars) let a quiet stretch end be
    found without reading its bars; empty busy_bars: each bar is looked at.

    Market data float64[n] / int64[n] / bool[n]; entry_signal bool[n, E], exit_signal
    bool[n, X], exit_targets bool[X, E], stop_atr float64[n, E]; nodes node_dt[E].
    State (mutated): pos position_dt[E], book book_dt[E], ints int64[4] (_DAY, _SQUARED,
    _OPEN, _PENDING), floats float64[1] (cash).
    Per bar: waiting orders fill at the open; square-off at the open; stops; at the close
    max_bars, exit nodes, then entries (filled there, or left for the next open); the
    intraday day-end close; equity. Quiet bars (nothing of that can happen) take a fast path
    that only marks equity, with the same bits. Returns (trade count, next bar): next bar < stop when
    fewer than 2E trade slots were free at a bar boundary (grow `trades`, call again).
    """
    n = close.shape[0]
    E = pos.shape[0]
    X = exit_signal.shape[1]
    room = trades.shape[0] - 2 * E  # a node closes at most two positions per bar
    cur_day = ints[_DAY]
    squared = ints[_SQUARED] != 0
    n_open = ints[_OPEN]
    pending = ints[_PENDING] != 0
    cash = floats[0]
    i = start
    skip = day_starts.shape[0] > 0
    nb = busy_bars.shape[0]
    nd_ = day_starts.shape[0]
    ns = square_bars.shape[0]
    bc = 0
    dc = 0
    sc = 0
    while i < stop and k <= room:
        # Fast path: a stretch of quiet bars only marks equity. A bar is quiet when it is of
        # the current day, nothing waits for its open, it is no square-off bar nor (intraday,
        # positions open) a day's last bar, no entry signal fires and, positions open, no exit
        # signal; and no open position has stops or max_bars. It is written out here, not in
        # a helper: every array handed to a numba function costs an atomic incref/decref pair.
        if not pending and (day[i] == cur_day or (skip and not intraday)):
            # Up to two open positions are held in scalars; more are read from the records.
            # Equity sums as step 5 does: cash, then each open position in node order.
            quiet = True
            e0 = -1
            sq0 = 0.0
            ep0 = 0.0
            sq1 = 0.0
            ep1 = 0.0
            if n_open > 0:
                for e in range(E):
                    p = pos[e]
                    if p.qty != 0.0:
                        nd = nodes[e]
                        if nd.has_stops or nd.max_bars > 0:
                            quiet = False
                            break
                        if e0 < 0:
                            e0 = e
                            sq0 = p.side * p.qty
                            ep0 = p.entry_price
                        else:
                            sq1 = p.side * p.qty
                            ep1 = p.entry_price
            if quiet and skip:
                # The stretch ends at the next bar with a signal (or stop); intraday also at the
                # next day start, square-off bar, or (positions open) the day's last bar — found,
                # not scanned. Not intraday, it runs across days: a day change only resets the
                # day's entry counts, and each day's close gets its equity.
                while bc < nb and busy_bars[bc] < i:
                    bc += 1
                while dc < nd_ and day_starts[dc] <= i:
                    dc += 1
                j = stop
                if bc < nb:
                    j = min(j, busy_bars[bc])
                if intraday:
                    j = min(j, day_starts[dc] if dc < nd_ else n)
                    while sc < ns and square_bars[sc] < i:
                        sc += 1
                    if sc < ns:
                        j = min(j, square_bars[sc])
                    if n_open > 0:
                        j = min(j, (day_starts[dc] if dc < nd_ else n) - 1)
                if j > i:
                    # Equity at each day close inside the stretch, and at its last bar.
                    m = dc
                    while True:
                        last = (day_starts[m] - 1) if m < nd_ and day_starts[m] < j else j - 1
                        c = close[last]
                        if n_open == 0:
                            equity[last] = cash
                        elif n_open == 1:
                            equity[last] = cash + sq0 * (c - ep0)
                        elif n_open == 2:
                            equity[last] = cash + sq0 * (c - ep0) + sq1 * (c - ep1)
                        else:
                            eq = cash
                            for e in range(E):
                                p = pos[e]
                                if p.qty != 0.0:
                                    eq += p.side * p.qty * (c - p.entry_price)
                            equity[last] = eq
                        if last == j - 1:
                            break
                        m += 1
                    if day[j - 1] != cur_day:
                        cur_day = day[j - 1]
                        squared = False
                        for e in range(E):
                            book[e].day_entries = 0
                    if n_open > 0:
                        for e in range(E):
                            p = pos[e]
                            if p.qty != 0.0:
                                p.bars_held = j - p.entry_bar
                    i = j
                    continue
            elif quiet:
                check_exits = n_open > 0 and X > 0
                day_end = intraday and n_open > 0
                j = i
                while j < stop:
                    if day[j] != cur_day:
                        break
                    if intraday:
                        if square_off[j]:
                            break
                        if day_end and (j + 1 >= n or day[j + 1] != cur_day):
                            break
                    busy = False
                    for e in range(E):
                        if entry_signal[j, e]:
                            busy = True
                            break
                    if check_exits and not busy:
                        for x in range(X):
                            if exit_signal[j, x]:
                                busy = True
                                break
                    if busy:
                        break
                    if every_bar or j + 1 == stop or day[j + 1] != cur_day:
                        c = close[j]
                        if n_open == 0:
                            equity[j] = cash
                        elif n_open == 1:
                            equity[j] = cash + sq0 * (c - ep0)
                        elif n_open == 2:
                            equity[j] = cash + sq0 * (c - ep0) + sq1 * (c - ep1)
                        else:
                            eq = cash
                            for e in range(E):
                                p = pos[e]
                                if p.qty != 0.0:
                                    eq += p.side * p.qty * (c - p.entry_price)
                            equity[j] = eq
                    j += 1
                if j > i:
                    # bars_held as step 4 leaves it after bar j - 1.
                    if n_open > 0:
                        for e in range(E):
                            p = pos[e]
                            if p.qty != 0.0:
                                p.bars_held = j - p.entry_bar
                    i = j
                    continue
        d = day[i]
        if d != cur_day:
            cur_day = d
            squared = False
            for e in range(E):
                book[e].day_entries = 0
                if intraday:
                    book[e].entry_bar = _NO_ORDER
        # Orders fill at two points of a bar, with one copy of the fill code (inlined: a
        # helper would cost an incref/decref pair per array per call): stage 0 is the open
        # (orders from the previous close, step 1), stage 1 the close (fill_at_close, after
        # step 4). Steps 2-4 run between the two.
        fill = pending
        pending = False
        raw = open_[i]
        mark = close[i - 1] if i > 0 else raw
        allow = not (intraday and (squared or square_off[i]))
        for stage in range(2):
            if fill:
                # Every waiting order fills at raw: exits first, then entries in node order
                # (a reversing entry first closes the opposite side's positions of other
                # nodes). Equity-percent sizes mark other positions at `mark`.
                for e in range(E):
                    b = book[e]
                    if b.exit_reason != _NO_ORDER and pos[e].qty != 0.0:
                        cash += _close_nb(pos[e], b, trades[k], e, raw, i, b.exit_bar, b.exit_reason,
                                          b.exit_node, commission, slippage)
                        k += 1
                        n_open -= 1
                    b.exit_reason = _NO_ORDER
                for e in range(E):
                    b = book[e]
                    signal_bar = b.entry_bar
                    if signal_bar == _NO_ORDER:
                        continue
                    b.entry_bar = _NO_ORDER
                    if not allow:
                        continue
                    nd = nodes[e]
                    if nd.reverse:
                        for f in range(E):
                            q = pos[f]
                            if f != e and q.qty != 0.0 and q.side == -nd.side:
                                cash += _close_nb(q, book[f], trades[k], f, raw, i, signal_bar, EXIT_REVERSE,
                                                  e, commission, slippage)
                                k += 1
                                n_open -= 1
                    price = raw * (1.0 + nd.side * slippage)
                    if nd.qty_mode == QTY_EQUITY_PCT:
                        free = cash
                        for f in range(E):
                            q = pos[f]
                            if q.qty != 0.0:
                                free += q.side * q.qty * (mark - q.entry_price) - q.qty * q.entry_price
                        qty = np.floor(free * nd.qty_value / 100.0 / (price * (1.0 + commission)))
                    else:
                        qty = nd.qty_value
                        # An account whose equity is gone opens nothing more (fixed sizes would
                        # otherwise keep trading a negative balance).
                        equity_now = cash
                        for f in range(E):
                            q = pos[f]
                            if q.qty != 0.0:
                                equity_now += q.side * q.qty * (mark - q.entry_price)
                        if equity_now <= 0.0:
                            qty = 0.0
                    if qty > 0.0:  # a size of 0 (or NaN) skips the entry: nothing opens, nothing counts
                        # The ATR only matters to stops (else a cold load: the signal bar is far).
                        atr = stop_atr[signal_bar, e] if nd.has_stops else np.nan
                        cash -= _open_nb(pos[e], nd, b, price, qty, i, signal_bar, atr, commission)
                        n_open += 1
            if stage == 1:
                break
            # 2. Square-off at this open.
            if intraday and square_off[i]:
                squared = True
                for e in range(E):
                    if pos[e].qty != 0.0:
                        cash += _close_nb(pos[e], book[e], trades[k], e, open_[i], i, i, EXIT_SQUARE_OFF,
                                          -1, commission, slippage)
                        k += 1
                        n_open -= 1
            # 3. Stops inside the bar.
            if n_open > 0:
                for e in range(E):
                    p = pos[e]
                    if p.qty != 0.0 and nodes[e].has_stops:
                        atr_prev = stop_atr[i - 1, e] if i > 0 else np.nan
                        reason, stop_raw = _stop_nb(p, nodes[e], open_[i], high[i], low[i], atr_prev)
                        if reason >= 0:
                            cash += _close_nb(p, book[e], trades[k], e, stop_raw, i, i, reason, -1,
                                              commission, slippage)
                            k += 1
                            n_open -= 1
            # 4. Signals at the close: max_bars, exit nodes, entries.
            orders = False
            if n_open > 0:
                for e in range(E):
                    p = pos[e]
                    if p.qty != 0.0:
                        p.bars_held = i - p.entry_bar + 1
                        max_bars = nodes[e].max_bars
                        if max_bars > 0 and p.bars_held >= max_bars:
                            b = book[e]
                            b.exit_reason = EXIT_MAX_BARS
                            b.exit_node = -1
                            b.exit_bar = i
                            orders = True
                for x in range(X):
                    if exit_signal[i, x]:
                        for e in range(E):
                            b = book[e]
                            if exit_targets[x, e] and pos[e].qty != 0.0 and b.exit_reason == _NO_ORDER:
                                b.exit_reason = EXIT_SIGNAL
                                b.exit_node = x
                                b.exit_bar = i
                                orders = True
            # Entries are decided before any of them fills: a node whose position another
            # node's reversal closes in this step does not enter again in it.
            for e in range(E):
                if not entry_signal[i, e]:
                    continue
                b = book[e]
                if pos[e].qty != 0.0 and b.exit_reason == _NO_ORDER:
                    continue
                last_of_day = i + 1 >= n or day[i + 1] != d
                nd = nodes[e]
                if not entry_allowed_nb(intraday, squared, last_of_day, fill_at_close, square_off, i, b.day_entries,
                                        nd.max_per_day, nd.max_re_entries):
                    continue
                b.entry_bar = i
                orders = True
            fill = orders and fill_at_close
            pending = orders and not fill_at_close
            raw = close[i]
            mark = raw
            allow = True
        # A square-off day that ends before its square-off bar closes at its last close.
        if intraday and n_open > 0 and (i + 1 >= n or day[i + 1] != d):
            for e in range(E):
                if pos[e].qty != 0.0:
                    cash += _close_nb(pos[e], book[e], trades[k], e, close[i], i, i, EXIT_SQUARE_OFF,
                                      -1, commission, slippage)
                    k += 1
                    n_open -= 1
        # 5. Equity at the close.
        eq = cash
        if n_open > 0:
            c = close[i]
            for e in range(E):
                p = pos[e]
                if p.qty != 0.0:
                    eq += p.side * p.qty * (c - p.entry_price)
        equity[i] = eq
        i += 1
    ints[_DAY] = cur_day
    ints[_SQUARED] = 1 if squared else 0
    ints[_OPEN] = n_open
    ints[_PENDING] = 1 if pending else 0
    floats[0] = cash
    return k, i


@njit(cache=True, nogil=True)
def close_all_nb(close, bar, reason, commission, slippage, pos, book, ints, floats, trades):
    """Close every open position at close[bar] (slipped) with `reason`; drop waiting orders.
    trades: trade_dt[>= E]. Returns the number of trades written."""
    k = 0
    for e in range(pos.shape[0]):
        b = book[e]
        if pos[e].qty != 0.0:
            floats[0] += _close_nb(pos[e], b, trades[k], e, close[bar], bar, bar, reason, -1,
                                   commission, slippage)
            k += 1
        b.entry_bar = _NO_ORDER
        b.exit_reason = _NO_ORDER
    ints[_OPEN] = 0
    ints[_PENDING] = 0
    return k


# ---- Python API -------------------------------------------------------------------------------
_NODE_FIELDS = tuple(name for name in node_dt.names if name != "has_stops")


def copy_records(a: np.ndarray, k: int) -> np.ndarray:
    # A byte copy: ndarray.copy() on a 19-field dtype costs ~7 us even when empty, per chunk.
    return a[:k].view(np.uint8).copy().view(a.dtype)


def _array(name: str, value, dtype, shape: tuple[int, ...]) -> np.ndarray:
    a = np.ascontiguousarray(value, dtype=dtype)
    if not a.flags.writeable:
        a = a.copy()  # numba compiles read-only arrays separately; warmup covers writable ones
    if a.shape != shape:
        raise ValueError(f"kernel input {name!r} has shape {a.shape}, expected {shape}")
    return a


@dataclass
class KernelInputs:
    """Everything the kernel reads, plus the equity array it writes.

    n bars, E entry nodes, X exit nodes. open/high/low/close float64[n] (price); day int64[n]
    (trading-day number, non-decreasing); square_off bool[n] (first bar of a day at/after the
    square-off time; read only when intraday); entry_signal bool[n, E]; exit_signal
    bool[n, X]; exit_targets bool[X, E] (exit node x closes entry node e). Per entry node [E]:
    side int64 (LONG/SHORT), qty_mode int64 (QTY_*), qty_value float64 (units or percent),
    max_per_day int64 (0: unlimited), max_re_entries int64 (-1: unlimited), reverse bool,
    max_bars int64 (0: none), sl/tp/ts_mode int64 (STOP_*), sl/tp/ts_value float64 (percent,
    points or ATR multiples); stop_atr float64[n, E] (the ATR of node e's ATR stops).
    commission and slippage: fractions of the fill price. equity float64[n] is written by
    the kernel: cash + open positions marked at each bar's close.
    Arrays are coerced to contiguous writable arrays of these dtypes and shapes are checked;
    the per-node arrays are packed into `nodes` (node_dt[E]) here, so change none afterwards.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    day: np.ndarray
    square_off: np.ndarray
    entry_signal: np.ndarray
    exit_signal: np.ndarray
    exit_targets: np.ndarray
    side: np.ndarray
    qty_mode: np.ndarray
    qty_value: np.ndarray
    max_per_day: np.ndarray
    max_re_entries: np.ndarray
    reverse: np.ndarray
    max_bars: np.ndarray
    sl_mode: np.ndarray
    sl_value: np.ndarray
    tp_mode: np.ndarray
    tp_value: np.ndarray
    ts_mode: np.ndarray
    ts_value: np.ndarray
    stop_atr: np.ndarray
    fill_at_close: bool
    commission: float
    slippage: float
    intraday: bool
    equity: np.ndarray
    nodes: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = np.shape(self.close)[0] if np.ndim(self.close) == 1 else -1
        if n < 0:
            raise ValueError("kernel input 'close' must be one-dimensional")
        E = np.shape(self.side)[0] if np.ndim(self.side) == 1 else -1
        if E < 0:
            raise ValueError("kernel input 'side' must be one-dimensional (one value per entry node)")
        X = np.shape(self.exit_signal)[1] if np.ndim(self.exit_signal) == 2 else -1
        if X < 0:
            raise ValueError("kernel input 'exit_signal' must be bool[n, X]")
        f8, i8, b1 = np.float64, np.int64, np.bool_
        for name, dtype, shape in (
            ("open", f8, (n,)), ("high", f8, (n,)), ("low", f8, (n,)), ("close", f8, (n,)),
            ("day", i8, (n,)), ("square_off", b1, (n,)), ("entry_signal", b1, (n, E)),
            ("exit_signal", b1, (n, X)), ("exit_targets", b1, (X, E)), ("stop_atr", f8, (n, E)),
            ("side", i8, (E,)), ("qty_mode", i8, (E,)), ("qty_value", f8, (E,)),
            ("max_per_day", i8, (E,)), ("max_re_entries", i8, (E,)), ("reverse", b1, (E,)),
            ("max_bars", i8, (E,)), ("sl_mode", i8, (E,)), ("sl_value", f8, (E,)),
            ("tp_mode", i8, (E,)), ("tp_value", f8, (E,)), ("ts_mode", i8, (E,)), ("ts_value", f8, (E,)),
        ):
            setattr(self, name, _array(name, getattr(self, name), dtype, shape))
        eq = self.equity
        if not (isinstance(eq, np.ndarray) and eq.dtype == f8 and eq.shape == (n,)
                and eq.flags.c_contiguous and eq.flags.writeable):
            raise ValueError(f"kernel input 'equity' must be a writable contiguous float64[{n}] array "
                             "(np.full(n, np.nan)); the kernel writes into it")
        if ((self.side != LONG) & (self.side != SHORT)).any():
            raise ValueError(f"kernel input 'side' must hold LONG ({LONG}) or SHORT ({SHORT})")
        self.fill_at_close = bool(self.fill_at_close)
        self.intraday = bool(self.intraday)
        self.commission = float(self.commission)
        self.slippage = float(self.slippage)
        self.nodes = np.zeros(E, node_dt)
        for name in _NODE_FIELDS:
            self.nodes[name] = getattr(self, name)
        self.nodes["has_stops"] = (self.sl_mode != STOP_NONE) | (self.tp_mode != STOP_NONE) | (self.ts_mode != STOP_NONE)

    @property
    def n_bars(self) -> int:
        return int(self.close.shape[0])


@dataclass
class KernelState:
    """State carried from one `run_chunk` to the next; run_chunk/close_all mutate it in place."""

    positions: np.ndarray  # position_dt[E]: each node's open position; qty == 0 means flat
    book: np.ndarray       # book_dt[E]: orders waiting for the next open, per-day/run counters
    ints: np.ndarray       # int64[4]: current day, squared-off flag, open positions, pending flag
    floats: np.ndarray     # float64[1]: cash
    buffer: np.ndarray     # trade_dt scratch for run_chunk, grown by doubling

    @property
    def cash(self) -> float:
        """Initial capital + realized pnl, net of every commission paid (open entries' too)."""
        return float(self.floats[0])

    @property
    def open_count(self) -> int:
        return int(self.ints[_OPEN])


def new_state(n_entries: int, initial_capital: float, *, trade_capacity: int = 1024) -> KernelState:
    """Fresh state for n_entries entry nodes: all flat, no orders, cash = initial_capital."""
    E = int(n_entries)
    positions = np.zeros(E, position_dt)
    for name in ("sl_level", "tp_level", "trail_extreme", "trail_level"):
        positions[name] = np.nan
    book = np.zeros(E, book_dt)
    for name in ("entry_bar", "exit_reason", "exit_node", "exit_bar"):
        book[name] = _NO_ORDER
    return KernelState(positions=positions, book=book, ints=np.array([_NO_DAY, 0, 0, 0], np.int64),
                       floats=np.array([float(initial_capital)]),
                       buffer=np.empty(max(int(trade_capacity), 4 * E + 4), trade_dt))


def run_chunk(inp: KernelInputs, state: KernelState, start: int, stop: int) -> np.ndarray:
    """Step bars [start, stop); successive calls continue where the last one stopped.
    Returns a copy of the trade_dt records closed in the range, in close order."""
    n = inp.n_bars
    if not 0 <= start <= stop <= n:
        raise ValueError(f"bar range [{start}, {stop}) is outside [0, {n}]")
    if state.positions.shape[0] != inp.nodes.shape[0]:
        raise ValueError(f"state has {state.positions.shape[0]} entry nodes, inputs {inp.nodes.shape[0]}")
    k, i = 0, int(start)
    while True:
        k, i = run_nb(inp.open, inp.high, inp.low, inp.close, inp.day, inp.square_off, inp.entry_signal,
                      inp.exit_signal, inp.exit_targets, inp.nodes, inp.stop_atr, inp.fill_at_close,
                      inp.commission, inp.slippage, inp.intraday, inp.equity, state.positions, state.book,
                      state.ints, state.floats, state.buffer, k, i, int(stop))
        if i >= stop:
            return copy_records(state.buffer, k)
        grown = np.empty(2 * state.buffer.shape[0], trade_dt)
        grown[:k] = state.buffer[:k]
        state.buffer = grown


def close_all(inp: KernelInputs, state: KernelState, bar: int, reason: int = EXIT_END_OF_DATA) -> np.ndarray:
    """Close every open position at close[bar] (slippage and commission apply), drop waiting
    orders and set equity[bar] to the resulting cash. Returns trade_dt records in node order."""
    if not 0 <= bar < inp.n_bars:
        raise ValueError(f"bar {bar} is outside [0, {inp.n_bars})")
    out = np.empty(state.positions.shape[0], trade_dt)
    k = close_all_nb(inp.close, int(bar), int(reason), inp.commission, inp.slippage, state.positions,
                     state.book, state.ints, state.floats, out)
    inp.equity[bar] = state.floats[0]
    return copy_records(out, k)


def warmup() -> None:
    """Compile the kernels on tiny arrays, so that no request pays for JIT."""
    n, E = 6, 2
    px = np.array([10.0, 11.0, 12.0, 11.0, 10.0, 11.0])
    sig = np.zeros((n, E), np.bool_)
    sig[0, 0] = sig[2, 1] = True
    inp = KernelInputs(
        open=px, high=px + 1, low=px - 1, close=px, day=np.array([0, 0, 0, 1, 1, 1]),
        square_off=np.zeros(n, np.bool_), entry_signal=sig, exit_signal=np.ones((n, 1), np.bool_),
        exit_targets=np.ones((1, E), np.bool_), side=np.array([LONG, SHORT]),
        qty_mode=np.array([QTY_UNITS, QTY_EQUITY_PCT]), qty_value=np.array([1.0, 50.0]),
        max_per_day=np.zeros(E), max_re_entries=np.full(E, -1), reverse=np.ones(E), max_bars=np.array([2, 0]),
        sl_mode=np.array([STOP_PCT, STOP_POINTS]), sl_value=np.ones(E), tp_mode=np.array([STOP_POINTS, STOP_PCT]),
        tp_value=np.ones(E), ts_mode=np.array([STOP_ATR, STOP_PCT]), ts_value=np.ones(E),
        stop_atr=np.ones((n, E)), fill_at_close=False, commission=0.0001, slippage=0.0001, intraday=False,
        equity=np.full(n, np.nan))
    state = new_state(E, 1000.0)
    run_chunk(inp, state, 0, n)
    close_all(inp, state, n - 1)
