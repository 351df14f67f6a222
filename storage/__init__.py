"""Storage: event logs, day files, the index of backtests, TTL cleanup. Knows nothing of gRPC.

The service talks to a `StorageBackend`; `LocalStore` (files + SQLite under one root) is the
embedded default. Everything here stores bytes and plain dicts.
"""

from .backend import BacktestIndex, EventLog, StorageBackend
from .errors import AlreadyExists, LogClosed, NotFound, StorageError
from .eventlog import FileEventLog
from .index import SqliteIndex
from .records import (
    ACTIVE_STATUSES,
    CANCELLED,
    COMPLETED,
    FAILED,
    QUEUED,
    RUNNING,
    STATUSES,
    TERMINAL_STATUSES,
    BacktestRecord,
)
from .store import DEFAULT_TTL_SECONDS, LocalStore, check_backtest_id

__all__ = [
    "ACTIVE_STATUSES", "CANCELLED", "COMPLETED", "DEFAULT_TTL_SECONDS", "FAILED", "QUEUED",
    "RUNNING", "STATUSES", "TERMINAL_STATUSES",
    "AlreadyExists", "BacktestIndex", "BacktestRecord", "EventLog", "FileEventLog",
    "LocalStore", "LogClosed", "NotFound", "SqliteIndex", "StorageBackend", "StorageError",
    "check_backtest_id",
]
