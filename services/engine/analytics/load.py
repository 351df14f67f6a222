"""A run's results as one compact table: `<run folder>/analytics/table.npz`.

What analytics read of a finished run: its daily equity (metadata.json's daily summaries) and
its closed trades (option runs: positions) from the day files, column by column, with what the
scatters and groups need already derived (exchange-local entry hour, minute and weekday; the
index of the day each closed on; P&L as a percentage of the entry value). Reading ~2,500
gzipped day files of a ten-year run costs a few hundred milliseconds; the table costs a few.

It is written once per run, on a background thread while the run's end is being written
(`after_run`, called by `JobManager._end`), or on first use for runs that lack it
(`ensure_table`). The folder lives in the run's: it goes when the run is deleted or expires.
Writes are atomic and unsynced (it can always be rebuilt); a table that does not load, or of
another format version, is rebuilt.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import numpy as np
import orjson
from isal import igzip

from services.engine.core.gcpause import gc_paused
from storage import dayfiles
from storage.atomic import write_atomic
from storage.errors import NotFound

log = logging.getLogger("hindsight.engine.analytics")

ANALYTICS_DIR = "analytics"  # one of storage.store.CACHE_DIRS: not counted as stored bytes
TABLE_NAME = "table.npz"
FORMAT = 1
SIDE_LONG, SIDE_SHORT, SIDE_OPTIONS = 0, 1, 2
SIDE_NAMES = ("long", "short", "options")
DEFAULT_CAPITAL = 100_000.0  # as core.spec.DEFAULT_CAPITAL (not imported: it pulls the whole core)


class ResultsUnavailable(Exception):
    """The run's stored results cannot be read (deleted meanwhile, or files missing)."""


@dataclass
class RunTable:
    """A run's daily equity and closed trades (option runs: positions), in exit order."""

    days: np.ndarray            # datetime64[D], ascending
    equity: np.ndarray          # float64, at each day's close
    initial_capital: float
    info: dict                  # metrics, strategy_name, symbol, options (bool)
    t_day: np.ndarray           # int32: index into days of the day the trade closed
    t_id: np.ndarray            # S: trade id (option runs: position id)
    t_entry: np.ndarray         # S: entry time, ISO 8601 with offset
    t_exit: np.ndarray          # S
    t_duration: np.ndarray      # float64 minutes
    t_pnl: np.ndarray           # float64
    t_return: np.ndarray        # float64 percent of the entry value
    t_hour: np.ndarray          # int8, exchange-local hour of the entry
    t_minute: np.ndarray        # int16, minute of the day of the entry
    t_weekday: np.ndarray       # int8, 0 = Monday
    t_side: np.ndarray          # int8, SIDE_*
    t_reason: np.ndarray        # int32 codes into reasons
    reasons: np.ndarray         # S
    t_node: np.ndarray          # int32 codes into nodes
    nodes: np.ndarray           # S

    @property
    def trades(self) -> int:
        return len(self.t_pnl)


_ARRAYS = ("days", "equity", "t_day", "t_id", "t_entry", "t_exit", "t_duration", "t_pnl", "t_return", "t_hour",
           "t_minute", "t_weekday", "t_side", "t_reason", "reasons", "t_node", "nodes")


def analytics_dir(store, backtest_id: str) -> Path:
    return Path(store.backtest_dir(backtest_id)) / ANALYTICS_DIR


def write_into_run(store, backtest_id: str, name: str, data: bytes) -> bool:
    """Write a file of the run's analytics folder atomically (not synced: it can be rebuilt).
    False when the run is gone: its folder is never made again (no parents are created)."""
    folder = analytics_dir(store, backtest_id)
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except FileNotFoundError:
        return False
    try:
        write_atomic(folder / name, data, fsync=False)
    except FileNotFoundError:
        return False
    return True


# ---- reading and writing the table -----------------------------------------------------------

def table_bytes(table: RunTable) -> bytes:
    buf = io.BytesIO()
    meta = {"format": FORMAT, "initial_capital": table.initial_capital, "info": table.info}
    arrays = {name: getattr(table, name) for name in _ARRAYS}
    arrays["days"] = table.days.astype("datetime64[D]").astype(np.int64)
    np.savez(buf, meta=np.frombuffer(orjson.dumps(meta), np.uint8), **arrays)
    return buf.getvalue()


