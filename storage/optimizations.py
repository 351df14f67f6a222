"""`OptimizationStore`: optimizations' event logs, folders and their own small SQLite index.

Beside the backtests under the same root, never mixed with them (a backtest's cleanup, orphan
sweep or id never touches an optimization's):

    <root>/optimizations.sqlite3                            the index of optimizations (WAL)
    <root>/users/<user>/optimizations/<id>/events.log       the event log (storage.eventlog)
    <root>/users/<user>/optimizations/<id>/...              what the runner keeps (its state_dir)

Like `LocalStore`: the row is made before the folder and removed before it, a delete renames
the folder into `<root>/trash/` first, each log has one live instance per process, and a
finished optimization expires `ttl_seconds` after it ends. The service stores the config and
the best trials as protobuf bytes: nothing here knows their schema.
"""

from __future__ import annotations

import builtins
import os
import shutil
import sqlite3
import threading
import time
import uuid
import weakref
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import orjson

from .archive import CHUNK_SIZE, Chunks, _Member, _zip_stream, _zip_time
from .atomic import dumps_json, fsync_dir, write_atomic
from .errors import AlreadyExists, NotFound
from .eventlog import LOG_NAME, FileEventLog
from .index import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, _decode_token, _encode_token
from .records import ACTIVE_STATUSES, QUEUED, TERMINAL_STATUSES, check_status
from .store import _ID, TRASH_DIR, USERS_DIR, user_dir_name

INDEX_NAME = "optimizations.sqlite3"
OPTIMIZATIONS_DIR = "optimizations"
CANCEL_NAME = "cancel_requested.json"


@dataclass(frozen=True, slots=True)
class OptimizationRecord:
    """What the index knows of one optimization; `config` and `top` are opaque bytes (an
    OptimizationConfig and a BestUpdated, serialized by the service)."""

    optimization_id: str
    strategy_id: str
    owner: str
    created_at: float
    status: str = QUEUED
    request_id: str = ""            # "" means no idempotency key
    symbol: str = ""
    method: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float | None = None
    total_trials: int = 0
    completed_trials: int = 0
    total_windows: int = 0
    completed_windows: int = 0
    last_event_id: int = 0
    error_code: str = ""
    error_message: str = ""
    config: bytes = b""
    top: bytes = b""

    def __post_init__(self) -> None:
        check_status(self.status)
        check_optimization_id(self.optimization_id)


_FIELDS = tuple(f.name for f in fields(OptimizationRecord))
_UPDATABLE = frozenset(_FIELDS) - {"optimization_id", "owner", "created_at", "request_id"}
_COLUMNS = ", ".join(f'"{name}"' for name in _FIELDS)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS optimizations (
    "optimization_id"   TEXT PRIMARY KEY,
    "strategy_id"       TEXT NOT NULL,
    "owner"             TEXT NOT NULL,
    "created_at"        REAL NOT NULL,
    "status"            TEXT NOT NULL CHECK ("status" IN ('queued', 'running', 'completed',
                                                           'failed', 'cancelled')),
    "request_id"        TEXT NOT NULL DEFAULT '',
    "symbol"            TEXT NOT NULL DEFAULT '',
    "method"            TEXT NOT NULL DEFAULT '',
    "started_at"        REAL,
    "finished_at"       REAL,
    "expires_at"        REAL,
    "total_trials"      INTEGER NOT NULL DEFAULT 0,
    "completed_trials"  INTEGER NOT NULL DEFAULT 0,
    "total_windows"     INTEGER NOT NULL DEFAULT 0,
    "completed_windows" INTEGER NOT NULL DEFAULT 0,
    "last_event_id"     INTEGER NOT NULL DEFAULT 0,
    "error_code"        TEXT NOT NULL DEFAULT '',
    "error_message"     TEXT NOT NULL DEFAULT '',
    "config"            BLOB NOT NULL DEFAULT x'',
    "top"               BLOB NOT NULL DEFAULT x''
);
CREATE UNIQUE INDEX IF NOT EXISTS optimizations_request
    ON optimizations ("owner", "request_id") WHERE "request_id" != '';
