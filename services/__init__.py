"""Hindsight services: the engine (gRPC + backtest core) and the HTTP gateway."""
