"""Per-day result files: `<backtest_dir>/days/<YYYY-MM-DD>/` holds `trades_daily.json.gz`
and `diagnostics_export.json.gz`.

Formats are those of seeds 000/001; storage treats them as plain dicts. A day exists once both
files do: diagnostics are written first and trades_daily last, each atomically.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from isal import igzip

from .atomic import dumps_json, fsync_dir, gzip_bytes, write_atomic
from .errors import NotFound

DAYS_DIR = "days"
TRADES_DAILY = "trades_daily.json.gz"
DIAGNOSTICS = "diagnostics_export.json.gz"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class DayFiles:
    """The two files of one day."""

    date: str
    trades_daily: Path
    diagnostics: Path


def check_date(date: str) -> str:
    """Return `date` if it is a real `YYYY-MM-DD` date, else raise ValueError.

    Dates become directory names, so this is also what keeps `..` out of paths.
    """
    if not isinstance(date, str) or not _DATE.fullmatch(date):
        raise ValueError(f"date must look like YYYY-MM-DD, got {date!r}")
    try:
        _dt.date.fromisoformat(date)
    except ValueError:
        raise ValueError(f"{date!r} is not a calendar date") from None
    return date


def day_dir(backtest_dir: Path, date: str) -> Path:
    return Path(backtest_dir) / DAYS_DIR / check_date(date)


Document = dict[str, Any] | bytes  # a day file's document, or its compact JSON already encoded


def write_day(backtest_dir: Path, date: str, trades_daily: Document,
              diagnostics: Document, *, fsync: bool = True) -> int:
    """Write (or replace) one day's two files; return their total size in bytes.

    The backtest directory must exist (`NotFound` otherwise): a day written for a backtest
    deleted meanwhile must not resurrect its directory.
    """
    backtest_dir = os.fspath(backtest_dir)
    days = os.path.join(backtest_dir, DAYS_DIR)
    target = os.path.join(days, check_date(date))
    try:
        return write_day_files(target, trades_daily, diagnostics, fsync=fsync, parents=False)
    except FileNotFoundError:
        pass  # the backtest's first day: no days folder yet (or no backtest directory)
    try:
        if _mkdir(Path(days)) and fsync:
            fsync_dir(backtest_dir)
        return write_day_files(target, trades_daily, diagnostics, fsync=fsync, parents=False)
    except FileNotFoundError:
        raise NotFound(f"backtest directory {backtest_dir} does not exist") from None


def write_day_files(directory: Path, trades_daily: Document, diagnostics: Document,
                    *, fsync: bool = True, parents: bool = True) -> int:
    """Write the two files into `directory` (made if missing); return their total size.

    The layout-free half of `write_day`, for writers that choose the directory themselves.
    Writers on other threads are best given encoded JSON (`dumps_json`): encoding holds the
    GIL, gzip and the file-system calls do not.
    """
    directory = os.fspath(directory)
    try:
        os.mkdir(directory)
        created = True
    except FileExistsError:
        created = False
    except FileNotFoundError:
        if not parents:
            raise
        os.makedirs(directory, exist_ok=True)
        created = True
    total = write_atomic(os.path.join(directory, DIAGNOSTICS), _gzipped(diagnostics), fsync=fsync)
    total += write_atomic(os.path.join(directory, TRADES_DAILY), _gzipped(trades_daily), fsync=fsync)
    if created and fsync:
        # A new directory is an entry of its parent; make that entry durable too.
        fsync_dir(os.path.dirname(directory) or ".")
    return total


def write_days(days: list[tuple[str, Document, Document]], *, fsync: bool = True) -> list[tuple[str, int]]:
    """write_day_files() of several (directory, trades_daily, diagnostics); their sizes, in order.
    Stops at the first error (the days before it are written)."""
    return [(directory, write_day_files(directory, trades, diagnostics, fsync=fsync))
            for directory, trades, diagnostics in days]


def _gzipped(doc: Document) -> bytes:
    return gzip_bytes(doc if isinstance(doc, bytes) else dumps_json(doc))


def day_files(backtest_dir: Path, date: str) -> DayFiles:
    """Paths of a complete day's files; `NotFound` if the day was not (fully) written."""
    target = day_dir(backtest_dir, date)
    files = DayFiles(date, target / TRADES_DAILY, target / DIAGNOSTICS)
    if not (files.trades_daily.is_file() and files.diagnostics.is_file()):
        raise NotFound(f"no results stored for {date}")
    return files


def read_day(backtest_dir: Path, date: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(trades_daily, diagnostics) of one day; `NotFound` if it was not written."""
    files = day_files(backtest_dir, date)
    try:
        return _read_json_gz(files.trades_daily), _read_json_gz(files.diagnostics)
    except FileNotFoundError:
        # Deleted between the check and the read.
        raise NotFound(f"no results stored for {date}") from None


def list_days(backtest_dir: Path) -> list[str]:
    """Dates with a complete pair of files, ascending."""
    days = Path(backtest_dir) / DAYS_DIR
    try:
        entries = list(days.iterdir())
    except FileNotFoundError:
        return []
    return sorted(entry.name for entry in entries
                  if _DATE.fullmatch(entry.name)
                  and (entry / TRADES_DAILY).is_file() and (entry / DIAGNOSTICS).is_file())


def day_size(backtest_dir: Path, date: str) -> int:
    """Bytes of a day's two files together (what write_day returned); 0 if the day is not there."""
    target = day_dir(backtest_dir, date)
    total = 0
    for name in (TRADES_DAILY, DIAGNOSTICS):
        try:
            total += os.stat(target / name).st_size
        except FileNotFoundError:
            return 0
    return total


def remove_day(backtest_dir: Path, date: str, *, fsync: bool = True) -> bool:
    """Remove one day's files and folder; False if it was not there.

    trades_daily goes first: without it the day is no longer listed (`list_days`), so a crash
    midway leaves nothing a reader could take for a day. Temp files a killed writer left in
    the folder go too."""
    target = day_dir(backtest_dir, date)
    try:
        names = os.listdir(target)
    except FileNotFoundError:
        return False
    names.sort(key=lambda name: name != TRADES_DAILY)
    for name in names:
        try:
            os.unlink(target / name)
        except FileNotFoundError:
            pass
    try:
        os.rmdir(target)
    except FileNotFoundError:
        pass
    if fsync:
        fsync_dir(target.parent)
    return True


def _read_json_gz(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        obj = orjson.loads(igzip.decompress(fh.read()))
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return obj


def _mkdir(path: Path) -> bool:
    """Create `path` if missing; True if this call created it."""
    try:
        path.mkdir()
    except FileExistsError:
        return False
    return True
