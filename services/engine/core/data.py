"""Loading OHLCV files (CSV, Parquet) into validated `Bars`, and resampling them to coarser bars.

Every check is vectorized over whole columns; a bad file raises one `DataError` that names the
row as it appears in the file (CSV: the line, header = line 1; Parquet: the 1-based row) and says
how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from .bars import Bars

__all__ = ["DataError", "ColumnsError", "column_roles", "load_bars", "resample", "parse_timeframe", "format_timeframe", "infer_timeframe"]

_NS_PER_MIN = 60_000_000_000
_NS_PER_DAY = 1440 * _NS_PER_MIN
_NAT = np.iinfo(np.int64).min

# Column roles and the (normalized) header names that fill them.
_PRICE_NAMES = {"open": ("open", "o"), "high": ("high", "h"), "low": ("low", "l"),
                "close": ("close", "c"), "volume": ("volume", "vol", "v")}
# Checked in this order; a separate date + time pair is joined when no combined column exists.
_TIME_NAMES = ("timestamp", "datetime", "date_time", "ts", "time", "date")
_UNNAMED = re.compile(r"^(unnamed:_0|index|__index_level_0__|)$")
_HAS_OFFSET = r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d\d(?::?\d\d)?)\s*$"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_MAX_REPORTED = 3  # further problems named after the first one


class DataError(ValueError):
    """A data file that cannot be used as it is. `row` is the line (CSV) or row (Parquet) at fault."""

    def __init__(self, message: str, *, path: str = "", row: int | None = None):
        super().__init__(message)
        self.path = path
        self.row = row


# ---- loading -----------------------------------------------------------------------------------

def load_bars(path: str | Path, symbol: str | None = None, tz: str | None = None) -> Bars:
    """Read a CSV (optionally .gz) or Parquet file of OHLCV bars into validated `Bars`.

    The time column is found by name (timestamp, datetime, time, date, ts; a date + time pair is
    joined) or is the unnamed first / index column; prices by name (open/o, high/h, low/l,
    close/c, volume/vol/v), case-insensitive. Volume is optional (zeros). Timestamps with a UTC
    offset keep it (converted to `tz` when given); naive ones are taken as `tz` (default UTC).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file '{path}' does not exist")
    if tz is not None:
        tz = _check_tz(tz, path)
    parquet = _is_parquet(path)
    frame = _read_parquet(path) if parquet else _read_csv(path)
    report = _Report(path, first_row=1 if parquet else 2, unit="row" if parquet else "line")
    if len(frame) == 0:
        raise DataError(f"{path.name}: no data rows: add rows after the header", path=str(path), row=None)

    cols = _resolve_columns(frame, report)
    blank = ~frame.notna().any(axis=1).to_numpy()
    report.add_first(blank, lambda pos: f"the {report.unit} is blank: delete it")
    report.skip = blank
    raw_time = _time_column(frame, cols)
    ts, tz_name = _parse_times(raw_time, tz, report)
    columns = {name: _numeric(frame[cols[name]], name, report) for name in ("open", "high", "low", "close")}
    if "volume" in cols:
        columns["volume"] = _numeric(frame[cols["volume"]], "volume", report)
    else:
        columns["volume"] = (np.zeros(len(frame), np.float64), np.zeros(len(frame), bool))
    _check_order(ts, raw_time, report)
    _check_prices(columns, report)
    prices = {name: values for name, (values, _) in columns.items()}
    report.raise_if_any()

    stem = path.name
    for suffix in (".gz", ".csv", ".parquet", ".pq"):
        stem = stem[: -len(suffix)] if stem.lower().endswith(suffix) else stem
    bars = Bars(symbol or stem, tz_name, np.ascontiguousarray(ts), *(np.ascontiguousarray(prices[k]) for k in
                ("open", "high", "low", "close", "volume")))
    return replace(bars, timeframe=infer_timeframe(bars))


