"""StrategyService over grpc.aio (strategies.proto): saved strategies in versions.

Skeleton wired into server.py; filled in by the saved-strategies work.
"""

from __future__ import annotations

from hindsight.v1 import strategies_pb2_grpc as spb_grpc

SERVICE_NAME = "hindsight.v1.StrategyService"


class StrategyServicer(spb_grpc.StrategyServiceServicer):
    def __init__(self, backtests):
        """`backtests`: the BacktestServicer, whose store, catalog, jobs, settings, auth and quotas are shared."""
        self.backtests = backtests
