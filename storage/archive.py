"""ZIP downloads built while they are sent, in chunks of about 64 KiB.

`zipfile` writes into a non-seekable sink that the generator drains after every block, so a
download never holds more than one block plus one chunk in memory. Being unable to seek, zipfile
puts sizes and CRCs in data descriptors after each member (APPNOTE 4.3.9); readers that use the
central directory (every unzip tool, Python, Go, browsers' OS) read it as usual.
"""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import dumps_json
from .dayfiles import DIAGNOSTICS, TRADES_DAILY, day_files, list_days
from .errors import NotFound

CHUNK_SIZE = 64 * 1024
METADATA_NAME = "metadata.json"
TRADES_CSV = "trades.csv"
DAILY_CSV = "daily.csv"

DateTime = tuple[int, int, int, int, int, int]
Chunks = Generator[bytes, None, None]  # close() it to stop early


def day_zip_chunks(backtest_dir: Path, date: str, *,
                   chunk_size: int = CHUNK_SIZE) -> Chunks:
    """ZIP of one day's `trades_daily.json.gz` and `diagnostics_export.json.gz`, stored as-is.

    Raises `NotFound` here, before the first chunk, if the day does not exist.
    """
    files = day_files(backtest_dir, date)
    members = [_file_member(TRADES_DAILY, files.trades_daily, chunk_size),
               _file_member(DIAGNOSTICS, files.diagnostics, chunk_size)]
    return _zip_stream(members, chunk_size)


def backtest_zip_chunks(backtest_dir: Path, metadata: Mapping[str, Any],
                        trades_rows: Iterable[Mapping[str, Any]],
                        daily_rows: Iterable[Mapping[str, Any]], *,
                        chunk_size: int = CHUNK_SIZE) -> Chunks:
    """ZIP of every day (`<date>/trades_daily.json.gz`, `<date>/diagnostics_export.json.gz`),
    `metadata.json`, `trades.csv` and `daily.csv`.

    CSV columns are the keys of the first row, in order; keys a later row adds are left out,
    missing ones left empty. Raises `NotFound` before the first chunk if there is no backtest
    directory. Rows are consumed lazily, as the ZIP is sent.
    """
    backtest_dir = Path(backtest_dir)
    if not backtest_dir.is_dir():
        raise NotFound(f"backtest directory {backtest_dir} does not exist")
    members: list[_Member] = []
    for date in list_days(backtest_dir):
        files = day_files(backtest_dir, date)
        members.append(_file_member(f"{date}/{TRADES_DAILY}", files.trades_daily, chunk_size))
        members.append(_file_member(f"{date}/{DIAGNOSTICS}", files.diagnostics, chunk_size))
    now = _zip_time(time.time())
    document = dumps_json(dict(metadata), indent=2) + b"\n"
    members.append(_Member(METADATA_NAME, zipfile.ZIP_DEFLATED, now, lambda: iter((document,))))
    members.append(_Member(TRADES_CSV, zipfile.ZIP_DEFLATED, now,
                           lambda: _csv_blocks(trades_rows, chunk_size)))
    members.append(_Member(DAILY_CSV, zipfile.ZIP_DEFLATED, now,
                           lambda: _csv_blocks(daily_rows, chunk_size)))
    return _zip_stream(members, chunk_size)


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    compress_type: int
    date_time: DateTime
    blocks: Callable[[], Iterator[bytes]]  # called once, when the member's turn comes


class _Sink(io.RawIOBase):
    """A write-only, non-seekable buffer: zipfile writes, the generator takes chunks out."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self._buffer += data
        self._position += size
        return size

    def tell(self) -> int:
        # zipfile needs offsets for the central directory; seek stays unsupported.
        return self._position

    def take(self, chunk_size: int, *, final: bool = False) -> Iterator[bytes]:
        """Full chunks from the buffer; with `final`, the rest too."""
        buffer = self._buffer
        while len(buffer) >= chunk_size:
            yield bytes(buffer[:chunk_size])
            del buffer[:chunk_size]
        if final and buffer:
            yield bytes(buffer)
            buffer.clear()


def _zip_stream(members: list[_Member], chunk_size: int) -> Chunks:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    sink = _Sink()
    # If the consumer stops early (client gone), GeneratorExit unwinds these `with` blocks,
    # which finish the ZIP into the sink and drop it: no open handles, no warnings.
    with zipfile.ZipFile(sink, "w") as archive:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=member.date_time)
            info.compress_type = member.compress_type
            info.external_attr = 0o644 << 16
            with archive.open(info, "w") as destination:
                for block in member.blocks():
                    destination.write(block)
                    yield from sink.take(chunk_size)
            yield from sink.take(chunk_size)
    yield from sink.take(chunk_size, final=True)


def _file_member(name: str, path: Path, chunk_size: int) -> _Member:
    # Already gzipped: deflating again would spend CPU to gain nothing.
    try:
        date_time = _zip_time(path.stat().st_mtime)
    except FileNotFoundError:
        raise NotFound(f"{path.name} was deleted meanwhile") from None
    return _Member(name, zipfile.ZIP_STORED, date_time, lambda: _file_blocks(path, chunk_size))


def _file_blocks(path: Path, chunk_size: int) -> Iterator[bytes]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise NotFound(f"{path.name} was deleted while being downloaded") from None
    with handle:
        while block := handle.read(chunk_size):
            yield block


def _csv_blocks(rows: Iterable[Mapping[str, Any]], flush_size: int) -> Iterator[bytes]:
    text = io.StringIO()
    writer = csv.writer(text)
    columns: list[str] | None = None
    for row in rows:
        if columns is None:
            columns = list(row.keys())
            writer.writerow(columns)
        writer.writerow([_cell(row.get(column)) for column in columns])
        if text.tell() >= flush_size:
            yield text.getvalue().encode("utf-8")
            text.seek(0)
            text.truncate()
    if text.tell():
        yield text.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    """Spreadsheet-friendly cell: empty for None, JSON for lists and objects, lowercase bools."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def _zip_time(epoch: float) -> DateTime:
    # ZIP timestamps start in 1980 and have no time zone; local time is what unzip tools show.
    year, month, day, hour, minute, second = time.localtime(max(epoch, 315619200))[:6]
    return (year, month, day, hour, minute, second)
