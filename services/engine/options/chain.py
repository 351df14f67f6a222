"""Real option chains: per-contract OHLC bars from a Parquet or CSV file next to the underlying's dataset.

Each chain file is validated once and rewritten as a Parquet cache sorted by contract, with row groups
small enough for their statistics to matter; a run then decodes only the expiries, strikes and times it
can touch. `ChainArrays` holds those rows per contract as flat arrays, searched in kernels by `chain_row_nb`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..core.bars import Bars
from ..core.calendar import day_date
from ..core.data import DataError
from .quotes import chain_row_nb  # noqa: F401  (re-exported: the kernel-side lookup of these arrays)
from .symbols import format_strike, format_symbol

__all__ = ["ChainArrays", "load_chain", "chain_cache", "chain_expiries", "chain_row_nb", "CE", "PE"]

log = logging.getLogger(__name__)

CE, PE = 0, 1  # option type codes: the last axis of ChainArrays.contract and the cache's option_type
_TYPE_NAMES = ("CE", "PE")
_FORMAT = 1             # bump when the cache layout or the checks change: every chain is converted again
_ROW_GROUP = 65_536     # rows per cached row group: a few contracts each, so strike/expiry statistics skip
_CHUNK = 100_000        # source rows validated at a time
_SORT_ROWS = 4_000_000  # rows sorted in memory at a time while building the cache (whole expiries)
_STALE_TMP_SECONDS = 3600.0
_NAT = np.iinfo(np.int64).min
_MAX_REPORTED = 3
_HAS_OFFSET = r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d\d(?::?\d\d)?)\s*$"  # as in core/data.py
_REQUIRED = ("timestamp", "expiry", "strike", "option_type", "open", "high", "low", "close")
_OPTIONAL = ("volume", "open_interest")  # 0 when the column is absent
_PRICES = ("open", "high", "low", "close")
_F64 = pa.float64()
_SCHEMA = pa.schema([("expiry", pa.int64()), ("option_type", pa.int8()), ("strike", _F64), ("ts", pa.int64()),
                     *((name, _F64) for name in _PRICES + _OPTIONAL)])
_RAW_SCHEMA = _SCHEMA.append(pa.field("row", pa.int64()))  # + the source line/row, for duplicate messages
_SORT_KEYS = [("expiry", "ascending"), ("option_type", "ascending"), ("strike", "ascending"), ("ts", "ascending")]
_LOADED = ["expiry", "option_type", "strike", "ts", *_PRICES]
_SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq")
_TAG = ".options"
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


# ---- what a run reads ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ChainArrays:
    """The chain rows a run can touch, grouped by contract, as contiguous arrays for kernels.

    K expiries, S strikes, C contracts, M rows. contract[k, s, t] is the id c of the contract with expiry
    expiries[k], strike strikes[s] and type t (CE = 0, PE = 1), or -1 when it has no rows. Its rows are
    ptr[c] .. ptr[c+1]-1, sorted by bar; row i is the underlying's bar index bar[i] with premiums
    open/high/low/close[i] (quote currency). Rows within the run's time span at a time the underlying
    has no bar for are dropped and counted in unmatched_rows.
    """

    expiries: np.ndarray  # int64[K]: day numbers since 1970-01-01, sorted unique
    strikes: np.ndarray   # float64[S]: sorted unique
    contract: np.ndarray  # int64[K, S, 2]
    ptr: np.ndarray       # int64[C + 1]
    bar: np.ndarray       # int64[M]
    open: np.ndarray      # float64[M]
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    strike_step: float    # smallest gap between listed strikes; 0 with fewer than 2
    unmatched_rows: int

    def contract_of(self, k: int, strike: float, option_type: str) -> int:
        """The contract id, or -1 when the chain has no rows for it."""
        s = self._strike_index(strike)
        return -1 if s < 0 or not 0 <= k < len(self.expiries) else int(self.contract[k, s, _type_code(option_type)])

    def rows_of(self, k: int, strike: float, option_type: str) -> slice:
        """Rows of the contract (an empty slice when it has none)."""
        c = self.contract_of(k, strike, option_type)
        return slice(0, 0) if c < 0 else slice(int(self.ptr[c]), int(self.ptr[c + 1]))

    def price_at(self, k: int, strike: float, option_type: str, bar: int, field: str = "close") -> float | None:
        """The contract's `field` (open, high, low or close) at bar index `bar`; None when it has no row then."""
        if field not in _PRICES:
            raise ValueError(f"unknown price field {field!r}: use open, high, low or close")
        rows = self.rows_of(k, strike, option_type)
        i = rows.start + int(np.searchsorted(self.bar[rows], bar))
        if i < rows.stop and self.bar[i] == bar:
            return float(getattr(self, field)[i])
        return None

    def symbol(self, k: int, strike: float, option_type: str, root: str) -> str:
        """The contract's symbol, e.g. NIFTY:2024-01-25:OPT:21500:CE."""
        return format_symbol(root, day_date(int(self.expiries[k])), float(strike), _TYPE_NAMES[_type_code(option_type)])

    def _strike_index(self, strike: float) -> int:
        i = int(np.searchsorted(self.strikes, strike))
        for j in (i, i - 1):  # either neighbour may be the listed strike when `strike` was computed
            if 0 <= j < len(self.strikes) and abs(self.strikes[j] - strike) <= 1e-9 * max(1.0, abs(strike)):
                return j
        return -1


