"""AnalyticsService over grpc.aio (analytics.proto): a finished run's analytics, and runs compared.

Skeleton wired into server.py; filled in by the analytics work.
"""

from __future__ import annotations

from hindsight.v1 import analytics_pb2_grpc as apb_grpc

SERVICE_NAME = "hindsight.v1.AnalyticsService"


class AnalyticsServicer(apb_grpc.AnalyticsServiceServicer):
    def __init__(self, backtests):
        """`backtests`: the BacktestServicer, whose store, catalog, jobs, settings, auth and quotas are shared."""
        self.backtests = backtests
