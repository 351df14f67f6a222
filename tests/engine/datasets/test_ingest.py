"""Ingest: every format and timestamp form stored exactly as `core.data.load_bars` reads the same
file for a server dataset; bytes that are no table; an upload read while it arrives or abandoned;
the per-user view of the catalog."""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.engine.core.catalog import Catalog, UnknownDataset, _read_build
from services.engine.core.data import load_bars
from services.engine.datasets.ingest import IngestOptions, ingest, ingest_file
from services.engine.datasets.source import (
    Aborted,
    FinishedFile,
    GrowingFile,
    NotTabular,
    TruncatedGzip,
)

from .files import DAYS, csv_text, frame, session_rows, write_csv, write_parquet

KOLKATA = "Asia/Kolkata"


def stored(out: Path):
    opened = _read_build(out)
    return Catalog._bars(opened, None, None), opened


def assert_same_bars(a, b) -> None:
    assert a.tz == b.tz and a.timeframe == b.timeframe and len(a) == len(b)
    for name in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for x, y in zip(a.day_bounds(), b.day_bounds()):
        np.testing.assert_array_equal(x, y)


def write(path: Path, kind: str, rows) -> Path:
    """The same bars in another form (the file `load_bars` reads as the reference)."""
    f = frame(rows)
    if kind == "csv":
        return write_csv(path, rows)
    if kind == "csv.gz":
        return write_csv(path, rows)
    if kind == "parquet-aware":
        f.index = pd.DatetimeIndex(f.pop("timestamp")).tz_localize(KOLKATA)
        f.index.name = "timestamp"
        f.to_parquet(path)
        return path
    if kind == "offsets":
        text = pd.DatetimeIndex(f["timestamp"]).tz_localize(KOLKATA).strftime("%Y-%m-%dT%H:%M:%S%z")
        f["timestamp"] = [t[:-2] + ":" + t[-2:] for t in text]
        f.to_csv(path, index=False)
        return path
    if kind == "epoch":
        f["timestamp"] = pd.DatetimeIndex(f["timestamp"]).tz_localize(KOLKATA).as_unit("s").asi8
        f.to_csv(path, index=False)
        return path
    if kind == "date+time":
        stamps = pd.DatetimeIndex(f.pop("timestamp"))
        f.insert(0, "time", stamps.strftime("%H:%M:%S"))
        f.insert(0, "date", stamps.strftime("%Y-%m-%d"))
        f.to_csv(path, index=False)
        return path
    raise AssertionError(kind)


@pytest.mark.parametrize("kind,name", [("csv", "b.csv"), ("csv.gz", "b.csv.gz"), ("parquet-aware", "b.parquet"),
                                       ("offsets", "b.csv"), ("epoch", "b.csv"), ("date+time", "b.csv")])
def test_stored_bars_equal_a_server_datasets(tmp_path, kind, name):
    rows = session_rows(DAYS[:2], 375)
    path = write(tmp_path / name, kind, rows)
    result = ingest_file(path, tmp_path / "out", IngestOptions(symbol="B", calendar="XBOM"))
    assert result.stored and result.report.usable, [f.message for f in result.report.findings]
    bars, opened = stored(tmp_path / "out")
    assert_same_bars(bars, load_bars(path, symbol="B", tz=KOLKATA))
    assert opened.meta["timeframe"] == "1m" and opened.meta["bars"] == 750 and opened.meta["days"] == 2
    assert opened.meta["calendar"] == "XBOM" and opened.meta["timezone"] == KOLKATA
    assert result.format == ("parquet" if name.endswith(".parquet") else "csv.gz" if name.endswith(".gz") else "csv")


def test_daily_yyyymmdd_bars(tmp_path):
    days = pd.bdate_range("2024-01-01", periods=30)
    lines = [f"{d.strftime('%Y%m%d')},{100 + i},{102 + i},{99 + i},{101 + i},{1000 + i}" for i, d in enumerate(days)]
    path = tmp_path / "daily.csv"
    path.write_text("date,open,high,low,close,volume\n" + "\n".join(lines) + "\n")
    result = ingest_file(path, tmp_path / "out", IngestOptions(symbol="D"))
    assert result.stored and result.report.timeframe == "1d"
    bars, _ = stored(tmp_path / "out")
    assert_same_bars(bars, load_bars(path, symbol="D", tz="UTC"))


