"""Record layouts and codes of the legs kernel (option positions), defined once.

The spec layer fills `leg_dt` / `legnode_dt` from a StrategyPlan, the kernel mutates the state
layouts and writes `legtrade_dt` records, the results layer names them. Exit reasons are the
core's (`services.engine.core.records.EXIT_*`), shared with the underlying's kernel.
"""

from __future__ import annotations

import numpy as np

# --- strike selectors (Leg.strike in the proto) -------------------------------------------
SEL_ATM_OFFSET = 0      # value: strikes from ATM, + out of the money
SEL_PREMIUM = 1         # value: target premium; qualifier: Q_*
SEL_DELTA = 2           # value: target |delta| in (0, 1)
SEL_SPOT_PCT = 3        # value: percent from spot, + out of the money
SEL_STRADDLE = 4        # value: multiple of the ATM straddle premium, + out of the money

SELECTOR_NAMES = ("atm_offset", "closest_premium", "delta", "spot_pct", "straddle_width")

Q_NEAREST = 0
Q_AT_LEAST = 1
Q_AT_MOST = 2
QUALIFIER_NAMES = ("nearest", "at_least", "at_most")

# --- expiry kinds (index into the per-day expiry table) -------------------------------------
EXP_WEEKLY = 0
EXP_MONTHLY = 1

# --- where prices come from -------------------------------------------------------------------
MODE_SYNTHETIC = 0      # Black-Scholes on the underlying with the synthetic IV surface
MODE_CHAIN = 1          # an option-chain file (ChainArrays)

# --- price fields of a bar ----------------------------------------------------------------------
F_OPEN = 0
F_HIGH = 1
F_LOW = 2
F_CLOSE = 3

# --- kernel failures (outcomes as codes; the Python wrapper raises) ----------------------------
ERR_NONE = 0
ERR_NO_BAR = 1          # a fill needs the contract's bar and the chain has none at that time
ERR_NO_STRIKE = 2       # no listed strike could be chosen (empty chain at the signal bar)
ERR_NO_EXPIRY = 3       # the expiry asked for is not listed on the signal date
ERR_NO_MATCH = 4        # no strike meets a leg's selector (a premium qualifier, an ATM offset beyond
                        # the listed strikes): not a failure, the entry opens nothing

# --- slots of the kernel's int state (int64[8]) and float state (float64[5]) -------------
I_DAY = 0       # trading day of the last bar stepped
I_SQUARED = 1   # 1 once the day's square-off bar has been stepped
I_OPEN = 2      # open positions
I_PENDING = 3   # 1 when orders wait for the next open
I_HALTED = 4    # 1 once a daily limit was reached today: no more entries
I_ERR = 5       # ERR_* of a failed step
I_ERR_BAR = 6   # the bar it failed at
I_ERR_LEG = 7   # the leg (ERR_NO_BAR: its contract is in legs state / floats[F_ERR_STRIKE])
F_CASH = 0
F_DAY_EQUITY = 1   # equity at the previous day's close: the daily limits' reference
F_LAST_EQUITY = 2  # equity at the last bar stepped
F_ERR_STRIKE = 3
F_ERR_K = 4
NO_DAY = np.iinfo(np.int64).min
NO_ORDER = -1

# --- state comparisons (Operand.position_mtm / leg_premium), checked by the kernel ---------
ST_MTM = 0              # the node's open position's MTM P&L, currency, after commission
ST_LEG_PREMIUM = 1      # an open leg's premium
OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE = range(6)
OP_CODES = {"<": OP_LT, "<=": OP_LE, ">": OP_GT, ">=": OP_GE, "==": OP_EQ, "!=": OP_NE}
OP_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

# One state comparison of a node's condition, with the state on the left (static). Those of
# owner o (entry e: o = e; exit x: o = E + x) are rows cond_ptr[o]:cond_ptr[o + 1].
statecond_dt = np.dtype([
    ("what", np.int64),     # ST_*
    ("node", np.int64),     # entry node whose position is read
    ("leg", np.int64),      # ST_LEG_PREMIUM: the leg's index in the run's legs
    ("op", np.int64),       # OP_*
    ("value", np.float64),
])

# One option leg of an entry node (static).
leg_dt = np.dtype([
    ("node", np.int64),
    ("cp", np.int64),          # pricing.CALL (+1) or pricing.PUT (-1)
    ("side", np.int64),        # LONG (+1) buys the option, SHORT (-1) sells it
    ("lots", np.int64),
    ("exp_kind", np.int64),    # EXP_*
    ("exp_offset", np.int64),
    ("selector", np.int64),    # SEL_*
    ("value", np.float64),
    ("qualifier", np.int64),   # Q_* (SEL_PREMIUM)
    ("sl_mode", np.int64),     # records.STOP_NONE / STOP_PCT / STOP_POINTS, on the premium
    ("sl_value", np.float64),
    ("tp_mode", np.int64),
    ("tp_value", np.float64),
])

