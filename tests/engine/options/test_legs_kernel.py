"""The legs kernel on tiny hand-written chains: every expected number is computed by hand.

One expiry, strikes 100 and 110, a CE and a PE on each; premiums are given bar by bar, so leg
stops, position (MTM) stops, the daily limit, expiry settlement and re-entries can be checked
against arithmetic, not against the kernel itself. Lot size 50, no commission or slippage
unless a test sets them; fills at the next open.
"""

from __future__ import annotations

import numpy as np
import pytest

from services.engine.core import records
from services.engine.core.kernels import book_dt
from services.engine.options import layouts
from services.engine.options.layouts import leg_dt, legnode_dt, legpos_dt, legstate_dt, legtrade_dt, statecond_dt
from services.engine.options.fills import close_all_legs_nb
from services.engine.options.layouts import I_ERR_LEG, NO_DAY, NO_ORDER
from services.engine.options.legs_kernel import run_legs_nb
from services.engine.options.pricing import CALL, PUT
from services.engine.options.quotes import BAR_CACHE

LOT = 50.0
STRIKES = np.array([100.0, 110.0])


class Chain:
    """Premiums per contract (strike, 'CE'/'PE') per bar: (open, high, low, close) or None."""

    def __init__(self, n: int):
        self.n = n
        self.quotes: dict[tuple[float, str], list] = {}

    def set(self, strike: float, ot: str, rows: list) -> None:
        assert len(rows) == self.n
        self.quotes[(strike, ot)] = rows

    def arrays(self):
        contract = np.full((1, len(STRIKES), 2), -1, np.int64)
        ptr, bars, o, h, lo, c = [0], [], [], [], [], []
        cid = 0
        for s_i, strike in enumerate(STRIKES):
            for t_i, ot in enumerate(("CE", "PE")):
                rows = self.quotes.get((strike, ot))
                if rows is None:
                    continue
                contract[0, s_i, t_i] = cid
                for bar, q in enumerate(rows):
                    if q is None:
                        continue
                    q = (q, q, q, q) if np.isscalar(q) else q
                    bars.append(bar)
                    o.append(q[0]), h.append(q[1]), lo.append(q[2]), c.append(q[3])
                ptr.append(len(bars))
                cid += 1
        f = lambda x: np.array(x, np.float64)  # noqa: E731
        return (STRIKES, contract, np.array(ptr, np.int64), np.array(bars, np.int64), f(o), f(h), f(lo), f(c))


def leg(cp, side, *, lots=1, sl=(records.STOP_NONE, 0.0), tp=(records.STOP_NONE, 0.0), node=0, offset=0.0):
    return (node, cp, side, lots, layouts.EXP_WEEKLY, 0, layouts.SEL_ATM_OFFSET, offset, 0, sl[0], sl[1], tp[0], tp[1])


def run(chain: Chain, spot: list[float], legs_: list, *, entry_bars=(1,), exit_bars=(), days=None, expiry_day=99,
        max_per_day=0, max_re_entries=-1, risk=(0.0, 0.0, 0.0, 0.0), daily=(0.0, 0.0), commission=0.0,
        slippage=0.0, intraday=False, capital=100_000.0, entry_conds=(), exit_conds=()):
    n = chain.n
    close = np.array(spot, np.float64)
    day = np.array(days if days is not None else [0] * n, np.int64)
    _, dayidx = np.unique(day, return_inverse=True)
    D = int(dayidx.max()) + 1
    entry = np.zeros((n, 1), np.bool_)
    entry[list(entry_bars), 0] = True
    exits = np.zeros((n, 1), np.bool_)
    if exit_bars:
        exits[list(exit_bars), 0] = True
    legs = np.array(legs_, leg_dt)
    L = len(legs)
    nodes = np.array([(0, L, max_per_day, max_re_entries, 0, *risk)], legnode_dt)
    book = np.zeros(1, book_dt)
    for name in ("entry_bar", "exit_reason", "exit_node", "exit_bar"):
        book[name] = NO_ORDER
    lst = np.zeros(L, legstate_dt)
    lst["contract"] = -1
    pos = np.zeros(1, legpos_dt)
    pos["exit_value"] = np.nan
    conds = np.array([*entry_conds, *exit_conds], statecond_dt)
    cond_ptr = np.array([0, len(entry_conds), len(entry_conds) + len(exit_conds)], np.int64)
    ints = np.array([NO_DAY, 0, 0, 0, 0, 0, 0, 0], np.int64)
    floats = np.array([capital, capital, capital, np.nan, -1.0])
    trades = np.empty(64, legtrade_dt)
    equity = np.full(n, np.nan)
    exp_day = np.array([expiry_day], np.int64)
    out = run_legs_nb(
        close, close, close, close, day, dayidx.astype(np.int64), np.zeros(n, np.bool_), day.copy(),
        np.full(n, 100.0), np.zeros(n), entry, exits, np.ones((1, 1), np.bool_), conds, cond_ptr, nodes, legs,
        np.zeros((D, L), np.int64), exp_day.copy(), exp_day, np.full(1, LOT),
        np.array([0, int(intraday), layouts.MODE_CHAIN], np.int64),
        np.array([commission, slippage, daily[0], daily[1], 0.065, 1.0, 10.0]), *chain.arrays(),
        equity, pos, lst, book, ints, floats, np.full(BAR_CACHE, -1.0), trades, 0, 0, n)
    k, i, err = out
    return trades[:k].copy(), equity, err, dict(ints=ints, floats=floats, pos=pos, lst=lst, book=book, legs=legs,
                                                nodes=nodes, close=close, day=day)


