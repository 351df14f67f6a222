"""A StartBacktest request checked in one place: every problem with its field path, or what a
run needs (its plan, settings, days, the config it is stored with).

The servicer only translates: it calls `check_start` and turns `Invalid` into
INVALID_ARGUMENT with google.rpc.BadRequest field violations. Nothing here knows gRPC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from hindsight.v1 import backtest_service_pb2 as pb

from services.engine.core.backtest import RunSettings
from services.engine.core.catalog import Catalog
from services.engine.core.spec import Problem, SpecError, StrategyPlan, compile_strategy, valid_timeframe
from services.engine.quotas import estimate_run_bytes, mib

# Identifiers echoed in errors are cut to this many characters: an id of any length is simply
# not found, and gRPC refuses trailers over 16 KiB (a 5,000-character id, echoed in the message
# and the details, came back as RESOURCE_EXHAUSTED instead of NOT_FOUND).
MAX_ECHOED_ID = 200
# Longest strategy_id a run may carry (it is stored, listed and echoed).
MAX_STRATEGY_ID = 200
MAX_REQUEST_ID = 128


class Invalid(Exception):
    """The request's problems; `prefix` goes before each field path (e.g. "strategy.")."""

    def __init__(self, problems: list[Problem], prefix: str = ""):
        super().__init__(problems[0].description)
        self.problems, self.prefix = problems, prefix


@dataclass(frozen=True)
class StartPlan:
    plan: StrategyPlan
    settings: RunSettings
    days: list[date]
    config: pb.BacktestConfig
    strategy_id: str
    estimated_bytes: int


def parse_date(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid([Problem(field, f"'{text[:40]}' is not a date: use YYYY-MM-DD")]) from None


def check_start(request: pb.StartBacktestRequest, catalog: Catalog, max_run_bytes: int = 0) -> StartPlan:
    """Blocking (it reads the catalog): call it off the event loop."""
    if not request.HasField("strategy"):
        raise Invalid([Problem("strategy", "missing strategy: send a hindsight.v1.Strategy (see examples/strategies/), "
                                           "or leave it out and name one of your saved strategies with strategy_id "
                                           "(and strategy_version)")])
    try:
        plan = compile_strategy(request.strategy)
    except SpecError as exc:
        raise Invalid(exc.problems, "strategy.") from None
    problems: list[Problem] = []
    if not request.symbol:
        problems.append(Problem("symbol", "missing symbol: use a dataset from ListDatasets, e.g. SIM-NIFTY"))
    elif not catalog.has(request.symbol):
        known = ", ".join(d.symbol for d in catalog.list())
        problems.append(Problem("symbol", f"unknown dataset '{request.symbol[:MAX_ECHOED_ID]}' (known: {known})"))
    for name in ("initial_capital", "commission_pct", "slippage_pct"):
        value = getattr(request, name)
        if not math.isfinite(value):
            problems.append(Problem(name, f"{value} is not a number: give a finite value (0: the strategy's own)"))
        elif value < 0:
            problems.append(Problem(name, f"{name} must be >= 0 (0: the strategy's own setting)"))
        elif name != "initial_capital" and value >= 100:
            problems.append(Problem(name, "percentages must be below 100 (0.01 means 0.01 %)"))
    if request.tick_interval < 0:
        problems.append(Problem("tick_interval", "must be >= 0 (0: no tick_update events)"))
    if request.timeframe and not valid_timeframe(request.timeframe):
        problems.append(Problem("timeframe", f"unknown timeframe '{request.timeframe[:40]}': use 1m, 5m, 15m, 1h, 1d"))
    if len(request.request_id) > MAX_REQUEST_ID:
        problems.append(Problem("request_id", f"at most {MAX_REQUEST_ID} characters"))
    if len(request.strategy_id) > MAX_STRATEGY_ID:
        problems.append(Problem("strategy_id", f"at most {MAX_STRATEGY_ID} characters, got {len(request.strategy_id)}"))
    start, end = None, None
    try:
        start = parse_date(request.start_date, "start_date")
    except Invalid as exc:
        problems += exc.problems
    try:
        end = parse_date(request.end_date, "end_date")
    except Invalid as exc:
        problems += exc.problems
    if start and end and start > end:
        problems.append(Problem("end_date", f"end_date {end} is before start_date {start}"))
    if problems:
        raise Invalid(problems)

    days = catalog.trading_days(request.symbol, start, end)
    if not days:
        first, last = catalog.date_range(request.symbol)
        raise Invalid([Problem("start_date", f"no trading days between {start or 'the start'} and "
                                             f"{end or 'the end'}: {request.symbol} has data from {first} to {last}")])
    if plan.has_legs:
        from services.engine.options.runner import leg_problems, source_for

        bad = leg_problems(plan, source_for(catalog, request.symbol), request.symbol, days[0])
        if bad:
            raise Invalid([Problem(path, fix) for path, fix in bad], "strategy.")
    # The run loads its dataset from the first bar to its end date (indicators warm up on it).
    all_days = catalog.trading_days(request.symbol)
    info = next(d for d in catalog.list() if d.symbol == request.symbol)
    upto_end = sum(1 for d in all_days if d <= days[-1])
    estimated = estimate_run_bytes(plan, info.bars * upto_end // max(1, len(all_days)))
    if max_run_bytes and estimated > max_run_bytes:
        field = "strategy.indicators" if len(plan.indicators) > 10 else "start_date"
        raise Invalid([Problem(field, f"this run would need about {mib(estimated)} of arrays (limit "
                                      f"{mib(max_run_bytes)}): use fewer indicators or a later end_date/"
                                      f"shorter range")])

    ex = plan.execution
    settings = RunSettings(start=days[0], end=days[-1], timeframe=request.timeframe,
                           initial_capital=request.initial_capital or None,
                           commission_pct=request.commission_pct or None,
                           slippage_pct=request.slippage_pct or None, tick_interval=request.tick_interval)
    config = pb.BacktestConfig(
        strategy=request.strategy, strategy_id=request.strategy_id, symbol=request.symbol,
        start_date=days[0].isoformat(), end_date=days[-1].isoformat(),
        timeframe=request.timeframe or ex.timeframe,
        initial_capital=request.initial_capital or ex.initial_capital,
        commission_pct=request.commission_pct or ex.commission_pct,
        slippage_pct=request.slippage_pct or ex.slippage_pct, tick_interval=request.tick_interval,
        strategy_version=request.strategy_version)
    return StartPlan(plan, settings, days, config, request.strategy_id or plan.name, estimated)