def read_table(path: Path) -> RunTable | None:
    """The table at `path`; None when there is none, it is of another format or unreadable."""
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # (np.load leaks a torn file's)
            meta = orjson.loads(z["meta"].tobytes())
            if meta.get("format") != FORMAT:
                return None
            arrays = {name: z[name] for name in _ARRAYS}
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - torn by a power cut (written unsynced), say: it is rebuilt
        log.warning("analytics table %s is unreadable (%s): rebuilt", path, exc)
        return None
    arrays["days"] = arrays["days"].astype("datetime64[D]")
    return RunTable(initial_capital=float(meta["initial_capital"]), info=meta["info"], **arrays)


# ---- building it from the stored results -----------------------------------------------------

def _initial_capital(meta: dict) -> float:
    for value in ((meta.get("metrics") or {}).get("initial_capital"),
                  (meta.get("overall_summary") or {}).get("initial_capital"),
                  (meta.get("config") or {}).get("initial_capital"),
                  ((meta.get("config") or {}).get("strategy") or {}).get("execution", {}).get("initial_capital")):
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        if v > 0 and np.isfinite(v):
            return v
    return DEFAULT_CAPITAL


def _has_legs(config: dict | None) -> bool:
    entries = ((config or {}).get("strategy") or {}).get("entries") or []
    return any(e.get("legs") for e in entries if isinstance(e, dict))


def _info(meta: dict, options: bool) -> dict:
    config = meta.get("config") or {}
    return {"metrics": meta.get("metrics"), "options": options, "symbol": config.get("symbol", ""),
            "strategy_name": (config.get("strategy") or {}).get("name", "")}


def _strings(values: list[str]) -> np.ndarray:
    """str values as a NumPy bytes array (UTF-8)."""
    if not values:
        return np.empty(0, "S1")
    try:
        return np.array(values, dtype="S")
    except UnicodeEncodeError:
        return np.array([v.encode("utf-8") for v in values], dtype="S")


def _categories(values: list) -> tuple[np.ndarray, np.ndarray]:
    """(codes, names) of a column of a few distinct strings; codes in name order."""
    index: dict = {}
    codes = np.fromiter((index.setdefault(v or "", len(index)) for v in values), np.int32, len(values))
    names = sorted(index)
    remap = np.empty(len(index), np.int32)
    remap[[index[n] for n in names]] = np.arange(len(names), dtype=np.int32)
    return remap[codes], _strings([str(n) for n in names])


def _local_fields(times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hour, minute of day, weekday) of exchange-local ISO 8601 times ("2024-01-02T09:20:00+05:30")."""
    n = len(times)
    if n == 0:
        return np.empty(0, np.int8), np.empty(0, np.int16), np.empty(0, np.int8)
    width = times.dtype.itemsize
    m = np.ascontiguousarray(times).view(np.uint8).reshape(n, width) if width >= 16 else None
    digits = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15)
    regular = m is not None and all((m[:, k] == ord(c)).all() for k, c in ((4, "-"), (7, "-"), (10, "T"), (13, ":"))) \
        and all(((m[:, k] - 48) < 10).all() for k in digits)  # (uint8: below "0" wraps to >= 10)
    if not regular:
        from datetime import datetime

        parsed = [datetime.fromisoformat(t.decode()) for t in times]
        hour = np.array([p.hour for p in parsed], np.int8)
        minute = np.array([p.hour * 60 + p.minute for p in parsed], np.int16)
        return hour, minute, np.array([p.weekday() for p in parsed], np.int8)

    def num(a: int, b: int) -> np.ndarray:
        out = np.zeros(n, np.int64)
        for k in range(a, b):
            out = out * 10 + (m[:, k] - 48)
        return out

    year, month, day, hour, minute = num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16)
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    date = months.astype("datetime64[D]") + (day - 1)
    weekday = (date.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    return hour.astype(np.int8), (hour * 60 + minute).astype(np.int16), weekday.astype(np.int8)


def _minutes_between(entry: list[str], exit_: list[str]) -> np.ndarray:
    import pandas as pd

    if not entry:
        return np.empty(0)
    a = pd.to_datetime(pd.Series(entry), utc=True, format="ISO8601")
    b = pd.to_datetime(pd.Series(exit_), utc=True, format="ISO8601")
    return ((b - a).dt.total_seconds() / 60.0).to_numpy(np.float64)


def _trades_files(paths: list[str]):
    """Each day's trades_daily document, in order. (Reading ahead on other threads was slower:
    measured, 188 ms against 135 ms for a decade's 2,463 files.)"""
    for path in paths:
        try:
            with open(path, "rb") as fh:
                doc = orjson.loads(igzip.decompress(fh.read()))
        except FileNotFoundError:
            raise ResultsUnavailable(f"the results of {os.path.basename(os.path.dirname(path))} are missing") from None
        yield doc if isinstance(doc, dict) else {}