def test_a_sold_legs_stop_closes_that_leg_alone_at_its_level():
    n = 7
    ch = Chain(n)
    # CE 100 sold at bar 2's open (10); 20 % stop = 12; bar 4 opens at 11, trades up to 12.5.
    ch.set(100.0, "CE", [10, 10, (10, 10.5, 9.5, 10), 11, (11, 12.5, 10.8, 12.2), 9, 8])
    ch.set(100.0, "PE", [9, 9, (9, 9, 9, 9), 8, 7, 6, 5])
    trades, equity, err, st = run(ch, [101] * n, [leg(CALL, records.SHORT, sl=(records.STOP_PCT, 20.0)),
                                                  leg(PUT, records.SHORT)])
    assert err == layouts.ERR_NONE
    assert len(trades) == 1
    t = trades[0]
    assert (t["leg"], t["exit_bar"], t["exit_reason"]) == (0, 4, records.EXIT_STOP_LOSS)
    assert t["entry_price"] == 10.0 and t["exit_price"] == 12.0
    assert t["pnl"] == pytest.approx(-(12.0 - 10.0) * LOT)          # -100
    assert t["pos_last"] == 0
    # The PE is still open, marked at each close: equity at bar 6 = cash - 100 + (9 - 5) * 50.
    assert st["lst"][1]["open"] == 1
    assert equity[6] == pytest.approx(100_000 - 100 + 4 * LOT)
    # End of data closes the PE at its last mark: the position's pnl is both legs'.
    out = np.empty(4, legtrade_dt)
    k = close_all_legs_nb(st["close"], n - 1, records.EXIT_END_OF_DATA, st["nodes"], st["legs"], st["pos"],
                          st["lst"], st["book"], out, st["ints"], st["floats"], st["day"], np.full(n, 100.0),
                          np.zeros(n), np.array([99]), np.array([99]), 0.065, False, np.full(BAR_CACHE, -1.0), 0.0, 0.0)
    assert k == 1 and out[0]["pos_last"] == 1
    assert out[0]["pos_pnl"] == pytest.approx(-100 + 200)


def test_a_gap_through_the_stop_fills_at_the_open():
    n = 5
    ch = Chain(n)
    ch.set(100.0, "CE", [10, 10, 10, (15, 16, 14, 15), 15])
    trades, _, err, _ = run(ch, [101] * n, [leg(CALL, records.SHORT, sl=(records.STOP_POINTS, 2.0))])
    assert err == layouts.ERR_NONE
    assert trades[0]["exit_price"] == 15.0 and trades[0]["exit_bar"] == 3  # level 12, opened at 15


def test_a_bought_legs_target_and_slippage_and_commission():
    n = 5
    ch = Chain(n)
    ch.set(100.0, "CE", [10, 10, 10, (11, 16, 11, 15), 15])
    # Buy at 10 * 1.01 = 10.1; target 50 % = 15.15; filled 15.15, sold with slippage: 15.15 * 0.99.
    trades, _, _, _ = run(ch, [101] * n, [leg(CALL, records.LONG, tp=(records.STOP_PCT, 50.0))],
                          slippage=0.01, commission=0.001)
    t = trades[0]
    assert t["exit_reason"] == records.EXIT_TAKE_PROFIT
    assert t["entry_price"] == pytest.approx(10.1)
    assert t["exit_price"] == pytest.approx(15.15 * 0.99)
    assert t["entry_commission"] == pytest.approx(0.001 * 50 * 10.1)
    assert t["pnl"] == pytest.approx(50 * (15.15 * 0.99 - 10.1) - 0.001 * 50 * (10.1 + 15.15 * 0.99))


