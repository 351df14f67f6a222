"""Parameter spaces: validation with field paths, grids with constraints and a cap, applying
values to the strategy."""

from __future__ import annotations

import pytest
from google.protobuf import json_format

from hindsight.v1 import optimization_pb2 as opb

from services.engine.core.spec import SpecError, compile_strategy
from services.engine.optimize.space import compile_space
from tests.engine.conftest import strategy


def space(doc: dict) -> opb.ParameterSpace:
    return json_format.ParseDict(doc, opb.ParameterSpace())


SMA = strategy("sma_cross.json")


def sma_space(**extra) -> opb.ParameterSpace:
    fast = SMA.indicators[0].id
    return space({"parameters": [
        {"name": "fast", "path": "indicators[0].period", "int_range": {"low": 5, "high": 50, "step": 5}},
        {"name": "slow", "path": "indicators[1].period", "int_range": {"low": 10, "high": 200, "step": 10}},
    ], "constraints": [{"lhs": "fast", "op": "<", "rhs": "slow"}], **extra}) if fast else None


def problems(doc_space: opb.ParameterSpace, base=SMA) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        compile_space(doc_space, base)
    return {p.field: p.description for p in info.value.problems}


def test_a_grid_with_a_constraint_and_each_set_applied():
    plan = compile_space(sma_space(), SMA)
    assert plan.grid_size() == 10 * 20
    sets = list(plan.grid())
    assert all(s["fast"] < s["slow"] for s in sets)
    assert len(sets) == sum(1 for f in range(5, 55, 5) for s in range(10, 210, 10) if f < s)
    assert sets[0] == {"fast": 5, "slow": 10}
    applied = plan.apply({"fast": 7, "slow": 30})
    assert (applied.indicators[0].period, applied.indicators[1].period) == (7, 30)
    assert SMA.indicators[0].period != 7  # the base strategy is untouched
    compile_strategy(applied)


def test_float_grids_read_as_written_and_constants_in_conditions():
    rsi = strategy("rsi_reversion.json")
    # The threshold the entry compares RSI with: find a numeric rhs in its condition.
    cond = rsi.entries[0].when
    path = None
    for k, c in enumerate(cond.all):
        if c.rhs.WhichOneof("kind") == "value":
            path = f"entries[0].when.all[{k}].rhs.value"
            break
    assert path is not None
    plan = compile_space(space({"parameters": [
        {"name": "level", "path": path, "float_range": {"low": 20, "high": 35, "step": 2.5}}]}), rsi)
    assert [s["level"] for s in plan.grid()] == [20.0, 22.5, 25.0, 27.5, 30.0, 32.5, 35.0]
    tenth = compile_space(space({"parameters": [
        {"name": "x", "path": path, "float_range": {"low": 0.1, "high": 0.5, "step": 0.1}}]}), rsi)
    assert [s["x"] for s in tenth.grid()] == [0.1, 0.2, 0.3, 0.4, 0.5]


def test_choices_of_text():
    plan = compile_space(space({"parameters": [
        {"name": "kind", "path": "indicators[0].kind", "choices": {"values": ["sma", "ema", "wma"]}}]}), SMA)
    assert [s["kind"] for s in plan.grid()] == ["sma", "ema", "wma"]
    assert plan.apply({"kind": "ema"}).indicators[0].kind == "ema"


@pytest.mark.parametrize("param,field,words", [
    ({"name": "a", "path": "indicators[9].period", "int_range": {"low": 1, "high": 5}},
     "space.parameters[0].path", "index 9 is out of range"),
    ({"name": "a", "path": "indicators[0].perid", "int_range": {"low": 1, "high": 5}},
     "space.parameters[0].path", "has no field 'perid'"),
    ({"name": "a", "path": "indicators.period", "int_range": {"low": 1, "high": 5}},
     "space.parameters[0].path", "is a list: give an index"),
    ({"name": "a", "path": "indicators[0]", "int_range": {"low": 1, "high": 5}},
     "space.parameters[0].path", "not a number, text or flag"),
    ({"name": "a", "path": "indicators[0].period", "int_range": {"low": 50, "high": 5}},
     "space.parameters[0].int_range.high", "below low"),
    ({"name": "a", "path": "indicators[0].period", "float_range": {"low": 1, "high": 5, "step": 1}},
     "space.parameters[0].float_range", "whole numbers: use int_range"),
    ({"name": "a", "path": "indicators[0].kind", "int_range": {"low": 1, "high": 5}},
     "space.parameters[0].int_range", "give choices"),
    ({"name": "a", "path": "indicators[0].period", "choices": {"values": [5, "ten"]}},
     "space.parameters[0].choices.values", "every choice must be one"),
    ({"name": "a", "path": "indicators[0].period", "choices": {"values": [5, 5.5]}},
     "space.parameters[0].choices.values", "whole numbers"),
    ({"name": "a", "path": "indicators[0].period", "int_range": {"low": 0, "high": 5}},
     "space.parameters[0]", "makes the strategy invalid"),
    ({"name": "a", "path": "indicators[0].period"}, "space.parameters[0]", "no domain"),
    ({"name": "9a", "path": "indicators[0].period", "int_range": {"low": 1, "high": 5}},
     "space.parameters[0].name", "not a name"),
    ({"name": "a", "path": "indicators[0].period", "float_range": {"low": 1, "high": 5, "log": True}},
     "space.parameters[0].float_range", "whole numbers"),
])
def test_bad_parameters_are_refused_with_their_field(param, field, words):
    found = problems(space({"parameters": [param]}))
    assert field in found, found
    assert words in found[field], found


def test_a_path_through_a_oneof_must_follow_the_member_set():
    rsi = strategy("rsi_reversion.json")
    k = next(k for k, c in enumerate(rsi.entries[0].when.all) if c.lhs.WhichOneof("kind") == "indicator")
    found = problems(space({"parameters": [{"name": "v", "path": f"entries[0].when.all[{k}].lhs.value",
                                            "float_range": {"low": 1, "high": 2, "step": 1}}]}), rsi)
    assert "not 'value'" in found["space.parameters[0].path"]


def test_bad_constraints_and_grid_caps():
    bad = sma_space()
    bad.constraints.add(lhs="fats", op="<", rhs="slow")
    bad.constraints.add(lhs="fast", op="=<", rhs="slow")
    bad.constraints.add(lhs="fast", op="<", rhs="nan")
    found = problems(bad)
    assert "no parameter named 'fats'" in found["space.constraints[1].lhs"]
    assert "unknown operator" in found["space.constraints[2].op"]
    assert "neither a parameter nor a finite number" in found["space.constraints[3].rhs"]
    plan = compile_space(sma_space(), SMA)
    with pytest.raises(SpecError) as info:
        list(plan.grid(cap=100))
    assert "200 parameter sets" in str(info.value) and "cap of 100" in str(info.value)
    continuous = compile_space(space({"parameters": [
        {"name": "x", "path": "execution.commission_pct", "float_range": {"low": 0.0, "high": 0.1}}]}), SMA)
    assert continuous.grid_size() is None
    with pytest.raises(SpecError, match="a grid needs a step for x"):
        list(continuous.grid())
    dup = space({"parameters": [
        {"name": "a", "path": "indicators[0].period", "int_range": {"low": 2, "high": 5}},
        {"name": "a", "path": "indicators[0].period", "int_range": {"low": 2, "high": 5}}]})
    found = problems(dup)
    assert "used twice" in found["space.parameters[1].name"]
    assert "both set" in found["space.parameters[1].path"]
    assert "no parameters" in problems(space({}))["space.parameters"]
