"""Evaluate many trials of one sweep: metrics and daily returns per trial, no trade objects.

`SweepContext.build(...)` fixes what every trial shares: the bars (sliced with the warm-up
the largest parameter values need, resampled once), the run's dates and cost settings.
`evaluate(context, strategies)` returns one `TrialResult` per strategy.

Every trial's numbers are those `Backtest` gives for the same strategy and settings (the
strategies carry `execution.warmup_bars`, so a trial opened as a backtest starts its
indicators from the same bar).
"""

from __future__ import annotations

import math
import threading
import uuid
from dataclasses import dataclass, field

import numpy as np

from hindsight.v1 import strategy_pb2

from services.engine.core.backtest import Backtest, RunError, RunSettings, day_str, frame
from services.engine.core.bars import Bars
from services.engine.core.metrics import METRIC_FIELDS
from services.engine.core.spec import SpecError, compile_strategy


@dataclass
class TrialResult:
    """One trial: `metrics` keyed as hindsight.v1.Metrics; `daily_returns` float64[D] (the
    run's days, the same D for every trial of a context); `error` says why a trial could not
    run (its metrics are then NaN)."""

    metrics: dict[str, float]
    daily_returns: np.ndarray = field(repr=False)
    error: str = ""


@dataclass
class SweepContext:
    """What a sweep's trials share; picklable (sent once to each Dask worker)."""

    bars: Bars
    symbol: str
    settings: RunSettings
    options: object = None        # options.runner.OptionSource for strategies with legs
    dates: list[str] = field(default_factory=list)   # the run's trading days, YYYY-MM-DD
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # names its kernel state (see _fast)

    @property
    def days(self) -> int:
        return len(self.dates)

    @property
    def first_day(self) -> str:
        return self.dates[0] if self.dates else ""

    @property
    def last_day(self) -> str:
        return self.dates[-1] if self.dates else ""

    @classmethod
    def build(cls, base: strategy_pb2.Strategy, bars: Bars, settings: RunSettings, symbol: str = "",
              options=None) -> "SweepContext":
        """The context of trials varying `base` (which carries the sweep's warm-up). Raises
        RunError when the range has no data."""
        symbol = symbol or bars.symbol
        _, sliced, first_bar = frame(compile_strategy(base), bars, settings, symbol)
        day_dates, day_starts = sliced.day_bounds()
        first_day = int(np.searchsorted(day_starts, first_bar))
        # Only the bars the runs read (resampled, from the warm-up on): a Backtest on them slices
        # this very range again, and it is all a Dask worker receives.
        return cls(bars=sliced, symbol=symbol, settings=settings, options=options,
                   dates=[day_str(d) for d in day_dates[first_day:]])



def _nan_metrics() -> dict[str, float]:
    return {name: math.nan for name in METRIC_FIELDS}


def daily_returns(equity: np.ndarray, initial_capital: float) -> np.ndarray:
    """Day-over-day returns of the closing equity, from the initial capital (as Metrics does)."""
    curve = np.concatenate(([initial_capital], np.asarray(equity, np.float64)))
    prev = curve[:-1]
    change = curve[1:] - prev
    return np.divide(change, prev, out=np.zeros_like(change), where=prev > 0)


def evaluate_one(context: SweepContext, strategy: strategy_pb2.Strategy) -> TrialResult:
    """The reference: one trial as an ordinary backtest."""
    try:
        bt = Backtest(compile_strategy(strategy), context.bars, context.settings, context.symbol,
                      options=context.options)
        result = bt.run()
    except (SpecError, RunError) as exc:
        return TrialResult(_nan_metrics(), np.full(context.days, np.nan), error=str(exc))
    return TrialResult(dict(result.metrics), daily_returns(result.equity, bt.initial_capital))


# Series the kernel's cache may hold per context (float64 rows the length of the bars).
SERIES_BUDGET = 1 << 30


