"""`hindsight optimize`: the real command line in a subprocess, on two months of SIM-NIFTY.

The top-K table with the overfitting reading, `--json` (one document on stdout), bad input
(exit 2 with each problem's field path and flag), walk-forward, a data file, and Ctrl-C (stops,
prints the best so far).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SMA = REPO / "examples" / "strategies" / "sma_cross.json"
SPACE = REPO / "examples" / "spaces" / "sma_cross.space.json"
DAILY = REPO / "tests" / "data" / "daily_ohlc.csv"
TWO_MONTHS = ["--start", "2024-01-01", "--end", "2024-02-29"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from services.engine.core.catalog import Catalog

    d = tmp_path_factory.mktemp("optimize-data")
    Catalog(d).load("SIM-NIFTY", None, None)
    return d


def optimize(data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "optimize", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "HINDSIGHT_DATA_DIR": str(data_dir)})


def grid_size() -> int:
    """fast 5..50 step 5, slow 20..200 step 10, fast < slow."""
    return sum(1 for f in range(5, 55, 5) for s in range(20, 210, 10) if f < s)


def test_example_space_is_the_documented_grid() -> None:
    space = json.loads(SPACE.read_text())
    assert [p["name"] for p in space["parameters"]] == ["fast", "slow"]
    assert space["parameters"][0]["int_range"] == {"low": 5, "high": 50, "step": 5}
    assert space["parameters"][1]["int_range"] == {"low": 20, "high": 200, "step": 10}
    assert space["constraints"] == [{"lhs": "fast", "op": "<", "rhs": "slow"}]


def test_grid_prints_the_top_table_and_the_overfitting_reading(data_dir: Path, tmp_path: Path) -> None:
    best = tmp_path / "best.json"
    out = optimize(data_dir, "--strategy", str(SMA), "--space", str(SPACE), "--method", "grid", "--data", "SIM-NIFTY",
                   *TWO_MONTHS, "--top-k", "5", "--objective", "sharpe:maximize", "--best-out", str(best))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    n = grid_size()
    assert f"grid, {n} of {n} trials" in lines[0] and "sharpe:maximize" in lines[0]
    head = next(i for i, line in enumerate(lines) if line.startswith("Top 5"))
    columns = lines[head + 1].split()
    assert columns[:4] == ["rank", "trial", "fast", "slow"]
    assert "return" in columns and "DD" in columns and columns[-1] == "trades"
    rows = [line.split() for line in lines[head + 2:head + 7]]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]
    sharpes = [float(r[4].replace(",", "")) for r in rows]
    assert sharpes == sorted(sharpes, reverse=True)
    assert all(int(r[2]) < int(r[3]) for r in rows)  # the constraint held
    text = out.stdout
    assert re.search(r"Overfitting: DSR \d\.\d\d .*PBO \d\.\d\d", text)
    assert "luck" in text  # the plain-words reading
    assert f"Best: fast={rows[0][2]}, slow={rows[0][3]}" in text
    periods = [i["period"] for i in json.loads(best.read_text())["indicators"]]
    assert periods == [int(rows[0][2]), int(rows[0][3])]
    # Not a terminal: no bar, a start line and plain progress lines on stderr only.
    assert "\r" not in out.stderr and "trials (grid)" in out.stderr
    assert "Traceback" not in out.stderr


def test_json_is_one_document_with_the_top_k_and_every_trial(data_dir: Path) -> None:
    out = optimize(data_dir, "--strategy", str(SMA), "--space", str(SPACE), "--data", "SIM-NIFTY", *TWO_MONTHS,
                   "--top-k", "3", "--filter", "total_trades>=1", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # nothing else on stdout
    assert doc["status"] == "completed"
    assert len(doc["top"]) == 3 and len(doc["trials"]) == grid_size()
    assert doc["progress"]["completed_trials"] == str(grid_size())  # proto3 JSON: int64 as a string
    assert doc["started"]["parameters"] == ["fast", "slow"] and doc["started"]["objectives"] == ["sharpe:maximize"]
    values = [t["objective_values"][0] for t in doc["top"]]
    assert values == sorted(values, reverse=True)
    assert values[0] == max(t["objective_values"][0] for t in doc["trials"] if t["feasible"])
    first = doc["top"][0]
    assert set(first["parameters"]) == {"fast", "slow"} and first["metrics"]["total_trades"] >= 1
    assert [i["period"] for i in doc["best_strategy"]["indicators"]] == [first["parameters"]["fast"],
                                                                         first["parameters"]["slow"]]
    rep = doc["overfitting"]
    assert rep["reading"] and int(rep["trials"]) == grid_size()
    assert rep["deflated_sharpe"] is None or 0 <= rep["deflated_sharpe"] <= 1
    assert "NaN" not in out.stdout and "Infinity" not in out.stdout


def test_bad_space_path_exits_2_naming_the_field(data_dir: Path, tmp_path: Path) -> None:
    space = json.loads(SPACE.read_text())
    space["parameters"][0]["path"] = "indicators[7].period"
    bad = tmp_path / "bad.space.json"
    bad.write_text(json.dumps(space))
    out = optimize(data_dir, "--strategy", str(SMA), "--space", str(bad), "--data", "SIM-NIFTY", *TWO_MONTHS)
    assert out.returncode == 2, out.stdout
    assert out.stdout == "" and "Traceback" not in out.stderr
    assert "error: invalid optimization (1 problem)" in out.stderr
    assert f"space.parameters[0].path (--space {bad})" in out.stderr
    assert "out of range" in out.stderr


def test_every_bad_flag_is_named_at_once(data_dir: Path, tmp_path: Path) -> None:
    out = optimize(data_dir, "--strategy", str(SMA), "--space", str(SPACE), "--data", "SIM-NIFTY", *TWO_MONTHS,
                   "--objective", "sharpee", "--objective", "total_return_pct:upwards", "--method", "gird",
                   "--filter", "trades~3", "--top-k", "500")
    assert out.returncode == 2, out.stdout
    err = out.stderr
    assert "error: invalid optimization (5 problems)" in err, err
    assert "objectives[0].metric (--objective sharpee): 'sharpee' is not a metric (did you mean 'sharpe'?)" in err
    assert "objectives[1].direction (--objective total_return_pct:upwards)" in err
    assert "method (--method): unknown method 'gird'" in err
    assert "filters (--filter trades~3): use METRIC>=N" in err
    assert "top_k (--top-k): 500" in err
    missing = optimize(data_dir, "--strategy", str(SMA), "--space", str(tmp_path / "nope.json"), "--data", "SIM-NIFTY")
    assert missing.returncode == 2 and "cannot read it" in missing.stderr
    assert "(1 problem)" in missing.stderr  # not followed by "space.parameters: required"
    unknown = optimize(data_dir, "--strategy", str(SMA), "--space", str(SPACE), "--data", "NO-SUCH")
    assert unknown.returncode == 2 and "unknown dataset 'NO-SUCH'" in unknown.stderr


def test_walk_forward_prints_windows_and_efficiency(data_dir: Path) -> None:
    args = ["--strategy", str(SMA), "--space", str(SPACE), "--data", "SIM-NIFTY", "--start", "2024-01-01",
            "--end", "2024-06-30", "--method", "random", "--max-trials", "12", "--seed", "3",
            "--walk-forward", "40:20", "--commission-pct", "0.01"]
    out = optimize(data_dir, *args)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    windows = int(re.search(r"Walk-forward: (\d+) windows", text).group(1))
    assert windows >= 3
    rows = [line.split() for line in text.splitlines() if re.match(r"^\s+\d+\s+2024-\d\d-\d\d\.\.", line)]
    assert [int(r[0]) for r in rows] == list(range(1, windows + 1))
    assert all(r[3].startswith("fast=") and r[4].startswith("slow=") for r in rows)
    assert "Out of sample (" in text and "Walk-forward efficiency" in text
    assert "The latest window's winner" in text
    doc = json.loads(optimize(data_dir, *args, "--json").stdout)
    wf = doc["walk_forward"]
    assert len(wf["windows"]) == windows and len(wf["equity"]) == len(wf["dates"]) > 0
    assert len(doc["trials"]) == 12 * windows and {t["window"] for t in doc["trials"]} == set(range(1, windows + 1))


def test_a_data_file_and_two_objectives_mark_the_pareto_front(data_dir: Path) -> None:
    out = optimize(data_dir, "--strategy", str(SMA), "--space", str(SPACE), "--data", str(DAILY),
                   "--objective", "sharpe", "--objective", "max_drawdown_pct:max", "--top-k", "4", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["started"]["config"]["symbol"] == "daily_ohlc"
    front = {t["number"] for t in doc["pareto_front"]}
    assert front and doc["top"][0]["number"] in front
    table = optimize(data_dir, "--strategy", str(SMA), "--space", str(SPACE), "--data", str(DAILY),
                     "--objective", "sharpe", "--objective", "max_drawdown_pct:max", "--top-k", "4")
    assert "(* on the Pareto front)" in table.stdout and re.search(r"^\s+1\*\s", table.stdout, re.MULTILINE)


def test_ctrl_c_stops_and_prints_the_best_so_far(data_dir: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.space.json"
    big.write_text(json.dumps({
        "parameters": [{"name": "fast", "path": "indicators[0].period", "int_range": {"low": 2, "high": 300}},
                       {"name": "slow", "path": "indicators[1].period", "int_range": {"low": 3, "high": 600}}],
        "constraints": [{"lhs": "fast", "op": "<", "rhs": "slow"}]}))
    err = tmp_path / "stderr.txt"
    with open(err, "w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "services.cli", "optimize", "--strategy", str(SMA), "--space",
                                 str(big), "--method", "random", "--max-trials", "100000", "--data", "SIM-NIFTY",
                                 "--start", "2022-01-01", "--end", "2024-12-31", "--top-k", "3"], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=err_file, text=True,
                                env={**os.environ, "HINDSIGHT_DATA_DIR": str(data_dir)})
        try:
            deadline = time.monotonic() + 120
            while "Ctrl-C stops" not in err.read_text():  # the handler is installed once this is out
                assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
                time.sleep(0.1)
            time.sleep(2.0)
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err.read_text()
    assert "of 100,000 trials" in stdout and "(stopped)" in stdout
    assert "Stopped before the end" in stdout
    rows = re.findall(r"^\s+([123])\s+\d+\s+\d+\s+\d+\s", stdout, re.MULTILINE)
    assert rows[:1] == ["1"]
    assert "stopping after the trials in flight" in err.read_text() and "Traceback" not in err.read_text()