def _type_code(option_type: str) -> int:
    name = str(option_type).strip().upper()
    if name not in _TYPE_NAMES:
        raise ValueError(f"unknown option type {option_type!r}: use CE (call) or PE (put)")
    return _TYPE_NAMES.index(name)


# ---- loading -------------------------------------------------------------------------------------

def load_chain(path: Path, bars: Bars, expiries: np.ndarray, strike_lo: float, strike_hi: float, *,
               cache_dir: Path | None = None) -> ChainArrays:
    """The rows of chain file `path` for `bars`' times, the given expiries (int64 day numbers) and
    strikes in [strike_lo, strike_hi], mapped onto `bars` by exact timestamp.

    The first call converts the file into its cache (see `chain_cache`); every call then reads only
    the row groups and rows that can match, never the whole chain.
    """
    cache = chain_cache(path, bars.tz, cache_dir=cache_dir)
    wanted = np.unique(np.asarray(expiries, dtype=np.int64))
    if not strike_lo <= strike_hi:
        raise ValueError(f"strike range [{strike_lo}, {strike_hi}] is empty: strike_lo must be <= strike_hi")
    if len(bars) == 0 or len(wanted) == 0:
        return _arrays(wanted, bars, _SCHEMA.empty_table())
    field = ds.field
    where = ((field("ts") >= int(bars.ts[0])) & (field("ts") <= int(bars.ts[-1]))
             # The range lets row-group statistics skip other expiries; is_in alone may not.
             & (field("expiry") >= int(wanted[0])) & (field("expiry") <= int(wanted[-1]))
             & field("expiry").isin(pa.array(wanted, pa.int64()))
             & (field("strike") >= float(strike_lo)) & (field("strike") <= float(strike_hi)))
    return _arrays(wanted, bars, _read(cache, where))


def _read(cache: Path, where: ds.Expression) -> pa.Table:
    """The matching rows; row groups whose statistics rule them out are never decoded."""
    return ds.dataset(cache, format="parquet").to_table(columns=_LOADED, filter=where)


