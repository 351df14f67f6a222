"""One optimization, from its config to its events and result.

    opt = Optimization.prepare(config, catalog)      # every check, before any work
    opt.started()                                    # the first event's payload
    outcome = opt.run(emit, state_dir=folder, recorded=events_already_logged, should_stop=...)

`prepare` validates the strategy, the space, the method, the objectives, the filters and the
walk-forward settings, naming each problem by its field path in the request
(`config.space.parameters[0].path`, …), and loads the data. `run` proposes parameter sets
(samplers.Proposer), has an executor compute them in chunks (executor.py, sweep.py), and
hands `emit` the events as trials finish: `trial_completed`, `best_updated`,
`window_completed`. The caller (the job manager) stamps and logs them, and writes the terminal
event from the returned Outcome.

A restart is continued from `recorded` (the events of the log): their trials are taught to
the sampler and never computed again. Each trial's daily returns, which the overfitting
statistics need, are kept in `state_dir` (written before the trial's event is emitted).
"""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from hindsight.v1 import optimization_pb2 as opb
from hindsight.v1 import results_pb2, strategy_pb2

from services.engine.core.backtest import RunSettings, day_str
from services.engine.core.metrics import METRIC_FIELDS
from services.engine.core.spec import Problem, SpecError, compile_strategy, valid_timeframe

from . import overfitting, walkforward
from .executor import EmbeddedExecutor, Executor
from .samplers import METHODS, Proposer
from .space import DEFAULT_GRID_CAP, SpacePlan, compile_space
from .sweep import SweepContext, TrialResult, release

DIRECTIONS = ("maximize", "minimize")
DEFAULT_OBJECTIVE = ("sharpe", "maximize")
DEFAULT_TRIALS = 100
MAX_TRIALS = 1_000_000
MAX_TOP_K = 100
DEFAULT_TOP_K = 10
MAX_CHUNK = 256        # trials per executor task, at most
MAX_WINDOWS = 500
PBO_CELLS = 2_000_000  # CSCV combinations × trials evaluated at most (beyond: sampled combinations)
# A trial_completed carries these metrics beside the objectives (the rest: GetOptimization,
# the download).
_INT_METRICS = frozenset({"max_consecutive_wins", "max_consecutive_losses", "total_trades"})


@dataclass
class Outcome:
    status: str                                   # "completed" | "cancelled"
    result: opb.OptimizationResult | None
    progress: opb.OptimizationProgress


@dataclass
class _Scored:
    """A finished trial as the optimizer keeps it."""
    number: int                   # 1-based, per window
    values: dict[str, Any]
    objectives: list[float]
    feasible: bool
    metrics: dict[str, float]
    window: int = 0

    def message(self) -> opb.Trial:
        t = opb.Trial(number=self.number, feasible=self.feasible, window=self.window,
                      objective_values=self.objectives, metrics=metrics_message(self.metrics))
        t.parameters.update(self.values)
        return t


def metrics_message(metrics: dict[str, float]) -> results_pb2.Metrics:
    m = results_pb2.Metrics()
    for k, v in metrics.items():
        if v == v:  # NaN: left unset (JSON has no NaN)
            setattr(m, k, int(v) if k in _INT_METRICS else float(v))
    return m


def _values(s: struct_pb2.Struct) -> dict[str, Any]:
    out = {}
    for k, v in json_format.MessageToDict(s).items():
        out[k] = int(v) if isinstance(v, float) and v.is_integer() and not isinstance(v, bool) else v
    return out


