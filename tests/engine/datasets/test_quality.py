"""The upload quality checks, one crafted file each: the exact rows (CSV lines with the header as
line 1, or 1-based Parquet rows), counts, columns, severities, examples and the score."""

from __future__ import annotations

import math

import pytest
from hindsight.v1 import datasets_pb2 as dpb

from services.engine.datasets import reader
from services.engine.datasets.ingest import quality_report_of_file
from services.engine.datasets.quality import CHECKS

from .files import DAYS, HEADER, line_of, session_rows, write_csv, write_parquet

ERROR, WARNING, INFO = dpb.QUALITY_SEVERITY_ERROR, dpb.QUALITY_SEVERITY_WARNING, dpb.QUALITY_SEVERITY_INFO


def report(tmp_path, rows, name="bars.csv", header=HEADER, **opts) -> dpb.QualityReport:
    path = tmp_path / name
    if name.endswith(".parquet"):
        write_parquet(path, rows)
    else:
        write_csv(path, rows, header)
    opts.setdefault("calendar", "XBOM")
    return quality_report_of_file(path, **opts)


def only(rep: dpb.QualityReport, check: str, severity: int | None = None) -> dpb.QualityFinding:
    found = [f for f in rep.findings if f.check == check and (severity is None or f.severity == severity)]
    assert len(found) == 1, [(f.check, f.severity, f.message) for f in rep.findings]
    return found[0]


def checks(rep: dpb.QualityReport) -> list[tuple[str, int]]:
    return [(f.check, f.severity) for f in rep.findings]


def test_a_clean_file_passes_every_check_with_100(tmp_path):
    rows = session_rows()
    rep = report(tmp_path, rows)
    assert list(rep.findings) == []
    assert rep.score == 100 and rep.usable
    assert sorted(rep.passed) == sorted(CHECKS)
    assert rep.rows == len(rows) == 4 * 375
    assert rep.timeframe == "1m" and rep.sessions == 4 and rep.expected_sessions == 4
    assert rep.first_timestamp == "2024-03-04T09:15:00+05:30"
    assert rep.last_timestamp == "2024-03-07T15:29:00+05:30"
    assert rep.min_price == min(r[3] for r in rows) and rep.max_price == max(r[2] for r in rows)
    assert rep.mean_volume == pytest.approx(sum(r[5] for r in rows) / len(rows))


def test_missing_columns_are_an_error_on_the_header(tmp_path):
    rows = [[r[0], r[1], r[2], r[4], r[5]] for r in session_rows(DAYS[:1], 10)]
    rep = report(tmp_path, rows, header="timestamp,open,high,close,volume")
    f = only(rep, "missing_columns")
    assert f.severity == ERROR and list(f.rows) == [1] and f.count == 1
    assert f.message.startswith("line 1 (header): missing column low (found: timestamp, open, high, close, volume)")
    assert not rep.usable and rep.score == 60 and rep.rows == 0


def test_a_value_that_is_not_a_number_is_named_by_line_and_column(tmp_path):
    rows = session_rows(DAYS[:1], 20)
    rows[3][4] = "abc"
    rep = report(tmp_path, rows)
    f = only(rep, "unparsable_values")
    assert f.severity == ERROR and list(f.rows) == [line_of(3)] and f.count == 1 and f.column == "close"
    assert f.message == "line 5, column close: 'abc' is not a number"
    assert not rep.usable and rep.score == 60
    assert "missing_values" in rep.passed  # the bad cell is unreadable, not empty


def test_bad_values_in_two_columns_are_two_findings(tmp_path):
    rows = session_rows(DAYS[:1], 20)
    rows[3][4] = "abc"
    rows[5][4] = "x"
    rows[9][1] = '"1,5"'  # quoted: one field, still not a number
    rep = report(tmp_path, rows)
    bad = sorted((f.column, tuple(f.rows), f.count) for f in rep.findings if f.check == "unparsable_values")
    assert bad == [("close", (line_of(3), line_of(5)), 2), ("open", (line_of(9),), 1)]


def test_missing_prices_and_timestamps_are_errors(tmp_path):
    rows = session_rows(DAYS[:1], 20)
    rows[2][4] = ""
    rows[7][4] = ""
    rows[11][0] = ""
    rep = report(tmp_path, rows)
    close = [f for f in rep.findings if f.check == "missing_values" and f.column == "close"][0]
    assert list(close.rows) == [line_of(2), line_of(7)] and close.count == 2 and close.severity == ERROR
    assert close.message == "line 4, column close: close is empty (2 lines in all: 4, 9)"
    ts = [f for f in rep.findings if f.check == "missing_values" and f.column == "timestamp"][0]
    assert list(ts.rows) == [line_of(11)] and ts.message == "line 13, column timestamp: the timestamp is empty"