def _arrays(wanted: np.ndarray, bars: Bars, table: pa.Table) -> ChainArrays:
    cols = {name: table.column(name).to_numpy() for name in _LOADED}
    ts = cols["ts"]
    bar = np.searchsorted(bars.ts, ts)
    matched = bar < len(bars)
    matched[matched] = bars.ts[bar[matched]] == ts[matched]
    cols = {name: arr[matched] for name, arr in cols.items()}
    bar = bar[matched]
    strikes = np.unique(cols["strike"]).astype(np.float64)
    k = np.searchsorted(wanted, cols["expiry"])
    s = np.searchsorted(strikes, cols["strike"])
    cell = (k * len(strikes) + s) * 2 + cols["option_type"].astype(np.int64)
    order = np.lexsort((bar, cell))  # the cache is sorted so, but a threaded scan may return batches out of order
    cell, bar = cell[order], bar[order]
    cells, starts = np.unique(cell, return_index=True)
    contract = np.full(len(wanted) * len(strikes) * 2, -1, np.int64)
    contract[cells] = np.arange(len(cells))
    gaps = np.diff(strikes)
    return ChainArrays(
        expiries=np.ascontiguousarray(wanted), strikes=strikes, contract=contract.reshape(len(wanted), len(strikes), 2),
        ptr=np.append(starts, len(cell)).astype(np.int64), bar=np.ascontiguousarray(bar, dtype=np.int64),
        **{name: np.ascontiguousarray(cols[name][order], dtype=np.float64) for name in _PRICES},
        strike_step=float(gaps.min()) if len(gaps) else 0.0, unmatched_rows=int(len(matched) - matched.sum()))


def chain_expiries(path: Path, tz: str, *, cache_dir: Path | None = None) -> np.ndarray:
    """int64 day numbers of every expiry the chain lists, sorted; read from the cache's footer."""
    meta = pq.read_schema(chain_cache(path, tz, cache_dir=cache_dir)).metadata or {}
    return np.array(json.loads(meta[b"hindsight.expiries"]), dtype=np.int64)


# ---- the cache -----------------------------------------------------------------------------------