def test_position_mtm_stop_closes_every_leg_at_that_close():
    n = 6
    ch = Chain(n)
    # Short straddle sold at 10 + 9 = 19 (bar 2). At bar 3's close: 13 + 8 = 21 -> MTM -2 * 50 = -100;
    # at bar 4's close: 14 + 8 = 22 -> -150, which reaches mtm_stop_loss 150.
    ch.set(100.0, "CE", [10, 10, (10, 10, 10, 12), 13, 14, 20])
    ch.set(100.0, "PE", [9, 9, 9, 8, 8, 8])
    trades, _, err, _ = run(ch, [101] * n, [leg(CALL, records.SHORT), leg(PUT, records.SHORT)],
                            risk=(0.0, 0.0, 150.0, 0.0))
    assert err == layouts.ERR_NONE
    assert [int(t["exit_reason"]) for t in trades] == [records.EXIT_MTM_STOP] * 2
    assert [int(t["exit_bar"]) for t in trades] == [4, 4]
    assert [float(t["exit_price"]) for t in trades] == [14.0, 8.0]
    assert trades[-1]["pos_last"] == 1 and trades[-1]["pos_pnl"] == pytest.approx(-150.0)


def test_position_premium_stop_in_percent_of_entry_premium():
    n = 6
    ch = Chain(n)
    # Entry premium 10 + 10 = 20 (x50 = 1000); a 10 % stop is a 100 loss: at bar 4 (12 + 9.9 = 21.9: -95)
    # not yet, at bar 5 (12 + 10 = 22: -100) yes.
    ch.set(100.0, "CE", [10, 10, 10, 11, 12, 12])
    ch.set(100.0, "PE", [10, 10, 10, 10, 9.9, 10])
    trades, _, _, _ = run(ch, [101] * n, [leg(CALL, records.SHORT), leg(PUT, records.SHORT)],
                          risk=(10.0, 0.0, 0.0, 0.0))
    assert [int(t["exit_bar"]) for t in trades] == [5, 5]
    assert {int(t["exit_reason"]) for t in trades} == {records.EXIT_POSITION_STOP}


def test_daily_max_loss_squares_off_and_stops_entries_for_the_day_only():
    n = 8
    ch = Chain(n)
    # Day 0 = bars 0-3, day 1 = bars 4-7. Long CE bought at 10 (bar 2); bar 2 closes at 7: day P&L -150
    # reaches max_loss 150: closed at that close; the entry signal at bar 3 is ignored; day 1 enters again.
    ch.set(100.0, "CE", [10, 10, (10, 10, 7, 7), 7, 7, 7, 7, 7])
    trades, equity, err, st = run(ch, [101] * n, [leg(CALL, records.LONG)], entry_bars=(1, 3, 5),
                                  days=[0, 0, 0, 0, 1, 1, 1, 1], daily=(150.0, 0.0))
    assert err == layouts.ERR_NONE
    assert int(trades[0]["exit_reason"]) == records.EXIT_DAILY_MAX_LOSS and int(trades[0]["exit_bar"]) == 2
    assert trades[0]["pnl"] == pytest.approx(-150.0)
    assert st["pos"][0]["legs_open"] == 1 and st["pos"][0]["entry_bar"] == 6  # day 1's entry, not day 0's second
    assert st["pos"][0]["pos_seq"] == 2


def test_held_to_expiry_settles_at_intrinsic_value_against_the_close():
    n = 6
    ch = Chain(n)
    ch.set(100.0, "CE", [5, 5, 5, 5, 5, 5])
    ch.set(100.0, "PE", [4, 4, 4, 4, 4, 4])
    # Expiry on day 0 (the only day): at its last bar the underlying closes at 104: CE worth 4, PE 0.
    trades, equity, _, _ = run(ch, [101, 101, 101, 102, 103, 104], [leg(CALL, records.SHORT), leg(PUT, records.SHORT)],
                               expiry_day=0, commission=0.01)
    assert [int(t["exit_reason"]) for t in trades] == [records.EXIT_EXPIRY] * 2
    ce, pe = trades
    assert ce["exit_price"] == 4.0 and pe["exit_price"] == 0.0  # no slippage at settlement
    assert ce["pnl"] == pytest.approx(50 * (5 - 4) - 0.01 * 50 * (5 + 4))
    assert pe["pnl"] == pytest.approx(50 * 4 - 0.01 * 50 * 4)
    assert equity[-1] == pytest.approx(100_000 + ce["pnl"] + pe["pnl"])