def _parse_date(text: str, at: str, problems: list[Problem]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(Problem(at, f"'{text[:40]}' is not a date: use YYYY-MM-DD"))
        return None


@dataclass
class _Window:
    index: int                    # 1-based; 0: the one sweep of a plain optimization
    context: SweepContext
    test: SweepContext | None = None
    train: tuple[str, str] = ("", "")
    test_dates: tuple[str, str] = ("", "")


@dataclass
class Optimization:
    config: opb.OptimizationConfig
    space: SpacePlan
    base: strategy_pb2.Strategy                   # with the overrides and the sweep's warm-up
    objectives: list[tuple[str, str]]
    filters: list[tuple[str, float, float]]
    trials_per_window: int
    top_k: int
    windows: list[_Window]
    executor: Executor
    first_date: str
    last_date: str
    _grid: list[dict[str, Any]] | None = None
    _returns_rows: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    # ---- preparation ---------------------------------------------------------------------
    @classmethod
    def prepare(cls, config: opb.OptimizationConfig, catalog, *, executor: Executor | None = None) -> "Optimization":
        """Check everything and load the data. SpecError lists every problem with its field
        path (from the request: `config.…`); RunError / catalog.UnknownDataset for data."""
        problems: list[Problem] = []
        c = config
        if not c.HasField("strategy"):
            problems.append(Problem("config.strategy", "required: the strategy whose parameters are swept"))
        if not c.HasField("space") or not c.space.parameters:
            problems.append(Problem("config.space.parameters", "required: at least one parameter to vary, e.g. "
                                    "{name: 'fast', path: 'indicators[0].period', int_range: {low: 5, high: 50}}"))
        method = c.method or ""
        if method not in METHODS:
            problems.append(Problem("config.method", f"unknown method '{method[:40]}': use one of "
                                                     f"{', '.join(METHODS)}"))
        objectives = []
        for i, o in enumerate(c.objectives):
            if o.metric not in METRIC_FIELDS:
                problems.append(Problem(f"config.objectives[{i}].metric", _metric_fix(o.metric)))
            direction = o.direction or "maximize"
            if direction not in DIRECTIONS:
                problems.append(Problem(f"config.objectives[{i}].direction",
                                        f"'{o.direction[:40]}': use maximize or minimize"))
            objectives.append((o.metric, direction))
        if not objectives:
            objectives = [DEFAULT_OBJECTIVE]
        filters = []
        for i, f in enumerate(c.filters):
            if f.metric not in METRIC_FIELDS:
                problems.append(Problem(f"config.filters[{i}].metric", _metric_fix(f.metric)))
            lo = f.min if f.HasField("min") else -math.inf
            hi = f.max if f.HasField("max") else math.inf
            if not f.HasField("min") and not f.HasField("max"):
                problems.append(Problem(f"config.filters[{i}]", "give min, max or both"))
            elif lo > hi or lo != lo or hi != hi:
                problems.append(Problem(f"config.filters[{i}].min", f"min {lo:g} is above max {hi:g}"))
            filters.append((f.metric, lo, hi))
        if not 0 <= c.max_trials <= MAX_TRIALS:
            problems.append(Problem("config.max_trials", f"{c.max_trials}: use 1 to {MAX_TRIALS:,} (0: the default, "
                                                         f"{DEFAULT_TRIALS}; the whole grid for grid)"))
        if not 0 <= c.top_k <= MAX_TOP_K:
            problems.append(Problem("config.top_k", f"{c.top_k}: use 1 to {MAX_TOP_K} (0: {DEFAULT_TOP_K})"))
        if c.population_size and not 2 <= c.population_size <= 10_000:
            problems.append(Problem("config.population_size", f"{c.population_size}: use 2 to 10,000 (0: 50)"))
        if not 0 <= c.grid_cap <= DEFAULT_GRID_CAP:
            problems.append(Problem("config.grid_cap", f"{c.grid_cap}: use 1 to {DEFAULT_GRID_CAP:,} (0: the maximum)"))
        if not c.symbol:
            problems.append(Problem("config.symbol", "required: a dataset, e.g. SIM-NIFTY (ListDatasets names them)"))
        elif not catalog.has(c.symbol):
            known = ", ".join(d.symbol for d in catalog.list())
            problems.append(Problem("config.symbol", f"unknown dataset '{c.symbol[:200]}' (known: {known})"))
        if c.timeframe and not valid_timeframe(c.timeframe):
            problems.append(Problem("config.timeframe", f"unknown timeframe '{c.timeframe[:20]}': use e.g. 1m, 5m, 1h, 1d"))
        for name in ("initial_capital", "commission_pct", "slippage_pct"):
            v = getattr(c, name)
            if not (v >= 0 and math.isfinite(v)) or (name != "initial_capital" and v >= 100):
                problems.append(Problem(f"config.{name}", f"{v}: must be >= 0" + (" and < 100 (percent)"
                                                                                    if name != "initial_capital" else "")))
        start = _parse_date(c.start_date, "config.start_date", problems)
        end = _parse_date(c.end_date, "config.end_date", problems)
        if start and end and start > end:
            problems.append(Problem("config.end_date", f"{end} is before start_date {start}"))
        if c.HasField("walk_forward"):
            wf = c.walk_forward
            for name in ("train_days", "test_days"):
                if getattr(wf, name) < 1:
                    problems.append(Problem(f"config.walk_forward.{name}", "must be at least 1 trading day"))
            if wf.step_days < 0:
                problems.append(Problem("config.walk_forward.step_days", "must be >= 0 (0: test_days)"))
        base = strategy_pb2.Strategy()
        base.CopyFrom(c.strategy)
        ex = base.execution
        if c.initial_capital:
            ex.initial_capital = c.initial_capital
        if c.commission_pct:
            ex.commission_pct = c.commission_pct
        if c.slippage_pct:
            ex.slippage_pct = c.slippage_pct
        if c.timeframe:
            ex.timeframe = c.timeframe
        space = None
        if c.HasField("strategy"):
            try:
                compile_strategy(base)
            except SpecError as exc:
                problems += [Problem(f"config.strategy.{p.field}" if p.field else "config.strategy", p.description)
                             for p in exc.problems]
            else:
                try:
                    space = compile_space(c.space, base)
                except SpecError as exc:
                    problems += [Problem(f"config.{p.field}" if p.field else "config.space", p.description)
                                 for p in exc.problems]
        if problems or space is None:
            raise SpecError(problems)
        grid = None
        if method == "grid":
            try:
                grid = list(space.grid(c.grid_cap or DEFAULT_GRID_CAP))
            except SpecError as exc:
                raise SpecError([Problem(f"config.{p.field}", p.description) for p in exc.problems]) from None
            if not grid:
                raise SpecError([Problem("config.space.constraints", "no parameter set of the grid meets the "
                                                                     "constraints: loosen them or widen the ranges")])
            n_trials = min(len(grid), c.max_trials) if c.max_trials else len(grid)
        else:
            n_trials = c.max_trials or DEFAULT_TRIALS
        base.execution.warmup_bars = _sweep_warmup(space, base)

        bars = catalog.load(c.symbol)  # UnknownDataset names the symbols there are
        settings = RunSettings(start=start, end=end)
        options = None
        if compile_strategy(base).has_legs:
            from services.engine.options.runner import source_for

            options = source_for(catalog, c.symbol)
        windows = [_Window(0, SweepContext.build(base, bars, settings, c.symbol, options))]
        if c.HasField("walk_forward"):
            wf = c.walk_forward
            days = catalog.trading_days(c.symbol, start, end)
            try:
                plan = walkforward.windows(days, wf.train_days, wf.test_days, wf.step_days, wf.anchored)
            except SpecError as exc:
                raise SpecError([Problem(f"config.{p.field}", p.description) for p in exc.problems]) from None
            if len(plan) > MAX_WINDOWS:
                raise SpecError([Problem("config.walk_forward.step_days", f"{len(plan)} windows: at most "
                                         f"{MAX_WINDOWS}; use a larger step or test_days")])
            windows = []
            for w in plan:
                train = SweepContext.build(base, bars, RunSettings(start=w.train[0], end=w.train[1]), c.symbol,
                                           options)
                test = SweepContext.build(base, bars, RunSettings(start=w.test[0], end=w.test[1]), c.symbol,
                                          options)
                windows.append(_Window(w.index + 1, train, test, (w.train[0].isoformat(), w.train[1].isoformat()),
                                       (w.test[0].isoformat(), w.test[1].isoformat())))
        first = windows[0].context
        return cls(config=c, space=space, base=base, objectives=objectives, filters=filters,
                   trials_per_window=n_trials, top_k=c.top_k or DEFAULT_TOP_K, windows=windows,
                   executor=executor or EmbeddedExecutor(), first_date=first.first_day,
                   last_date=(windows[-1].test or windows[-1].context).last_day, _grid=grid)

    def __repr__(self) -> str:
        return (f"Optimization({self.config.method}, {self.config.symbol}, {self.total_trials} trials, "
                f"{len(self.windows)} window(s))")

    @property
    def total_trials(self) -> int:
        return self.trials_per_window * len(self.windows)

    @property
    def total_windows(self) -> int:
        return len(self.windows) if self.walk_forward else 0

    @property
    def walk_forward(self) -> bool:
        return self.config.HasField("walk_forward")

    def started(self) -> opb.OptimizationStarted:
        return opb.OptimizationStarted(
            config=self.config, total_trials=self.total_trials, parameters=self.space.names,
            objectives=[f"{m}:{d}" for m, d in self.objectives], first_date=self.first_date,
            last_date=self.last_date, total_windows=self.total_windows, base_strategy=self.base)

    def strategy(self, values: dict[str, Any]) -> strategy_pb2.Strategy:
        """The complete strategy of a trial: StartBacktest with it (on the same symbol and dates)
        gives the numbers the trial recorded."""
        return _apply(self.space, self.base, values)

    # ---- running ---------------------------------------------------------------------------
    def run(self, emit: Callable[[list[opb.OptimizationEvent]], None], *, state_dir: Path,
            recorded: Sequence[opb.OptimizationEvent] = (),
            should_stop: Callable[[], bool] = lambda: False) -> Outcome:
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        started_at = time.monotonic()
        progress = _Progress(self.total_trials, self.total_windows, started_at)
        done_windows: dict[int, opb.WalkForwardWindow] = {}
        old_trials: dict[int, list[opb.Trial]] = {}
        for ev in recorded:
            kind = ev.WhichOneof("event")
            if kind == "trial_completed":
                old_trials.setdefault(ev.trial_completed.trial.window, []).append(ev.trial_completed.trial)
            elif kind == "window_completed":
                done_windows[ev.window_completed.window.index] = ev.window_completed.window
        progress.trials = sum(len(v) for v in old_trials.values())
        progress.windows = len(done_windows)

        results: list[opb.WalkForwardWindow] = []
        is_returns, oos_returns = [], []
        last: _SweepOutcome | None = None
        for w in self.windows:
            if w.index in done_windows and self.walk_forward:
                results.append(done_windows[w.index])
                is_returns.append(_ReturnsLog.first(state_dir / f"returns-{w.index}-is.bin", w.context.days))
                oos_returns.append(_ReturnsLog.first(state_dir / f"returns-{w.index}-oos.bin", w.test.days))
                continue
            sweep = self._sweep(w, emit, state_dir, old_trials.get(w.index, []), should_stop, progress)
            if sweep is None:
                return Outcome("cancelled", None, progress.message())
            last = sweep
            if not self.walk_forward:
                break
            window, r_is, r_oos = self._test_window(w, sweep, state_dir)
            results.append(window)
            is_returns.append(r_is)
            oos_returns.append(r_oos)
            progress.windows += 1
            emit([opb.OptimizationEvent(window_completed=opb.WindowCompleted(window=window,
                                                                              progress=progress.message()))])
        result = opb.OptimizationResult()
        if not self.walk_forward:
            assert last is not None
            result.top.extend(t.message() for t in last.top(self.top_k))
            result.pareto_front.extend(t.message() for t in last.front())
            result.overfitting.CopyFrom(last.overfitting())
            best = last.top(1)
            if best:
                result.best_strategy.CopyFrom(self.strategy(best[0].values))
        else:
            result.walk_forward.CopyFrom(self._walk_forward_report(results, is_returns, oos_returns))
            if results and results[-1].HasField("parameters"):
                result.best_strategy.CopyFrom(self.strategy(_values(results[-1].parameters)))
        return Outcome("completed", result, progress.message())

    def _sweep(self, w: _Window, emit, state_dir: Path, old: list[opb.Trial], should_stop,
               progress: "_Progress") -> "_SweepOutcome | None":
        """One sweep (the whole run, or one walk-forward train window). None when stopped."""
        directions = [d for _, d in self.objectives]
        proposer = Proposer(self.space, self.config.method, directions, self.trials_per_window,
                            seed=self.config.seed, population_size=self.config.population_size or 50)
        if self._grid is not None:
            proposer._grid = iter(list(self._grid))
        out = _SweepOutcome(self, w.index)
        returns = dict(_ReturnsLog.read(state_dir / f"returns-{w.index}.bin", w.context.days))
        old = sorted(old, key=lambda t: t.number)
        proposer.restore([(_values(t.parameters), self._tell_value(t.objective_values, t.feasible)) for t in old])
        for t in old:
            out.add(_Scored(t.number, _values(t.parameters), list(t.objective_values), t.feasible,
                            json_format.MessageToDict(t.metrics, preserving_proto_field_name=True), w.index),
                    returns.get(t.number))
        log = _ReturnsLog(state_dir / f"returns-{w.index}.bin", w.context.days)
        try:
            waiting: dict[int, list[int]] = {}      # running trial number → repeats of it
            known: dict[int, _Scored] = {s.number: s for s in out.trials}
            session = self.executor.session(w.context)
            try:
                size = 1
                stop = False

                def chunks():
                    nonlocal size, stop
                    while not proposer.done:
                        if should_stop():
                            stop = True
                            return
                        props = proposer.ask(size)
                        if not props:
                            return
                        size = min(size * 2, MAX_CHUNK)
                        run, repeats = [], []
                        for p in props:
                            if p.repeat_of is None:
                                run.append(p)
                            elif (p.repeat_of + 1) in known:
                                repeats.append(p)
                            else:
                                waiting.setdefault(p.repeat_of + 1, []).append(p.number + 1)
                        if repeats:
                            self._emit_repeats(repeats, known, out, log, emit, progress, w.index)
                        if run:
                            yield [p.number + 1 for p in run], [self.strategy(p.values) for p in run], \
                                [p.values for p in run]

                pending_values: dict[int, dict[str, Any]] = {}

                def keyed():
                    for numbers, strategies, values in chunks():
                        for n, v in zip(numbers, values):
                            pending_values[n] = v
                        yield tuple(numbers), strategies

                for numbers, trial_results in session.map(keyed()):
                    events = []
                    for n, r in zip(numbers, trial_results):
                        scored = self._score(n, pending_values.pop(n), r, w.index)
                        log.append(n, r.daily_returns)
                        proposer.tell(n - 1, self._tell_value(scored.objectives, scored.feasible))
                        known[n] = scored
                        changed = out.add(scored, r.daily_returns)
                        progress.trials += 1
                        events.append(opb.OptimizationEvent(trial_completed=opb.TrialCompleted(
                            trial=scored.message(), progress=progress.message())))
                        for rep in waiting.pop(n, []):
                            copy = _Scored(rep, scored.values, scored.objectives, scored.feasible, scored.metrics,
                                           w.index)
                            log.append(rep, r.daily_returns)
                            out.add(copy, r.daily_returns, repeat=True)
                            progress.trials += 1
                            events.append(opb.OptimizationEvent(trial_completed=opb.TrialCompleted(
                                trial=copy.message(), progress=progress.message())))
                        if changed:
                            events.append(opb.OptimizationEvent(best_updated=opb.BestUpdated(
                                best=[t.message() for t in out.best()])))
                    log.flush()
                    emit(events)
                    if should_stop():
                        return None
                if stop:
                    return None
            finally:
                session.close()
                # The kernel's series cache (up to a GiB) is not needed for the statistics.
                release(w.context)
        finally:
            log.close()
        return out

    def _emit_repeats(self, repeats, known, out, log, emit, progress, window: int) -> None:
        events = []
        for p in repeats:
            first = known[p.repeat_of + 1]
            copy = _Scored(p.number + 1, first.values, first.objectives, first.feasible, first.metrics, window)
            row = out.returns.get(first.number)
            log.append(copy.number, row if row is not None else np.full(log.days, np.nan))
            out.add(copy, row, repeat=True)
            known[copy.number] = copy
            progress.trials += 1
            events.append(opb.OptimizationEvent(trial_completed=opb.TrialCompleted(
                trial=copy.message(), progress=progress.message())))
        log.flush()
        emit(events)

    def _tell_value(self, objectives: Sequence[float], feasible: bool) -> list[float] | None:
        return list(objectives) if feasible and all(v == v for v in objectives) else None

    def _score(self, number: int, values: dict[str, Any], r: TrialResult, window: int) -> _Scored:
        objectives = [float(r.metrics.get(m, math.nan)) for m, _ in self.objectives]
        feasible = not r.error and all(v == v for v in objectives) and all(
            lo <= r.metrics.get(m, math.nan) <= hi for m, lo, hi in self.filters)
        return _Scored(number, values, objectives, feasible, r.metrics, window)

    def _test_window(self, w: _Window, sweep: "_SweepOutcome", state_dir: Path):
        """Run the train window's winner on the test window."""
        from .sweep import evaluate

        window = opb.WalkForwardWindow(index=w.index, train_start=w.train[0], train_end=w.train[1],
                                       test_start=w.test_dates[0], test_end=w.test_dates[1])
        window.overfitting.CopyFrom(sweep.overfitting())
        best = sweep.top(1)
        if not best:
            return window, None, None
        winner = best[0]
        window.parameters.update(winner.values)
        window.in_sample.CopyFrom(metrics_message(winner.metrics))
        assert w.test is not None
        [oos] = evaluate(w.test, [self.strategy(winner.values)])
        window.out_of_sample.CopyFrom(metrics_message(oos.metrics))
        r_is = sweep.returns.get(winner.number)
        # Kept for the report after a restart (the window's event is written after these).
        with _ReturnsLog(state_dir / f"returns-{w.index}-is.bin", w.context.days) as f:
            f.append(winner.number, r_is)
        with _ReturnsLog(state_dir / f"returns-{w.index}-oos.bin", w.test.days) as f:
            f.append(winner.number, oos.daily_returns)
        return window, r_is, oos.daily_returns

    def _walk_forward_report(self, windows: list[opb.WalkForwardWindow], is_returns, oos_returns
                             ) -> opb.WalkForwardReport:
        rep = opb.WalkForwardReport(windows=windows)
        pairs = [(a, b) for a, b in zip(is_returns, oos_returns) if a is not None and b is not None]
        capital = self.base.execution.initial_capital or 100_000.0
        dates: list[str] = []
        for w in self.windows:
            if w.test is not None:
                dates.extend(w.test.dates)
        if pairs:
            r = walkforward.report([a for a, _ in pairs], [b for _, b in pairs])
            rep.efficiency = r.efficiency
            rep.equity.extend((capital * r.oos_equity).tolist())
            rep.dates.extend(dates[:len(r.oos_equity)])
            curve = capital * r.oos_equity
            from services.engine.core.metrics import compute_metrics

            days = np.array([date.fromisoformat(d).toordinal() - 719163 for d in rep.dates], np.int64)
            if len(days) == len(curve) and len(curve):
                rep.out_of_sample.CopyFrom(metrics_message(compute_metrics(
                    equity=curve, dates=days, trade_pnl=np.zeros(0), trade_return_pct=np.zeros(0),
                    trade_duration_minutes=np.zeros(0), exposure_fraction=0.0, initial_capital=capital,
                    first_price=1.0, last_price=1.0)))
        return rep


def _apply(space: SpacePlan, base: strategy_pb2.Strategy, values: dict[str, Any]) -> strategy_pb2.Strategy:
    from .space import _set

    s = strategy_pb2.Strategy()
    s.CopyFrom(base)
    for p in space.parameters:
        _set(s, p.target, values[p.name])
    return s


def _sweep_warmup(space: SpacePlan, base: strategy_pb2.Strategy) -> int:
    """History the sweep's indicators need: the largest warm-up over the space's corners (each
    parameter at each of its extremes, and all at their highs), doubled for safety. Every
    trial runs with it (Execution.warmup_bars), so all trials share one slice of bars."""
    def warm(values: dict[str, Any]) -> int:
        try:
            return compile_strategy(_apply(space, base, values)).warmup_bars
        except SpecError:
            return 0

    start = {p.name: _extreme(p, "base", base) for p in space.parameters}
    worst = warm(start)
    highs = {p.name: _extreme(p, "high", base) for p in space.parameters}
    worst = max(worst, warm(highs))
    for p in space.parameters:
        for which in ("low", "high"):
            worst = max(worst, warm({**start, p.name: _extreme(p, which, base)}))
    return 2 * worst


def _extreme(p, which: str, base: strategy_pb2.Strategy):
    if p.kind == "choices":
        return p.choices[-1] if which == "high" else p.choices[0]
    if which == "base":
        which = "low"
    v = p.high if which == "high" else p.low
    if p.kind == "int":
        if which == "high" and p.step:
            v = p.low + int((p.high - p.low) // p.step) * p.step
        return int(v)
    return float(v)


def _metric_fix(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, METRIC_FIELDS, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"'{name[:60]}' is not a metric{hint}: use a field of Metrics, e.g. sharpe, total_return_pct, " \
           f"max_drawdown_pct, profit_factor"


class _Progress:
    def __init__(self, total: int, windows: int, started: float):
        self.total, self.total_windows, self.started = total, windows, started
        self.trials = 0
        self.windows = 0
        self._first_count: int | None = None

    def message(self) -> opb.OptimizationProgress:
        p = opb.OptimizationProgress(completed_trials=self.trials, total_trials=self.total,
                                     percentage=round(100.0 * self.trials / self.total, 2) if self.total else 100.0,
                                     completed_windows=self.windows, total_windows=self.total_windows)
        if self._first_count is None:
            self._first_count = self.trials
        done_here = self.trials - self._first_count
        if done_here > 0 and self.trials < self.total:
            rate = done_here / max(1e-6, time.monotonic() - self.started)
            eta = time.time() + (self.total - self.trials) / rate
            p.estimated_completion.FromNanoseconds(int(eta * 1e9))
        return p


class _SweepOutcome:
    """The trials of one sweep: best so far, top-K, front, and the overfitting statistics.
    Each distinct parameter set counts once (a repeat is recorded, but judged as its first)."""

    def __init__(self, opt: Optimization, window: int):
        self.opt = opt
        self.window = window
        self.trials: list[_Scored] = []
        self.returns: dict[int, np.ndarray] = {}
        self.signs = [1.0 if d == "maximize" else -1.0 for _, d in opt.objectives]
        self._seen: set[tuple] = set()
        self._distinct: list[_Scored] = []
        self._best: _Scored | None = None           # one objective
        self._front: list[_Scored] = []             # several

    def add(self, t: _Scored, daily_returns: np.ndarray | None, repeat: bool = False) -> bool:
        """Record a trial; True when the best (or the front) changed."""
        self.trials.append(t)
        if daily_returns is not None and not repeat:
            self.returns[t.number] = daily_returns
        key = tuple(sorted(t.values.items()))
        if key in self._seen:
            return False
        self._seen.add(key)
        self._distinct.append(t)
        if not t.feasible:
            return False
        score = self._score(t)
        if len(self.signs) == 1:
            if self._best is None or score[0] > self._score(self._best)[0]:
                self._best = t
                return True
            return False
        if any(_dominates(self._score(f), score) or self._score(f) == score for f in self._front):
            return False
        self._front = [f for f in self._front if not _dominates(score, self._score(f))] + [t]
        return True

    def _score(self, t: _Scored) -> tuple:
        return tuple(s * v for s, v in zip(self.signs, t.objectives))

    def best(self) -> list[_Scored]:
        if len(self.signs) == 1:
            return [self._best] if self._best is not None else []
        return self.front()

    def top(self, k: int) -> list[_Scored]:
        feasible = [t for t in self._distinct if t.feasible]
        return sorted(feasible, key=lambda t: (-self._score(t)[0], t.number))[:k]

    def front(self) -> list[_Scored]:
        return sorted(self._front, key=lambda t: (-self._score(t)[0], t.number)) if len(self.signs) > 1 else []

    def _unique(self) -> list[_Scored]:
        return self._distinct

    def overfitting(self) -> opb.OverfittingReport:
        """DSR of the winner among the distinct trials, and PBO by CSCV over their daily returns."""
        rep = opb.OverfittingReport(deflated_sharpe=math.nan, expected_max_sharpe=math.nan,
                                    winner_sharpe=math.nan, pbo=math.nan)
        distinct = [t for t in self._unique() if t.number in self.returns]
        rep.trials = len(distinct)
        best = self.top(1)
        if not best or best[0].number not in self.returns or len(distinct) < 1:
            rep.reading = "No feasible trial: nothing to judge."
            return rep
        matrix = np.empty((len(self.returns[distinct[0].number]), len(distinct)))
        for k, t in enumerate(distinct):
            matrix[:, k] = self.returns[t.number]
        sharpes = np.array([overfitting.sharpe(matrix[:, i]) for i in range(matrix.shape[1])])
        dsr = overfitting.deflated_sharpe(self.returns[best[0].number], len(distinct), trial_sharpes=sharpes)
        rep.deflated_sharpe = dsr.probability
        rep.expected_max_sharpe = dsr.expected_max
        rep.winner_sharpe = dsr.sharpe
        if matrix.shape[1] >= 2:
            splits = 16
            while splits > 2 and matrix.shape[0] < 2 * splits:
                splits -= 2
            if matrix.shape[0] >= 2 * splits:
                # All C(16, 8) = 12,870 splits for small sweeps; for large ones a seeded sample of
                # them (at least 1,000: the estimate's standard error stays near 1.5 %).
                combos = max(1_000, PBO_CELLS // matrix.shape[1])
                pbo = overfitting.probability_of_overfitting(matrix, n_splits=splits, max_combinations=combos)
                rep.pbo = pbo.pbo
                rep.cscv_splits = pbo.n_splits
                rep.cscv_combinations = pbo.n_combinations
        rep.reading = _reading(rep)
        return rep



def _dominates(a: tuple, b: tuple) -> bool:
    """a is at least as good everywhere and better somewhere (scores signed: larger is better)."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def _reading(rep: opb.OverfittingReport) -> str:
    parts = []
    d = rep.deflated_sharpe
    if d == d:
        if d >= 0.95:
            parts.append(f"The winner's Sharpe ratio holds up after {rep.trials:,} trials (DSR {d:.2f}): "
                         "unlikely to be luck alone.")
        elif d >= 0.5:
            parts.append(f"After {rep.trials:,} trials the winner's edge is uncertain (DSR {d:.2f}): "
                         "luck could explain it.")
        else:
            parts.append(f"With {rep.trials:,} trials, a Sharpe ratio this high is what luck alone gives "
                         f"(DSR {d:.2f}): expect much less live.")
    p = rep.pbo
    if p == p:
        if p > 0.5:
            parts.append(f"The sweep's pick does worse than the median out of sample {p:.0%} of the time "
                         "(PBO): the optimization mostly fits noise.")
        else:
            parts.append(f"The in-sample pick stays above the median out of sample in {1 - p:.0%} of the "
                         f"splits (PBO {p:.2f}).")
    return " ".join(parts) or "Too few trials or days to judge overfitting."


class _ReturnsLog:
    """Each trial's daily returns, appended as (int64 number, float64[days]) records; written
    before the trial's event, read back after a restart."""

    def __init__(self, path: Path, days: int):
        self.path, self.days = path, days
        self._f = open(path, "ab")

    def append(self, number: int, row: np.ndarray | None) -> None:
        if row is None:
            row = np.full(self.days, np.nan)
        row = np.asarray(row, np.float64)
        if len(row) != self.days:
            row = np.resize(row, self.days) if len(row) else np.full(self.days, np.nan)
        self._f.write(struct.pack("<q", number) + row.tobytes())

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "_ReturnsLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def first(path: Path, days: int) -> np.ndarray | None:
        rows = _ReturnsLog.read(path, days)
        return rows[-1][1] if rows else None

    @staticmethod
    def read(path: Path, days: int) -> list[tuple[int, np.ndarray]]:
        if not path.exists():
            return []
        size = 8 + 8 * days
        data = path.read_bytes()
        out = []
        for off in range(0, len(data) - size + 1, size):  # a torn last record is dropped
            (number,) = struct.unpack_from("<q", data, off)
            out.append((number, np.frombuffer(data, np.float64, days, off + 8).copy()))
        return out


def timestamp_now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


__all__ = ["Optimization", "Outcome", "metrics_message", "day_str"]
