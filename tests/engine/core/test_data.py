"""Loading CSV/Parquet into Bars (column spellings, time zones, every kind of bad row) and resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.engine.core.bars import Bars
from services.engine.core.data import (DataError, format_timeframe, infer_timeframe, load_bars, parse_timeframe,
                                       resample)

GOOD_ROWS = [  # NSE-like 1-minute bars, local time (Asia/Kolkata)
    ("2024-01-25 09:15:00", 100.0, 101.0, 99.5, 100.5, 1000),
    ("2024-01-25 09:16:00", 100.5, 102.0, 100.0, 101.5, 800),
    ("2024-01-25 09:17:00", 101.5, 101.5, 100.5, 101.0, 600),
    ("2024-01-25 09:18:00", 101.0, 101.2, 100.1, 100.2, 700),
    ("2024-01-25 09:19:00", 100.2, 100.4, 99.0, 99.5, 900),
]
IST = "Asia/Kolkata"


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def csv_text(rows=GOOD_ROWS, header: str = "timestamp,open,high,low,close,volume") -> str:
    return header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def expected_ts(stamps, tz=IST) -> np.ndarray:
    return pd.DatetimeIndex(stamps).tz_localize(tz).tz_convert("UTC").as_unit("ns").asi8


# ---- good files --------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [
    "timestamp,open,high,low,close,volume",
    "Timestamp,Open,High,Low,Close,Volume",
    "DATETIME,OPEN,HIGH,LOW,CLOSE,VOLUME",
    "date,o,h,l,c,v",
    " Time , Open , High , Low , Close , Vol ",
    "<DATE>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>",
])
def test_column_spellings(tmp_path, header):
    bars = load_bars(write(tmp_path, csv_text(header=header)), tz=IST)
    assert isinstance(bars, Bars)
    assert bars.symbol == "bars" and bars.tz == IST and bars.timeframe == "1m"
    np.testing.assert_array_equal(bars.ts, expected_ts([r[0] for r in GOOD_ROWS]))
    np.testing.assert_array_equal(bars.open, [r[1] for r in GOOD_ROWS])
    np.testing.assert_array_equal(bars.high, [r[2] for r in GOOD_ROWS])
    np.testing.assert_array_equal(bars.low, [r[3] for r in GOOD_ROWS])
    np.testing.assert_array_equal(bars.close, [r[4] for r in GOOD_ROWS])
    np.testing.assert_array_equal(bars.volume, [r[5] for r in GOOD_ROWS])
    for arr in (bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume):
        assert arr.flags.c_contiguous
    assert bars.ts.dtype == np.int64 and bars.close.dtype == np.float64 and bars.volume.dtype == np.float64
    assert bars.minute_of_day[0] == 9 * 60 + 15


def test_columns_in_any_order_and_extra_columns_ignored(tmp_path):
    rows = [(r[4], r[2], "x", r[0], r[3], r[1]) for r in GOOD_ROWS]
    bars = load_bars(write(tmp_path, csv_text(rows, "Close,High,Note,Date,Low,Open")), tz=IST)
    np.testing.assert_array_equal(bars.close, [r[4] for r in GOOD_ROWS])
    np.testing.assert_array_equal(bars.volume, np.zeros(5))  # no volume column -> zeros


def test_unnamed_index_column_written_by_pandas(tmp_path):
    idx = pd.DatetimeIndex([r[0] for r in GOOD_ROWS])
    frame = pd.DataFrame({"open": [r[1] for r in GOOD_ROWS], "high": [r[2] for r in GOOD_ROWS],
                          "low": [r[3] for r in GOOD_ROWS], "close": [r[4] for r in GOOD_ROWS]}, index=idx)
    path = tmp_path / "idx.csv"
    frame.to_csv(path)
    assert path.read_text().startswith(",open,high")
    bars = load_bars(path, symbol="X", tz=IST)
    assert bars.symbol == "X"
    np.testing.assert_array_equal(bars.ts, expected_ts(idx))


def test_separate_date_and_time_columns_are_joined(tmp_path):
    rows = [(r[0][:10], r[0][11:16]) + r[1:] for r in GOOD_ROWS]
    bars = load_bars(write(tmp_path, csv_text(rows, "Date,Time,Open,High,Low,Close,Volume")), tz=IST)
    np.testing.assert_array_equal(bars.ts, expected_ts([r[0] for r in GOOD_ROWS]))


def test_offsets_are_kept_and_converted_when_tz_given(tmp_path):
    rows = [(r[0].replace(" ", "T") + "+05:30",) + r[1:] for r in GOOD_ROWS]
    path = write(tmp_path, csv_text(rows))
    bars = load_bars(path)
    assert bars.tz == "+05:30"
    np.testing.assert_array_equal(bars.ts, expected_ts([r[0] for r in GOOD_ROWS]))
    assert bars.minute_of_day[0] == 9 * 60 + 15
    utc = load_bars(path, tz="UTC")
    assert utc.tz == "UTC" and utc.minute_of_day[0] == 3 * 60 + 45
    np.testing.assert_array_equal(utc.ts, bars.ts)


def test_utc_z_suffix(tmp_path):
    rows = [("2024-01-25T03:45:00Z",) + GOOD_ROWS[0][1:], ("2024-01-25T03:46:00Z",) + GOOD_ROWS[1][1:]]
    bars = load_bars(write(tmp_path, csv_text(rows)), tz=IST)
    assert bars.tz == IST and bars.minute_of_day[0] == 9 * 60 + 15


def test_naive_times_default_to_utc(tmp_path):
    bars = load_bars(write(tmp_path, csv_text()))
    assert bars.tz == "UTC"
    np.testing.assert_array_equal(bars.ts, expected_ts([r[0] for r in GOOD_ROWS], "UTC"))


def test_changing_offsets_need_a_zone(tmp_path):
    # New York across the March 2024 DST change: -05:00, then -04:00.
    rows = [("2024-03-08T09:30:00-05:00", 10, 11, 9, 10, 1), ("2024-03-11T09:30:00-04:00", 10, 11, 9, 10, 1)]
    path = write(tmp_path, csv_text(rows))
    with pytest.raises(DataError, match=r"line 3: the UTC offset changes .*tz='America/New_York'") as exc:
        load_bars(path)
    assert exc.value.row == 3
    bars = load_bars(path, tz="America/New_York")
    assert list(bars.minute_of_day) == [570.0, 570.0]
    assert bars.tz == "America/New_York"


def test_daily_date_only_rows(tmp_path):
    rows = [("2024-01-23", 100, 102, 99, 101, 5), ("2024-01-24", 101, 103, 100, 102, 6),
            ("2024-01-25", 102, 104, 101, 103, 7), ("2024-01-29", 103, 105, 102, 104, 8)]
    bars = load_bars(write(tmp_path, csv_text(rows, "Date,Open,High,Low,Close,Volume")), tz=IST)
    assert bars.timeframe == "1d"
    assert list(bars.minute_of_day) == [0.0] * 4
    assert [str(pd.Timestamp(d, unit="D").date()) for d in bars.day] == [r[0] for r in rows]


def test_epoch_seconds_and_gzip(tmp_path):
    import gzip

    secs = expected_ts([r[0] for r in GOOD_ROWS]) // 1_000_000_000
    rows = [(int(s),) + r[1:] for s, r in zip(secs, GOOD_ROWS)]
    path = tmp_path / "epoch.csv.gz"
    path.write_bytes(gzip.compress(csv_text(rows, "time,open,high,low,close,volume").encode()))
    bars = load_bars(path, tz=IST)
    assert bars.symbol == "epoch"
    np.testing.assert_array_equal(bars.ts, expected_ts([r[0] for r in GOOD_ROWS]))


def test_epoch_milliseconds_and_yyyymmdd_numbers(tmp_path):
    ms = write(tmp_path, "ts,open,high,low,close\n1706154300000,1,1,1,1\n1706154360000,1,1,1,1\n", "ms.csv")
    assert [t.isoformat() for t in load_bars(ms, tz=IST).local_index] == [
        "2024-01-25T09:15:00+05:30", "2024-01-25T09:16:00+05:30"]
    ymd = write(tmp_path, "date,open,high,low,close\n20240125,1,1,1,1\n20240129,1,1,1,1\n", "ymd.csv")
    bars = load_bars(ymd, tz=IST)
    assert bars.timeframe == "1d" and [t.isoformat() for t in bars.local_index] == [
        "2024-01-25T00:00:00+05:30", "2024-01-29T00:00:00+05:30"]


def test_timestamp_out_of_range(tmp_path):
    path = write(tmp_path, "timestamp,open,high,low,close\n2024-01-01,1,1,1,1\n2300-01-02,1,1,1,1\n")
    with pytest.raises(DataError, match=r"line 3: timestamp '2300-01-02' is outside 1678..2261"):
        load_bars(path)


def test_parquet_with_zone_aware_index(tmp_path):
    idx = pd.DatetimeIndex([r[0] for r in GOOD_ROWS]).tz_localize(IST)
    frame = pd.DataFrame({"Open": [r[1] for r in GOOD_ROWS], "High": [r[2] for r in GOOD_ROWS],
                          "Low": [r[3] for r in GOOD_ROWS], "Close": [r[4] for r in GOOD_ROWS],
                          "Volume": [r[5] for r in GOOD_ROWS]}, index=idx)
    frame.to_parquet(tmp_path / "nifty.parquet")
    bars = load_bars(tmp_path / "nifty.parquet")
    assert bars.symbol == "nifty" and bars.tz == IST and bars.timeframe == "1m"
    np.testing.assert_array_equal(bars.ts, expected_ts([r[0] for r in GOOD_ROWS]))
    np.testing.assert_array_equal(bars.volume, [r[5] for r in GOOD_ROWS])


def test_parquet_with_naive_column(tmp_path):
    frame = pd.DataFrame(GOOD_ROWS, columns=["datetime", "open", "high", "low", "close", "volume"])
    frame["datetime"] = pd.to_datetime(frame["datetime"])
    frame.to_parquet(tmp_path / "x.pq", index=False)
    bars = load_bars(tmp_path / "x.pq", tz=IST)
    np.testing.assert_array_equal(bars.ts, expected_ts([r[0] for r in GOOD_ROWS]))


def test_parquet_errors_name_the_row(tmp_path):
    frame = pd.DataFrame(GOOD_ROWS, columns=["timestamp", "open", "high", "low", "close", "volume"])
    frame.loc[3, "low"] = 200.0
    frame.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(DataError, match=r"bad.parquet: row 4: high 101.2 is below low 200") as exc:
        load_bars(tmp_path / "bad.parquet")
    assert exc.value.row == 4


# ---- bad files: the message names the line (header = line 1) and the fix -----------------------

def _edit(row: int, **changes) -> str:
    """GOOD_ROWS with data row `row` (0-based) changed; field -> new text."""
    names = ["timestamp", "open", "high", "low", "close", "volume"]
    rows = [list(r) for r in GOOD_ROWS]
    for field, value in changes.items():
        rows[row][names.index(field)] = value
    return csv_text(rows)


@pytest.mark.parametrize("text, line, pattern", [
    (_edit(2, timestamp="25/01/2024 09:17"), 4, r"cannot read the timestamp '25/01/2024 09:17': use ISO 8601"),
    (_edit(3, timestamp="not a time"), 5, r"cannot read the timestamp 'not a time'"),
    (_edit(1, timestamp=""), 3, r"the timestamp is empty"),
    (_edit(2, close=""), 4, r"close is empty: fill in the price or drop the row"),
    (_edit(2, close="nan"), 4, r"close is empty"),
    (_edit(4, open="abc"), 6, r"open 'abc' is not a number"),
    (_edit(1, open="inf", high="inf"), 3, r"open is infinite"),
    (_edit(3, timestamp="2024-01-25 09:16:30"), 5, r"timestamp '2024-01-25 09:16:30' is earlier than line 4's "
                                                   r"'2024-01-25 09:17:00': sort the rows by time"),
    (_edit(2, timestamp="2024-01-25 09:16:00"), 4, r"duplicate timestamp '2024-01-25 09:16:00' \(same as line 3\)"),
    (_edit(1, high="99", low="100"), 3, r"high 99 is below low 100: swap or fix them"),
    (_edit(1, high="101"), 3, r"high 101 is below max\(open, close\) 101.5"),
    (_edit(4, low="99.9"), 6, r"low 99.9 is above min\(open, close\) 99.5"),
    (_edit(0, open="0", low="0"), 2, r"open is 0: prices must be above 0"),
    (_edit(2, open="-1", low="-2"), 4, r"open is -1: prices must be above 0"),
    (_edit(3, volume="-5"), 5, r"volume -5 is negative"),
    (_edit(3, volume=""), 5, r"volume is empty: use 0 when unknown"),
])
def test_bad_rows_are_named(tmp_path, text, line, pattern):
    with pytest.raises(DataError, match=rf"^bars.csv: line {line}: {pattern}") as exc:
        load_bars(write(tmp_path, text))
    assert exc.value.row == line
    assert isinstance(exc.value, ValueError)


def test_missing_columns_list_what_was_found(tmp_path):
    text = csv_text([r[:3] for r in GOOD_ROWS], "Date,Open,High")
    with pytest.raises(DataError, match=r"line 1 \(header\): missing columns low, close \(found: Date, Open, High\)"):
        load_bars(write(tmp_path, text))
    with pytest.raises(DataError, match=r"missing columns timestamp, open, high, low, close \(found: a, b\)"):
        load_bars(write(tmp_path, "a,b\n1,2\n"))


def test_ambiguous_columns(tmp_path):
    with pytest.raises(DataError, match=r"columns 'close', 'c' all look like close: keep one"):
        load_bars(write(tmp_path, "time,open,high,low,close,c\n2024-01-01,1,1,1,1,1\n"))


def test_blank_line_is_named_once(tmp_path):
    lines = csv_text().splitlines()
    text = "\n".join(lines[:3] + [""] + lines[3:]) + "\n"
    with pytest.raises(DataError, match=r"^bars.csv: line 4: the line is blank: delete it$"):
        load_bars(write(tmp_path, text))
    # Trailing empty lines are not rows.
    assert len(load_bars(write(tmp_path, csv_text() + "\n\n"))) == 5


def test_the_earliest_problem_is_named_first_and_others_summarized(tmp_path):
    rows = [list(r) for r in GOOD_ROWS]
    rows[4][5] = -1          # line 6: negative volume
    rows[1][2] = 50          # line 3: high below low
    rows[3][2] = 50          # line 5: same problem again
    with pytest.raises(DataError) as exc:
        load_bars(write(tmp_path, csv_text(rows)))
    msg = str(exc.value)
    assert msg.startswith("bars.csv: line 3: high 50 is below low 100: swap or fix them")
    assert "(1 more line like it)" in msg and "line 6: volume -1 is negative" in msg
    assert exc.value.row == 3


def test_empty_files(tmp_path):
    with pytest.raises(DataError, match="the file is empty"):
        load_bars(write(tmp_path, ""))
    with pytest.raises(DataError, match="no data rows"):
        load_bars(write(tmp_path, "timestamp,open,high,low,close\n"))
    with pytest.raises(DataError, match=r"^bars.csv: line 3: 7 fields where the header has 5: every row") as exc:
        load_bars(write(tmp_path, "timestamp,open,high,low,close\n2024-01-01,1,1,1,1\n2024-01-02,1,1,1,1,9,9\n"))
    assert exc.value.row == 3
    with pytest.raises(FileNotFoundError):
        load_bars(tmp_path / "missing.csv")


def test_bad_time_zone_and_nonexistent_local_time(tmp_path):
    with pytest.raises(DataError, match="unknown time zone 'Mars/Olympus'"):
        load_bars(write(tmp_path, csv_text()), tz="Mars/Olympus")
    rows = [("2024-03-10 01:59:00", 1, 1, 1, 1, 1), ("2024-03-10 02:30:00", 1, 1, 1, 1, 1)]  # skipped by DST
    with pytest.raises(DataError, match=r"line 3: local time '2024-03-10 02:30:00' does not exist"):
        load_bars(write(tmp_path, csv_text(rows)), tz="America/New_York")


def test_mixed_naive_and_offset_times(tmp_path):
    rows = [("2024-01-25 09:15:00+05:30",) + GOOD_ROWS[0][1:], ("2024-01-25 09:16:00",) + GOOD_ROWS[1][1:]]
    with pytest.raises(DataError, match=r"line 3: timestamp '2024-01-25 09:16:00' has no UTC offset but line 2's"):
        load_bars(write(tmp_path, csv_text(rows)))


# ---- timeframes and resampling -----------------------------------------------------------------

@pytest.mark.parametrize("text, minutes", [("1m", 1), ("3m", 3), ("5m", 5), ("10m", 10), ("15m", 15),
                                           ("30m", 30), ("1h", 60), ("2H", 120), ("1d", 1440), (" 90m ", 90)])
def test_parse_timeframe(text, minutes):
    assert parse_timeframe(text) == minutes


@pytest.mark.parametrize("text", ["", "5", "m", "0m", "5s", "1w", "five minutes", "-5m", "1.5h"])
def test_parse_timeframe_rejects(text):
    with pytest.raises(ValueError, match="unknown timeframe .* e.g. 1m, 5m, 15m, 1h, 1d"):
        parse_timeframe(text)


def test_format_timeframe():
    assert [format_timeframe(m) for m in (1, 5, 60, 90, 120, 1440)] == ["1m", "5m", "1h", "90m", "2h", "1d"]


def minute_bars(days=("2024-01-23", "2024-01-24", "2024-01-25"), drop=(), seed=7) -> Bars:
    """NSE-session 1m bars (09:15..15:29 IST) on `days`, minus the local times in `drop`."""
    rng = np.random.default_rng(seed)
    stamps = pd.DatetimeIndex([pd.Timestamp(f"{d} 09:15") + pd.Timedelta(minutes=i) for d in days for i in range(375)])
    stamps = stamps[~stamps.isin(pd.DatetimeIndex(list(drop)))]
    n = len(stamps)
    close = 100 + np.cumsum(rng.normal(0, 0.2, n))
    open_ = close + rng.normal(0, 0.1, n)
    high = np.maximum(open_, close) + rng.random(n)
    low = np.minimum(open_, close) - rng.random(n)
    frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                          "volume": rng.integers(0, 1000, n).astype(float)}, index=stamps.tz_localize(IST))
    return Bars.from_frame(frame, "T", IST, "1m")


def pandas_reference(bars: Bars, minutes: int) -> pd.DataFrame:
    """groupby (local date, bucket from 09:15): an independent statement of the same rule."""
    frame = bars.to_frame()
    local = frame.index.tz_localize(None)
    date = local.normalize()
    bucket = ((local - (date + pd.Timedelta("09:15:00"))) // pd.Timedelta(minutes=minutes)).astype(int)
    groups = frame.groupby([date, bucket])
    out = groups.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
                     volume=("volume", "sum"))
    starts = [d + pd.Timedelta("09:15:00") + pd.Timedelta(minutes=minutes * int(b)) for d, b in out.index]
    out.index = pd.DatetimeIndex(starts).tz_localize(IST)
    return out


@pytest.mark.parametrize("timeframe", ["3m", "5m", "10m", "15m", "30m", "1h"])
def test_resample_matches_pandas(timeframe):
    bars = minute_bars(drop=["2024-01-24 10:01", "2024-01-24 10:02", "2024-01-25 15:29"])
    got = resample(bars, timeframe)
    want = pandas_reference(bars, parse_timeframe(timeframe))
    assert got.timeframe == format_timeframe(parse_timeframe(timeframe)) and got.tz == IST
    pd.testing.assert_frame_equal(got.to_frame(), want, check_names=False, check_freq=False)


def test_hourly_buckets_are_anchored_at_the_session_open_and_never_cross_days():
    got = resample(minute_bars(), "1h")
    times = [t.strftime("%H:%M") for t in got.local_index]
    per_day = ["09:15", "10:15", "11:15", "12:15", "13:15", "14:15", "15:15"]
    assert times == per_day * 3
    # The last bucket of a day holds 15:15..15:29 only.
    dates, starts = got.day_bounds()
    assert list(np.diff(starts)) == [7, 7, 7]
    src = minute_bars()
    np.testing.assert_array_equal(got.close[6::7], src.close[374::375])


def test_a_day_missing_its_first_bars_keeps_the_grid():
    drop = ["2024-01-24 09:15", "2024-01-24 09:16", "2024-01-24 09:17"]
    got = resample(minute_bars(drop=drop), "5m")
    day2 = got.local_index[got.day == got.day[75]]
    assert day2[0].strftime("%H:%M") == "09:15" and day2[1].strftime("%H:%M") == "09:20"


def test_daily_resample_is_one_bar_per_day_at_its_first_bar():
    src = minute_bars(drop=["2024-01-25 09:15"])
    got = resample(src, "1d")
    assert got.timeframe == "1d" and len(got) == 3
    assert [t.strftime("%Y-%m-%d %H:%M") for t in got.local_index] == [
        "2024-01-23 09:15", "2024-01-24 09:15", "2024-01-25 09:16"]
    dates, starts = src.day_bounds()
    for k in range(3):
        sl = slice(starts[k], starts[k + 1])
        assert got.open[k] == src.open[sl][0] and got.close[k] == src.close[sl][-1]
        assert got.high[k] == src.high[sl].max() and got.low[k] == src.low[sl].min()
        assert got.volume[k] == src.volume[sl].sum()


def test_resample_twice_equals_resample_once():
    src = minute_bars()
    np.testing.assert_array_equal(resample(resample(src, "5m"), "15m").to_frame(), resample(src, "15m").to_frame())


def test_resample_refuses_finer_or_uneven_timeframes():
    five = resample(minute_bars(), "5m")
    with pytest.raises(ValueError, match="from 5m to the finer '1m'"):
        resample(five, "1m")
    with pytest.raises(ValueError, match="not a multiple of 5"):
        resample(five, "12m")
    with pytest.raises(ValueError, match="coarsest timeframe is 1d"):
        resample(five, "2d")
    with pytest.raises(ValueError, match="unknown timeframe"):
        resample(five, "5x")
    assert resample(five, "5m") is five


def test_resample_infers_an_unknown_source_timeframe():
    src = minute_bars()
    anon = Bars(src.symbol, src.tz, src.ts, src.open, src.high, src.low, src.close, src.volume)
    assert infer_timeframe(anon) == "1m"
    assert resample(anon, "5m").timeframe == "5m"
    assert infer_timeframe(resample(src, "15m")) == "15m"
    assert infer_timeframe(resample(src, "1h")) == "1h"


def test_resample_empty():
    src = minute_bars()
    empty = src.slice(0, 0)
    out = resample(empty, "5m")
    assert len(out) == 0 and out.timeframe == "5m"


# ---- property: any valid file loads exactly; any single bad cell is named by its line ----------

_COLUMN = {"time": 0, "open": 1, "close": 2, "high": 3, "low": 4, "volume": 5}  # the file's column order


def _spoil(rows: list[list], i: int, kind: str) -> None:
    row, prev = rows[i], rows[i - 1]
    if kind == "empty close":
        row[_COLUMN["close"]] = ""
    elif kind == "text high":
        row[_COLUMN["high"]] = "n/a"
    elif kind == "high below low":
        row[_COLUMN["high"]] = row[_COLUMN["low"]] - 0.05
    elif kind == "zero open":
        row[_COLUMN["open"]] = 0
    elif kind == "negative volume":
        row[_COLUMN["volume"]] = -1
    elif kind == "bad time":
        row[_COLUMN["time"]] = "2024-13-45 09:15"
    elif kind == "duplicate time":
        row[_COLUMN["time"]] = prev[_COLUMN["time"]]
    elif kind == "earlier time":
        row[_COLUMN["time"]] = str(pd.Timestamp(prev[_COLUMN["time"]]) - pd.Timedelta(seconds=30))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(2, 25),
       kind=st.sampled_from(["none", "empty close", "text high", "high below low", "zero open", "negative volume",
                             "bad time", "duplicate time", "earlier time"]))
def test_property_single_problem_is_named(tmp_path_factory, data, n, kind):
    draws = data.draw(st.lists(st.tuples(*[st.integers(1, 10_000)] * 4, st.integers(0, 10**6)),
                               min_size=n, max_size=n))
    rows = []
    for k, (a, b, up, down, vol) in enumerate(draws):
        o, c = a / 20, b / 20
        stamp = pd.Timestamp("2024-01-25 09:15") + pd.Timedelta(minutes=k)
        rows.append([str(stamp), o, c, max(o, c) + up / 100, max(min(o, c) - down / 100, 0.05), vol])
    i = data.draw(st.integers(1 if kind.endswith("time") and kind != "bad time" else 0, n - 1))
    if kind != "none":
        _spoil(rows, i, kind)
    path = tmp_path_factory.mktemp("prop") / "p.csv"
    path.write_text("timestamp,open,close,high,low,volume\n" +
                    "".join(",".join(str(v) for v in r) + "\n" for r in rows))
    if kind == "none":
        bars = load_bars(path)
        np.testing.assert_array_equal(bars.close, [r[_COLUMN["close"]] for r in rows])
        np.testing.assert_array_equal(bars.low, [r[_COLUMN["low"]] for r in rows])
        return
    with pytest.raises(DataError) as exc:
        load_bars(path)
    assert exc.value.row == i + 2, (kind, str(exc.value))
    assert str(exc.value).startswith(f"p.csv: line {i + 2}: ")
