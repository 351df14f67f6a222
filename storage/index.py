"""The index of backtests in SQLite (`<root>/index.sqlite3`): listing, filtering, TTL queries.

One connection in WAL mode behind a lock: every query is sub-millisecond, so serializing them
costs less than a connection per thread and never meets SQLITE_BUSY inside one process.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import AlreadyExists, NotFound
from .records import (
    ACTIVE_STATUSES,
    RECORD_FIELDS,
    RUNNING,
    UPDATABLE_FIELDS,
    BacktestRecord,
    Page,
    Records,
    check_status,
)

INDEX_NAME = "index.sqlite3"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_SCHEMA_VERSION = 2

# Identifiers are quoted everywhere: `current_date` is an SQL keyword.
_COLUMNS = ", ".join(f'"{name}"' for name in RECORD_FIELDS)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS backtests (
    "backtest_id"    TEXT PRIMARY KEY,
    "strategy_id"    TEXT NOT NULL,
    "created_at"     REAL NOT NULL,
    "status"         TEXT NOT NULL CHECK ("status" IN ('queued', 'running', 'completed',
                                                        'failed', 'cancelled')),
    "caller"         TEXT NOT NULL DEFAULT '',
    "request_id"     TEXT NOT NULL DEFAULT '',
    "symbol"         TEXT NOT NULL DEFAULT '',
    "start_date"     TEXT NOT NULL DEFAULT '',
    "end_date"       TEXT NOT NULL DEFAULT '',
    "started_at"     REAL,
    "finished_at"    REAL,
    "expires_at"     REAL,
    "last_event_id"  INTEGER NOT NULL DEFAULT 0,
    "total_days"     INTEGER NOT NULL DEFAULT 0,
    "completed_days" INTEGER NOT NULL DEFAULT 0,
    "current_date"   TEXT,
    "error_code"     TEXT,
    "error_message"  TEXT,
    "summary_json"   TEXT,
    "config_json"    TEXT,
    "stored_bytes"   INTEGER NOT NULL DEFAULT 0
);
-- Idempotent starts: one backtest per (caller, request_id) when a request_id is given.
CREATE UNIQUE INDEX IF NOT EXISTS backtests_request
    ON backtests ("caller", "request_id") WHERE "request_id" != '';
-- Keyset pagination, newest first, with and without a strategy filter.
CREATE INDEX IF NOT EXISTS backtests_created ON backtests ("created_at", "backtest_id");
CREATE INDEX IF NOT EXISTS backtests_strategy
    ON backtests ("strategy_id", "created_at", "backtest_id");
CREATE INDEX IF NOT EXISTS backtests_status ON backtests ("status", "created_at");
"""
# After the table exists (an index of version 1 gets the column first).
_SCHEMA_OWNER = f"""
-- A user's own runs, newest first (every list but an admin's).
CREATE INDEX IF NOT EXISTS backtests_caller ON backtests ("caller", "created_at", "backtest_id");
PRAGMA user_version = {_SCHEMA_VERSION};
"""

# The latest completed run of each strategy, by creation time, is kept regardless of TTL.
_LATEST_COMPLETED = """
SELECT "backtest_id" FROM (
    SELECT "backtest_id", ROW_NUMBER() OVER (
        PARTITION BY "strategy_id" ORDER BY "created_at" DESC, "backtest_id" DESC) AS rank
    FROM backtests WHERE "status" = 'completed')
WHERE rank = 1
"""


