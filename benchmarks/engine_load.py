"""GetBacktest latency while the engine is busy: 2 decade runs computing and 50 queued.

A real `hindsight engine` process (its own data dir, fsync on, local mode); a gRPC client in
this process starts the runs, then calls GetBacktest (with daily summaries) on the running and
the queued ones back to back and reports p50/p99/max. Target (issue 10): p99 <= 50 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _measure(target: str, seconds: float) -> dict:
    import grpc
    from google.protobuf import json_format

    from hindsight.v1 import backtest_service_pb2 as pb
    from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
    from hindsight.v1 import strategy_pb2

    doc = json.loads((REPO / "examples" / "strategies" / "sma_cross.json").read_text())
    doc["execution"]["commission_pct"] = 0.0
    strategy = json_format.ParseDict(doc, strategy_pb2.Strategy())
    async with grpc.aio.insecure_channel(target) as ch:
        stub = pb_grpc.BacktestServiceStub(ch)
        await stub.GetCaller(pb.GetCallerRequest(), wait_for_ready=True, timeout=300)
        ids = []
        for k in range(52):
            r = await stub.StartBacktest(pb.StartBacktestRequest(strategy=strategy, symbol="SIM-NIFTY",
                                                                 start_date="2016-01-01", end_date="2025-12-31"))
            ids.append(r.backtest_id)
        await asyncio.sleep(1.0)
        states = [(await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=b, omit_days=True))).status for b in ids]
        running = [b for b, s in zip(ids, states) if s == pb.BACKTEST_STATUS_RUNNING]
        queued = [b for b, s in zip(ids, states) if s == pb.BACKTEST_STATUS_QUEUED]
        lat: list[float] = []
        deadline = time.perf_counter() + seconds
        k = 0
        while time.perf_counter() < deadline:
            bid = (running + queued)[k % (len(running) + len(queued))]
            k += 1
            t = time.perf_counter()
            await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
            lat.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.005)
        progress = [(await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=b, omit_days=True))).progress.completed_days
                    for b in running]
        for b in ids:
            await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=b))
    return {"get_backtest_p50_ms": round(_pct(lat, 0.5), 2), "get_backtest_p99_ms": round(_pct(lat, 0.99), 2),
            "get_backtest_max_ms": round(max(lat), 2), "calls": len(lat), "running": len(running),
            "queued": len(queued), "days_done_meanwhile": progress}


def run(data_dir: Path, seconds: float = 20.0) -> dict:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="hs-load-") as tmp:
        env = {**os.environ, "HINDSIGHT_DATA_DIR": str(data_dir), "HINDSIGHT_STORE_DIR": tmp,
               "HINDSIGHT_USERS_DB": str(Path(tmp) / "users.sqlite3"),
               "HINDSIGHT_GRPC_ADDR": f"127.0.0.1:{port}", "HINDSIGHT_MAX_CONCURRENT": "2",
               "HINDSIGHT_MAX_RUNNING_PER_CALLER": "2", "HINDSIGHT_MAX_QUEUED": "64",
               "HINDSIGHT_MAX_QUEUED_PER_USER": "64", "HINDSIGHT_STARTS_PER_MINUTE": "0"}
        proc = subprocess.Popen([sys.executable, "-m", "services.cli", "engine"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            return asyncio.run(_measure(f"127.0.0.1:{port}", seconds))
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    print(json.dumps(run(Path(os.environ.get("HINDSIGHT_DATA_DIR", REPO / "var")))))