def test_duplicates_exact_are_dropped_and_conflicting_are_errors(tmp_path):
    rows = session_rows(DAYS[:1], 20)
    exact = rows[:5] + [list(rows[4])] + rows[5:]
    rep = report(tmp_path, exact)
    f = only(rep, "duplicate_timestamps")
    assert f.severity == WARNING and list(f.rows) == [line_of(5)] and f.count == 1
    assert f.message == "line 7: an exact copy of line 6: dropped"
    assert rep.usable and rep.rows == 21
    conflict = rows[:5] + [list(rows[4])] + rows[5:]
    conflict[5][4] = conflict[5][4] + 1  # same timestamp, another close
    conflict[5][2] = max(conflict[5][2], conflict[5][4])
    rep = report(tmp_path, conflict)
    f = only(rep, "duplicate_timestamps")
    assert f.severity == ERROR and list(f.rows) == [line_of(5)]
    assert f.message == "line 7: timestamp 2024-03-04T09:19:00+05:30 is also line 6's, with other values"
    assert not rep.usable


def test_out_of_order_rows_are_an_error(tmp_path):
    rows = session_rows(DAYS[:1], 20)
    rows[10], rows[11] = rows[11], rows[10]
    rep = report(tmp_path, rows)
    f = only(rep, "out_of_order_timestamps")
    assert f.severity == ERROR and list(f.rows) == [line_of(11)] and f.count == 1
    assert f.message == ("line 13: timestamp 2024-03-04T09:25:00+05:30 is earlier than line 12's "
                         "2024-03-04T09:26:00+05:30")
    # The checks that need order are not run on it (their findings would be noise).
    assert "intraday_gaps" not in rep.passed and "price_spikes" not in rep.passed


def test_a_wholly_newest_first_file_is_reversed_and_still_named_by_its_lines(tmp_path):
    rows = session_rows(DAYS[:2], 375)
    for i in range(100, 106):  # six identical bars (in time order), a stale run
        rows[i][1:5] = rows[100][1:5]
    reversed_rows = rows[::-1]
    rep = report(tmp_path, reversed_rows)
    f = only(rep, "out_of_order_timestamps")
    assert f.severity == INFO and f.count == len(rows) and "reversed" in f.message
    assert rep.usable and rep.first_timestamp == "2024-03-04T09:15:00+05:30"
    stale = only(rep, "stale_bars")
    # In time order the run starts at row 100, which is file row len-1-100 .. the first bar of the run
    # read oldest first is the last of them in the file.
    assert list(stale.rows) == [line_of(len(rows) - 1 - 100)] and stale.count == 6


def test_ohlc_inconsistencies_each_name_their_row_and_column(tmp_path):
    rows = session_rows(DAYS[:1], 30)
    rows[3][2], rows[3][3] = rows[3][3] - 5, rows[3][2]          # high below low
    rows[8][2] = max(rows[8][1], rows[8][4]) - 0.5                 # high below max(open, close)
    rows[8][3] = min(rows[8][3], rows[8][2] - 1)
    rows[15][3] = min(rows[15][1], rows[15][4]) + 0.5              # low above min(open, close)
    rep = report(tmp_path, rows)
    found = sorted((f.column, tuple(f.rows)) for f in rep.findings if f.check == "ohlc_inconsistent")
    assert found == [("high", (line_of(3),)), ("high", (line_of(8),)), ("low", (line_of(15),))]
    inverted = [f for f in rep.findings if f.check == "ohlc_inconsistent" and f.rows[0] == line_of(3)][0]
    assert inverted.message == f"line 5, column high: high {rows[3][2]:.10g} is below low {rows[3][3]:.10g}"
    assert all(f.severity == ERROR for f in rep.findings if f.check == "ohlc_inconsistent")


def test_non_positive_prices_and_negative_volume(tmp_path):
    rows = session_rows(DAYS[:1], 30)
    rows[4][3] = 0            # low 0
    rows[6][1] = -2           # open below 0 (also below low: that is another finding)
    rows[9][5] = -100
    rep = report(tmp_path, rows)
    low = [f for f in rep.findings if f.check == "non_positive_prices" and f.column == "low"][0]
    assert list(low.rows) == [line_of(4)] and low.message == "line 6, column low: low is 0"
    opn = [f for f in rep.findings if f.check == "non_positive_prices" and f.column == "open"][0]
    assert list(opn.rows) == [line_of(6)] and opn.message == "line 8, column open: open is -2"
    vol = only(rep, "negative_volume")
    assert list(vol.rows) == [line_of(9)] and vol.message == "line 11, column volume: volume -100 is negative"


