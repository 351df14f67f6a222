"""Option strategies run whole: on a real (generated) option-chain file, and on SIM-NIFTY's synthetic
chain; fills match the chain's bars, a missing bar fails naming contract and time, and day files
carry the seeds' fields."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from services.engine.core.backtest import Backtest, RunError, RunSettings
from services.engine.core.catalog import Catalog
from services.engine.core.spec import compile_strategy, parse_strategy_json
from services.engine.options.runner import OptionSource, PricingError

from .chain_data import minute_bars, write_sample_chain

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "strategies"
DAYS = [date(2024, 1, 22), date(2024, 1, 23), date(2024, 1, 24)]
EXPIRY = date(2024, 1, 25)   # that week's Thursday: the weekly (and January's monthly) expiry
STRIKES = np.arange(21000.0, 22050.0, 50.0)


def straddle(square_off: str = "09:40", **leg) -> dict:
    legs = [{"id": ot.lower(), "option_type": ot, "side": "sell", "lots": 2, "expiry": {"kind": "weekly"},
             "atm_offset": 0, **leg} for ot in ("CE", "PE")]
    return {"name": "s", "session": {"timezone": "Asia/Kolkata", "calendar": "XBOM", "square_off_time": square_off},
            "entries": [{"id": "e1", "when": {"lhs": {"field": "time"}, "op": "==", "rhs": {"time": "09:19"}},
                         "max_entries_per_day": 1, "legs": legs}]}


def run(doc: dict, bars, source, **settings):
    plan = compile_strategy(parse_strategy_json(json.dumps(doc)))
    days = []
    bt = Backtest(plan, bars, RunSettings(**settings), symbol="NIFTY", options=source)
    result = bt.run(on_day=days.append)
    return result, days


@pytest.fixture
def chain(tmp_path):
    bars = minute_bars(DAYS, per_day=30)
    path = tmp_path / "NIFTY.options.parquet"
    frame = write_sample_chain(path, bars, [EXPIRY], STRIKES)
    return bars, path, frame


def quote(frame, strike: float, ot: str, bar: int, field: str) -> float:
    row = frame[(frame["strike"] == strike) & (frame["option_type"] == ot) & (frame["bar"] == bar)]
    assert len(row) == 1
    return float(row[field].iloc[0])


def test_a_straddle_fills_at_the_chain_bars_and_squares_off(chain, tmp_path):
    bars, path, frame = chain
    source = OptionSource("chain", "NIFTY", "XBOM", path, tmp_path / "cache")
    result, days = run(straddle(), bars, source)
    assert result.summary["total_trades"] == 6  # 3 days x 2 legs
    first = days[0]
    ce = next(t for t in first.trades if t["leg_id"] == "ce")
    signal = 4                                        # 09:19, the day's fifth bar
    spot = float(bars.close[signal])
    atm = STRIKES[np.argmin(np.abs(STRIKES - spot))]
    assert ce["strike"] == atm and ce["expiry"] == "2024-01-25"
    assert ce["symbol"] == f"NIFTY:2024-01-25:OPT:{int(atm)}:CE"
    assert ce["lots"] == 2 and ce["quantity"] == 2 * ce["lot_size"]
    assert float(ce["entry_price"]) == pytest.approx(quote(frame, atm, "CE", signal + 1, "open"), abs=0.005)
    assert float(ce["exit_price"]) == pytest.approx(quote(frame, atm, "CE", 25, "open"), abs=0.005)  # 09:40
    assert ce["exit_reason"] == "square_off"
    assert ce["underlying_at_entry"] == pytest.approx(float(bars.open[signal + 1]))
    assert ce["iv_at_entry"] > 0 and 0 < ce["delta_at_entry"] < 1
    # The day file: seeds' names for the spot, positions with the combined P&L.
    daily = first.trades_daily()
    leg = daily["trades"][0]
    assert "nifty_spot_at_entry" in leg and "underlying_at_entry" not in leg
    (pos,) = daily["positions"]
    assert sorted(pos["trade_ids"]) == ["e1-pos1-ce", "e1-pos1-pe"]
    assert float(pos["pnl"]) == pytest.approx(sum(float(t["pnl"]) for t in first.trades), abs=0.011)
    entry = first.events[ce["entry_flow_ids"][0]]
    assert [s["leg_id"] for s in entry["strike_selections"]] == ["ce", "pe"]
    assert entry["strike_selections"][0]["atm"] == atm
    sel = entry["strike_selections"][0]
    assert sel["gamma"] > 0 and sel["theta"] < 0 and sel["vega"] > 0


def test_a_fill_without_a_chain_bar_fails_naming_contract_and_time(tmp_path):
    bars = minute_bars(DAYS, per_day=30)
    spot = float(bars.close[4])
    atm = STRIKES[np.argmin(np.abs(STRIKES - spot))]
    path = tmp_path / "NIFTY.options.parquet"
    write_sample_chain(path, bars, [EXPIRY], STRIKES, drop=[(EXPIRY, atm, "PE", 5)])
    with pytest.raises(PricingError) as info:
        run(straddle(), bars, OptionSource("chain", "NIFTY", "XBOM", path, tmp_path / "c"))
    msg = str(info.value)
    assert f"NIFTY:2024-01-25:OPT:{int(atm)}:PE" in msg and "2024-01-22T09:20:00+05:30" in msg


def test_legs_need_a_dataset_with_options_and_weekly_needs_2019(tmp_path):
    bars = minute_bars(DAYS, per_day=30)
    plan = compile_strategy(parse_strategy_json(json.dumps(straddle())))
    with pytest.raises(RunError, match="has no options"):
        Backtest(plan, bars, symbol="NIFTY", options=None)
    old = minute_bars([date(2018, 6, 1)], per_day=30)
    with pytest.raises(RunError, match="weekly NIFTY options were first listed on 2019-02-11"):
        Backtest(plan, old, symbol="NIFTY", options=OptionSource("synthetic"))


@pytest.fixture(scope="module")
def sim_year(data_dir):
    cat = Catalog(data_dir)
    return cat.load("SIM-NIFTY", date(2024, 1, 1), date(2024, 3, 31))


def test_synthetic_straddle_on_sim_nifty_is_deterministic_and_consistent(sim_year):
    doc = json.loads((EXAMPLES / "short_straddle.json").read_text())
    a, days = run(doc, sim_year, OptionSource("synthetic"), start=date(2024, 2, 1), end=date(2024, 3, 31))
    b, _ = run(doc, sim_year, OptionSource("synthetic"), start=date(2024, 2, 1), end=date(2024, 3, 31))
    assert a.trades.tobytes() == b.trades.tobytes()
    assert a.summary["total_trades"] == 2 * len(days)
    for d in days:
        for t in d.trades:
            assert float(t["entry_price"]) >= 0.05 * 0.99          # premiums are never below a tick
            assert t["symbol"].startswith("NIFTY:") and t["symbol"].endswith(t["option_type"])
        # Equity moves by the day's realized P&L when nothing is carried overnight.
    eq = np.array([d.equity for d in days])
    pnl = np.array([float(d.summary["total_pnl"]) for d in days])
    assert np.allclose(np.diff(eq), pnl[1:], atol=0.05)
    stops = [t for d in days for t in d.trades if t["exit_reason"] == "stop_loss"]
    assert stops, "25 % stops are hit on some days of two months"
    for t in stops:  # a stopped sold leg closes near 125 % of its sold premium (slippage 0.1 % both sides)
        assert float(t["exit_price"]) >= 1.25 * float(t["entry_price"]) * 0.999


def test_iron_condor_held_to_expiry_settles_or_stops(sim_year):
    doc = json.loads((EXAMPLES / "iron_condor_weekly.json").read_text())
    result, days = run(doc, sim_year, OptionSource("synthetic"), start=date(2024, 1, 1), end=date(2024, 3, 31))
    reasons = {t["exit_reason"] for d in days for t in d.trades}
    assert reasons <= {"expiry", "mtm_stop_loss", "mtm_take_profit", "end_of_data"}
    assert "expiry" in reasons
    for d in days:
        for t in d.trades:
            if t["exit_reason"] == "expiry":
                intrinsic = max(0.0, (t["underlying_at_exit"] - t["strike"]) * (1 if t["option_type"] == "CE" else -1))
                assert float(t["exit_price"]) == pytest.approx(intrinsic, abs=0.006)
                assert t["exit_time"].startswith(t["expiry"])
        for p in d.positions:
            assert len(p["trade_ids"]) == 4


def test_an_exit_on_position_mtm_closes_when_the_kernel_sees_it(sim_year):
    doc = json.loads((EXAMPLES / "short_straddle.json").read_text())
    for leg in doc["entries"][0]["legs"]:
        leg.pop("stop_loss")
    doc["exits"] = [{"id": "take-1500", "when": {"lhs": {"position_mtm": "straddle"}, "op": ">=",
                                                  "rhs": {"value": 1500}}}]
    result, days = run(doc, sim_year, OptionSource("synthetic"), start=date(2024, 2, 1), end=date(2024, 3, 31))
    by_signal = [(d, t) for d in days for t in d.trades if t["exit_reason"] == "signal:take-1500"]
    assert by_signal and len(by_signal) % 2 == 0
    for d, t in by_signal:
        ev = d.events[t["exit_flow_ids"][0]]
        (row,) = ev["evaluated_conditions"]
        assert row["lhs"] == "MTM(straddle)" and row["lhs_value"] >= 1500 and row["rhs_value"] == 1500


def test_the_kernels_marks_equal_the_synthetic_chains_prices(sim_year):
    """The kernel prices held legs with a per-bar cache; the results layer re-prices ticks with
    synth_price_nb: the same numbers, so a leg carried overnight shows one price at the close."""
    doc = json.loads((EXAMPLES / "iron_condor_weekly.json").read_text())
    _, days = run(doc, sim_year, OptionSource("synthetic"), start=date(2024, 1, 1), end=date(2024, 1, 31),
                  tick_interval=1)
    compared = 0
    for d in days:
        last = d.ticks[-1]
        marks = {(p["position_id"], p["leg_id"]): p["current_price"] for p in last["open_positions"]}
        for p in d.open_positions:
            assert marks[(p["position_id"], p["leg_id"])] == p["current_price"]
            compared += 1
    assert compared >= 20
