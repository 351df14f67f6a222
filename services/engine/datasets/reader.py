"""An uploaded file of bars read as blocks of typed columns, never whole.

CSV (optionally gzip) is cut into ~16 MB pieces of whole lines, each parsed by pyarrow's
multi-threaded CSV reader with explicit column types (timestamps parsed in C++); only a piece with
a problem (a value that is not a number, a row with the wrong number of fields) is parsed again
as text, single-threaded, to name each bad cell by its line. Parquet is read by row-group batches.
Columns are found by `core.data.column_roles`, the rules a server dataset's file follows.

Timestamps: ISO 8601 with or without a UTC offset (a date alone is midnight), a date column and a
time column, epoch seconds/ms/us/ns (by magnitude) or YYYYMMDD integers, and Parquet timestamps
and dates. Naive ones are wall-clock times in the dataset's zone; aware ones are converted to it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..core.data import ColumnsError, column_roles
from .quality import ERROR, Findings
from .source import NotTabular, check_text, fill
from .tzconv import NAT, local_to_utc, utc_to_local

__all__ = ["PRICES", "Block", "read_csv_blocks", "read_parquet_blocks"]

# Bytes of CSV parsed at a time: ~70 k one-minute rows. Measured on 2 cores, 16 MB pieces parse no
# faster (pyarrow splits a piece into 1 MB blocks for its threads) and hold ~50 MB more at the peak
# (the piece, its table and the numpy columns): the engine's peak is what the upload limit guards.
CSV_CHUNK = 4 << 20
PARQUET_BATCH = 65_536
SAMPLE_LINES = 500
PRICES = ("open", "high", "low", "close", "volume")
_HAS_OFFSET = re.compile(r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d\d(?::?\d\d)?)\s*$")  # as in core/data.py
_NULL_TEXT = ("", "nan", "na", "n/a", "null", "none", "nat", "#n/a", "-nan")
_EPOCH_SCALE = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_ISO_FIX = "use ISO 8601, e.g. 2024-01-25 09:15:00, 2024-01-25T09:15:00+05:30 or 2024-01-25"
_MIN_NS, _MAX_NS = -(2**62), 2**62  # ~1824..2116 is what a bar can be; beyond is a misread unit


@dataclass
class Block:
    """Rows of the file in order. `lines`: the CSV line (header = 1) or 1-based Parquet row of each.
    ts: UTC ns, local: wall-clock ns in the dataset's zone (NAT where missing or unreadable).
    prices: float64 columns, NaN where empty or unreadable; `bad`: masks of unreadable cells."""

    lines: np.ndarray
    ts: np.ndarray
    local: np.ndarray
    prices: dict[str, np.ndarray]
    bad: dict[str, np.ndarray]


@dataclass(frozen=True)
class TimeSpec:
    kind: str           # naive | aware | epoch | yyyymmdd | pair
    unit: str = ""      # epoch unit
    integral: bool = False


class _Layout:
    """Which column holds what (positions in the header), and the names used in findings."""

    def __init__(self, labels: list[str], roles: dict[str, int]):
        self.labels, self.roles = labels, roles
        self.time_roles = ("date", "clock") if "date" in roles else ("time",)
        self.time_name = str(labels[roles[self.time_roles[0]]]).strip() or "(unnamed)"
        self.has_volume = "volume" in roles

    def name(self, role: str) -> str:
        return str(self.labels[self.roles[role]]).strip() or role

    def export(self, names: dict | None) -> None:
        """Fill `names` (role -> the file's column name) for the caller's findings."""
        if names is not None:
            names.update({role: self.name(role) for role in PRICES if role in self.roles})
            names["time"] = self.time_name


# ---- timestamps ----------------------------------------------------------------------------------

def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def decide_time(values: list[str], pair: bool = False) -> TimeSpec:
    """How to read the time column, from its first values (text)."""
    vals = [v.strip() for v in values if v is not None and v.strip()]
    if pair:
        return TimeSpec("pair")
    if vals and all(_is_number(v) for v in vals):
        nums = np.array([float(v) for v in vals])
        integral = bool(np.all(nums == np.round(nums)))
        if integral and np.all((nums >= 19000101) & (nums <= 21001231)):
            return TimeSpec("yyyymmdd", integral=True)
        biggest = float(np.abs(nums).max())
        unit = "s" if biggest < 1e11 else "ms" if biggest < 1e14 else "us" if biggest < 1e17 else "ns"
        return TimeSpec("epoch", unit, integral)
    if vals and _HAS_OFFSET.search(vals[0]):
        return TimeSpec("aware")
    return TimeSpec("naive")


def _epoch_to_ns(values: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """int64 ns and the mask of values out of range; NaN -> NAT (not masked)."""
    scale = _EPOCH_SCALE[unit]
    out = np.full(len(values), NAT, np.int64)
    if values.dtype.kind == "f":
        ok = np.isfinite(values)
        scaled = np.zeros(len(values))
        scaled[ok] = np.round(values[ok] * scale)
        bad = ok & ((scaled < _MIN_NS) | (scaled > _MAX_NS))
        use = ok & ~bad
        out[use] = scaled[use].astype(np.int64)
        return out, bad | (~np.isfinite(values) & ~np.isnan(values))
    limit = _MAX_NS // scale
    bad = np.abs(values) > limit
    out[~bad] = values[~bad] * scale
    return out, bad


def _yyyymmdd_to_ns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock midnight ns of YYYYMMDD numbers; the mask of impossible dates. NaN -> NAT."""
    out = np.full(len(values), NAT, np.int64)
    ok = np.isfinite(values) if values.dtype.kind == "f" else np.ones(len(values), bool)
    v = np.where(ok, values, 19700101).astype(np.int64)
    y, m, d = v // 10000, v // 100 % 100, v % 100
    months = (y - 1970) * 12 + (m - 1)
    days = months.astype("M8[M]").astype("M8[D]").astype(np.int64) + (d - 1)
    back = days.astype("M8[D]").astype("M8[M]").astype(np.int64)
    bad = ok & ((m < 1) | (m > 12) | (d < 1) | (back != months) | (y < 1800) | (y > 2200))
    use = ok & ~bad
    out[use] = days[use] * 86_400_000_000_000
    return out, bad


def _text_array(arr) -> pd.Series:
    if isinstance(arr, (pa.Array, pa.ChunkedArray)):
        arr = arr.to_numpy(zero_copy_only=False)
    return pd.Series(arr, dtype=object)


def _missing_text(s: pd.Series) -> np.ndarray:
    stripped = s.where(s.notna(), "").astype(str).str.strip().str.lower()
    return stripped.isin(_NULL_TEXT).to_numpy()


def numbers_from_text(arr) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """float64 values (NaN where empty or not a number), the mask of non-numbers, and the texts."""
    s = _text_array(arr)
    missing = _missing_text(s)
    num = pd.to_numeric(s.where(~missing).astype(object).str.strip(), errors="coerce").to_numpy(np.float64)
    bad = np.isnan(num) & ~missing
    return num, bad, s


class _Times:
    """Timestamp conversion for one file: its spec, its zone, and the findings to add to."""

    def __init__(self, spec: TimeSpec, zone: str, findings: Findings, column: str):
        self.spec, self.zone, self.findings, self.column = spec, zone, findings, column

    def _report(self, lines: np.ndarray, mask: np.ndarray, describe: Callable[[int], str], fix: str) -> None:
        if mask.any():
            pos = np.flatnonzero(mask)
            self.findings.add("unparsable_values", ERROR, rows=lines[pos], column=self.column,
                              describe=lambda i: describe(int(pos[i])), fix=fix)

    def missing(self, lines: np.ndarray, ts: np.ndarray, skip: np.ndarray | None = None) -> None:
        empty = ts == NAT if skip is None else (ts == NAT) & ~skip
        if empty.any():
            self.findings.add("missing_values", ERROR, rows=lines[empty], column=self.column,
                              text="the timestamp is empty", fix="fill in every bar's timestamp or drop the row")

    def from_local(self, lines: np.ndarray, local: np.ndarray, texts=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ts, bad = local_to_utc(local, self.zone)
        self._report(lines, bad, lambda p: (
            f"local time '{texts[p] if texts is not None else pd.Timestamp(local[p])}' does not exist or is "
            f"ambiguous in {self.zone} (a daylight-saving change)"),
            "write timestamps with their UTC offset, or upload them in UTC with timezone=UTC")
        return ts, np.where(bad, NAT, local), bad

    def from_utc(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ts, utc_to_local(ts, self.zone)

    def numeric(self, lines: np.ndarray, values: np.ndarray, texts=None,
                nulls: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Epoch or YYYYMMDD numbers -> (ts, local, unreadable mask); `nulls`: empty cells."""
        if nulls is not None:
            values = np.where(nulls, np.nan, values.astype(np.float64))
        if self.spec.kind == "yyyymmdd":
            local, bad = _yyyymmdd_to_ns(values)
            self._report(lines, bad, lambda p: f"'{texts[p] if texts is not None else values[p]:}' is not a date "
                                               "YYYYMMDD", "write dates as YYYYMMDD or ISO 8601 (2024-01-25)")
            ts, local, badtz = self.from_local(lines, local)
            return ts, local, bad | badtz
        ts, bad = _epoch_to_ns(values, self.spec.unit)
        self._report(lines, bad, lambda p: (f"{texts[p] if texts is not None else values[p]} is out of range for "
                                            f"epoch {self.spec.unit} (the unit read from the first rows)"),
                     "write every timestamp in the same unit, or as ISO 8601")
        ts, local = self.from_utc(ts)
        return ts, local, bad

    def text(self, lines: np.ndarray, s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Timestamps written as text, one at a time where the fast path could not read them."""
        missing = _missing_text(s)
        n = len(s)
        if self.spec.kind in ("epoch", "yyyymmdd"):
            values = pd.to_numeric(s.where(~missing).astype(object).str.strip(), errors="coerce").to_numpy(np.float64)
            unread = np.isnan(values) & ~missing
            self._report(lines, unread, lambda p: f"cannot read the timestamp '{s.iloc[p]}'",
                         "write every timestamp as the first rows do (a number), or as ISO 8601")
            ts, local, bad = self.numeric(lines, values, s.to_numpy())
            return ts, local, bad | unread
        text = s.where(~missing).astype(object)
        aware = text.str.contains(_HAS_OFFSET, regex=True, na=False).to_numpy()
        want_aware = self.spec.kind == "aware"
        mixed = ~missing & (aware != want_aware)
        self._report(lines, mixed, lambda p: (
            f"timestamp '{s.iloc[p]}' {'has' if aware[p] else 'has no'} UTC offset but the first rows' "
            f"{'have one' if want_aware else 'have none'}"), "give every timestamp a UTC offset, or none")
        keep = ~missing & ~mixed
        parsed = pd.to_datetime(text.where(keep).str.strip(), format="ISO8601", errors="coerce", utc=want_aware)
        ns = pd.DatetimeIndex(parsed).as_unit("ns").asi8.copy() if n else np.empty(0, np.int64)
        unread = keep & (ns == NAT)
        self._report(lines, unread, lambda p: f"cannot read the timestamp '{s.iloc[p]}'", _ISO_FIX)
        bad = mixed | unread
        if want_aware:
            ts, local = self.from_utc(ns)
            return ts, local, bad
        ts, local, badtz = self.from_local(lines, ns, s.to_numpy())
        return ts, local, bad | badtz


# ---- CSV -----------------------------------------------------------------------------------------

def _numbered_lines(buf, first_line: int) -> tuple[np.ndarray, np.ndarray]:
    """(line number of every line in buf, whether it is blank)."""
    arr = np.frombuffer(buf, np.uint8)
    ends = np.flatnonzero(arr == 10)
    if len(arr) and arr[-1] != 10:
        ends = np.append(ends, len(arr))
    starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.empty(0, np.int64)
    length = ends - starts
    blank = (length == 0) | ((length == 1) & (arr[np.minimum(starts, len(arr) - 1)] == 13))
    return first_line + np.arange(len(ends), dtype=np.int64), blank


class _CsvChunks:
    def __init__(self, layout: _Layout, times: _Times, findings: Findings):
        self.layout, self.times, self.findings = layout, times, findings
        n = len(layout.labels)
        self.names = [f"c{i}" for i in range(n)]
        self.role_col = {role: self.names[i] for role, i in layout.roles.items()}
        self.included = list(dict.fromkeys(self.role_col.values()))
        spec = times.spec
        ttype = {"naive": pa.timestamp("ns"), "aware": pa.timestamp("ns", "UTC"), "pair": pa.string(),
                 "yyyymmdd": pa.int64(), "epoch": pa.int64() if spec.integral else pa.float64()}[spec.kind]
        self.types = {name: pa.float64() for name in self.included}
        self._strict = pacsv.ParseOptions(ignore_empty_lines=False)
        for role in layout.time_roles:
            self.types[self.role_col[role]] = ttype

    def parse(self, buf: bytearray, start: int, end: int, first_line: int) -> tuple[Block | None, int]:
        """The whole lines buf[start:end], the first being line `first_line`: (block, lines read).

        The fast path keeps blank lines as rows (ignore_empty_lines=False), so that a piece with
        one fails to parse: then every row is its line, with no scan for line breaks; a piece
        with a blank line, a short row or a value that is not a number goes the slow way."""
        data = memoryview(buf)[start:end]
        try:
            table = pacsv.read_csv(pa.py_buffer(data), read_options=pacsv.ReadOptions(
                column_names=self.names, use_threads=True), parse_options=self._strict,
                convert_options=pacsv.ConvertOptions(column_types=self.types, include_columns=self.included))
        except pa.ArrowInvalid:
            return self._slow(data, first_line)
        rows = table.num_rows
        if rows == 0:
            return None, 0
        return self._fast_block(table, np.arange(first_line, first_line + rows, dtype=np.int64)), rows

    def _col(self, table: pa.Table, role: str):
        return table.column(self.role_col[role])

    def _fast_block(self, table: pa.Table, lines: np.ndarray) -> Block:
        spec, times = self.times.spec, self.times
        zeros = np.zeros(len(lines), bool)
        if spec.kind == "pair":
            date, clock = self._col(table, "date"), self._col(table, "clock")
            joined = pc.binary_join_element_wise(date, clock, " ")
            try:
                parsed = pc.cast(joined, pa.timestamp("ns"))
            except pa.ArrowInvalid:
                return self._from_text(table, lines)
            local = parsed.to_numpy().view(np.int64)
            ts, local, tbad = times.from_local(lines, local)
        elif spec.kind in ("naive", "aware"):
            values = self._col(table, "time").to_numpy().view(np.int64)
            if spec.kind == "naive":
                ts, local, tbad = times.from_local(lines, values)
            else:
                (ts, local), tbad = times.from_utc(values), zeros
        else:
            column = self._col(table, "time")
            nulls = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None
            values = pc.fill_null(column, 0).to_numpy()
            ts, local, tbad = times.numeric(lines, values, nulls=nulls)
        times.missing(lines, ts, tbad)
        prices = {role: self._col(table, role).to_numpy() for role in PRICES if role in self.role_col}
        return Block(lines, ts, local, prices, {})

    def _slow(self, buf, first_line: int) -> tuple[Block | None, int]:
        """The piece again, as text, naming each row that does not fit and each cell that does not read."""
        invalid: list[tuple[int, int, str]] = []

        def handler(row) -> str:
            invalid.append((int(row.number or 0), int(row.actual_columns), row.text))
            return "skip"

        table = pacsv.read_csv(
            pa.py_buffer(buf), read_options=pacsv.ReadOptions(column_names=self.names, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in self.included},
                                                 include_columns=self.included, strings_can_be_null=False))
        all_lines, blank = _numbered_lines(buf, first_line)
        n_lines = len(all_lines)
        keep = ~blank
        if invalid:
            at = np.array([n - 1 for n, _, _ in invalid if n], dtype=np.int64)
            keep[at[(at >= 0) & (at < len(keep))]] = False
            expected = len(self.layout.labels)
            lines_bad = np.array([first_line + n - 1 for n, _, _ in invalid], dtype=np.int64)
            self.findings.add("unparsable_values", ERROR, rows=lines_bad, kind="fields", describe=lambda i: (
                f"{invalid[i][1]} field{'s' if invalid[i][1] != 1 else ''} where the header has {expected}"),
                fix="every row needs the header's fields, separated by commas (quote a field that holds a comma)")
        lines = all_lines[keep]
        if len(lines) != table.num_rows:  # quoted line breaks: lines cannot be told apart; count rows
            lines = first_line + np.arange(table.num_rows, dtype=np.int64)
        if table.num_rows == 0:
            return None, n_lines
        return self._from_text(table, lines), n_lines

    def _from_text(self, table: pa.Table, lines: np.ndarray) -> Block:
        times = self.times
        if times.spec.kind == "pair":
            date = _text_array(self._col(table, "date").cast(pa.string()))
            clock = _text_array(self._col(table, "clock").cast(pa.string()))
            empty = _missing_text(date) | _missing_text(clock)
            s = (date.astype(str).str.strip() + " " + clock.astype(str).str.strip()).where(~empty)
        else:
            s = _text_array(self._col(table, "time").cast(pa.string()))
        ts, local, tbad = times.text(lines, s)
        times.missing(lines, ts, tbad)
        prices, bad = {}, {}
        for role in PRICES:
            if role not in self.role_col:
                continue
            column = self._col(table, role)
            if pa.types.is_floating(column.type):
                prices[role] = column.to_numpy()
                continue
            values, unread, texts = numbers_from_text(column)
            prices[role], bad[role] = values, unread
            _report_numbers(self.findings, lines, unread, texts, self.layout.name(role))
        return Block(lines, ts, local, prices, bad)


def _report_numbers(findings: Findings, lines: np.ndarray, unread: np.ndarray, texts: pd.Series, name: str) -> None:
    if unread.any():
        pos = np.flatnonzero(unread)
        findings.add("unparsable_values", ERROR, rows=lines[pos], column=name,
                     describe=lambda i: f"'{str(texts.iloc[int(pos[i])])[:40]}' is not a number",
                     fix="write prices and volumes as plain numbers with a '.' for decimals (21500.05), no "
                         "thousands separators or currency signs")


def read_csv_blocks(readinto: Callable, zone: str, findings: Findings,
                    check: Callable[[], None] = lambda: None, names: dict | None = None) -> Iterator[Block]:
    """Blocks of a CSV text stream (`readinto(view)` fills a buffer, 0 at the end). One buffer of
    CSV_CHUNK bytes is reused for every piece (only the partial last line moves to its front).
    Raises NotTabular when the bytes are not CSV; a header without the needed columns is a
    missing_columns finding and no blocks."""
    buf = bytearray(CSV_CHUNK)
    filled = fill(readinto, buf)
    check_text(bytes(buf[:min(filled, 1 << 16)]))
    skip = 3 if buf.startswith(b"\xef\xbb\xbf") else 0
    nl = buf.find(b"\n", skip, filled)
    if nl < 0:
        if filled == len(buf):
            raise NotTabular("its first 8 MB hold no line break")
        nl = filled
    header = bytes(buf[skip:nl]).rstrip(b"\r").decode("utf-8", errors="replace")
    labels = next(csv.reader([header]))
    try:
        roles = column_roles(labels)
    except ColumnsError as exc:
        findings.add("missing_columns", ERROR, rows=[1], text=str(exc),
                     fix="the first line must name the columns: timestamp (or datetime/date/time), open, high, low, "
                         "close and optionally volume")
        return
    findings.mark("missing_columns")
    layout = _Layout(labels, roles)
    layout.export(names)
    sample = bytes(buf[nl + 1:min(filled, nl + 1 + (1 << 20))]).split(b"\n", SAMPLE_LINES)[:SAMPLE_LINES]
    rows = list(csv.reader(line.decode("utf-8", errors="replace") for line in sample))
    ti = roles.get("time", roles.get("date"))
    spec = decide_time([r[ti] for r in rows if len(r) > ti], pair="date" in roles)
    parser = _CsvChunks(layout, _Times(spec, zone, findings, layout.time_name), findings)
    line = 2
    start = min(nl + 1, filled)
    eof = filled < len(buf)
    while True:
        check()
        cut = filled if eof else buf.rfind(b"\n", start, filled) + 1
        if cut <= start and not eof:  # one line longer than the buffer: make room
            buf.extend(bytearray(len(buf)))
            filled += fill(readinto, memoryview(buf)[filled:])
            eof = filled < len(buf)
            continue
        if cut > start:
            block, n_lines = parser.parse(buf, start, cut, line)
            line += n_lines
            if block is not None:
                yield block
        if eof:
            return
        rest = filled - cut
        buf[:rest] = buf[cut:filled]
        start = 0
        filled = rest + fill(readinto, memoryview(buf)[rest:])
        eof = filled < len(buf)


# ---- Parquet -------------------------------------------------------------------------------------

def read_parquet_blocks(path, zone: str, findings: Findings,
                        check: Callable[[], None] = lambda: None, names: dict | None = None) -> Iterator[Block]:
    """Blocks of a Parquet file, by row-group batches; rows are 1-based."""
    try:
        # pre_buffer off: with it a whole row group's column chunks are fetched at once (~+100 MB
        # at the peak for a 5 M-row file written as a few row groups).
        pf = pq.ParquetFile(path, pre_buffer=False)
        schema = pf.schema_arrow
    except (OSError, pa.ArrowException) as exc:
        raise NotTabular(f"it is not a readable Parquet file ({exc})") from None
    labels = list(schema.names)
    first_dt = bool(labels) and (pa.types.is_timestamp(schema.field(0).type) or pa.types.is_date(schema.field(0).type))
    try:
        roles = column_roles(labels, first_dt)
    except ColumnsError as exc:
        findings.add("missing_columns", ERROR, text=f"the columns: {exc}", whole=True,
                     fix="name the columns timestamp (or datetime/date/time), open, high, low, close and optionally "
                         "volume")
        return
    findings.mark("missing_columns")
    layout = _Layout(labels, roles)
    layout.export(names)
    wanted = sorted(set(roles.values()))
    names = [labels[i] for i in wanted]
    unique = len(set(labels)) == len(labels)
    times: _Times | None = None
    row = 1
    try:
        batches = pf.iter_batches(batch_size=PARQUET_BATCH, columns=names if unique else None, use_threads=True)
        for batch in batches:
            check()
            n = batch.num_rows
            if n == 0:
                continue
            lines = np.arange(row, row + n, dtype=np.int64)
            row += n
            col = {role: batch.column(labels[i] if unique else i) for role, i in roles.items()}
            if times is None:
                times = _Times(_parquet_time_spec(col, layout), zone, findings, layout.time_name)
            yield _parquet_block(col, layout, times, findings, lines)
    except (OSError, pa.ArrowException) as exc:
        raise NotTabular(f"it is not a readable Parquet file ({exc})") from None


def _decoded(arr: pa.Array) -> pa.Array:
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _parquet_time_spec(col: dict, layout: _Layout) -> TimeSpec:
    if "date" in layout.roles:
        return TimeSpec("pair")
    arr = _decoded(col["time"])
    if pa.types.is_timestamp(arr.type):
        return TimeSpec("aware" if arr.type.tz else "naive")
    if pa.types.is_date(arr.type):
        return TimeSpec("naive")
    sample = [None if v is None else str(v) for v in arr.slice(0, SAMPLE_LINES).to_pylist()]
    return decide_time(sample)


def _parquet_block(col: dict, layout: _Layout, times: _Times, findings: Findings, lines: np.ndarray) -> Block:
    n = len(lines)
    if times.spec.kind == "pair":
        date = _text_array(_decoded(col["date"]).cast(pa.string()))
        clock = _text_array(_decoded(col["clock"]).cast(pa.string()))
        empty = _missing_text(date) | _missing_text(clock)
        ts, local, tbad = times.text(lines, (date.astype(str) + " " + clock.astype(str)).where(~empty))
    else:
        arr = _decoded(col["time"])
        t = arr.type
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            target = pa.timestamp("ns", t.tz) if pa.types.is_timestamp(t) else pa.timestamp("ns")
            values = pc.fill_null(arr.cast(target).cast(pa.int64()), NAT).to_numpy()
            if pa.types.is_timestamp(t) and t.tz:
                (ts, local), tbad = times.from_utc(values), np.zeros(n, bool)
            else:
                ts, local, tbad = times.from_local(lines, values)
        elif pa.types.is_integer(t) or pa.types.is_floating(t):
            nulls = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
            ts, local, tbad = times.numeric(lines, pc.fill_null(arr, 0).to_numpy(zero_copy_only=False), nulls=nulls)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            ts, local, tbad = times.text(lines, _text_array(arr))
        else:
            tbad = np.ones(n, bool)
            findings.add("unparsable_values", ERROR, rows=lines, column=layout.time_name,
                         text=f"the column's type is {t}, not timestamps", fix="store timestamps as a timestamp or "
                                                                               "date column, or ISO 8601 text")
            ts = local = np.full(n, NAT, np.int64)
    times.missing(lines, ts, tbad)
    prices, bad = {}, {}
    for role in PRICES:
        if role not in col:
            continue
        arr = _decoded(col[role])
        t = arr.type
        name = layout.name(role)
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            prices[role] = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            values, unread, texts = numbers_from_text(arr)
            prices[role], bad[role] = values, unread
            _report_numbers(findings, lines, unread, texts, name)
        else:
            prices[role], bad[role] = np.full(n, np.nan), np.ones(n, bool)
            findings.add("unparsable_values", ERROR, rows=lines, column=name, text=f"the column's type is {t}, not "
                         "numbers", fix="store prices and volumes as numbers (double)")
    return Block(lines, ts, local, prices, bad)
