"""Storage: event logs, day files, the index of backtests, TTL cleanup. Knows nothing of gRPC."""
