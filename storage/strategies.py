"""`StrategyStore`: saved strategies in versions, per user, in SQLite (`<root>/strategies.sqlite3`).

Beside the run index under the same root and with its conventions: WAL, one connection behind a
lock, every query scoped to one owner, page tokens bound to the owner they were issued to. A
strategy is kept as the bytes of its serialized message (the service serializes it
deterministically, so equal strategies are equal bytes); nothing here knows its schema.

    strategies         (owner, strategy_id) → latest_version, first_created_at, updated_at
    strategy_versions  (owner, strategy_id, version) → strategy, description, warmup_bars, created_at

Versions are immutable: a version is written once, with the number after the latest, and only a
delete of the whole strategy removes it. Every write is one `BEGIN IMMEDIATE` transaction that
reads the latest version and writes the next, so two writers (threads, or engines sharing the
file) never get the same number: the second waits for the first and numbers after it, or, with
`expected_version`, finds it stale (`VersionConflict`).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AlreadyExists, NotFound, StorageError
from .index import _decode_token, _encode_token

INDEX_NAME = "strategies.sqlite3"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_ID = 64
# 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit (strategies.proto).
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SCHEMA_VERSION = 1
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS strategies (
    "owner"            TEXT NOT NULL,
    "strategy_id"      TEXT NOT NULL,
    "latest_version"   INTEGER NOT NULL,
    "first_created_at" REAL NOT NULL,
    "updated_at"       REAL NOT NULL,
    PRIMARY KEY ("owner", "strategy_id")
) WITHOUT ROWID;
-- A user's strategies, most recently updated first.
CREATE INDEX IF NOT EXISTS strategies_updated ON strategies ("owner", "updated_at", "strategy_id");
CREATE TABLE IF NOT EXISTS strategy_versions (
    "owner"        TEXT NOT NULL,
    "strategy_id"  TEXT NOT NULL,
    "version"      INTEGER NOT NULL CHECK ("version" >= 1),
    "strategy"     BLOB NOT NULL,
    "description"  TEXT NOT NULL DEFAULT '',
    "warmup_bars"  INTEGER NOT NULL DEFAULT 0,
    "created_at"   REAL NOT NULL,
    PRIMARY KEY ("owner", "strategy_id", "version")
) WITHOUT ROWID;
PRAGMA user_version = {_SCHEMA_VERSION};
"""
# Page tokens name what they list, so a token of ListBacktests is refused here.
_TOKEN_KIND = "strategies"
_VERSION_COLUMNS = ('v."strategy_id", v."version", v."description", v."warmup_bars", v."created_at", '
                    's."latest_version", s."first_created_at", v."owner"')


class StrategyNotFound(NotFound):
    """The owner has no strategy of that id."""


class VersionNotFound(NotFound):
    """The strategy exists but not at that version; `latest` is its newest."""

    def __init__(self, message: str, latest: int) -> None:
        super().__init__(message)
        self.latest = latest


class VersionConflict(StorageError):
    """An update's expected_version is no longer the latest (`latest`)."""

    def __init__(self, message: str, latest: int) -> None:
        super().__init__(message)
        self.latest = latest


class LimitReached(StorageError):
    """A write would pass a limit: `limit` is "strategies" (per owner) or "versions" (per strategy)."""

    def __init__(self, limit: str, maximum: int, used: int) -> None:
        super().__init__(f"{limit}: {used} of {maximum}")
        self.limit, self.maximum, self.used = limit, maximum, used


@dataclass(frozen=True, slots=True)
class SavedVersion:
    """One version of a saved strategy. `strategy` is the serialized message; b"" when a
    listing left it out (see `versions`)."""

    strategy_id: str
    version: int
    description: str
    warmup_bars: int
    created_at: float
    latest_version: int
    first_created_at: float
    owner: str
    strategy: bytes = b""


def check_strategy_id(strategy_id: str) -> str:
    """Return the id if it follows strategies.proto's rule, else raise ValueError."""
    if not isinstance(strategy_id, str) or not _ID.fullmatch(strategy_id):
        raise ValueError("use 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit")
    return strategy_id