def chain_cache(path: Path, tz: str, *, cache_dir: Path | None = None) -> Path:
    """The validated Parquet copy of chain file `path`, built on first use; naive times are in `tz`.

    Parquet sources are converted too, not read in place: the checks then run once, and the copy is
    sorted by (expiry, option_type, strike, timestamp) in row groups of 64k rows with statistics, which
    a user's file need not be. The copy is <cache_dir>/options-<key>.parquet (cache_dir defaults to
    <SYMBOL>/ beside the file); the key changes with the file's name, size and mtime, `tz` and _FORMAT.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"option chain file '{path}' does not exist")
    directory = Path(cache_dir) if cache_dir is not None else path.parent / _symbol_of(path)
    final = directory / f"options-{_key(path, tz)}.parquet"
    if final.is_file():
        return final
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(final, threading.Lock())
    with lock:  # one conversion per file in this process; other processes may race, see _build
        if not final.is_file():
            _build(path, tz, final)
    return final


def _symbol_of(path: Path) -> str:
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name[: -len(_TAG)] if name.lower().endswith(_TAG) else name


def _key(path: Path, tz: str) -> str:
    st = path.stat()
    ident = {"file": path.name, "size": st.st_size, "mtime": st.st_mtime_ns, "tz": tz, "format": _FORMAT}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def _build(src: Path, tz: str, final: Path) -> None:
    started = time.perf_counter()
    final.parent.mkdir(parents=True, exist_ok=True)
    tag = f".tmp-{final.stem}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    raw, tmp = final.parent / f"{tag}-raw.parquet", final.parent / f"{tag}.parquet"
    try:
        problems = _Problems(src)
        counts = _validate(src, tz, raw, problems)
        _sort(raw, tmp, counts, problems, tz)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)  # atomic: readers see no cache or a whole one; a racing twin's is identical
    finally:
        raw.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    log.info("converted option chain %s (%d rows) in %.2fs", src.name, sum(counts.values()),
             time.perf_counter() - started)
    _sweep(final)


def _validate(src: Path, tz: str, raw: Path, problems: _Problems) -> dict[int, int]:
    """Pass 1: check every row, writing the normalized rows (unsorted) to `raw`. Rows per expiry."""
    counts: dict[int, int] = {}
    cols: dict[str, object] | None = None
    with pq.ParquetWriter(raw, _RAW_SCHEMA) as writer:
        for frame in _chunks(src, problems):
            if cols is None:
                cols = _columns(frame, problems)
            table = _normalize(frame, cols, tz, problems)
            if problems.kinds or table is None:
                continue  # keep counting problems; nothing more will be written
            writer.write_table(table)
            values, n = np.unique(table.column("expiry").to_numpy(), return_counts=True)
            for e, c in zip(values.tolist(), n.tolist()):
                counts[e] = counts.get(e, 0) + c
    problems.raise_if_any()
    if not counts:
        raise DataError(f"{src.name}: no data rows: add one row per contract and bar after the header",
                        path=str(src))
    return counts


def _sort(raw: Path, tmp: Path, counts: dict[int, int], problems: _Problems, tz: str) -> None:
    """Pass 2: whole expiries at a time, so memory is bounded by _SORT_ROWS, not by the chain."""
    groups: list[list[int]] = [[]]
    size = 0
    for e in sorted(counts):
        if groups[-1] and size + counts[e] > _SORT_ROWS:
            groups.append([])
            size = 0
        groups[-1].append(e)
        size += counts[e]
    schema = _SCHEMA.with_metadata({"hindsight.format": str(_FORMAT), "hindsight.source": raw.name,
                                    "hindsight.expiries": json.dumps(sorted(counts))})
    source = ds.dataset(raw, format="parquet")
    duplicates: list = []
    with pq.ParquetWriter(tmp, schema) as writer:
        for group in groups:
            table = source.to_table(filter=ds.field("expiry").isin(pa.array(group, pa.int64()))).sort_by(_SORT_KEYS)
            _find_duplicates(table, duplicates)
            if not duplicates:
                writer.write_table(table.drop_columns(["row"]).replace_schema_metadata(schema.metadata),
                                   row_group_size=_ROW_GROUP)
    if duplicates:
        raise _duplicate_error(duplicates, problems, tz)


def _find_duplicates(table: pa.Table, found: list) -> None:
    """Appends (row, other row, expiry, type, strike, ts) for each row equal in contract and time to the last."""
    e, t, s, ts, row = (table.column(name).to_numpy() for name in ("expiry", "option_type", "strike", "ts", "row"))
    same = np.flatnonzero((e[1:] == e[:-1]) & (t[1:] == t[:-1]) & (s[1:] == s[:-1]) & (ts[1:] == ts[:-1]))
    found.extend((int(min(row[i], row[i + 1])), int(max(row[i], row[i + 1])), int(e[i]), int(t[i]), float(s[i]),
                  int(ts[i])) for i in same[: _MAX_REPORTED + 1])
    if len(same) > _MAX_REPORTED + 1:
        found.extend([None] * (len(same) - _MAX_REPORTED - 1))  # counted, not described


def _duplicate_error(found: list, problems: _Problems, tz: str) -> DataError:
    described = sorted(d for d in found if d is not None)
    first, second, e, t, s, ts = described[0]
    when = pd.Timestamp(ts, tz="UTC").tz_convert(tz).isoformat()
    msg = (f"{problems.path.name}: {problems.unit}s {first} and {second}: two rows for {day_date(e).isoformat()} "
           f"{format_strike(s)} {_TYPE_NAMES[t]} at {when}: keep one row per contract and bar")
    if len(found) > 1:
        msg += f" ({len(found) - 1} more duplicate{'s' if len(found) > 2 else ''})"
    return DataError(msg, path=str(problems.path), row=first)


def _sweep(keep: Path) -> None:
    """Remove older caches of this chain and temp files abandoned by crashed conversions."""
    try:
        ours = keep.stat().st_mtime_ns
    except OSError:
        return
    now = time.time()
    for other in keep.parent.iterdir():
        try:
            st = other.stat()
            if other.name.startswith("options-") and other != keep and st.st_mtime_ns <= ours:
                other.unlink()
            elif other.name.startswith(".tmp-options-") and now - st.st_mtime > _STALE_TMP_SECONDS:
                other.unlink()
        except OSError:
            pass  # another process got there first


# ---- reading and checking the source -------------------------------------------------------------

class _Problems:
    """Problems found chunk by chunk: per kind, the first line (or row) and how many share it."""

    def __init__(self, path: Path):
        self.path = path
        self.parquet = path.name.lower().endswith((".parquet", ".pq")) or _has_parquet_magic(path)
        self.unit, self.first_row = ("row", 1) if self.parquet else ("line", 2)  # CSV line 1 is the header
        self.kinds: dict[str, list] = {}  # kind -> [row, text, count]

    def add(self, kind: str, rows: np.ndarray, mask: np.ndarray, describe: Callable[[int], str]) -> None:
        """Records rows[mask]; describe(position in the chunk) words the first of them."""
        if mask.any():
            i = int(mask.argmax())
            entry = self.kinds.setdefault(kind, [int(rows[i]), "", 0])
            if not entry[1]:
                entry[1] = describe(i)
            entry[2] += int(mask.sum())

    def header(self, text: str) -> DataError:
        where = "the columns" if self.parquet else "line 1 (header)"
        return DataError(f"{self.path.name}: {where}: {text}", path=str(self.path), row=None if self.parquet else 1)

    def raise_if_any(self) -> None:
        if not self.kinds:
            return
        ordered = sorted(self.kinds.values(), key=lambda p: p[0])
        row, text, count = ordered[0]
        msg = f"{self.path.name}: {self.unit} {row}: {text}"
        if count > 1:
            msg += f" ({count - 1} more {self.unit}{'s' if count > 2 else ''} like it)"
        others = [f"{self.unit} {r}: {t}" for r, t, _ in ordered[1:1 + _MAX_REPORTED]]
        if others:
            msg += ". Also " + "; ".join(others)
            if len(ordered) > 1 + _MAX_REPORTED:
                msg += f"; and {len(ordered) - 1 - _MAX_REPORTED} more kinds of problem"
        raise DataError(msg, path=str(self.path), row=row)


def _has_parquet_magic(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def _chunks(src: Path, problems: _Problems) -> Iterator[pd.DataFrame]:
    """The source in frames of _CHUNK rows, indexed by row position in the file (blank lines included)."""
    where = str(src)
    if problems.parquet:
        try:
            batches = pq.ParquetFile(src).iter_batches(batch_size=_CHUNK)
            start = 0
            for batch in batches:
                # ignore_metadata: a stored index comes back as a plain column, as the header names it.
                frame = batch.to_pandas(ignore_metadata=True, date_as_object=False)
                frame.index = pd.RangeIndex(start, start + len(frame))
                start += len(frame)
                yield frame
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{src.name}: not a readable Parquet file ({exc})", path=where) from None
        return
    try:
        # Blank lines are kept (as empty rows) so that row positions map to file lines.
        with pd.read_csv(src, skip_blank_lines=False, chunksize=_CHUNK) as reader:
            yield from reader
    except pd.errors.EmptyDataError:
        raise DataError(f"{src.name}: the file is empty: the first line must be a header such as "
                        + ",".join(_REQUIRED + _OPTIONAL), path=where, row=1) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{src.name}: cannot read the CSV ({str(exc).strip()}): save it as UTF-8 text with a "
                        "header line and the same comma-separated fields on every line", path=where) from None


def _columns(frame: pd.DataFrame, problems: _Problems) -> dict[str, object]:
    """Column name -> the frame's label for it; names are matched ignoring case and surrounding spaces."""
    labels: dict[str, list] = {}
    for label in frame.columns:
        labels.setdefault(str(label).strip().lower().replace(" ", "_"), []).append(label)
    twice = [name for name in _REQUIRED + _OPTIONAL if len(labels.get(name, ())) > 1]
    if twice:
        raise problems.header(f"column{'s' if len(twice) > 1 else ''} {', '.join(twice)} appear more than once "
                              "(names ignore case): keep one of each")
    missing = [name for name in _REQUIRED if name not in labels]
    if missing:
        found = ", ".join(str(c) for c in frame.columns) or "none"
        raise problems.header(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (found: {found}): "
                              f"an option chain needs {', '.join(_REQUIRED)} and optionally "
                              f"{', '.join(_OPTIONAL)}, in any case")
    return {name: labels[name][0] for name in _REQUIRED + _OPTIONAL if name in labels}