def _check_tz(tz: str, path: Path) -> str:
    if tz.upper() == "UTC":
        return "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise DataError(f"{path.name}: unknown time zone '{tz}': use an IANA name such as Asia/Kolkata, "
                        "America/New_York or UTC", path=str(path)) from None
    return tz


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        return True
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        # Blank lines are kept (as empty rows) so that frame positions map to file lines.
        frame = pd.read_csv(path, skip_blank_lines=False, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name}: the file is empty: the first line must be a header such as "
                        "timestamp,open,high,low,close,volume", path=str(path), row=1) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            raise DataError(f"{path.name}: line {m.group(2)}: {m.group(3)} fields where the header has {m.group(1)}: "
                            "every row needs the same fields as the header, separated by commas",
                            path=str(path), row=int(m.group(2))) from None
        raise DataError(f"{path.name}: cannot read the CSV ({str(exc).strip()}): save it as UTF-8 text with a "
                        "header line and comma-separated fields", path=str(path)) from None
    # Trailing empty lines are not rows.
    filled = frame.notna().any(axis=1).to_numpy()
    last = len(filled) - int(filled[::-1].argmax()) if filled.any() else 0
    return frame.iloc[:last]


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types (ArrowInvalid, OSError, ...)
        raise DataError(f"{path.name}: not a readable Parquet file ({exc})", path=str(path)) from None
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()  # a DatetimeIndex becomes a column ('index' when unnamed)
    return frame


# ---- problems, collected over all checks so the earliest row is the one named ------------------

@dataclass
class _Problem:
    pos: int        # frame position; -1: the header / the whole file
    text: str
    count: int


class _Report:
    def __init__(self, path: Path, first_row: int, unit: str):
        self.path, self.first_row, self.unit = path, first_row, unit
        self.problems: list[_Problem] = []
        self.skip: np.ndarray | None = None  # rows already reported as a whole (blank lines)

    def row(self, pos: int) -> int:
        return 1 if pos < 0 else pos + self.first_row

    def where(self, pos: int) -> str:
        return "line 1 (header)" if pos < 0 and self.unit == "line" else (
            "the header" if pos < 0 else f"{self.unit} {self.row(pos)}")

    def add(self, pos: int, text: str, count: int = 1) -> None:
        self.problems.append(_Problem(pos, text, count))

    def add_first(self, mask: np.ndarray, describe) -> None:
        """One problem for the first True in `mask`; describe(pos) -> text."""
        if self.skip is not None:
            mask = mask & ~self.skip
        if mask.any():
            pos = int(mask.argmax())
            self.add(pos, describe(pos), int(mask.sum()))

    def fail(self, pos: int, text: str) -> DataError:
        return DataError(f"{self.path.name}: {self.where(pos)}: {text}", path=str(self.path), row=self.row(pos))

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        ordered = sorted(self.problems, key=lambda p: p.pos)
        first = ordered[0]
        msg = f"{self.path.name}: {self.where(first.pos)}: {first.text}"
        if first.count > 1:
            msg += f" ({first.count - 1} more {self.unit}{'s' if first.count > 2 else ''} like it)"
        others = [f"{self.where(p.pos)}: {p.text}" for p in ordered[1:1 + _MAX_REPORTED]]
        if others:
            msg += ". Also " + "; ".join(others)
            if len(ordered) > 1 + _MAX_REPORTED:
                msg += f"; and {len(ordered) - 1 - _MAX_REPORTED} more kinds of problem"
        raise DataError(msg, path=str(self.path), row=self.row(first.pos))


# ---- columns -----------------------------------------------------------------------------------

def _norm(name: object) -> str:
    return str(name).strip().strip("<>").strip().lower().replace(" ", "_")


class ColumnsError(ValueError):
    """The header lacks a required column, or two columns claim one role."""


