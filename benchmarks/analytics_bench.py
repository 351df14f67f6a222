"""Analytics of a ten-year one-minute run over gRPC (issue 12 targets: <= 300 ms uncached,
<= 20 ms cached), the engine in its own process as deployed (`hindsight engine`).

The run: the bundled SMA 10/20 crossover without fees on SIM-NIFTY's whole decade (~2,460
trading days of one-minute bars, ~50,000 closed trades). Measured, each as a client sees it
(call to parsed `Analytics`; `*_raw_ms`: call to bytes, no parsing):
- `first_ms`: the first GetAnalytics as soon as the run's stream has ended (its table may
  still be being written in the background: the call waits for it);
- `uncached_ms`: new parameters (rolling window 20, 21, ...) on the run's table;
- `cached_ms`: the same parameters again (memory, else the run's folder);
- `no_table_ms`: new parameters after removing the run's analytics folder (runs that ended
  before analytics existed: the day files are read and the table written first);
- `compare_ms`: CompareBacktests of the decade and a one-year run.
Medians of `repeat` calls (uncached: each with parameters of its own).

    python benchmarks/analytics_bench.py
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SMA = REPO / "examples" / "strategies" / "sma_cross.json"


def decade_request():
    """The request to measure: SMA 10/20 crossover, no fees, SIM-NIFTY's whole range."""
    from google.protobuf import json_format

    from hindsight.v1 import backtest_service_pb2 as pb
    from hindsight.v1 import strategy_pb2

    sma = json_format.Parse(SMA.read_text(), strategy_pb2.Strategy())
    sma.execution.commission_pct = 0
    return pb.StartBacktestRequest(strategy=sma, strategy_id="sma", symbol="SIM-NIFTY")


async def _measure(port: int, store: Path, repeat: int) -> dict:
    import grpc

    from hindsight.v1 import analytics_pb2 as apb
    from hindsight.v1 import analytics_pb2_grpc as apb_grpc
    from hindsight.v1 import backtest_service_pb2 as pb
    from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

    out: dict = {}
    options = [("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as ch:
        await asyncio.wait_for(ch.channel_ready(), 120)
        stub, an = pb_grpc.BacktestServiceStub(ch), apb_grpc.AnalyticsServiceStub(ch)
        raw = ch.unary_unary("/hindsight.v1.AnalyticsService/GetAnalytics",
                             request_serializer=apb.GetAnalyticsRequest.SerializeToString)

        async def run(request) -> str:
            r = await stub.StartBacktest(request)
            async for _ in stub.StreamBacktestBatches(pb.StreamBacktestBatchesRequest(backtest_id=r.backtest_id)):
                pass
            return r.backtest_id

        async def timed(call, **kw) -> tuple[float, object]:
            t0 = time.perf_counter()
            result = await call(apb.GetAnalyticsRequest(backtest_id=bid, **kw))
            return (time.perf_counter() - t0) * 1e3, result

        await run(decade_request().__class__(strategy=decade_request().strategy, symbol="SIM-NIFTY",
                                             start_date="2024-01-01", end_date="2024-01-31"))  # warm paths
        bid = await run(decade_request())
        out["first_ms"], a = await timed(an.GetAnalytics)
        out["trades"], out["days"], out["bytes"] = len(a.trades), a.returns_distribution.days, a.ByteSize()
        window = iter(range(20, 1000))
        uncached, uncached_raw, cached, cached_raw = [], [], [], []
        for _ in range(repeat):
            ms, a = await timed(an.GetAnalytics, rolling_window_days=next(window))
            assert not a.cached
            uncached.append(ms)
            uncached_raw.append((await timed(raw, rolling_window_days=next(window)))[0])
            ms, a = await timed(an.GetAnalytics)
            assert a.cached
            cached.append(ms)
            cached_raw.append((await timed(raw))[0])
        out["uncached_ms"], out["uncached_raw_ms"] = statistics.median(uncached), statistics.median(uncached_raw)
        out["cached_ms"], out["cached_raw_ms"] = statistics.median(cached), statistics.median(cached_raw)
        no_table = []
        folder = next(store.glob(f"users/*/backtests/{bid}")) / "analytics"
        for _ in range(max(1, repeat // 2)):
            shutil.rmtree(folder, ignore_errors=True)
            no_table.append((await timed(an.GetAnalytics, rolling_window_days=next(window)))[0])
        out["no_table_ms"] = statistics.median(no_table)
        year = decade_request()
        year.start_date, year.end_date = "2024-01-01", "2024-12-31"
        other = await run(year)
        compare = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            c = await an.CompareBacktests(apb.CompareBacktestsRequest(backtest_ids=[bid, other]))
            compare.append((time.perf_counter() - t0) * 1e3)
        out["compare_ms"], out["compare_dates"] = statistics.median(compare), len(c.dates)
    return out


def run(data_dir: Path, repeat: int = 7) -> dict:
    from benchmarks.gateway_bench import _free_port

    (REPO / "bench-out").mkdir(exist_ok=True)
    store = Path(tempfile.mkdtemp(prefix="analytics-", dir=REPO / "bench-out"))
    port = _free_port()
    env = {**os.environ, "HINDSIGHT_GRPC_ADDR": f"127.0.0.1:{port}", "HINDSIGHT_DATA_DIR": str(data_dir),
           "HINDSIGHT_STORE_DIR": str(store)}
    engine = subprocess.Popen([sys.executable, "-m", "services.cli", "engine"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return asyncio.run(_measure(port, store, repeat))
    finally:
        engine.terminate()
        try:
            engine.wait(timeout=20)
        except subprocess.TimeoutExpired:
            engine.kill()
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(Path(os.environ.get("HINDSIGHT_DATA_DIR", REPO / "var"))), indent=1))
