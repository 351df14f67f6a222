"""Uploaded datasets on disk: one folder per dataset under the owner's
<data_dir>/users/<user>/datasets/, built in a temp folder beside it and renamed into place whole.

    <SYMBOL>/ts.npy open.npy high.npy low.npy close.npy volume.npy dates.npy starts.npy
             quality.json  meta.json (last)            the catalog's columnar form + the report
             <SYMBOL>.options.<ext>, options-<key>.parquet    an uploaded option chain and its cache
    .upload-<id>/                                     an upload in progress (received bytes, build)
    .trash-<id>/                                      a deleted dataset being removed

A symbol is unique per user and against the shared datasets, ignoring case; `commit` checks and
renames under one lock, so of two uploads of one symbol the second to finish is refused. A
delete renames the folder away first (runs that have its columns open keep reading them).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from ..core.catalog import DATASETS_DIR, SYMBOL, USERS_DIR, Catalog

__all__ = ["SYMBOL", "TRASH_PREFIX", "UPLOAD_PREFIX", "Clash", "Uploads", "folder_bytes"]

log = logging.getLogger(__name__)

UPLOAD_PREFIX = ".upload-"
TRASH_PREFIX = ".trash-"
STALE_SECONDS = 3600.0


class Clash(Exception):
    """The symbol is taken (by the caller's own upload or a shared dataset); `existing` spells it."""

    def __init__(self, symbol: str, existing: str, shared: bool):
        super().__init__(symbol)
        self.symbol, self.existing, self.shared = symbol, existing, shared


def folder_bytes(folder: Path) -> int:
    """Bytes of the files in `folder` and below."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


class Uploads:
    """Every user's uploaded datasets, on top of the catalog's paths and cache."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._lock = threading.Lock()

    def folder(self, owner: str) -> Path:
        return self.catalog.uploads_dir(owner)

    def dataset(self, owner: str, symbol: str) -> Path | None:
        """The folder of `owner`'s upload `symbol`, when it exists (exact symbol)."""
        folder = self.catalog.scoped(owner).upload_folder(symbol)
        return folder if folder is not None and (folder / "meta.json").is_file() else None

    def clash(self, owner: str, symbol: str, shared: Iterable[str]) -> Clash | None:
        """Whether `symbol` is taken, ignoring case: by one of `owner`'s uploads or a shared dataset."""
        low = symbol.lower()
        for name in shared:
            if name.lower() == low:
                return Clash(symbol, name, True)
        for name in self.catalog.scoped(owner).uploads():
            if name.lower() == low:
                return Clash(symbol, name, False)
        return None

    def temp(self, owner: str) -> Path:
        """A new temp folder for one upload, inside the owner's datasets folder (same file system
        as the final folder: the rename is atomic). Stale ones of crashed engines are removed."""
        base = self.folder(owner)
        base.mkdir(parents=True, exist_ok=True)
        self._sweep(owner, base)
        path = base / f"{UPLOAD_PREFIX}{uuid.uuid4().hex}"
        path.mkdir()
        return path

    def commit(self, owner: str, symbol: str, build: Path, shared: Iterable[str]) -> Path:
        """Rename the finished `build` folder into place as `symbol`; Clash when the symbol was
        taken meanwhile (the second of two concurrent uploads)."""
        shared = list(shared)
        with self._lock:
            taken = self.clash(owner, symbol, shared)
            if taken is not None:
                raise taken
            final = self.folder(owner) / symbol
            try:
                os.rename(build, final)
            except OSError:
                if final.exists():
                    raise Clash(symbol, symbol, False) from None
                raise
        return final

    def delete(self, owner: str, symbol: str) -> bool:
        """Remove `owner`'s upload `symbol`; False when there is none."""
        with self._lock:
            folder = self.dataset(owner, symbol)
            if folder is None:
                return False
            trash = folder.parent / f"{TRASH_PREFIX}{uuid.uuid4().hex}"
            os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def stored_bytes(self, owner: str) -> int:
        """Bytes `owner`'s uploads take (uploads in progress and trash not counted)."""
        base = self.folder(owner)
        try:
            entries = [p for p in base.iterdir() if SYMBOL.match(p.name)]
        except OSError:
            return 0
        return sum(folder_bytes(p) for p in entries)

    def _sweep(self, owner: str, base: Path) -> None:
        """Temp and trash folders left by an engine that died: removed once nothing in them has
        been written for an hour (a live upload keeps appending to its file, however long it
        takes; another engine process may share the data dir)."""
        now = time.time()
        for entry in base.iterdir():
            if entry.name.startswith((UPLOAD_PREFIX, TRASH_PREFIX)):
                try:
                    if now - _last_written(entry) > STALE_SECONDS:
                        shutil.rmtree(entry, ignore_errors=True)
                except OSError:
                    pass

    def sweep_all(self) -> None:
        """Every user's stale temp and trash folders (at engine start: a crash's leftovers go
        without waiting for that user's next upload)."""
        users = self.catalog.data_dir / USERS_DIR
        try:
            folders = [u / DATASETS_DIR for u in users.iterdir()]
        except OSError:
            return
        for base in folders:
            if base.is_dir():
                self._sweep("", base)


def _last_written(folder: Path) -> float:
    """The latest modification time of `folder` and the files directly in it (an upload's temp
    folder holds the growing file and the columns being written)."""
    latest = folder.stat().st_mtime
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                latest = max(latest, entry.stat(follow_symlinks=False).st_mtime)
            except OSError:
                pass
    return latest
