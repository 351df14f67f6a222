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
from dataclasses import dataclass, field

import numpy as np

from hindsight.v1 import strategy_pb2

from services.engine.core.backtest import Backtest, RunError, RunSettings, day_str
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
        bt = Backtest(compile_strategy(base), bars, settings, symbol or bars.symbol, options=options)
        dates = [day_str(d) for d in bt.day_dates[bt.first_day:]]
        return cls(bars=bars, symbol=bt.symbol, settings=settings, options=options, dates=dates)


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


def evaluate(context: SweepContext, strategies: list[strategy_pb2.Strategy]) -> list[TrialResult]:
    """Every strategy's TrialResult, in order."""
    return [evaluate_one(context, s) for s in strategies]
