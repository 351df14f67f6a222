"""Example Python client of hindsight.v1.BacktestService (grpcio + the generated stubs).

Starts a backtest from a strategy file, streams its events and, when the connection fails
(UNAVAILABLE), reconnects and resumes with after_event_id = the last event it saw. Prints one
line per trading day and the final metrics. It reads StreamBacktestBatches: the events of
StreamBacktest, grouped, which replays a stored log far faster (one gRPC message per batch).

    python examples/clients/python/client.py --strategy examples/strategies/rsi_reversion.json \
        --from 2024-01-01 --to 2024-03-31 [--addr 127.0.0.1:50051] [--symbol SIM-NIFTY]

The stubs are the package `hindsight.v1` (protos/gen, installed by `make setup`; other
projects generate their own from protos/ with grpcio-tools).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import grpc
from google.protobuf import json_format

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
from hindsight.v1 import strategy_pb2

TERMINAL = {"backtest_completed", "backtest_failed", "backtest_cancelled"}
DEFAULT_STRATEGY = Path(__file__).resolve().parents[2] / "strategies" / "rsi_reversion.json"


def credentials() -> tuple[tuple[str, str], ...]:
    """HINDSIGHT_TOKEN (an API key from `hindsight users add`, or a JWT) as call metadata; none
    when unset (an engine with no users serves callers on its own machine without a token)."""
    token = os.environ.get("HINDSIGHT_TOKEN", "")
    return (("authorization", f"Bearer {token}"),) if token else ()


def follow(addr: str, backtest_id: str, max_retries: int = 10, batch_size: int = 0):
    """Yields the backtest's events, each once and in order, until the terminal event.

    `batch_size`: at most this many events per gRPC message (0: the engine's default).

    When the connection fails (UNAVAILABLE: engine restarting, network blip) or the stream ends
    before the terminal event, it reconnects and resumes after the last event it saw.
    """
    last, retries = 0, 0
    while True:
        try:
            with grpc.insecure_channel(addr) as channel:
                stub = pb_grpc.BacktestServiceStub(channel)
                request = pb.StreamBacktestBatchesRequest(backtest_id=backtest_id, after_event_id=last,
                                                          max_events=batch_size)
                for batch in stub.StreamBacktestBatches(request, metadata=credentials()):
                    for event in batch.events:
                        last, retries = event.event_id, 0
                        yield event
                        if event.WhichOneof("event") in TERMINAL:
                            return
            problem = "stream ended before the terminal event"
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            problem = f"UNAVAILABLE: {err.details()}"
        if retries >= max_retries:
            raise SystemExit(f"giving up after {retries} reconnects ({problem})")
        retries += 1
        print(f"{problem}; resuming after event {last}", file=sys.stderr)
        time.sleep(min(2.0, 0.1 * 2**retries))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", default=os.environ.get("HINDSIGHT_GRPC_ADDR", "127.0.0.1:50051"))
    parser.add_argument("--strategy", type=Path, default=DEFAULT_STRATEGY)
    parser.add_argument("--symbol", default="SIM-NIFTY")
    parser.add_argument("--from", dest="start", default="2024-01-01")
    parser.add_argument("--to", dest="end", default="2024-01-31")
    args = parser.parse_args(argv)

    strategy = json_format.Parse(args.strategy.read_text(), strategy_pb2.Strategy())
    with grpc.insecure_channel(args.addr) as channel:
        try:
            started = pb_grpc.BacktestServiceStub(channel).StartBacktest(
                pb.StartBacktestRequest(strategy=strategy, strategy_id=args.strategy.stem, symbol=args.symbol,
                                        start_date=args.start, end_date=args.end), timeout=30,
                metadata=credentials())
        except grpc.RpcError as err:
            print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
            return 2
    print(f"backtest {started.backtest_id}: {started.total_days} trading days of {args.symbol}")

    for event in follow(args.addr, started.backtest_id):
        kind = event.WhichOneof("event")
        if kind == "day_completed":
            day = event.day_completed
            print(f"  {day.date}  day {day.day_number:>3}/{day.total_days}  trades {day.summary.total_trades:>3}"
                  f"  pnl {day.summary.total_pnl:>12}  equity {day.equity:>14}")
        elif kind == "backtest_completed":
            done, m = event.backtest_completed, event.backtest_completed.metrics
            s = done.overall_summary
            print(f"backtest_completed: {s.total_trades} trades, pnl {s.total_pnl}, final equity {s.final_equity}")
            print(f"  return {m.total_return_pct:.2f} %  CAGR {m.cagr_pct:.2f} %  Sharpe {m.sharpe:.2f}"
                  f"  max drawdown {m.max_drawdown_pct:.2f} %  win rate {m.win_rate_pct:.1f} %"
                  f"  profit factor {m.profit_factor:.2f}")
        elif kind == "backtest_failed":
            print(f"backtest_failed: {event.backtest_failed.error_code}: {event.backtest_failed.error_message}")
            return 1
        elif kind == "backtest_cancelled":
            print(f"backtest_cancelled: {event.backtest_cancelled.reason}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
