"""The fast output path (a block of days per kernel call, columnar formatting, orjson, ISA-L gzip,
events serialized once) against the slow, obvious one (slow_reference.py): the same day files
and the same stream events, byte for byte, on strategies that exercise every kind of exit."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from hindsight.v1 import backtest_service_pb2 as pb

from services.engine.core.backtest import Backtest, RunSettings
from services.engine.core.catalog import Catalog
from services.engine.core.spec import compile_strategy, parse_strategy_json
from services.engine.daywriter import DayFileWriter
from services.engine.events import RunningTotals, day_event_bodies
from storage.atomic import dumps_json

from .slow_reference import reference_days

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "strategies"


def _doc(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def _kitchen_sink() -> dict:
    """Every exit of the underlying's kernel in one strategy: signal exits, stop-and-reverse,
    stop-loss, take-profit, trailing stop, max_bars, square-off, re-entries, fills at the close."""
    doc = _doc("rsi_reversion.json")
    doc["name"] = "every exit"
    doc["indicators"].append({"id": "atr", "kind": "atr", "period": 14})
    long, short = doc["entries"]
    long["trailing_stop"] = {"atr_multiple": 1.0, "atr": "atr"}
    long["max_bars"] = 25
    short["reverse"] = True
    short["take_profit"] = {"points": 15}
    short["max_re_entries"] = 3
    short["max_entries_per_day"] = 4
    doc["entries"].append({
        "id": "sma-trend", "name": "Trend", "side": "buy",
        "when": {"lhs": {"field": "time"}, "op": ">=", "rhs": {"time": "10:00"}},
        "quantity": {"lots": 1, "lot_size": 50}, "max_entries_per_day": 1, "max_bars": 3})
    doc["execution"]["fill"] = "close"
    return doc


def _positional() -> dict:
    """Positions held over days and nights (slow averages, no square-off): open positions at
    most day ends, closed in later blocks of days."""
    doc = _doc("sma_cross.json")
    doc["indicators"][0]["period"], doc["indicators"][1]["period"] = 400, 1500
    return doc


STRATEGIES = {
    "sma_cross (reversals, one position at a time)": (_doc("sma_cross.json"), date(2024, 1, 1), date(2024, 6, 30)),
    "rsi_reversion (two entries, exit nodes, re-entries, stops, square-off)":
        (_doc("rsi_reversion.json"), date(2023, 6, 1), date(2024, 6, 30)),
    "opening_range_breakout (ATR and trailing stops)":
        (_doc("opening_range_breakout.json"), date(2023, 1, 1), date(2023, 12, 31)),
    "every exit, fills at the close": (_kitchen_sink(), date(2024, 1, 1), date(2024, 4, 30)),
    "positional, held over nights": (_positional(), date(2022, 1, 1), date(2022, 12, 31)),
}


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    return Catalog(tmp_path_factory.mktemp("data")).load("SIM-NIFTY")


def _backtest(doc: dict, bars, start: date, end: date) -> Backtest:
    plan = compile_strategy(parse_strategy_json(json.dumps(doc)))
    return Backtest(plan, bars, RunSettings(start=start, end=end, commission_pct=0.01))


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_day_files_and_events_are_the_slow_paths_bytes(name, bars, tmp_path):
    doc, start, end = STRATEGIES[name]
    reference = reference_days(_backtest(doc, bars, start, end))
    bt = _backtest(doc, bars, start, end)
    writer = DayFileWriter(tmp_path / "days")
    days = []

    def on_day(day):
        days.append(day)
        writer.submit(day)

    result = bt.run(on_day=on_day)
    writer.close()
    assert [d.date for d in days] == [r["date"] for r in reference]
    assert len(result.trades) == sum(len(r["trades"]) for r in reference) > 20
    totals = RunningTotals(bt.initial_capital)
    for day, ref in zip(days, reference):
        assert dumps_json(day.trades_daily()) == ref["trades_daily"], day.date
        assert dumps_json(day.diagnostics_export()) == ref["diagnostics"], day.date
        assert day_event_bodies(day, totals, True) == ref["events"], day.date
        folder = tmp_path / "days" / day.date
        assert gzip.decompress((folder / "trades_daily.json.gz").read_bytes()) == ref["trades_daily"]
        assert gzip.decompress((folder / "diagnostics_export.json.gz").read_bytes()) == ref["diagnostics"]


def test_the_strategies_reach_every_exit(bars):
    """The comparison above is only as good as what its runs do: make sure they do it all."""
    from services.engine.core import records

    seen = set()
    re_entries = 0
    for doc, start, end in STRATEGIES.values():
        res = _backtest(doc, bars, start, end).run()
        seen |= set(np.unique(res.trades["exit_reason"]).tolist())
        re_entries += int((res.trades["re_entry_num"] > 0).sum())
    assert {records.EXIT_SIGNAL, records.EXIT_REVERSE, records.EXIT_STOP_LOSS, records.EXIT_TAKE_PROFIT,
            records.EXIT_TRAILING, records.EXIT_MAX_BARS, records.EXIT_SQUARE_OFF, records.EXIT_END_OF_DATA} <= seen
    assert re_entries > 10


def test_day_results_are_the_same_one_day_per_call_or_a_block(bars, monkeypatch):
    """Blocks of 1 day (the kernel called once a day, as before) and of 64 give the same days."""
    doc, start, end = STRATEGIES["positional, held over nights"]
    by_block = []
    _backtest(doc, bars, start, end).run(on_day=by_block.append)
    monkeypatch.setattr(Backtest, "MAX_BLOCK_DAYS", 1)
    by_day = []
    _backtest(doc, bars, start, end).run(on_day=by_day.append)
    assert len(by_day) == len(by_block)
    opened_over_night = 0
    for a, b in zip(by_day, by_block):
        assert a.trades == b.trades and a.events == b.events and a.new_events == b.new_events
        assert a.open_positions == b.open_positions and a.summary == b.summary and a.equity == b.equity
        opened_over_night += bool(a.open_positions)
    assert opened_over_night > 100


def test_cancel_inside_a_block_reports_only_the_days_it_reported(bars):
    doc, start, end = STRATEGIES["positional, held over nights"]
    full = _backtest(doc, bars, start, end).run()
    days = []
    bt = _backtest(doc, bars, start, end)
    result = bt.run(on_day=days.append, should_stop=lambda: len(days) >= 40)  # 40 is inside a block
    assert result.cancelled and len(days) == 40
    assert result.summary["total_days"] == 40
    assert len(result.trades) == sum(len(d.trades) for d in days)
    assert result.trades.tobytes() == full.trades[:len(result.trades)].tobytes()


def test_stamped_bodies_are_the_whole_message_serialized(tmp_path):
    """Publisher.append_bodies joins id + backtest id + time (serialized once) with each body:
    the same bytes protobuf gives for the whole message."""
    from services.engine.jobs import Publisher
    from storage import LocalStore

    store = LocalStore(tmp_path / "store")
    from storage import BacktestRecord

    store.create(BacktestRecord(backtest_id="bt_x", strategy_id="s", created_at=0.0, status="running", caller="c"))
    pub = Publisher(store, "bt_x", lambda: None, fsync=False)
    bodies = [pb.BacktestEvent(day_started=pb.DayStarted(date="2024-01-02", day_number=1, total_days=3))
              .SerializeToString(deterministic=True),
              pb.BacktestEvent(backtest_completed=pb.BacktestCompleted(backtest_id="bt_x")).SerializeToString()]
    for _ in range(70):  # event ids past 127 take two varint bytes
        pub.append_bodies(bodies)
    pub.close()
    stored = store.event_log("bt_x").read(0)
    assert [eid for eid, _ in stored] == list(range(1, 141))
    for eid, payload in stored:
        ev = pb.BacktestEvent.FromString(payload)
        assert ev.event_id == eid and ev.backtest_id == "bt_x" and ev.emitted_at.seconds > 0
        assert payload == ev.SerializeToString(deterministic=True)
        body = pb.BacktestEvent()
        body.CopyFrom(ev)
        body.ClearField("event_id"), body.ClearField("backtest_id"), body.ClearField("emitted_at")
        assert body.SerializeToString(deterministic=True) == bodies[(eid - 1) % 2]
