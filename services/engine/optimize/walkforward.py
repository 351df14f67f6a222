"""Walk-forward analysis: optimize on a training window, run the winner on the test window after
it, move on; judge the strategy by the test windows stitched together.

Windows are counted in trading days of the run's calendar. Rolling windows keep their training
length; anchored ones all start at the first day (each trains on everything before its test).
Walk-forward efficiency (R. Pardo, "The Evaluation and Optimization of Trading Strategies",
2nd ed., 2008, ch. 11) is the winner's annualized out-of-sample return over its annualized
in-sample return: near 1 the optimization found something that lasts, near 0 or below it fit
noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Sequence

import numpy as np

from services.engine.core.spec import Problem, SpecError

TRADING_DAYS = 252


@dataclass(frozen=True)
class Window:
    index: int
    train: tuple[date, date]      # first and last day, inclusive
    test: tuple[date, date]


def windows(days: Sequence[date], train_days: int, test_days: int, step_days: int = 0,
            anchored: bool = False) -> list[Window]:
    """The windows over `days` (sorted trading days). `step_days` 0: the test length, so the
    test windows tile the out-of-sample period without overlap. SpecError (field paths under
    `walk_forward.`) when the settings are invalid or leave no window."""
    problems = []
    if train_days < 1:
        problems.append(Problem("walk_forward.train_days", "must be at least 1 trading day"))
    if test_days < 1:
        problems.append(Problem("walk_forward.test_days", "must be at least 1 trading day"))
    if step_days < 0:
        problems.append(Problem("walk_forward.step_days", "must be >= 0 (0: the test length)"))
    if problems:
        raise SpecError(problems)
    step = step_days or test_days
    out: list[Window] = []
    start = 0
    while start + train_days + test_days <= len(days):
        first = 0 if anchored else start
        train_end = start + train_days - 1
        test_end = train_end + test_days
        out.append(Window(len(out), (days[first], days[train_end]), (days[train_end + 1], days[test_end])))
        start += step
    if not out:
        raise SpecError([Problem("walk_forward.train_days", f"{len(days)} trading days hold no window of "
                                                            f"{train_days} training + {test_days} test days: "
                                                            "shorten them or widen the date range")])
    return out


def annualized_return(daily_returns: np.ndarray) -> float:
    r = np.asarray(daily_returns, dtype=float)
    if r.size == 0:
        return float("nan")
    growth = float(np.prod(1.0 + r))
    if growth <= 0:
        return -1.0
    return growth ** (TRADING_DAYS / r.size) - 1.0


@dataclass(frozen=True)
class WalkForwardReport:
    oos_returns: np.ndarray       # the test windows' daily returns, stitched in order
    oos_equity: np.ndarray        # equity from 1.0 over them
    oos_annualized: float
    efficiency: float             # mean over windows of OOS / IS annualized return (Pardo's WFE)
    per_window: list[float]       # each window's efficiency


def report(in_sample: Sequence[np.ndarray], out_of_sample: Sequence[np.ndarray]) -> WalkForwardReport:
    """The stitched out-of-sample record and the walk-forward efficiency, from each window's
    winner's daily returns in its training window and in its test window."""
    if len(in_sample) != len(out_of_sample) or not in_sample:
        raise ValueError("one in-sample and one out-of-sample series per window")
    per = []
    for is_r, oos_r in zip(in_sample, out_of_sample):
        a_is, a_oos = annualized_return(is_r), annualized_return(oos_r)
        per.append(a_oos / a_is if a_is > 0 else float("nan"))  # a losing winner has no efficiency
    stitched = np.concatenate([np.asarray(r, dtype=float) for r in out_of_sample])
    finite = [e for e in per if e == e]
    return WalkForwardReport(stitched, np.cumprod(1.0 + stitched), annualized_return(stitched),
                             float(np.mean(finite)) if finite else float("nan"), per)
