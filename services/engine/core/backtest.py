"""Run a StrategyPlan over Bars: signals, then the kernel day by day, reporting each day.

`Backtest(plan, bars, settings)` prepares everything that can be vectorized (indicators,
signals, kernel inputs); `run(on_day=...)` steps the kernel one trading day at a time,
carrying its state, and hands each finished day to the callback — the service streams from
it, the CLI prints and writes day files. Without a callback the kernel runs in one call.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable

import numpy as np

from . import kernels, records
from .bars import Bars
from .gcpause import gc_paused
from .metrics import compute_metrics
from .results import ResultBuilder, day_summary, day_summary_from, money, summary_from_records
from .signals import Signals, compute_signals
from .spec import StrategyPlan

EPOCH = date(1970, 1, 1)


def _timestamp(ev: dict) -> str:
    return ev["timestamp"]


class RunError(ValueError):
    """A run that cannot start: no data in the range, bad timeframe, ..."""


def day_str(day: int) -> str:
    return (EPOCH + timedelta(days=int(day))).isoformat()


def day_int(d: date) -> int:
    return (d - EPOCH).days


@dataclass(frozen=True)
class RunSettings:
    """Run parameters; None/0 means "the strategy's own setting"."""

    start: date | None = None
    end: date | None = None
    timeframe: str = ""
    initial_capital: float | None = None
    commission_pct: float | None = None
    slippage_pct: float | None = None
    tick_interval: int = 0


@dataclass
class DayResult:
    """One finished trading day."""

    date: str
    day_number: int
    total_days: int
    trades: list[dict]
    events: dict[str, dict]          # every node event the day's trades / open positions point to
    new_events: list[dict]           # events not reported on an earlier day, in time order
    summary: dict
    equity: float
    open_positions: list[dict]
    ticks: list[dict]
    records: np.ndarray = field(repr=False)
    first_bar: int = 0
    last_bar: int = 0
    positions: list[dict] = field(default_factory=list)  # option positions closed this day
    underlying: str = ""  # option runs: the underlying's root, which names the seeds' spot fields

    def trades_daily(self) -> dict:
        if not self.underlying:
            return {"date": self.date, "summary": self.summary, "trades": self.trades}
        from services.engine.options.dayfields import to_day_file

        return {"date": self.date, "summary": self.summary,
                "trades": [to_day_file(t, self.underlying) for t in self.trades], "positions": self.positions}

    def diagnostics_export(self) -> dict:
        return {"date": self.date, "events_history": self.events}


@dataclass
class RunResult:
    plan: StrategyPlan
    symbol: str
    trades: np.ndarray                # trade_dt records of the whole run
    equity_dates: np.ndarray          # int64 days
    equity: np.ndarray                # float64 equity at each day's close
    metrics: dict
    summary: dict                     # OverallSummary fields
    day_stats: dict[str, np.ndarray]  # per day: trades, pnl, winning_trades, losing_trades
    cancelled: bool = False

    @property
    def daily(self) -> list[dict]:
        """Calendar rows: date, trades, pnl, equity, winning_trades, losing_trades."""
        st = self.day_stats
        return [{"date": day_str(d), "trades": int(n), "pnl": money(p), "equity": money(e),
                 "winning_trades": int(w), "losing_trades": int(lo)}
                for d, n, p, e, w, lo in zip(self.equity_dates.tolist(), st["trades"].tolist(), st["pnl"].tolist(),
                                             self.equity.tolist(), st["winning_trades"].tolist(),
                                             st["losing_trades"].tolist())]


def frame(plan: StrategyPlan, bars: Bars, settings: RunSettings, symbol: str = "") -> tuple[str, Bars, int]:
    """The bars a run of `plan` reads: resampled to its timeframe, from the warm-up before the
    start date to the end date. Returns (timeframe, bars, index of the first bar of the start
    date). RunError when the range holds no trading day."""
    symbol = symbol or bars.symbol
    timeframe = settings.timeframe or plan.execution.timeframe
    if timeframe and timeframe != bars.timeframe:
        from .data import resample

        bars = resample(bars, timeframe)
    timeframe = timeframe or bars.timeframe
    dates, starts = bars.day_bounds()
    lo_day = day_int(settings.start) if settings.start else -(1 << 62)
    hi_day = day_int(settings.end) if settings.end else (1 << 62)
    if settings.start and settings.end and settings.start > settings.end:
        raise RunError(f"start date {settings.start} is after end date {settings.end}")
    d0 = int(np.searchsorted(dates, lo_day, side="left"))
    d1 = int(np.searchsorted(dates, hi_day, side="right"))
    if d0 >= d1:
        first = day_str(dates[0]) if len(dates) else "-"
        last = day_str(dates[-1]) if len(dates) else "-"
        raise RunError(f"no trading days between {settings.start or 'the start'} and "
                       f"{settings.end or 'the end'}: {symbol} has data from {first} to {last}")
    first_bar, stop_bar = int(starts[d0]), int(starts[d1])
    # Indicators are warmed up on history before the start date: enough bars for every
    # look-back (x4, so EMA-style recursions have converged), rounded to whole days.
    want = first_bar - 4 * plan.warmup_bars - 1
    lo_bar = int(starts[max(0, int(np.searchsorted(starts, max(want, 0), side="right")) - 1)])
    return timeframe, bars.slice(lo_bar, stop_bar), first_bar - lo_bar


def _square_off_bars(bars: Bars, minute: float) -> np.ndarray:
    """First bar of each day at or after `minute` (exchange-local)."""
    at = bars.minute_of_day >= minute - 1e-9
    day = bars.day
    prev_same_day = np.zeros_like(at)
    prev_same_day[1:] = at[:-1] & (day[1:] == day[:-1])
    return np.ascontiguousarray(at & ~prev_same_day)


class Backtest:
    def __init__(self, plan: StrategyPlan, bars: Bars, settings: RunSettings = RunSettings(), symbol: str = "",
                 options=None):
        """`options` (options.runner.OptionSource): where the dataset's option prices come from;
        required when the plan's entries open legs."""
        self.plan = plan
        self.settings = settings
        self.symbol = symbol or bars.symbol
        ex = plan.execution
        self.initial_capital = float(settings.initial_capital or ex.initial_capital)
        self.commission_pct = ex.commission_pct if settings.commission_pct is None else settings.commission_pct
        self.slippage_pct = ex.slippage_pct if settings.slippage_pct is None else settings.slippage_pct
        if self.initial_capital <= 0 or not math.isfinite(self.initial_capital):
            raise RunError(f"initial_capital {self.initial_capital} must be positive")
        if not 0 <= self.commission_pct < 100 or not 0 <= self.slippage_pct < 100:
            raise RunError("commission_pct and slippage_pct are percentages in [0, 100)")

        self.timeframe, self.bars, self.first_bar = frame(plan, bars, settings, self.symbol)
        self.day_dates, self.day_starts = self.bars.day_bounds()
        self.first_day = int(np.searchsorted(self.day_starts, self.first_bar))
        self.total_days = len(self.day_dates) - self.first_day

        self.signals: Signals = compute_signals(plan, self.bars, self.first_bar)
        self.inputs = self._kernel_inputs()
        self.legs = self._legs_runner(options) if plan.has_legs else None
        self._builder: ResultBuilder | None = None

    @property
    def equity_array(self) -> np.ndarray:
        """float64[n] equity at each bar's close, written by the kernel as it runs."""
        return self.legs.equity if self.legs is not None else self.inputs.equity

    @property
    def builder(self) -> ResultBuilder:
        """Turns kernel records into trade dicts and node events (built on first use)."""
        if self._builder is None:
            if self.legs is not None:
                from services.engine.options.results import LegResultBuilder

                self._builder = LegResultBuilder(self.plan, self.bars, self.signals, self.symbol, self.legs)
            else:
                from .columnar import ColumnarResults

                self._builder = ColumnarResults(self.plan, self.bars, self.signals, self.symbol)
        return self._builder

    def _legs_runner(self, options):
        from services.engine.options.expiries import ExpiryError
        from services.engine.options.runner import LegsRunner

        if options is None:
            raise RunError(f"{self.symbol} has no options: its entries open legs, which need SIM-NIFTY (priced "
                           f"synthetically) or a dataset with an option-chain file (<SYMBOL>.options.parquet)")
        from .data import parse_timeframe

        inp = self.inputs
        try:
            return LegsRunner(self.plan, self.bars, options, inp.entry_signal, inp.exit_signal, inp.exit_targets,
                              inp.square_off, inp.fill_at_close, inp.intraday, inp.commission, inp.slippage,
                              self.first_bar, float(parse_timeframe(self.timeframe)) if self.timeframe else 1.0)
        except ExpiryError as exc:
            raise RunError(str(exc)) from None

    # --- preparation --------------------------------------------------------------------
    def _kernel_inputs(self) -> "kernels.KernelInputs":
        plan, b = self.plan, self.bars
        n, E = len(b), len(plan.entries)
        intraday = plan.session.intraday
        square_off = _square_off_bars(b, plan.session.square_off_minute) if intraday else np.zeros(n, np.bool_)
        exit_targets = np.zeros((len(plan.exits), E), np.bool_)
        ids = [e.id for e in plan.entries]
        for x, ex in enumerate(plan.exits):
            for target in ex.closes:
                exit_targets[x, ids.index(target)] = True
        stop_atr = np.full((n, E), np.nan)
        for k, e in enumerate(plan.entries):
            for rule in (e.stop_loss, e.take_profit, e.trailing_stop):
                if rule.mode == records.STOP_ATR:
                    stop_atr[:, k] = self.signals.book.series[f"{rule.atr}.value"]
                    break

        def col(attr, dtype):
            return np.ascontiguousarray(np.array([attr(e) for e in plan.entries], dtype=dtype))

        return kernels.KernelInputs(
            open=b.open, high=b.high, low=b.low, close=b.close, day=np.ascontiguousarray(b.day),
            square_off=square_off,
            entry_signal=np.ascontiguousarray(self.signals.entry),
            exit_signal=np.ascontiguousarray(self.signals.exit),
            exit_targets=exit_targets,
            side=col(lambda e: e.side, np.int64),
            qty_mode=col(lambda e: e.qty_mode, np.int64),
            qty_value=col(lambda e: e.qty_value, np.float64),
            max_per_day=col(lambda e: e.max_per_day, np.int64),
            max_re_entries=col(lambda e: e.max_re_entries, np.int64),
            reverse=col(lambda e: e.reverse, np.bool_),
            max_bars=col(lambda e: e.max_bars, np.int64),
            sl_mode=col(lambda e: e.stop_loss.mode, np.int64),
            sl_value=col(lambda e: e.stop_loss.value, np.float64),
            tp_mode=col(lambda e: e.take_profit.mode, np.int64),
            tp_value=col(lambda e: e.take_profit.value, np.float64),
            ts_mode=col(lambda e: e.trailing_stop.mode, np.int64),
            ts_value=col(lambda e: e.trailing_stop.value, np.float64),
            stop_atr=np.ascontiguousarray(stop_atr),
            fill_at_close=bool(plan.execution.fill_at_close),
            commission=self.commission_pct / 100.0,
            slippage=self.slippage_pct / 100.0,
            intraday=bool(intraday),
            equity=np.full(n, np.nan),
        )

    @property
    def first_date(self) -> str:
        return day_str(self.day_dates[self.first_day])

    @property
    def last_date(self) -> str:
        return day_str(self.day_dates[-1])

    # --- running ------------------------------------------------------------------------
    def run(self, on_day: Callable[[DayResult], None] | None = None,
            should_stop: Callable[[], bool] | None = None, *, events: bool = True) -> RunResult:
        """Run the whole range. With `on_day`, each finished day is reported as a DayResult;
        `should_stop` is polled between days (cancellation within one trading day of work).
        events=False leaves the underlying's days without node events (`--json` needs trades only)."""
        # Room for every entry signal to become a trade, so the kernel never stops to grow it.
        capacity = int(self.signals.entry[self.first_bar:].sum()) + 16
        if self.legs is not None:
            legs = self.legs
            state = legs.new_state(self.initial_capital, capacity * max(1, len(legs.leg_plans)))
            run_chunk, close_all = legs.run_chunk, legs.close_all
            equity = legs.equity
        else:
            state = kernels.new_state(len(self.plan.entries), self.initial_capital, trade_capacity=capacity)
            inp = self.inputs

            def run_chunk(st, s, e):
                return kernels.run_chunk(inp, st, s, e)

            def close_all(st, bar, reason):
                return kernels.close_all(inp, st, bar, reason)

            equity = inp.equity
        last = len(self.bars) - 1
        parts: list[np.ndarray] = []
        cancelled = False
        days_done = None
        if on_day is None and should_stop is None:
            parts.append(run_chunk(state, self.first_bar, len(self.bars)))
            parts.append(close_all(state, last, records.EXIT_END_OF_DATA))
            equity[last] = state.cash
        elif self.legs is not None or self.settings.tick_interval > 0:
            emitted: set[str] = set()
            for d in range(self.first_day, len(self.day_dates)):
                if should_stop is not None and should_stop():
                    cancelled = True
                    break
                s, e = int(self.day_starts[d]), int(self.day_starts[d + 1])
                recs = run_chunk(state, s, e)
                if d == len(self.day_dates) - 1:
                    tail = close_all(state, last, records.EXIT_END_OF_DATA)
                    recs = np.concatenate([recs, tail]) if len(tail) else recs
                    equity[last] = state.cash
                parts.append(recs)
                if on_day is not None:
                    on_day(self._day_result(d, recs, state, emitted))
        else:
            cancelled, days_done = self._run_blocks(state, run_chunk, close_all, equity, parts, on_day, should_stop,
                                                    events)
        dtype = self.legs.buffer_dtype if self.legs is not None else records.trade_dt
        trades = np.concatenate(parts) if parts else np.empty(0, dtype)
        return self._finish(trades, cancelled, days_done)

    # Days the kernel runs in one call when days are reported: the first alone (the first
    # events go out at once), then twice as many each time up to this many, so the call
    # overhead (~0.2 ms) is paid a few hundred times a decade instead of once a day.
    MAX_BLOCK_DAYS = 64

    def _run_blocks(self, state, run_chunk, close_all, equity, parts, on_day, should_stop,
                    events: bool) -> tuple[bool, int]:
        """The underlying's days, run a block of days at a time and reported one by one:
        a block's records are formatted once (ColumnarResults.columns) and sliced per day.
        Returns (cancelled, days reported)."""
        builder = self.builder
        n_days = len(self.day_dates)
        last = len(self.bars) - 1
        emitted: set[str] = set()
        d, size, done = self.first_day, 1, 0
        while d < n_days:
            if should_stop is not None and should_stop():
                return True, done
            d_end = min(n_days, d + size)
            size = min(size * 2, self.MAX_BLOCK_DAYS)
            recs = run_chunk(state, int(self.day_starts[d]), int(self.day_starts[d_end]))
            if d_end == n_days:
                tail = close_all(state, last, records.EXIT_END_OF_DATA)
                recs = np.concatenate([recs, tail]) if len(tail) else recs
                equity[last] = state.cash
            if on_day is None:
                parts.append(recs)
                done += d_end - d
                d = d_end
                continue
            # The collector is paused while the block's results are built, not while they are
            # handed on (a callback may wait, and the pause is process-wide).
            with gc_paused():
                cols = builder.columns(recs, events=events)
                cuts = np.searchsorted(recs["exit_bar"], self.day_starts[d:d_end + 1], side="left").tolist()
                cuts[-1] = len(recs)
                by_node = [np.flatnonzero(recs["node"] == n).tolist() for n in range(len(self.plan.entries))]
                results = []
                for k, day in enumerate(range(d, d_end)):
                    i, j = cuts[k], cuts[k + 1]
                    open_now = self._open_at(day, recs, by_node, j, state, day == d_end - 1)
                    results.append(self._block_day_result(day, cols, i, j, open_now, emitted, events))
            for k, result in enumerate(results):
                if k and should_stop is not None and should_stop():
                    parts.append(recs[:cuts[k]])
                    return True, done
                on_day(result)
                done += 1
            parts.append(recs)
            d = d_end
        return False, done

    def _open_at(self, d: int, recs: np.ndarray, by_node: list[list[int]], j: int, state,
                 block_end: bool) -> list[tuple[int, np.void]]:
        """Positions open at the close of day d, by entry node: the state's at a block's end.
        Within a block (records in close order, j = the first closed after day d): a node's
        next record after j if it had filled by then (a node holds one position at a time),
        else the position the state still holds, if it had."""
        if block_end:
            return self._open_positions(state, 0)
        close_bar = int(self.day_starts[d + 1]) - 1
        pos = state.positions
        found = []
        for node, idx in enumerate(by_node):
            # bisect on lists: numpy calls that let go of the GIL wait to get it back while the
            # day-file threads hold it.
            k = bisect_left(idx, j)
            if k < len(idx):
                rec = recs[idx[k]]
                if rec["entry_bar"] <= close_bar:
                    found.append((node, rec))
            elif pos[node]["qty"] != 0 and pos[node]["entry_bar"] <= close_bar:
                found.append((node, pos[node]))
        return found

    def _block_day_result(self, d: int, cols, i: int, j: int, open_now, emitted: set[str],
                          with_events: bool) -> DayResult:
        s, e = int(self.day_starts[d]), int(self.day_starts[d + 1])
        trades = cols.trades[i:j]
        events = self.builder.day_events(cols, i, j, open_now) if with_events else {}
        fresh = [ev for k, ev in events.items() if k not in emitted]
        emitted.update(ev["execution_id"] for ev in fresh)
        fresh.sort(key=_timestamp)
        return DayResult(
            date=day_str(self.day_dates[d]), day_number=d - self.first_day + 1, total_days=self.total_days,
            trades=trades, events=events, new_events=fresh, summary=day_summary_from(cols.pnl_money[i:j],
                                                                                  cols.commission_money[i:j]),
            equity=float(self.equity_array[e - 1]), open_positions=[self._position_dict(k, p, e - 1) for k, p in open_now],
            ticks=[], records=cols.recs[i:j], first_bar=s, last_bar=e - 1)

    def _open_positions(self, state, bar: int) -> list[tuple[int, np.void]]:
        pos = state.positions
        return [(k, pos[k]) for k in range(len(pos)) if pos[k]["qty"] != 0]

    def _position_dict(self, node: int, p, bar: int) -> dict:
        price = float(self.bars.close[bar])
        return {
            "position_id": f"{self.plan.entries[node].id}-pos{int(p['pos_seq'])}",
            "symbol": self.symbol,
            "side": "buy" if p["side"] == records.LONG else "sell",
            "quantity": float(p["qty"]),
            "entry_price": money(p["entry_price"]),
            "current_price": money(price),
            "unrealized_pnl": money(p["side"] * p["qty"] * (price - p["entry_price"])),
            "entry_time": self.builder.fmt.iso(int(p["entry_bar"])),
        }

    def _day_result(self, d: int, recs: np.ndarray, state, emitted: set[str]) -> DayResult:
        s, e = int(self.day_starts[d]), int(self.day_starts[d + 1])
        trades = self.builder.trade_dicts(recs)
        if self.legs is not None:
            open_now = self.legs.open_legs(state)
            open_dicts = [self.builder.open_leg_dict(node, li, p, ls, e - 1) for node, li, p, ls in open_now]
            positions = self.builder.positions(recs)
            ticks = self.builder.ticks(s, e, recs, open_now, self.equity_array, self.initial_capital,
                                       self.settings.tick_interval) if self.settings.tick_interval > 0 else []
        else:
            open_now = self._open_positions(state, e - 1)
            open_dicts = [self._position_dict(k, p, e - 1) for k, p in open_now]
            positions = []
            ticks = self._ticks(s, e, recs, open_now) if self.settings.tick_interval > 0 else []
        events = self.builder.node_events(recs, open_now)
        fresh = [ev for k, ev in events.items() if k not in emitted]
        emitted.update(ev["execution_id"] for ev in fresh)
        fresh.sort(key=lambda ev: ev["timestamp"])
        return DayResult(
            date=day_str(self.day_dates[d]), day_number=d - self.first_day + 1, total_days=self.total_days,
            trades=trades, events=events, new_events=fresh, summary=day_summary(trades),
            equity=float(self.equity_array[e - 1]), open_positions=open_dicts,
            ticks=ticks, records=recs, first_bar=s, last_bar=e - 1, positions=positions,
            underlying=self.legs.source.root if self.legs is not None else "")

    def _ticks(self, s: int, e: int, recs: np.ndarray, open_now) -> list[dict]:
        """Every tick_interval-th bar of the day: open positions marked to that bar's close."""
        b, out = self.bars, []
        held = [(int(t["node"]), t, int(t["entry_bar"]), int(t["exit_bar"])) for t in recs]
        held += [(k, p, int(p["entry_bar"]), e) for k, p in open_now]
        for tick, i in enumerate(range(s, e), start=1):
            if (tick - 1) % self.settings.tick_interval:
                continue
            price = float(b.close[i])
            positions, unreal = [], 0.0
            for node, p, eb, xb in held:
                if eb <= i < xb:
                    u = float(p["side"] * p["qty"] * (price - p["entry_price"]))
                    unreal += u
                    positions.append({
                        "position_id": f"{self.plan.entries[node].id}-pos{int(p['pos_seq'])}",
                        "symbol": self.symbol, "side": "buy" if p["side"] == records.LONG else "sell",
                        "quantity": float(p["qty"]), "entry_price": money(p["entry_price"]),
                        "current_price": money(price), "unrealized_pnl": money(u),
                        "entry_time": self.builder.fmt.iso(eb)})
            equity = float(self.inputs.equity[i])
            realized = equity - unreal - self.initial_capital
            out.append({"bar": i, "tick": tick, "timestamp": self.builder.fmt.iso(i), "ltp": price,
                        "open_positions": positions,
                        "pnl_summary": {"realized_pnl": money(realized), "unrealized_pnl": money(unreal),
                                        "total_pnl": money(realized + unreal), "open_trades": len(positions),
                                        "equity": money(equity)}})
        return out

    def _finish(self, trades: np.ndarray, cancelled: bool, days_done: int | None = None) -> RunResult:
        starts = self.day_starts
        if days_done is None:
            days_done = self._days_done(trades) if cancelled else self.total_days
        last_day = self.first_day + days_done
        day_idx = np.arange(self.first_day, last_day)
        closes = starts[day_idx + 1] - 1
        equity = self.equity_array[closes] if len(closes) else np.empty(0)
        equity = np.where(np.isnan(equity), self.initial_capital, equity)
        dates = self.day_dates[day_idx]
        exit_day = np.searchsorted(starts, trades["exit_bar"], side="right") - 1 - self.first_day
        nd = len(day_idx)
        pnl_day = np.bincount(exit_day, weights=trades["pnl"], minlength=nd)[:nd] if len(trades) else np.zeros(nd)
        n_day = np.bincount(exit_day, minlength=nd)[:nd] if len(trades) else np.zeros(nd, np.int64)
        win_day = np.bincount(exit_day[trades["pnl"] > 0], minlength=nd)[:nd] if len(trades) else n_day
        loss_day = np.bincount(exit_day[trades["pnl"] < 0], minlength=nd)[:nd] if len(trades) else n_day
        day_stats = {"trades": n_day, "pnl": pnl_day, "winning_trades": win_day, "losing_trades": loss_day}

        notional = trades["qty"] * trades["entry_price"]
        with np.errstate(invalid="ignore", divide="ignore"):
            ret_pct = np.where(notional > 0, 100.0 * trades["pnl"] / notional, 0.0)
        dur = (self.bars.ts[trades["exit_bar"]] - self.bars.ts[trades["entry_bar"]]) / 60e9
        n_bars = max(1, (int(closes[-1]) + 1 - self.first_bar) if nd else 1)
        held = np.zeros(len(self.bars) + 1, np.int64)
        np.add.at(held, trades["entry_bar"], 1)
        np.add.at(held, trades["exit_bar"] + 1, -1)
        exposure = float((np.cumsum(held)[self.first_bar:self.first_bar + n_bars] > 0).sum()) / n_bars
        first_price = float(self.bars.close[self.first_bar])
        last_price = float(self.bars.close[closes[-1]]) if nd else first_price
        metrics = compute_metrics(
            equity=np.ascontiguousarray(equity, np.float64), dates=np.ascontiguousarray(dates, np.int64),
            trade_pnl=np.ascontiguousarray(trades["pnl"]), trade_return_pct=np.ascontiguousarray(ret_pct),
            trade_duration_minutes=np.ascontiguousarray(dur, np.float64), exposure_fraction=exposure,
            initial_capital=self.initial_capital, first_price=first_price, last_price=last_price)
        base = summary_from_records(trades)
        final_equity = float(equity[-1]) if nd else self.initial_capital
        summary = {
            "total_days": nd,
            "total_trades": base["total_trades"],
            "total_pnl": base["total_pnl"],
            "win_rate": base["win_rate"],
            "largest_win": money(float(trades["pnl"].max()) if len(trades) and trades["pnl"].max() > 0 else 0.0),
            "largest_loss": money(float(trades["pnl"].min()) if len(trades) and trades["pnl"].min() < 0 else 0.0),
            "winning_trades": base["winning_trades"],
            "losing_trades": base["losing_trades"],
            "commission": base["commission"],
            "initial_capital": money(self.initial_capital),
            "final_equity": money(final_equity),
        }
        return RunResult(self.plan, self.symbol, trades, dates, equity, metrics, summary, day_stats, cancelled)

    def _days_done(self, trades: np.ndarray) -> int:
        # Days whose last bar has an equity value were fully run.
        closes = self.day_starts[self.first_day + 1:] - 1
        return int((~np.isnan(self.equity_array[closes])).sum())