class _Fast:
    """A context prepared for the sweep kernel: market arrays, day closes, the series cache and
    each lane's scratch."""

    def __init__(self, context: SweepContext, plan):
        self.timeframe, b, self.first_bar = frame(plan, context.bars, context.settings, context.symbol)
        self.bars = b
        day_dates, starts = b.day_bounds()
        first_day = int(np.searchsorted(starts, self.first_bar))
        self.closes = np.ascontiguousarray(starts[first_day + 1:] - 1, np.int64)
        self.day_starts = np.ascontiguousarray(starts, np.int64)
        dates = day_dates[first_day:].astype(np.int64)
        self.times = np.concatenate(([dates[0] - 1], dates)).astype(np.float64) if len(dates) else np.zeros(1)
        self.day = np.ascontiguousarray(b.day, np.int64)
        self.specs: dict[str, tuple[str, dict, str | None]] = {}
        from .sweep_kernel import SeriesCache

        self.cache = SeriesCache(b, self.specs, SERIES_BUDGET)
        self.square_offs: dict[float, np.ndarray] = {}
        self.scratch: dict[tuple, tuple] = {}

    def square_off(self, minute: float) -> np.ndarray:
        from services.engine.core.backtest import _square_off_bars

        if minute not in self.square_offs:
            self.square_offs[minute] = _square_off_bars(self.bars, minute)
        return self.square_offs[minute]

    def lanes_scratch(self, E: int, X: int, depth: int) -> tuple:
        import numba

        from services.engine.core.records import trade_dt

        from .sweep_kernel import TRADE_SCRATCH

        key = (E, X, depth)
        if key not in self.scratch:
            self.scratch.clear()
            L, n = numba.get_num_threads(), len(self.bars)
            self.scratch[key] = (
                L, np.zeros((L, n, E), np.bool_), np.zeros((L, n, X), np.bool_), np.zeros((L, depth, n), np.bool_),
                np.full((L, n, E), np.nan), np.full((L, n), np.nan), np.zeros((L, TRADE_SCRATCH), trade_dt),
                np.zeros((L, n + 16, 2), np.int64), np.zeros((L, 16), np.float64), np.zeros((L, n + 1), np.int64))
        return self.scratch[key]


# The kernel's state of the sweep this process computes now, by context key: kept apart from
# the context object, so a Dask worker that gets the context again (its scheduler drops copies
# no pending task needs) keeps its series cache. One sweep at a time per process: a new one
# evicts the last (up to a GiB of series).
_FAST: dict[str, _Fast] = {}
_FAST_LOCK = threading.Lock()


def _fast(context: SweepContext, plan) -> _Fast:
    with _FAST_LOCK:
        fast = _FAST.get(context.key)
        if fast is None:
            _FAST.clear()
            fast = _FAST[context.key] = _Fast(context, plan)
        return fast


def fast_state(context: SweepContext) -> _Fast | None:
    """The kernel's state for this context in this process, if it was built."""
    return _FAST.get(context.key)


def release(context: SweepContext) -> None:
    """Drop this context's kernel state here (its series cache) once its sweep is over."""
    with _FAST_LOCK:
        _FAST.pop(context.key, None)


def evaluate(context: SweepContext, strategies: list[strategy_pb2.Strategy]) -> list[TrialResult]:
    """Every strategy's TrialResult, in order: the trials the sweep kernel can run (strategies on
    the underlying, the context's timeframe) in one parallel call, the rest as backtests."""
    from .sweep_kernel import Unsupported, compile_trial

    out: list[TrialResult | None] = [None] * len(strategies)
    compiled = []
    for k, s in enumerate(strategies):
        try:
            plan = compile_strategy(s)
        except SpecError as exc:
            out[k] = TrialResult(_nan_metrics(), np.full(context.days, np.nan), error=str(exc))
            continue
        ex, st = plan.execution, context.settings
        capital = float(st.initial_capital or ex.initial_capital)
        commission = ex.commission_pct if st.commission_pct is None else st.commission_pct
        slippage = ex.slippage_pct if st.slippage_pct is None else st.slippage_pct
        timeframe = st.timeframe or ex.timeframe
        ok = (capital > 0 and math.isfinite(capital) and 0 <= commission < 100 and 0 <= slippage < 100
              and not plan.has_legs and context.days > 0)
        if ok:
            fast = _fast(context, plan)
            ok = not timeframe or timeframe == fast.timeframe
        if ok:
            try:
                compiled.append((k, compile_trial(plan, capital, commission, slippage)))
            except Unsupported:
                ok = False
        if not ok:
            out[k] = evaluate_one(context, s)
    if compiled:
        # One kernel call per shape (a shape is the same for every trial of a sweep).
        by_shape: dict[tuple, list] = {}
        for k, c in compiled:
            by_shape.setdefault((c.shape, c.prog_i.shape[0], c.depth), []).append((k, c))
        fast = fast_state(context) or _fast(context, compile_strategy(strategies[compiled[0][0]]))
        for group in by_shape.values():
            for k, result in _run_group(fast, group):
                out[k] = result
    return [r for r in out if r is not None]


