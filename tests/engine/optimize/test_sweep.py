"""The sweep kernel against the reference: every trial's metrics and daily returns equal those
of an ordinary Backtest of the same strategy (to rounding), whatever the strategy uses."""

from __future__ import annotations

import copy
import json
import math
import pickle
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format

from hindsight.v1 import strategy_pb2

from services.engine.core.backtest import RunSettings
from services.engine.core.catalog import Catalog
from services.engine.core.spec import parse_strategy_json
from services.engine.optimize import sweep
from services.engine.optimize.sweep import SweepContext, evaluate, evaluate_one

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "strategies"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return Catalog(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def bars(catalog):
    return catalog.load("SIM-NIFTY")


def _strategy(name: str) -> strategy_pb2.Strategy:
    return parse_strategy_json((EXAMPLES / f"{name}.json").read_text())


def _same(fast, ref) -> None:
    assert not fast.error and not ref.error, (fast.error, ref.error)
    for key, want in ref.metrics.items():
        got = fast.metrics[key]
        if isinstance(want, float) and math.isnan(want):
            assert math.isnan(got), key
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), key
    np.testing.assert_allclose(fast.daily_returns, ref.daily_returns, rtol=1e-9, atol=1e-12)


def _check(bars, strategies, settings=RunSettings(start=date(2021, 1, 1), end=date(2021, 4, 30))):
    base = copy.deepcopy(strategies[0])
    base.execution.warmup_bars = 300
    for s in strategies:
        s.execution.warmup_bars = 300
    ctx = SweepContext.build(base, bars, settings)
    fast = evaluate(ctx, strategies)
    assert sweep.fast_state(ctx) is not None, "the kernel path was not taken"
    for f, s in zip(fast, strategies):
        _same(f, evaluate_one(ctx, s))
    return fast


def test_sma_cross_grid_equals_backtests(bars):
    base = _strategy("sma_cross")
    trials = []
    for fast, slow in ((5, 20), (10, 40), (20, 30), (3, 200)):
        s = copy.deepcopy(base)
        s.indicators[0].period, s.indicators[1].period = fast, slow
        trials.append(s)
    results = _check(bars, trials)
    assert len({r.metrics["total_trades"] for r in results}) > 1


def test_intraday_stops_atr_and_composite_conditions(bars):
    base = _strategy("opening_range_breakout")
    trials = []
    for period, atr in ((15, 14), (30, 7), (5, 21)):
        s = copy.deepcopy(base)
        s.indicators[0].period, s.indicators[1].period = period, atr
        trials.append(s)
    _check(bars, trials)


def test_every_operator_offsets_constants_and_exits(bars):
    doc = {
        "indicators": [{"id": "rsi", "kind": "rsi", "source": "close", "period": 14},
                       {"id": "ema", "kind": "ema", "source": "close", "period": 30},
                       {"id": "ema_of_rsi", "kind": "ema", "source": "rsi", "period": 5}],
        "entries": [
            {"id": "dip", "side": "buy", "quantity": {"units": 2}, "max_bars": 40,
             "when": {"any": [
                 {"all": [{"lhs": {"indicator": "rsi"}, "op": "<", "rhs": {"value": 30}},
                          {"not": {"lhs": {"field": "close"}, "op": "<=", "rhs": {"indicator": "ema", "offset": 3}}}]},
                 {"lhs": {"value": 25}, "op": "crosses_above", "rhs": {"indicator": "ema_of_rsi"}}]},
             "take_profit": {"pct": 0.4}, "stop_loss": {"points": 60}},
            {"id": "pop", "side": "sell", "quantity": {"equity_pct": 50}, "max_entries_per_day": 2,
             "when": {"all": [{"lhs": {"indicator": "rsi"}, "op": ">=", "rhs": {"value": 70}},
                              {"lhs": {"field": "day_of_week"}, "op": "!=", "rhs": {"value": 4}},
                              {"lhs": {"field": "time"}, "op": ">", "rhs": {"time": "10:00"}}]},
             "trailing_stop": {"pct": 0.3}}],
        "exits": [{"id": "back", "closes": ["dip"],
                   "when": {"lhs": {"indicator": "rsi"}, "op": "crosses_above", "rhs": {"value": 55}}},
                  {"id": "flat", "closes": ["pop"],
                   "when": {"lhs": {"indicator": "rsi", "offset": 1}, "op": "==", "rhs": {"indicator": "rsi"}}}],
        "session": {"square_off_time": "15:15", "timezone": "Asia/Kolkata"},
        "execution": {"commission_pct": 0.02, "slippage_pct": 0.01, "initial_capital": 500000},
    }
    base = json_format.ParseDict(doc, strategy_pb2.Strategy())
    trials = []
    for period, level in ((14, 30), (7, 25), (21, 35)):
        s = copy.deepcopy(base)
        s.indicators[0].period = period
        s.entries[0].when.any[0].all[0].rhs.value = level
        trials.append(s)
    results = _check(bars, trials)
    assert all(r.metrics["total_trades"] > 0 for r in results)


