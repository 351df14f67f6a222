"""`make bench`: Hindsight's speed and memory, with peer libraries measured in the same run.

Each section runs in its own process (so peak memory is its own) and prints one JSON line;
this driver collects them into a table with the targets from the issues and the ratios.

    python benchmarks/run.py                 # everything
    python benchmarks/run.py kernel service  # some sections (e.g. `options` alone)
    python benchmarks/run.py --quick         # smaller peer runs (vectorbt on a 1-year slice)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
STRATEGIES = REPO / "examples" / "strategies"
SECTIONS = ("kernel", "memory", "perbar", "cli", "output", "service", "gateway", "load", "dashboard", "options",
            "optimize", "datasets")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _data_dir() -> Path:
    d = Path(os.environ.get("HINDSIGHT_DATA_DIR", REPO / "var"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _sim():
    from services.engine.core.catalog import Catalog

    return Catalog(_data_dir()).load("SIM-NIFTY")


def _sma_plan(commission_pct: float = 0.0):
    from services.engine.core.spec import compile_strategy, parse_strategy_json

    doc = json.loads((STRATEGIES / "sma_cross.json").read_text())
    doc["execution"]["commission_pct"] = commission_pct  # peers run without fees too
    return compile_strategy(parse_strategy_json(json.dumps(doc)))


# --- sections (each runs in a child process) ------------------------------------------------

def section_kernel(args) -> dict:
    from services.engine.core import kernels
    from services.engine.core.backtest import Backtest

    bars = _sim()
    out = {}
    # As shipped (0.2 % commission: equity runs down and sizes go to zero after ~750 trades)
    # and without fees (every crossover trades: ~50 k trades).
    for label, commission in (("shipped", 0.2), ("no_fees", 0.0)):
        bt = Backtest(_sma_plan(commission), bars)
        n = len(bt.bars)
        cap = int(bt.signals.entry.sum()) + 16

        def once():
            return kernels.run_chunk(bt.inputs, kernels.new_state(2, 1e5, trade_capacity=cap), 0, n)

        trades = len(once())
        t = _best(once, 7)
        out[f"{label}_mbars_per_s"] = n / t / 1e6
        out[f"{label}_trades"] = trades
    out["bars"] = n
    out["mbars_per_s"] = out["shipped_mbars_per_s"]
    out["peak_mb"] = _peak_mb()
    return out


def _ours_in_memory(bars, plan):
    """Indicators, signals, kernel, trades with their diagnostics (columnar), metrics."""
    from services.engine.core.backtest import Backtest
    from services.engine.core.results import gather_diagnostics

    bt = Backtest(plan, bars)
    res = bt.run()
    diagnostics = gather_diagnostics(plan, bt.signals, res.trades)
    return res, res.trades, diagnostics


def section_memory(args) -> dict:
    import numpy as np
    import pandas as pd

    bars = _sim()
    if args.quick:
        bars = bars.slice(len(bars) - 94_000, len(bars))
    plan = _sma_plan()
    _ours_in_memory(bars.slice(0, 5000), plan)
    t_ours = _best(lambda: _ours_in_memory(bars, plan), 3)
    res, trades, events = _ours_in_memory(bars, plan)
    ours_peak = _peak_mb()

    import warnings

    warnings.filterwarnings("ignore")
    import vectorbt as vbt

    close = pd.Series(bars.close, index=bars.local_index.tz_localize(None))

    def vbt_run(c):
        fast, slow = vbt.MA.run(c, 10), vbt.MA.run(c, 20)
        entries, exits = fast.ma_crossed_above(slow), fast.ma_crossed_below(slow)
        pf = vbt.Portfolio.from_signals(c, entries=entries, short_entries=exits, init_cash=1e5, size=np.inf,
                                        freq="1min")
        return pf, pf.stats()

    vbt_run(close.iloc[:5000])  # compile vectorbt's numba functions
    t0 = time.perf_counter()
    pf, stats = vbt_run(close)
    t_vbt = time.perf_counter() - t0
    return {"bars": len(bars), "ours_s": t_ours, "ours_trades": len(trades),
            "vectorbt_s": t_vbt, "vectorbt_trades": int(stats["Total Trades"]), "speedup": t_vbt / t_ours,
            "peak_mb": _peak_mb(), "ours_peak_mb": ours_peak}


def section_perbar(args) -> dict:
    bars = _sim()
    bars = bars.slice(len(bars) - 100_000, len(bars))
    plan = _sma_plan()
    _ours_in_memory(bars.slice(0, 5000), plan)
    t_ours = _best(lambda: _ours_in_memory(bars, plan), 3)

    import warnings

    warnings.filterwarnings("ignore")
    from backtesting import Backtest as BtpBacktest

    from benchmarks.peers import backtesting_sma_cross

    SmaCross = backtesting_sma_cross()
    df = bars.to_frame().tz_localize(None)
    df.columns = ["Open", "High", "Low", "Close", "Volume"]
    t0 = time.perf_counter()
    stats = BtpBacktest(df, SmaCross, cash=10_000_000, exclusive_orders=True).run()
    t_btp = time.perf_counter() - t0
    n = len(bars)
    return {"bars": n, "ours_s": t_ours, "ours_ns_per_bar": t_ours / n * 1e9, "backtesting_py_s": t_btp,
            "backtesting_py_ns_per_bar": t_btp / n * 1e9, "backtesting_py_trades": int(stats["# Trades"]),
            "speedup": t_btp / t_ours, "peak_mb": _peak_mb()}


def section_cli(args) -> dict:
    import shutil
    import tempfile

    exe = [sys.executable, "-m", "services.cli", "run", "--data", "SIM-NIFTY"]
    env = {**os.environ, "HINDSIGHT_DATA_DIR": str(_data_dir())}
    # Inside the repo's disk area, not /tmp: some machines' /tmp is much slower at creating files.
    (REPO / "bench-out").mkdir(exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="cli-", dir=REPO / "bench-out"))
    runs = []
    try:
        for k in range(3):  # the first may compile and cache; the others are warm
            # A new folder each time: deleting thousands of files just before (with the
            # `discard` mount option) slows the next writes down for seconds.
            t0 = time.perf_counter()
            p = subprocess.run(exe + ["--strategy", str(STRATEGIES / "sma_cross.json"), "--out", str(out / f"days{k}")],
                               cwd=REPO, env=env, capture_output=True, text=True)
            runs.append(time.perf_counter() - t0)
            if p.returncode:
                raise RuntimeError(p.stderr)
        days = len(list((out / "days2").iterdir()))
        # A fresh process: from spawn until its first trading day is computed (imports, data,
        # indicators, and the kernels loaded from numba's cache).
        starts = []
        probe = ("import time, json, sys; from datetime import date; "
                 "from services.engine.core.catalog import Catalog; "
                 "from services.engine.core.spec import compile_strategy, parse_strategy_json; "
                 "from services.engine.core.backtest import Backtest, RunSettings; "
                 f"plan = compile_strategy(parse_strategy_json(open({str(STRATEGIES / 'rsi_reversion.json')!r}).read())); "
                 f"bars = Catalog({str(_data_dir())!r}).load('SIM-NIFTY'); "
                 "bt = Backtest(plan, bars, RunSettings(start=date(2025, 12, 31))); "
                 "bt.run(on_day=lambda d: print('DAY', time.time(), flush=True))")
        for _ in range(3):
            t0 = time.time()
            p = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True,
                               check=True)
            day_at = float(next(ln for ln in p.stdout.splitlines() if ln.startswith("DAY")).split()[1])
            starts.append(day_at - t0)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"first_s": runs[0], "warm_s": min(runs[1:]), "day_dirs": days, "startup_s": min(starts),
            "peak_mb": _peak_mb()}


def section_service(args) -> dict:
    return asyncio.run(_service(args))


async def _service(args) -> dict:
    """The engine in its own process (as deployed: `hindsight engine`), the clients here."""
    import shutil
    import tempfile

    import grpc
    from google.protobuf import json_format

    from benchmarks.gateway_bench import _free_port
    from hindsight.v1 import backtest_service_pb2 as pb
    from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
    from hindsight.v1 import strategy_pb2

    (REPO / "bench-out").mkdir(exist_ok=True)
    store = Path(tempfile.mkdtemp(prefix="store-", dir=REPO / "bench-out"))
    port = _free_port()
    env = {**os.environ, "HINDSIGHT_GRPC_ADDR": f"127.0.0.1:{port}", "HINDSIGHT_DATA_DIR": str(_data_dir()),
           "HINDSIGHT_STORE_DIR": str(store), "HINDSIGHT_MAX_QUEUED": "512"}
    engine = subprocess.Popen([sys.executable, "-m", "services.cli", "engine"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rsi = json_format.Parse((STRATEGIES / "rsi_reversion.json").read_text(), strategy_pb2.Strategy())
    out: dict = {}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            await asyncio.wait_for(ch.channel_ready(), 120)
            stub = pb_grpc.BacktestServiceStub(ch)

            async def start(a, b, **kw):
                return await stub.StartBacktest(pb.StartBacktestRequest(strategy=rsi, symbol="SIM-NIFTY",
                                                                        start_date=a, end_date=b, **kw))

            async def drain(bid, after=0):
                n, last = 0, None
                async for ev in stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=bid, after_event_id=after)):
                    n, last = n + 1, ev
                return n, last

            async def drain_batches(bid):
                n, last = 0, None
                async for batch in stub.StreamBacktestBatches(pb.StreamBacktestBatchesRequest(backtest_id=bid)):
                    for ev in batch.events:  # each event handled, as a consumer would
                        n, last = n + 1, ev
                        assert ev.event_id == n
                return n, last

            await drain((await start("2024-01-01", "2024-01-31")).backtest_id)  # warm every path once
            firsts = []
            for _ in range(20):
                t0 = time.perf_counter()
                r = await start("2024-03-01", "2024-03-05")
                call = stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=r.backtest_id))
                await call.read()
                firsts.append(time.perf_counter() - t0)
                call.cancel()
            firsts.sort()
            out["start_to_first_event_ms_p50"] = firsts[len(firsts) // 2] * 1e3
            out["start_to_first_event_ms_max"] = firsts[-1] * 1e3

            async def whole_runs(request, times: int) -> tuple[float, float, int, object]:
                """Start → the terminal event in the log (the engine's own clock) and as a
                client streaming it sees it (its last event received): best of `times`."""
                engine_side, client_side = [], []
                for _ in range(times):
                    t0 = time.perf_counter()
                    r = await stub.StartBacktest(request)
                    n, last = await drain_batches(r.backtest_id)
                    client_side.append(time.perf_counter() - t0)
                    assert last.WhichOneof("event") == "backtest_completed"
                    bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=r.backtest_id, omit_days=True))
                    engine_side.append((bt.finished_at.ToNanoseconds() - bt.created_at.ToNanoseconds()) / 1e9)
                return min(engine_side), min(client_side), n, last

            year = pb.StartBacktestRequest(strategy=rsi, symbol="SIM-NIFTY", start_date="2024-01-01",
                                           end_date="2024-12-31")
            out["one_year_s"], out["one_year_client_s"], out["one_year_events"], last = await whole_runs(year, 3)
            out["one_year_trades"] = last.backtest_completed.overall_summary.total_trades
            # Ten years of the SMA crossover without fees (~50 k trades, ~106 k events).
            sma = json_format.Parse((STRATEGIES / "sma_cross.json").read_text(), strategy_pb2.Strategy())
            sma.execution.commission_pct = 0
            decade = pb.StartBacktestRequest(strategy=sma, symbol="SIM-NIFTY")
            out["ten_year_s"], out["ten_year_client_s"], out["ten_year_events"], last = await whole_runs(decade, 2)
            out["ten_year_trades"] = last.backtest_completed.overall_summary.total_trades

            big = await start("2024-01-01", "2024-03-31", tick_interval=1)
            total, _ = await drain(big.backtest_id)
            for key, read in (("replay_events_per_s", drain_batches), ("replay_per_message_events_per_s", drain)):
                best = float("inf")
                for _ in range(3):
                    t0 = time.perf_counter()
                    n, last = await read(big.backtest_id)
                    best = min(best, time.perf_counter() - t0)
                assert n == total and last.WhichOneof("event") == "backtest_completed"
                out[key] = n / best
            out["replay_events"] = total

            r = await start("2024-01-01", "2024-12-31")
            t0 = time.perf_counter()
            results = await asyncio.gather(*[drain(r.backtest_id) for _ in range(100)])
            out["readers_100_s"] = time.perf_counter() - t0
            counts = {n for n, _ in results}
            out["readers_100_all_complete"] = len(counts) == 1 and all(
                last.WhichOneof("event") == "backtest_completed" for _, last in results)
            out["readers_100_events_each"] = counts.pop()
    finally:
        engine.terminate()
        try:
            engine.wait(timeout=20)
        except subprocess.TimeoutExpired:
            engine.kill()
        shutil.rmtree(store, ignore_errors=True)
    out["peak_mb"] = _peak_mb()
    return out


def section_gateway(args) -> dict:
    from benchmarks.gateway_bench import run

    return run(_data_dir())


def section_load(args) -> dict:
    from benchmarks.load_bench import run

    out = run(_data_dir())
    out["peak_mb"] = _peak_mb()
    return out


def section_output(args) -> dict:
    from benchmarks.output_bench import run

    out = run(_data_dir())
    if out.get("before_out_peak_mb"):
        out["out_peak_vs_before"] = out["out_peak_mb"] / out["before_out_peak_mb"]
        out["json_peak_vs_before"] = out["json_peak_mb"] / out["before_json_peak_mb"]
    out["peak_mb"] = _peak_mb()
    return out


def section_dashboard(args) -> dict:
    from benchmarks.dashboard_bench import run

    out = run(_data_dir())
    out["peak_mb"] = _peak_mb()
    return out


def section_optimize(args) -> dict:
    from benchmarks.optimize_bench import run

    out = run(_data_dir(), quick=args.quick)
    out["peak_mb"] = _peak_mb()
    return out


def section_datasets(args) -> dict:
    from benchmarks.datasets_bench import run

    out = run(_data_dir())
    out["peak_mb"] = _peak_mb()
    return out


def section_options(args) -> dict:
    from benchmarks.options_bench import run

    out = run(_data_dir())
    out["peak_mb"] = _peak_mb()
    return out


# --- driver -----------------------------------------------------------------------------------

TARGETS = [
    ("optimize", "grid10k_s", "<=", 45, "optimizer: 10,000 SMA pairs over all of SIM-NIFTY (923 k bars), s"),
    ("optimize", "mbar_steps_per_s_per_core", ">=", 100, "  the same, M bar-steps/s per core"),
    ("optimize", "grid10k_peak_mb", "<=", 2048, "  peak memory of that process, MiB"),
    ("optimize", "vectorbt_speedup", ">=", 10, "optimizer vs vectorbt parameter broadcasting, 1,000 pairs (x)"),
    ("optimize", "backtesting_py_speedup", ">=", 100, "optimizer's sweep vs backtesting.py optimize, 100 pairs daily (x)"),
    ("optimize", "same_winners", "==", 1, "  the same winners as both peers (1 = yes)"),
    ("optimize", "first_trial_s", "<=", 1, "first trial_completed after StartOptimization (gRPC, 10,000-pair grid), s"),
    ("optimize", "dask_slower_pct", "<=", 15, "optimizer through a 2-worker Dask LocalCluster vs embedded, 10,000 trials, % slower"),
    ("datasets", "upload_mb_per_s", ">=", 50, "upload of a 5 M-row one-minute CSV through the gateway (stream, parse, check, store), MB/s"),
    ("datasets", "engine_upload_peak_mib", "<=", 500, "  peak memory of the engine during it, MiB"),
    ("datasets", "gateway_upload_peak_mib", "<=", 500, "  peak memory of the gateway during it, MiB"),
    ("datasets", "quality_s", "<=", 3, "quality report on that file (parse and every check), s"),
    ("datasets", "analytics_first_ms", "<=", 300, "GetAnalytics on a 10-year one-minute run (~50 k trades), first call as its stream ends, ms"),
    ("datasets", "analytics_uncached_ms", "<=", 300, "  ... new parameters, each computed once, ms (median, parsed by the Python client)"),
    ("datasets", "analytics_cached_ms", "<=", 20, "  ... cached, ms (median, parsed by the Python client)"),
    ("kernel", "shipped_mbars_per_s", ">=", 100, "trading kernel alone, M bars/s (SIM-NIFTY, sma_cross.json as shipped)"),
    ("kernel", "no_fees_mbars_per_s", ">=", 100, "trading kernel alone, M bars/s (same, no fees: ~50k trades)"),
    ("memory", "speedup", ">=", 5, "in memory vs vectorbt (indicators, signals, kernel, trades+diagnostics, metrics)"),
    ("perbar", "speedup", ">=", 100, "per bar vs backtesting.py SmaCross, 100k-bar slice"),
    ("cli", "warm_s", "<=", 3, "`hindsight run` SMA cross on all of SIM-NIFTY with day files, warm, s"),
    ("cli", "startup_s", "<=", 1, "a fresh process starts computing (numba cache), s (whole 1-day run)"),
    ("output", "out_s", "<=", 2.0, "`hindsight run` SMA no fees (~50k trades, 900k bars) with day files (--out), s"),
    ("output", "json_s", "<=", 2.0, "`hindsight run` ... --json (every trade on stdout), s"),
    ("output", "out_us_per_trade", "<=", 15, "  output cost per trade, day files: (--out - summary only) / trades, us"),
    ("output", "json_us_per_trade", "<=", 15, "  output cost per trade, --json, us"),
    ("output", "out_peak_vs_before", "<=", 1.0, "  peak memory --out / before the columnar path (same run)"),
    ("output", "json_peak_vs_before", "<=", 1.0, "  peak memory --json / before the columnar path (same run)"),
    ("output", "speedup_vs_vectorbt", ">=", 3, "whole process with day files vs vectorbt's (import, load Parquet, compute, CSV)"),
    ("service", "start_to_first_event_ms_p50", "<=", 50, "StartBacktest → first event, ms (p50)"),
    ("service", "one_year_s", "<=", 1, "one-year 1-minute backtest, day files + events written, s"),
    ("service", "one_year_client_s", "<=", 1, "  ... until a client streaming it (StreamBacktestBatches) has its last event, s"),
    ("service", "ten_year_s", "<=", 2.5, "10-year SMA no fees via the service: Start → terminal event in the log, s"),
    ("service", "replay_events_per_s", ">=", 50_000, "replay of a stored stream to one client (StreamBacktestBatches), events/s"),
    ("service", "readers_100_all_complete", "==", True, "100 concurrent readers of one backtest all complete"),
    ("gateway", "sse_events_per_s", ">=", 20_000, "SSE through the gateway to one client, events/s"),
    ("gateway", "sse_200_identical", "==", True, "200 concurrent EventSource clients get the identical sequence"),
    ("gateway", "get_overhead_ms_p50", "<=", 2, "gateway overhead on GetBacktest vs direct gRPC, ms (p50)"),
    ("gateway", "get_raw_overhead_ms_p50", "<=", 1, "  ... with a minimal keep-alive HTTP client instead of httpx, ms (p50)"),
    ("load", "slow_readers_rss_growth_mib", "<=", 400,
     "200 SSE clients that never read (10-year SMA run): the gateway's RSS growth, MiB"),
    ("load", "slow_readers_closed", "==", 200, "  ... closed by the gateway (slow_reader_timeout_s after each stalled)"),
    ("load", "sse_after_complete", "==", True, "  ... and then a reading client gets the whole run"),
    ("load", "idle_500_held", "==", True, "500 idle connections from one client held open (limit raised to 1024)"),
    ("load", "get_ms_p99", "<=", 50, "GetBacktest via the gateway, 2 runs computing + 50 queued, ms (p99)"),
    ("load", "get_idle_500_ms_p99", "<=", 50, "  ... with 500 idle connections held open too, ms (p99)"),
    ("load", "get_grpc_ms_p99", "<=", 50, "  ... straight to the engine over gRPC, ms (p99)"),
    ("dashboard", "final_after_terminal_s", "<=", 5,
     "dashboard (headless Chromium) final after the 10-year no-fees run's terminal event, s"),
    ("options", "service_one_year_client_s", "<=", 1,
     "short straddle (per-leg stops), one year via the service: Start → last event streamed, s"),
    ("options", "kernel_mbars_per_s", ">=", 30, "legs kernel alone, 4 open legs priced every bar, M bars/s"),
    ("options", "cli_weekly_warm_s", "<=", 3, "`hindsight run` short straddle 2019-02-11 → end of SIM-NIFTY, day files, warm, s"),
    ("options", "cli_monthly_warm_s", "<=", 3, "`hindsight run` short straddle, monthly expiry, 2016-2025, day files, warm, s"),
]

# Printed for comparison, without a target.
FIGURES = [
    ("output", "summary_s", "  `hindsight run` the same, summary only (process start, imports, data, run), s"),
    ("output", "before_out_s", "  --out before the columnar path (same run), s"),
    ("output", "before_json_s", "  --json before the columnar path (same run), s"),
    ("output", "vectorbt_s", "  vectorbt's whole process, s"),
    ("output", "parquet_out_s", "  ours, --out, reading the same Parquet file, s"),
    ("dashboard", "longtask_max_ms", "  dashboard: longest main-thread task while the run streams, ms"),
    ("dashboard", "replay_final_after_open_s", "  dashboard: the finished run opened again (every event at once), open → final, s"),
    ("output", "trades", "  trades (vectorbt: vectorbt_trades in results.json)"),
    ("service", "ten_year_client_s", "  ... until a client streaming it has its last event, s"),
    ("service", "ten_year_events", "  events in the ten-year run"),
    ("service", "replay_per_message_events_per_s", "  ... the same through StreamBacktest (one gRPC message per event), events/s"),
    ("service", "one_year_events", "  events in the one-year run"),
    ("gateway", "get_http_ms_p50", "GetBacktest through the gateway, ms (p50)"),
    ("gateway", "get_grpc_ms_p50", "GetBacktest direct over gRPC, ms (p50)"),
    ("load", "slow_readers_rss_per_reader_mib", "  ... per stalled SSE client, MiB (before issue 10: ~8.7)"),
    ("load", "slow_readers_all_closed_after_s", "  ... all 200 closed, s after they connected"),
    ("load", "get_ms_p50", "GetBacktest via the gateway while busy, minimal keep-alive client, ms (p50)"),
    ("load", "get_idle_500_ms_p50", "  ... with 500 idle connections held open to the gateway, ms (p50)"),
    ("load", "get_idle_500_ms_max", "  ... with 500 idle connections, ms (max)"),
    ("load", "get_grpc_ms_p50", "  ... straight to the engine over gRPC, ms (p50)"),
    ("load", "busy_running", "runs computing when measured (of 52 started)"),
    ("load", "busy_queued", "  ... queued"),
    ("load", "idle_500_rss_mib", "  gateway RSS of the 500 idle connections, MiB"),
    ("datasets", "upload_mb", "  size of the uploaded CSV, MB"),
    ("datasets", "upload_s", "  the upload, request to response, s"),
    ("datasets", "analytics_cached_raw_ms", "  GetAnalytics cached, call to bytes (no client parsing), ms (median)"),
    ("datasets", "analytics_uncached_raw_ms", "  GetAnalytics uncached, call to bytes, ms (median)"),
    ("datasets", "analytics_no_table_ms", "  GetAnalytics of a run without its table (day files read first), ms (median)"),
    ("datasets", "analytics_compare_ms", "  CompareBacktests, the decade and a one-year run, ms (median)"),
    ("datasets", "analytics_trades", "  trades in that run"),
    ("datasets", "analytics_bytes", "  bytes of its Analytics message"),
    ("options", "service_one_year_s", "  ... the straddle's terminal event in the engine's log (its own clock), s"),
    ("options", "kernel_ns_per_bar", "  legs kernel: ns per bar with 4 legs open"),
    ("options", "kernel_flat_ns_per_bar", "  legs kernel: ns per bar, the same bars with no leg open"),
    ("options", "kernel_4_legs_open_pct", "  legs kernel: bars stepped with 4 legs open, %"),
    ("options", "bs_price_nb_ns", "  bs_price_nb, ns per call in a numba loop"),
    ("options", "synth_price_nb_ns", "  synth_price_nb (surface IV + Black-Scholes + tick), ns per call: one leg's price"),
    ("options", "cli_weekly_in_process_s", "  `hindsight run` straddle 2019-2025: its own reported time (after imports and data), s"),
    ("options", "cli_monthly_in_process_s", "  `hindsight run` monthly straddle 2016-2025: its own reported time, s"),
]


def _ok(value, op, target) -> bool:
    if value is None:
        return False
    return {">=": value >= target, "<=": value <= target, "==": value == target}[op]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("sections", nargs="*", default=list(SECTIONS))
    p.add_argument("--section", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="smaller peer runs")
    args = p.parse_args()
    if args.section:
        result = globals()[f"section_{args.section}"](args)
        print("RESULT " + json.dumps(result))
        return 0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    results: dict[str, dict] = {}
    for name in args.sections:
        print(f"== {name} ...", flush=True)
        cmd = [sys.executable, __file__, "--section", name] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode or line is None:
            print(proc.stdout[-2000:], proc.stderr[-4000:], sep="\n")
            results[name] = {"error": f"exit {proc.returncode}"}
            continue
        results[name] = json.loads(line[len("RESULT "):])
        print("   " + json.dumps(results[name]), flush=True)
    print("\n{:<88} {:>14} {:>10}  {}".format("measure", "value", "target", "ok"))
    failed = 0
    for sec, key, op, target, label in TARGETS:
        if sec not in results:
            continue
        value = results[sec].get(key)
        ok = _ok(value, op, target)
        failed += not ok
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        print(f"{label:<88} {shown:>14} {op}{target!s:>8}  {'yes' if ok else 'NO'}")
    for sec, key, label in FIGURES:
        value = results.get(sec, {}).get(key)
        if value is not None:
            shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
            print(f"{label:<88} {shown:>14}")
    gz = results.get("output", {}).get("gzip")
    if gz:
        print(f"\nday files' gzip ({gz['files']} files, {gz['json_mb']:.1f} MB of JSON): level, MB, s")
        for name, v in gz.items():
            if isinstance(v, dict):
                print(f"  {name:<6} {v['mb']:>8.2f} MB {v['s']:>7.3f} s")
    for sec in results:
        if "peak_mb" in results[sec]:
            print(f"peak memory, {sec} section: {results[sec]['peak_mb']:,.0f} MiB")
    Path(REPO / "bench-out").mkdir(exist_ok=True)
    (REPO / "bench-out" / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n{failed} target(s) missed" if failed else "\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
