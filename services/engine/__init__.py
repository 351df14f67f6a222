"""The engine: gRPC service and backtest core."""