def _run_group(fast: _Fast, group: list) -> list[tuple[int, TrialResult]]:
    """Trials of one shape through the kernel, in batches whose series fit the cache."""
    from . import sweep_kernel as sk

    done = []
    start = 0
    while start < len(group):
        # As many trials as the cache can serve at once.
        keys: set[str] = set()
        stop = start
        while stop < len(group):
            more = keys | set(group[stop][1].keys) | _sources(group[stop][1].keys, fast)
            if len(more) > fast.cache.capacity - 4 and stop > start:
                break
            keys = more
            stop += 1
        batch = group[start:stop]
        start = stop
        for _, c in batch:
            _register(c, fast)
        rows = fast.cache.bind(set().union(*(set(c.keys) for _, c in batch)))
        T = len(batch)
        first = batch[0][1]
        P, E, X = first.prog_i.shape[0], first.nodes.shape[0], first.exit_targets.shape[0]
        prog_i = np.empty((T, P, 6), np.int64)
        prog_f = np.empty((T, P, 2), np.float64)
        node_start = np.empty((T, E + X + 1), np.int64)
        nodes = np.empty((T, E), first.nodes.dtype)
        targets = np.empty((T, X, E), np.bool_)
        atr = np.full((T, E), -1, np.int64)
        minutes = sorted({c.square_off for _, c in batch if c.square_off is not None})
        sq = np.zeros((max(1, len(minutes)), len(fast.bars)), np.bool_)
        for u, m in enumerate(minutes):
            sq[u] = fast.square_off(m)
        sq_bars = [np.flatnonzero(row) for row in sq]
        square_off_at = np.concatenate(([0], np.cumsum([len(r) for r in sq_bars]))).astype(np.int64)
        square_bars = np.concatenate(sq_bars).astype(np.int64) if sq_bars else np.zeros(0, np.int64)
        sq_index = np.zeros(T, np.int64)
        fill = np.empty(T, np.bool_)
        intraday = np.empty(T, np.bool_)
        commission = np.empty(T)
        slippage = np.empty(T)
        capital = np.empty(T)
        for t, (_, c) in enumerate(batch):
            slots = np.array([rows[key] for key in c.keys] or [0], np.int64)
            pi = c.prog_i.copy()
            for col in (2, 4):
                ref = pi[:, col]
                use = (pi[:, 0] == sk.CMP) & (ref >= 0)
                pi[use, col] = slots[ref[use]]
            prog_i[t], prog_f[t], node_start[t] = pi, c.prog_f, c.node_start
            nodes[t], targets[t] = c.nodes, c.exit_targets
            for e, key in enumerate(c.atr_keys):
                if key is not None:
                    atr[t, e] = rows[key]
            sq_index[t] = minutes.index(c.square_off) if c.square_off is not None else 0
            intraday[t] = c.square_off is not None
            fill[t], commission[t], slippage[t], capital[t] = c.fill_at_close, c.commission, c.slippage, c.capital
        L, entry, exit_, stack, stop_atr, equity, trades, spans, acc, busy = fast.lanes_scratch(E, X, first.depth)
        metrics = np.empty((T, sk.N_METRICS))
        returns = np.empty((T, len(fast.closes)))
        b = fast.bars
        with sk._LOCK:
            sk.sweep_nb(fast.cache.matrix, prog_i, prog_f, node_start, first.depth, nodes, targets, atr, sq_index, sq,
                        fill, commission, slippage, intraday, capital, b.open, b.high, b.low, b.close, fast.day, b.ts,
                        fast.closes, fast.times, fast.first_bar, L, entry, exit_, stack, stop_atr, equity, trades,
                        spans, acc, metrics, returns, busy, fast.day_starts, square_bars, square_off_at)
        for t, (k, _) in enumerate(batch):
            row = metrics[t].tolist()
            m = {name: (int(v) if name in _INT_METRICS else float(v)) for name, v in zip(METRIC_FIELDS, row)}
            done.append((k, TrialResult(m, returns[t].copy())))
    return done


_INT_METRICS = frozenset({"max_consecutive_wins", "max_consecutive_losses", "total_trades"})


def _register(c, fast: _Fast) -> None:
    """Tell the cache how to compute the indicator series this trial names."""
    for key, spec in c.indicator_specs.items():
        fast.specs.setdefault(key, spec)


def _sources(keys: list[str], fast: _Fast) -> set[str]:
    return set()


def warmup(bars) -> None:
    """Load (or compile) the sweep kernel for the common shapes on a few days of `bars`, so
    that an optimization's first trial does not wait for it."""
    from services.engine.core.spec import parse_strategy_json

    from .sweep_kernel import warmup_strategies

    small = bars.slice(max(0, len(bars) - 2_000), len(bars))
    for text in warmup_strategies():
        strategy = parse_strategy_json(text)
        evaluate(SweepContext.build(strategy, small, RunSettings()), [strategy, strategy])