def slug(name: str) -> str:
    """The default id made from a strategy's name: "SMA Cross 20/50" → "sma-cross-20-50" (accents
    dropped, every other run of characters a '-'); "strategy" when nothing is left."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:MAX_ID].rstrip("-")
    return text or "strategy"


def _with_suffix(base: str, n: int) -> str:
    """`base`, or `base-n` for n >= 2, cut so the id stays within MAX_ID characters."""
    if n < 2:
        return base
    suffix = f"-{n}"
    return base[:MAX_ID - len(suffix)].rstrip("-") + suffix


class StrategyStore:
    """Saved strategies of every user. Safe to share between threads; several processes may
    open one file (writes are serialized by SQLite's lock, waiting up to 30 s)."""

    def __init__(self, root: Path | str) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self._path = root / INDEX_NAME
        self._lock = threading.Lock()
        # isolation_level=None: autocommit; writes open their own BEGIN IMMEDIATE transactions.
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=30.0)
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            # Crash-safe in WAL mode; a power cut may lose the last commits (never tear one).
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = OFF")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._db.close()
            raise

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "StrategyStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writes --------------------------------------------------------------------------
    def create(self, owner: str, strategy: bytes, *, strategy_id: str = "", default_id: str = "strategy",
               description: str = "", warmup_bars: int = 0, max_strategies: int = 0) -> SavedVersion:
        """Save a new strategy as version 1. With `strategy_id` "" the id is `default_id`, or
        `default_id-2`, `-3` ... while the owner has one of that id. `AlreadyExists` for an
        explicit id the owner has; `LimitReached("strategies")` when the owner has
        `max_strategies` (0: no limit)."""
        if strategy_id:
            check_strategy_id(strategy_id)
        else:
            check_strategy_id(default_id)
        now = time.time()
        with self._write() as db:
            if strategy_id and _exists(db, owner, strategy_id):
                raise AlreadyExists(f"strategy {strategy_id!r} already exists")
            if max_strategies:
                used = db.execute('SELECT COUNT(*) FROM strategies WHERE "owner" = ?', (owner,)).fetchone()[0]
                if used >= max_strategies:
                    raise LimitReached("strategies", max_strategies, used)
            sid = strategy_id or self._free_id(db, owner, default_id)
            db.execute('INSERT INTO strategies ("owner", "strategy_id", "latest_version", "first_created_at", '
                       '"updated_at") VALUES (?, ?, 1, ?, ?)', (owner, sid, now, now))
            db.execute('INSERT INTO strategy_versions ("owner", "strategy_id", "version", "strategy", "description", '
                       '"warmup_bars", "created_at") VALUES (?, ?, 1, ?, ?, ?, ?)',
                       (owner, sid, strategy, description, warmup_bars, now))
        return SavedVersion(sid, 1, description, warmup_bars, now, 1, now, owner, strategy)

    @staticmethod
    def _free_id(db: sqlite3.Connection, owner: str, base: str) -> str:
        n = 1
        while _exists(db, owner, _with_suffix(base, n)):
            n += 1
        return _with_suffix(base, n)

    def update(self, owner: str, strategy_id: str, strategy: bytes, *, description: str | None = None,
               warmup_bars: int = 0, expected_version: int = 0, max_versions: int = 0) -> tuple[SavedVersion, bool]:
        """Save a new version; returns (the version, created). `description` None keeps the
        latest's. An update equal to the latest version (strategy bytes and description)
        returns the latest, created False. `StrategyNotFound`; `VersionConflict` when
        `expected_version` (0: any) is not the latest; `LimitReached("versions")` when the
        strategy has `max_versions` (0: no limit)."""
        now = time.time()
        with self._write() as db:
            row = db.execute('SELECT "latest_version", "first_created_at" FROM strategies '
                             'WHERE "owner" = ? AND "strategy_id" = ?', (owner, strategy_id)).fetchone()
            if row is None:
                raise StrategyNotFound(f"strategy {strategy_id!r} not found")
            latest, first = int(row[0]), float(row[1])
            if expected_version and expected_version != latest:
                raise VersionConflict(f"strategy {strategy_id!r} is at version {latest}, not {expected_version}",
                                      latest)
            current = db.execute(
                'SELECT "strategy", "description", "warmup_bars", "created_at" FROM strategy_versions '
                'WHERE "owner" = ? AND "strategy_id" = ? AND "version" = ?', (owner, strategy_id, latest)).fetchone()
            old_strategy, old_description = bytes(current[0]), current[1]
            if description is None:
                description = old_description
            if old_strategy == strategy and old_description == description:
                return SavedVersion(strategy_id, latest, old_description, int(current[2]), float(current[3]), latest,
                                    first, owner, old_strategy), False
            if max_versions and latest >= max_versions:
                raise LimitReached("versions", max_versions, latest)
            version = latest + 1
            db.execute('INSERT INTO strategy_versions ("owner", "strategy_id", "version", "strategy", "description", '
                       '"warmup_bars", "created_at") VALUES (?, ?, ?, ?, ?, ?, ?)',
                       (owner, strategy_id, version, strategy, description, warmup_bars, now))
            db.execute('UPDATE strategies SET "latest_version" = ?, "updated_at" = ? '
                       'WHERE "owner" = ? AND "strategy_id" = ?', (version, now, owner, strategy_id))
        return SavedVersion(strategy_id, version, description, warmup_bars, now, version, first, owner, strategy), True

    def delete(self, owner: str, strategy_id: str) -> bool:
        """Remove a strategy and every version; True if it existed."""
        with self._write() as db:
            count = db.execute('DELETE FROM strategies WHERE "owner" = ? AND "strategy_id" = ?',
                               (owner, strategy_id)).rowcount
            db.execute('DELETE FROM strategy_versions WHERE "owner" = ? AND "strategy_id" = ?', (owner, strategy_id))
        return count > 0

    # --- reads ---------------------------------------------------------------------------
    def get(self, owner: str, strategy_id: str, version: int = 0) -> SavedVersion:
        """One version (0: the latest). `StrategyNotFound`, or `VersionNotFound` naming the latest."""
        with self._read() as db:
            head = db.execute('SELECT "latest_version" FROM strategies WHERE "owner" = ? AND "strategy_id" = ?',
                              (owner, strategy_id)).fetchone()
            if head is None:
                raise StrategyNotFound(f"strategy {strategy_id!r} not found")
            latest = int(head[0])
            row = db.execute(
                f'SELECT {_VERSION_COLUMNS}, v."strategy" FROM strategy_versions v JOIN strategies s '
                'ON s."owner" = v."owner" AND s."strategy_id" = v."strategy_id" '
                'WHERE v."owner" = ? AND v."strategy_id" = ? AND v."version" = ?',
                (owner, strategy_id, version or latest)).fetchone()
        if row is None:
            raise VersionNotFound(f"strategy {strategy_id!r} has no version {version} (its latest is {latest})",
                                  latest)
        return _saved(row)

    def versions(self, owner: str, strategy_id: str, max_bytes: int = 0) -> list[SavedVersion]:
        """Every version, newest first. With `max_bytes` (0: no limit) the strategies are
        included newest first while their bytes add up to at most that (the newest always);
        older versions come without theirs (`strategy` b""). `StrategyNotFound`."""
        with self._read() as db:
            rows = db.execute(
                f'SELECT {_VERSION_COLUMNS}, length(v."strategy") FROM strategy_versions v JOIN strategies s '
                'ON s."owner" = v."owner" AND s."strategy_id" = v."strategy_id" '
                'WHERE v."owner" = ? AND v."strategy_id" = ? ORDER BY v."version" DESC',
                (owner, strategy_id)).fetchall()
            if not rows:
                raise StrategyNotFound(f"strategy {strategy_id!r} not found")
            total, oldest = 0, rows[0][1]
            for row in rows:
                total += int(row[-1])
                if max_bytes and total > max_bytes and row is not rows[0]:
                    break
                oldest = row[1]
            bodies = dict(db.execute(
                'SELECT "version", "strategy" FROM strategy_versions WHERE "owner" = ? AND "strategy_id" = ? '
                'AND "version" >= ?', (owner, strategy_id, oldest)).fetchall())
        return [_saved((*row[:-1], bodies.get(row[1], b""))) for row in rows]

    def list(self, owner: str, page_size: int = DEFAULT_PAGE_SIZE,
             page_token: str | None = None) -> tuple[list[SavedVersion], str | None]:
        """One page of the owner's strategies at their latest versions, most recently updated
        first, and the next page's token (None at the end). Keyset pagination on (updated_at,
        strategy_id); a strategy updated while pages are read moves to the front (a list that
        is being read may then miss it). ValueError for a token not issued to this owner."""
        if page_size < 0:
            raise ValueError(f"page_size must be >= 0, got {page_size}")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        where, params = 's."owner" = ?', [owner]
        if page_token:
            updated_at, after_id = _decode_token(page_token, _filters(owner))
            where += ' AND (s."updated_at" < ? OR (s."updated_at" = ? AND s."strategy_id" < ?))'
            params += [updated_at, updated_at, after_id]
        with self._lock:
            rows = self._db.execute(
                f'SELECT {_VERSION_COLUMNS}, v."strategy" FROM strategies s JOIN strategy_versions v '
                'ON v."owner" = s."owner" AND v."strategy_id" = s."strategy_id" AND v."version" = s."latest_version" '
                f'WHERE {where} ORDER BY s."updated_at" DESC, s."strategy_id" DESC LIMIT ?',
                [*params, size + 1]).fetchall()
        items = [_saved(row) for row in rows[:size]]
        if len(rows) <= size:
            return items, None
        return items, self.token_after(items[-1])

    def token_after(self, item: SavedVersion) -> str:
        """The token listing what comes after `item` (for a page cut short, e.g. by bytes). A
        strategy's updated_at is its latest version's created_at."""
        return _encode_token(item.created_at, item.strategy_id, _filters(item.owner))

    def count(self, owner: str) -> int:
        with self._lock:
            return int(self._db.execute('SELECT COUNT(*) FROM strategies WHERE "owner" = ?', (owner,)).fetchone()[0])

    # --- plumbing ------------------------------------------------------------------------
    def _write(self) -> "_Transaction":
        return _Transaction(self, "BEGIN IMMEDIATE")

    def _read(self) -> "_Transaction":
        return _Transaction(self, "BEGIN")