def _normalize(frame: pd.DataFrame, cols: dict[str, object], tz: str, problems: _Problems) -> pa.Table | None:
    """One chunk checked and in the cache's columns; problems are recorded, rows with them kept."""
    filled = frame.notna().any(axis=1).to_numpy()
    frame = frame[filled]  # blank lines carry nothing; they only shift line numbers
    if len(frame) == 0:
        return None
    rows = frame.index.to_numpy(np.int64) + problems.first_row
    out = {"expiry": _expiries(frame[cols["expiry"]], rows, problems),
           "option_type": _option_types(frame[cols["option_type"]], rows, problems),
           "strike": _numbers(frame[cols["strike"]], "strike", rows, problems),
           "ts": _timestamps(frame[cols["timestamp"]], rows, tz, problems)}
    strike = out["strike"]
    problems.add("strike<=0", rows, strike <= 0, lambda i: f"strike {strike[i]:.10g} is not above 0: fix the strike")
    for name in _PRICES + _OPTIONAL:
        if name in cols:
            values = out[name] = _numbers(frame[cols[name]], name, rows, problems)
            problems.add(f"{name}<0", rows, values < 0, lambda i, name=name, v=values: (
                f"{name} {v[i]:.10g} is negative: {'prices' if name in _PRICES else name + 's'} are >= 0"))
        else:
            out[name] = np.zeros(len(frame), np.float64)
    high, low = out["high"], out["low"]
    problems.add("high<low", rows, high < low, lambda i: f"high {high[i]:.10g} is below low {low[i]:.10g}: "
                                                         "swap or fix them")
    out["row"] = rows
    return pa.Table.from_pydict(out, schema=_RAW_SCHEMA)


