"""`LocalStore`: the embedded storage backend, files under one root plus a SQLite index.

Ids are checked before they become paths; deletes rename into `trash/` first, so a backtest
vanishes atomically and a crash mid-delete leaves nothing a reader could trip on.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import re
import shutil
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from . import archive, dayfiles
from .atomic import fsync_dir, sync_filesystem, write_json_atomic
from .errors import NotFound
from .eventlog import LOG_NAME, FileEventLog
from .index import DEFAULT_PAGE_SIZE, INDEX_NAME, SqliteIndex
from .records import TERMINAL_STATUSES, BacktestRecord, Page, Records

DEFAULT_TTL_SECONDS = 12 * 3600.0
BACKTESTS_DIR = "backtests"
USERS_DIR = "users"
TRASH_DIR = "trash"
METADATA_NAME = "metadata.json"

# Ids become directory names: a closed alphabet, no leading dot (so no "." or ".."), and a
# length well inside the 255-byte name limit.
_ID = re.compile(r"[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,199}")


# User ids that are directory names as they are; any other id gets a digest (never clashes:
# "=" is not in this alphabet).
_USER_DIR = re.compile(r"[A-Za-z0-9_@-][A-Za-z0-9_.@-]{0,63}")


def user_dir_name(user_id: str) -> str:
    """The folder holding one user's backtests: the id itself when it is a safe name."""
    if _USER_DIR.fullmatch(user_id):
        return user_id
    return "=" + hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def check_backtest_id(backtest_id: str) -> str:
    """Return `backtest_id` if it is safe as a directory name, else raise ValueError."""
    if not isinstance(backtest_id, str) or not _ID.fullmatch(backtest_id):
        raise ValueError(f"invalid backtest id {backtest_id!r}: use 1-200 of A-Z a-z 0-9 _ . : -"
                         ", not starting with '.'")
    return backtest_id

# Sub-folders of a backtest's folder holding caches rebuilt from its results (AnalyticsService's
# table and answers: services/engine/analytics/load.py, at most a table and 8 answers per run):
# not counted as the run's stored bytes.
CACHE_DIRS = frozenset({"analytics"})