def column_roles(labels: Sequence[object], first_is_datetime: bool = False) -> dict[str, int]:
    """Role ('time', or 'date' + 'clock'; 'open', 'high', 'low', 'close'; 'volume' when present) ->
    column position, by the naming rules of `load_bars` (also used by dataset uploads).

    `first_is_datetime`: the first column already holds datetimes (a Parquet index), so it is
    the time column even when its name is not a time name. ColumnsError says what is wrong."""
    labels = list(labels)
    normed = [_norm(label) for label in labels]
    by_norm: dict[str, int] = {}
    for i, name in enumerate(normed):
        by_norm.setdefault(name, i)
    cols: dict[str, int] = {}
    for role, names in _PRICE_NAMES.items():
        found = [i for i, name in enumerate(normed) if name in names]
        if len(found) > 1:
            raise ColumnsError(f"columns {', '.join(repr(str(labels[i])) for i in found)} all look like {role}: "
                               "keep one of them")
        if found:
            cols[role] = found[0]
    combined = [n for n in _TIME_NAMES[:4] if n in by_norm]
    if combined:
        cols["time"] = by_norm[combined[0]]
    elif "date" in by_norm and "time" in by_norm:
        cols["date"], cols["clock"] = by_norm["date"], by_norm["time"]
    elif "time" in by_norm or "date" in by_norm:
        cols["time"] = by_norm["time" if "time" in by_norm else "date"]
    elif labels and (_UNNAMED.match(normed[0]) or first_is_datetime):
        cols["time"] = 0
    missing = [r for r in ("open", "high", "low", "close") if r not in cols]
    if "time" not in cols and "date" not in cols:
        missing.insert(0, "timestamp")
    if missing:
        found = ", ".join(re.sub(r"^Unnamed: \d+$", "(unnamed)", str(c)) for c in labels) or "none"
        raise ColumnsError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                           f"(found: {found}): name them timestamp (or datetime/date/time), open, high, low, "
                           "close and optionally volume, in any case")
    return cols


def _resolve_columns(frame: pd.DataFrame, report: _Report) -> dict[str, object]:
    """Role ('time', 'date', 'clock', 'open', ..., 'volume') -> column label."""
    first_is_datetime = len(frame.columns) > 0 and pd.api.types.is_datetime64_any_dtype(frame.iloc[:, 0].dtype)
    try:
        roles = column_roles(frame.columns, first_is_datetime)
    except ColumnsError as exc:
        raise report.fail(-1, str(exc)) from None
    return {role: frame.columns[i] for role, i in roles.items()}


def _time_column(frame: pd.DataFrame, cols: dict[str, object]) -> pd.Series:
    if "time" in cols:
        return frame[cols["time"]]
    return frame[cols["date"]].astype("string") + " " + frame[cols["clock"]].astype("string")


# ---- timestamps --------------------------------------------------------------------------------

def _tz_name(tzinfo) -> str:
    key = getattr(tzinfo, "key", None) or getattr(tzinfo, "zone", None)
    if key:
        return str(key)
    offset = pd.Timestamp("2000-01-01", tz=tzinfo).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _parse_times(raw: pd.Series, tz: str | None, report: _Report) -> tuple[np.ndarray, str]:
    """int64 UTC ns (_NAT where unusable, each such row reported) and the zone of the data."""
    empty = raw.isna().to_numpy()
    report.add_first(empty, lambda pos: "the timestamp is empty: fill it in or drop the row")
    dtype = raw.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        parsed = pd.DatetimeIndex(raw)
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        parsed = _from_numbers(raw.astype("float64"))
    else:
        parsed = _from_text(raw.astype("string"), tz, report)
        if parsed is None:
            return np.full(len(raw), _NAT, np.int64), tz or "UTC"

    if parsed.tz is None:
        zone = tz or "UTC"
        was_nat = parsed.isna()
        if zone != "UTC":
            parsed = parsed.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
            report.add_first(np.asarray(parsed.isna() & ~was_nat), lambda pos: (
                f"local time '{raw.iloc[pos]}' does not exist or is ambiguous in {zone} (a daylight-saving "
                "change): write timestamps with their UTC offset"))
        else:
            parsed = parsed.tz_localize("UTC")
    else:
        zone = tz or _tz_name(parsed.tz)
    utc = parsed.tz_convert("UTC").tz_localize(None)
    try:
        ns = utc.as_unit("ns").asi8
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        low, high = pd.Timestamp.min.as_unit(utc.unit), pd.Timestamp.max.as_unit(utc.unit)
        bad = np.asarray((utc < low) | (utc > high))
        report.add_first(bad, lambda pos: f"timestamp '{raw.iloc[pos]}' is outside 1678..2261")
        ns = utc.where(~bad).as_unit("ns").asi8
    return ns.copy(), zone