def _numbers(col: pd.Series, name: str, rows: np.ndarray, problems: _Problems) -> np.ndarray:
    """float64; NaN where a value is missing or not a number (recorded)."""
    bad = np.zeros(len(col), bool)
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        num = pd.to_numeric(col, errors="coerce")
        text = col.astype("string").str.strip()
        bad = (num.isna() & text.notna() & (text != "")).to_numpy(dtype=bool, na_value=False)
        problems.add(f"{name}:text", rows, bad, lambda i: f"{name} '{col.iloc[i]}' is not a number: write it "
                                                          "with digits and a decimal point, e.g. 21500 or 102.35")
        values = num.to_numpy(dtype=np.float64, na_value=np.nan)
    problems.add(f"{name}:empty", rows, np.isnan(values) & ~bad, lambda i: f"{name} is empty: fill it in or drop "
                                                                          "the row")
    problems.add(f"{name}:inf", rows, np.isinf(values), lambda i: f"{name} is infinite: fix it")
    return values


def _factorized(col: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(codes, distinct values): a column of a few expiries or types over many rows is parsed once per value."""
    codes, uniques = pd.factorize(col)
    return codes, pd.Series(uniques)


def _option_types(col: pd.Series, rows: np.ndarray, problems: _Problems) -> np.ndarray:
    codes, uniques = _factorized(col)
    names = uniques.astype("string").str.strip().str.upper()
    known = np.append(np.where(names == "CE", CE, np.where(names == "PE", PE, -1)), -1)  # [-1]: empty cells
    out = known[codes]
    problems.add("type:empty", rows, codes < 0, lambda i: "option_type is empty: write CE or PE")
    problems.add("type:bad", rows, (out < 0) & (codes >= 0), lambda i: (
        f"option_type '{col.iloc[i]}' is not CE or PE: write CE for a call and PE for a put"))
    return out.astype(np.int8)


def _expiries(col: pd.Series, rows: np.ndarray, problems: _Problems) -> np.ndarray:
    """int64 day numbers since 1970-01-01; _NAT where unusable (recorded)."""
    codes, uniques = _factorized(col)
    if pd.api.types.is_datetime64_any_dtype(uniques.dtype):
        stamps = pd.DatetimeIndex(uniques)
        stamps = stamps.tz_localize(None) if stamps.tz is not None else stamps  # the local date
        days = stamps.values.astype("datetime64[D]").astype(np.int64)
    else:
        text = uniques.astype("string").str.strip()
        shaped = text.str.fullmatch(r"\d{4}-\d\d-\d\d(?:[ T]00:00(?::00)?)?").to_numpy(dtype=bool, na_value=False)
        parsed = pd.to_datetime(text.str.slice(0, 10).where(shaped), format="%Y-%m-%d", errors="coerce")
        days = np.where(parsed.isna(), _NAT, parsed.to_numpy().astype("datetime64[D]").astype(np.int64))
    out = np.append(days, _NAT)[codes]
    problems.add("expiry:empty", rows, codes < 0, lambda i: "expiry is empty: write the expiry date as YYYY-MM-DD")
    problems.add("expiry:bad", rows, (out == _NAT) & (codes >= 0), lambda i: (
        f"cannot read the expiry '{col.iloc[i]}': write it as YYYY-MM-DD, e.g. 2024-01-25"))
    return out


def _timestamps(col: pd.Series, rows: np.ndarray, tz: str, problems: _Problems) -> np.ndarray:
    """int64 UTC ns; _NAT where unusable (recorded). Times without a UTC offset are exchange-local (`tz`)."""
    problems.add("ts:empty", rows, col.isna().to_numpy(), lambda i: "timestamp is empty: fill it in or drop the row")
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return _utc_ns(pd.DatetimeIndex(col), col, rows, tz, problems)
    text = col.astype("string").str.strip()
    try:
        return _utc_ns(pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601")), col, rows, tz, problems)
    except (ValueError, OverflowError):
        pass
    # Unreadable values, or offsets that differ between rows (daylight saving): parse by kind.
    out = np.full(len(text), _NAT, np.int64)
    aware = text.str.contains(_HAS_OFFSET, regex=True).to_numpy(dtype=bool, na_value=False)
    for mask, utc in ((aware, True), (~aware, False)):
        if mask.any():
            parsed = pd.DatetimeIndex(pd.to_datetime(text[mask], format="ISO8601", errors="coerce", utc=utc))
            out[mask] = _utc_ns(parsed, col[mask], rows[mask], tz, problems)
    unread = (out == _NAT) & text.notna().to_numpy(dtype=bool, na_value=False)
    problems.add("ts:bad", rows, unread, lambda i: (f"cannot read the timestamp '{col.iloc[i]}': use ISO 8601, e.g. "
                                                    "2024-01-25 09:15:00 or 2024-01-25T09:15:00+05:30"))
    return out


def _utc_ns(parsed: pd.DatetimeIndex, col: pd.Series, rows: np.ndarray, tz: str, problems: _Problems) -> np.ndarray:
    if parsed.tz is None:
        was = np.asarray(parsed.isna())
        parsed = parsed.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        problems.add("ts:dst", rows, np.asarray(parsed.isna()) & ~was, lambda i: (
            f"local time '{col.iloc[i]}' does not exist or is ambiguous in {tz} (a daylight-saving change): "
            "write timestamps with their UTC offset"))
    utc = parsed.tz_convert("UTC").tz_localize(None)
    outside = np.asarray((utc < pd.Timestamp.min) | (utc > pd.Timestamp.max))
    problems.add("ts:range", rows, outside, lambda i: f"timestamp '{col.iloc[i]}' is outside the years 1678..2261")
    return utc.where(~outside).as_unit("ns").asi8.copy()