CREATE INDEX IF NOT EXISTS optimizations_created ON optimizations ("created_at", "optimization_id");
CREATE INDEX IF NOT EXISTS optimizations_owner ON optimizations ("owner", "created_at", "optimization_id");
CREATE INDEX IF NOT EXISTS optimizations_status ON optimizations ("status", "created_at");
"""
# Page tokens name what they list, so a token of ListBacktests is refused here.
_TOKEN_KIND = "optimizations"


def check_optimization_id(optimization_id: str) -> str:
    """Return the id if it is safe as a folder name, else raise ValueError."""
    if not isinstance(optimization_id, str) or not _ID.fullmatch(optimization_id):
        raise ValueError(f"invalid optimization id {optimization_id!r}")
    return optimization_id


class OptimizationIndex:
    """The optimizations table: one connection in WAL mode behind a lock (as `SqliteIndex`)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def insert(self, record: OptimizationRecord) -> None:
        values = [getattr(record, name) for name in _FIELDS]
        try:
            self._run(f"INSERT INTO optimizations ({_COLUMNS}) VALUES ({', '.join('?' for _ in _FIELDS)})", values)
        except sqlite3.IntegrityError as exc:
            if "request_id" in str(exc):
                raise AlreadyExists(f"{record.owner!r} already started an optimization with request_id "
                                    f"{record.request_id!r}") from None
            raise AlreadyExists(f"optimization {record.optimization_id!r} already exists") from None

    def update(self, optimization_id: str, /, **values: Any) -> None:
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))}")
        if "status" in values:
            check_status(values["status"])
        if not values:
            return
        assignments = ", ".join(f'"{name}" = ?' for name in values)
        count, _ = self._run(f'UPDATE optimizations SET {assignments} WHERE "optimization_id" = ?',
                             [*values.values(), optimization_id])
        if count == 0:
            raise NotFound(f"optimization {optimization_id!r} not found")

    def get(self, optimization_id: str) -> OptimizationRecord | None:
        rows = self._query(f'SELECT {_COLUMNS} FROM optimizations WHERE "optimization_id" = ?', [optimization_id])
        return rows[0] if rows else None

    def find_by_request(self, owner: str, request_id: str) -> OptimizationRecord | None:
        if not request_id:
            return None
        rows = self._query(f'SELECT {_COLUMNS} FROM optimizations WHERE "owner" = ? AND "request_id" = ?',
                           [owner, request_id])
        return rows[0] if rows else None

    def delete(self, optimization_id: str) -> bool:
        count, _ = self._run('DELETE FROM optimizations WHERE "optimization_id" = ?', [optimization_id])
        return count > 0

    def expired(self, now: float) -> builtins.list[str]:
        _, rows = self._run('SELECT "optimization_id" FROM optimizations WHERE "expires_at" IS NOT NULL '
                            "AND \"expires_at\" < ? AND \"status\" NOT IN ('queued', 'running') "
                            'ORDER BY "created_at", "optimization_id"', [now])
        return [row[0] for row in rows]

    def unfinished(self) -> builtins.list[OptimizationRecord]:
        """Queued and running optimizations, oldest first."""
        return self._query(f'SELECT {_COLUMNS} FROM optimizations WHERE "status" IN (?, ?) '
                           'ORDER BY "created_at", "optimization_id"', sorted(ACTIVE_STATUSES))

    def count(self, owner: str, status: str) -> int:
        _, rows = self._run('SELECT COUNT(*) FROM optimizations WHERE "owner" = ? AND "status" = ?',
                            [owner, status])
        return int(rows[0][0])

    def list(self, strategy_id: str | None, status: str | None, page_size: int, page_token: str | None,
             owner: str | None) -> tuple[builtins.list[OptimizationRecord], str | None]:
        """One page, newest first, and the next page's token (None at the end): keyset
        pagination as `SqliteIndex.list`; a token only works with the filters it was issued for."""
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        where, params = [], []
        for column, value in (("owner", owner), ("strategy_id", strategy_id), ("status", status)):
            if value is not None:
                where.append(f'"{column}" = ?')
                params.append(value)
        if page_token:
            created_at, last_id = _decode_token(page_token, _filters(strategy_id, status, owner))
            where.append('("created_at" < ? OR ("created_at" = ? AND "optimization_id" < ?))')
            params += [created_at, created_at, last_id]
        sql = f"SELECT {_COLUMNS} FROM optimizations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        records = self._query(sql + ' ORDER BY "created_at" DESC, "optimization_id" DESC LIMIT ?', [*params, size + 1])
        if len(records) <= size:
            return records, None
        records = records[:size]
        return records, self.token_after(records[-1], strategy_id, status, owner)

    @staticmethod
    def token_after(record: OptimizationRecord, strategy_id: str | None, status: str | None,
                    owner: str | None) -> str:
        return _encode_token(record.created_at, record.optimization_id, _filters(strategy_id, status, owner))

    def _run(self, sql: str, params: Iterable[Any] = ()) -> tuple[int, builtins.list[Any]]:
        with self._lock:
            cursor = self._db.execute(sql, tuple(params))
            return cursor.rowcount, cursor.fetchall()

    def _query(self, sql: str, params: Iterable[Any] = ()) -> builtins.list[OptimizationRecord]:
        _, rows = self._run(sql, params)
        return [OptimizationRecord(*row) for row in rows]