def test_a_reversed_file_and_exact_duplicates_are_stored_sorted_and_once(tmp_path):
    rows = session_rows(DAYS[:2], 375)
    reference = load_bars(write_csv(tmp_path / "sorted.csv", rows), symbol="B", tz=KOLKATA)
    messy = rows[:100] + [list(rows[99])] + rows[100:]
    path = write_csv(tmp_path / "messy.csv", messy[::-1])
    result = ingest_file(path, tmp_path / "out", IngestOptions(symbol="B", calendar="XBOM"))
    assert result.stored
    assert {(f.check, f.severity) for f in result.report.findings} == {("out_of_order_timestamps", 1),
                                                                       ("duplicate_timestamps", 2)}
    bars, _ = stored(tmp_path / "out")
    assert_same_bars(bars, reference)


def test_the_columns_meta_and_report_are_the_catalogs_layout(tmp_path):
    path = write_csv(tmp_path / "b.csv", session_rows(DAYS[:1], 50))
    ingest_file(path, tmp_path / "out", IngestOptions(symbol="B", calendar="XBOM", description="mine", owner="al"))
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["ts.npy", "open.npy", "high.npy", "low.npy", "close.npy", "volume.npy", "dates.npy", "starts.npy",
         "meta.json", "quality.json"])
    meta = json.loads((out / "meta.json").read_text())
    assert meta["source"] == "upload" and meta["owner"] == "al" and meta["description"] == "mine"
    assert meta["quality_score"] == 100 and meta["first_date"] == meta["last_date"] == "2024-03-04"
    assert np.load(out / "close.npy").shape == (50,) and np.load(out / "starts.npy").tolist() == [0, 50]
    assert json.loads((out / "quality.json").read_text())["rows"] == "50"


def test_a_refused_file_leaves_nothing(tmp_path):
    rows = session_rows(DAYS[:1], 20)
    rows[3][4] = "abc"
    result = ingest_file(write_csv(tmp_path / "b.csv", rows), tmp_path / "out", IngestOptions(symbol="B"))
    assert not result.stored and not result.report.usable and not (tmp_path / "out").exists()


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.mark.parametrize("content,words", [
    (PNG, "a PNG image"),
    (b'{"timestamp": "2024-01-01", "open": 1}\n', "looks like JSON"),
    (bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)), ""),
    (b"", "empty"),
    (b"just some words\nand more words\n", "no commas"),
])
def test_bytes_that_are_no_table_are_refused(tmp_path, content, words):
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    with pytest.raises(NotTabular) as info:
        ingest_file(path, tmp_path / "out", IngestOptions(symbol="B"))
    assert words in str(info.value)
    assert not (tmp_path / "out").exists()


def test_a_truncated_gzip_and_a_truncated_parquet(tmp_path):
    packed = gzip.compress(csv_text(session_rows(DAYS[:2], 375)).encode())
    path = tmp_path / "b.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(TruncatedGzip):
        ingest_file(path, tmp_path / "out", IngestOptions(symbol="B"))
    pq_path = write_parquet(tmp_path / "b.parquet", session_rows(DAYS[:1], 50))
    pq_path.write_bytes(pq_path.read_bytes()[:-100])
    with pytest.raises(NotTabular, match="not a readable Parquet file"):
        ingest_file(pq_path, tmp_path / "out", IngestOptions(symbol="B"))
    assert not (tmp_path / "out").exists()


def test_an_upload_is_parsed_while_it_arrives_and_equals_the_file(tmp_path, monkeypatch):
    from services.engine.datasets import reader

    monkeypatch.setattr(reader, "CSV_CHUNK", 8192)
    rows = session_rows(DAYS, 375)
    data = csv_text(rows).encode()
    growing = GrowingFile(tmp_path / "received")
    (tmp_path / "out").mkdir()
    done = {}

    def run():
        done["result"] = ingest(growing, IngestOptions(symbol="B", calendar="XBOM"), tmp_path / "out",
                                check=growing.check)

    thread = threading.Thread(target=run)
    thread.start()
    for i in range(0, len(data), 7777):
        growing.append(data[i:i + 7777])
        if i == 7777 * 3:
            time.sleep(0.05)  # the reader waits for more
    growing.finish()
    thread.join(30)
    growing.close()
    assert done["result"].stored
    ref = ingest_file(write_csv(tmp_path / "b.csv", rows), tmp_path / "ref", IngestOptions(symbol="B",
                                                                                           calendar="XBOM"))
    assert_same_bars(stored(tmp_path / "out")[0], stored(tmp_path / "ref")[0])
    assert done["result"].report == ref.report


