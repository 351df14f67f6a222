"""Option chains from files: checks with line numbers, the Parquet cache, pushdown, bar mapping, the row search."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.engine.core.calendar import day_number
from services.engine.core.catalog import Catalog
from services.engine.core.data import DataError
from services.engine.options import chain as chain_module
from services.engine.options.chain import ChainArrays, chain_cache, chain_expiries, chain_row_nb, load_chain

from .chain_data import TZ, minute_bars, write_sample_chain

REPO = Path(__file__).resolve().parents[3]
DAYS = [date(2024, 1, 22), date(2024, 1, 23), date(2024, 1, 24), date(2024, 1, 25)]
WEEKLY, NEXT = date(2024, 1, 25), date(2024, 2, 1)
STRIKES = np.arange(21300.0, 21701.0, 50.0)


@pytest.fixture(scope="module")
def bars():
    return minute_bars(DAYS)  # 4 days x 30 one-minute bars


def days(*expiries: date) -> np.ndarray:
    return np.array([day_number(e) for e in expiries], np.int64)


# ---- loading -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["NIFTY.options.parquet", "NIFTY.options.csv", "NIFTY.options.csv.gz"])
def test_rows_map_onto_bars_per_contract(tmp_path, bars, name):
    frame = write_sample_chain(tmp_path / name, bars, [WEEKLY, NEXT], STRIKES)
    chain = load_chain(tmp_path / name, bars, days(NEXT, WEEKLY, WEEKLY), 21400.0, 21600.0)

    assert isinstance(chain, ChainArrays)
    np.testing.assert_array_equal(chain.expiries, days(WEEKLY, NEXT))
    np.testing.assert_array_equal(chain.strikes, [21400.0, 21450.0, 21500.0, 21550.0, 21600.0])
    assert chain.strike_step == 50.0 and chain.unmatched_rows == 0
    assert chain.contract.shape == (2, 5, 2) and sorted(chain.contract.ravel()) == list(range(20))
    for arr, dtype in ((chain.expiries, np.int64), (chain.strikes, np.float64), (chain.contract, np.int64),
                       (chain.ptr, np.int64), (chain.bar, np.int64), (chain.open, np.float64),
                       (chain.high, np.float64), (chain.low, np.float64), (chain.close, np.float64)):
        assert arr.dtype == dtype and arr.flags.c_contiguous
    # Every contract trades every bar up to its expiry day: 4 days x 30 bars.
    assert len(chain.ptr) == 21 and set(np.diff(chain.ptr)) == {120} and len(chain.bar) == 2400
    rows = chain.rows_of(0, 21500.0, "PE")
    np.testing.assert_array_equal(chain.bar[rows], np.arange(120))

    want = frame[(frame.expiry == WEEKLY) & (frame.strike == 21500.0) & (frame.option_type == "PE")]
    np.testing.assert_array_equal(chain.close[rows], want.close.to_numpy())
    np.testing.assert_array_equal(chain.high[rows], want.high.to_numpy())
    row = want[want.bar == 37].iloc[0]
    assert chain.price_at(0, 21500.0, "pe", 37) == row.close
    assert chain.price_at(0, 21500.0, "PE", 37, "open") == row.open
    assert chain.price_at(0, 21500.0, "PE", 500) is None
    assert chain.price_at(0, 21525.0, "PE", 37) is None  # not a listed strike
    assert chain.rows_of(1, 21350.0, "CE") == slice(0, 0)  # outside the strike range asked for
    assert chain.contract_of(0, 21500.0 + 1e-9, "PE") == chain.contract[0, 2, 1]
    assert chain.symbol(0, 21500.0, "CE", "NIFTY") == "NIFTY:2024-01-25:OPT:21500:CE"
    assert chain.symbol(1, 21450.0, "PE", "NIFTY") == "NIFTY:2024-02-01:OPT:21450:PE"
    with pytest.raises(ValueError, match="use open, high, low or close"):
        chain.price_at(0, 21500.0, "PE", 37, "volume")
    with pytest.raises(ValueError, match="use CE .call. or PE .put."):
        chain.rows_of(0, 21500.0, "C")


def test_naive_times_are_exchange_local(tmp_path, bars):
    aware = write_sample_chain(tmp_path / "A.options.csv", bars, [WEEKLY], STRIKES[:3])
    write_sample_chain(tmp_path / "B.options.csv", bars, [WEEKLY], STRIKES[:3], naive=True)
    assert "+05:30" not in (tmp_path / "B.options.csv").read_text()
    a = load_chain(tmp_path / "A.options.csv", bars, days(WEEKLY), 0.0, 1e9)
    b = load_chain(tmp_path / "B.options.csv", bars, days(WEEKLY), 0.0, 1e9)
    assert len(a.bar) == len(aware) and b.unmatched_rows == 0
    for name in ("ptr", "bar", "open", "close"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_rows_without_an_underlying_bar_are_dropped_and_counted(tmp_path, bars):
    write_sample_chain(tmp_path / "N.options.parquet", bars, [WEEKLY], STRIKES[:2])
    keep = np.ones(len(bars), bool)
    keep[[3, 4, 50]] = False  # the underlying misses three minutes the chain has
    holes = type(bars)(bars.symbol, bars.tz, *(getattr(bars, n)[keep] for n in
                                               ("ts", "open", "high", "low", "close", "volume")))
    chain = load_chain(tmp_path / "N.options.parquet", holes, days(WEEKLY), 0.0, 1e9)
    assert chain.unmatched_rows == 3 * 4  # 2 strikes x CE, PE
    np.testing.assert_array_equal(chain.bar[chain.rows_of(0, STRIKES[0], "CE")], np.arange(keep.sum()))


def test_missing_rows_leave_holes_that_lookups_report(tmp_path, bars):
    drop = [(WEEKLY, 21500.0, "CE", b) for b in (10, 11, 12)] + [(WEEKLY, 21500.0, "PE", 0)]
    write_sample_chain(tmp_path / "N.options.csv", bars, [WEEKLY], [21500.0], drop=drop)
    chain = load_chain(tmp_path / "N.options.csv", bars, days(WEEKLY), 21500.0, 21500.0)
    ce = chain.rows_of(0, 21500.0, "CE")
    assert ce.stop - ce.start == 117 and chain.price_at(0, 21500.0, "CE", 11) is None
    assert chain.bar[chain.rows_of(0, 21500.0, "PE")][0] == 1
    c = int(chain.contract[0, 0, 0])
    assert chain_row_nb(chain.ptr, chain.bar, c, 11, ce.start + 10) == -1
    assert chain_row_nb(chain.ptr, chain.bar, c, 13, ce.start + 9) == ce.start + 10


def test_an_expiry_without_rows_has_no_contracts(tmp_path, bars):
    write_sample_chain(tmp_path / "N.options.parquet", bars, [WEEKLY], [21500.0])
    chain = load_chain(tmp_path / "N.options.parquet", bars, days(WEEKLY, date(2024, 3, 28)), 0.0, 1e9)
    assert chain.contract.shape == (2, 1, 2) and (chain.contract[1] == -1).all()
    np.testing.assert_array_equal(chain_expiries(tmp_path / "N.options.parquet", TZ), days(WEEKLY))
    empty = load_chain(tmp_path / "N.options.parquet", bars, days(NEXT), 0.0, 1e9)
    assert empty.contract.shape == (1, 0, 2) and len(empty.ptr) == 1 and empty.strike_step == 0.0
    with pytest.raises(ValueError, match="strike_lo must be <= strike_hi"):
        load_chain(tmp_path / "N.options.parquet", bars, days(WEEKLY), 2.0, 1.0)


# ---- only what a run can touch -------------------------------------------------------------------

def _dense_chain(path: Path, bars, expiries: np.ndarray, strikes: np.ndarray) -> int:
    """Every contract on every bar, written column-wise (fast); the number of rows."""
    e, s, t = (a.ravel() for a in np.meshgrid(expiries, strikes, [0, 1], indexing="ij"))
    n, rows = len(bars), len(bars) * len(e)
    pq.write_table(pa.table({
        "Timestamp": pa.array(np.tile(bars.ts, len(e)), pa.timestamp("ns", tz="UTC")),
        "Expiry": pa.array(np.repeat(e, n).astype(np.int32), pa.date32()),
        "Strike": np.repeat(s, n), "Option_Type": np.where(np.repeat(t, n) == 0, "CE", "PE"),
        "Open": np.full(rows, 10.0), "High": np.full(rows, 11.0), "Low": np.full(rows, 9.0),
        "Close": np.repeat(s, n) / 1000.0}), path)
    return rows


def test_only_the_requested_expiries_strikes_and_times_are_read(tmp_path, bars, monkeypatch):
    expiries = day_number(WEEKLY) + 7 * np.arange(40)
    strikes = np.arange(20000.0, 22500.0, 50.0)
    path = tmp_path / "N.options.parquet"
    rows = _dense_chain(path, bars, expiries, strikes)
    assert rows == 480_000
    cache = chain_cache(path, TZ)  # converted up front: only the load is measured
    assert pq.ParquetFile(cache).metadata.num_row_groups == 8

    read: list[int] = []
    real_read = chain_module._read
    monkeypatch.setattr(chain_module, "_read", lambda *a: read.append((t := real_read(*a)).num_rows) or t)
    chain = load_chain(path, bars.slice(0, 30), expiries[[3]], 21400.0, 21600.0)
    assert read == [1 * 5 * 2 * 30]  # one expiry, five strikes, CE and PE, one day's bars
    assert len(chain.bar) == 300 and chain.bar.max() == 29
    np.testing.assert_array_equal(chain.strikes, [21400.0, 21450.0, 21500.0, 21550.0, 21600.0])

    # Peak memory of the same load in a fresh process: what Arrow allocated decoding, plus Python's.
    code = ("import datetime, sys, tracemalloc, numpy as np, pyarrow as pa\n"
            "from tests.engine.options.chain_data import minute_bars\n"
            "from services.engine.options.chain import load_chain\n"
            f"bars = minute_bars({DAYS!r}).slice(0, 30)\n"
            "tracemalloc.start()\n"
            f"load_chain(sys.argv[1], bars, np.array([{int(expiries[3])}]), 21400.0, 21600.0)\n"
            "print(pa.default_memory_pool().max_memory() + tracemalloc.get_traced_memory()[1])\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    decoded = rows * 8 * 8  # the eight loaded columns of the whole chain, 8 bytes each
    assert 0 < int(out.stdout) < decoded / 4, (out.stdout, decoded)


# ---- the cache -----------------------------------------------------------------------------------

def test_csv_is_converted_once_into_a_sorted_parquet_cache(tmp_path, bars, monkeypatch):
    data = tmp_path / "datasets"
    data.mkdir()
    src = data / "NIFTY.options.csv.gz"
    write_sample_chain(src, bars, [NEXT, WEEKLY], STRIKES[:3])
    first = load_chain(src, bars, days(WEEKLY, NEXT), 0.0, 1e9)
    [cache] = (data / "NIFTY").iterdir()
    assert cache.name.startswith("options-") and cache.suffix == ".parquet"
    table = pq.read_table(cache)
    order = table.sort_by(chain_module._SORT_KEYS)
    assert table.equals(order) and table.num_rows == 2 * 3 * 2 * 120
    assert pq.ParquetFile(cache).metadata.row_group(0).column(0).statistics.has_min_max
    before = cache.stat()

    monkeypatch.setattr(chain_module, "_build", lambda *a: pytest.fail("converted again"))
    again = load_chain(src, bars, days(WEEKLY, NEXT), 0.0, 1e9)
    after = cache.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    np.testing.assert_array_equal(again.close, first.close)
    monkeypatch.undo()

    # A changed source is converted again and the old cache removed.
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    load_chain(src, bars, days(WEEKLY), 0.0, 1e9)
    caches = list((data / "NIFTY").iterdir())
    assert len(caches) == 1 and caches[0] != cache


def test_cache_dir_is_honoured_and_temp_files_do_not_linger(tmp_path, bars):
    src = tmp_path / "chain.csv"
    write_sample_chain(src, bars, [WEEKLY], [21500.0])
    cache = chain_cache(src, TZ, cache_dir=tmp_path / "cache")
    assert cache.parent == tmp_path / "cache" and [p.name for p in cache.parent.iterdir()] == [cache.name]
    # Naive times depend on the zone they are read in: another zone is another cache.
    assert chain_cache(src, "UTC", cache_dir=tmp_path / "cache") != cache


# ---- checks ----------------------------------------------------------------------------------------

HEADER = "timestamp,expiry,strike,option_type,open,high,low,close,volume,open_interest\n"
GOOD = "2024-01-22 09:15:00+05:30,2024-01-25,21500,CE,100,110,95,105,10,1000\n"


def _csv(tmp_path: Path, text: str, name: str = "N.options.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_times_may_differ_in_utc_offset_from_row_to_row(tmp_path, bars):
    text = HEADER + GOOD + GOOD.replace("09:15:00+05:30", "03:46:00Z") + GOOD.replace("09:15:00+05:30", "09:17:00")
    chain = load_chain(_csv(tmp_path, text), bars, days(WEEKLY), 0.0, 1e9)
    np.testing.assert_array_equal(chain.bar, [0, 1, 2])  # 09:15 IST, 09:16 IST as UTC, 09:17 exchange-local


@pytest.mark.parametrize("line, message", [
    ("2024-01-22 09:15:00+05:30,2024-01-25,21500,XE,100,110,95,105,10,1000",
     "line 3: option_type 'XE' is not CE or PE: write CE for a call and PE for a put"),
    ("2024-01-22 09:15:00+05:30,2024-01-25,-50,CE,100,110,95,105,10,1000",
     "line 3: strike -50 is not above 0: fix the strike"),
    ("2024-01-22 09:15:00+05:30,2024-01-25,21500,CE,-1,110,-1,105,10,1000",
     "line 3: open -1 is negative: prices are >= 0"),
    ("2024-01-22 09:15:00+05:30,2024-01-25,21500,CE,100,90,95,92,10,1000",
     "line 3: high 90 is below low 95: swap or fix them"),
    ("2024-01-22 09:15:00+05:30,2024-01-25,21500,CE,100,110,95,abc,10,1000",
     "line 3: close 'abc' is not a number"),
    ("2024-01-22 09:15:00+05:30,2024-01-25,21500,CE,100,110,95,,10,1000",
     "line 3: close is empty: fill it in or drop the row"),
    ("2024-01-22 9.15,2024-01-25,21500,CE,100,110,95,105,10,1000",
     "line 3: cannot read the timestamp '2024-01-22 9.15': use ISO 8601"),
    ("2024-01-22 09:15:00+05:30,25/01/2024,21500,CE,100,110,95,105,10,1000",
     "line 3: cannot read the expiry '25/01/2024': write it as YYYY-MM-DD"),
    ("2024-01-22 09:15:00+05:30,2024-01-25,21500,CE,100,110,95,105,10,-3",
     "line 3: open_interest -3 is negative: open_interests are >= 0"),
])
def test_bad_values_are_named_by_line(tmp_path, bars, line, message):
    path = _csv(tmp_path, HEADER + GOOD.replace("09:15", "09:16") + line + "\n")
    with pytest.raises(DataError) as exc:
        load_chain(path, bars, days(WEEKLY), 0.0, 1e9)
    assert str(exc.value).startswith(f"N.options.csv: {message}"), str(exc.value)
    assert exc.value.row == 3 and exc.value.path == str(path)
    assert not list(tmp_path.glob("N/*"))  # nothing cached, no temp files left


def test_the_first_problem_is_named_with_a_count_and_the_others(tmp_path, bars):
    bad_type = GOOD.replace(",CE,", ",CALL,")
    text = HEADER + GOOD + "\n" + bad_type + bad_type + bad_type + GOOD.replace(",105,", ",x,") + bad_type
    with pytest.raises(DataError) as exc:
        load_chain(_csv(tmp_path, text), bars, days(WEEKLY), 0.0, 1e9)
    assert str(exc.value) == (
        "N.options.csv: line 4: option_type 'CALL' is not CE or PE: write CE for a call and PE for a put "
        "(3 more lines like it). Also line 7: close 'x' is not a number: write it with digits and a decimal point, "
        "e.g. 21500 or 102.35")
    assert exc.value.row == 4  # the blank line 3 is skipped but still counted


def test_problems_in_later_chunks_keep_their_line_numbers(tmp_path, bars, monkeypatch):
    monkeypatch.setattr(chain_module, "_CHUNK", 2)
    text = HEADER + "".join(GOOD.replace("09:15", f"09:{15 + i}") for i in range(5)) + GOOD.replace("21500", "0")
    with pytest.raises(DataError, match=r"^N.options.csv: line 7: strike 0 is not above 0"):
        load_chain(_csv(tmp_path, text), bars, days(WEEKLY), 0.0, 1e9)


def test_missing_columns_are_named(tmp_path, bars):
    path = _csv(tmp_path, "Timestamp,Expiry,Strike,Open,High,Low\n" + "2024-01-22 09:15,2024-01-25,1,1,1,1\n")
    with pytest.raises(DataError) as exc:
        load_chain(path, bars, days(WEEKLY), 0.0, 1e9)
    assert str(exc.value).startswith("N.options.csv: line 1 (header): missing columns option_type, close (found: "
                                     "Timestamp, Expiry, Strike, Open, High, Low): an option chain needs timestamp")
    assert exc.value.row == 1


def test_parquet_problems_are_named_by_row(tmp_path, bars):
    path = tmp_path / "N.options.parquet"
    frame = write_sample_chain(path, bars, [WEEKLY], [21500.0])
    table = pq.read_table(path)
    strikes = table.column("strike").to_numpy().copy()
    strikes[[6, 9]] = 0.0
    pq.write_table(table.set_column(table.schema.get_field_index("strike"), "strike", pa.array(strikes)), path)
    with pytest.raises(DataError) as exc:
        load_chain(path, bars, days(WEEKLY), 0.0, 1e9)
    assert str(exc.value) == "N.options.parquet: row 7: strike 0 is not above 0: fix the strike (1 more row like it)"
    assert exc.value.row == 7 and len(frame) == 240


def test_duplicate_rows_name_the_contract_and_time(tmp_path, bars):
    text = HEADER + GOOD + GOOD.replace("09:15", "09:16") + GOOD.replace("105,10", "106,12")
    with pytest.raises(DataError) as exc:
        load_chain(_csv(tmp_path, text), bars, days(WEEKLY), 0.0, 1e9)
    assert str(exc.value) == ("N.options.csv: lines 2 and 4: two rows for 2024-01-25 21500 CE at "
                              "2024-01-22T09:15:00+05:30: keep one row per contract and bar")
    assert exc.value.row == 2


def test_unreadable_files(tmp_path, bars):
    with pytest.raises(DataError, match="N.options.csv: the file is empty: the first line must be a header"):
        load_chain(_csv(tmp_path, ""), bars, days(WEEKLY), 0.0, 1e9)
    with pytest.raises(DataError, match="N.options.csv: no data rows"):
        load_chain(_csv(tmp_path, HEADER), bars, days(WEEKLY), 0.0, 1e9)
    with pytest.raises(DataError, match="N.options.parquet: not a readable Parquet file"):
        load_chain(_csv(tmp_path, "PAR1 and then nonsense", "N.options.parquet"), bars, days(WEEKLY), 0.0, 1e9)
    gz = tmp_path / "G.options.csv.gz"
    gz.write_bytes(gzip.compress((HEADER + GOOD + GOOD.replace(",10,", ",10,7,")).encode()))
    with pytest.raises(DataError, match="G.options.csv.gz: cannot read the CSV .*line 3"):
        load_chain(gz, bars, days(WEEKLY), 0.0, 1e9)
    with pytest.raises(FileNotFoundError, match="option chain file .* does not exist"):
        load_chain(tmp_path / "none.csv", bars, days(WEEKLY), 0.0, 1e9)


# ---- the row search kernel -------------------------------------------------------------------------

# Contract 0: bars 2, 3, 5; contract 1: none; contract 2: bars 0..39 except 20.
PTR = np.array([0, 3, 3, 42], np.int64)
BAR = np.concatenate(([2, 3, 5], np.delete(np.arange(40), 20))).astype(np.int64)


@pytest.mark.parametrize("c, bar, cursor, row", [
    (0, 2, 0, 0), (0, 3, 0, 1), (0, 5, 1, 2), (0, 4, 1, -1), (0, 6, 2, -1), (0, 1, 0, -1),
    (0, 5, 2, 2),      # a held leg: the cursor is the row itself
    (0, 2, 2, 0),      # a cursor past the bar: searched from the contract's start
    (0, 3, 99, 1),     # a cursor outside the contract
    (1, 3, 3, -1), (-1, 3, 0, -1),
    (2, 21, 3 + 19, 3 + 20),  # one step forward over the missing bar 20
    (2, 20, 3 + 19, -1),
    (2, 39, 3, 3 + 38),       # far behind: binary search
    (2, 30, 3 + 1, 3 + 29), (2, 11, 3 + 4, 3 + 11),
])
def test_chain_row_nb(c, bar, cursor, row):
    assert chain_row_nb(PTR, BAR, c, bar, cursor) == row


def test_chain_row_nb_walks_a_held_leg_with_its_cursor():
    rows, cursor = [], int(PTR[2])
    for bar in range(40):
        r = chain_row_nb(PTR, BAR, 2, bar, cursor)
        rows.append(r)
        cursor = r if r >= 0 else cursor
    assert rows == [3 + b if b < 20 else (-1 if b == 20 else 3 + b - 1) for b in range(40)]


# ---- the catalog ---------------------------------------------------------------------------------------

def test_the_catalog_serves_the_chain_next_to_its_dataset(tmp_path, bars):
    data = tmp_path / "datasets"
    data.mkdir()
    bars.to_frame().to_csv(data / "NIFTY.csv")
    write_sample_chain(data / "NIFTY.options.parquet", bars, [WEEKLY], [21500.0])
    cat = Catalog(tmp_path)
    assert not cat.has("NIFTY.options")
    path = cat.option_chain("NIFTY")
    assert path == data / "NIFTY.options.parquet"
    underlying = cat.load("NIFTY")
    chain = load_chain(path, underlying, days(WEEKLY), 0.0, 1e9, cache_dir=data / "NIFTY")
    assert len(chain.bar) == 240 and chain.unmatched_rows == 0
    # The chain's cache sits beside the dataset's build; neither sweep removes the other.
    names = sorted(p.name for p in (data / "NIFTY").iterdir())
    assert len(names) == 2 and names[1].startswith("options-") and (data / "NIFTY" / names[0] / "meta.json").is_file()