def test_zero_volume_is_a_warning_or_for_a_whole_column_information(tmp_path):
    rows = session_rows()
    for i in (10, 11, 500):
        rows[i][5] = 0
    rep = report(tmp_path, rows)
    f = only(rep, "zero_volume")
    assert f.severity == WARNING and list(f.rows) == [line_of(10), line_of(11), line_of(500)] and f.count == 3
    assert rep.score == pytest.approx(100 - (2 + 13 * (3 / len(rows)) / 0.10), abs=0.01)
    for r in rows:
        r[5] = 0
    rep = report(tmp_path, rows)
    f = only(rep, "zero_volume")
    assert f.severity == INFO and rep.score == 100
    no_volume = [r[:5] for r in rows]
    rep = report(tmp_path, no_volume, header="timestamp,open,high,low,close")
    assert only(rep, "zero_volume").severity == INFO and "no volume column" in rep.findings[0].message


def test_missing_sessions_and_bars_on_non_session_days(tmp_path):
    rows = session_rows([DAYS[0], DAYS[1], DAYS[3]])  # 6 March is missing
    rep = report(tmp_path, rows)
    f = only(rep, "missing_sessions")
    assert f.severity == WARNING and f.count == 1 and list(f.examples) == ["2024-03-06"]
    assert rep.sessions == 3 and rep.expected_sessions == 4
    assert rep.score == pytest.approx(100 - 15, abs=0.01)  # 1 of 4 sessions: past the 10 % cap
    saturday = session_rows(DAYS[:2] + [DAYS[1].replace(day=9)], 375)
    rep = report(tmp_path, saturday)
    f = only(rep, "non_session_bars")
    assert f.severity == WARNING and f.count == 375 and list(f.rows) == [line_of(750)]
    assert list(f.examples) == ["2024-03-09"]
    # 2024-03-06 and 07 are sessions the data skips on its way to the Saturday.
    assert only(rep, "missing_sessions").count == 2


def test_without_a_calendar_sessions_are_not_judged_and_gaps_are_the_days_own(tmp_path):
    rows = session_rows(DAYS[:2], 375)
    del rows[400:403]  # day 2's 09:40, 09:41, 09:42
    rep = report(tmp_path, rows, calendar="")
    f = only(rep, "missing_sessions")
    assert f.severity == INFO and "no calendar" in f.message and rep.expected_sessions == 0
    assert "non_session_bars" not in rep.passed
    gaps = only(rep, "intraday_gaps")
    assert gaps.count == 3 and list(gaps.examples) == [
        "2024-03-05T09:40:00+00:00", "2024-03-05T09:41:00+00:00", "2024-03-05T09:42:00+00:00"]
    assert list(gaps.rows) == [line_of(400)]  # the bar after the gap


def test_intraday_gaps_against_the_calendars_hours(tmp_path):
    rows = session_rows(DAYS[:2], 375)
    del rows[380:383]  # day 2's 09:20 .. 09:22
    rows = rows[:-5]   # the file ends 5 bars before day 2's close: not a gap, the data just ends there
    first_day_late = rows[2:]  # and it starts at 09:17 on day 1: neither
    rep = report(tmp_path, first_day_late)
    f = only(rep, "intraday_gaps")
    assert f.severity == WARNING and f.count == 3
    assert list(f.examples) == ["2024-03-05T09:20:00+05:30", "2024-03-05T09:21:00+05:30",
                                "2024-03-05T09:22:00+05:30"]
    assert list(f.rows) == [line_of(380 - 2)]
    one_day_short = session_rows(DAYS[:3], 375)
    del one_day_short[375 + 200:375 + 375]  # day 2 stops at 12:35: 175 bars short of its close
    rep = report(tmp_path, one_day_short)
    assert only(rep, "intraday_gaps").count == 175


def test_stale_runs_of_identical_bars(tmp_path):
    rows = session_rows(DAYS[:1], 100)
    for i in range(20, 26):     # 6 identical bars
        rows[i][1:5] = rows[20][1:5]
    for i in range(50, 54):     # 4: not a run
        rows[i][1:5] = rows[50][1:5]
    rep = report(tmp_path, rows, calendar="")
    f = only(rep, "stale_bars")
    assert f.severity == WARNING and f.count == 6 and list(f.rows) == [line_of(20)]
    assert f.message.startswith("1 run of 5 or more identical bars in a row")