# Per entry node of a legs strategy (static).
legnode_dt = np.dtype([
    ("first_leg", np.int64),   # legs of node e are legs[first_leg : first_leg + n_legs]
    ("n_legs", np.int64),
    ("max_per_day", np.int64),
    ("max_re_entries", np.int64),  # -1: unlimited
    ("max_bars", np.int64),
    ("risk_sl_pct", np.float64),   # PositionRisk; 0: none
    ("risk_tp_pct", np.float64),
    ("mtm_sl", np.float64),
    ("mtm_tp", np.float64),
])

# An open option position of one node (state carried between chunks; legs_open == 0: flat).
legpos_dt = np.dtype([
    ("legs_open", np.int64),
    ("pos_seq", np.int64),
    ("re_entry_num", np.int64),
    ("entry_signal_bar", np.int64),
    ("entry_bar", np.int64),
    ("entry_value", np.float64),    # sum over legs of side * qty * entry price (debit > 0)
    ("entry_abs", np.float64),      # sum over legs of qty * entry price
    ("realized_gross", np.float64),  # closed legs: side * qty * (exit - entry)
    ("commission", np.float64),     # paid so far by all its legs
    ("bars_held", np.int64),
    ("exit_value", np.float64),     # the state value that let its waiting exit signal fire (NaN: none)
])

# An open leg (state carried between chunks; open == 0: none).
legstate_dt = np.dtype([
    ("open", np.int64),
    ("k", np.int64),               # expiry index into the run's expiry table
    ("contract", np.int64),        # chain contract id (MODE_CHAIN) or -1
    ("cursor", np.int64),          # chain row cursor, moves forward only
    ("strike", np.float64),
    ("ln_strike", np.float64),     # log(strike), for the synthetic chain's prices
    ("qty", np.float64),           # units = lots * lot_size
    ("lot_size", np.float64),
    ("entry_price", np.float64),   # fill, slippage included
    ("entry_commission", np.float64),
    ("sl_level", np.float64),      # premium levels (NaN: none)
    ("tp_level", np.float64),
    ("mark", np.float64),          # last price marked (close of the last bar priced)
    ("spot_entry", np.float64),
    ("iv_entry", np.float64),      # percent
    ("delta_entry", np.float64),
    ("sel_spot", np.float64),      # how the strike was chosen, at the signal bar
    ("sel_atm", np.float64),
    ("sel_candidates", np.int64),
    ("sel_premium", np.float64),
    ("sel_iv", np.float64),
    ("sel_delta", np.float64),
])

# One closed leg (a trade). Bars are absolute indexes into the run's arrays.
legtrade_dt = np.dtype([
    ("node", np.int64),
    ("leg", np.int64),             # index into the run's legs
    ("pos_seq", np.int64),
    ("re_entry_num", np.int64),
    ("side", np.int64),
    ("cp", np.int64),
    ("qty", np.float64),
    ("lots", np.int64),
    ("lot_size", np.float64),
    ("k", np.int64),
    ("expiry_day", np.int64),      # days since 1970-01-01
    ("strike", np.float64),
    ("entry_signal_bar", np.int64),
    ("entry_bar", np.int64),
    ("entry_price", np.float64),
    ("entry_commission", np.float64),
    ("exit_signal_bar", np.int64),
    ("exit_bar", np.int64),
    ("exit_price", np.float64),
    ("exit_commission", np.float64),
    ("exit_reason", np.int64),     # records.EXIT_*
    ("exit_node", np.int64),
    ("pnl", np.float64),           # side * qty * (exit - entry) - both commissions
    ("sl_level", np.float64),
    ("tp_level", np.float64),
    ("spot_entry", np.float64),
    ("spot_exit", np.float64),
    ("iv_entry", np.float64),
    ("iv_exit", np.float64),
    ("delta_entry", np.float64),
    ("delta_exit", np.float64),
    ("sel_spot", np.float64),
    ("sel_atm", np.float64),
    ("sel_candidates", np.int64),
    ("sel_premium", np.float64),
    ("sel_iv", np.float64),
    ("sel_delta", np.float64),
    ("signal_value", np.float64),  # exit signals with a state comparison: its value then (else NaN)
    ("pos_last", np.int64),        # 1 when this leg's close closed its position
    ("pos_pnl", np.float64),       # with pos_last: the position's pnl over all its legs
])
