"""Option legs in the spec layer: every bad field gets its path and a fix; good ones plan."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from services.engine.core import records
from services.engine.core.spec import SpecError, compile_strategy, parse_strategy_json
from services.engine.options import layouts
from services.engine.options.pricing import CALL, PUT

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "strategies"
LEG = {"id": "ce", "option_type": "CE", "side": "sell", "lots": 1, "expiry": {"kind": "weekly"}, "atm_offset": 0}
BASE = {
    "name": "t",
    "entries": [{"id": "e1", "when": {"lhs": {"field": "time"}, "op": "==", "rhs": {"time": "09:19"}},
                 "legs": [LEG, {**LEG, "id": "pe", "option_type": "PE"}]}],
}


def plan_of(doc: dict):
    return compile_strategy(parse_strategy_json(json.dumps(doc)))


def problems_of(doc: dict) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        plan_of(doc)
    return {p.field: p.description for p in info.value.problems}


def with_leg(**changes) -> dict:
    doc = copy.deepcopy(BASE)
    leg = doc["entries"][0]["legs"][0]
    for k, v in changes.items():
        if v is None:
            leg.pop(k, None)
        else:
            leg[k] = v
    return doc


def test_a_straddle_plans_its_legs():
    plan = plan_of(BASE)
    assert plan.has_legs
    ce, pe = plan.entries[0].legs
    assert (ce.id, ce.cp, ce.side, ce.lots, ce.expiry_kind, ce.selector) == (
        "ce", CALL, records.SHORT, 1, layouts.EXP_WEEKLY, layouts.SEL_ATM_OFFSET)
    assert pe.cp == PUT
    assert ce.describe() == "atm_offset=+0"


@pytest.mark.parametrize("name", ["short_straddle.json", "rsi_option_buyer.json", "iron_condor_weekly.json"])
def test_the_option_examples_are_valid(name):
    plan = plan_of(json.loads((EXAMPLES / name).read_text()))
    assert plan.has_legs


@pytest.mark.parametrize("change, field, words", [
    (dict(option_type="XX"), "legs[0].option_type", "use CE (call) or PE (put)"),
    (dict(side=None), "legs[0].side", "missing side"),
    (dict(lots=0), "legs[0].lots", "between 1 and"),
    (dict(lots=-2), "legs[0].lots", "between 1 and"),
    (dict(expiry={"kind": "daily"}), "legs[0].expiry.kind", "use 'weekly' or 'monthly'"),
    (dict(expiry={"kind": "weekly", "offset": 4}), "legs[0].expiry.offset", "0..3"),
    (dict(expiry={"kind": "monthly", "offset": 3}), "legs[0].expiry.offset", "0..2"),
    (dict(atm_offset=None), "legs[0].strike", "choose the strike"),
    (dict(atm_offset=None, delta=1.2), "legs[0].delta", "must be in (0, 1)"),
    (dict(atm_offset=None, delta=0.0), "legs[0].delta", "must be in (0, 1)"),  # a oneof member keeps presence
    (dict(atm_offset=None, closest_premium={"premium": -5}), "legs[0].closest_premium.premium", "> 0"),
    (dict(atm_offset=None, closest_premium={"premium": 50, "qualifier": "about"}),
     "legs[0].closest_premium.qualifier", "at_least"),
    (dict(atm_offset=99), "legs[0].atm_offset", "beyond the 50"),
    (dict(atm_offset=None, spot_pct=80), "legs[0].spot_pct", "(-50, 50)"),
    (dict(stop_loss={"atr_multiple": 2, "atr": "atr"}), "legs[0].stop_loss.atr_multiple", "use pct or points"),
    (dict(stop_loss={"pct": -1}), "legs[0].stop_loss.pct", "must be > 0"),
    (dict(side="buy", stop_loss={"pct": 100}), "legs[0].stop_loss.pct", "can never trigger"),
    (dict(id="bad id"), "legs[0].id", "not a valid leg id"),
    (dict(id="pe"), "legs[1].id", "duplicate leg id"),
])
def test_bad_leg_fields_name_their_path(change, field, words):
    problems = problems_of(with_leg(**change))
    key = f"entries[0].{field}"
    assert key in problems, problems
    assert words in problems[key]


def test_a_sold_legs_stop_may_be_above_100_percent():
    plan = plan_of(with_leg(stop_loss={"pct": 150}))
    assert plan.entries[0].legs[0].stop_loss.value == 150


def test_node_fields_that_belong_to_the_legs_are_refused():
    doc = copy.deepcopy(BASE)
    doc["entries"][0].update(side="sell", quantity={"units": 1}, reverse=True, stop_loss={"pct": 1},
                             trailing_stop={"pct": 1})
    problems = problems_of(doc)
    for name in ("side", "quantity", "reverse", "stop_loss", "trailing_stop"):
        assert f"entries[0].{name}" in problems


def test_legs_and_the_underlying_do_not_mix_and_limits_are_checked():
    doc = copy.deepcopy(BASE)
    doc["entries"].append({"id": "e2", "side": "buy", "quantity": {"units": 1},
                           "when": {"lhs": {"field": "close"}, "op": ">", "rhs": {"value": 1}}})
    assert "entries[1].legs" in problems_of(doc)
    doc = copy.deepcopy(BASE)
    doc["entries"][0]["position"] = {"mtm_stop_loss": -5}
    doc["daily_limits"] = {"max_loss": "Infinity"}  # proto3 JSON's spelling
    doc["options"] = {"lot_size": -1}
    problems = problems_of(doc)
    assert {"entries[0].position.mtm_stop_loss", "daily_limits.max_loss", "options.lot_size"} <= set(problems)
    doc = copy.deepcopy(BASE)
    doc["entries"][0]["legs"] = [LEG] * 9
    assert "at most 8" in problems_of(doc)["entries[0].legs"]


def test_daily_limits_and_position_stops_need_legs():
    doc = {"name": "u", "entries": [{"id": "e", "side": "buy", "quantity": {"units": 1},
                                     "when": {"lhs": {"field": "close"}, "op": ">", "rhs": {"value": 1}},
                                     "position": {"mtm_stop_loss": 10}}],
           "daily_limits": {"max_loss": 100}}
    problems = problems_of(doc)
    assert "entries[0].position" in problems and "daily_limits" in problems


def test_state_operands_plan_and_their_mistakes_are_named():
    doc = copy.deepcopy(BASE)
    doc["exits"] = [{"id": "x", "when": {"all": [
        {"lhs": {"position_mtm": "e1"}, "op": "<=", "rhs": {"value": -2000}},
        {"lhs": {"value": 300}, "op": "<", "rhs": {"leg_premium": "e1.ce"}},
        {"lhs": {"field": "time"}, "op": ">=", "rhs": {"time": "10:00"}}]}}]
    plan = plan_of(doc)
    kinds = [c.lhs.kind for c in plan.exits[0].when.comparisons()]
    assert kinds == ["position_mtm", "value", "field"]
    bad = copy.deepcopy(doc)
    bad["exits"][0]["when"]["all"][0]["lhs"] = {"position_mtm": "nope"}
    bad["exits"][0]["when"]["all"][1]["rhs"] = {"leg_premium": "e1.xx"}
    problems = problems_of(bad)
    assert "not an entry node with legs" in problems["exits[0].when.all[0].lhs.position_mtm"]
    assert "e1.ce, e1.pe" in problems["exits[0].when.all[1].rhs.leg_premium"]
    nested = copy.deepcopy(doc)
    nested["exits"][0]["when"]["all"][2] = {"any": [
        {"lhs": {"position_mtm": "e1"}, "op": ">", "rhs": {"value": 1}},
        {"lhs": {"field": "close"}, "op": ">", "rhs": {"value": 1}}]}
    assert "top-level 'all'" in problems_of(nested)["exits[0].when.all[2].any[0]"]
    crossing = copy.deepcopy(doc)
    crossing["exits"][0]["when"]["all"][0]["op"] = "crosses_below"
    crossing["exits"][0]["when"]["all"][1]["lhs"] = {"field": "close"}
    problems = problems_of(crossing)
    assert "with a constant value" in problems["exits[0].when.all[0]"]
    assert "with a constant value" in problems["exits[0].when.all[1]"]