def test_whole_dataset_without_dates_and_a_bad_trial(bars):
    base = _strategy("rsi_reversion")
    good = copy.deepcopy(base)
    bad = copy.deepcopy(base)
    bad.indicators[0].period = 0  # invalid: reported, not fatal to the batch
    ctx = SweepContext.build(base, bars.slice(0, 60_000), RunSettings())
    ok, failed = evaluate(ctx, [good, bad])
    _same(ok, evaluate_one(ctx, good))
    assert failed.error and "period" in failed.error
    assert np.isnan(failed.metrics["sharpe"])


def test_many_series_more_than_the_cache_holds(bars, monkeypatch):
    """The series cache evicts and recomputes; the results do not change."""
    base = _strategy("sma_cross")
    trials = []
    for fast in range(3, 30, 2):
        s = copy.deepcopy(base)
        s.indicators[0].period, s.indicators[1].period = fast, fast + 25
        trials.append(s)
    small = bars.slice(0, 50_000)
    monkeypatch.setattr(sweep, "SERIES_BUDGET", 12 * 8 * 50_000)  # 12 rows
    ctx = SweepContext.build(base, small, RunSettings())
    fast = evaluate(ctx, trials)
    assert sweep.fast_state(ctx).cache.capacity == 12
    for f, s in zip(fast, trials):
        _same(f, evaluate_one(ctx, s))


def test_context_pickles_without_its_caches(bars):
    base = _strategy("sma_cross")
    ctx = SweepContext.build(base, bars, RunSettings(start=date(2021, 1, 1), end=date(2021, 1, 31)))
    evaluate(ctx, [base])
    data = pickle.dumps(ctx)
    assert len(data) < 5_000_000  # a month of bars, not the decade nor the series cache
    again = pickle.loads(data)
    _same(evaluate(again, [base])[0], evaluate_one(ctx, base))


def test_option_legs_take_the_reference_path(bars, catalog):
    from services.engine.options.runner import source_for

    base = _strategy("short_straddle")
    ctx = SweepContext.build(base, bars, RunSettings(start=date(2021, 1, 4), end=date(2021, 1, 8)),
                             options=source_for(catalog, "SIM-NIFTY"))
    [r] = evaluate(ctx, [base])
    assert not r.error
    assert r.metrics["total_trades"] > 0
    assert json.dumps(r.metrics)  # plain numbers


def test_daily_bars_and_stretches_across_days(bars):
    """On daily bars every bar is a day: quiet stretches run across days (day closes marked,
    the day's entry counts reset) and must give what the backtest gives."""
    base = _strategy("sma_cross")
    base.execution.timeframe = "1d"
    trials = []
    for fast, slow in ((5, 20), (8, 60), (3, 150)):
        s = copy.deepcopy(base)
        s.indicators[0].period, s.indicators[1].period = fast, slow
        s.entries[0].max_entries_per_day = 1
        trials.append(s)
    results = _check(bars, trials, RunSettings(start=date(2017, 1, 1), end=date(2024, 12, 31)))
    assert all(r.metrics["total_trades"] > 5 for r in results)
