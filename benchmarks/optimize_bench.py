"""`make bench` section `optimize`: parameter sweeps.

- grid10k: 10,000 SMA (fast, slow) pairs over all of SIM-NIFTY (923 k one-minute bars)
  through the optimizer as a service runs it (Optimization.prepare + run, embedded executor):
  proposals, the sweep kernel, every trial's event, DSR and PBO at the end. Wall time, M
  bar-steps per second per core, peak memory of the process.
- vectorbt: the same strategy family as a 1,000-pair grid, vectorbt's parameter broadcasting
  (MA.run with the window lists, Portfolio.from_signals), in column chunks that fit memory;
  ours on the same pairs. Fills at the signal bar's close, whole units, all equity, no fees,
  reversing long/short: the same rules on both sides, so the winners and their returns agree.
- backtesting.py: `Backtest.optimize` of its SmaCross over a 100-pair grid on daily bars
  (n1 < n2), against our grid of the same pairs on the same daily bars (next-open fills).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SMA = REPO / "examples" / "strategies" / "sma_cross.json"


def _config(strategy: dict, space: dict, **kw):
    from google.protobuf import json_format

    from hindsight.v1 import optimization_pb2 as opb

    doc = {"strategy": strategy, "space": space, "method": "grid", "symbol": "SIM-NIFTY",
           "objectives": [{"metric": "total_return_pct"}], **kw}
    return json_format.ParseDict(doc, opb.OptimizationConfig())


def _run(catalog, cfg, timings: dict | None = None, executor=None) -> tuple[float, object, list, float]:
    """(seconds from prepare to the end, outcome, trials, seconds to the first trial); `timings`
    gets prepare_s (load, resample, checks) and run_s (the sweep) apart."""
    from services.engine.optimize.runner import Optimization

    t0 = time.perf_counter()
    opt = Optimization.prepare(cfg, catalog, executor=executor)
    t1 = time.perf_counter()
    trials = []
    first = []

    last = [t1]

    def emit(events):
        for e in events:
            if e.HasField("trial_completed"):
                if not first:
                    first.append(time.perf_counter() - t0)
                trials.append(e.trial_completed.trial)
        last[0] = time.perf_counter()

    with tempfile.TemporaryDirectory() as state:
        outcome = opt.run(emit, state_dir=Path(state))
    end = time.perf_counter()
    if timings is not None:
        # sweep_s: until the last trial's event; the rest of run_s is the overfitting statistics.
        timings.update(prepare_s=t1 - t0, run_s=end - t1, sweep_s=last[0] - t1)
    return end - t0, outcome, trials, first[0] if first else math.nan


def _sma(fast_lo, fast_hi, slow_lo, slow_hi, slow_step=1, constraint=True) -> dict:
    space = {"parameters": [
        {"name": "fast", "path": "indicators[0].period", "int_range": {"low": fast_lo, "high": fast_hi}},
        {"name": "slow", "path": "indicators[1].period",
         "int_range": {"low": slow_lo, "high": slow_hi, "step": slow_step}}]}
    if constraint:
        space["constraints"] = [{"lhs": "fast", "op": "<", "rhs": "slow"}]
    return space


def grid10k(catalog) -> dict:
    import numba

    strategy = json.loads(SMA.read_text())
    strategy["execution"]["commission_pct"] = 0.01
    space = _sma(5, 104, 110, 1100, 10)  # 100 × 100 pairs, all fast < slow
    bars = len(catalog.load("SIM-NIFTY"))
    # Compile (or load) the kernel first, as the engine does at start-up.
    _run(catalog, _config(strategy, _sma(5, 6, 110, 120, 10), start_date="2024-01-01", end_date="2024-01-31"))
    wall, outcome, trials, first = _run(catalog, _config(strategy, space))
    cores = numba.get_num_threads()
    return {"trials": len(trials), "bars": bars, "s": wall, "first_trial_s": first,
            "mbar_steps_per_s_per_core": len(trials) * bars / wall / 1e6 / cores, "cores": cores,
            "winner": dict(outcome.result.top[0].parameters), "dsr": outcome.result.overfitting.deflated_sharpe,
            "pbo": outcome.result.overfitting.pbo}


def dask_vs_embedded(catalog, embedded_s: float) -> dict:
    """The 10,000-pair grid through a 2-worker LocalCluster (worker processes, one thread and one
    numba thread each: together the machine's two cores), against the embedded figure."""
    os.environ["NUMBA_NUM_THREADS"] = "1"  # inherited by the worker processes only (numba is loaded here)
    from distributed import Client, LocalCluster

    from services.engine.optimize.executor import DaskExecutor

    strategy = json.loads(SMA.read_text())
    strategy["execution"]["commission_pct"] = 0.01
    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        started = time.perf_counter() - t0
        executor = DaskExecutor(client=client)
        # Workers compile (or load) the kernel on a month first, as engines do at start-up.
        _run(catalog, _config(strategy, _sma(5, 8, 110, 150, 10), start_date="2024-01-01", end_date="2024-01-31"),
             executor=executor)
        wall, outcome, trials, first = _run(catalog, _config(strategy, _sma(5, 104, 110, 1100, 10)),
                                            executor=executor)
    os.environ.pop("NUMBA_NUM_THREADS", None)
    return {"trials": len(trials), "s": wall, "embedded_s": embedded_s, "slower_pct": 100.0 * (wall / embedded_s - 1.0),
            "cluster_start_s": started, "winner": dict(outcome.result.top[0].parameters)}


def first_trial_latency(data_dir: Path) -> dict:
    """Seconds from StartOptimization to the first trial_completed on the stream, over gRPC
    against `hindsight engine` (a 10,000-pair grid over all of SIM-NIFTY; then cancelled)."""
    import grpc

    from benchmarks.gateway_bench import served
    from hindsight.v1 import optimization_pb2 as opb
    from hindsight.v1 import optimization_pb2_grpc as opb_grpc

    strategy = json.loads(SMA.read_text())
    cfg = _config(strategy, _sma(5, 104, 110, 1100, 10))
    times = []
    with served(data_dir, "opt") as (_, grpc_port, _procs):
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = opb_grpc.OptimizationServiceStub(channel)
            for attempt in range(3):
                t0 = time.perf_counter()
                started = stub.StartOptimization(opb.StartOptimizationRequest(config=cfg, request_id=f"lat-{attempt}"))
                stream = stub.StreamOptimization(opb.StreamOptimizationRequest(optimization_id=started.optimization_id))
                for event in stream:
                    if event.HasField("trial_completed"):
                        times.append(time.perf_counter() - t0)
                        break
                stream.cancel()
                stub.CancelOptimization(opb.CancelOptimizationRequest(optimization_id=started.optimization_id))
                while stub.GetOptimization(opb.GetOptimizationRequest(
                        optimization_id=started.optimization_id)).status == opb.OPTIMIZATION_STATUS_RUNNING:
                    time.sleep(0.1)
    return {"first_trial_s": times, "best_s": min(times), "median_s": sorted(times)[len(times) // 2]}


def _close_rules(strategy: dict) -> dict:
    s = json.loads(json.dumps(strategy))
    s["execution"] = {"fill": "close", "commission_pct": 0.0, "initial_capital": 100000}
    return s


def vs_vectorbt(catalog) -> dict:
    import warnings

    import pandas as pd

    warnings.filterwarnings("ignore")
    import vectorbt as vbt

    bars = catalog.load("SIM-NIFTY")
    fast = list(range(5, 45))          # 40 × 25 = 1,000 pairs
    slow = list(range(50, 300, 10))
    strategy = _close_rules(json.loads(SMA.read_text()))
    cfg = _config(strategy, _sma(5, 44, 50, 290, 10, constraint=False))
    _run(catalog, _config(strategy, _sma(5, 6, 50, 60, 10, constraint=False), start_date="2024-01-01",
                          end_date="2024-01-31"))
    ours_s, outcome, trials, _ = _run(catalog, cfg)
    ours = {(int(t.parameters["fast"]), int(t.parameters["slow"])): t.metrics.total_return_pct for t in trials}

    close = pd.Series(bars.close, index=bars.local_index.tz_localize(None))
    vbt.MA.run(close.iloc[:2000], [5, 6], [50, 60], param_product=True)  # compile its numba functions
    t0 = time.perf_counter()
    theirs: dict[tuple[int, int], float] = {}
    chunk = 2  # fast windows per chunk: 2 × 25 columns × 923 k bars keep vectorbt under ~8 GB
    for lo in range(0, len(fast), chunk):
        f = fast[lo:lo + chunk]
        fast_ma = vbt.MA.run(close, f, short_name="fast")
        slow_ma = vbt.MA.run(close, slow, short_name="slow")
        fm = fast_ma.ma.to_numpy()
        sm = slow_ma.ma.to_numpy()
        cols, entries, exits = [], [], []
        for i, fw in enumerate(f):
            for j, sw in enumerate(slow):
                a, b = fm[:, i], sm[:, j]
                above = (np.roll(a, 1) < np.roll(b, 1)) & (a > b)
                below = (np.roll(a, 1) > np.roll(b, 1)) & (a < b)
                above[0] = below[0] = False
                cols.append((fw, sw))
                entries.append(above)
                exits.append(below)
        idx = pd.MultiIndex.from_tuples(cols, names=["fast", "slow"])
        pf = vbt.Portfolio.from_signals(
            close, entries=pd.DataFrame(np.column_stack(entries), index=close.index, columns=idx),
            short_entries=pd.DataFrame(np.column_stack(exits), index=close.index, columns=idx),
            init_cash=100000.0, size=np.inf, size_granularity=1.0, freq="1min")
        for key, value in pf.total_return().items():
            theirs[(int(key[0]), int(key[1]))] = float(value) * 100.0
    vbt_s = time.perf_counter() - t0
    common = sorted(set(ours) & set(theirs))
    a = np.array([ours[k] for k in common])
    b = np.array([theirs[k] for k in common])
    ours_best = max(common, key=lambda k: ours[k])
    their_best = max(common, key=lambda k: theirs[k])
    return {"pairs": len(common), "ours_s": ours_s, "vectorbt_s": vbt_s, "speedup": vbt_s / ours_s,
            "same_winner": ours_best == their_best, "ours_winner": list(ours_best), "vectorbt_winner": list(their_best),
            "max_return_diff_pct_points": float(np.max(np.abs(a - b))),
            "return_correlation": float(np.corrcoef(a, b)[0, 1])}


def vs_backtesting_py(catalog) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    from backtesting import Backtest as BtpBacktest

    from benchmarks.peers import backtesting_sma_cross_params
    from services.engine.core.data import resample

    bars = catalog.load("SIM-NIFTY")
    daily = resample(bars, "1d")
    df = daily.to_frame().tz_localize(None)
    df.columns = ["Open", "High", "Low", "Close", "Volume"]
    n1 = list(range(5, 15))
    n2 = list(range(20, 120, 10))  # 10 × 10 = 100 pairs
    strategy = json.loads(SMA.read_text())
    strategy["execution"] = {"fill": "next_open", "commission_pct": 0.0, "initial_capital": 10_000_000,
                             "timeframe": "1d"}
    # backtesting.py sizes an order at 99.99 % of equity by default; ours at 100 %. Whole units
    # of a ~20,000 price with 10 M of cash make the same counts.
    cfg = _config(strategy, _sma(5, 14, 20, 110, 10))
    _run(catalog, _config(strategy, _sma(5, 6, 20, 30, 10), start_date="2024-01-01", end_date="2024-03-31"))
    timings: dict = {}
    _, outcome, trials, _ = _run(catalog, cfg, timings)
    # The data is loaded and resampled before either side is timed (backtesting.py gets its
    # DataFrame ready-made). Like for like: our sweep (every trial's metrics and event) against
    # optimize(); our DSR and PBO, which backtesting.py does not compute, are timed apart.
    ours_s = timings["sweep_s"]
    ours = {(int(t.parameters["fast"]), int(t.parameters["slow"])): (t.metrics.final_equity, t.metrics.total_trades)
            for t in trials}

    SmaCross = backtesting_sma_cross_params()
    bt = BtpBacktest(df, SmaCross, cash=10_000_000, exclusive_orders=True)
    t0 = time.perf_counter()
    stats, heatmap = bt.optimize(n1=n1, n2=n2, constraint=lambda p: p.n1 < p.n2, maximize="Equity Final [$]",
                                 return_heatmap=True)
    btp_s = time.perf_counter() - t0
    their_best = (int(stats._strategy.n1), int(stats._strategy.n2))
    ours_best = max(ours, key=lambda k: ours[k][0])
    diffs = [abs(ours[(int(a), int(b))][0] - v) / v for (a, b), v in heatmap.items() if (int(a), int(b)) in ours]
    return {"pairs": len(ours), "ours_s": ours_s, "backtesting_py_s": btp_s, "speedup": btp_s / ours_s,
            "ours_prepare_s": timings["prepare_s"], "ours_with_statistics_s": timings["run_s"],
            "speedup_with_statistics": btp_s / timings["run_s"],
            "same_winner": ours_best == their_best, "ours_winner": list(ours_best), "backtesting_py_winner": list(their_best),
            "max_final_equity_rel_diff": float(max(diffs)) if diffs else math.nan}


def run(data_dir: Path, quick: bool = False) -> dict:
    from services.engine.core.catalog import Catalog

    catalog = Catalog(data_dir)
    import resource

    out = {}
    # The grid first: its peak memory is the process's before anything else ran. backtesting.py
    # before vectorbt, whose multi-GB peak would make its worker processes slow to fork.
    out["grid10k"] = grid10k(catalog)
    out["grid10k"]["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out["latency"] = first_trial_latency(data_dir)
    out["dask"] = dask_vs_embedded(catalog, out["grid10k"]["s"])
    out["backtesting_py"] = vs_backtesting_py(catalog)
    out["vectorbt"] = vs_vectorbt(catalog)
    g = out["grid10k"]
    out["grid10k_s"] = g["s"]
    out["grid10k_peak_mb"] = g["peak_mb"]
    out["mbar_steps_per_s_per_core"] = g["mbar_steps_per_s_per_core"]
    out["vectorbt_speedup"] = out["vectorbt"]["speedup"]
    out["backtesting_py_speedup"] = out["backtesting_py"]["speedup"]
    out["same_winners"] = int(out["vectorbt"]["same_winner"] and out["backtesting_py"]["same_winner"])
    out["dask_slower_pct"] = out["dask"]["slower_pct"]
    out["first_trial_s"] = out["latency"]["median_s"]
    return out


if __name__ == "__main__":
    print(json.dumps(run(Path(os.environ.get("HINDSIGHT_DATA_DIR", REPO / "var"))), indent=2))
