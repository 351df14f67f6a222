"""From bytes to a checked, stored dataset: read the file block by block (reader.py), run the
per-row and sequence checks as it goes (scan.py), append the kept rows to the catalog's columns
(columns.py), then the whole-file checks (checks.py), the report (quality.py) and, when it has no
ERROR, dates/starts, quality.json and meta.json (last: its presence marks a whole dataset).

Memory stays at a block (4 MB of CSV, ~70 k rows) and the per-day aggregates however large the
file (~+40 MB at the peak for 5 M rows); a 5 M-row one-minute CSV is read, checked and stored in
~1.3 s on 2 cores. The same code serves an upload in progress (`source.GrowingFile`: parsing
overlaps receiving) and a file on disk (for benchmarks and tools):

    ingest_file(path, out_dir, IngestOptions(symbol="X", calendar="XBOM"))  # -> IngestResult
    quality_report_of_file(path, calendar="24/7")                            # -> QualityReport only
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from google.protobuf import json_format
from hindsight.v1 import datasets_pb2 as dpb

from ..core.calendar import calendar_tz, check_calendar, day_date
from ..core.catalog import _FORMAT as _CATALOG_FORMAT
from ..core.data import parse_timeframe
from .checks import final_checks, order_verdict
from .columns import ColumnWriter, read_blocks, reverse_columns, write_days, write_json
from .quality import ERROR, INFO, Findings
from .reader import read_csv_blocks, read_parquet_blocks
from .scan import Scanner
from .source import FORMATS, FinishedFile, decompressed, sniff_format
from .tzconv import utc_to_local

__all__ = [
    "CATALOG_FORMAT",
    "IngestOptions",
    "IngestResult",
    "OptionError",
    "ingest",
    "ingest_file",
    "quality_report_of_file",
    "release_memory",
    "resolve_zone",
    "warmup",
]

log = logging.getLogger(__name__)

CATALOG_FORMAT = _CATALOG_FORMAT  # the layout the catalog reads (core/catalog.py)


class OptionError(ValueError):
    """An upload option (request field) that cannot be used: `field` names it."""

    def __init__(self, field: str, text: str):
        super().__init__(text)
        self.field, self.text = field, text


@dataclass(frozen=True)
class IngestOptions:
    symbol: str = ""
    timezone: str = ""
    calendar: str = ""
    timeframe: str = ""
    description: str = ""
    format: str = ""
    owner: str = ""


@dataclass
class IngestResult:
    report: dpb.QualityReport
    stored: bool                      # columns, quality.json and meta.json are in out_dir
    meta: dict | None
    format: str
    timings: dict = field(default_factory=dict)


def resolve_zone(opts: IngestOptions) -> tuple[str, str]:
    """(zone, calendar), each checked: OptionError names the field."""
    calendar = opts.calendar.strip()
    if calendar:
        try:
            check_calendar(calendar)
        except ValueError as exc:
            raise OptionError("calendar", str(exc)) from None
    zone = opts.timezone.strip()
    if zone:
        if zone.upper() == "UTC":
            zone = "UTC"
        else:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise OptionError("timezone", f"unknown time zone '{zone[:60]}': use an IANA name such as "
                                              "Asia/Kolkata, America/New_York or UTC") from None
    else:
        zone = calendar_tz(calendar) if calendar else "UTC"
    if opts.timeframe:
        try:
            parse_timeframe(opts.timeframe)
        except ValueError as exc:
            raise OptionError("timeframe", str(exc)) from None
    if opts.format and opts.format not in FORMATS:
        raise OptionError("format", f"unknown format '{opts.format[:40]}': use csv, csv.gz or parquet (or leave it "
                                    "empty: the format is read from the content)")
    return zone, calendar


class _Clock:
    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.spent[name] = self.spent.get(name, 0.0) + now - self._t
        self._t = now


def ingest(source, opts: IngestOptions, out_dir: Path, *, fsync: bool = False, check=lambda: None,
           upload_bytes=lambda: 0, created_at: float | None = None) -> IngestResult:
    """Read, check and (when the report has no ERROR) store `source` in `out_dir`, which the
    caller creates beforehand and removes afterwards if `stored` is false. Raises source.NotTabular
    / TruncatedGzip for bytes that are no CSV or Parquet, source.Aborted when `check` says the
    upload was abandoned, OptionError for a bad option."""
    try:
        return _ingest(source, opts, out_dir, fsync, check, upload_bytes, created_at)
    finally:
        release_memory()


def _ingest(source, opts: IngestOptions, out_dir: Path, fsync: bool, check, upload_bytes,
            created_at: float | None) -> IngestResult:
    zone, calendar = resolve_zone(opts)
    clock = _Clock()
    fmt = sniff_format(source.peek(4), opts.format)
    findings = Findings("row" if fmt == "parquet" else "line")

    def fmt_time(ns: int) -> str:
        return pd.Timestamp(int(ns), tz="UTC").tz_convert(zone).isoformat()

    writer = ColumnWriter(out_dir)
    stream = None
    names: dict[str, str] = {}
    scan = Scanner(findings, names, fmt_time)
    has_volume = True
    try:
        if fmt == "parquet":
            source.wait_complete()
            blocks = read_parquet_blocks(source.path, zone, findings, check, names)
        elif fmt == "csv.gz":
            stream = decompressed(source)
            blocks = read_csv_blocks(stream.readinto, zone, findings, check, names)
        else:
            blocks = read_csv_blocks(source.readinto, zone, findings, check, names)
        clock.lap("setup")
        for block in blocks:
            clock.lap("parse")
            p = block.prices
            has_volume = "volume" in p
            vol = p["volume"] if has_volume else np.zeros(len(block.ts))
            cols = (block.ts, p["open"], p["high"], p["low"], p["close"], vol)
            kept = scan.feed(block.lines, block.ts, block.local, *cols[1:], unread=_unread_bits(block))
            clock.lap("checks")
            if not findings.has_error:
                writer.append(*(cols if kept.all() else tuple(x[kept] for x in cols)))
            del block, p, vol, cols, kept  # before the next block is parsed: one block alive at a time
            clock.lap("write")
        writer.close(fsync=False)
    except BaseException:
        writer.abandon()
        raise
    finally:
        if stream is not None:
            stream.close()
    if scan.rows == 0:  # no data rows, or no usable header
        if not findings.has_error:
            findings.add("missing_values", ERROR, whole=True, count=1,
                         text="the file has no data rows: add one row per bar after the header",
                         fix="upload a file with a header line and at least one bar")
        return IngestResult(findings.report(rows=0), False, None, fmt, clock.spent)

    clock.lap("parse")
    # The row checks ran on every row (those that found something have findings already).
    findings.mark("unparsable_values", "missing_values", "duplicate_timestamps", "ohlc_inconsistent",
                  "non_positive_prices", "negative_volume", "zero_volume")
    verdict = order_verdict(scan, findings)
    seq = scan
    if verdict == "reversed" and not findings.has_error:
        seq = _rescan_reversed(scan, out_dir, zone, findings, fmt_time, names)
        findings.add("out_of_order_timestamps", INFO, count=scan.kept, whole=True,
                     text="the rows are newest first: they were reversed (oldest first) when stored",
                     fix="nothing to do; upload oldest first to skip this step")
        clock.lap("reverse")
    rows = scan.rows
    summary = None
    if verdict == "sorted" or seq is not scan:
        ts_path = out_dir / "ts.npy" if not findings.has_error and seq.kept else None
        summary = final_checks(seq, findings, calendar=calendar, hint=opts.timeframe, ts_path=ts_path,
                               fmt_time=fmt_time, has_volume=has_volume, volume_name=names.get("volume", "volume"),
                               rows=rows)
    clock.lap("final_checks")
    stats = dict(rows=rows, timeframe=summary.timeframe if summary else "",
                 sessions=summary.sessions if summary else 0,
                 expected_sessions=summary.expected_sessions if summary else 0,
                 min_price=scan.min_price if np.isfinite(scan.min_price) else 0.0,
                 max_price=scan.max_price if np.isfinite(scan.max_price) else 0.0,
                 mean_volume=scan.volume_sum / scan.volume_n if scan.volume_n else 0.0)
    if seq.first_ts is not None:
        stats["first_timestamp"], stats["last_timestamp"] = fmt_time(seq.first_ts), fmt_time(seq.last_ts)
    report = findings.report(**stats)
    if findings.has_error or summary is None:
        return IngestResult(report, False, None, fmt, clock.spent)
    write_days(out_dir, summary.dates, summary.starts, fsync)
    if fsync:
        for name in ("ts", "open", "high", "low", "close", "volume"):
            with open(out_dir / f"{name}.npy", "rb") as fh:
                os.fsync(fh.fileno())
    write_json(out_dir / "quality.json", json_format.MessageToDict(report, preserving_proto_field_name=True), fsync)
    dates = summary.dates
    meta = {"format": CATALOG_FORMAT, "key": uuid.uuid4().hex[:16], "symbol": opts.symbol,
            "timeframe": summary.timeframe, "timezone": zone,
            "first_date": day_date(int(dates[0])).isoformat() if len(dates) else "",
            "last_date": day_date(int(dates[-1])).isoformat() if len(dates) else "",
            "bars": int(seq.kept), "days": len(dates),
            "description": opts.description or f"Uploaded {fmt} file ({rows:,} rows)",
            "calendar": calendar, "source": "upload", "owner": opts.owner,
            "created_at": created_at if created_at is not None else time.time(),
            "quality_score": report.score, "rows": rows, "file_format": fmt, "upload_bytes": int(upload_bytes())}
    write_json(out_dir / "meta.json", meta, fsync)
    clock.lap("store")
    return IngestResult(report, True, meta, fmt, clock.spent)


def _rescan_reversed(first: Scanner, out_dir: Path, zone: str, findings: Findings, fmt_time,
                     names: dict[str, str]) -> Scanner:
    """A wholly newest-first file: its stored columns reversed in place, and the sequence checks
    run again over them (oldest first), each row still named by its line in the file."""
    reverse_columns(out_dir)
    scan = Scanner(findings, names, fmt_time)
    total = first.kept
    k = 0
    for cols in read_blocks(out_dir):
        n = len(cols["ts"])
        lines = first.lines.range(total - k - n, total - k)[::-1]
        local = utc_to_local(cols["ts"], zone)
        scan.feed(lines, cols["ts"], local, cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"],
                  values=False)
        k += n
    scan.rows = first.rows
    return scan


def release_memory() -> None:
    """Give the memory an ingest freed back to the system: pyarrow's pool keeps what it freed, and
    glibc keeps freed memory of its per-thread arenas (pyarrow's threads parse), ~100 MB after a
    5 M-row file, until trimmed."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _unread_bits(block) -> np.ndarray | None:
    """uint8 per row: bit j set where column j (open, high, low, close, volume) could not be read."""
    if not block.bad:
        return None
    bits = np.zeros(len(block.ts), np.uint8)
    for j, role in enumerate(("open", "high", "low", "close", "volume")):
        if role in block.bad:
            bits |= block.bad[role].astype(np.uint8) << j
    return bits


def ingest_file(path: Path | str, out_dir: Path | str, opts: IngestOptions, *, fsync: bool = False) -> IngestResult:
    """Ingest a file on disk into `out_dir` (created; left with the columns, quality.json and
    meta.json when the report has no ERROR, removed otherwise). For benchmarks and tools."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=False)
    source = FinishedFile(path)
    try:
        result = ingest(source, opts, out_dir, fsync=fsync, upload_bytes=lambda: Path(path).stat().st_size)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        source.close()
    if not result.stored:
        shutil.rmtree(out_dir, ignore_errors=True)
    return result


def quality_report_of_file(path: Path | str, calendar: str = "", timezone: str = "", timeframe: str = "",
                           format: str = "") -> dpb.QualityReport:
    """The quality report of a file on disk: parsed and checked as an upload is, nothing kept (the
    columns go to a temp folder, removed). For benchmarks: the report's time alone."""
    with tempfile.TemporaryDirectory(prefix="hindsight-quality-") as tmp:
        opts = IngestOptions(symbol="QUALITY", timezone=timezone, calendar=calendar, timeframe=timeframe,
                             format=format)
        return ingest_file(path, Path(tmp) / "build", opts).report


def warmup() -> None:
    """Load the scan kernel (numba) and touch pyarrow's CSV reader and the calendar on a tiny file,
    so the first upload pays for neither (~1-3 s otherwise)."""
    lines = ["timestamp,open,high,low,close,volume"]
    for m in range(30):
        lines.append(f"2024-03-04 09:{15 + m:02d}:00,{100 + m},{101 + m},{99 + m},{100.5 + m},{10 + m}")
    with tempfile.TemporaryDirectory(prefix="hindsight-warmup-") as tmp:
        path = Path(tmp) / "warmup.csv"
        path.write_text("\n".join(lines) + "\n")
        quality_report_of_file(path, calendar="XBOM")