def test_an_abandoned_upload_stops_the_reader(tmp_path):
    growing = GrowingFile(tmp_path / "received")
    (tmp_path / "out").mkdir()
    errors = []

    def run():
        try:
            ingest(growing, IngestOptions(symbol="B"), tmp_path / "out", check=growing.check)
        except Aborted as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    growing.append(csv_text(session_rows(DAYS[:1], 100)).encode()[:3000])
    time.sleep(0.05)
    growing.abort()
    thread.join(10)
    growing.close()
    assert not thread.is_alive() and len(errors) == 1


def test_the_catalog_scopes_uploads_to_their_owner(tmp_path):
    cat = Catalog(tmp_path / "data")
    folder = cat.uploads_dir("alice") / "MINE"
    folder.parent.mkdir(parents=True)
    ingest_file(write_csv(tmp_path / "b.csv", session_rows(DAYS[:2], 375)), folder,
                IngestOptions(symbol="MINE", calendar="XBOM", owner="alice"))
    alice, bob = cat.scoped("alice"), cat.scoped("bob")
    assert alice.has("MINE") and not bob.has("MINE") and not cat.has("MINE")
    assert [d.symbol for d in alice.list()] == ["MINE", "SIM-NIFTY"]
    assert [d.symbol for d in bob.list()] == ["SIM-NIFTY"]
    info = alice.info("MINE")
    assert info.source == "upload" and info.owner == "alice" and info.stored_bytes > 0 and info.bars == 750
    assert [str(d) for d in alice.trading_days("MINE")] == ["2024-03-04", "2024-03-05"]
    assert len(alice.load("MINE", DAYS[1], DAYS[1])) == 375
    with pytest.raises(UnknownDataset) as info:
        bob.load("MINE")
    assert str(info.value) == "unknown dataset 'MINE': known datasets are SIM-NIFTY"
    assert alice.option_chain("MINE") is None and alice.chain_cache_dir("MINE") == folder
    assert cat.uploads_dir("a/b").name == "datasets" and cat.uploads_dir("a/b").parent.name.startswith("=")
    assert not alice.has("../MINE") and alice.upload_folder("../x") is None


def test_a_file_on_disk_through_finished_file(tmp_path):
    """FinishedFile (the benchmark's way in) reads the same as a growing one."""
    path = write_csv(tmp_path / "b.csv", session_rows(DAYS[:1], 30))
    src = FinishedFile(path)
    try:
        assert src.peek(4) == b"time"
        buf = bytearray(10)
        assert src.readinto(buf) == 10 and bytes(buf) == b"timestamp,"
    finally:
        src.close()


def test_stale_upload_folders_go_at_start_and_live_ones_stay(tmp_path):
    """A crashed engine's temp folder goes when the next engine starts; an upload still writing
    (its folder old, its file fresh: a long upload) stays, whatever its folder's age."""
    import os
    import time

    from services.engine.core.catalog import Catalog
    from services.engine.datasets.store import STALE_SECONDS, TRASH_PREFIX, UPLOAD_PREFIX, Uploads

    catalog = Catalog(tmp_path)
    base = catalog.uploads_dir("alice")
    base.mkdir(parents=True)
    old = time.time() - STALE_SECONDS - 60
    crashed, trash, live = base / f"{UPLOAD_PREFIX}a", base / f"{TRASH_PREFIX}b", base / f"{UPLOAD_PREFIX}c"
    for folder in (crashed, trash, live):
        folder.mkdir()
        (folder / "upload.bin").write_bytes(b"x")
        os.utime(folder / "upload.bin", (old, old))
        os.utime(folder, (old, old))
    os.utime(live / "upload.bin")  # still being appended to
    kept = base / "MINE"
    kept.mkdir()
    os.utime(kept, (old, old))
    Uploads(catalog).sweep_all()
    assert sorted(p.name for p in base.iterdir()) == sorted([live.name, "MINE"])
