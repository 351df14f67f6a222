"""Backtest core: spec -> indicators/conditions -> kernels -> results. No gRPC, no I/O beyond results."""