def test_re_entry_after_a_stop_counts_and_respects_max_re_entries():
    n = 9
    ch = Chain(n)
    ch.set(100.0, "CE", [10, 10, 10, (10, 13, 10, 13), 10, 10, (10, 13, 10, 13), 10, 10])
    # Signals at 1, 4 and 7; each position stops out (20 % -> 12) the bar after it fills: 3 and 6.
    # max_re_entries 1: the first entry and one re-entry; the third signal is refused.
    trades, _, _, st = run(ch, [101] * n, [leg(CALL, records.SHORT, sl=(records.STOP_PCT, 20.0))],
                           entry_bars=(1, 4, 7), max_re_entries=1)
    assert [int(t["re_entry_num"]) for t in trades] == [0, 1]
    assert [int(t["entry_bar"]) for t in trades] == [2, 5]
    assert st["pos"][0]["legs_open"] == 0


def test_atm_offset_counts_listed_strikes_toward_out_of_the_money():
    n = 4
    ch = Chain(n)
    for ot in ("CE", "PE"):
        ch.set(100.0, ot, [5] * n)
        ch.set(110.0, ot, [2] * n)
    # Spot 101: ATM 100; CE +1 is 110 (above), PE -1 is in the money: also 110 (above).
    trades, _, _, st = run(ch, [101] * n, [leg(CALL, records.SHORT, offset=1.0), leg(PUT, records.SHORT, offset=-1.0)])
    assert list(st["lst"]["strike"]) == [110.0, 110.0]
    assert list(st["lst"]["sel_atm"]) == [100.0, 100.0]
    assert list(st["lst"]["sel_candidates"]) == [2, 2]


def test_a_fill_without_a_chain_bar_fails_naming_the_leg():
    n = 5
    ch = Chain(n)
    ch.set(100.0, "CE", [10, 10, None, 10, 10])  # no bar at 2, the fill bar
    ch.set(100.0, "PE", [9] * n)
    _, _, err, st = run(ch, [101] * n, [leg(CALL, records.SHORT), leg(PUT, records.SHORT)])
    assert err == layouts.ERR_NO_BAR
    assert st["ints"][I_ERR_LEG] == 0
    assert st["pos"][0]["legs_open"] == 0  # nothing opened


def test_an_exit_on_position_mtm_fires_only_once_the_mtm_is_there():
    n = 7
    ch = Chain(n)
    # Short CE sold at 10 (bar 2). The exit node's vectorized part is true on every bar from 2;
    # its state part is MTM <= -100, i.e. premium >= 12: first at bar 4's close; filled at bar 5's open.
    ch.set(100.0, "CE", [10, 10, 10, 11, 12, (13, 13, 13, 13), 13])
    trades, _, err, _ = run(ch, [101] * n, [leg(CALL, records.SHORT)], exit_bars=(2, 3, 4, 5, 6),
                            exit_conds=[(layouts.ST_MTM, 0, -1, layouts.OP_LE, -100.0)])
    assert err == layouts.ERR_NONE
    (t,) = trades
    assert (int(t["exit_reason"]), int(t["exit_signal_bar"]), int(t["exit_bar"])) == (records.EXIT_SIGNAL, 4, 5)
    assert t["exit_price"] == 13.0 and t["signal_value"] == pytest.approx(-100.0)


def test_an_entry_on_another_legs_premium_waits_for_it():
    n = 6
    ch = Chain(n)
    ch.set(100.0, "CE", [10, 10, 10, 8, 6, 6])
    # One node, so its own leg: an entry signal on every bar, allowed only while... its own position
    # is open -- which never happens for a flat node: the state comparison is false, no entry at all.
    trades, _, _, st = run(ch, [101] * n, [leg(CALL, records.SHORT)], entry_bars=(1, 2, 3),
                           entry_conds=[(layouts.ST_LEG_PREMIUM, 0, 0, layouts.OP_LT, 100.0)])
    assert len(trades) == 0 and st["pos"][0]["pos_seq"] == 0


def test_a_premium_no_strike_meets_opens_nothing_and_is_no_error():
    n = 5
    ch = Chain(n)
    for ot in ("CE", "PE"):
        ch.set(100.0, ot, [5] * n)
        ch.set(110.0, ot, [2] * n)
    at_least_9 = (0, CALL, records.SHORT, 1, layouts.EXP_WEEKLY, 0, layouts.SEL_PREMIUM, 9.0, layouts.Q_AT_LEAST,
                  records.STOP_NONE, 0.0, records.STOP_NONE, 0.0)
    trades, equity, err, st = run(ch, [101] * n, [at_least_9], entry_bars=(1, 2))
    assert err == layouts.ERR_NONE and len(trades) == 0 and st["pos"][0]["pos_seq"] == 0
    assert equity[-1] == 100_000
    at_most_3 = at_least_9[:7] + (3.0, layouts.Q_AT_MOST) + at_least_9[9:]
    _, _, err, st = run(ch, [101] * n, [at_most_3], entry_bars=(1,))
    assert err == layouts.ERR_NONE and st["lst"][0]["strike"] == 110.0  # the 2.00 premium
