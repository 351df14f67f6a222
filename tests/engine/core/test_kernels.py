"""The trading kernel: every rule on tiny hand-computed bars, then properties on random walks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.engine.core import kernels
from services.engine.core.records import (
    EXIT_END_OF_DATA, EXIT_MAX_BARS, EXIT_REVERSE, EXIT_SIGNAL, EXIT_SQUARE_OFF, EXIT_STOP_LOSS,
    EXIT_TAKE_PROFIT, EXIT_TRAILING, LONG, QTY_EQUITY_PCT, QTY_UNITS, SHORT, STOP_ATR, STOP_NONE,
    STOP_PCT, STOP_POINTS, trade_dt,
)

CAPITAL = 1000.0


# ---- builders ---------------------------------------------------------------------------------
def node(side=LONG, qty=1.0, qty_mode=QTY_UNITS, max_per_day=0, max_re_entries=-1, reverse=False,
         max_bars=0, sl=(STOP_NONE, 0.0), tp=(STOP_NONE, 0.0), ts=(STOP_NONE, 0.0)) -> dict:
    return dict(side=side, qty_value=qty, qty_mode=qty_mode, max_per_day=max_per_day,
                max_re_entries=max_re_entries, reverse=reverse, max_bars=max_bars,
                sl_mode=sl[0], sl_value=sl[1], tp_mode=tp[0], tp_value=tp[1], ts_mode=ts[0], ts_value=ts[1])


def build(close, *, open=None, high=None, low=None, day=None, square_off=(), entries=((),),
          exits=(), targets=None, nodes=None, atr=None, fill_at_close=False, commission=0.0,
          slippage=0.0, intraday=False) -> kernels.KernelInputs:
    """entries[e] / exits[x]: the bars where entry node e / exit node x signals."""
    close = np.asarray(close, np.float64)
    n = len(close)
    open = close.copy() if open is None else np.asarray(open, np.float64)
    high = np.maximum(open, close) if high is None else np.asarray(high, np.float64)
    low = np.minimum(open, close) if low is None else np.asarray(low, np.float64)
    nodes = nodes or [node() for _ in entries]
    E, X = len(nodes), len(exits)
    entry_signal = np.zeros((n, E), np.bool_)
    for e, bars in enumerate(entries):
        entry_signal[list(bars), e] = True
    exit_signal = np.zeros((n, X), np.bool_)
    for x, bars in enumerate(exits):
        exit_signal[list(bars), x] = True
    so = np.zeros(n, np.bool_)
    so[list(square_off)] = True
    col = {k: np.array([nd[k] for nd in nodes]) for k in nodes[0]} if nodes else {k: [] for k in node()}
    return kernels.KernelInputs(
        open=open, high=high, low=low, close=close,
        day=np.zeros(n, np.int64) if day is None else np.asarray(day, np.int64), square_off=so,
        entry_signal=entry_signal, exit_signal=exit_signal,
        exit_targets=np.ones((X, E), np.bool_) if targets is None else np.asarray(targets, np.bool_),
        side=np.asarray(col["side"], np.int64), qty_mode=np.asarray(col["qty_mode"], np.int64),
        qty_value=np.asarray(col["qty_value"], np.float64),
        max_per_day=np.asarray(col["max_per_day"], np.int64),
        max_re_entries=np.asarray(col["max_re_entries"], np.int64),
        reverse=np.asarray(col["reverse"], np.bool_), max_bars=np.asarray(col["max_bars"], np.int64),
        sl_mode=np.asarray(col["sl_mode"], np.int64), sl_value=np.asarray(col["sl_value"], np.float64),
        tp_mode=np.asarray(col["tp_mode"], np.int64), tp_value=np.asarray(col["tp_value"], np.float64),
        ts_mode=np.asarray(col["ts_mode"], np.int64), ts_value=np.asarray(col["ts_value"], np.float64),
        stop_atr=np.full((n, E), np.nan) if atr is None else np.asarray(atr, np.float64).reshape(n, E),
        fill_at_close=fill_at_close, commission=commission, slippage=slippage, intraday=intraday,
        equity=np.full(n, np.nan))


def ohlc(rows):
    """build() keyword arguments from (open, high, low, close) rows."""
    a = np.asarray(rows, np.float64)
    return dict(open=a[:, 0], high=a[:, 1], low=a[:, 2], close=a[:, 3])


def run(inp, capital=CAPITAL, **kw):
    state = kernels.new_state(inp.side.shape[0], capital, **kw)
    trades = kernels.run_chunk(inp, state, 0, inp.n_bars)
    return trades, state


def fields(t, *names):
    return tuple(t[k].item() for k in names)


BARS = ("entry_signal_bar", "entry_bar", "exit_signal_bar", "exit_bar")


# ---- fills ------------------------------------------------------------------------------------
PX = dict(open=[10, 10.5, 11.5, 12.5, 13.5], close=[10, 11, 12, 13, 14])


def test_next_open_fill():
    t, state = run(build(**PX, entries=[[1]], exits=[[3]]))
    assert len(t) == 1
    assert fields(t[0], *BARS) == (1, 2, 3, 4)
    assert fields(t[0], "entry_price", "exit_price", "pnl", "qty", "side") == (11.5, 13.5, 2.0, 1.0, LONG)
    assert fields(t[0], "exit_reason", "exit_node", "pos_seq", "re_entry_num") == (EXIT_SIGNAL, 0, 1, 0)
    inp = build(**PX, entries=[[1]], exits=[[3]])
    run(inp)
    np.testing.assert_allclose(inp.equity, [1000, 1000, 1000.5, 1001.5, 1002])
    assert state.cash == 1002.0 and state.open_count == 0


def test_fill_at_close():
    inp = build(**PX, entries=[[1]], exits=[[3]], fill_at_close=True)
    t, _ = run(inp)
    assert fields(t[0], *BARS) == (1, 1, 3, 3)
    assert fields(t[0], "entry_price", "exit_price", "pnl") == (11.0, 13.0, 2.0)
    np.testing.assert_allclose(inp.equity, [1000, 1000, 1001, 1002, 1002])


@pytest.mark.parametrize("side, entry, exit, pnl", [
    (LONG, 11.5 * 1.01, 13.5 * 0.99, 1.75),    # buy high, sell low
    (SHORT, 11.5 * 0.99, 13.5 * 1.01, -2.25),  # sell low, buy back high
])
def test_slippage_on_both_sides(side, entry, exit, pnl):
    t, _ = run(build(**PX, entries=[[1]], exits=[[3]], nodes=[node(side=side)], slippage=0.01))
    assert t[0]["entry_price"] == pytest.approx(entry)
    assert t[0]["exit_price"] == pytest.approx(exit)
    assert t[0]["pnl"] == pytest.approx(pnl)


def test_commission_at_entry_and_exit():
    inp = build(**PX, entries=[[1]], exits=[[3]], nodes=[node(qty=10)], commission=0.001)
    t, state = run(inp)
    assert t[0]["entry_commission"] == pytest.approx(0.001 * 10 * 11.5)
    assert t[0]["exit_commission"] == pytest.approx(0.001 * 10 * 13.5)
    assert t[0]["pnl"] == pytest.approx(20 - 0.115 - 0.135)
    # cash pays the entry commission at once; equity marks the position at each close
    assert inp.equity[2] == pytest.approx(1000 - 0.115 + 10 * (12 - 11.5))
    assert state.cash == pytest.approx(1019.75) and inp.equity[4] == pytest.approx(1019.75)


def test_signal_on_last_bar_never_fills_and_close_all_drops_it():
    inp = build(**PX, entries=[[4]])
    t, state = run(inp)
    assert len(t) == 0 and state.book[0]["entry_bar"] == 4
    assert len(kernels.close_all(inp, state, 4)) == 0
    assert state.book[0]["entry_bar"] == -1 and state.cash == CAPITAL


def test_close_all_closes_at_close_with_costs():
    inp = build(**PX, entries=[[0]], nodes=[node(qty=2)], slippage=0.01, commission=0.001)
    _, state = run(inp)
    t = kernels.close_all(inp, state, 4)
    assert len(t) == 1 and t[0]["exit_reason"] == EXIT_END_OF_DATA
    assert fields(t[0], "exit_signal_bar", "exit_bar", "exit_node") == (4, 4, -1)
    assert t[0]["exit_price"] == pytest.approx(14 * 0.99)
    assert t[0]["exit_commission"] == pytest.approx(0.001 * 2 * 14 * 0.99)
    assert inp.equity[4] == state.cash == pytest.approx(CAPITAL + t[0]["pnl"])
    assert state.open_count == 0


# ---- stops ------------------------------------------------------------------------------------
FLAT = (100, 100, 100, 100)
ENTRY_BAR = (100, 101, 99, 100)  # the signal is on bar 0, the entry fills at this open (100)


def stop_run(bar2, side=LONG, slippage=0.0, **stops):
    inp = build(**ohlc([FLAT, ENTRY_BAR, bar2, FLAT]), entries=[[0]],
                nodes=[node(side=side, **stops)], slippage=slippage)
    t, _ = run(inp)
    assert len(t) == 1
    return t[0]


@pytest.mark.parametrize("bar2, kind, price", [
    ((99, 99.5, 97.5, 98.5), EXIT_STOP_LOSS, 98.0),    # touches the stop
    ((101, 103.5, 100.5, 102), EXIT_TAKE_PROFIT, 103.0),  # touches the target
    ((100, 104, 97, 100), EXIT_STOP_LOSS, 98.0),       # touches both: the stop wins
    ((96, 97, 95, 96), EXIT_STOP_LOSS, 96.0),          # gaps through the stop: its open
    ((105, 106, 104, 105), EXIT_TAKE_PROFIT, 105.0),   # gaps through the target: its open
])
def test_long_stop_loss_and_take_profit(bar2, kind, price):
    t = stop_run(bar2, sl=(STOP_PCT, 2.0), tp=(STOP_POINTS, 3.0))
    assert fields(t, "exit_reason", "exit_price", "sl_level", "tp_level") == (kind, price, 98.0, 103.0)
    assert fields(t, "exit_signal_bar", "exit_bar", "exit_node") == (2, 2, -1)
    assert math.isnan(t["trail_level"])


@pytest.mark.parametrize("bar2, kind, price", [
    ((101, 102.5, 100, 101), EXIT_STOP_LOSS, 102.0),
    ((99, 99.5, 96, 97), EXIT_TAKE_PROFIT, 97.0),
    ((100, 103, 96, 100), EXIT_STOP_LOSS, 102.0),
    ((104, 105, 103, 104), EXIT_STOP_LOSS, 104.0),
    ((95, 96, 94, 95), EXIT_TAKE_PROFIT, 95.0),
])
def test_short_stop_loss_and_take_profit(bar2, kind, price):
    t = stop_run(bar2, side=SHORT, sl=(STOP_PCT, 2.0), tp=(STOP_POINTS, 3.0))
    assert fields(t, "exit_reason", "exit_price", "sl_level", "tp_level") == (kind, price, 102.0, 97.0)


def test_stop_fill_is_slipped_and_levels_come_from_the_slipped_entry():
    t = stop_run((99, 99.5, 97.5, 98.5), slippage=0.01, sl=(STOP_PCT, 2.0))
    assert t["entry_price"] == pytest.approx(101.0)
    assert t["sl_level"] == pytest.approx(101 * 0.98)
    assert t["exit_price"] == pytest.approx(101 * 0.98 * 0.99)


def test_stop_checked_on_the_next_open_entry_bar():
    inp = build(**ohlc([FLAT, (100, 100, 97, 98), FLAT]), entries=[[0]], nodes=[node(sl=(STOP_PCT, 2.0))])
    t, _ = run(inp)
    assert fields(t[0], "entry_bar", "exit_bar", "exit_price", "exit_reason") == (1, 1, 98.0, EXIT_STOP_LOSS)


def test_stop_not_checked_on_the_fill_at_close_entry_bar():
    inp = build(**ohlc([(100, 100, 90, 100), (100, 101, 99, 100), (99, 99, 97, 98)]), entries=[[0]],
                nodes=[node(sl=(STOP_PCT, 2.0))], fill_at_close=True)
    t, _ = run(inp)
    assert fields(t[0], "entry_bar", "exit_bar", "exit_price") == (0, 2, 98.0)


TRAIL_UP = (100, 110, 99, 108)  # entry bar: new high 110, but its low only tests the entry level


@pytest.mark.parametrize("ts, atr, bar2, price", [
    ((STOP_PCT, 5.0), None, (108, 109, 104, 105), 104.5),    # 110 - 5 % of 110
    ((STOP_POINTS, 4.0), None, (108, 109, 104, 105), 106.0),  # 110 - 4
    ((STOP_ATR, 2.0), [1.0, 3.0, 9.0, 9.0], (108, 109, 104, 105), 104.0),  # 110 - 2 x ATR[bar 1]
    ((STOP_PCT, 5.0), None, (103, 103.5, 100, 101), 103.0),  # opens below the level: its open
])
def test_trailing_stop_long(ts, atr, bar2, price):
    inp = build(**ohlc([FLAT, TRAIL_UP, bar2, FLAT]), entries=[[0]], nodes=[node(ts=ts)], atr=atr)
    t, _ = run(inp)
    assert len(t) == 1
    assert fields(t[0], "exit_reason", "exit_bar", "exit_price") == (EXIT_TRAILING, 2, price)
    assert t[0]["trail_level"] == pytest.approx(110 - {104.5: 5.5, 106.0: 4.0, 104.0: 6.0, 103.0: 5.5}[price])


def test_trailing_stop_short_and_atr_on_entry_bar():
    # entry bar: level from the entry price with ATR[bar 0] = 2: 100 + 2*2 = 104 (high 103: holds)
    rows = [FLAT, (100, 103, 90, 92), (92, 95, 91, 94), FLAT]
    inp = build(**ohlc(rows), entries=[[0]], nodes=[node(side=SHORT, ts=(STOP_ATR, 2.0))],
                atr=[2.0, 2.25, 9.0, 9.0])
    t, _ = run(inp)
    assert fields(t[0], "exit_reason", "exit_bar", "exit_price") == (EXIT_TRAILING, 2, 94.5)  # 90 + 2*2.25
    inp = build(**ohlc([FLAT, (100, 104, 90, 92), FLAT]), entries=[[0]],
                nodes=[node(side=SHORT, ts=(STOP_ATR, 2.0))], atr=[2.0, 9.0, 9.0])
    t, _ = run(inp)
    assert fields(t[0], "exit_bar", "exit_price") == (1, 104.0)


def test_stop_loss_beats_trailing_stop_when_it_is_nearer():
    # both touched: the higher level (for a long) is met first on the way down
    t = stop_run((99, 99.5, 90, 95), sl=(STOP_POINTS, 1.5), ts=(STOP_POINTS, 5.0))
    assert fields(t, "exit_reason", "exit_price") == (EXIT_STOP_LOSS, 98.5)  # trail 101 - 5 = 96
    t = stop_run((99, 99.5, 90, 95), sl=(STOP_POINTS, 5.0), ts=(STOP_POINTS, 1.5))
    assert fields(t, "exit_reason", "exit_price") == (EXIT_TRAILING, 99.0)  # 99.5, opened below


def test_atr_stop_uses_the_entry_signal_bar():
    inp = build(**ohlc([FLAT, ENTRY_BAR, (99, 99, 96, 97), FLAT]), entries=[[0]],
                nodes=[node(sl=(STOP_ATR, 1.5))], atr=[2.0, 9.0, 9.0, 9.0])
    t, _ = run(inp)
    assert fields(t[0], "sl_level", "exit_price", "exit_reason") == (97.0, 97.0, EXIT_STOP_LOSS)


# ---- max_bars ---------------------------------------------------------------------------------
RAMP = dict(close=[10, 11, 12, 13, 14, 15], open=[10, 10.5, 11.5, 12.5, 13.5, 14.5])


def test_max_bars_next_open():
    t, _ = run(build(**RAMP, entries=[[0]], nodes=[node(max_bars=2)]))
    assert fields(t[0], *BARS) == (0, 1, 2, 3)
    assert fields(t[0], "exit_reason", "exit_price", "exit_node") == (EXIT_MAX_BARS, 12.5, -1)


def test_max_bars_fill_at_close_counts_the_entry_bar():
    t, _ = run(build(**RAMP, entries=[[0]], nodes=[node(max_bars=3)], fill_at_close=True))
    assert fields(t[0], *BARS) == (0, 0, 2, 2)
    assert t[0]["exit_price"] == 12.0


def test_bars_held_is_tracked_on_open_positions():
    _, state = run(build(**RAMP, entries=[[1]]))
    assert state.positions[0]["bars_held"] == 4  # entered at bar 2's open; bars 2..5



@pytest.mark.parametrize("seed", range(12))
def test_quiet_bars_fast_path_equals_the_full_step(seed):
    """Long stretches with positions open and nothing to do take the kernel's fast path; a
    max_bars that never fires keeps every such bar on the full step. Trades, equity (bit for
    bit), positions (bars_held included) and chunked runs must agree."""
    rng = np.random.default_rng(seed)
    E = 1 + seed % 3
    days = rng.integers(20, 120, 6)
    n = int(days.sum())
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    open_ = np.r_[100.0, close[:-1]] + rng.normal(0, 0.3, n)
    day = np.repeat(np.arange(len(days)), days)
    intraday = bool(seed % 2)
    # Square-off bars late in the day (or none: past the day's end), so that positions live.
    so = [int(s) + int(d) - int(rng.integers(-2, 6)) for s, d in zip(np.r_[0, np.cumsum(days)[:-1]], days)]
    kw = dict(close=close, open=open_, day=day, intraday=intraday, square_off=[b for b in so if 0 <= b < n],
              entries=[np.flatnonzero(rng.random(n) < 0.02) for _ in range(E)],
              exits=[np.flatnonzero(rng.random(n) < 0.005)], targets=rng.random((1, E)) < 0.7,
              fill_at_close=bool(seed % 4 >= 2), commission=0.0005, slippage=0.001)

    def nodes(max_bars):
        return [node(side=int(rng_n.choice([LONG, SHORT])), qty=float(rng_n.choice([1.0, 3.0, 30.0])),
                     qty_mode=int(rng_n.integers(0, 2)), reverse=bool(rng_n.integers(0, 2)), max_bars=max_bars)
                for _ in range(E)]

    rng_n = np.random.default_rng(seed)
    fast = build(**kw, nodes=nodes(0))
    rng_n = np.random.default_rng(seed)
    slow = build(**kw, nodes=nodes(10**12))
    cuts = sorted({0, n, *rng.integers(0, n, 4).tolist()})
    for bounds in ([0, n], cuts):
        states = []
        for inp in (fast, slow):
            inp.equity[:] = np.nan
            state = kernels.new_state(E, 100 * CAPITAL, trade_capacity=1)
            parts = [kernels.run_chunk(inp, state, a, b) for a, b in zip(bounds[:-1], bounds[1:])]
            before_close = (state.positions.copy(), state.cash, state.open_count)
            parts.append(kernels.close_all(inp, state, n - 1))
            states.append((np.concatenate(parts), *before_close))
        (t1, p1, c1, o1), (t2, p2, c2, o2) = states
        assert t1.tobytes() == t2.tobytes()
        assert p1.tobytes() == p2.tobytes() and c1 == c2 and o1 == o2
        # Positions were open over long stretches (the fast path's case), on several days.
        held = (t1["exit_bar"] - t1["entry_bar"]).sum()
        assert held > n // 8 and len(np.unique(day[t1["entry_bar"]])) >= 2
        np.testing.assert_array_equal(fast.equity, slow.equity)
        assert not np.isnan(fast.equity).any()


# ---- square-off -------------------------------------------------------------------------------
#   day 0: bars 0-4, square-off bar 3;  day 1: bars 5-7, no square-off bar;  day 2: 8-11, bar 10
SO = dict(close=100.0 + np.arange(12), open=99.5 + np.arange(12),
          day=[0] * 5 + [1] * 3 + [2] * 4, square_off=[3, 10], intraday=True)


def test_square_off_at_open_and_at_close_of_a_day_without_one():
    inp = build(**SO, entries=[[0, 4, 5, 8, 11]])
    t, state = run(inp)
    got = [fields(r, *BARS, "exit_price", "exit_reason") for r in t]
    assert got == [
        (0, 1, 3, 3, 102.5, EXIT_SQUARE_OFF),   # the square-off bar's open
        (5, 6, 7, 7, 107.0, EXIT_SQUARE_OFF),   # day 1 has no square-off bar: its last close
        (8, 9, 10, 10, 109.5, EXIT_SQUARE_OFF),
    ]
    # bar 4 (after the square-off) and bar 11 (the day's last bar): no entries
    assert state.open_count == 0 and state.book[0]["entry_bar"] == -1
    assert inp.equity[11] == state.cash == pytest.approx(CAPITAL + 2.0 + 1.5 + 1.0)


def test_no_next_open_entry_when_the_next_open_is_the_square_off():
    t, state = run(build(**SO, entries=[[2, 3]]))
    assert len(t) == 0 and state.open_count == 0


def test_square_off_fill_at_close_mode_and_slippage():
    inp = build(**SO, entries=[[2, 3]], fill_at_close=True, slippage=0.01)
    t, _ = run(inp)
    assert len(t) == 1
    assert fields(t[0], *BARS) == (2, 2, 3, 3)
    assert t[0]["entry_price"] == pytest.approx(102 * 1.01)
    assert t[0]["exit_price"] == pytest.approx(102.5 * 0.99)


def test_intraday_entry_on_a_days_last_bar_is_dropped_overnight_one_is_kept():
    kw = dict(close=[10, 11, 12, 13, 14, 15, 16, 17], day=[0] * 4 + [1] * 4, entries=[[3]])
    t, _ = run(build(**kw, intraday=True))
    assert len(t) == 0
    inp = build(**kw, intraday=False)
    t, state = run(inp)
    assert len(t) == 0 and state.open_count == 1
    p = state.positions[0]
    assert fields(p, "entry_signal_bar", "entry_bar", "re_entry_num", "bars_held") == (3, 4, 0, 4)


def test_exit_pending_overnight_fills_next_day_open():
    t, _ = run(build(close=[10, 11, 12, 13, 14, 15], day=[0] * 3 + [1] * 3, entries=[[0]], exits=[[2]]))
    assert fields(t[0], *BARS) == (0, 1, 2, 3)


# ---- entry limits -----------------------------------------------------------------------------
LIMITS = dict(close=10.0 + np.arange(12), day=[0] * 8 + [1] * 4, entries=[[0, 2, 4, 6, 8, 10]],
              exits=[[1, 3, 5, 7, 9, 11]], fill_at_close=True)


@pytest.mark.parametrize("limits, entry_bars, re_entry", [
    (dict(), [0, 2, 4, 6, 8, 10], [0, 1, 2, 3, 0, 1]),
    (dict(max_per_day=2), [0, 2, 8, 10], [0, 1, 0, 1]),
    (dict(max_re_entries=1), [0, 2, 8, 10], [0, 1, 0, 1]),
    (dict(max_re_entries=0), [0, 8], [0, 0]),
    (dict(max_per_day=3, max_re_entries=1), [0, 2, 8, 10], [0, 1, 0, 1]),
])
def test_max_per_day_and_re_entries(limits, entry_bars, re_entry):
    t, _ = run(build(**LIMITS, nodes=[node(**limits)]))
    assert t["entry_bar"].tolist() == entry_bars
    assert t["re_entry_num"].tolist() == re_entry
    assert t["pos_seq"].tolist() == list(range(1, len(entry_bars) + 1))


def test_limits_count_the_day_the_order_fills_in():
    # next-open: the signal on day 0's last bar fills on day 1, as day 1's first entry
    inp = build(close=10.0 + np.arange(6), day=[0] * 3 + [1] * 3, entries=[[0, 2, 4]], exits=[[1, 3]],
                nodes=[node(max_per_day=1)])
    t, state = run(inp)
    assert t["entry_bar"].tolist() == [1, 3]
    assert t["re_entry_num"].tolist() == [0, 0]
    assert state.open_count == 0  # bar 4's signal: day 1 already had its entry


def test_exit_and_re_entry_of_one_node_at_the_same_open():
    t, state = run(build(close=10.0 + np.arange(6), entries=[[0, 2]], exits=[[2]]))
    assert [fields(r, *BARS, "pos_seq") for r in t] == [(0, 1, 2, 3, 1)]
    p = state.positions[0]
    assert fields(p, "entry_signal_bar", "entry_bar", "pos_seq", "re_entry_num") == (2, 3, 2, 1)


# ---- several nodes, reversal ------------------------------------------------------------------
def test_reversal_closes_the_opposite_side_at_the_same_open():
    inp = build(close=[10, 11, 12, 13, 14, 13, 12, 11], open=[10, 10.5, 11.5, 12.5, 13.5, 13.5, 12.5, 11.5],
                entries=[[1, 5], [3]], nodes=[node(LONG, reverse=True), node(SHORT, reverse=True)])
    t, state = run(inp)
    assert [fields(r, "node", "side", *BARS, "entry_price", "exit_price", "exit_reason", "exit_node", "pnl")
            for r in t] == [
        (0, LONG, 1, 2, 3, 4, 11.5, 13.5, EXIT_REVERSE, 1, 2.0),
        (1, SHORT, 3, 4, 5, 6, 13.5, 12.5, EXIT_REVERSE, 0, 1.0),
    ]
    p = state.positions[0]
    assert fields(p, "side", "entry_bar", "entry_price", "pos_seq") == (LONG, 6, 12.5, 2)
    tail = kernels.close_all(inp, state, 7)
    assert fields(tail[0], "node", "exit_price", "pnl", "exit_reason") == (0, 11.0, -1.5, EXIT_END_OF_DATA)
    assert state.cash == pytest.approx(CAPITAL + 1.5)


def test_reversal_at_close_and_no_reversal_without_the_flag():
    kw = dict(close=[10, 11, 12, 13, 14], entries=[[0], [2]], fill_at_close=True)
    t, _ = run(build(**kw, nodes=[node(LONG), node(SHORT, reverse=True)]))
    assert fields(t[0], "node", "exit_bar", "exit_price", "exit_reason", "exit_node") == (0, 2, 12.0, EXIT_REVERSE, 1)
    t, state = run(build(**kw, nodes=[node(LONG), node(SHORT)]))
    assert len(t) == 0 and state.open_count == 2


def test_reversing_entry_of_a_busy_node_is_ignored():
    # bar 1: node 1 still holds its short when both signal; node 0 reverses it, and node 1
    # (flat only after the entries began) does not enter again in the same step
    kw = dict(close=[10, 11, 12, 13, 14], fill_at_close=True,
              nodes=[node(LONG, reverse=True), node(SHORT, reverse=True)])
    t, state = run(build(**kw, entries=[[1], [0, 1]]))
    assert [fields(r, "node", "exit_bar", "exit_reason", "exit_node") for r in t] == [(1, 1, EXIT_REVERSE, 0)]
    assert state.positions[0]["qty"] == 1 and state.positions[1]["qty"] == 0


def test_several_nodes_hold_positions_at_once():
    inp = build(close=[10, 11, 12, 11, 13], entries=[[0], [1], [2]], exits=[[3]], targets=[[0, 1, 0]],
                nodes=[node(LONG, 1), node(SHORT, 2), node(LONG, 3)], fill_at_close=True)
    t, state = run(inp)
    np.testing.assert_allclose(inp.equity, [1000, 1001, 1000, 998, 1006])
    assert [fields(r, "node", "exit_bar", "pnl", "exit_node") for r in t] == [(1, 3, 0.0, 0)]
    assert state.open_count == 2
    tail = kernels.close_all(inp, state, 4)
    assert tail["node"].tolist() == [0, 2] and tail["pnl"].tolist() == [3.0, 3.0]


def test_exit_node_only_closes_its_targets():
    inp = build(close=[10, 11, 12, 13], entries=[[0], [0]], exits=[[], [1]], targets=[[1, 0], [0, 1]],
                fill_at_close=True)
    t, state = run(inp)
    assert [fields(r, "node", "exit_node") for r in t] == [(1, 1)]


# ---- sizing -----------------------------------------------------------------------------------
def test_equity_pct_sizing_includes_commission():
    t, state = run(build(close=[10, 10, 10], entries=[[0]], fill_at_close=True, commission=0.001,
                         nodes=[node(qty_mode=QTY_EQUITY_PCT, qty=50)]))
    p = state.positions[0]
    assert p["qty"] == 49  # floor(500 / (10 * 1.001)) = floor(49.95)
    assert p["entry_commission"] == pytest.approx(0.49)


def test_equity_pct_counts_other_positions():
    nodes = [node(qty=10), node(qty_mode=QTY_EQUITY_PCT, qty=50)]
    _, state = run(build(close=[10, 12, 12], entries=[[0], [1]], fill_at_close=True, nodes=nodes))
    assert state.positions[1]["qty"] == 38  # free = 1000 + 10*(12-10) - 10*10 = 920; 460 / 12
    # next-open: others are marked at the previous close; the entry sizes at its fill price
    _, state = run(build(close=[10, 12, 13], open=[10, 11, 14], entries=[[0], [1]], nodes=nodes))
    assert state.positions[1]["qty"] == 32  # free = 1000 + 10*(12-11) - 110 = 900; 450 / 14


def test_zero_quantity_entry_is_skipped_and_not_counted():
    inp = build(close=[10, 10, 5, 5], entries=[[0, 2]], fill_at_close=True,
                nodes=[node(qty_mode=QTY_EQUITY_PCT, qty=50, max_per_day=1)])
    t, state = run(inp, capital=15.0)
    p = state.positions[0]
    assert fields(p, "qty", "entry_bar", "pos_seq", "re_entry_num") == (1.0, 2, 1, 0)
    t, state = run(build(close=[10, 10], entries=[[0]], nodes=[node(qty=0)], fill_at_close=True))
    assert state.open_count == 0 and state.book[0]["pos_count"] == 0


# ---- chunking, buffers, validation -------------------------------------------------------------
def run_chunked(inp, bounds, capital=CAPITAL, **kw):
    state = kernels.new_state(inp.side.shape[0], capital, **kw)
    parts = [kernels.run_chunk(inp, state, a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    parts.append(kernels.close_all(inp, state, inp.n_bars - 1))
    return np.concatenate(parts), state


def day_bounds(day) -> list[int]:
    return [0] + (np.flatnonzero(np.diff(day)) + 1).tolist() + [len(day)]


def test_chunked_by_day_equals_one_call():
    inp = build(**SO, entries=[[0, 5, 8]], exits=[[1]], nodes=[node(sl=(STOP_PCT, 1.0))])
    whole, s1 = run_chunked(inp, [0, inp.n_bars])
    eq = inp.equity.copy()
    inp.equity[:] = np.nan
    parts, s2 = run_chunked(inp, day_bounds(inp.day))
    assert whole.tobytes() == parts.tobytes() and len(whole) == 3
    np.testing.assert_array_equal(eq, inp.equity)


def test_full_trade_buffer_grows_and_resumes():
    n = 40
    inp = build(close=10.0 + np.arange(n), entries=[list(range(0, n, 2))], exits=[list(range(1, n, 2))])
    small, _ = run(inp, trade_capacity=1)
    big, _ = run(inp)
    assert len(big) == 19 and small.tobytes() == big.tobytes()


def test_records_are_copies_with_the_trade_dtype():
    t, state = run(build(**PX, entries=[[1]], exits=[[3]]))
    assert t.dtype == trade_dt and not np.shares_memory(t, state.buffer)


def test_inputs_are_checked_and_coerced():
    inp = build(**PX, entries=[[1]])
    with pytest.raises(ValueError, match="entry_signal"):
        dataclasses.replace(inp, entry_signal=np.zeros((4, 1), np.bool_))
    with pytest.raises(ValueError, match="equity"):
        dataclasses.replace(inp, equity=np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="side"):
        dataclasses.replace(inp, side=np.array([0]))
    ro = np.array([10, 11, 12, 13, 14.0])
    ro.flags.writeable = False
    inp = build(close=ro, entries=[[1]], nodes=[node(SHORT, qty=2.5, max_bars=3)])
    assert inp.close.flags.writeable and inp.close.dtype == np.float64
    assert inp.nodes[0]["side"] == SHORT and inp.nodes[0]["qty_value"] == 2.5 and inp.nodes[0]["max_bars"] == 3
    with pytest.raises(ValueError, match="outside"):
        kernels.run_chunk(inp, kernels.new_state(1, CAPITAL), 0, 6)
    with pytest.raises(ValueError, match="entry nodes"):
        kernels.run_chunk(inp, kernels.new_state(2, CAPITAL), 0, 5)


def test_no_entry_nodes():
    inp = build(**PX, entries=[], nodes=[])
    t, state = run(inp)
    assert len(t) == 0 and (inp.equity == CAPITAL).all()


def test_warmup_runs():
    kernels.warmup()


# ---- properties -------------------------------------------------------------------------------
@st.composite
def scenarios(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    days = [draw(st.integers(1, 16)) for _ in range(draw(st.integers(1, 5)))]
    E, X = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    intraday = draw(st.booleans())
    n = sum(days)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    open = np.r_[100.0, close[:-1]] + rng.normal(0, 0.5, n)
    high = np.maximum(open, close) + np.abs(rng.normal(0, 0.5, n))
    low = np.minimum(open, close) - np.abs(rng.normal(0, 0.5, n))
    day = np.repeat(np.arange(len(days)), days)
    so = []
    if intraday:
        start = 0
        for length in days:
            k = int(rng.integers(0, length + 2))  # past the end: that day has no square-off bar
            if k < length:
                so.append(start + k)
            start += length
    density = draw(st.sampled_from([0.1, 0.3, 0.7]))

    def stop():
        mode = int(rng.integers(0, 4))
        return mode, float(rng.uniform(0.3, 3.0))

    nodes = [node(side=int(rng.choice([LONG, SHORT])), qty_mode=int(rng.integers(0, 2)),
                  qty=float(rng.choice([1.0, 3.0, 30.0, 60.0])), max_per_day=int(rng.integers(0, 3)),
                  max_re_entries=int(rng.integers(-1, 2)), reverse=bool(rng.integers(0, 2)),
                  max_bars=int(rng.integers(0, 4)), sl=stop(), tp=stop(), ts=stop()) for _ in range(E)]
    atr = np.abs(rng.normal(1.0, 0.5, (n, E)))
    atr[rng.random((n, E)) < 0.1] = np.nan
    return dict(
        inputs=dict(open=open, high=high, low=low, close=close, day=day, square_off=so, intraday=intraday,
                    entries=[np.flatnonzero(rng.random(n) < density) for _ in range(E)],
                    exits=[np.flatnonzero(rng.random(n) < density) for _ in range(X)],
                    targets=rng.random((X, E)) < 0.7, nodes=nodes, atr=atr,
                    fill_at_close=draw(st.booleans()),
                    slippage=draw(st.sampled_from([0.0, 0.001])),
                    commission=draw(st.sampled_from([0.0, 0.0005]))),
        cuts=sorted(set(rng.integers(0, n + 1, int(rng.integers(0, 5))).tolist())),
    )


def expected_equity(t, close, capital):
    eq = np.full(len(close), capital)
    for i in range(len(close)):
        done = t["exit_bar"] <= i
        live = ~done & (t["entry_bar"] <= i)
        eq[i] += t["pnl"][done].sum() + (t["side"][live] * t["qty"][live] * (close[i] - t["entry_price"][live])
                                          - t["entry_commission"][live]).sum()
    return eq


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_properties(sc):
    kw = sc["inputs"]
    inp = build(**kw)
    n, day = inp.n_bars, inp.day
    t, state = run_chunked(inp, [0, n])
    equity = inp.equity.copy()

    # money: final equity = initial + sum of pnl; every bar's equity from the trades alone
    assert state.cash == pytest.approx(CAPITAL + t["pnl"].sum(), rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(equity, expected_equity(t, inp.close, CAPITAL), rtol=1e-12, atol=1e-9)
    assert state.open_count == 0 and (state.positions["qty"] == 0).all()

    # fills and bars
    if kw["slippage"] == 0:
        for bar, price in ((t["entry_bar"], t["entry_price"]), (t["exit_bar"], t["exit_price"])):
            assert (inp.low[bar] <= price).all() and (price <= inp.high[bar]).all()
    if kw["fill_at_close"]:
        assert (t["entry_bar"] == t["entry_signal_bar"]).all()
    else:
        assert (t["entry_bar"] == t["entry_signal_bar"] + 1).all()
    assert (t["exit_bar"] >= t["entry_bar"]).all() and (t["exit_signal_bar"] <= t["exit_bar"]).all()
    assert (t["qty"] > 0).all()
    for e in range(inp.side.shape[0]):
        mine = t[t["node"] == e]
        mine = mine[np.argsort(mine["pos_seq"])]
        assert mine["pos_seq"].tolist() == list(range(1, len(mine) + 1))
        assert (mine["entry_bar"][1:] >= mine["exit_bar"][:-1]).all()  # one position at a time
        if inp.max_per_day[e] > 0:
            assert np.bincount(day[mine["entry_bar"]]).max(initial=0) <= inp.max_per_day[e]
    if kw["intraday"]:
        assert (day[t["entry_bar"]] == day[t["exit_bar"]]).all()
        for s in np.flatnonzero(inp.square_off):
            same_day = day[t["entry_bar"]] == day[s]
            assert (t["entry_bar"][same_day] < s).all() and (t["exit_bar"][same_day] <= s).all()

    # deterministic, and chunked (at day boundaries and anywhere, tiny buffer) == whole
    for bounds in ([0, n], day_bounds(day), sorted({0, n, *sc["cuts"]})):
        inp.equity[:] = np.nan
        again, s2 = run_chunked(inp, bounds, trade_capacity=1)
        assert again.tobytes() == t.tobytes()
        np.testing.assert_array_equal(inp.equity, equity)
        assert s2.cash == state.cash and s2.positions.tobytes() == state.positions.tobytes()


def test_no_new_entries_once_equity_is_gone():
    # Capital 100, fixed 10 units; the first long loses 10 * (20 - 8) = 120 > capital.
    n = 8
    open_ = np.array([20.0, 20.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0])
    close = open_.copy()
    entry = np.zeros((n, 1), np.bool_)
    entry[0, 0] = True          # opens at bar 1's open (20)
    entry[4, 0] = True          # would re-open at bar 5 — but equity is negative by then
    exit_ = np.zeros((n, 1), np.bool_)
    exit_[2, 0] = True          # closes at bar 3's open (8)
    inp = kernels.KernelInputs(
        open=open_, high=open_, low=open_, close=close, day=np.zeros(n, np.int64),
        square_off=np.zeros(n, np.bool_), entry_signal=entry, exit_signal=exit_,
        exit_targets=np.ones((1, 1), np.bool_), side=np.array([1]), qty_mode=np.array([0]),
        qty_value=np.array([10.0]), max_per_day=np.array([0]), max_re_entries=np.array([-1]),
        reverse=np.array([False]), max_bars=np.array([0]), sl_mode=np.array([0]), sl_value=np.array([0.0]),
        tp_mode=np.array([0]), tp_value=np.array([0.0]), ts_mode=np.array([0]), ts_value=np.array([0.0]),
        stop_atr=np.full((n, 1), np.nan), fill_at_close=False, commission=0.0, slippage=0.0, intraday=False,
        equity=np.full(n, np.nan))
    state = kernels.new_state(1, 100.0)
    trades = kernels.run_chunk(inp, state, 0, n)
    assert len(trades) == 1 and trades[0]["pnl"] == -120.0
    assert state.cash == -20.0 and state.open_count == 0
