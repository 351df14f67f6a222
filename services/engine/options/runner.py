"""Prepare and step the legs kernel for one run: expiries, lot sizes, time to expiry, prices.

`LegsRunner(plan, bars, ...)` turns a StrategyPlan with legs and the run's bars into the legs
kernel's arrays (the expiry each leg trades on each day, lot sizes by date, trading minutes
to each expiry, the synthetic surface's level or the option chain's rows); `run_chunk` and
`close_all` step it like core/kernels.py steps the underlying, raising `PricingError` when a
fill has no price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from services.engine.core import records
from services.engine.core.bars import Bars
from services.engine.core.calendar import day_date, session_days
from services.engine.core.kernels import book_dt, copy_records

from . import layouts
from .expiries import MONTHLY, WEEKLY, ExpiryCalendar, ExpiryError
from .layouts import MODE_CHAIN, MODE_SYNTHETIC, leg_dt, legnode_dt, legpos_dt, legstate_dt, legtrade_dt
from .fills import close_all_legs_nb
from .layouts import F_CASH, F_DAY_EQUITY, F_ERR_K, F_ERR_STRIKE, F_LAST_EQUITY, I_ERR_BAR, I_ERR_LEG, I_OPEN, NO_DAY, NO_ORDER
from .legs_kernel import run_legs_nb
from .pricing import RISK_FREE_RATE, SESSION_MINUTES, vol_level
from .quotes import BAR_CACHE
from .symbols import format_symbol

DEFAULT_STRIKE_STEP = 50.0   # NIFTY's listed strike interval
NSE_CLOSE_MINUTE = 15 * 60 + 30
# Sessions looked up past the data's last day: the farthest listed expiry (monthly, offset 2)
# is under 100 calendar days away.
_EXPIRY_HORIZON_DAYS = 130


class PricingError(ValueError):
    """A run that cannot price a contract it must fill (or choose): names contract and time."""


@dataclass(frozen=True)
class OptionSource:
    """Where a dataset's option prices come from."""

    kind: str                        # "synthetic" | "chain"
    root: str = "NIFTY"              # the underlying's root in option symbols
    calendar: str = "XBOM"           # the exchange calendar of expiries
    chain_path: Path | None = None   # kind == "chain": the chain file
    cache_dir: Path | None = None    # where a CSV chain's Parquet form is kept


@dataclass
class LegsState:
    """State carried from one run_chunk to the next."""

    positions: np.ndarray  # legpos_dt[E]
    legs: np.ndarray       # legstate_dt[L]
    book: np.ndarray       # core book_dt[E]
    ints: np.ndarray       # int64[8] (legs_kernel.I_*)
    floats: np.ndarray     # float64[5] (legs_kernel.F_*)
    buffer: np.ndarray     # legtrade_dt scratch, grown by doubling
    bar_cache: np.ndarray = field(default_factory=lambda: np.full(BAR_CACHE, -1.0))  # quotes.price_nb's

    @property
    def cash(self) -> float:
        return float(self.floats[F_CASH])

    @property
    def open_count(self) -> int:
        return int(self.ints[I_OPEN])


