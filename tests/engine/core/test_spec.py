"""The spec layer: every kind of bad strategy gets one error type naming the field and a fix."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from services.engine.core import records
from services.engine.core.spec import SpecError, compile_strategy, parse_strategy_json

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "strategies"

BASE = {
    "name": "t",
    "indicators": [
        {"id": "rsi", "kind": "rsi", "period": 14},
        {"id": "ema_fast", "kind": "ema", "period": 9},
        {"id": "bb", "kind": "bbands", "period": 20},
        {"id": "atr", "kind": "atr", "period": 14},
    ],
    "entries": [{
        "id": "entry-1", "side": "buy",
        "when": {"all": [
            {"lhs": {"indicator": "rsi"}, "op": ">", "rhs": {"value": 30}},
            {"lhs": {"field": "close"}, "op": ">", "rhs": {"indicator": "ema_fast"}},
        ]},
        "quantity": {"units": 1},
    }],
}


def plan_of(doc: dict):
    return compile_strategy(parse_strategy_json(json.dumps(doc)))


def problems_of(doc: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        plan_of(doc)
    return [str(p) for p in info.value.problems]


def mutate(path_fn) -> dict:
    doc = copy.deepcopy(BASE)
    path_fn(doc)
    return doc


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_examples_compile(name):
    plan = plan_of(json.loads((EXAMPLES / name).read_text()))
    assert plan.entries


def test_valid_base_plan():
    plan = plan_of(BASE)
    assert [i.id for i in plan.indicators] == ["rsi", "ema_fast", "bb", "atr"]
    e = plan.entries[0]
    assert e.side == records.LONG and e.qty_mode == records.QTY_UNITS and e.qty_value == 1
    assert e.max_re_entries == -1
    assert e.when.preview() == "RSI(14) > 30 AND Close > EMA(9)"
    assert plan.warmup_bars == 14  # RSI's look-back dominates EMA(9)'s 8


def test_issue_example_unknown_indicator_message():
    doc = mutate(lambda d: d["entries"][0]["when"]["all"][1].update(rhs={"indicator": "rsi2"}))
    assert problems_of(doc) == [
        "entries[0].when.all[1].rhs: unknown indicator 'rsi2' (defined: rsi, ema_fast, bb, atr) — did you mean 'rsi'?"]


@pytest.mark.parametrize("mut, field, fragment", [
    (lambda d: d["indicators"][0].update(kind="rsx"), "indicators[0].kind", "unknown indicator kind 'rsx'"),
    (lambda d: d["indicators"][0].update(period=0), "indicators[0].period", "must be a positive"),
    (lambda d: d["indicators"][0].update(period=-3), "indicators[0].period", "must be a positive"),
    (lambda d: d["indicators"][1].update(source="nope"), "indicators[1].source", "unknown indicator 'nope'"),
    (lambda d: d["indicators"][1].update(id="rsi"), "indicators[1].id", "duplicate id 'rsi'"),
    (lambda d: d["indicators"][0].update(id="close"), "indicators[0].id", "built-in field"),
    (lambda d: d["entries"][0].update(side="long"), "entries[0].side", "use 'buy' (long) or 'sell' (short)"),
    (lambda d: d["entries"][0].update(quantity={"units": 0}), "entries[0].quantity.units", "zero or negative quantity"),
    (lambda d: d["entries"][0].update(quantity={}), "entries[0].quantity", "missing quantity"),
    (lambda d: d["entries"][0].update(when={}), "entries[0].when", "empty condition"),
    (lambda d: d["entries"][0].update(when={"all": []}), "entries[0].when", "empty condition"),
    (lambda d: d["entries"][0]["when"]["all"][0].update(op="=>"), "entries[0].when.all[0].op", "unknown operator '=>'"),
    (lambda d: d["entries"][0]["when"]["all"][0].pop("rhs"), "entries[0].when.all[0].rhs", "missing rhs"),
    (lambda d: d["entries"][0]["when"]["all"][0].update(lhs={"field": "closing"}), "entries[0].when.all[0].lhs",
     "unknown field 'closing'"),
    (lambda d: d["entries"][0]["when"]["all"][0].update(lhs={"indicator": "bb"}), "entries[0].when.all[0].lhs",
     "has outputs upper, middle, lower"),
    (lambda d: d["entries"][0]["when"]["all"][0].update(lhs={"indicator": "bb.top"}), "entries[0].when.all[0].lhs",
     "has no output 'top'"),
    (lambda d: d["entries"][0]["when"]["all"][0].update(rhs={"time": "9:75"}), "entries[0].when.all[0].rhs",
     "malformed time '9:75'"),
    (lambda d: d["entries"][0]["when"]["all"][0].update(lhs={"indicator": "rsi", "offset": -1}),
     "entries[0].when.all[0].lhs.offset", "must be >= 0"),
    (lambda d: d["entries"][0].update(stop_loss={"atr_multiple": 2, "atr": "rsi"}), "entries[0].stop_loss.atr",
     "is not an atr indicator"),
    (lambda d: d["entries"][0].update(stop_loss={}), "entries[0].stop_loss", "set one of pct"),
    (lambda d: d["entries"][0].update(stop_loss={"pct": 0}), "entries[0].stop_loss.pct", "must be > 0"),
    (lambda d: d["entries"][0].update(stop_loss={"pct": -1}), "entries[0].stop_loss.pct", "must be > 0"),
    (lambda d: d.update(session={"square_off_time": "25:00"}), "session.square_off_time", "malformed time"),
    (lambda d: d.update(session={"timezone": "Mars/Olympus"}), "session.timezone", "unknown time zone"),
    (lambda d: d.update(session={"calendar": "NSEX"}), "session.calendar", "unknown trading calendar"),
    (lambda d: d.update(execution={"fill": "vwap"}), "execution.fill", "unknown fill 'vwap'"),
    (lambda d: d.update(execution={"timeframe": "7x"}), "execution.timeframe", "unknown timeframe"),
    (lambda d: d.update(exits=[{"id": "x", "closes": ["entry-9"], "when": {"lhs": {"field": "close"}, "op": "<",
                                                                         "rhs": {"value": 1}}}]),
     "exits[0].closes[0]", "unknown entry node 'entry-9'"),
    (lambda d: d.update(exits=[{"id": "entry-1", "when": {"lhs": {"field": "close"}, "op": "<", "rhs": {"value": 1}}}]),
     "exits[0].id", "duplicate node id"),
    (lambda d: d.update(entries=[]), "entries", "no entry nodes"),
])
def test_bad_strategy_names_field_and_fix(mut, field, fragment):
    problems = problems_of(mutate(mut))
    assert any(p.startswith(field + ":") and fragment in p for p in problems), problems


def test_cyclic_indicators_are_reported():
    doc = mutate(lambda d: d["indicators"].extend([
        {"id": "a", "kind": "ema", "period": 3, "source": "b"},
        {"id": "b", "kind": "sma", "period": 3, "source": "a"},
    ]))
    problems = problems_of(doc)
    assert any("cyclic indicator reference" in p and "a → b → a" in p for p in problems), problems


def test_self_reference_is_cyclic():
    doc = mutate(lambda d: d["indicators"].append({"id": "z", "kind": "ema", "period": 3, "source": "z"}))
    assert any("cyclic" in p for p in problems_of(doc))


def test_all_problems_reported_at_once():
    doc = mutate(lambda d: (d["indicators"][0].update(period=0), d["entries"][0].update(side="up")))
    assert len(problems_of(doc)) >= 2


def test_unknown_json_field_is_rejected():
    with pytest.raises(SpecError) as info:
        parse_strategy_json('{"name": "x", "entriez": []}')
    assert "entriez" in str(info.value)


def test_chained_indicator_warmup_adds_up():
    doc = mutate(lambda d: (d["indicators"].append({"id": "rsi_ema", "kind": "ema", "period": 5, "source": "rsi"}),
                            d["entries"][0].update(when={"lhs": {"indicator": "rsi_ema"}, "op": "crosses_above",
                                                         "rhs": {"value": 50}})))
    plan = plan_of(doc)
    assert plan.warmup_bars == 14 + 4 + 1  # RSI(14) + EMA(5) look-backs + one bar for the cross


def test_lots_become_units_and_camel_case_is_accepted():
    doc = mutate(lambda d: d["entries"][0].update(quantity={"lots": 2, "lotSize": 25}, maxEntriesPerDay=3))
    e = plan_of(doc).entries[0]
    assert e.qty_value == 50 and e.max_per_day == 3
