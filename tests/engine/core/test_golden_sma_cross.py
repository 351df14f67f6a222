"""Golden end-to-end: the bundled SMA crossover reproduces backtesting.py's SmaCross trades.

tests/data/sma_cross_expected.csv was produced by backtesting.py itself (see
tests/data/make_sma_cross_expected.py), not by this engine.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.engine.core.backtest import Backtest
from services.engine.core.data import load_bars
from services.engine.core.spec import compile_strategy, parse_strategy_json

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "tests" / "data"
SMA = REPO / "examples" / "strategies" / "sma_cross.json"


@pytest.fixture(scope="module")
def result():
    plan = compile_strategy(parse_strategy_json(SMA.read_text()))
    bt = Backtest(plan, load_bars(DATA / "daily_ohlc.csv"))
    res = bt.run()
    return bt, res


def test_same_trades_as_backtesting_py(result):
    bt, res = result
    ours = [t for t in bt.builder.trade_dicts(res.trades) if t["exit_reason"] != "end_of_data"]
    with open(DATA / "sma_cross_expected.csv") as f:
        expected = list(csv.DictReader(f))
    assert len(ours) == len(expected) == 30
    for mine, ref in zip(ours, expected):
        assert mine["entry_time"][:10] == ref["EntryTime"]
        assert mine["exit_time"][:10] == ref["ExitTime"]
        assert mine["side"] == ref["Side"]
        assert float(mine["entry_price"]) == pytest.approx(float(ref["EntryPrice"]), abs=0.005)
        assert float(mine["exit_price"]) == pytest.approx(float(ref["ExitPrice"]), abs=0.005)


def test_reversal_links_exit_and_entry_to_one_node_event(result):
    bt, res = result
    trades = bt.builder.trade_dicts(res.trades)
    for prev, nxt in zip(trades, trades[1:]):
        assert prev["exit_time"] == nxt["entry_time"]  # stop-and-reverse at the same open
        assert prev["exit_flow_ids"] == nxt["entry_flow_ids"]
        assert prev["exit_reason"] == f"signal:{nxt['entry_trigger']}"
    assert trades[-1]["exit_reason"] == "end_of_data"


def test_pnl_adds_up_to_final_equity(result):
    _, res = result
    assert res.trades["pnl"].sum() + 100_000 == pytest.approx(res.equity[-1])
    assert res.summary["total_trades"] == 31
    assert res.metrics["total_trades"] == 31


def test_cli_json_and_day_files(tmp_path):
    out = subprocess.run([sys.executable, "-m", "services.cli", "run", "--strategy", str(SMA), "--data",
                          str(DATA / "daily_ohlc.csv"), "--json", "--out", str(tmp_path / "days")],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) >= {"metrics", "trades", "days", "summary"}
    assert len(doc["trades"]) == 31 and len(doc["days"]) == 600
    exit_days = {t["exit_time"][:10] for t in doc["trades"]}
    written = {p.name for p in (tmp_path / "days").iterdir()}
    assert written == {d["date"] for d in doc["days"]}
    import gzip

    for day in sorted(exit_days)[:3]:
        trades = json.loads(gzip.decompress((tmp_path / "days" / day / "trades_daily.json.gz").read_bytes()))
        diags = json.loads(gzip.decompress((tmp_path / "days" / day / "diagnostics_export.json.gz").read_bytes()))
        assert trades["date"] == day and trades["trades"]
        for t in trades["trades"]:
            for fid in t["entry_flow_ids"] + t["exit_flow_ids"]:
                ev = diags["events_history"][fid]
                assert ev["execution_id"] == fid and ev["evaluated_conditions"]
                cond = ev["evaluated_conditions"][0]
                assert cond["lhs"] == "SMA(10)" and cond["rhs"] == "SMA(20)" and cond["result"] is True


@pytest.mark.parametrize("args, fragment", [
    (["--strategy", "BAD", "--data", str(DATA / "daily_ohlc.csv")], "error:"),
    (["--strategy", str(SMA), "--data", str(DATA / "missing.csv")], "does not exist"),
    (["--strategy", str(SMA), "--data", "NO-SUCH-SYMBOL"], "unknown dataset"),
    (["--strategy", str(SMA), "--data", str(DATA / "daily_ohlc.csv"), "--from", "2030-01-01"], "no trading days"),
])
def test_cli_bad_input_exits_2_without_traceback(tmp_path, args, fragment):
    if args[1] == "BAD":
        bad = tmp_path / "bad.json"
        bad.write_text(SMA.read_text().replace('"sma_slow"}', '"sma_slwo"}'))
        args = ["--strategy", str(bad)] + args[2:]
    out = subprocess.run([sys.executable, "-m", "services.cli", "run", *args], capture_output=True, text=True,
                         timeout=120, cwd=REPO, env={**__import__("os").environ, "HINDSIGHT_DATA_DIR": str(tmp_path)})
    assert out.returncode == 2, out.stderr
    assert fragment in out.stderr and "Traceback" not in out.stderr
    if args[1].endswith("bad.json"):
        assert "entries[0].when.rhs: unknown indicator 'sma_slwo' (defined: sma_fast, sma_slow)" in out.stderr


def test_cli_json_streams_the_same_trades_as_the_run(tmp_path, result):
    """--json writes each day's trades as the day finishes; the document is the in-memory
    run's trades, in order, then days, summary and metrics (NaN metrics as null)."""
    bt, res = result
    out = subprocess.run([sys.executable, "-m", "services.cli", "run", "--strategy", str(SMA), "--data",
                          str(DATA / "daily_ohlc.csv"), "--json"], capture_output=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert list(doc) == ["strategy", "symbol", "trades", "days", "summary", "metrics"]
    assert doc["trades"] == bt.builder.trade_dicts(res.trades)
    assert doc["summary"] == res.summary
    assert all(v is None or isinstance(v, (int, float)) for v in doc["metrics"].values())
    assert b"NaN" not in out.stdout and b"Infinity" not in out.stdout


def test_cli_json_reader_that_leaves_early_is_not_an_error(data_dir):
    """`hindsight run ... --json | head -c 100`: the reader closes the pipe mid-stream (a year
    of one-minute trades is megabytes, far more than a pipe holds)."""
    import os

    proc = subprocess.run(f"{sys.executable} -m services.cli run --strategy {SMA} --data SIM-NIFTY --from 2024-01-01 "
                          f"--to 2024-12-31 --commission-pct 0 --json | head -c 100 > /dev/null; "
                          "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, "HINDSIGHT_DATA_DIR": str(data_dir)})
    assert proc.stdout.strip() == "0", proc.stderr
    assert proc.stderr == ""


def test_console_script_writes_day_files_from_its_child_process(tmp_path):
    """`hindsight run --out` as installed (the console script is __main__ of the process whose
    child writes the files: spawn must not run the CLI again in the child)."""
    script = Path(sys.executable).parent / "hindsight"
    if not script.exists():
        pytest.skip("the package is not installed as a console script here")
    out = subprocess.run([str(script), "run", "--strategy", str(SMA), "--data", str(DATA / "daily_ohlc.csv"),
                          "--out", str(tmp_path / "days")], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("SMA 10/20 crossover") == 1  # the report once: the child did not run the CLI
    assert len(list((tmp_path / "days").iterdir())) == 600
