"""Options figures for `make bench`: the short straddle through the service and in `hindsight run`,
and the legs kernel alone with four open legs priced every bar.

    python benchmarks/options_bench.py [service] [kernel] [cli]   # some parts, one JSON line

`make bench` runs all three as its "options" section (benchmarks/run.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.engine.options.pricing import RISK_FREE_RATE, YEAR_MINUTES, bs_price_nb  # noqa: E402
from services.engine.options.quotes import synth_price_nb  # noqa: E402

STRADDLE = REPO / "examples" / "strategies" / "short_straddle.json"
WEEKLY_FROM = "2019-02-11"  # NSE listed NIFTY weeklies from then on
PARTS = ("service", "kernel", "cli")


def _bench_dir(prefix: str) -> Path:
    # Inside the repo's disk area, not /tmp: some machines' /tmp is much slower at creating files.
    (REPO / "bench-out").mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=REPO / "bench-out"))


def monthly_straddle() -> dict:
    """The example straddle with both legs on the monthly expiry (listed over all of 2016-2025)."""
    doc = json.loads(STRADDLE.read_text())
    for entry in doc["entries"]:
        for leg in entry["legs"]:
            leg["expiry"] = {"kind": "monthly"}
    doc["name"] += " (monthly expiry)"
    return doc


# --- 1. one year through the service --------------------------------------------------------------

@contextlib.contextmanager
def _engine(data_dir: Path):
    """`hindsight engine` in its own process (as deployed) on a free port; yields its address."""
    from benchmarks.gateway_bench import _free_port

    store = _bench_dir("opt-store-")
    addr = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "HINDSIGHT_GRPC_ADDR": addr, "HINDSIGHT_DATA_DIR": str(data_dir),
           "HINDSIGHT_STORE_DIR": str(store), "HINDSIGHT_MAX_QUEUED": "64"}
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "engine"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield addr
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(store, ignore_errors=True)


def service(data_dir: Path) -> dict:
    with _engine(data_dir) as addr:
        return asyncio.run(_service(addr))


async def _service(addr: str) -> dict:
    import grpc
    from google.protobuf import json_format

    from hindsight.v1 import backtest_service_pb2 as pb
    from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
    from hindsight.v1 import strategy_pb2

    strategy = json_format.Parse(STRADDLE.read_text(), strategy_pb2.Strategy())
    async with grpc.aio.insecure_channel(addr) as ch:
        await asyncio.wait_for(ch.channel_ready(), 120)
        stub = pb_grpc.BacktestServiceStub(ch)

        async def run(a: str, b: str):
            """StartBacktest, then StreamBacktestBatches to the terminal event: (seconds, last event, reply)."""
            t0 = time.perf_counter()
            r = await stub.StartBacktest(pb.StartBacktestRequest(strategy=strategy, symbol="SIM-NIFTY",
                                                                 start_date=a, end_date=b))
            n, last = 0, None
            async for batch in stub.StreamBacktestBatches(pb.StreamBacktestBatchesRequest(backtest_id=r.backtest_id)):
                for ev in batch.events:  # each event handled, as a consumer would
                    n, last = n + 1, ev
            took = time.perf_counter() - t0
            if last is None or last.WhichOneof("event") != "backtest_completed":
                raise RuntimeError(f"straddle {a}..{b} ended with {last}")
            return took, n, last, r

        await run("2024-01-01", "2024-01-31")  # warm every path (numba's cache, the legs' tables) once
        clients, engine_side = [], []
        for _ in range(3):
            took, n, last, r = await run("2024-01-01", "2024-12-31")
            clients.append(took)
            bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=r.backtest_id, omit_days=True))
            engine_side.append((bt.finished_at.ToNanoseconds() - bt.created_at.ToNanoseconds()) / 1e9)
    summary = last.backtest_completed.overall_summary
    return {"service_one_year_client_s": min(clients), "service_one_year_s": min(engine_side),
            "service_one_year_days": r.total_days, "service_one_year_trades": summary.total_trades,
            "service_one_year_events": n}


# --- 2. the legs kernel alone -----------------------------------------------------------------------

def _condor_doc() -> dict:
    """A short iron condor on the monthly expiry, held to expiry and sold again the next morning:
    four legs open on all but one bar a month, no stops, no square-off, no exit nodes. A single
    entry would be flat after its first expiry, so the day's first bar signals (the 09:16 open
    fills) and it acts only when the position is flat. (Signalled at the expiry day's last bar,
    the strike and expiry are chosen then: the day's own expiry, filled the next day, expired.)"""
    def leg(leg_id: str, cp: str, side: str, offset: int) -> dict:
        return {"id": leg_id, "option_type": cp, "side": side, "lots": 1, "expiry": {"kind": "monthly"},
                "atm_offset": offset}

    return {
        "name": "monthly short iron condor, always on",
        "session": {"timezone": "Asia/Kolkata", "calendar": "XBOM", "open_time": "09:15", "close_time": "15:30"},
        "entries": [{"id": "condor", "name": "sell the condor at the open when flat",
                     "when": {"lhs": {"field": "time"}, "op": "==", "rhs": {"time": "09:15"}},
                     "max_entries_per_day": 1,
                     "legs": [leg("short-ce", "CE", "sell", 2), leg("short-pe", "PE", "sell", 2),
                              leg("long-ce", "CE", "buy", 5), leg("long-pe", "PE", "buy", 5)]}],
        "execution": {"fill": "next_open", "commission_pct": 0.03, "slippage_pct": 0.1, "initial_capital": 500000},
    }


def _legs_open_per_bar(runner, state, trades: np.ndarray, n: int) -> np.ndarray:
    """int64[n]: legs open at each bar's close (a leg is marked from its entry bar to its exit bar)."""
    delta = np.zeros(n + 1, np.int64)
    np.add.at(delta, trades["entry_bar"], 1)
    np.add.at(delta, trades["exit_bar"] + 1, -1)
    for _, _, pos, _ in runner.open_legs(state):
        delta[pos["entry_bar"]] += 1
    return np.cumsum(delta)[:n]


@njit(cache=True, nogil=True)
def _bs_loop_nb(n):
    """n calls of bs_price_nb; spot, strike and time change every call (nothing hoisted), summed."""
    total = 0.0
    for i in range(n):
        t = (3000 - i % 3000) / YEAR_MINUTES
        total += bs_price_nb(1 if i & 1 else -1, 20000.0 + (i & 1023) * 0.25, 19000.0 + ((i >> 1) & 63) * 50.0,
                             t, 0.15, RISK_FREE_RATE)
    return total


@njit(cache=True, nogil=True)
def _synth_loop_nb(n):
    """As _bs_loop_nb through synth_price_nb: the surface's IV, Black-Scholes and the tick rounding,
    what the legs kernel pays for each leg price on SIM-NIFTY."""
    total = 0.0
    for i in range(n):
        t = (3000 - i % 3000) / YEAR_MINUTES
        total += synth_price_nb(1 if i & 1 else -1, 20000.0 + (i & 1023) * 0.25, 19000.0 + ((i >> 1) & 63) * 50.0,
                                t, 0.15, RISK_FREE_RATE)
    return total


def _ns_per_call(loop, n: int = 4_000_000, repeat: int = 5) -> float:
    loop(1000)  # compile, or load from numba's cache
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        loop(n)
        best = min(best, time.perf_counter() - t)
    return best / n * 1e9


def kernel(data_dir: Path) -> dict:
    from services.engine.core.backtest import Backtest
    from services.engine.core.catalog import Catalog
    from services.engine.core.spec import compile_strategy, parse_strategy_json
    from services.engine.options.runner import OptionSource

    bars = Catalog(data_dir).load("SIM-NIFTY")
    plan = compile_strategy(parse_strategy_json(json.dumps(_condor_doc())))
    bt = Backtest(plan, bars, options=OptionSource("synthetic"))
    runner, n, first = bt.legs, len(bt.bars), bt.first_bar

    def once(stop: int = n):
        state = runner.new_state(bt.initial_capital, 4096)
        t = time.perf_counter()
        trades = runner.run_chunk(state, first, stop)
        return time.perf_counter() - t, trades, state

    once(first + 2000)  # load the kernel from numba's cache
    best = math.inf
    for _ in range(3):
        took, trades, state = once()
        best = min(best, took)
    bars_stepped = n - first
    open_now = _legs_open_per_bar(runner, state, trades, n)[first:]
    four_open = float(np.mean(open_now == 4))
    if four_open < 0.99:
        raise RuntimeError(f"only {four_open:.1%} of the bars had 4 legs open: the figure would not mean 4 legs")
    # The same bars with no leg ever open: what the bar loop costs without pricing.
    signal = runner.entry_signal
    runner.entry_signal = np.zeros_like(signal)
    try:
        flat = min(once()[0] for _ in range(3))
    finally:
        runner.entry_signal = signal
    return {"kernel_mbars_per_s": bars_stepped / best / 1e6, "kernel_ns_per_bar": best / bars_stepped * 1e9,
            "kernel_bars": bars_stepped, "kernel_4_legs_open_pct": 100.0 * four_open, "kernel_leg_trades": len(trades),
            "kernel_flat_ns_per_bar": flat / bars_stepped * 1e9,
            "bs_price_nb_ns": _ns_per_call(_bs_loop_nb), "synth_price_nb_ns": _ns_per_call(_synth_loop_nb)}


# --- 3. the decade in `hindsight run` ---------------------------------------------------------------

_REPORT = re.compile(r": (\d+) days, (\d+) trades in ([0-9.]+)s")


def cli(data_dir: Path) -> dict:
    out = _bench_dir("opt-cli-")
    monthly = out / "short_straddle_monthly.json"
    monthly.write_text(json.dumps(monthly_straddle(), indent=2))
    exe = [sys.executable, "-m", "services.cli", "run", "--data", "SIM-NIFTY"]
    env = {**os.environ, "HINDSIGHT_DATA_DIR": str(data_dir)}
    res: dict = {}
    try:
        for key, strategy, extra in (("cli_weekly", STRADDLE, ["--from", WEEKLY_FROM]), ("cli_monthly", monthly, [])):
            walls = []
            for k in range(3):  # the first may compile and cache; the others are warm
                # A new folder each time: deleting thousands of files just before slows the next writes.
                t0 = time.perf_counter()
                p = subprocess.run(exe + ["--strategy", str(strategy), "--out", str(out / f"{key}{k}")] + extra,
                                   cwd=REPO, env=env, capture_output=True, text=True)
                walls.append(time.perf_counter() - t0)
                if p.returncode:
                    raise RuntimeError(p.stderr)
            days, trades, inside = _REPORT.search(p.stdout).groups()
            res |= {f"{key}_first_s": walls[0], f"{key}_warm_s": min(walls[1:]), f"{key}_days": int(days),
                    f"{key}_trades": int(trades), f"{key}_in_process_s": float(inside),
                    f"{key}_day_dirs": len(list((out / f"{key}2").iterdir()))}
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return res


def run(data_dir: Path, parts=PARTS) -> dict:
    out: dict = {}
    for part in parts:
        out |= globals()[part](data_dir)
    return out


if __name__ == "__main__":
    data = Path(os.environ.get("HINDSIGHT_DATA_DIR", REPO / "var"))
    print(json.dumps(run(data, sys.argv[1:] or PARTS)))