class LocalStore:
    """The `StorageBackend` the engine uses by default. One process per root.

        <root>/index.sqlite3                                the index of backtests (WAL mode)
        <root>/users/<user>/backtests/<id>/events.log       the event log
        <root>/users/<user>/backtests/<id>/metadata.json    written by the service (atomic)
        <root>/users/<user>/backtests/<id>/days/<date>/     trades_daily.json.gz, diagnostics_export.json.gz
        <root>/trash/                                       directories being deleted

    A backtest's folder is under its owner's (the index row's `caller`; see `user_dir_name`).
    Folders of the layout before users (`<root>/backtests/<id>`) are moved on open.

    Event logs are shared: `event_log(id)` returns the one live instance of a backtest's log
    for as long as anyone (writer, stream) holds it, so all see the same appends. The most
    recently used `keep_open_logs` logs stay open after their last holder lets go, sparing
    a re-scan; the others close when dropped.

    `fsync=False` keeps day files and metadata atomic but lets a power cut lose the latest
    (for tests and benchmarks); event logs are synced only by their writer's `sync()`.
    """

    def __init__(self, root: Path, ttl_seconds: float = DEFAULT_TTL_SECONDS, *,
                 fsync: bool = True, keep_open_logs: int = 64) -> None:
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds}")
        self._root = Path(root)
        self._ttl = float(ttl_seconds)
        self._fsync = fsync
        self._keep_open_logs = max(0, keep_open_logs)
        self._legacy = self._root / BACKTESTS_DIR
        self._users = self._root / USERS_DIR
        self._trash = self._root / TRASH_DIR
        self._users.mkdir(parents=True, exist_ok=True)
        self._trash.mkdir(exist_ok=True)
        self.index = SqliteIndex(self._root / INDEX_NAME)
        self._lock = threading.RLock()
        self._live: weakref.WeakValueDictionary[str, FileEventLog] = weakref.WeakValueDictionary()
        self._recent: OrderedDict[str, FileEventLog] = OrderedDict()
        self._paths: dict[str, Path] = {}  # backtest id → its folder (an id's owner never changes)
        self._empty_trash()  # what an interrupted delete left
        self._move_legacy()

    @property
    def root(self) -> Path:
        return self._root

    @property
    def ttl_seconds(self) -> float:
        return self._ttl

    def backtest_dir(self, backtest_id: str) -> Path:
        """The backtest's folder, under its owner's; for an id without a row, where a folder
        of the layout before users would be (nothing is found there)."""
        path = self._paths.get(backtest_id)
        if path is not None:
            return path
        check_backtest_id(backtest_id)
        record = self.index.get(backtest_id)
        if record is None:
            return self._legacy / backtest_id
        path = self._owned_dir(record)
        with self._lock:
            if len(self._paths) > 100_000:
                self._paths.clear()
            self._paths[backtest_id] = path
        return path

    def _owned_dir(self, record: BacktestRecord) -> Path:
        return self._users / user_dir_name(record.caller) / BACKTESTS_DIR / record.backtest_id

    # --- the index ---------------------------------------------------------------------------

    def create(self, record: BacktestRecord) -> Path:
        """Index a new backtest and make its directory. `AlreadyExists` if the id or the
        caller + request_id is taken. expires_at defaults to created_at + TTL."""
        check_backtest_id(record.backtest_id)
        path = self._owned_dir(record)
        if record.expires_at is None:
            record = replace(record, expires_at=record.created_at + self._ttl)
        # Row first: a directory without a row is an orphan that cleanup may remove.
        self.index.insert(record)
        try:
            with self._lock:
                # A directory already there was left by a delete that died between removing
                # the row and the directory: its contents belong to no one.
                stale = self._move_to_trash(path)
                parent = path.parent
                if not parent.is_dir():
                    parent.mkdir(parents=True)
                    if self._fsync:
                        fsync_dir(parent.parent)
                        fsync_dir(self._users)
                path.mkdir()
                self._paths[record.backtest_id] = path
            if self._fsync:
                fsync_dir(parent)
        except BaseException:
            self.index.delete(record.backtest_id)
            self._paths.pop(record.backtest_id, None)
            raise
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
        return path

    def get(self, backtest_id: str) -> BacktestRecord | None:
        return self.index.get(backtest_id)

    def update(self, backtest_id: str, /, **fields: Any) -> None:
        """Set fields of a backtest. Moving to a terminal status without an `expires_at`
        starts the TTL at `finished_at` (or now): a long run must not expire as it ends."""
        if fields.get("status") in TERMINAL_STATUSES and "expires_at" not in fields:
            finished = fields.get("finished_at")
            fields["expires_at"] = (time.time() if finished is None else finished) + self._ttl
        self.index.update(backtest_id, **fields)

    def find_by_request(self, caller: str, request_id: str) -> BacktestRecord | None:
        return self.index.find_by_request(caller, request_id)

    def list(self, strategy_id: str | None = None, status: str | None = None,
             page_size: int = DEFAULT_PAGE_SIZE, page_token: str | None = None, *,
             caller: str | None = None) -> Page:
        return self.index.list(strategy_id, status, page_size, page_token, caller=caller)

    def token_after(self, record: BacktestRecord, strategy_id: str | None = None, status: str | None = None,
                    *, caller: str | None = None) -> str:
        return self.index.token_after(record, strategy_id, status, caller=caller)

    def stored_bytes_by_caller(self, caller: str) -> int:
        return self.index.stored_bytes_by_caller(caller)

    def disk_usage(self, backtest_id: str) -> int:
        """Bytes of the backtest's files (its log, day files, metadata): what it costs its owner.
        Folders named in CACHE_DIRS are left out: what they hold is derived from those files,
        bounded per run, and written after the run ends (a count taken then would race it)."""
        total = 0
        stack = [os.fspath(self._existing_dir(backtest_id))]
        while stack:
            try:
                with os.scandir(stack.pop()) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            if entry.name not in CACHE_DIRS:
                                stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:  # deleted meanwhile
                continue
        return total

    def unfinished(self) -> Records:
        return self.index.unfinished()

    def count_running_by_caller(self, caller: str, *, include_queued: bool = False) -> int:
        return self.index.count_running_by_caller(caller, include_queued=include_queued)

    # --- per-backtest data -------------------------------------------------------------------

    def event_log(self, backtest_id: str) -> FileEventLog:
        """The backtest's event log, opened (and its torn tail cut) on first use."""
        path = self.backtest_dir(backtest_id)
        with self._lock:
            log = self._live.get(backtest_id)
            if log is None or log.closed:
                if not path.is_dir():
                    raise NotFound(f"backtest {backtest_id!r} not found")
                log = FileEventLog(path / LOG_NAME)
                self._live[backtest_id] = log
            self._recent[backtest_id] = log
            self._recent.move_to_end(backtest_id)
            while len(self._recent) > self._keep_open_logs:
                # Dropping the reference is enough: holders keep it alive, and the last
                # one to let go closes the file.
                self._recent.popitem(last=False)
            return log

    def write_day(self, backtest_id: str, date: str, trades_daily: dayfiles.Document,
                  diagnostics: dayfiles.Document, *, fsync: bool | None = None) -> int:
        """Atomic write of one day's files (documents, or their JSON already encoded);
        `fsync=False` defers durability to `sync_days`."""
        return dayfiles.write_day(self.backtest_dir(backtest_id), date, trades_daily,
                                  diagnostics, fsync=self._fsync if fsync is None else fsync)

    def sync_days(self, backtest_id: str, dates: Iterable[str]) -> None:
        """Make days written with fsync=False durable: their files, folders and the days folder.

        One syncfs of the store's file system where there is one (Linux): a single device
        flush. Elsewhere an fsync per file and folder, still cheaper in one pass at the end
        than as they are written: the first commits the journal, the rest find little.
        `NotFound` if one of the days was not written.
        """
        if not self._fsync:
            return
        root = self.backtest_dir(backtest_id)
        files = [dayfiles.day_files(root, date) for date in dates]
        if sync_filesystem(root):
            return
        for day in files:
            for path in (day.diagnostics, day.trades_daily):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            fsync_dir(day.trades_daily.parent)
        days = root / "days"
        if days.is_dir():
            fsync_dir(days)

    def read_day(self, backtest_id: str, date: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return dayfiles.read_day(self._existing_dir(backtest_id), date)

    def day_files(self, backtest_id: str, date: str) -> dayfiles.DayFiles:
        return dayfiles.day_files(self._existing_dir(backtest_id), date)

    def list_days(self, backtest_id: str) -> builtins.list[str]:
        return dayfiles.list_days(self._existing_dir(backtest_id))

    def write_metadata(self, backtest_id: str, metadata: Mapping[str, Any]) -> int:
        path = self._existing_dir(backtest_id) / METADATA_NAME
        try:
            return write_json_atomic(path, dict(metadata), fsync=self._fsync)
        except FileNotFoundError:
            raise NotFound(f"backtest {backtest_id!r} was deleted") from None

    def read_metadata(self, backtest_id: str) -> dict[str, Any]:
        path = self.backtest_dir(backtest_id) / METADATA_NAME
        try:
            document = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise NotFound(f"no metadata stored for backtest {backtest_id!r}") from None
        if not isinstance(document, dict):
            raise ValueError(f"{path} does not hold a JSON object")
        return document

    def day_archive(self, backtest_id: str, date: str, *,
                    chunk_size: int = archive.CHUNK_SIZE) -> archive.Chunks:
        return archive.day_zip_chunks(self._existing_dir(backtest_id), date,
                                      chunk_size=chunk_size)

    def backtest_archive(self, backtest_id: str, metadata: Mapping[str, Any],
                         trades_rows: Iterable[Mapping[str, Any]],
                         daily_rows: Iterable[Mapping[str, Any]], *,
                         chunk_size: int = archive.CHUNK_SIZE) -> archive.Chunks:
        return archive.backtest_zip_chunks(self._existing_dir(backtest_id), metadata,
                                           trades_rows, daily_rows, chunk_size=chunk_size)

    # --- removal -----------------------------------------------------------------------------

    def delete(self, backtest_id: str) -> None:
        """Remove a backtest's row, log and files; `NotFound` if none of them exists.

        Safe while readers hold its log: they wait for no one, and their next read raises
        `LogClosed` (a `NotFound`). Cancel a running backtest first: its writer's next append
        raises too.
        """
        path = self.backtest_dir(backtest_id)
        with self._lock:
            self._recent.pop(backtest_id, None)
            log = self._live.pop(backtest_id, None)
            if log is not None:
                log.close()
            existed = self.index.delete(backtest_id)
            self._paths.pop(backtest_id, None)
            # Renaming is atomic: readers see the whole directory or none of it.
            moved = self._move_to_trash(path)
        if moved is not None:
            shutil.rmtree(moved, ignore_errors=True)
        if not existed and moved is None:
            raise NotFound(f"backtest {backtest_id!r} not found")

    def cleanup(self, now: float | None = None) -> builtins.list[str]:
        """Delete expired backtests (see `SqliteIndex.expired`) and directories without a row;
        return the ids of the expired backtests deleted."""
        now = time.time() if now is None else now
        removed: builtins.list[str] = []
        for backtest_id in self.index.expired(now):
            try:
                self.delete(backtest_id)
            except NotFound:
                continue  # deleted meanwhile
            removed.append(backtest_id)
        self._remove_orphans()
        self._empty_trash()
        return removed

    def close(self) -> None:
        """Close every open log and the index."""
        with self._lock:
            logs = builtins.list(self._live.values())
            self._live.clear()
            self._recent.clear()
        for log in logs:
            log.close()
        self.index.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers -----------------------------------------------------------------------------

    def _existing_dir(self, backtest_id: str) -> Path:
        path = self.backtest_dir(backtest_id)
        if not path.is_dir():
            raise NotFound(f"backtest {backtest_id!r} not found")
        return path

    def _move_to_trash(self, path: Path) -> Path | None:
        target = self._trash / f"{path.name}.{uuid.uuid4().hex}"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        return target

    def _remove_orphans(self) -> None:
        folders = [self._legacy] if self._legacy.is_dir() else []
        folders += [user / BACKTESTS_DIR for user in self._users.iterdir() if (user / BACKTESTS_DIR).is_dir()]
        for folder in folders:
            for entry in folder.iterdir():
                with self._lock:
                    # Under the lock: create() makes its row before its directory, so a
                    # directory seen without a row (or its owner's) here is not being created.
                    if entry.is_dir() and _ID.fullmatch(entry.name):
                        record = self.index.get(entry.name)
                        if record is None or self._owned_dir(record) != entry:
                            self._move_to_trash(entry)

    def _move_legacy(self) -> None:
        """Move folders of the layout before users (`backtests/<id>`) under their owners'."""
        if not self._legacy.is_dir():
            return
        for entry in self._legacy.iterdir():
            record = self.index.get(entry.name) if _ID.fullmatch(entry.name) else None
            if record is None or not entry.is_dir():
                continue  # an orphan: cleanup removes it
            target = self._owned_dir(record)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(entry, target)

    def _empty_trash(self) -> None:
        for entry in self._trash.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    # --- crash-safe runs: checkpoints, unpublished days, log repair ----------------------------
    # (imports are local to this block: the rest of the module is edited independently)

    CHECKPOINT_NAME = "checkpoint.json"

    def write_checkpoint(self, backtest_id: str, checkpoint: Mapping[str, Any]) -> int:
        """Replace the run's checkpoint (a small JSON object) atomically; durable when the store
        syncs (`fsync=True`). `NotFound` once the backtest is deleted."""
        from .atomic import dumps_json, write_atomic

        path = self._existing_dir(backtest_id) / self.CHECKPOINT_NAME
        try:
            return write_atomic(path, dumps_json(dict(checkpoint)), fsync=self._fsync)
        except FileNotFoundError:
            raise NotFound(f"backtest {backtest_id!r} was deleted") from None

    def read_checkpoint(self, backtest_id: str) -> dict[str, Any] | None:
        """The run's checkpoint; None when there is none or it cannot be read (a checkpoint is
        only ever an optimization: without it a run is verified from its start)."""
        path = self.backtest_dir(backtest_id) / self.CHECKPOINT_NAME
        try:
            document = orjson.loads(path.read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    CANCEL_NAME = "cancel_requested.json"

    def write_cancel_request(self, backtest_id: str, reason: str) -> None:
        """Record, durably, that a caller cancelled the run (a restarted engine ends it as
        cancelled instead of continuing it)."""
        from .atomic import dumps_json, write_atomic

        try:
            write_atomic(self._existing_dir(backtest_id) / self.CANCEL_NAME,
                         dumps_json({"reason": reason, "at": time.time()}), fsync=self._fsync)
        except FileNotFoundError:
            raise NotFound(f"backtest {backtest_id!r} was deleted") from None

    def read_cancel_request(self, backtest_id: str) -> str | None:
        """The reason of a recorded cancel request, or None."""
        try:
            document = orjson.loads((self.backtest_dir(backtest_id) / self.CANCEL_NAME).read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        return str(document.get("reason") or "cancelled") if isinstance(document, dict) else "cancelled"

    def remove_checkpoint(self, backtest_id: str) -> None:
        (self.backtest_dir(backtest_id) / self.CHECKPOINT_NAME).unlink(missing_ok=True)

    def remove_days(self, backtest_id: str, dates: Iterable[str]) -> builtins.list[str]:
        """Remove days' files (written, never published); returns the dates that were there."""
        root = self._existing_dir(backtest_id)
        return [date for date in dates if dayfiles.remove_day(root, date, fsync=self._fsync)]

    def day_size(self, backtest_id: str, date: str) -> int:
        """Bytes of a day's two files together; 0 when the day is not (fully) there."""
        return dayfiles.day_size(self.backtest_dir(backtest_id), date)

    def on_log_open(self, hook: Any) -> Any:
        """Call `hook(backtest_id, log)` each time a backtest's log is opened (its torn tail
        cut), before anyone reads it; returns a function that removes the hook."""
        from .eventlog import on_open

        # A log's folder is named by its backtest's id, wherever the layout puts it.
        return on_open(self.root, lambda log: hook(log.path.parent.name, log))