def _from_numbers(values: pd.Series) -> pd.DatetimeIndex:
    """Epoch seconds/ms/us/ns (by magnitude), or YYYYMMDD integers."""
    arr = values.to_numpy(np.float64)
    finite = arr[np.isfinite(arr)]
    if len(finite) and np.all((finite >= 19000101) & (finite <= 21001231) & (finite == np.round(finite))):
        text = pd.Series(arr).map(lambda v: "" if v != v else str(int(v)))
        return pd.DatetimeIndex(pd.to_datetime(text, format="%Y%m%d", errors="coerce"))
    biggest = float(np.abs(finite).max()) if len(finite) else 0.0
    unit = "s" if biggest < 1e11 else "ms" if biggest < 1e14 else "us" if biggest < 1e17 else "ns"
    return pd.DatetimeIndex(pd.to_datetime(arr, unit=unit, utc=True))


def _from_text(text: pd.Series, tz: str | None, report: _Report) -> pd.DatetimeIndex | None:
    """ISO 8601 strings. None when the rows disagree about UTC offsets (reported)."""
    try:
        return pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601"))
    except (ValueError, OverflowError):
        pass
    # Slow path, only for bad files: find unparseable rows, then retry without them.
    utc = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = np.asarray(utc.isna() & text.notna())
    report.add_first(bad, lambda pos: f"cannot read the timestamp '{text.iloc[pos]}': use ISO 8601, e.g. "
                                      "2024-01-25 09:15:00, 2024-01-25T09:15:00+05:30 or 2024-01-25")
    kept = text.where(~bad)
    try:
        return pd.DatetimeIndex(pd.to_datetime(kept, format="ISO8601"))
    except (ValueError, OverflowError):
        pass
    # The rows mix UTC offsets (or offsets and none).
    valid = np.asarray(kept.notna())
    aware = np.asarray(kept.str.contains(_HAS_OFFSET, regex=True, na=False))
    first = int(valid.argmax())
    differs = valid & (aware != aware[first])
    if differs.any():
        pos = int(differs.argmax())
        report.add(pos, f"timestamp '{text.iloc[pos]}' {'has' if aware[pos] else 'has no'} UTC offset but "
                        f"{report.where(first)}'s '{text.iloc[first]}' {'has' if aware[first] else 'has none'}: "
                        "give every timestamp an offset, or none", int(differs.sum()))
        return None
    if tz is not None:
        return pd.DatetimeIndex(utc.where(~bad))
    offsets = kept.str.extract(r"([zZ]|[+-]\d\d(?::?\d\d)?)\s*$")[0]
    changed = np.asarray(valid & (offsets != offsets.iloc[first]).fillna(False))
    pos = int(changed.argmax())
    report.add(pos, f"the UTC offset changes ('{text.iloc[first]}' on {report.where(first)}, '{text.iloc[pos]}' "
                    "here): pass the exchange's time zone, e.g. tz='America/New_York', to load them", 1)
    return None


# ---- prices ------------------------------------------------------------------------------------