@dataclass
class LegsRunner:
    """The legs kernel's inputs for one run (built once; `equity` is written by the kernel)."""

    plan: object
    bars: Bars
    source: OptionSource
    entry_signal: np.ndarray
    exit_signal: np.ndarray
    exit_targets: np.ndarray
    square_off: np.ndarray
    fill_at_close: bool
    intraday: bool
    commission: float          # fraction of premium notional
    slippage: float            # fraction of premium
    first_bar: int
    bar_minutes: float
    equity: np.ndarray = field(init=False)
    buffer_dtype = legtrade_dt

    def __post_init__(self) -> None:
        plan, b = self.plan, self.bars
        n = len(b)
        self.leg_plans = [leg for e in plan.entries for leg in e.legs]
        self.leg_node = [k for k, e in enumerate(plan.entries) for _ in e.legs]
        self.dates, starts = b.day_bounds()
        self.dayidx = np.repeat(np.arange(len(self.dates), dtype=np.int64), np.diff(starts))
        cal = ExpiryCalendar(root=self.source.root, calendar=self.source.calendar)
        self.leg_exp, self.exp_day = self._expiry_table(cal, starts)
        last = day_date(int(self.dates[-1])) + timedelta(days=_EXPIRY_HORIZON_DAYS)
        if len(self.exp_day):
            last = max(last, day_date(int(self.exp_day[-1])))
        sessions = session_days(self.source.calendar, day_date(int(self.dates[0])), last)
        self.sess = np.searchsorted(sessions, b.day).astype(np.int64)
        self.exp_sess = np.searchsorted(sessions, self.exp_day).astype(np.int64)
        close_min = plan.session.close_minute if plan.session.close_minute is not None else NSE_CLOSE_MINUTE
        self.tleft = np.clip(close_min - (b.minute_of_day + self.bar_minutes), 0.0, SESSION_MINUTES)
        lot = plan.options.lot_size if plan.options and plan.options.lot_size else 0
        # A contract's lot size is the one its circular set for its expiry (during a revision old
        # and new lots trade side by side), unless the strategy overrides it.
        self.lot_size_exp = np.array([lot or cal.lot_size(day_date(int(d))) for d in self.exp_day], np.float64)
        self.mode = MODE_CHAIN if self.source.kind == "chain" else MODE_SYNTHETIC
        step = plan.options.strike_step if plan.options else 0.0
        if self.mode == MODE_CHAIN:
            from .chain import load_chain

            lo = float(np.min(b.low[self.first_bar:])) * 0.5
            hi = float(np.max(b.high[self.first_bar:])) * 1.5
            self.chain = load_chain(self.source.chain_path, b, self.exp_day, lo, hi, cache_dir=self.source.cache_dir)
            step = step or self.chain.strike_step or DEFAULT_STRIKE_STEP
            self.vol = np.zeros(n)
            ch = self.chain
            self._chain_arrays = (ch.strikes, ch.contract, ch.ptr, ch.bar, ch.open, ch.high, ch.low, ch.close)
        else:
            self.chain = None
            self.vol = vol_level(b.day, b.close)
            z, zi = np.zeros(0), np.zeros(0, np.int64)
            self._chain_arrays = (z, np.full((max(len(self.exp_day), 1), 0, 2), -1, np.int64), np.zeros(1, np.int64),
                                  zi, z, z, z, z)
        self.strike_step = float(step or DEFAULT_STRIKE_STEP)
        self.nodes, self.legs = self._layouts()
        self.conds, self.cond_ptr = self._state_conditions()
        self.flags = np.array([self.fill_at_close, self.intraday, self.mode], np.int64)
        dl = plan.daily_limits
        self.cfg = np.array([self.commission, self.slippage, dl.max_loss if dl else 0.0, dl.max_profit if dl else 0.0,
                             RISK_FREE_RATE, self.bar_minutes, self.strike_step], np.float64)
        self.equity = np.full(n, np.nan)
        self._symbols: dict[tuple, str] = {}

    # --- preparation ---------------------------------------------------------------------------
    def _expiry_table(self, cal: ExpiryCalendar, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(leg_exp int64[D, L] global expiry index per day and leg, -1 before the run; exp_day[K])."""
        D, L = len(self.dates), len(self.leg_plans)
        first_day = int(np.searchsorted(starts, self.first_bar, side="right")) - 1
        raw = np.full((D, L), -1, np.int64)
        for j, leg in enumerate(self.leg_plans):
            kind = WEEKLY if leg.expiry_kind == layouts.EXP_WEEKLY else MONTHLY
            days = cal.listed_days(kind, self.dates[first_day:], leg.expiry_offset)
            missing = np.flatnonzero(days < 0)
            if len(missing):
                node = self.plan.entries[self.leg_node[j]]
                when = day_date(int(self.dates[first_day + missing[0]]))
                try:
                    cal.listed(kind, when, leg.expiry_offset)
                    why = f"no {kind} expiry is listed on {when}"
                except ExpiryError as exc:
                    why = str(exc)
                raise ExpiryError(f"{node.id} leg {leg.id}: {why}")
            raw[first_day:, j] = days
        exp_day = np.unique(raw[raw >= 0])
        table = np.where(raw >= 0, np.searchsorted(exp_day, raw), -1).astype(np.int64)
        return np.ascontiguousarray(table), exp_day.astype(np.int64)

    def _layouts(self) -> tuple[np.ndarray, np.ndarray]:
        plan = self.plan
        nodes = np.zeros(len(plan.entries), legnode_dt)
        legs = np.zeros(len(self.leg_plans), leg_dt)
        j = 0
        for k, e in enumerate(plan.entries):
            r = e.position
            nodes[k] = (j, len(e.legs), e.max_per_day, e.max_re_entries, e.max_bars, r.stop_loss_pct,
                        r.take_profit_pct, r.mtm_stop_loss, r.mtm_take_profit)
            for leg in e.legs:
                legs[j] = (k, leg.cp, leg.side, leg.lots, leg.expiry_kind, leg.expiry_offset, leg.selector, leg.value,
                           leg.qualifier, leg.stop_loss.mode, leg.stop_loss.value, leg.take_profit.mode,
                           leg.take_profit.value)
                j += 1
        return nodes, legs

    def _state_conditions(self) -> tuple[np.ndarray, np.ndarray]:
        """The position_mtm / leg_premium comparisons of every entry, then every exit node, with
        the state on the left (spec.py keeps them where ANDing them is exact)."""
        plan = self.plan
        index = {e.id: k for k, e in enumerate(plan.entries)}
        leg_index = {f"{plan.entries[self.leg_node[j]].id}.{leg.id}": j for j, leg in enumerate(self.leg_plans)}
        rows, ptr = [], [0]
        for node in (*plan.entries, *plan.exits):
            for cmp in node.when.comparisons():
                state, other, op = cmp.lhs, cmp.rhs, cmp.op
                if state.kind not in ("position_mtm", "leg_premium"):
                    state, other, op = cmp.rhs, cmp.lhs, layouts.OP_MIRROR[cmp.op]
                if state.kind == "position_mtm":
                    rows.append((layouts.ST_MTM, index[state.ref], -1, layouts.OP_CODES[op], other.value))
                elif state.kind == "leg_premium":
                    rows.append((layouts.ST_LEG_PREMIUM, index[state.ref.split(".")[0]], leg_index[state.ref],
                                 layouts.OP_CODES[op], other.value))
            ptr.append(len(rows))
        return np.array(rows, layouts.statecond_dt), np.array(ptr, np.int64)

    # --- stepping --------------------------------------------------------------------------------
    def new_state(self, initial_capital: float, trade_capacity: int = 1024) -> LegsState:
        E, L = len(self.plan.entries), len(self.leg_plans)
        book = np.zeros(E, book_dt)
        for name in ("entry_bar", "exit_reason", "exit_node", "exit_bar"):
            book[name] = NO_ORDER
        positions = np.zeros(E, legpos_dt)
        positions["exit_value"] = np.nan
        lst = np.zeros(L, legstate_dt)
        lst["contract"] = -1
        for name in ("sl_level", "tp_level", "mark"):
            lst[name] = np.nan
        cash = float(initial_capital)
        return LegsState(positions, lst, book, np.array([NO_DAY, 0, 0, 0, 0, 0, 0, 0], np.int64),
                         np.array([cash, cash, cash, np.nan, -1.0]),
                         np.empty(max(int(trade_capacity), 4 * L + 8), legtrade_dt))

    def run_chunk(self, state: LegsState, start: int, stop: int) -> np.ndarray:
        """Step bars [start, stop); returns a copy of the legs closed there, in close order."""
        b = self.bars
        k, i = 0, int(start)
        while True:
            k, i, err = run_legs_nb(
                b.open, b.high, b.low, b.close, b.day, self.dayidx, self.square_off, self.sess, self.tleft, self.vol,
                self.entry_signal, self.exit_signal, self.exit_targets, self.conds, self.cond_ptr, self.nodes, self.legs, self.leg_exp,
                self.exp_sess, self.exp_day, self.lot_size_exp, self.flags, self.cfg, *self._chain_arrays,
                self.equity, state.positions, state.legs, state.book, state.ints, state.floats, state.bar_cache, state.buffer, k, i,
                int(stop))
            if err != layouts.ERR_NONE:
                raise self._error(state, err)
            if i >= stop:
                return copy_records(state.buffer, k)
            grown = np.empty(2 * state.buffer.shape[0], legtrade_dt)
            grown[:k] = state.buffer[:k]
            state.buffer = grown

    def close_all(self, state: LegsState, bar: int, reason: int = records.EXIT_END_OF_DATA) -> np.ndarray:
        out = np.empty(len(self.leg_plans) + 1, legtrade_dt)
        k = close_all_legs_nb(self.bars.close, int(bar), int(reason), self.nodes, self.legs, state.positions,
                              state.legs, state.book, out, state.ints, state.floats, self.sess, self.tleft, self.vol,
                              self.exp_sess, self.exp_day, RISK_FREE_RATE, self.mode != MODE_CHAIN,
                              state.bar_cache, self.commission, self.slippage)
        self.equity[bar] = state.cash
        state.floats[F_DAY_EQUITY] = state.floats[F_LAST_EQUITY]
        return copy_records(out, k)

    def _error(self, state: LegsState, err: int) -> PricingError:
        from services.engine.core.results import TimeFormatter

        li = int(state.ints[I_ERR_LEG])
        bar = int(state.ints[I_ERR_BAR])
        leg = self.leg_plans[li]
        node = self.plan.entries[self.leg_node[li]]
        fmt = TimeFormatter(self.bars)
        when = fmt.iso(min(bar, len(self.bars) - 1))
        who = f"{node.id} leg {leg.id}"
        if err == layouts.ERR_NO_BAR:
            kk = int(state.floats[F_ERR_K])
            sym = format_symbol(self.source.root, day_date(int(self.exp_day[kk])), float(state.floats[F_ERR_STRIKE]),
                                leg.option_type)
            return PricingError(f"{sym} has no bar at {when} in the option chain, and {who} must fill then: "
                                f"add the contract's bars to the chain file or choose another strike")
        if err == layouts.ERR_NO_STRIKE:
            return PricingError(f"{who}: no {leg.option_type} strike with a price at {when} in the option chain "
                                f"to choose from ({leg.describe()})")
        return PricingError(f"{who}: no {leg.expiry_name} expiry listed at {when}")

    # --- what the results layer reads ----------------------------------------------------------------
    def symbol(self, k: int, strike: float, cp: int) -> str:
        key = (k, strike, cp)
        sym = self._symbols.get(key)
        if sym is None:  # a run trades few contracts, each many times
            sym = self._symbols[key] = format_symbol(self.source.root, day_date(int(self.exp_day[k])), float(strike),
                                                     "CE" if cp > 0 else "PE")
        return sym

    def expiry_date(self, k: int) -> date:
        return day_date(int(self.exp_day[k]))

    def open_legs(self, state: LegsState) -> list[tuple[int, int, np.void, np.void]]:
        """(node, leg index, position record, leg state) of every open leg."""
        out = []
        for li in range(len(self.leg_plans)):
            ls = state.legs[li]
            if ls["open"]:
                e = self.leg_node[li]
                out.append((e, li, state.positions[e], ls))
        return out


def source_for(catalog, symbol: str) -> OptionSource | None:
    """Where `symbol`'s option prices come from: its registered chain file, the synthetic
    chain for SIM-NIFTY, or None (no options)."""
    from services.engine.core.simdata import SIM_NIFTY

    from .symbols import underlying_root

    chain = catalog.option_chain(symbol)
    calendar = catalog.info(symbol).calendar or "XBOM"
    if chain is not None:
        return OptionSource("chain", underlying_root(symbol), calendar, chain, catalog.chain_cache_dir(symbol))
    if symbol == SIM_NIFTY.symbol:
        return OptionSource("synthetic", underlying_root(symbol), calendar)
    return None


def leg_problems(plan, source: OptionSource | None, symbol: str, first_day: date) -> list[tuple[str, str]]:
    """(field path, fix) for legs a dataset cannot serve from `first_day` on: no options at all,
    or weekly expiries asked for before they were listed."""
    if not plan.has_legs:
        return []
    if source is None:
        return [("entries[0].legs", f"dataset {symbol} has no options: use SIM-NIFTY (priced synthetically) or "
                                    f"register an option-chain file {symbol}.options.parquet beside it")]
    try:
        cal = ExpiryCalendar(root=source.root, calendar=source.calendar)
    except ExpiryError as exc:
        return [("entries[0].legs", f"dataset {symbol}'s options cannot be traded: {exc}")]
    out = []
    for i, e in enumerate(plan.entries):
        for j, leg in enumerate(e.legs):
            kind = WEEKLY if leg.expiry_kind == layouts.EXP_WEEKLY else MONTHLY
            try:
                cal.listed(kind, first_day, leg.expiry_offset)
            except ExpiryError as exc:
                out.append((f"entries[{i}].legs[{j}].expiry.kind", str(exc)))
    return out