def _floats(values: list) -> np.ndarray:
    """Numbers or decimal strings as float64 (null: NaN, as the day files write NaN)."""
    try:
        return np.fromiter(map(float, values), np.float64, len(values))
    except (TypeError, ValueError):
        return np.array([float(v) if v not in (None, "") else np.nan for v in values], np.float64)


def _columns(items: list[dict], keys: dict[str, object]) -> dict[str, list]:
    """Fields of every item, column by column (`keys`: name → default where an item lacks it):
    one pass over the items when they all have every field."""
    if not items:
        return {k: [] for k in keys}
    try:
        return dict(zip(keys, map(list, zip(*map(itemgetter(*keys), items)))))
    except KeyError:
        return {k: [x.get(k, default) for x in items] for k, default in keys.items()}


def build_table(store, backtest_id: str, meta: dict | None = None) -> RunTable:
    """The table from the run's metadata (metadata.json's, unless given) and its day files (its
    published days: the daily summaries')."""
    try:
        meta = meta if meta is not None else store.read_metadata(backtest_id)
        root = os.fspath(store.backtest_dir(backtest_id))
    except (NotFound, FileNotFoundError, ValueError) as exc:
        raise ResultsUnavailable(f"the run's results are not stored ({exc})") from None
    rows = [r for r in (meta.get("daily_summaries") or []) if isinstance(r, dict)]
    dates = [dayfiles.check_date(str(r["date"])) for r in rows]
    equity = _floats([r["equity"] for r in rows])
    config = meta.get("config") or {}
    # An option run (its strategy opens legs; else, its day files list positions): one point
    # per position.
    options: bool | None = _has_legs(config) if config.get("strategy") else None
    per_day, items, day, doc = [], [], [], {}
    with gc_paused():
        for doc in _trades_files([os.path.join(root, dayfiles.DAYS_DIR, d, dayfiles.TRADES_DAILY) for d in dates]):
            if options is None:
                options = "positions" in doc
            day = [x for x in doc.get("positions" if options else "trades") or [] if isinstance(x, dict)]
            items += day
            per_day.append(len(day))
        if options:
            c = _columns(items, {"entry_time": "", "exit_time": "", "pnl": 0.0, "entry_premium": 0.0,
                                 "position_id": "", "exit_reason": "", "entry_trigger": ""})
            pnl = _floats(c["pnl"])
            premium = np.abs(_floats(c["entry_premium"]))
            ret = np.divide(100.0 * pnl, premium, out=np.zeros_like(pnl), where=premium > 0)
            duration = _minutes_between(c["entry_time"], c["exit_time"])
            side = np.full(len(items), SIDE_OPTIONS, np.int8)
            ids = c["position_id"]
        else:
            c = _columns(items, {"entry_time": "", "exit_time": "", "pnl": 0.0, "quantity": 0.0, "entry_price": 0.0,
                                 "duration_minutes": 0.0, "side": "buy", "trade_id": "", "exit_reason": "",
                                 "entry_trigger": ""})
            pnl = _floats(c["pnl"])
            notional = _floats(c["quantity"]) * _floats(c["entry_price"])
            # P&L over the entry notional; the file's rounded pnl_percent where that is unknown.
            known = notional > 0
            ret = np.where(known, 100.0 * pnl / np.where(known, notional, 1.0),
                           0.0 if known.all() else _floats([x.get("pnl_percent") or 0.0 for x in items]))
            duration = _floats(c["duration_minutes"])
            side = (np.array(c["side"], dtype=object) == "sell").astype(np.int8)  # SIDE_LONG 0, SIDE_SHORT 1
            ids = c["trade_id"]
        entry, exit_ = c["entry_time"], c["exit_time"]
        t_entry = _strings(entry)
        hour, minute, weekday = _local_fields(t_entry)
        t_reason, reasons = _categories(c["exit_reason"])
        t_node, nodes = _categories(c["entry_trigger"])
        t_id, t_exit = _strings(ids), _strings(exit_)
        # The day files' objects go now, by reference counting: left to the collector, its first
        # pass after the pause would walk every one of them (~0.15 s for 50 k trades).
        del items, day, doc, entry, exit_, ids, c
        return RunTable(
            days=np.array(dates, dtype="datetime64[D]"), equity=equity, initial_capital=_initial_capital(meta),
            info=_info(meta, bool(options)),
            t_day=np.repeat(np.arange(len(dates), dtype=np.int32), per_day), t_id=t_id, t_entry=t_entry,
            t_exit=t_exit, t_duration=duration, t_pnl=pnl, t_return=ret, t_hour=hour, t_minute=minute,
            t_weekday=weekday, t_side=side, t_reason=t_reason, reasons=reasons, t_node=t_node, nodes=nodes)


