"""Datasets by symbol: the built-in SIM-NIFTY, any CSV/Parquet dropped into <data_dir>/datasets/ (both
shared by every user), and each user's uploads under <data_dir>/users/<user>/datasets/<SYMBOL>/.

Each dataset is converted once into .npy columns under <data_dir>/datasets/<SYMBOL>/<key>/, where
<key> hashes the source (file size and mtime, or generator parameters): a changed source gets a new
key, and a finished directory never changes. Builds go to a temp directory renamed into place, so
processes racing to build the same key cannot corrupt it. Loads memory-map the columns and copy out
whole trading days found by searchsorted on the per-day arrays.

Uploads (services/engine/datasets) are stored already in that columnar form, one folder per
dataset, renamed into place whole. Only their owner sees them: `Catalog.scoped(owner)` is the view
every run, listing and check goes through (the owner's uploads first, then the shared datasets);
another user's upload is, to it, a symbol that does not exist.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from storage.store import user_dir_name

from .bars import Bars
from .calendar import calendar_tz, check_calendar, day_date, day_number
from .data import DataError, load_bars
from .simdata import GENERATOR_VERSION, SIM_NIFTY, SimParams, generate_sim_nifty

__all__ = ["Catalog", "ScopedCatalog", "DatasetInfo", "UnknownDataset", "SOURCE_SUFFIXES", "SYMBOL",
           "CHAIN_SUFFIXES"]

log = logging.getLogger(__name__)

_FORMAT = 1  # bump when the cache layout or the loaders' output changes
_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
SOURCE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
_STALE_TMP_SECONDS = 3600.0
_CHAIN_TAG = ".options"  # <SYMBOL>.options.parquet (or another source suffix): the option chain of SYMBOL
CHAIN_SUFFIXES = (".parquet", ".csv.gz", ".csv")  # an uploaded chain: <upload folder>/<SYMBOL>.options<suffix>
# An uploaded dataset's symbol (also its folder's name: no path separators, no leading dot).
SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
USERS_DIR = "users"
DATASETS_DIR = "datasets"


class UnknownDataset(KeyError):
    """No dataset has this symbol. `known` lists those that exist."""

    def __init__(self, symbol: str, known: list[str]):
        super().__init__(symbol)
        self.symbol, self.known = symbol, known

    def __str__(self) -> str:
        return f"unknown dataset '{self.symbol}': known datasets are {', '.join(self.known) or 'none'}"


@dataclass(frozen=True)
class DatasetInfo:
    """Mirrors message hindsight.v1.Dataset."""

    symbol: str
    description: str
    timeframe: str
    first_date: date
    last_date: date
    bars: int
    timezone: str
    calendar: str
    # Where it comes from ("builtin", "server", "upload") and, for uploads, whose it is, its quality
    # score, when it was uploaded and its bytes on disk. Not compared: a dataset is its data.
    source: str = field(default="server", compare=False)
    owner: str = field(default="", compare=False)
    quality_score: float = field(default=0.0, compare=False)
    created_at: float = field(default=0.0, compare=False)
    stored_bytes: int = field(default=0, compare=False)


# ---- sources -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Source:
    symbol: str
    path: Path | None = None         # a user file; None for a generated dataset
    sidecar: Path | None = None      # optional <SYMBOL>.json: timezone, calendar, description
    params: SimParams | None = None  # a generated dataset

    def key(self) -> str:
        """Changes whenever the built data would."""
        if self.path is None:
            ident: dict = {"generator": repr(self.params), "version": GENERATOR_VERSION}
        else:
            st = self.path.stat()
            ident = {"file": self.path.name, "size": st.st_size, "mtime": st.st_mtime_ns}
            if self.sidecar is not None and self.sidecar.is_file():
                sc = self.sidecar.stat()
                ident["sidecar"] = [sc.st_size, sc.st_mtime_ns]
        ident["format"] = _FORMAT
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    def build(self) -> tuple[Bars, dict]:
        """The bars and the metadata that is not derived from them."""
        if self.path is None:
            p = self.params or SIM_NIFTY
            return generate_sim_nifty(p), {"description": p.description, "calendar": p.calendar}
        meta = self._sidecar()
        calendar = meta.get("calendar", "")
        tz = meta.get("timezone") or (calendar_tz(calendar) if calendar else None)
        bars = load_bars(self.path, symbol=self.symbol, tz=tz)
        return bars, {"description": meta.get("description") or f"User dataset from {self.path.name}",
                      "calendar": calendar}

    def _sidecar(self) -> dict:
        if self.sidecar is None or not self.sidecar.is_file():
            return {}
        where = str(self.sidecar)
        try:
            meta = json.loads(self.sidecar.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.sidecar.name}: not valid JSON ({exc})", path=where) from None
        if not isinstance(meta, dict) or any(not isinstance(v, str) for v in meta.values()):
            raise DataError(f"{self.sidecar.name}: expected an object of strings, e.g. "
                            '{"timezone": "Asia/Kolkata", "calendar": "XBOM", "description": "..."}', path=where)
        unknown = set(meta) - {"timezone", "calendar", "description"}
        if unknown:
            raise DataError(f"{self.sidecar.name}: unknown keys {sorted(unknown)}: use timezone, calendar, "
                            "description", path=where)
        if meta.get("calendar"):
            try:
                check_calendar(meta["calendar"])
            except ValueError as exc:
                raise DataError(f"{self.sidecar.name}: {exc}", path=where) from None
        return meta


_BUILTIN = {SIM_NIFTY.symbol: _Source(SIM_NIFTY.symbol, params=SIM_NIFTY)}


# ---- the opened cache ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Opened:
    key: str
    meta: dict
    columns: dict[str, np.ndarray]  # memory-mapped, read-only
    dates: np.ndarray               # int64[D] day numbers
    starts: np.ndarray              # int64[D+1] bar offsets per day

    def info(self, stored_bytes: int = 0) -> DatasetInfo:
        m = self.meta
        source = m.get("source") or ("builtin" if m["symbol"] in _BUILTIN else "server")
        return DatasetInfo(m["symbol"], m["description"], m["timeframe"], date.fromisoformat(m["first_date"]),
                           date.fromisoformat(m["last_date"]), int(m["bars"]), m["timezone"], m["calendar"],
                           source=source, owner=m.get("owner", ""), quality_score=float(m.get("quality_score", 0.0)),
                           created_at=float(m.get("created_at", 0.0)), stored_bytes=stored_bytes)


def _write_build(directory: Path, bars: Bars, extra: dict, key: str) -> None:
    dates, starts = bars.day_bounds()
    arrays = {name: getattr(bars, name) for name in _COLUMNS}
    arrays["dates"], arrays["starts"] = dates, starts
    for name, arr in arrays.items():
        with open(directory / f"{name}.npy", "wb") as fh:
            np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
    first = day_date(dates[0]).isoformat() if len(dates) else ""
    last = day_date(dates[-1]).isoformat() if len(dates) else ""
    meta = {"format": _FORMAT, "key": key, "symbol": bars.symbol, "timeframe": bars.timeframe,
            "timezone": bars.tz, "first_date": first, "last_date": last, "bars": len(bars), "days": len(dates),
            **extra}
    with open(directory / "meta.json", "w") as fh:  # written last: its presence marks a whole build
        json.dump(meta, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())


def _read_build(directory: Path) -> _Opened:
    meta = json.loads((directory / "meta.json").read_text())
    columns = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in _COLUMNS}
    dates = np.load(directory / "dates.npy")
    starts = np.load(directory / "starts.npy")
    return _Opened(meta["key"], meta, columns, dates, starts)


class Catalog:
    """Datasets under `data_dir` (the engine passes HINDSIGHT_DATA_DIR, default ./var). Thread-safe."""

    def __init__(self, data_dir: Path | str):
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "datasets"
        self._lock = threading.Lock()
        self._symbol_locks: dict[str, threading.Lock] = {}
        self._opened: dict[str, _Opened] = {}
        self._uploads: dict[Path, tuple[tuple[int, int], _Opened]] = {}  # folder -> (meta.json's identity, build)

    # -- per-user views ----------------------------------------------------------------------------

    def scoped(self, owner: str) -> "ScopedCatalog":
        """The datasets `owner` may use: their uploads, then the built-in and server datasets."""
        return ScopedCatalog(self, owner)

    def uploads_dir(self, owner: str) -> Path:
        """<data_dir>/users/<user folder>/datasets: one folder per uploaded dataset (the user folder
        as storage names a user's runs: the id itself when it is a safe name, else a digest)."""
        return self.data_dir / USERS_DIR / user_dir_name(owner) / DATASETS_DIR

    def open_upload(self, folder: Path) -> _Opened | None:
        """The upload stored in `folder`, or None when there is none (never uploaded, deleted, or
        still being written: meta.json is written last). Cached until meta.json changes."""
        try:
            st = (folder / "meta.json").stat()
        except OSError:
            self._uploads.pop(folder, None)
            return None
        ident = (st.st_ino, st.st_mtime_ns)
        hit = self._uploads.get(folder)
        if hit is not None and hit[0] == ident:
            return hit[1]
        try:
            opened = _read_build(folder)
        except (OSError, ValueError, KeyError) as exc:
            if not (folder / "meta.json").is_file():  # deleted meanwhile
                return None
            raise DataError(f"uploaded dataset {folder.name} cannot be read ({exc}): delete it and upload it again",
                            path=str(folder)) from None
        with self._lock:
            self._uploads[folder] = (ident, opened)
        return opened

    def chain_cache_dir(self, symbol: str) -> Path:
        """Where the validated cache of `symbol`'s option chain is kept."""
        return self.root / symbol

    # -- what exists -----------------------------------------------------------------------------

    def _sources(self) -> dict[str, _Source | list[Path]]:
        """symbol -> source; a list of paths where two files claim one symbol."""
        found: dict[str, list[Path]] = {}
        if self.root.is_dir():
            for path in sorted(self.root.iterdir()):
                name = path.name
                suffix = next((s for s in SOURCE_SUFFIXES if name.lower().endswith(s)), None)
                if suffix and not name.startswith(".") and len(name) > len(suffix) and path.is_file():
                    stem = name[: -len(suffix)]
                    if not stem.lower().endswith(_CHAIN_TAG):  # an option chain, not a dataset: see option_chain()
                        found.setdefault(stem, []).append(path)
        out: dict[str, _Source | list[Path]] = dict(_BUILTIN)
        for symbol, paths in found.items():
            if symbol in _BUILTIN:
                log.warning("ignoring %s: %s is a built-in dataset; rename the file", paths[0].name, symbol)
            elif len(paths) > 1:
                out[symbol] = paths
            else:
                out[symbol] = _Source(symbol, paths[0], self.root / f"{symbol}.json")
        return out

    def _source(self, symbol: str) -> _Source:
        sources = self._sources()
        src = sources.get(symbol)
        if src is None:
            raise UnknownDataset(symbol, sorted(sources))
        if isinstance(src, list):
            names = ", ".join(p.name for p in src)
            raise DataError(f"{names} all define dataset {symbol}: keep one of them", path=str(src[0]))
        return src

    def has(self, symbol: str) -> bool:
        return symbol in self._sources()

    def list(self) -> list[DatasetInfo]:
        """Every dataset, built-ins first; a user file that cannot be loaded is logged and left out."""
        out = []
        for symbol in self._sources():
            try:
                out.append(self._open(symbol).info())
            except (DataError, ValueError, OSError) as exc:
                log.warning("dataset %s is not available: %s", symbol, exc)
        builtin = [i for i in out if i.symbol in _BUILTIN]
        return builtin + sorted((i for i in out if i.symbol not in _BUILTIN), key=lambda i: i.symbol)

    def info(self, symbol: str) -> DatasetInfo:
        return self._open(symbol).info()

    def option_chain(self, symbol: str) -> Path | None:
        """The option chain file of dataset `symbol`, <SYMBOL>.options.parquet (or .pq, .csv, .csv.gz) beside
        it in the datasets folder; None when it has none. Read it with services.engine.options.chain."""
        self._source(symbol)  # an unknown symbol fails as in load()
        tails = {f"{_CHAIN_TAG}{suffix}" for suffix in SOURCE_SUFFIXES}
        found = [p for p in sorted(self.root.iterdir()) if p.name.startswith(symbol) and p.is_file()
                 and p.name[len(symbol):].lower() in tails] if self.root.is_dir() else []
        if len(found) > 1:
            raise DataError(f"{', '.join(p.name for p in found)} all define the option chain of {symbol}: keep one "
                            "of them", path=str(found[0]))
        return found[0] if found else None

    # -- loading ---------------------------------------------------------------------------------

    def load(self, symbol: str, start: date | None = None, end: date | None = None) -> Bars:
        """Bars of whole trading days in [start, end] (both inclusive; None: open-ended)."""
        return self._bars(self._open(symbol), start, end)

    @classmethod
    def _bars(cls, opened: _Opened, start: date | None, end: date | None) -> Bars:
        d0, d1 = cls._day_range(opened, start, end)
        i0, i1 = int(opened.starts[d0]), int(opened.starts[d1])
        cols = {name: np.array(opened.columns[name][i0:i1]) for name in _COLUMNS}  # copies: plain, writable
        dates = opened.dates[d0:d1].copy()
        starts = opened.starts[d0:d1 + 1] - i0
        m = opened.meta
        # The per-day layout is known already: seed Bars' cache so no consumer converts time zones for it.
        known = {"day": np.repeat(dates, np.diff(starts)), "bounds": (dates, starts)}
        return Bars(m["symbol"], m["timezone"], cols["ts"], cols["open"], cols["high"], cols["low"], cols["close"],
                    cols["volume"], m["timeframe"], known)

    def trading_days(self, symbol: str, start: date | None = None, end: date | None = None) -> list[date]:
        """The dates in [start, end] on which the dataset has bars."""
        return self._days(self._open(symbol), start, end)

    @classmethod
    def _days(cls, opened: _Opened, start: date | None, end: date | None) -> list[date]:
        d0, d1 = cls._day_range(opened, start, end)
        return [day_date(d) for d in opened.dates[d0:d1]]

    def date_range(self, symbol: str) -> tuple[date, date]:
        info = self._open(symbol).info()
        return info.first_date, info.last_date

    @staticmethod
    def _day_range(opened: _Opened, start: date | None, end: date | None) -> tuple[int, int]:
        d0 = int(np.searchsorted(opened.dates, day_number(start), "left")) if start else 0
        d1 = int(np.searchsorted(opened.dates, day_number(end), "right")) if end else len(opened.dates)
        return d0, max(d0, d1)

    # -- the cache -------------------------------------------------------------------------------

    def _open(self, symbol: str) -> _Opened:
        src = self._source(symbol)
        key = src.key()
        opened = self._opened.get(symbol)
        if opened is not None and opened.key == key:
            return opened
        with self._lock:
            lock = self._symbol_locks.setdefault(symbol, threading.Lock())
        with lock:  # one build per symbol in this process; other processes are handled on disk
            opened = self._opened.get(symbol)
            if opened is None or opened.key != key:
                opened = self._open_build(src, key)
                self._opened[symbol] = opened
        return opened

    def _open_build(self, src: _Source, key: str) -> _Opened:
        final = self.root / src.symbol / key
        for _attempt in range(3):
            if (final / "meta.json").is_file():
                try:
                    return _read_build(final)
                except (OSError, ValueError, KeyError):
                    # Removed by a process that saw a newer source between our check and read.
                    if (final / "meta.json").is_file():
                        raise
            self._build(src, key, final)
        return _read_build(final)

    def _build(self, src: _Source, key: str, final: Path) -> None:
        started = time.perf_counter()
        bars, extra = src.build()
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{src.symbol}-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            _write_build(tmp, bars, extra, key)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, final)  # atomic; fails when another process got there first
            except OSError:
                if not (final / "meta.json").is_file():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log.info("built dataset %s (%d bars) in %.2fs", src.symbol, len(bars), time.perf_counter() - started)
        self._sweep(final)

    def _sweep(self, keep: Path) -> None:
        """Remove older builds of this symbol and temp directories abandoned by crashed builds."""
        try:
            ours = (keep / "meta.json").stat().st_mtime_ns
        except OSError:
            return
        for other in keep.parent.iterdir():
            try:
                older = other != keep and (other / "meta.json").stat().st_mtime_ns <= ours
            except OSError:
                older = other != keep and other.is_dir()  # a build without meta.json is garbage
            if older:
                shutil.rmtree(other, ignore_errors=True)
        now = time.time()
        for tmp in self.root.glob(".tmp-*"):
            try:
                if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                    shutil.rmtree(tmp, ignore_errors=True)
            except OSError:
                pass