class _Transaction:
    """`with store._write() as db:` — the lock, then BEGIN IMMEDIATE (the database's write lock,
    taken before anything is read), COMMIT on success, ROLLBACK on any exception. `_read()`: a
    plain BEGIN, so the reads inside see one snapshot."""

    def __init__(self, store: StrategyStore, begin: str) -> None:
        self.store, self.begin = store, begin

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        try:
            self.store._db.execute(self.begin)
        except BaseException:
            self.store._lock.release()
            raise
        return self.store._db

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.store._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self.store._lock.release()


def _exists(db: sqlite3.Connection, owner: str, strategy_id: str) -> bool:
    return db.execute('SELECT 1 FROM strategies WHERE "owner" = ? AND "strategy_id" = ?',
                      (owner, strategy_id)).fetchone() is not None


def _saved(row: Iterable[Any]) -> SavedVersion:
    sid, version, description, warmup, created, latest, first, owner, strategy = row
    return SavedVersion(sid, int(version), description, int(warmup), float(created), int(latest), float(first), owner,
                        bytes(strategy) if strategy is not None else b"")


def _filters(owner: str) -> list[str | None]:
    return [_TOKEN_KIND, owner]


__all__ = ["AlreadyExists", "LimitReached", "SavedVersion", "StrategyNotFound", "StrategyStore", "VersionConflict",
           "VersionNotFound", "check_strategy_id", "slug"]