def test_price_spikes_by_robust_z_score_intraday_and_overnight_apart(tmp_path):
    rows = session_rows(DAYS, 375)
    i = 600
    rows[i][4] = round(rows[i][4] * 1.05, 2)  # a bad print: +5 %, back at the next bar
    rows[i][2] = max(rows[i][2], rows[i][4])
    rows[i + 1][1] = rows[i][4]
    rows[i + 1][2] = max(rows[i + 1][2], rows[i + 1][1])
    rep = report(tmp_path, rows)
    f = only(rep, "price_spikes")
    assert f.severity == WARNING and list(f.rows) == [line_of(i), line_of(i + 1)] and f.count == 2
    move = (rows[i][4] / rows[i - 1][4] - 1) * 100
    assert f.message.startswith(f"line {line_of(i)}, column close: close moves {move:+.2f}% from the bar before")
    # A 3 % gap between days is an overnight move: too few of those to judge, not an intraday spike.
    gapped = session_rows(DAYS, 375)
    for k in range(375, len(gapped)):
        for j in (1, 2, 3, 4):
            gapped[k][j] = round(gapped[k][j] * 1.03, 2)
    rep = report(tmp_path, gapped)
    assert "price_spikes" in rep.passed


def test_the_timeframe_is_detected_and_checked_against_the_hint(tmp_path):
    rows = session_rows(DAYS[:1], 75, step_min=5)
    rep = report(tmp_path, rows, timeframe="5m")
    assert rep.timeframe == "5m" and rep.usable
    rep = report(tmp_path, rows, timeframe="1m")
    f = only(rep, "timeframe")
    assert f.severity == ERROR and "the bars are 5m apart" in f.message and "not 1m" in f.message
    assert not rep.usable
    seconds = [[f"2024-03-04 09:15:{s:02d}", 1, 2, 0.5, 1.5, 1] for s in range(0, 60, 30)]
    seconds += [[f"2024-03-04 09:{m:02d}:{s:02d}", 1, 2, 0.5, 1.5 + m / 100, 1] for m in range(16, 30)
                for s in (0, 30)]
    rep = report(tmp_path, seconds, calendar="")
    f = only(rep, "timeframe")
    assert f.severity == WARNING and rep.timeframe == "" and "30 seconds" in f.message


def test_parquet_rows_are_one_based(tmp_path):
    rows = session_rows(DAYS[:1], 20)
    rows[6][4] = math.nan
    rep = report(tmp_path, rows, name="bars.parquet")
    f = only(rep, "missing_values")
    assert list(f.rows) == [7] and f.message == "row 7, column close: close is empty"


def test_blank_lines_crlf_and_a_bom_keep_line_numbers(tmp_path):
    rows = session_rows(DAYS[:1], 20)
    rows[12][4] = "oops"
    lines = [HEADER] + [",".join(map(str, r)) for r in rows]
    lines.insert(5, "")  # a blank line 6: row 4 is now line 7 ...
    text = "\ufeff" + "\r\n".join(lines) + "\r\n\r\n"
    path = tmp_path / "crlf.csv"
    path.write_bytes(text.encode("utf-8"))
    rep = quality_report_of_file(path, calendar="XBOM")
    f = only(rep, "unparsable_values")
    assert list(f.rows) == [line_of(12) + 1] and rep.rows == 20


def test_rows_are_named_right_across_pieces(tmp_path, monkeypatch):
    """Pieces of a few kB instead of 8 MB: line numbers carry over from piece to piece."""
    monkeypatch.setattr(reader, "CSV_CHUNK", 4096)
    rows = session_rows(DAYS, 375)
    rows[1234][4] = "bad"
    rows[1400][1] = ""
    rep = report(tmp_path, rows)
    assert only(rep, "unparsable_values").rows == [line_of(1234)]
    assert only(rep, "missing_values").rows == [line_of(1400)]
    monkeypatch.undo()
    assert report(tmp_path, rows).findings == rep.findings


def test_gzip_reads_as_the_csv_inside(tmp_path):
    rows = session_rows(DAYS[:2], 375)
    rows[10][4] = "?"
    plain = report(tmp_path, rows)
    packed = report(tmp_path, rows, name="bars.csv.gz")
    assert packed == plain


def test_timestamps_that_do_not_exist_in_the_zone(tmp_path):
    rows = [[f"2024-03-10 0{h}:{m:02d}:00", 10, 11, 9, 10.5, 1] for h in (1, 2, 3) for m in (0, 30)]
    rep = report(tmp_path, rows, calendar="", timezone="America/New_York")
    f = only(rep, "unparsable_values")
    assert list(f.rows) == [4, 5]  # 02:00 and 02:30 were skipped by the clocks
    assert "does not exist or is ambiguous in America/New_York" in f.message


def test_timestamps_must_all_have_an_offset_or_none(tmp_path):
    rows = session_rows(DAYS[:1], 10)
    for r in rows:
        r[0] = r[0].replace(" ", "T") + "+05:30"
    rows[4][0] = rows[4][0][:-6]
    rep = report(tmp_path, rows)
    f = only(rep, "unparsable_values")
    assert list(f.rows) == [line_of(4)] and "has no UTC offset" in f.message


def test_a_header_without_rows(tmp_path):
    rep = report(tmp_path, [])
    f = only(rep, "missing_values")
    assert f.severity == ERROR and "no data rows" in f.message and not rep.usable