# ---- one user's view ----------------------------------------------------------------------------

def _folder_bytes(folder: Path) -> int:
    total = 0
    try:
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    except OSError:
        pass
    return total


class ScopedCatalog:
    """The catalog as one user sees it: their uploads first, then the built-in and server datasets,
    with the methods runs use (`load`, `info`, `has`, `list`, `trading_days`, `date_range`,
    `option_chain`, `chain_cache_dir`). Another user's upload is unknown here, exactly as a symbol
    that does not exist."""

    def __init__(self, catalog: Catalog, owner: str):
        self.catalog, self.owner = catalog, owner
        self.data_dir = catalog.data_dir

    @property
    def folder(self) -> Path:
        return self.catalog.uploads_dir(self.owner)

    def upload_folder(self, symbol: str) -> Path | None:
        """The folder of the owner's upload `symbol` (None when the symbol cannot be one)."""
        if not self.owner or not isinstance(symbol, str) or not SYMBOL.match(symbol):
            return None
        return self.folder / symbol

    def _upload(self, symbol: str) -> _Opened | None:
        folder = self.upload_folder(symbol)
        return None if folder is None else self.catalog.open_upload(folder)

    def is_upload(self, symbol: str) -> bool:
        return self._upload(symbol) is not None

    def uploads(self) -> list[str]:
        """The owner's uploaded symbols, sorted."""
        try:
            names = sorted(p.name for p in self.folder.iterdir()
                           if SYMBOL.match(p.name) and (p / "meta.json").is_file())
        except OSError:
            return []
        return names

    def known(self) -> list[str]:
        return self.uploads() + sorted(self.catalog._sources())

    def _unknown(self, symbol: str) -> UnknownDataset:
        return UnknownDataset(symbol, self.known())

    def has(self, symbol: str) -> bool:
        return self.is_upload(symbol) or self.catalog.has(symbol)

    def info(self, symbol: str) -> DatasetInfo:
        opened = self._upload(symbol)
        if opened is not None:
            return opened.info(_folder_bytes(self.upload_folder(symbol)))
        try:
            return self.catalog.info(symbol)
        except UnknownDataset:
            raise self._unknown(symbol) from None

    def list(self) -> list[DatasetInfo]:
        """The owner's uploads (by symbol), then the built-in and server datasets."""
        out = []
        for symbol in self.uploads():
            try:
                opened = self._upload(symbol)
                if opened is not None:
                    out.append(opened.info(_folder_bytes(self.folder / symbol)))
            except (DataError, ValueError, OSError) as exc:
                log.warning("uploaded dataset %s of %s is not available: %s", symbol, self.owner, exc)
        return out + self.catalog.list()

    def _opened(self, symbol: str) -> _Opened:
        opened = self._upload(symbol)
        if opened is not None:
            return opened
        try:
            return self.catalog._open(symbol)
        except UnknownDataset:
            raise self._unknown(symbol) from None

    def load(self, symbol: str, start: date | None = None, end: date | None = None) -> Bars:
        return Catalog._bars(self._opened(symbol), start, end)

    def trading_days(self, symbol: str, start: date | None = None, end: date | None = None) -> list[date]:
        return Catalog._days(self._opened(symbol), start, end)

    def date_range(self, symbol: str) -> tuple[date, date]:
        info = self._opened(symbol).info()
        return info.first_date, info.last_date

    def option_chain(self, symbol: str) -> Path | None:
        """An upload's chain (<folder>/<SYMBOL>.options.parquet, .csv.gz or .csv), else the shared
        dataset's (Catalog.option_chain)."""
        folder = self.upload_folder(symbol)
        if folder is not None and self.catalog.open_upload(folder) is not None:
            for suffix in CHAIN_SUFFIXES:
                path = folder / f"{symbol}{_CHAIN_TAG}{suffix}"
                if path.is_file():
                    return path
            return None
        try:
            return self.catalog.option_chain(symbol)
        except UnknownDataset:
            raise self._unknown(symbol) from None

    def chain_cache_dir(self, symbol: str) -> Path:
        folder = self.upload_folder(symbol)
        if folder is not None and self.catalog.open_upload(folder) is not None:
            return folder
        return self.catalog.chain_cache_dir(symbol)