def _numeric(col: pd.Series, name: str, report: _Report) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (NaN where empty or not a number) and the mask of non-numbers (reported)."""
    dtype = col.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return col.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(col), bool)
    num = pd.to_numeric(col, errors="coerce")
    text = col.astype("string").str.strip()
    bad = np.asarray((num.isna() & text.notna() & (text != "")).fillna(False), dtype=bool)
    report.add_first(bad, lambda pos: f"{name} '{col.iloc[pos]}' is not a number")
    return num.to_numpy(dtype=np.float64, na_value=np.nan), bad


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def _check_prices(columns: dict[str, tuple[np.ndarray, np.ndarray]], report: _Report) -> None:
    for name in ("open", "high", "low", "close"):
        arr, not_number = columns[name]
        report.add_first(np.isnan(arr) & ~not_number, lambda pos, name=name: (
            f"{name} is empty: fill in the price or drop the row"))
        report.add_first(np.isinf(arr), lambda pos, name=name: f"{name} is infinite: fix the price")
        report.add_first(arr <= 0, lambda pos, name=name, arr=arr: (
            f"{name} is {_fmt(arr[pos])}: prices must be above 0"))
    o, h, lo, c = (columns[k][0] for k in ("open", "high", "low", "close"))
    inverted = h < lo
    report.add_first(inverted, lambda pos: f"high {_fmt(h[pos])} is below low {_fmt(lo[pos])}: swap or fix them")
    top = np.maximum(o, c)
    report.add_first((h < top) & ~inverted, lambda pos: (
        f"high {_fmt(h[pos])} is below max(open, close) {_fmt(top[pos])}: high must be the bar's highest price"))
    bottom = np.minimum(o, c)
    report.add_first((lo > bottom) & ~inverted, lambda pos: (
        f"low {_fmt(lo[pos])} is above min(open, close) {_fmt(bottom[pos])}: low must be the bar's lowest price"))
    volume, not_number = columns["volume"]
    report.add_first(np.isnan(volume) & ~not_number, lambda pos: "volume is empty: use 0 when unknown")
    report.add_first(np.isinf(volume), lambda pos: "volume is infinite: fix it")
    report.add_first(volume < 0, lambda pos: f"volume {_fmt(volume[pos])} is negative: volumes must be >= 0")


def _check_order(ts: np.ndarray, raw: pd.Series, report: _Report) -> None:
    idx = np.flatnonzero(ts != _NAT)
    t = ts[idx]
    step = np.diff(t)
    back = step < 0
    if back.any():
        k = int(back.argmax())
        pos, prev = int(idx[k + 1]), int(idx[k])
        report.add(pos, f"timestamp '{raw.iloc[pos]}' is earlier than {report.where(prev)}'s "
                        f"'{raw.iloc[prev]}': sort the rows by time", int(back.sum()))
    same = step == 0
    if same.any():
        k = int(same.argmax())
        pos, prev = int(idx[k + 1]), int(idx[k])
        report.add(pos, f"duplicate timestamp '{raw.iloc[pos]}' (same as {report.where(prev)}): keep one row "
                        "per bar", int(same.sum()))


# ---- timeframes --------------------------------------------------------------------------------

_TIMEFRAME = re.compile(r"^\s*(\d+)\s*([mhd])\s*$", re.IGNORECASE)
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}


def parse_timeframe(timeframe: str) -> int:
    """'5m' -> 5, '1h' -> 60, '1d' -> 1440: a positive number followed by m, h or d."""
    m = _TIMEFRAME.match(timeframe) if isinstance(timeframe, str) else None
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"unknown timeframe {timeframe!r}: use a positive number and a unit m, h or d, "
                         "e.g. 1m, 5m, 15m, 1h, 1d")
    return int(m.group(1)) * _UNIT_MINUTES[m.group(2).lower()]


def format_timeframe(minutes: int) -> str:
    """The canonical spelling: 1440 -> '1d', 60 -> '1h', 90 -> '90m'."""
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def infer_timeframe(bars: Bars) -> str:
    """The most common spacing of bars within a day ('1m', '5m', ...); '1d' for one bar a day;
    '' when bars are spaced by seconds or there are none."""
    if len(bars) == 0:
        return ""
    day = bars.day
    within = np.diff(bars.ts)[day[1:] == day[:-1]]
    if len(within) == 0:
        return "1d"
    seconds = np.minimum(within // 1_000_000_000, 86_400)
    common = int(np.bincount(seconds).argmax())
    if common == 0 or common % 60:
        return ""
    return format_timeframe(common // 60)


def resample(bars: Bars, timeframe: str) -> Bars:
    """Coarser bars: first open, max high, min low, last close, summed volume per bucket.

    Intraday buckets lie within one trading day, on a grid anchored at the session's first bar
    (NSE 09:15 -> 5m: 09:15, 09:20, ...; 1h: 09:15, 10:15, ...) and are stamped with the bucket's
    start. A day whose first bar is late (a missing 09:15 bar) keeps the usual grid. '1d' gives one
    bar per trading day, stamped at its first bar.
    """
    target = parse_timeframe(timeframe)
    if target > 1440:
        raise ValueError(f"cannot resample to {timeframe!r}: bars never span days; the coarsest timeframe is 1d")
    source_tf = bars.timeframe or infer_timeframe(bars)
    source = parse_timeframe(source_tf) if source_tf else 0
    if source:
        if target < source:
            raise ValueError(f"cannot resample {bars.symbol or 'the data'} from {source_tf} to the finer "
                             f"{timeframe!r}: choose {source_tf} or coarser")
        if target == source:
            return bars
        if target < 1440 and target % source:
            raise ValueError(f"cannot resample {source_tf} bars to {timeframe!r}: {target} minutes is not a "
                             f"multiple of {source}; choose a multiple of {source_tf}")
    out_tf = format_timeframe(target)
    if len(bars) == 0:
        return replace(bars, timeframe=out_tf, _cache={})

    dates, starts = bars.day_bounds()
    if target == 1440:
        group = starts[:-1]
        stamps = bars.ts[group]
    else:
        group, stamps = _intraday_groups(bars, dates, starts, target * _NS_PER_MIN)
    return _aggregate(bars, group, stamps, out_tf)


def _intraday_groups(bars: Bars, dates: np.ndarray, starts: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    local = bars.local_index.tz_localize(None).as_unit("ns").asi8
    tod = local - np.repeat(dates, np.diff(starts)) * _NS_PER_DAY  # local time of day, ns
    first = tod[starts[:-1]]
    values, counts = np.unique(first, return_counts=True)
    usual = values[counts.argmax()]  # the usual session open
    late = first >= usual
    anchor = np.where(late, usual + (first - usual) // step * step, first)
    bucket = (tod - np.repeat(anchor, np.diff(starts))) // step
    change = np.flatnonzero((bucket[1:] != bucket[:-1]) | (np.diff(bars.day) != 0)) + 1
    group = np.concatenate(([0], change)).astype(np.int64)
    bucket_tod = np.repeat(anchor, np.diff(starts))[group] + bucket[group] * step
    stamps = bars.ts[group] - (tod[group] - bucket_tod)
    return group, stamps


def _aggregate(bars: Bars, group: np.ndarray, stamps: np.ndarray, timeframe: str) -> Bars:
    last = np.concatenate((group[1:], [len(bars)])) - 1
    return Bars(bars.symbol, bars.tz, np.ascontiguousarray(stamps, dtype=np.int64),
                np.ascontiguousarray(bars.open[group]), np.maximum.reduceat(bars.high, group),
                np.minimum.reduceat(bars.low, group), np.ascontiguousarray(bars.close[last]),
                np.add.reduceat(bars.volume, group), timeframe)
