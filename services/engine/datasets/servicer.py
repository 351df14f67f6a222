"""DatasetService over grpc.aio (datasets.proto): uploads (client streams), get, delete.

Skeleton wired into server.py; filled in by the datasets work.
"""

from __future__ import annotations

from hindsight.v1 import datasets_pb2_grpc as dpb_grpc

SERVICE_NAME = "hindsight.v1.DatasetService"


class DatasetServicer(dpb_grpc.DatasetServiceServicer):
    def __init__(self, backtests):
        """`backtests`: the BacktestServicer, whose store, catalog, jobs, settings, auth and quotas are shared."""
        self.backtests = backtests