class SqliteIndex:
    """`BacktestIndex` on SQLite. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        # isolation_level=None: autocommit; every statement here is a transaction of its own.
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL is crash-safe; a power cut may lose the last commits, which
            # the event log and day files (the data themselves) outlive.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(backtests)")}
            if "stored_bytes" not in columns:  # an index written before version 2
                self._db.execute('ALTER TABLE backtests ADD COLUMN "stored_bytes" INTEGER NOT NULL DEFAULT 0')
            self._db.executescript(_SCHEMA_OWNER)
        except BaseException:
            self._db.close()
            raise

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def insert(self, record: BacktestRecord) -> None:
        """Add a backtest. `AlreadyExists` if its id, or its caller + request_id, is taken."""
        values = [getattr(record, name) for name in RECORD_FIELDS]
        marks = ", ".join("?" for _ in RECORD_FIELDS)
        try:
            self._run(f"INSERT INTO backtests ({_COLUMNS}) VALUES ({marks})", values)
        except sqlite3.IntegrityError as exc:
            if "request_id" in str(exc):
                raise AlreadyExists(f"caller {record.caller!r} already started a backtest "
                                    f"with request_id {record.request_id!r}") from None
            raise AlreadyExists(f"backtest {record.backtest_id!r} already exists") from None

    def update(self, backtest_id: str, /, **fields: Any) -> None:
        """Set the given fields of one backtest; `NotFound` if there is none."""
        unknown = set(fields) - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))}; "
                             f"updatable fields: {', '.join(sorted(UPDATABLE_FIELDS))}")
        if "status" in fields:
            check_status(fields["status"])
        if not fields:
            if self.get(backtest_id) is None:
                raise NotFound(f"backtest {backtest_id!r} not found")
            return
        assignments = ", ".join(f'"{name}" = ?' for name in fields)
        count, _ = self._run(f'UPDATE backtests SET {assignments} WHERE "backtest_id" = ?',
                             [*fields.values(), backtest_id])
        if count == 0:
            raise NotFound(f"backtest {backtest_id!r} not found")

    def get(self, backtest_id: str) -> BacktestRecord | None:
        rows = self._query(f'SELECT {_COLUMNS} FROM backtests WHERE "backtest_id" = ?',
                           [backtest_id])
        return rows[0] if rows else None

    def find_by_request(self, caller: str, request_id: str) -> BacktestRecord | None:
        """The backtest that `caller` started with `request_id`; None for an empty request_id."""
        if not request_id:
            return None
        rows = self._query(f'SELECT {_COLUMNS} FROM backtests '
                           'WHERE "caller" = ? AND "request_id" = ?', [caller, request_id])
        return rows[0] if rows else None

    def delete(self, backtest_id: str) -> bool:
        """Remove one row; True if it existed."""
        count, _ = self._run('DELETE FROM backtests WHERE "backtest_id" = ?', [backtest_id])
        return count > 0

    def expired(self, now: float) -> builtins.list[str]:
        """Ids past `expires_at`, not queued or running, and not the latest completed run of
        their strategy; oldest first."""
        _, rows = self._run(
            'SELECT "backtest_id" FROM backtests '
            'WHERE "expires_at" IS NOT NULL AND "expires_at" < ? '
            "AND \"status\" NOT IN ('queued', 'running') "
            f'AND "backtest_id" NOT IN ({_LATEST_COMPLETED}) '
            'ORDER BY "created_at", "backtest_id"', [now])
        return [row[0] for row in rows]

    def unfinished(self) -> Records:
        """Queued and running backtests, oldest first (a restarted engine closes them)."""
        return self._query(f'SELECT {_COLUMNS} FROM backtests WHERE "status" IN (?, ?) '
                           'ORDER BY "created_at", "backtest_id"', sorted(ACTIVE_STATUSES))

    def count_running_by_caller(self, caller: str, *, include_queued: bool = False) -> int:
        statuses = sorted(ACTIVE_STATUSES) if include_queued else [RUNNING]
        marks = ", ".join("?" for _ in statuses)
        _, rows = self._run(f'SELECT COUNT(*) FROM backtests WHERE "caller" = ? '
                            f'AND "status" IN ({marks})', [caller, *statuses])
        return int(rows[0][0])

    def stored_bytes_by_caller(self, caller: str) -> int:
        """Bytes on disk of the caller's backtests, as recorded when each ended."""
        _, rows = self._run('SELECT COALESCE(SUM("stored_bytes"), 0) FROM backtests WHERE "caller" = ?',
                            [caller])
        return int(rows[0][0])

    def list(self, strategy_id: str | None = None, status: str | None = None,
             page_size: int = DEFAULT_PAGE_SIZE, page_token: str | None = None, *,
             caller: str | None = None) -> Page:
        """One page of backtests, newest first, and the token of the next page (None at the end).

        Keyset pagination on (created_at, backtest_id): pages neither skip nor repeat rows when
        backtests are added or deleted meanwhile. page_size 0 means the default; larger than
        MAX_PAGE_SIZE is capped. A token only works with the filters it was issued for.
        `caller` (None: everyone's) keeps only that caller's backtests.
        """
        if page_size < 0:
            raise ValueError(f"page_size must be >= 0, got {page_size}")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if status is not None:
            check_status(status)
        filters = _filters(strategy_id, status, caller)
        where: builtins.list[str] = []
        params: builtins.list[Any] = []
        if caller is not None:
            where.append('"caller" = ?')
            params.append(caller)
        if strategy_id is not None:
            where.append('"strategy_id" = ?')
            params.append(strategy_id)
        if status is not None:
            where.append('"status" = ?')
            params.append(status)
        if page_token:
            created_at, backtest_id = _decode_token(page_token, filters)
            where.append('("created_at" < ? OR ("created_at" = ? AND "backtest_id" < ?))')
            params += [created_at, created_at, backtest_id]
        sql = f"SELECT {_COLUMNS} FROM backtests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += ' ORDER BY "created_at" DESC, "backtest_id" DESC LIMIT ?'
        records = self._query(sql, [*params, size + 1])
        if len(records) <= size:
            return records, None
        records = records[:size]
        return records, self.token_after(records[-1], strategy_id, status, caller=caller)

    def token_after(self, record: BacktestRecord, strategy_id: str | None = None, status: str | None = None,
                    *, caller: str | None = None) -> str:
        """The page token that lists, with these filters, what comes after `record` (for a
        page cut short, e.g. by its size in bytes)."""
        return _encode_token(record.created_at, record.backtest_id, _filters(strategy_id, status, caller))

    def _run(self, sql: str, params: Iterable[Any] = ()) -> tuple[int, builtins.list[Any]]:
        """(rowcount, rows) of one statement; rows are fetched under the lock, as the
        connection is shared."""
        with self._lock:
            cursor = self._db.execute(sql, tuple(params))
            return cursor.rowcount, cursor.fetchall()

    def _query(self, sql: str, params: Iterable[Any] = ()) -> Records:
        _, rows = self._run(sql, params)
        return [BacktestRecord(*row) for row in rows]


def _filters(strategy_id: str | None, status: str | None, caller: str | None) -> list[str | None]:
    # A token names the filters it was issued for; the caller's own list keeps version 1's shape.
    return [strategy_id, status] if caller is None else [strategy_id, status, caller]


def _encode_token(created_at: float, backtest_id: str, filters: list[str | None]) -> str:
    raw = json.dumps({"c": created_at, "i": backtest_id, "f": filters}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, filters: list[str | None]) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        created_at, backtest_id, issued_for = data["c"], data["i"], data["f"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise ValueError("page_token is not a token returned by this list") from None
    if (not isinstance(created_at, (int, float)) or isinstance(created_at, bool)
            or not isinstance(backtest_id, str)):
        raise ValueError("page_token is not a token returned by this list")
    if issued_for != filters:
        raise ValueError("page_token was issued for other filters; "
                         "repeat the strategy_id and status of the first request")
    return float(created_at), backtest_id
