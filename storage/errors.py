"""Errors shared by every storage module, so callers catch one type per outcome.

The service maps them to gRPC codes: `NotFound` → NOT_FOUND, `AlreadyExists` → ALREADY_EXISTS.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error raised on purpose by `storage`."""


class NotFound(StorageError, LookupError):
    """A backtest, day, file or page that does not exist (or no longer exists)."""


class AlreadyExists(StorageError):
    """An insert whose backtest id, or caller + request id, is already taken."""


class LogClosed(NotFound):
    """The event log was closed, because its backtest was deleted or the store shut down."""