def _filters(strategy_id: str | None, status: str | None, owner: str | None) -> builtins.list[str | None]:
    return [_TOKEN_KIND, strategy_id, status, owner]


class OptimizationStore:
    """Optimizations under a store root (see the module's docstring). One process per root."""

    def __init__(self, root: Path, ttl_seconds: float, *, fsync: bool = True) -> None:
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds}")
        self._root = Path(root)
        self._ttl = float(ttl_seconds)
        self._fsync = fsync
        self._users = self._root / USERS_DIR
        self._trash = self._root / TRASH_DIR
        self._users.mkdir(parents=True, exist_ok=True)
        self._trash.mkdir(exist_ok=True)
        self.index = OptimizationIndex(self._root / INDEX_NAME)
        self._lock = threading.RLock()
        self._live: weakref.WeakValueDictionary[str, FileEventLog] = weakref.WeakValueDictionary()

    @property
    def ttl_seconds(self) -> float:
        return self._ttl

    def folder(self, owner: str, optimization_id: str) -> Path:
        """An optimization's folder, under its owner's (the runner's state_dir)."""
        return self._users / user_dir_name(owner) / OPTIMIZATIONS_DIR / check_optimization_id(optimization_id)

    def _path(self, record: OptimizationRecord) -> Path:
        return self.folder(record.owner, record.optimization_id)

    # --- the index -----------------------------------------------------------------------------

    def create(self, record: OptimizationRecord) -> Path:
        """Index a new optimization and make its folder. `AlreadyExists` if the id or the
        owner + request_id is taken. expires_at defaults to created_at + TTL."""
        if record.expires_at is None:
            record = replace(record, expires_at=record.created_at + self._ttl)
        path = self._path(record)
        self.index.insert(record)  # row first: a folder without a row is an orphan
        try:
            with self._lock:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.mkdir()
            if self._fsync:
                fsync_dir(path.parent)
        except BaseException:
            self.index.delete(record.optimization_id)
            raise
        return path

    def get(self, optimization_id: str) -> OptimizationRecord | None:
        return self.index.get(optimization_id)

    def update(self, optimization_id: str, /, **values: Any) -> None:
        """Set fields; a terminal status without `expires_at` starts the TTL at `finished_at`."""
        if values.get("status") in TERMINAL_STATUSES and "expires_at" not in values:
            finished = values.get("finished_at")
            values["expires_at"] = (time.time() if finished is None else finished) + self._ttl
        self.index.update(optimization_id, **values)

    def find_by_request(self, owner: str, request_id: str) -> OptimizationRecord | None:
        return self.index.find_by_request(owner, request_id)

    def list(self, *, strategy_id: str | None = None, status: str | None = None, page_size: int = DEFAULT_PAGE_SIZE,
             page_token: str | None = None,
             owner: str | None = None) -> tuple[builtins.list[OptimizationRecord], str | None]:
        return self.index.list(strategy_id, status, page_size, page_token, owner)

    def token_after(self, record: OptimizationRecord, *, strategy_id: str | None = None, status: str | None = None,
                    owner: str | None = None) -> str:
        return self.index.token_after(record, strategy_id, status, owner)

    def unfinished(self) -> builtins.list[OptimizationRecord]:
        return self.index.unfinished()

    def count(self, owner: str, status: str) -> int:
        return self.index.count(owner, status)

    # --- per-optimization files ----------------------------------------------------------------

    def event_log(self, optimization_id: str) -> FileEventLog:
        """Its event log, opened (torn tail cut) on first use; one instance while anyone holds it."""
        record = self.get(optimization_id)
        if record is None:
            raise NotFound(f"optimization {optimization_id!r} not found")
        path = self._path(record)
        with self._lock:
            log = self._live.get(optimization_id)
            if log is None or log.closed:
                if not path.is_dir():
                    raise NotFound(f"optimization {optimization_id!r} not found")
                log = FileEventLog(path / LOG_NAME)
                self._live[optimization_id] = log
            return log

    def write_cancel_request(self, optimization_id: str, reason: str) -> None:
        """Record, durably, that a caller cancelled it: a restarted engine ends it as cancelled
        instead of continuing it."""
        record = self.get(optimization_id)
        if record is None:
            raise NotFound(f"optimization {optimization_id!r} not found")
        try:
            write_atomic(self._path(record) / CANCEL_NAME, dumps_json({"reason": reason, "at": time.time()}),
                         fsync=self._fsync)
        except FileNotFoundError:
            raise NotFound(f"optimization {optimization_id!r} was deleted") from None

    def read_cancel_request(self, record: OptimizationRecord) -> str | None:
        try:
            document = orjson.loads((self._path(record) / CANCEL_NAME).read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        return str(document.get("reason") or "cancelled") if isinstance(document, dict) else "cancelled"

    def archive(self, optimization_id: str, members: Iterable[tuple[str, bool, Callable[[], Iterator[bytes]]]], *,
                chunk_size: int = CHUNK_SIZE) -> Chunks:
        """A ZIP of (name, compress, blocks) members, built while it is sent (storage.archive):
        `blocks()` is called when the member's turn comes. `NotFound` first if it is gone."""
        record = self.get(optimization_id)
        if record is None or not self._path(record).is_dir():
            raise NotFound(f"optimization {optimization_id!r} not found")
        now = _zip_time(time.time())
        return _zip_stream([_Member(name, zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED, now, blocks)
                            for name, compress, blocks in members], chunk_size)

    # --- removal -------------------------------------------------------------------------------

    def delete(self, optimization_id: str) -> None:
        """Remove its row, log and folder; `NotFound` if there was nothing. Readers' next read
        raises `LogClosed`; cancel a running optimization first."""
        record = self.get(optimization_id)
        with self._lock:
            log = self._live.pop(optimization_id, None)
            if log is not None:
                log.close()
            existed = self.index.delete(optimization_id)
            moved = self._move_to_trash(self._path(record)) if record is not None else None
        if moved is not None:
            shutil.rmtree(moved, ignore_errors=True)
        if not existed and moved is None:
            raise NotFound(f"optimization {optimization_id!r} not found")

    def cleanup(self, now: float | None = None) -> builtins.list[str]:
        """Delete expired optimizations and folders without a row; return the ids deleted."""
        now = time.time() if now is None else now
        removed = []
        for optimization_id in self.index.expired(now):
            try:
                self.delete(optimization_id)
            except NotFound:
                continue
            removed.append(optimization_id)
        self._remove_orphans()
        return removed

    def close(self) -> None:
        with self._lock:
            logs = builtins.list(self._live.values())
            self._live.clear()
        for log in logs:
            log.close()
        self.index.close()

    def _move_to_trash(self, path: Path) -> Path | None:
        target = self._trash / f"{path.name}.{uuid.uuid4().hex}"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        return target

    def _remove_orphans(self) -> None:
        for user in self._users.iterdir():
            folder = user / OPTIMIZATIONS_DIR
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                moved = None
                with self._lock:  # create() makes its row before its folder, under this lock
                    record = self.index.get(entry.name) if _ID.fullmatch(entry.name) else None
                    if entry.is_dir() and (record is None or self._path(record) != entry):
                        moved = self._move_to_trash(entry)
                if moved is not None:
                    shutil.rmtree(moved, ignore_errors=True)


__all__ = ["OptimizationRecord", "OptimizationStore", "check_optimization_id"]
