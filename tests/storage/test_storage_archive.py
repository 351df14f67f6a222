"""ZIP downloads: entries, stored gz members, CSVs, chunking, laziness, early stop."""

from __future__ import annotations

import csv
import gc
import gzip
import io
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.archive import backtest_zip_chunks, day_zip_chunks
from storage.dayfiles import DIAGNOSTICS, TRADES_DAILY, write_day
from storage.errors import NotFound


def day_docs(date: str, trades: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
    daily = {"date": date, "summary": {"total_trades": trades, "total_pnl": "12.50"},
             "trades": [{"trade_id": f"t{i}", "pnl": str(i), "entry_flow_ids": [f"exec_{i}"]}
                        for i in range(trades)]}
    diagnostics = {"events_history": {f"exec_{i}": {"execution_id": f"exec_{i}",
                                                    "node_id": "entry-1"}
                                      for i in range(trades)}}
    return daily, diagnostics


def unzip(chunks: Iterator[bytes]) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None
    return archive


def test_day_zip(tmp_path: Path) -> None:
    daily, diagnostics = day_docs("2024-10-24")
    write_day(tmp_path, "2024-10-24", daily, diagnostics)
    archive = unzip(day_zip_chunks(tmp_path, "2024-10-24"))
    assert archive.namelist() == [TRADES_DAILY, DIAGNOSTICS]
    for info in archive.infolist():
        assert info.compress_type == zipfile.ZIP_STORED  # already gzipped
        on_disk = (tmp_path / "days" / "2024-10-24" / info.filename).read_bytes()
        assert archive.read(info) == on_disk
    assert json.loads(gzip.decompress(archive.read(TRADES_DAILY))) == daily
    assert json.loads(gzip.decompress(archive.read(DIAGNOSTICS))) == diagnostics


def test_missing_day_raises_before_the_first_chunk(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        day_zip_chunks(tmp_path, "2024-10-24")
    with pytest.raises(NotFound):
        backtest_zip_chunks(tmp_path / "gone", {}, [], [])
    with pytest.raises(ValueError):
        day_zip_chunks(tmp_path, "../../etc")


def test_chunks_are_bounded(tmp_path: Path) -> None:
    daily, _ = day_docs("2024-10-24")
    # Incompressible diagnostics make a member larger than many chunks.
    write_day(tmp_path, "2024-10-24", daily, {"blob": os.urandom(300_000).hex()})
    chunks = list(day_zip_chunks(tmp_path, "2024-10-24", chunk_size=8192))
    assert len(chunks) > 10
    assert all(len(chunk) == 8192 for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= 8192
    assert unzip(iter(chunks)).namelist() == [TRADES_DAILY, DIAGNOSTICS]


def test_backtest_zip(tmp_path: Path) -> None:
    dates = ["2024-10-24", "2024-10-25", "2024-10-28"]
    for date in dates:
        write_day(tmp_path, date, *day_docs(date))
    metadata = {"backtest_id": "bt1", "strategy_id": "s1", "total_days": 3,
                "overall_summary": {"total_pnl": "37.50"}}
    trades: list[dict[str, Any]] = [
        {"date": "2024-10-24", "trade_id": "t0", "pnl": 1.5, "entry_flow_ids": ["a", "b"],
         "exit_reason": None, "closed": True},
        {"date": "2024-10-25", "trade_id": "t1", "pnl": -2.25, "entry_flow_ids": [],
         "exit_reason": "stop, loss \"hard\"", "closed": False, "extra": "dropped"},
        {"date": "2024-10-28", "trade_id": "t2"}]
    daily = [{"date": date, "trades": 2, "pnl": "12.50"} for date in dates]
    archive = unzip(backtest_zip_chunks(tmp_path, metadata, trades, daily))
    expected_days = [f"{d}/{name}" for d in dates for name in (TRADES_DAILY, DIAGNOSTICS)]
    assert archive.namelist() == [*expected_days, "metadata.json", "trades.csv", "daily.csv"]
    for date in dates:
        daily_doc, diagnostics = day_docs(date)
        assert json.loads(gzip.decompress(archive.read(f"{date}/{TRADES_DAILY}"))) == daily_doc
        assert json.loads(gzip.decompress(archive.read(f"{date}/{DIAGNOSTICS}"))) == diagnostics
        assert archive.getinfo(f"{date}/{TRADES_DAILY}").compress_type == zipfile.ZIP_STORED
    assert json.loads(archive.read("metadata.json")) == metadata
    for name in ("metadata.json", "trades.csv", "daily.csv"):
        assert archive.getinfo(name).compress_type == zipfile.ZIP_DEFLATED

    rows = list(csv.reader(io.StringIO(archive.read("trades.csv").decode())))
    assert rows[0] == ["date", "trade_id", "pnl", "entry_flow_ids", "exit_reason", "closed"]
    assert rows[1] == ["2024-10-24", "t0", "1.5", '["a","b"]', "", "true"]
    assert rows[2] == ["2024-10-25", "t1", "-2.25", "[]", 'stop, loss "hard"', "false"]
    assert rows[3] == ["2024-10-28", "t2", "", "", "", ""]
    assert list(csv.DictReader(io.StringIO(archive.read("daily.csv").decode()))) == \
        [{"date": d, "trades": "2", "pnl": "12.50"} for d in dates]


def test_backtest_zip_without_days_or_rows(tmp_path: Path) -> None:
    archive = unzip(backtest_zip_chunks(tmp_path, {"a": 1}, [], iter(())))
    assert archive.namelist() == ["metadata.json", "trades.csv", "daily.csv"]
    assert archive.read("trades.csv") == b""


def test_rows_are_consumed_while_streaming(tmp_path: Path) -> None:
    """A large CSV is never built whole: chunks flow before the rows run out."""
    consumed = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal consumed
        for i in range(200_000):
            consumed += 1
            yield {"trade_id": f"t{i}", "pnl": i * 0.25, "note": os.urandom(8).hex()}

    stream = backtest_zip_chunks(tmp_path, {}, rows(), [], chunk_size=16384)
    first = next(stream)
    assert len(first) == 16384 and consumed < 200_000
    rest = list(stream)
    assert max(len(chunk) for chunk in rest) <= 16384
    archive = unzip(iter([first, *rest]))
    assert archive.read("trades.csv").count(b"\r\n") == 200_001


def test_stopping_early_leaves_nothing_open(tmp_path: Path) -> None:
    write_day(tmp_path, "2024-10-24", day_docs("2024-10-24")[0],
              {"blob": os.urandom(200_000).hex()})
    stream = day_zip_chunks(tmp_path, "2024-10-24", chunk_size=1024)
    next(stream)
    stream.close()  # the client went away; with filterwarnings=error a leak would fail here
    unstarted = backtest_zip_chunks(tmp_path, {}, [], [])
    del unstarted
    gc.collect()


@pytest.mark.skipif(shutil.which("unzip") is None, reason="no unzip binary")
def test_unzip_tool_accepts_streamed_zip(tmp_path: Path) -> None:
    write_day(tmp_path, "2024-10-24", *day_docs("2024-10-24"))
    target = tmp_path / "a.zip"
    target.write_bytes(b"".join(backtest_zip_chunks(tmp_path, {"a": 1}, [{"x": 1}], [])))
    result = subprocess.run(["unzip", "-t", str(target)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
