"""Record layouts and codes shared by the kernel and the layers around it.

Kernels speak only in these integer codes and numpy record arrays; the results layer turns
them into names (`EXIT_REASON_NAMES`). Keep codes stable: they are stored nowhere, but tests
and the results layer index by them.
"""

from __future__ import annotations

import numpy as np

# --- sides -----------------------------------------------------------------------------
LONG = 1
SHORT = -1

# --- how an entry sizes its position (Quantity in the proto; lots are turned into units) -
QTY_UNITS = 0       # qty_value units
QTY_EQUITY_PCT = 1  # qty_value percent of free equity, whole units, commission included

# --- stop-rule distance kinds (StopRule in the proto) ------------------------------------
STOP_NONE = 0
STOP_PCT = 1     # value percent of the reference price
STOP_POINTS = 2  # value price points
STOP_ATR = 3     # value multiples of the node's ATR series

# --- why a position closed ---------------------------------------------------------------
EXIT_SIGNAL = 0       # an exit node fired (exit_node = exit node index)
EXIT_REVERSE = 1      # an opposite reversing entry fired (exit_node = that entry node index)
EXIT_STOP_LOSS = 2
EXIT_TAKE_PROFIT = 3
EXIT_TRAILING = 4
EXIT_MAX_BARS = 5
EXIT_SQUARE_OFF = 6
EXIT_END_OF_DATA = 7
# Option positions (the legs kernel, services/engine/options/legs_kernel.py):
EXIT_EXPIRY = 8            # held to expiry: settled at intrinsic value against the underlying's close
EXIT_POSITION_STOP = 9     # combined premium moved against the position by PositionRisk.stop_loss_pct
EXIT_POSITION_TARGET = 10  # ... in its favour by take_profit_pct
EXIT_MTM_STOP = 11         # position mark-to-market loss reached PositionRisk.mtm_stop_loss
EXIT_MTM_TARGET = 12       # ... profit reached mtm_take_profit
EXIT_DAILY_MAX_LOSS = 13   # the day's P&L reached DailyLimits.max_loss
EXIT_DAILY_MAX_PROFIT = 14  # ... max_profit

EXIT_REASON_NAMES = {
    EXIT_SIGNAL: "signal",
    EXIT_REVERSE: "signal",
    EXIT_STOP_LOSS: "stop_loss",
    EXIT_TAKE_PROFIT: "take_profit",
    EXIT_TRAILING: "trailing_stop",
    EXIT_MAX_BARS: "max_bars",
    EXIT_SQUARE_OFF: "square_off",
    EXIT_END_OF_DATA: "end_of_data",
    EXIT_EXPIRY: "expiry",
    EXIT_POSITION_STOP: "position_stop_loss",
    EXIT_POSITION_TARGET: "position_take_profit",
    EXIT_MTM_STOP: "mtm_stop_loss",
    EXIT_MTM_TARGET: "mtm_take_profit",
    EXIT_DAILY_MAX_LOSS: "daily_max_loss",
    EXIT_DAILY_MAX_PROFIT: "daily_max_profit",
}

# One closed trade. Bars are absolute indexes into the run's arrays.
trade_dt = np.dtype([
    ("node", np.int64),              # entry node index
    ("pos_seq", np.int64),           # 1-based position number of that node over the run
    ("re_entry_num", np.int64),      # 0: node's first entry of the day; 1: first re-entry ...
    ("side", np.int64),              # LONG or SHORT
    ("qty", np.float64),
    ("entry_signal_bar", np.int64),  # bar whose close produced the entry signal
    ("entry_bar", np.int64),         # bar in which the entry filled
    ("entry_price", np.float64),     # fill price, slippage included
    ("entry_commission", np.float64),
    ("exit_signal_bar", np.int64),   # bar whose close produced the exit signal (stops: the fill bar)
    ("exit_bar", np.int64),
    ("exit_price", np.float64),
    ("exit_commission", np.float64),
    ("exit_reason", np.int64),       # EXIT_* code
    ("exit_node", np.int64),         # see EXIT_SIGNAL / EXIT_REVERSE; -1 otherwise
    ("pnl", np.float64),             # side*qty*(exit-entry) - both commissions
    ("sl_level", np.float64),        # stop-loss level at entry (NaN if none)
    ("tp_level", np.float64),        # take-profit level at entry (NaN if none)
    ("trail_level", np.float64),     # last trailing-stop level (NaN if none)
], align=False)

# An open position of one entry node (state carried between chunks; qty == 0 means flat).
position_dt = np.dtype([
    ("side", np.int64),
    ("qty", np.float64),
    ("pos_seq", np.int64),
    ("re_entry_num", np.int64),
    ("entry_signal_bar", np.int64),
    ("entry_bar", np.int64),
    ("entry_price", np.float64),
    ("entry_commission", np.float64),
    ("sl_level", np.float64),
    ("tp_level", np.float64),
    ("trail_extreme", np.float64),   # best price since entry (high for longs, low for shorts)
    ("trail_level", np.float64),
    ("bars_held", np.int64),
])