# ---- once per run ------------------------------------------------------------------------------

_STRIPES = [threading.Lock() for _ in range(64)]
_background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analytics-table")


def run_lock(backtest_id: str) -> threading.Lock:
    """The lock a run's table (and cached answers) are made under: one of a fixed set."""
    return _STRIPES[zlib.crc32(backtest_id.encode("utf-8", "surrogatepass")) % len(_STRIPES)]


def ensure_table(store, backtest_id: str, meta: dict | None = None) -> tuple[RunTable, bool]:
    """The run's table, built (see build_table) and written first when it has none. Returns
    (table, built). `ResultsUnavailable` when the run's results cannot be read. Callers at the
    same time wait for one build."""
    path = analytics_dir(store, backtest_id) / TABLE_NAME
    with run_lock(backtest_id):
        table = read_table(path)
        if table is not None:
            return table, False
        table = build_table(store, backtest_id, meta)
        write_into_run(store, backtest_id, TABLE_NAME, table_bytes(table))
        return table, True


def clear(store, backtest_id: str) -> None:
    """Remove what the run's analytics folder holds (answers, table)."""
    folder = analytics_dir(store, backtest_id)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        try:
            os.unlink(folder / name)
        except FileNotFoundError:
            pass


def after_run(store, backtest_id: str, job) -> None:
    """A run is ending (`JobManager._end`: its day files are all written; its terminal event,
    metadata.json and index row are next): anything analytics kept of an earlier end goes (a
    repaired log ends a run again) and its table is built in the background from the job's
    daily summaries and metrics (metadata.json's contents) and its day files, mostly while the
    end's own syncs and writes go on. A GetAnalytics meanwhile waits for that build instead of
    doing it again. Never raises; never delays the run."""
    try:
        from google.protobuf import json_format

        meta = {"daily_summaries": list(job.daily), "metrics": job.metrics, "overall_summary": job.summary,
                "config": json_format.MessageToDict(job.config, preserving_proto_field_name=True)}
    except Exception:  # analytics must never break a run's end
        log.exception("analytics of backtest %s: the job's results are unreadable", backtest_id)
        meta = None

    def build() -> None:
        try:
            ensure_table(store, backtest_id, meta)
        except (ResultsUnavailable, NotFound, OSError, ValueError) as exc:  # deleted meanwhile, say
            log.info("no analytics table for backtest %s: %s", backtest_id, exc)
        except Exception:  # analytics must never break a run's end
            log.exception("analytics table of backtest %s failed", backtest_id)

    try:
        with run_lock(backtest_id):
            clear(store, backtest_id)
        _background.submit(build)
    except Exception:  # (the interpreter shutting down, say)
        log.exception("analytics table of backtest %s not scheduled", backtest_id)


def daily_table(store, backtest_id: str) -> RunTable:
    """The run's table if it has one, else its days alone (from metadata.json, no trades):
    what a comparison needs, without reading day files."""
    table = read_table(analytics_dir(store, backtest_id) / TABLE_NAME)
    if table is not None:
        return table
    try:
        meta = store.read_metadata(backtest_id)
    except (NotFound, FileNotFoundError, ValueError) as exc:
        raise ResultsUnavailable(f"the run's results are not stored ({exc})") from None
    rows = [r for r in (meta.get("daily_summaries") or []) if isinstance(r, dict)]
    s, i4, f8 = np.empty(0, "S1"), np.empty(0, np.int32), np.empty(0, np.float64)
    return RunTable(
        days=np.array([str(r["date"]) for r in rows], dtype="datetime64[D]"),
        equity=np.array([float(r["equity"]) for r in rows], np.float64), initial_capital=_initial_capital(meta),
        info=_info(meta, _has_legs(meta.get("config"))),
        t_day=i4, t_id=s, t_entry=s, t_exit=s, t_duration=f8, t_pnl=f8, t_return=f8, t_hour=np.empty(0, np.int8),
        t_minute=np.empty(0, np.int16), t_weekday=np.empty(0, np.int8), t_side=np.empty(0, np.int8), t_reason=i4,
        reasons=s, t_node=i4, nodes=s)
