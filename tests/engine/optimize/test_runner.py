"""Optimization.prepare / run: validation with field paths, the events, restarts, walk-forward,
and the promise that a trial's strategy, run as an ordinary backtest, gives its numbers."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import pytest
from google.protobuf import json_format

from hindsight.v1 import optimization_pb2 as opb

from services.engine.core.backtest import Backtest, RunSettings
from services.engine.core.catalog import Catalog
from services.engine.core.spec import SpecError, compile_strategy
from services.engine.optimize.runner import Optimization

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "strategies"
EMA_CROSS = {
    "name": "EMA cross",
    "indicators": [{"id": "fast", "kind": "ema", "source": "close", "period": 10},
                   {"id": "slow", "kind": "ema", "source": "close", "period": 40}],
    "entries": [{"id": "long", "side": "buy", "quantity": {"units": 10}, "reverse": True,
                 "when": {"lhs": {"indicator": "fast"}, "op": "crosses_above", "rhs": {"indicator": "slow"}}},
                {"id": "short", "side": "sell", "quantity": {"units": 10}, "reverse": True,
                 "when": {"lhs": {"indicator": "fast"}, "op": "crosses_below", "rhs": {"indicator": "slow"}}}],
    "execution": {"commission_pct": 0.01},
}
SPACE = {"parameters": [{"name": "fast", "path": "indicators[0].period", "int_range": {"low": 5, "high": 25, "step": 5}},
                        {"name": "slow", "path": "indicators[1].period", "int_range": {"low": 20, "high": 60, "step": 20}}],
         "constraints": [{"lhs": "fast", "op": "<", "rhs": "slow"}]}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return Catalog(tmp_path_factory.mktemp("data"))


def config(**overrides) -> opb.OptimizationConfig:
    doc = {"strategy": EMA_CROSS, "space": SPACE, "method": "grid", "symbol": "SIM-NIFTY",
           "start_date": "2021-03-01", "end_date": "2021-04-30"}
    doc.update(overrides)
    return json_format.ParseDict(doc, opb.OptimizationConfig())


def run(opt: Optimization, tmp_path: Path, recorded=(), should_stop=lambda: False):
    events = []
    outcome = opt.run(events.extend, state_dir=tmp_path, recorded=recorded, should_stop=should_stop)
    return outcome, events


def kinds(events) -> list[str]:
    return [e.WhichOneof("event") for e in events]


def trials(events) -> list[opb.Trial]:
    return [e.trial_completed.trial for e in events if e.WhichOneof("event") == "trial_completed"]


def test_grid_runs_every_allowed_set_once_and_reports(catalog, tmp_path):
    opt = Optimization.prepare(config(), catalog)
    assert opt.total_trials == 13  # 5 × 3 = 15 sets; fast < slow removes (20, 20) and (25, 20)
    started = opt.started()
    assert list(started.parameters) == ["fast", "slow"] and list(started.objectives) == ["sharpe:maximize"]
    assert started.first_date == "2021-03-01" and started.last_date == "2021-04-30"
    assert started.base_strategy.execution.warmup_bars == opt.base.execution.warmup_bars > 0
    outcome, events = run(opt, tmp_path)
    assert outcome.status == "completed"
    done = trials(events)
    assert [t.number for t in done] == list(range(1, 14))
    assert len({(t.parameters["fast"], t.parameters["slow"]) for t in done}) == 13
    assert all(t.parameters["fast"] < t.parameters["slow"] for t in done)
    assert kinds(events).count("best_updated") >= 1
    assert [e for e in events if e.HasField("trial_completed")][-1].trial_completed.progress.completed_trials == 13
    top = outcome.result.top
    sharpes = [t.objective_values[0] for t in top]
    assert sharpes == sorted(sharpes, reverse=True) and len(top) == 10
    assert top[0].objective_values[0] == max(t.objective_values[0] for t in done)
    best = outcome.result.best_strategy
    assert (best.indicators[0].period, best.indicators[1].period) == (top[0].parameters["fast"], top[0].parameters["slow"])
    over = outcome.result.overfitting
    assert over.trials == 13 and 0.0 <= over.deflated_sharpe <= 1.0
    assert 0.0 <= over.pbo <= 1.0 and over.cscv_splits >= 2 and over.reading


def test_a_trial_opened_as_a_backtest_gives_its_numbers(catalog, tmp_path):
    """EMAs depend on where their history starts: every trial's strategy carries the sweep's
    warm-up, so a backtest of it on the whole dataset starts from the same bar."""
    opt = Optimization.prepare(config(), catalog)
    outcome, events = run(opt, tmp_path)
    bars = catalog.load("SIM-NIFTY")
    for t in list(outcome.result.top[:3]) + trials(events)[-2:]:
        values = {k: int(v) for k, v in t.parameters.items()}
        strategy = opt.strategy(values)
        assert strategy.execution.warmup_bars > 0
        result = Backtest(compile_strategy(strategy), bars,
                          RunSettings(start=date(2021, 3, 1), end=date(2021, 4, 30))).run()
        assert t.metrics.total_trades == result.metrics["total_trades"]
        assert t.metrics.sharpe == pytest.approx(result.metrics["sharpe"], rel=1e-9)
        assert t.metrics.final_equity == pytest.approx(result.metrics["final_equity"], rel=1e-12)


def test_restart_continues_from_recorded_trials(catalog, tmp_path):
    whole, _ = run(Optimization.prepare(config(), catalog), tmp_path / "whole")
    opt = Optimization.prepare(config(), catalog)
    seen = []

    def stop_after_some():
        return sum(1 for e in seen if e.WhichOneof("event") == "trial_completed") >= 5

    first = opt.run(seen.extend, state_dir=tmp_path / "state", should_stop=stop_after_some)
    assert first.status == "cancelled"
    done_before = trials(seen)
    assert 5 <= len(done_before) < 13
    again = Optimization.prepare(config(), catalog)  # a new engine: nothing shared but the folder
    outcome, more = run(again, tmp_path / "state", recorded=seen)
    numbers = [t.number for t in done_before] + [t.number for t in trials(more)]
    assert sorted(numbers) == list(range(1, 14)), "every trial exactly once"
    assert outcome.result.top[0].parameters == whole.result.top[0].parameters
    assert outcome.result.overfitting.pbo == pytest.approx(whole.result.overfitting.pbo)
    assert outcome.result.overfitting.deflated_sharpe == pytest.approx(whole.result.overfitting.deflated_sharpe)


def test_two_objectives_give_a_pareto_front(catalog, tmp_path):
    cfg = config(method="genetic", max_trials=12, seed=7, population_size=4,
                 objectives=[{"metric": "total_return_pct"}, {"metric": "max_drawdown_pct", "direction": "maximize"}])
    outcome, events = run(Optimization.prepare(cfg, catalog), tmp_path)
    front = outcome.result.pareto_front
    assert front
    pts = [tuple(t.objective_values) for t in front]
    for a in pts:
        assert not any(b != a and b[0] >= a[0] and b[1] >= a[1] for b in pts), "front members do not dominate each other"
    everyone = [tuple(t.objective_values) for t in trials(events) if t.feasible]
    for p in everyone:
        assert any(f[0] >= p[0] and f[1] >= p[1] for f in pts), "every trial is matched by the front"


def test_filters_make_trials_infeasible(catalog, tmp_path):
    cfg = config(filters=[{"metric": "total_trades", "min": 1e9}])
    outcome, events = run(Optimization.prepare(cfg, catalog), tmp_path)
    assert not any(t.feasible for t in trials(events))
    assert len(outcome.result.top) == 0
    assert "nothing to judge" in outcome.result.overfitting.reading.lower()


def test_random_and_bayesian_respect_budget_and_seed(catalog, tmp_path):
    space = {"parameters": [{"name": "fast", "path": "indicators[0].period", "int_range": {"low": 3, "high": 30}},
                            {"name": "slow", "path": "indicators[1].period", "int_range": {"low": 31, "high": 120}}]}
    for method in ("random", "bayesian"):
        a = trials(run(Optimization.prepare(config(method=method, space=space, max_trials=10, seed=3), catalog),
                       tmp_path / f"{method}a")[1])
        b = trials(run(Optimization.prepare(config(method=method, space=space, max_trials=10, seed=3), catalog),
                       tmp_path / f"{method}b")[1])
        assert len(a) == 10
        assert [dict(t.parameters) for t in a] == [dict(t.parameters) for t in b]


def test_walk_forward_windows_and_report(catalog, tmp_path):
    cfg = config(walk_forward={"train_days": 20, "test_days": 10}, start_date="2021-01-01", end_date="2021-04-30")
    opt = Optimization.prepare(cfg, catalog)
    assert opt.total_windows >= 4
    outcome, events = run(opt, tmp_path)
    windows = [e.window_completed.window for e in events if e.WhichOneof("event") == "window_completed"]
    assert [w.index for w in windows] == list(range(1, opt.total_windows + 1))
    for w in windows:
        assert w.train_end < w.test_start <= w.test_end
        assert w.parameters["fast"] < w.parameters["slow"]
    wf = outcome.result.walk_forward
    assert len(wf.windows) == opt.total_windows
    assert len(wf.equity) == len(wf.dates) == 10 * opt.total_windows
    assert wf.dates[0] == windows[0].test_start and wf.dates[-1] == windows[-1].test_end
    assert math.isnan(wf.efficiency) or math.isfinite(wf.efficiency)
    assert {t.window for t in trials(events)} == set(range(1, opt.total_windows + 1))


@pytest.mark.parametrize("overrides, field", [
    ({"space": {"parameters": [{"name": "x", "path": "indicators[9].period", "int_range": {"low": 1, "high": 5}}]}},
     "config.space.parameters[0].path"),
    ({"space": {"parameters": [{"name": "x", "path": "indicators[0].period", "int_range": {"low": 50, "high": 5}}]}},
     "config.space.parameters[0].int_range"),
    ({"space": {"parameters": SPACE["parameters"], "constraints": [{"lhs": "fast", "op": "<", "rhs": "nope"}]}},
     "config.space.constraints[0].rhs"),
    ({"objectives": [{"metric": "sharp"}]}, "config.objectives[0].metric"),
    ({"objectives": [{"metric": "sharpe", "direction": "up"}]}, "config.objectives[0].direction"),
    ({"method": "annealing"}, "config.method"),
    ({"grid_cap": 3}, "config.space.parameters"),
    ({"filters": [{"metric": "total_trades", "min": 5, "max": 1}]}, "config.filters[0].min"),
    ({"end_date": "2021-13-01"}, "config.end_date"),
    ({"walk_forward": {"train_days": 0, "test_days": 5}}, "config.walk_forward.train_days"),
    ({"walk_forward": {"train_days": 4000, "test_days": 500}}, "config.walk_forward.train_days"),
    ({"strategy": {**EMA_CROSS, "indicators": [{"id": "fast", "kind": "ema", "source": "close", "period": -3},
                                               EMA_CROSS["indicators"][1]]}}, "config.strategy.indicators[0]"),
])
def test_bad_input_names_the_field(catalog, overrides, field):
    with pytest.raises(SpecError) as err:
        Optimization.prepare(config(**overrides), catalog)
    fields = [p.field for p in err.value.problems]
    assert any(f.startswith(field) for f in fields), fields
    assert all(p.description for p in err.value.problems)


def test_grid_over_the_cap_says_how_many(catalog):
    with pytest.raises(SpecError) as err:
        Optimization.prepare(config(grid_cap=3), catalog)
    assert "15" in str(err.value) and "cap of 3" in str(err.value)


def test_unknown_symbol_is_reported_with_every_other_problem(catalog):
    with pytest.raises(SpecError) as err:
        Optimization.prepare(config(symbol="NOPE", objectives=[{"metric": "sharp"}]), catalog)
    fields = {p.field for p in err.value.problems}
    assert {"config.symbol", "config.objectives[0].metric"} <= fields
    assert "SIM-NIFTY" in str(err.value)


def test_example_space_file_is_valid(catalog):
    path = EXAMPLES.parent / "spaces" / "sma_cross.space.json"
    strategy = json.loads((EXAMPLES / "sma_cross.json").read_text())
    cfg = json_format.ParseDict({"strategy": strategy, "space": json.loads(path.read_text()), "method": "grid",
                                 "symbol": "SIM-NIFTY", "start_date": "2021-01-04", "end_date": "2021-01-08"},
                                opb.OptimizationConfig())
    assert Optimization.prepare(cfg, catalog).total_trials > 10
