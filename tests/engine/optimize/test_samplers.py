"""Proposers: the grid in order, Optuna's random / TPE / NSGA-II through ask and tell,
constraints, repeats answered once, and a restart that continues from recorded trials."""

from __future__ import annotations

import math

import pytest
from google.protobuf import json_format

from hindsight.v1 import optimization_pb2 as opb

from services.engine.optimize.samplers import Proposer
from services.engine.optimize.space import compile_space
from tests.engine.conftest import strategy

SMA = strategy("sma_cross.json")


def plan(fast=(5, 50, 1), slow=(10, 200, 1), log=False):
    doc = {"parameters": [
        {"name": "fast", "path": "indicators[0].period",
         "int_range": {"low": fast[0], "high": fast[1], "step": fast[2], "log": log}},
        {"name": "slow", "path": "indicators[1].period", "int_range": {"low": slow[0], "high": slow[1], "step": slow[2]}},
    ], "constraints": [{"lhs": "fast", "op": "<", "rhs": "slow"}]}
    return compile_space(json_format.ParseDict(doc, opb.ParameterSpace()), SMA)


def score(values) -> float:
    """A smooth surface with its peak at fast 20, slow 100."""
    return -((values["fast"] - 20) ** 2) - ((values["slow"] - 100) ** 2) / 25


def drive(p: Proposer, batch: int, objective=score) -> list:
    seen = []
    while not p.done:
        proposals = p.ask(batch)
        if not proposals:
            break
        for prop in proposals:
            seen.append(prop)
            if prop.repeat_of is None:
                result = objective(prop.values)
                p.tell(prop.number, result if isinstance(result, list) else [result])
    return seen


def test_grid_proposes_every_valid_set_once_in_order():
    sp = plan(fast=(5, 50, 5), slow=(10, 100, 10))
    p = Proposer(sp, "grid", ["maximize"], n_trials=10**9)
    seen = drive(p, 7)
    assert [s.values for s in seen] == list(sp.grid())
    assert [s.number for s in seen] == list(range(len(seen)))
    assert p.done and p.exhausted
    assert p.best()[0][0] == {"fast": 20, "slow": 100}


@pytest.mark.parametrize("method", ["random", "bayesian"])
def test_sampled_sets_respect_domains_and_constraints_and_the_budget(method):
    p = Proposer(plan(), method, ["maximize"], n_trials=60, seed=3)
    seen = drive(p, 8)
    assert len(seen) == 60 and p.done
    for s in seen:
        assert 5 <= s.values["fast"] <= 50 and 10 <= s.values["slow"] <= 200
        assert s.values["fast"] < s.values["slow"]
        assert isinstance(s.values["fast"], int)
    again = drive(Proposer(plan(), method, ["maximize"], n_trials=60, seed=3), 8)
    assert [s.values for s in again] == [s.values for s in seen]  # seeded: reproducible


def test_bayesian_beats_random_on_a_smooth_surface():
    def best_of(method):
        p = Proposer(plan(), method, ["maximize"], n_trials=80, seed=11)
        drive(p, 4)
        return p.best()[0][1][0]
    assert best_of("bayesian") > best_of("random")
    assert best_of("bayesian") > -30  # near the peak (0)


def test_genetic_returns_a_pareto_front_of_two_objectives():
    def two(values):
        return [score(values), -values["slow"]]  # a better score wants slow near 100, the other small slow
    p = Proposer(plan(), "genetic", ["maximize", "maximize"], n_trials=120, seed=5, population_size=20)
    drive(p, 20, two)
    front = p.best()
    assert len(front) >= 2
    for a_values, a in front:  # nothing on the front is dominated by another point on it
        assert not any(b[0] >= a[0] and b[1] >= a[1] and b != a for _, b in front)
    assert len({f[0]["slow"] for f in front}) == len(front)


def test_repeats_are_not_run_twice():
    # A tiny space: 3 valid sets; random asks for more than exist.
    tiny = plan(fast=(5, 6, 1), slow=(6, 7, 1))
    p = Proposer(tiny, "random", ["maximize"], n_trials=12, seed=0)
    runs = []

    def counted(values):
        runs.append(dict(values))
        return score(values)

    seen = drive(p, 4, counted)
    assert len(seen) == 12
    assert len(runs) == len({tuple(sorted(r.items())) for r in runs}) <= 3
    for s in seen:
        if s.repeat_of is not None:
            assert seen[s.repeat_of].values == s.values


def test_an_impossible_constraint_exhausts_the_proposer():
    doc = {"parameters": [
        {"name": "fast", "path": "indicators[0].period", "int_range": {"low": 50, "high": 60}},
        {"name": "slow", "path": "indicators[1].period", "int_range": {"low": 10, "high": 20}}],
        "constraints": [{"lhs": "fast", "op": "<", "rhs": "slow"}]}
    sp = compile_space(json_format.ParseDict(doc, opb.ParameterSpace()), SMA)
    p = Proposer(sp, "random", ["maximize"], n_trials=10, seed=0)
    assert p.ask(5) == [] and p.done and p.exhausted
    assert list(sp.grid()) == []


def test_a_restart_continues_from_the_recorded_trials():
    first = Proposer(plan(), "bayesian", ["maximize"], n_trials=40, seed=2)
    recorded = []
    for _ in range(3):
        for prop in first.ask(5):
            if prop.repeat_of is None:
                value = score(prop.values)
                first.tell(prop.number, [value])
                recorded.append((prop.values, [value]))
    again = Proposer(plan(), "bayesian", ["maximize"], n_trials=40, seed=2)
    again.restore(recorded)
    assert again.asked == len(recorded)
    rest = drive(again, 5)
    assert again.asked == 40 and len(rest) == 40 - len(recorded)
    assert rest[0].number == len(recorded)
    best_values, best = again.best()[0]
    assert best[0] >= max(v[0] for _, v in recorded)
    # The grid continues where it stopped.
    sp = plan(fast=(5, 50, 5), slow=(10, 100, 10))
    grid = list(sp.grid())
    g = Proposer(sp, "grid", ["maximize"], n_trials=10**9)
    g.restore([(v, [score(v)]) for v in grid[:10]])
    assert [s.values for s in drive(g, 8)] == grid[10:]


def test_log_scale_and_float_steps():
    doc = {"parameters": [
        {"name": "fast", "path": "indicators[0].period", "int_range": {"low": 2, "high": 64, "log": True}},
        {"name": "fee", "path": "execution.commission_pct", "float_range": {"low": 0.0, "high": 0.05, "step": 0.02}}]}
    sp = compile_space(json_format.ParseDict(doc, opb.ParameterSpace()), SMA)
    p = Proposer(sp, "random", ["minimize"], n_trials=50, seed=1)
    seen = drive(p, 10, lambda v: v["fast"])
    fees = {s.values["fee"] for s in seen}
    assert fees <= {0.0, 0.02, 0.04} and all(2 <= s.values["fast"] <= 64 for s in seen)
    small = sum(1 for s in seen if s.values["fast"] <= 8)
    assert small >= 15  # log scale: [2, 8] is a third of the range's logarithm, not a tenth
    assert math.isclose(p.best()[0][1][0], min(s.values["fast"] for s in seen))


def test_bad_methods_and_directions():
    with pytest.raises(ValueError, match="unknown method"):
        Proposer(plan(), "annealing", ["maximize"], n_trials=5)
    with pytest.raises(ValueError, match="directions"):
        Proposer(plan(), "random", ["up"], n_trials=5)
